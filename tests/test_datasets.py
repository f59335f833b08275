"""Dataset readers against the real reference metadata (shared/reference) and hand-made bad files."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tf_scenes.datasets import common, esc50, fsd2018, fsd2019, nigens2020, tau2020, tree
from tf_scenes.errors import DataFormatError


# ----------------------------------------------------------------------------- real reference files

@pytest.fixture(scope="module")
def tau_tree_names(reference_dir):
    return tree.tree_files(reference_dir / "tree_tau2020_asc.txt", under="audio", suffix=".wav")


def test_no_tensorflow_import():
    # The readers are light modules: importing them must not pull TensorFlow in.
    import subprocess

    code = ("import sys, tf_scenes.datasets, tf_scenes.datasets.tau2020; "
            "sys.exit(1 if 'tensorflow' in sys.modules or 'keras' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_fold1_train_real(reference_dir):
    recs = tau2020.read_fold_csv(reference_dir / "tau2020_fold1_train.csv")
    assert len(recs) == 13965
    dev = Counter(r.device for r in recs)
    assert dev == {"a": 10215, "b": 750, "c": 750, "s1": 750, "s2": 750, "s3": 750}
    r0 = recs[0]
    assert r0.filename == "audio/airport-lisbon-1000-40000-a.wav"
    assert (r0.scene, r0.city, r0.location, r0.segment, r0.device) == ("airport", "lisbon", "1000", "40000", "a")
    assert r0.identifier == "lisbon-1000" and r0.clip_id == "airport-lisbon-1000-40000"
    assert r0.broad == "indoor"
    # default root for a bare csv is its folder; the last line (no final newline) is read
    assert r0.path == reference_dir / "audio/airport-lisbon-1000-40000-a.wav"
    assert recs[-1].filename == "audio/tram-lyon-1112-41171-s3.wav"
    assert set(r.scene for r in recs) == set(tau2020.SCENES)


def test_fold1_evaluate_real_crlf(reference_dir):
    assert b"\r\n" in (reference_dir / "tau2020_fold1_evaluate.csv").read_bytes()[:100]
    recs = tau2020.read_fold_csv(reference_dir / "tau2020_fold1_evaluate.csv")
    assert len(recs) == 2970
    assert Counter(r.device for r in recs) == {d: 330 for d in tau2020.DEVICES}
    assert not any(r.scene.endswith("\r") or r.filename.endswith("\r") for r in recs)
    # train and evaluate are disjoint, and s4-s6 appear only in evaluate
    train = {r.filename for r in tau2020.read_fold_csv(reference_dir / "tau2020_fold1_train.csv")}
    assert not train & {r.filename for r in recs}


def test_three_class_csv_real(reference_dir):
    broad = tau2020.read_broad_csv(reference_dir / "two_stage_fold1_evaluate_3class.csv")
    assert len(broad) == 2970
    assert Counter(r.broad for r in broad) == {"indoor": 891, "outdoor": 1188, "transportation": 891}
    ten = tau2020.read_fold_csv(reference_dir / "tau2020_fold1_evaluate.csv")
    # same clips, different row order
    assert {r.filename for r in broad} == {r.filename for r in ten}
    assert [r.filename for r in broad] != [r.filename for r in ten]
    # reading the 3-class file as a 10-class list is refused with a pointer to the right reader
    with pytest.raises(DataFormatError, match=r"two_stage_fold1_evaluate_3class.csv:2: .*broad class.*read_broad_csv"):
        tau2020.read_fold_csv(reference_dir / "two_stage_fold1_evaluate_3class.csv")


def test_class_orders():
    assert tau2020.SCENES[:3] == ("airport", "shopping_mall", "metro_station")
    assert tau2020.SCENES_ALPHABETICAL == ("airport", "bus", "metro", "metro_station", "park", "public_square",
                                           "shopping_mall", "street_pedestrian", "street_traffic", "tram")
    assert {tau2020.SCENE_TO_BROAD[s] for s in tau2020.SCENES} == set(tau2020.BROAD_CLASSES)
    assert sorted(s for s, b in tau2020.SCENE_TO_BROAD.items() if b == "transportation") == ["bus", "metro", "tram"]
    assert len(fsd2019.CLASSES) == 80 and fsd2019.CLASSES[4] == "Bark" and fsd2019.CLASSES[-1] == "Zipper_(clothing)"
    assert len(set(fsd2019.CLASSES)) == 80
    assert len(fsd2018.CLASSES) == 41 and len(nigens2020.CLASSES) == 14
    assert len(esc50.CATEGORIES) == 50 and len(set(esc50.CATEGORIES)) == 50
    assert esc50.group_of(0) == "animals" and esc50.group_of(49) == "exterior_urban"
    assert esc50.CATEGORIES[40] == "helicopter" and esc50.group_of(esc50.CATEGORIES.index("toilet_flush")) == \
        "natural_soundscapes_water"


def test_tau_tree_listing(tau_tree_names):
    assert len(tau_tree_names) == 23040
    parsed = [tau2020.parse_tau_filename(n) for n in tau_tree_names]
    assert Counter(p["device"] for p in parsed) == {"a": 14400, **{d: 1080 for d in tau2020.DEVICES[1:]}}
    assert {p["scene"] for p in parsed} == set(tau2020.SCENES)
    assert {p["city"] for p in parsed} == set(tau2020.CITIES)
    # every non-A clip has its parallel device-A recording
    a_ids = {p["clip_id"] for p in parsed if p["device"] == "a"}
    assert all(p["clip_id"] in a_ids for p in parsed if p["device"] != "a")


def test_tau_tree_covers_fold_csvs(reference_dir, tau_tree_names):
    on_disk = set(tau_tree_names)
    for name in ("tau2020_fold1_train.csv", "tau2020_fold1_evaluate.csv"):
        listed = {r.filename for r in tau2020.read_fold_csv(reference_dir / name)}
        assert listed <= on_disk


def test_parse_tau_filename_errors():
    with pytest.raises(DataFormatError, match="bad TAU 2020 file name"):
        tau2020.parse_tau_filename("audio/airport_lisbon_1000_40000_a.wav")
    with pytest.raises(DataFormatError, match=r"unknown scene in file name 'airprot'.*'airport'"):
        tau2020.parse_tau_filename("audio/airprot-lisbon-1000-40000-a.wav")
    with pytest.raises(DataFormatError, match=r"unknown device in file name 's7'"):
        tau2020.parse_tau_filename("airport-lisbon-1000-40000-s7.wav")
    # generated clips carry an augmentation tag, accepted only when asked for
    name = "audio/airport-lisbon-1000-40000-a-reverb_drc.wav"
    with pytest.raises(DataFormatError, match="unexpected suffix -reverb_drc"):
        tau2020.parse_tau_filename(name)
    p = tau2020.parse_tau_filename(name, allow_augmented=True)
    assert (p["device"], p["augmentation"], p["clip_id"]) == ("a", "reverb_drc", "airport-lisbon-1000-40000")


def test_fsd2019_tree_and_kfold(reference_dir):
    names = tree.tree_files(reference_dir / "tree_fsdkaggle2019_tag.txt", under="train_curated", suffix=".wav")
    assert len(names) == 4970
    assert "train_curated/0006ae4e.wav" in names
    tr, va = fsd2019.kfold_split(names)
    assert (len(tr), len(va)) == (3976, 994)
    assert not set(tr) & set(va)
    from sklearn.model_selection import KFold

    for fold in (0, 3):
        sk = list(KFold(5, shuffle=True, random_state=42).split(np.arange(len(names))))[fold]
        ours = fsd2019.kfold_indices(len(names), fold=fold)
        np.testing.assert_array_equal(ours[0], sk[0])
        np.testing.assert_array_equal(ours[1], sk[1])


def test_nigens_tree(reference_dir):
    listing = tree.read_tree(reference_dir / "tree_tau_nigens2020_sed.txt")
    wavs = tree.tree_files(listing, under="mic_dev", suffix=".wav")
    csvs = tree.tree_files(listing, under="metadata_dev", suffix=".csv")
    assert len(wavs) == 600 and len(csvs) == 600
    assert {Path(w).stem for w in wavs} == {Path(c).stem for c in csvs}
    parsed = [nigens2020.parse_nigens_name(w) for w in wavs]
    # folds 1-5: rooms 1 and 2, ov1 for mix 1-25; fold 6: room 1 only, ov1 for mix 1-50
    for p in parsed:
        assert p["room"] in ((1,) if p["fold"] == 6 else (1, 2))
        assert p["ov"] == (1 if p["mix"] <= (50 if p["fold"] == 6 else 25) else 2)
    assert Counter(p["fold"] for p in parsed) == {f: 100 for f in range(1, 7)}
    # DcaseNet's derived feature folder of the same name holds .npy files, kept apart by path
    assert len(tree.tree_files(listing, under="mic_dev")) == 600
    assert len(tree.tree_files(listing, under="feat_label/mic_dev", suffix=".npy")) > 0


def test_parse_tree_small():
    bar = "│\u00a0\u00a0 "  # the real listings indent with no-break spaces
    text = (f"root\n├── a\n{bar}├── x.wav\n{bar}└── sub\n{bar}    └── y.wav\n└── b.csv\n"
            "\n2 directories, 3 files\n")
    assert tree.parse_tree(text) == ["a", "a/x.wav", "a/sub", "a/sub/y.wav", "b.csv"]
    with pytest.raises(DataFormatError, match=":3: .*indentation"):
        tree.parse_tree("root\n├── a\n│   │   ├── deep.wav\n")


# ----------------------------------------------------------------------------- hand-made TAU files

def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


ROWS = ["audio/airport-lisbon-1000-40000-a.wav\tairport", "audio/bus-paris-3-4-s1.wav\tbus",
        "audio/park-vienna-7-8-b.wav\tpark"]


def _tau_csv(tmp_path, rows=ROWS, nl="\n", bom=False, final_nl=True, header="filename\tscene_label"):
    text = nl.join([header, *rows]) + (nl if final_nl else "")
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    return _write(tmp_path / "evaluation_setup" / "fold1_train.csv", data)


@pytest.mark.parametrize("nl,bom,final_nl", [("\n", False, True), ("\r\n", True, False), ("\r\n", False, True),
                                             ("\n", True, False)])
def test_line_endings_bom_final_newline(tmp_path, nl, bom, final_nl):
    recs = tau2020.read_fold_csv(_tau_csv(tmp_path, nl=nl, bom=bom, final_nl=final_nl))
    assert [r.scene for r in recs] == ["airport", "bus", "park"]
    assert [r.device for r in recs] == ["a", "s1", "b"]
    assert recs[2].path == tmp_path / "audio/park-vienna-7-8-b.wav"


def test_wrong_column_count(tmp_path):
    rows = ROWS[:2] + ["audio/park-vienna-7-8-b.wav\tpark\textra"]
    with pytest.raises(DataFormatError, match=r"fold1_train.csv:4: expected 2 TAB-separated fields.*found 3"):
        tau2020.read_fold_csv(_tau_csv(tmp_path, rows=rows))


def test_comma_instead_of_tab(tmp_path):
    rows = [r.replace("\t", ",") for r in ROWS]
    with pytest.raises(DataFormatError, match=r"fold1_train.csv:1: header .* is comma-separated, expected TAB"):
        tau2020.read_fold_csv(_tau_csv(tmp_path, rows=rows, header="filename,scene_label"))
    # a single comma row in a TAB file
    rows = ROWS[:2] + [ROWS[2].replace("\t", ",")]
    with pytest.raises(DataFormatError, match=r":4: expected 2 .*found 1.*comma-separated; the file must be TAB"):
        tau2020.read_fold_csv(_tau_csv(tmp_path, rows=rows))


def test_missing_and_extra_columns(tmp_path):
    with pytest.raises(DataFormatError, match=r":1: bad header .*missing column\(s\) scene_label.*unexpected.*'label'"):
        tau2020.read_fold_csv(_tau_csv(tmp_path, header="filename\tlabel"))
    with pytest.raises(DataFormatError, match=r"unexpected column\(s\) 'city'"):
        tau2020.read_fold_csv(_tau_csv(tmp_path, header="filename\tscene_label\tcity",
                                       rows=[r + "\tx" for r in ROWS]))


def test_unknown_label(tmp_path):
    rows = ROWS[:1] + ["audio/bus-paris-3-4-s1.wav\tbuss"] + ROWS[2:]
    with pytest.raises(DataFormatError,
                       match=r"fold1_train.csv:3: unknown scene label 'buss' \(did you mean 'bus'\?\)"):
        tau2020.read_fold_csv(_tau_csv(tmp_path, rows=rows))
    rows = ROWS[:1] + ["audio/bus-paris-3-4-s1.wav\tpark"]
    with pytest.raises(DataFormatError, match=r":3: scene label 'park' does not match the file name"):
        tau2020.read_fold_csv(_tau_csv(tmp_path, rows=rows))


def test_duplicate_row(tmp_path):
    with pytest.raises(DataFormatError, match=r":5: duplicate file name '.*bus-paris.*' \(first on line 3\)"):
        tau2020.read_fold_csv(_tau_csv(tmp_path, rows=ROWS + [ROWS[1]]))


def test_empty_dataset(tmp_path):
    with pytest.raises(DataFormatError, match="no data rows"):
        tau2020.read_fold_csv(_tau_csv(tmp_path, rows=[]))
    with pytest.raises(DataFormatError, match="empty file"):
        tau2020.read_fold_csv(_write(tmp_path / "x.csv", b""))
    with pytest.raises(DataFormatError, match="file not found"):
        tau2020.load(tmp_path / "nowhere", "evaluate")


def test_load_root_and_missing_files(tmp_path):
    _tau_csv(tmp_path)
    _write(tmp_path / "audio/airport-lisbon-1000-40000-a.wav", b"x")
    with pytest.raises(DataFormatError, match=r"fold1_train.csv: 2 of 3 listed audio files are missing: "
                                              r".*bus-paris-3-4-s1.wav, .*park-vienna-7-8-b.wav"):
        tau2020.load(tmp_path, "train")
    assert len(tau2020.load(tmp_path, "train", check_files=False)) == 3
    for name in ("bus-paris-3-4-s1.wav", "park-vienna-7-8-b.wav"):
        _write(tmp_path / "audio" / name, b"x")
    recs = tau2020.load(tmp_path, "train")
    assert all(r.path.is_file() for r in recs)
    with pytest.raises(ValueError, match="unknown split"):
        tau2020.load(tmp_path, "validation")


def test_missing_files_message_is_capped(tmp_path):
    rows = [f"audio/tram-milan-{i}-{i}-a.wav\ttram" for i in range(40)]
    with pytest.raises(DataFormatError, match=r"40 of 40 listed audio files are missing: (.*?, ){4}[^,]* and 35 more"):
        tau2020.load(_tau_csv(tmp_path, rows=rows).parent.parent, "train")


def test_meta_and_test_csv(tmp_path):
    _write(tmp_path / "meta.csv", b"filename\tscene_label\tidentifier\tsource_label\r\n"
           b"audio/airport-lisbon-1000-40000-a.wav\tairport\tlisbon-1000\ta\r\n"
           b"audio/airport-lisbon-1000-40000-s2.wav\tairport\tlisbon-1000\ts2")
    recs = tau2020.load(tmp_path, "all", check_files=False)
    assert [r.device for r in recs] == ["a", "s2"]
    assert tau2020.parallel_groups(recs) == {"airport-lisbon-1000-40000": {"a": recs[0], "s2": recs[1]}}
    _write(tmp_path / "meta.csv", b"filename\tscene_label\tidentifier\tsource_label\n"
           b"audio/airport-lisbon-1000-40000-a.wav\tairport\tlisbon-1001\ta\n")
    with pytest.raises(DataFormatError, match=r"meta.csv:2: identifier 'lisbon-1001'"):
        tau2020.load(tmp_path, "all", check_files=False)
    _write(tmp_path / "evaluation_setup" / "fold1_test.csv", b"filename\naudio/tram-lyon-1-2-s5.wav\n")
    (rec,) = tau2020.load(tmp_path, "test", check_files=False)
    assert (rec.scene, rec.device, rec.broad) == ("tram", "s5", "transportation")


def test_broad_csv_mismatch(tmp_path):
    p = _write(tmp_path / "b.csv", b"filename\tscene_label\naudio/tram-lyon-1-2-a.wav\tindoor\n")
    with pytest.raises(DataFormatError, match=r"b.csv:2: broad label 'indoor' does not match .*tram -> transportation"):
        tau2020.read_broad_csv(p)
    p = _write(tmp_path / "b.csv", b"filename\tscene_label\naudio/tram-lyon-1-2-a.wav\tindor\n")
    with pytest.raises(DataFormatError, match=r"b.csv:2: unknown broad label 'indor' \(did you mean 'indoor'"):
        tau2020.read_broad_csv(p)


# ----------------------------------------------------------------------------- FSDKaggle2019 / 2018

def test_fsd2019_quoted_multilabel(tmp_path):
    _write(tmp_path / "train_curated.csv",
           b'\xef\xbb\xbffname,labels\r\n0006ae4e.wav,Bark\r\n0019ef41.wav,"Walk_and_footsteps,Slam"\r\n'
           b'001ec0ad.wav,"Raindrop,Stream,Trickle_and_dribble"')
    recs = fsd2019.load(tmp_path, "curated", check_files=False)
    assert [r.labels for r in recs] == [("Bark",), ("Walk_and_footsteps", "Slam"),
                                        ("Raindrop", "Stream", "Trickle_and_dribble")]
    assert recs[1].path == tmp_path / "train_curated" / "0019ef41.wav"
    y = fsd2019.multi_hot(recs[1].labels)
    assert y.sum() == 2 and y[fsd2019.CLASSES.index("Slam")] == 1
    with pytest.raises(DataFormatError, match=r"train_curated.csv: 3 of 3 listed audio files are missing"):
        fsd2019.load(tmp_path, "curated")


def test_fsd2019_errors(tmp_path):
    p = _write(tmp_path / "train_curated.csv", b'fname,labels\na.wav,"Bark,Slamm"\n')
    with pytest.raises(DataFormatError, match=r"train_curated.csv:2: unknown label 'Slamm' \(did you mean 'Slam'"):
        fsd2019.read_tag_csv(p)
    # unquoted multi-label: three fields on a two-column row
    p = _write(tmp_path / "train_curated.csv", b"fname,labels\na.wav,Bark\nb.wav,Bark,Slam\n")
    with pytest.raises(DataFormatError, match=r":3: expected 2 comma-separated fields .*found 3.*quote it"):
        fsd2019.read_tag_csv(p)
    p = _write(tmp_path / "train_curated.csv", b"fname\tlabels\na.wav\tBark\n")
    with pytest.raises(DataFormatError, match=r":1: header .* is TAB-separated, expected comma-separated"):
        fsd2019.read_tag_csv(p)


def test_fsd2019_sample_submission(tmp_path):
    header = ",".join(("fname",) + fsd2019.CLASSES)
    p = _write(tmp_path / "sample_submission.csv", (header + "\n" + "a.wav" + ",0" * 80 + "\n").encode())
    assert fsd2019.check_sample_submission(p) == fsd2019.CLASSES
    swapped = list(fsd2019.CLASSES)
    swapped[3], swapped[4] = swapped[4], swapped[3]
    p = _write(tmp_path / "sample_submission.csv", ",".join(["fname", *swapped]).encode())
    with pytest.raises(DataFormatError, match=r"sample_submission.csv:1: column 5 is 'Bark', expected 'Applause'"):
        fsd2019.check_sample_submission(p)


def test_fsd2018(tmp_path):
    _write(tmp_path / "train.csv", b"fname,label,manually_verified\n00044347.wav,Hi-hat,0\n001ca53d.wav,Saxophone,1\n")
    _write(tmp_path / "audio_train" / "001ca53d.wav", b"x")
    recs = fsd2018.load(tmp_path)
    assert [(r.fname, r.label, r.verified) for r in recs] == [("001ca53d.wav", "Saxophone", True)]
    assert len(fsd2018.load(tmp_path, verified_only=False, check_files=False)) == 2
    _write(tmp_path / "train.csv", b"fname,label,manually_verified\n00044347.wav,Hi-hat,yes\n")
    with pytest.raises(DataFormatError, match=r"train.csv:2: manually_verified must be 0 or 1"):
        fsd2018.load(tmp_path, check_files=False)


# ----------------------------------------------------------------------------- TAU-NIGENS

def test_nigens_metadata(tmp_path):
    p = _write(tmp_path / "m.csv", b"0,3,0,-50,10\n0,7,1,20,-10\n5,3,0,-40,10\r\n599,13,0,170,-40")
    rows = nigens2020.read_metadata(p)
    assert rows.shape == (4, 5) and rows.dtype == np.int64
    y = nigens2020.activity_matrix(rows)
    assert y.shape == (600, 14) and y.dtype == np.float32
    assert y.sum() == 4 and y[0, 3] == y[0, 7] == y[5, 3] == y[599, 13] == 1
    assert nigens2020.read_metadata(_write(tmp_path / "e.csv", b"")).shape == (0, 5)


@pytest.mark.parametrize("bad,match", [
    (b"0,3,0,-50,10\n12,14,0,0,0\n", r"m.csv:2: class 14 out of range \[0, 13\]"),
    (b"600,3,0,-50,10\n", r"m.csv:1: frame 600 out of range \[0, 599\]"),
    (b"0,3,0,-50\n", r"m.csv:1: expected 5 comma-separated integers"),
    (b"0,3,0,x,1\n", r"m.csv:1: azimuth 'x' is not an integer"),
])
def test_nigens_metadata_errors(tmp_path, bad, match):
    with pytest.raises(DataFormatError, match=match):
        nigens2020.read_metadata(_write(tmp_path / "m.csv", bad))


def test_nigens_load(tmp_path):
    for stem in ("fold1_room1_mix001_ov1", "fold1_room2_mix030_ov2", "fold6_room1_mix060_ov2"):
        _write(tmp_path / "metadata_dev" / f"{stem}.csv", b"0,1,0,0,0\n")
        _write(tmp_path / "mic_dev" / f"{stem}.wav", b"x")
    recs = nigens2020.load(tmp_path, folds=(1,))
    assert [(r.fold, r.room, r.mix, r.ov, r.fmt) for r in recs] == [(1, 1, 1, 1, "mic"), (1, 2, 30, 2, "mic")]
    assert recs[0].meta_path.name == "fold1_room1_mix001_ov1.csv" and recs[0].path.suffix == ".wav"
    with pytest.raises(DataFormatError, match="foa_dev: audio folder not found"):
        nigens2020.load(tmp_path, fmt="foa")
    (tmp_path / "mic_dev" / "fold6_room1_mix060_ov2.wav").unlink()
    _write(tmp_path / "mic_dev" / "fold6_room1_mix061_ov2.wav", b"x")
    with pytest.raises(DataFormatError, match=r"2 of 1 recordings are unpaired: fold6_room1_mix061_ov2.wav has no "
                                              r"metadata; fold6_room1_mix060_ov2.csv has no mic_dev wav"):
        nigens2020.load(tmp_path, folds=(6,))
    with pytest.raises(DataFormatError, match="bad TAU-NIGENS file name"):
        nigens2020.parse_nigens_name("fold7_room1_mix001_ov1.wav")


# ----------------------------------------------------------------------------- ESC-50 and hierarchy

ESC_CSV = (b"filename,fold,target,category,esc10,src_file,take\n"
           b"1-100032-A-0.wav,1,0,dog,True,100032,A\n"
           b"1-115545-C-48.wav,1,48,fireworks,False,115545,C\n"
           b"5-9032-A-0.wav,5,0,dog,True,9032,A\n")


def test_esc50(tmp_path):
    _write(tmp_path / "meta" / "esc50.csv", ESC_CSV)
    recs = esc50.load(tmp_path, check_files=False)
    assert [(r.fold, r.target, r.category, r.esc10, r.take) for r in recs] == [
        (1, 0, "dog", True, "A"), (1, 48, "fireworks", False, "C"), (5, 0, "dog", True, "A")]
    assert recs[1].path == tmp_path / "audio" / "1-115545-C-48.wav"
    hier = esc50.to_hier(recs)
    assert [(h.fine, h.coarse, h.fold) for h in hier] == [("dog", "animals", 1), ("fireworks", "exterior_urban", 1),
                                                          ("dog", "animals", 5)]
    _write(tmp_path / "cmap.csv", b"fine,coarse\ndog,pets\nfireworks,noise\n")
    hier = esc50.load_hier(tmp_path, tmp_path / "cmap.csv", check_files=False)
    assert [h.coarse for h in hier] == ["pets", "noise", "pets"]
    _write(tmp_path / "meta" / "esc50.csv", ESC_CSV.replace(b"48,fireworks", b"47,fireworks"))
    with pytest.raises(DataFormatError, match=r"esc50.csv:3: target 47 does not match category 'fireworks'"):
        esc50.load(tmp_path, check_files=False)
    _write(tmp_path / "meta" / "esc50.csv", ESC_CSV.replace(b"0,dog,True,100032", b"0,dgo,True,100032"))
    with pytest.raises(DataFormatError, match=r"esc50.csv:2: unknown category 'dgo' \(did you mean 'dog'"):
        esc50.load(tmp_path, check_files=False)


def test_class_map_and_folder_per_class(tmp_path):
    cmap_path = _write(tmp_path / "cmap.csv", b"fine,coarse\r\nsiren,urban\r\ndog,animal\r\ncat,animal")
    cmap = esc50.load_class_map(cmap_path)
    assert cmap == {"siren": "urban", "dog": "animal", "cat": "animal"}
    root = tmp_path / "data"
    for fine, n in (("siren", 10), ("dog", 7), ("cat", 5)):
        for i in range(n):
            _write(root / fine / f"{i:02d}.wav", b"x")
    recs = esc50.load_folder_per_class(root, cmap, seed=3)
    assert len(recs) == 22
    assert {r.coarse for r in recs if r.fine == "dog"} == {"animal"}
    siren_folds = Counter(r.fold for r in recs if r.fine == "siren")
    assert siren_folds == {1: 2, 2: 2, 3: 2, 4: 2, 5: 2}  # balanced per class
    assert recs == esc50.load_folder_per_class(root, cmap, seed=3)  # deterministic
    assert [r.fold for r in recs] != [r.fold for r in esc50.load_folder_per_class(root, cmap, seed=4)]
    _write(root / "dgo" / "x.wav", b"x")
    with pytest.raises(DataFormatError, match=r"dgo: unknown class folder 'dgo' \(did you mean 'dog'"):
        esc50.load_folder_per_class(root, cmap)
    with pytest.raises(DataFormatError, match=r"cmap.csv:3: duplicate fine class 'dog'"):
        esc50.load_class_map(_write(tmp_path / "cmap.csv", b"fine,coarse\ndog,a\ndog,b\n"))
    only_dog = tmp_path / "only_dog"
    _write(only_dog / "dog" / "a.wav", b"x")
    with pytest.raises(DataFormatError, match=r"1 of 2 classes have no audio: bird/ missing"):
        esc50.load_folder_per_class(only_dog, {"dog": "a", "bird": "b"})


def test_common_read_table_direct(tmp_path):
    p = _write(tmp_path / "t.csv", b"\n\nx\ty\n1\t2\n\n3\t4\n")
    header, rows = common.read_table(p, ("x", "y"))
    assert header == ("x", "y")
    assert [(r.line, r.fields) for r in rows] == [(4, ("1", "2")), (6, ("3", "4"))]
