"""Dataset readers against real reference metadata (shipped with the repository, see
tests/data/reference/README.md and tf_scenes/two_stage/reference/README.md) and hand-made bad files."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tf_scenes.datasets import common, esc50, fsd2018, fsd2019, nigens2020, tau2020, tree
from tf_scenes.errors import DataFormatError


# ----------------------------------------------------------------------------- real reference files

@pytest.fixture(scope="module")
def tau_tree_names(test_reference_dir):
    return tree.tree_files(test_reference_dir / "tree_tau2020_asc.txt.gz", under="audio", suffix=".wav")


def test_no_tensorflow_import():
    # The readers are light modules: importing them must not pull TensorFlow in.
    import subprocess

    code = ("import sys, tf_scenes.datasets, tf_scenes.datasets.tau2020; "
            "sys.exit(1 if 'tensorflow' in sys.modules or 'keras' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_fold1_train_real(fold1_train_csv):
    recs = tau2020.read_fold_csv(fold1_train_csv)
    assert len(recs) == 13965
    dev = Counter(r.device for r in recs)
    assert dev == {"a": 10215, "b": 750, "c": 750, "s1": 750, "s2": 750, "s3": 750}
    r0 = recs[0]
    assert r0.filename == "audio/airport-lisbon-1000-40000-a.wav"
    assert (r0.scene, r0.city, r0.location, r0.segment, r0.device) == ("airport", "lisbon", "1000", "40000", "a")
    assert r0.identifier == "lisbon-1000" and r0.clip_id == "airport-lisbon-1000-40000"
    assert r0.broad == "indoor"
    # default root for a bare csv is its folder; the last line (no final newline) is read
    assert r0.path == fold1_train_csv.parent / "audio/airport-lisbon-1000-40000-a.wav"
    assert (r0.source, r0.line) == (fold1_train_csv, 2)
    assert recs[-1].filename == "audio/tram-lyon-1112-41171-s3.wav"
    assert set(r.scene for r in recs) == set(tau2020.SCENES)


def test_fold1_evaluate_real_crlf(reference_dir, fold1_train_csv):
    assert b"\r\n" in (reference_dir / "tau2020_fold1_evaluate.csv").read_bytes()[:100]
    recs = tau2020.read_fold_csv(reference_dir / "tau2020_fold1_evaluate.csv")
    assert len(recs) == 2970
    assert Counter(r.device for r in recs) == {d: 330 for d in tau2020.DEVICES}
    assert not any(r.scene.endswith("\r") or r.filename.endswith("\r") for r in recs)
    # train and evaluate are disjoint, and s4-s6 appear only in evaluate
    train = tau2020.read_fold_csv(fold1_train_csv)
    assert not {r.filename for r in train} & {r.filename for r in recs}
    # the same through the reader-level check, which compares real paths (one root for both)
    common.check_disjoint(train, tau2020.read_fold_csv(reference_dir / "tau2020_fold1_evaluate.csv",
                                                       root=fold1_train_csv.parent))


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


def test_tau_tree_covers_fold_csvs(reference_dir, fold1_train_csv, tau_tree_names):
    on_disk = set(tau_tree_names)
    for csv in (fold1_train_csv, reference_dir / "tau2020_fold1_evaluate.csv"):
        listed = {r.filename for r in tau2020.read_fold_csv(csv)}
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


def test_fsd2019_tree_and_kfold(test_reference_dir):
    names = tree.tree_files(test_reference_dir / "tree_fsdkaggle2019_tag.txt.gz", under="train_curated",
                            suffix=".wav")
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


def test_nigens_tree(test_reference_dir):
    listing = tree.read_tree(test_reference_dir / "tree_tau_nigens2020_sed.txt.gz")
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


# ----------------------------------------------------------------------------- rows inside the root,
# aliases, train/evaluation overlap, missing files (every list reader, through its public load)

def _yaml_mixtures(names) -> str:
    import yaml

    return yaml.safe_dump([{"name": n, "fold": 1, "scene_file": "audio/s.wav",
                            "events": [{"event_file": "e.wav", "label": "Bark", "onset": 0.5, "offset": 1.5}]}
                           for n in names], sort_keys=False)


class ListedData:
    """A tiny copy of one dataset format: a list file naming audio files under `base`.

    `entries` are clip keys ("c0", "c1", ...); `spell` maps a key to the name written in the list
    (default: the format's own spelling).  Every clip file is created unless in `absent`.
    """

    KINDS = ("tau", "fsd2019", "fsd2018", "esc50", "remix")

    def __init__(self, kind, tmp):
        tmp = Path(os.path.realpath(tmp))  # messages name real paths (/tmp may be a symlink)
        self.kind, self.tmp = kind, tmp
        self.root = tmp / "ds"
        self.outside = tmp / "outside"
        self.outside.mkdir(parents=True, exist_ok=True)
        self.base, self.list_path, self.first_line = {
            "tau": (self.root, self.root / "evaluation_setup" / "fold1_train.csv", 2),
            "fsd2019": (self.root / "train_curated", self.root / "train_curated.csv", 2),
            "fsd2018": (self.root / "audio_train", self.root / "train.csv", 2),
            "esc50": (self.root / "audio", self.root / "meta" / "esc50.csv", 2),
            "remix": (self.root, self.root / "mixture.yaml", 1),
        }[kind]

    def name(self, key: str) -> str:
        """The format's own name of clip `key` (relative to `base`)."""
        i = int(key[1:])
        return {"tau": f"audio/bus-paris-{i}-4-s1.wav", "fsd2019": f"{i:08x}.wav", "fsd2018": f"{i:08x}.wav",
                "esc50": f"1-{100000 + i}-A-0.wav", "remix": f"{i:05d}"}[self.kind]

    def file(self, name: str) -> str:
        """The audio file of a listed name, relative to `base`."""
        return f"audio/{name}.wav" if self.kind == "remix" else name

    def line_of(self, index: int) -> int:
        if self.kind == "remix":  # the line of the index-th "- name: ..." item
            lines = self.list_path.read_text().splitlines()
            return [n for n, t in enumerate(lines, start=1) if t.startswith("- ")][index]
        return self.first_line + index

    def write(self, entries, spell=None, absent=(), list_path=None) -> Path:
        spell = spell or {}
        names = [spell.get(k, self.name(k)) for k in entries]
        header = {"tau": "filename\tscene_label", "fsd2019": "fname,labels", "fsd2018": "fname,label,manually_verified",
                  "esc50": "filename,fold,target,category,esc10,src_file,take"}.get(self.kind)
        rows = {"tau": lambda n: f"{n}\tbus", "fsd2019": lambda n: f"{n},Bark", "fsd2018": lambda n: f"{n},Bark,1",
                "esc50": lambda n: f"{n},1,0,dog,True,{Path(n).name.split('-')[1]},A"}.get(self.kind)
        text = _yaml_mixtures(names) if self.kind == "remix" else "\n".join([header, *map(rows, names)]) + "\n"
        path = _write(list_path or self.list_path, text.encode())
        for k in entries:
            if k not in absent:
                target = self.base / self.file(self.name(k))
                if not target.exists():
                    _write(target, b"x")
        return path

    def load(self, **kw):
        if self.kind == "tau":
            return tau2020.load(self.root, "train", **kw)
        if self.kind == "fsd2019":
            return fsd2019.load(self.root, "curated", **kw)
        if self.kind == "fsd2018":
            return fsd2018.load(self.root, **kw)
        if self.kind == "esc50":
            return esc50.load(self.root, **kw)
        from tf_scenes.weak_sed.remix import read_remix

        return read_remix(self.root, classes=fsd2018.CLASSES, **kw)

    def read(self, list_path, **kw):
        """Records of another list file of the same dataset (a second split)."""
        if self.kind == "tau":
            return tau2020.read_fold_csv(list_path, self.root, **kw)
        if self.kind == "fsd2019":
            return fsd2019.read_tag_csv(list_path, self.base, **kw)
        if self.kind == "fsd2018":
            return fsd2018.read_train_csv(list_path, self.base, **kw)
        if self.kind == "esc50":
            return esc50.read_esc50_csv(list_path, self.base, **kw)
        from tf_scenes.weak_sed.remix import read_remix

        return read_remix(list_path.parent, classes=fsd2018.CLASSES, **kw)

    def outside_file(self, key: str) -> Path:
        return _write(self.outside / Path(self.file(self.name(key))).name, b"x")

    def expect(self, index: int, problem: str) -> str:
        """Regex of the error for the entry at `index`: the list file, its line, the problem."""
        where = re.escape(f"{self.list_path}:{self.line_of(index)}: ")
        return where + (f"mixture {index + 1}: " if self.kind == "remix" else "") + problem

    def other_list(self) -> Path:
        return self.list_path.with_name("evaluate" + self.list_path.suffix)


@pytest.fixture(params=ListedData.KINDS)
def listed(request, tmp_path):
    return ListedData(request.param, tmp_path)


def test_absolute_row_is_refused_unless_opted_in(listed):
    outside = listed.outside_file("c1")
    absolute = str(outside)[: -len(".wav")] if listed.kind == "remix" else str(outside)
    listed.write(["c0", "c1"], spell={"c1": absolute}, absent={"c1"})
    problem = r"absolute path .*must lie inside the (dataset root|remix folder).*allow_outside_root=True"
    with pytest.raises(DataFormatError, match=listed.expect(1, problem)):
        listed.load()
    recs = listed.load(allow_outside_root=True)
    assert [r.path for r in recs] == [listed.base / listed.file(listed.name("c0")), outside]


def test_dotdot_row_is_refused_unless_opted_in(listed):
    outside = listed.outside_file("c1")
    rel = os.path.relpath(outside, listed.base if listed.kind != "remix" else listed.base / "audio")
    listed.write(["c0", "c1"], spell={"c1": rel[: -len(".wav")] if listed.kind == "remix" else rel}, absent={"c1"})
    with pytest.raises(DataFormatError, match=listed.expect(1, r"'\.\.' segment")):
        listed.load()
    recs = listed.load(allow_outside_root=True)
    assert [os.path.realpath(r.path) for r in recs][1] == os.path.realpath(outside)


def test_symlink_leaving_the_root_is_refused_unless_opted_in(listed):
    outside = listed.outside_file("c1")
    listed.write(["c0", "c1"], absent={"c1"})
    link = listed.base / listed.file(listed.name("c1"))
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    problem = (r".* resolves to " + re.escape(os.path.realpath(outside))
               + r", outside the (dataset root|remix folder) .*a symlink")
    with pytest.raises(DataFormatError, match=listed.expect(1, problem)):
        listed.load()
    recs = listed.load(allow_outside_root=True)
    assert recs[1].path == link and len(recs) == 2
    # a symlink that stays inside the root needs no opt-in
    store = _write(listed.root / "store" / link.name, b"x")
    link.unlink()
    link.symlink_to(store)
    assert [r.path for r in listed.load()] == [listed.base / listed.file(listed.name("c0")), link]


@pytest.mark.parametrize("how", ["dot", "symlink"])
def test_alias_duplicate_names_both_lines(listed, how):
    first = listed.name("c0")
    if how == "dot":
        head, _, tail = first.rpartition("/")
        alias = f"{head}/./{tail}" if head else f"./{tail}"
        listed.write(["c0", "c1", "c2"], spell={"c2": alias})
    else:
        listed.write(["c0", "c1"])
        alias = listed.name("c2")
        (listed.base / listed.file(alias)).symlink_to(listed.base / listed.file(first))
        listed.write(["c0", "c1", "c2"], absent={"c2"})
    first_line = listed.line_of(0)
    same = (rf"name {re.escape(repr(alias))} is the same file as mixture 1 \('{first}', line {first_line}\)"
            if listed.kind == "remix" else
            rf"{re.escape(repr(alias))} is the same file as {re.escape(repr(first))} \(line {first_line}\)")
    with pytest.raises(DataFormatError, match=listed.expect(2, same)):
        listed.load()


def test_clip_in_two_lists_names_both_files_and_lines(listed):
    train = listed.read(listed.write(["c0", "c1", "c2"]))
    other = (listed.root / "other" / "mixture.yaml" if listed.kind == "remix"
             else listed.list_path.with_name("evaluate" + listed.list_path.suffix))
    if listed.kind == "remix":
        # a second SNR folder whose mixture 00002 is the same file as the first folder's
        (other.parent / "audio").mkdir(parents=True)
        (other.parent / "audio" / "00002.wav").symlink_to(listed.root / "audio" / "00002.wav")
        _write(other.parent / "audio" / "00007.wav", b"x")
        _write(other, _yaml_mixtures(["00007", "00002"]).encode())
        evaluate = listed.read(other, allow_outside_root=True)
    else:
        evaluate = listed.read(listed.write(["c7", "c2"], list_path=other))
    common.check_disjoint(train, evaluate[:1])  # c7 alone: disjoint
    with pytest.raises(DataFormatError) as e:
        common.check_disjoint(train, evaluate)
    msg = str(e.value)
    name = listed.name("c2")
    assert msg.startswith(f"{listed.list_path}:{listed.line_of(2)}: {name!r} is in the training list and also in "
                          f"the evaluation list {other}:{listed.line_of(1)}"), msg


def test_missing_files_skip_mode_reports_them(listed, caplog):
    listed.write([f"c{i}" for i in range(8)], absent={"c2", "c5"})
    with pytest.raises(DataFormatError, match=re.escape(str(listed.list_path)) + r"(:\d+)?: 2 of 8 "):
        listed.load()
    report = common.LoadReport()
    with caplog.at_level(logging.INFO):
        recs = listed.load(missing="skip", report=report)
    assert len(recs) == 6 and all(r.path.is_file() for r in recs)
    assert [(s.name, s.line, s.listed_in) for s in report.skipped] == [
        (listed.name(k), listed.line_of(i), str(listed.list_path)) for i, k in ((2, "c2"), (5, "c5"))]
    assert [s.path for s in report.skipped] == [str(listed.base / listed.file(listed.name(k))) for k in ("c2", "c5")]
    assert report.to_dict()["n_skipped"] == 2
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "skipped 2 of 8" in lines[0] and "missing='skip'" in lines[0], lines
    assert listed.name("c2") in lines[0] and listed.name("c5") in lines[0]
    if listed.kind != "remix":
        assert len(listed.load(check_files=False)) == 8  # unchanged: the list alone
    with pytest.raises(ValueError, match="missing must be one of 'error', 'skip'"):
        listed.load(missing="ignore")


def test_skip_mode_still_refuses_a_list_whose_files_are_all_missing(listed):
    listed.write(["c0", "c1"], absent={"c0", "c1"})
    with pytest.raises(DataFormatError, match=re.escape(str(listed.list_path)) + r"(:\d+)?: (all 2 listed|2 of 2) "):
        listed.load(missing="skip", report=common.LoadReport())


def test_tau_fold1_train_and_evaluate_share_no_clip(tmp_path):
    _tau_csv(tmp_path, rows=ROWS[:2])
    _write(tmp_path / "evaluation_setup" / "fold1_evaluate.csv",
           b"filename\tscene_label\r\naudio/tram-lyon-1-2-s5.wav\ttram\r\n")
    train, evaluate = tau2020.load_fold1(tmp_path, check_files=False)
    assert [r.device for r in train] == ["a", "s1"] and [r.device for r in evaluate] == ["s5"]
    # the same clip, spelled differently, in both lists
    _write(tmp_path / "evaluation_setup" / "fold1_evaluate.csv",
           b"filename\tscene_label\r\naudio/tram-lyon-1-2-s5.wav\ttram\r\naudio/./bus-paris-3-4-s1.wav\tbus\r\n")
    with pytest.raises(DataFormatError, match=re.escape(
            f"{tmp_path / 'evaluation_setup' / 'fold1_train.csv'}:3: 'audio/bus-paris-3-4-s1.wav' is in the training "
            f"list and also in the evaluation list {tmp_path / 'evaluation_setup' / 'fold1_evaluate.csv'}:3 "
            "('audio/./bus-paris-3-4-s1.wav')")):
        tau2020.load_fold1(tmp_path, check_files=False)


def test_fsd2019_kfold_split_of_combined_lists_refuses_a_clip_on_both_sides(tmp_path):
    rows = ("fname,labels\n" + "".join(f"{i:08x}.wav,Bark\n" for i in range(10))).encode()
    _write(tmp_path / "train_curated.csv", rows)
    _write(tmp_path / "extra.csv", rows)
    curated = fsd2019.load(tmp_path, check_files=False)
    tr, va = fsd2019.kfold_split(curated)
    assert (len(tr), len(va)) == (8, 2)
    extra = fsd2019.read_tag_csv(tmp_path / "extra.csv", tmp_path / "train_curated")
    with pytest.raises(DataFormatError, match=re.escape(str(tmp_path)) + r"/(train_curated|extra).csv:\d+: "
                       r"'[0-9a-f]{8}\.wav' is in the training list and also in the validation list "
                       r".*(train_curated|extra).csv:\d+"):
        fsd2019.kfold_split(curated + extra)


def _nigens(root, stems, wav_links=None):
    for stem in stems:
        _write(root / "metadata_dev" / f"{stem}.csv", b"0,1,0,0,0\n")
        if stem not in (wav_links or {}):
            _write(root / "mic_dev" / f"{stem}.wav", b"x")
    for stem, target in (wav_links or {}).items():
        (root / "mic_dev" / f"{stem}.wav").symlink_to(target)
    return root


def test_nigens_symlinks_aliases_overlap_and_skip(tmp_path, caplog):
    tmp_path = Path(os.path.realpath(tmp_path))  # messages name real paths
    outside = _write(tmp_path / "outside" / "x.wav", b"x")
    root = _nigens(tmp_path / "nig", ["fold1_room1_mix001_ov1", "fold3_room1_mix001_ov1"],
                   {"fold3_room1_mix002_ov1": outside})
    _write(root / "metadata_dev" / "fold3_room1_mix002_ov1.csv", b"")
    with pytest.raises(DataFormatError, match=re.escape(f"{root}: 'mic_dev/fold3_room1_mix002_ov1.wav' resolves to "
                                                        f"{outside}, outside the dataset root {root}")):
        nigens2020.load(root, folds=(3,))
    assert [r.path.name for r in nigens2020.load(root, folds=(3,), allow_outside_root=True)] == [
        "fold3_room1_mix001_ov1.wav", "fold3_room1_mix002_ov1.wav"]
    # a training wav that is the evaluation fold's recording: an alias inside one load, an overlap across two
    (root / "mic_dev" / "fold3_room1_mix002_ov1.wav").unlink()
    (root / "mic_dev" / "fold3_room1_mix002_ov1.wav").symlink_to(root / "mic_dev" / "fold3_room1_mix001_ov1.wav")
    with pytest.raises(DataFormatError, match=re.escape(f"{root}: 'mic_dev/fold3_room1_mix002_ov1.wav' is the same "
                                                        "file as 'mic_dev/fold3_room1_mix001_ov1.wav'")):
        nigens2020.load(root, folds=(3,))
    (root / "mic_dev" / "fold3_room1_mix002_ov1.wav").unlink()
    (root / "mic_dev" / "fold3_room1_mix002_ov1.wav").symlink_to(root / "mic_dev" / "fold1_room1_mix001_ov1.wav")
    train, test = nigens2020.load(root, folds=(3,)), nigens2020.load(root, folds=(1,))
    meta, wav = root / "metadata_dev", root / "mic_dev"
    with pytest.raises(DataFormatError, match=re.escape(
            f"{meta / 'fold3_room1_mix002_ov1.csv'}: '{wav / 'fold3_room1_mix002_ov1.wav'}' is in the training "
            f"list and also in the evaluation list {meta / 'fold1_room1_mix001_ov1.csv'}")):
        common.check_disjoint(train, test)
    # missing wavs: one error, or skipped and reported with their metadata file
    (root / "mic_dev" / "fold3_room1_mix002_ov1.wav").unlink()
    _write(root / "metadata_dev" / "fold3_room1_mix003_ov1.csv", b"")
    with pytest.raises(DataFormatError, match="2 of 3 recordings are unpaired: fold3_room1_mix002_ov1.csv has no "):
        nigens2020.load(root, folds=(3,))
    report = common.LoadReport()
    with caplog.at_level(logging.INFO):
        recs = nigens2020.load(root, folds=(3,), missing="skip", report=report)
    assert [r.path.name for r in recs] == ["fold3_room1_mix001_ov1.wav"]
    assert [(s.name, s.listed_in, s.line) for s in report.skipped] == [
        (f"fold3_room1_mix00{k}_ov1.wav", str(root / "metadata_dev" / f"fold3_room1_mix00{k}_ov1.csv"), None)
        for k in (2, 3)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"{root / 'metadata_dev'}: skipped 2 of 3 listed mic_dev wavs")
    # a wav without metadata is not a missing file: still an error in skip mode
    _write(root / "mic_dev" / "fold3_room1_mix009_ov1.wav", b"x")
    with pytest.raises(DataFormatError, match="fold3_room1_mix009_ov1.wav has no metadata"):
        nigens2020.load(root, folds=(3,), missing="skip")


def test_folder_per_class_symlinks_and_aliases(tmp_path):
    tmp_path = Path(os.path.realpath(tmp_path))  # messages name real paths
    outside = _write(tmp_path / "outside" / "far.wav", b"x")
    root = tmp_path / "classes"
    for fine in ("dog", "cat"):
        _write(root / fine / "a.wav", b"x")
    (root / "dog" / "b.wav").symlink_to(outside)
    cmap = {"dog": "animal", "cat": "animal"}
    with pytest.raises(DataFormatError, match=re.escape(f"{root}: 'dog/b.wav' resolves to {outside}, outside the "
                                                        f"dataset root {root}")):
        esc50.load_folder_per_class(root, cmap)
    recs = esc50.load_folder_per_class(root, cmap, allow_outside_root=True)
    assert sorted(str(r.path.relative_to(root)) for r in recs) == ["cat/a.wav", "dog/a.wav", "dog/b.wav"]
    (root / "dog" / "b.wav").unlink()
    (root / "dog" / "b.wav").symlink_to(root / "cat" / "a.wav")
    with pytest.raises(DataFormatError, match=re.escape(f"{root}: 'cat/a.wav' is the same file as 'dog/b.wav': "
                                                        f"both resolve to {root / 'cat' / 'a.wav'}")):
        esc50.load_folder_per_class(root, cmap)


def test_hier_records_keep_the_csv_line(tmp_path):
    _write(tmp_path / "meta" / "esc50.csv", ESC_CSV)
    hier = esc50.load_hier(tmp_path, check_files=False)
    assert [(h.source, h.line) for h in hier] == [(tmp_path / "meta" / "esc50.csv", n) for n in (2, 3, 4)]


def test_windows_spellings_are_outside_too():
    assert common.outside_spelling("C:\\data\\x.wav") == "absolute path"
    assert common.outside_spelling("\\\\server\\x.wav") == "absolute path"
    assert common.outside_spelling("audio\\..\\x.wav") == "'..' segment"
    assert common.outside_spelling("audio/..x.wav") is None and common.outside_spelling("audio/x.wav") is None


def test_tree_listing_reads_gzip(tmp_path, test_reference_dir):
    import gzip

    text = "root\n├── a\n│   └── x.wav\n└── b.csv\n"
    _write(tmp_path / "t.txt.gz", gzip.compress(text.encode()))
    assert tree.read_tree(tmp_path / "t.txt.gz") == ["a", "a/x.wav", "b.csv"]
    _write(tmp_path / "bad.txt.gz", b"not gzip")
    with pytest.raises(DataFormatError, match=r"bad.txt.gz: not a readable gzip file"):
        tree.read_tree(tmp_path / "bad.txt.gz")


def _readme_hashes(readme: Path) -> dict[str, str]:
    """{file: sha256} from the table of a reference README (last column = hash of the original)."""
    out = {}
    for line in readme.read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"[0-9a-f]{64}", cells[-1]):
            out[cells[0]] = cells[-1]
    return out


def test_shipped_reference_files_are_the_originals(test_reference_dir):
    """Each copy in tests/data/reference is gzip of the original, byte for byte (hashes in its README)."""
    import gzip
    import hashlib

    hashes = _readme_hashes(test_reference_dir / "README.md")
    shipped = sorted(p.name for p in test_reference_dir.glob("*.gz"))
    assert sorted(hashes) == shipped == ["tau2020_fold1_train.csv.gz", "tree_fsdkaggle2019_tag.txt.gz",
                                         "tree_tau2020_asc.txt.gz", "tree_tau_nigens2020_sed.txt.gz"]
    for name in shipped:
        data = gzip.decompress((test_reference_dir / name).read_bytes())
        assert hashlib.sha256(data).hexdigest() == hashes[name], name
