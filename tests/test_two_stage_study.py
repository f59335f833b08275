"""The two-stage study on its tiny profile: what is particular to it (the paper's rows, fusion by
filename, the exported system, CAM figures). The contract every study keeps is tested in
tests/test_families.py on the same tiny run."""

import json
from pathlib import Path

import numpy as np
import pytest

from tf_scenes.experiments.two_stage import plan as two_stage



@pytest.fixture
def study(tiny_study):
    s = tiny_study("two_stage")
    return s.cfg, s.out, s.report


def test_tables_have_every_row_with_paper_numbers(study):
    cfg, out, _ = study
    t2 = json.loads((out / "table2.json").read_text())
    systems = [r["key"] for r in t2["rows"]]
    assert systems == ["resnet10", "fcnn10", "fsfcnn10", "ensemble10", "2stage_resnet10", "2stage_fcnn10",
                       "2stage_fsfcnn10", "2stage_ensemble10"]
    assert [r["paper"] for r in t2["rows"]] == [74.6, 76.9, 76.2, 79.4, 77.7, 80.1, 79.0, 81.9]
    assert "row by row" in t2["rows"][-1]["note"]
    assert t2["synthetic"] is True and "SYNTHETIC" in t2["data"] and t2["banner"].startswith("SYNTHETIC DATA")
    for r in t2["rows"]:
        assert set(r) >= {"A", "B&C", "s1-s3", "s4-s6", "average"}
        assert all(0 <= r[g] <= 100 for g in ("A", "B&C", "s1-s3", "s4-s6", "average"))
    t1 = json.loads((out / "table1.json").read_text())
    assert [r["paper"] for r in t1["rows"]] == [91.4, 92.9, 93.2]
    t3 = json.loads((out / "table3.json").read_text())
    assert [r["key"] for r in t3["rows"]] == list(cfg.table3)
    md = (out / "table2.md").read_text()
    assert "SYNTHETIC DATA" in md and "| 2-stage: ensemble x 3-class ensemble |" in md


def test_tables_agree_with_saved_scores(study):
    """Table numbers are recomputed from each run's filename-keyed score file."""
    from tf_scenes.datasets import tau2020

    cfg, out, _ = study
    t2 = {r["key"]: r for r in json.loads((out / "table2.json").read_text())["rows"]}
    lines = (out / "runs" / "fcnn10" / "scores_evaluate.tsv").read_text().splitlines()
    header, rows = lines[0].split("\t"), [line.split("\t") for line in lines[1:]]
    assert header[1:] == list(tau2020.SCENES)
    pred = {r[0]: header[1 + int(np.argmax([float(v) for v in r[1:]]))] for r in rows}
    recs = tau2020.load(Path(cfg.data.synthetic_dir) / "TAU-urban-acoustic-scenes-2020-mobile-development", "evaluate")
    per_dev = {}
    for rec in recs:
        per_dev.setdefault(rec.device, []).append(pred[rec.filename] == rec.scene)
    assert np.isclose(t2["fcnn10"]["s4-s6"], round(100 * np.mean([np.mean(per_dev[d]) for d in ("s4", "s5", "s6")]), 2))
    assert np.isclose(t2["fcnn10"]["acc"], round(100 * np.mean([p for v in per_dev.values() for p in v]), 2))


def test_cam_figures_and_per_device_bars(study):
    cfg, out, _ = study
    figs = sorted(p.name for p in (out / "figures").iterdir())
    assert "per_device_accuracy.png" in figs and "confusion_ensemble10.png" in figs
    assert sum(f.startswith("cam_") and f.endswith(".png") for f in figs) == cfg.cam_clips
    # every figure is written as PNG and, beside it, as PDF
    assert sorted(f[:-4] for f in figs if f.endswith(".pdf")) == sorted(f[:-4] for f in figs if f.endswith(".png"))
    assert "acc/group_s4-s6" in json.loads((out / "runs" / "resnet10" / "metrics.json").read_text())


def test_a_run_retrained_alone_repeats_its_study_result(study):
    """Each run is seeded by itself: retraining only the last run (as a resumed study does, with
    the earlier runs reused and the offline augmentation read from its cache) gives the same
    training history and evaluation scores, bit for bit on CPU, as inside the full study."""
    import csv
    import shutil

    from tf_scenes.experiments.reproduce import get_study
    from tf_scenes.experiments.study import run_study

    cfg, out, _ = study
    name = list(cfg.models)[-1]
    run_dir = out / "runs" / name

    def history():
        with open(run_dir / "history.csv") as f:
            return [{k: v for k, v in row.items() if k != "time_s"} for row in csv.DictReader(f)]

    before, scores_before = history(), (run_dir / "scores_evaluate.tsv").read_text()
    shutil.rmtree(run_dir)
    run_study(get_study("two_stage"), cfg, out, cache_dir=out.parent / "cache")
    assert len(before) == cfg.models[name].epochs
    assert history() == before
    assert (run_dir / "scores_evaluate.tsv").read_text() == scores_before


def test_exported_system_matches_keras(study):
    import tensorflow as tf

    from tf_scenes.export import read_export_metadata
    from tf_scenes.model_io import load_run_model
    from tf_scenes.two_stage.system import two_stage_system

    cfg, out, _ = study
    export = out / "export" / "two_stage_system"
    meta, labels = read_export_metadata(export)
    assert meta["input"]["sample_rate"] == 44100 and labels["broad"] == ["indoor", "outdoor", "transportation"]
    loaded = tf.saved_model.load(str(export)).signatures["serving_default"]
    wav = np.random.default_rng(0).normal(0, 0.1, (2, 441000)).astype(np.float32)
    got = {k: v.numpy() for k, v in loaded(waveform=tf.constant(wav)).items()}
    m10 = {m: load_run_model(out / "runs" / m)[0] for m in cfg.ensemble10}
    m3 = {m: load_run_model(out / "runs" / m)[0] for m in cfg.ensemble3}
    want = two_stage_system(m10, m3)(wav)
    for k in ("scene", "broad", "fused"):
        np.testing.assert_allclose(got[k], np.asarray(want[k]), atol=1e-5)
        np.testing.assert_allclose(got[k].sum(1), 1.0, atol=1e-5)
    # fused = P10[c] * P3[broad(c)], renormalised
    from tf_scenes.datasets.tau2020 import BROAD_CLASSES, SCENE_TO_BROAD, SCENES

    p3 = got["broad"][:, [BROAD_CLASSES.index(SCENE_TO_BROAD[s]) for s in SCENES]]
    fused = got["scene"] * p3
    np.testing.assert_allclose(got["fused"], fused / fused.sum(1, keepdims=True), atol=1e-5)


def test_location_split_holds_out_whole_locations():
    from tf_scenes.datasets.tau2020 import AscRecord

    recs = []
    for scene in ("airport", "park"):
        for loc in range(5):
            for dev in ("a", "b"):
                recs.append(AscRecord(Path(f"{scene}{loc}{dev}.wav"), f"audio/{scene}-x-{loc}-0-{dev}.wav", scene, "x",
                                      str(loc), "0", dev, f"x-{scene}{loc}", f"{scene}-x-{loc}-0", "indoor"))
    train, val = two_stage.location_split(recs, 0.2, seed=1)
    assert len(train) + len(val) == len(recs) and val
    assert not {r.identifier for r in train} & {r.identifier for r in val}
    assert {r.scene for r in train} == {"airport", "park"}


# ---- shipping: export / predict / saliency commands on the tiny study's models ----------------


def _eval_wav(cfg, device="s4"):
    from tf_scenes.datasets import tau2020

    recs = tau2020.load(Path(cfg.data.synthetic_dir) / "TAU-urban-acoustic-scenes-2020-mobile-development", "evaluate")
    return next(r for r in recs if r.device == device)


def test_export_predict_and_saliency_commands(study, tmp_path, capsys):
    import soundfile as sf

    from tf_scenes.experiments import cli

    cfg, out, _ = study
    rec = _eval_wav(cfg)
    # export one run (FCNN, Grad-CAM model) with a TFLite conversion checked against Keras
    assert cli.main(["export", str(out / "runs" / "fcnn3"), "--out", str(tmp_path / "fcnn3"), "--tflite"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert max(res["tflite"]["max_abs_diff"].values()) < 1e-3 and Path(res["tflite"]["path"]).exists()
    # export the whole study (two-stage system) and predict with it, incl. a 48 kHz stereo file
    assert cli.main(["export", str(out), "--out", str(tmp_path / "system")]) == 0
    capsys.readouterr()
    x, sr = sf.read(rec.path)
    import soxr

    stereo = np.stack([soxr.resample(x, sr, 48000)] * 2, axis=1)
    sf.write(tmp_path / "stereo48k.wav", stereo, 48000, subtype="PCM_16")
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00")
    code = cli.main(["predict", str(tmp_path / "system"), str(rec.path), str(tmp_path / "stereo48k.wav"),
                     str(tmp_path / "broken.wav")])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.strip().splitlines()]
    assert code == 2 and len(lines) == 2 and "broken.wav" in captured.err
    for line in lines:
        assert set(line["outputs"]) == {"scene", "broad", "fused"}
        assert len(line["outputs"]["fused"]["top"]) == 3
    # resampled + down-mixed file gives (nearly) the same scores as the original
    a = dict(lines[0]["outputs"]["scene"]["top"])
    b = dict(lines[1]["outputs"]["scene"]["top"])
    top = lines[0]["outputs"]["scene"]["top"][0][0]
    assert abs(a[top] - b.get(top, 0)) < 0.05
    # saliency: study folder (3-class and 10-class CAM side by side), run folder, export folder
    for target, n_panels in ((out, 2), (out / "runs" / "fcnn10", 1), (tmp_path / "system", 2)):
        fig = tmp_path / f"sal_{n_panels}_{Path(target).name}.png"
        assert cli.main(["saliency", str(target), str(rec.path), "--out", str(fig), "--class", rec.scene]) == 0
        info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert fig.stat().st_size > 5000 and len(info["panels"]) == n_panels
    assert "3-class" in info["panels"][0] and "10-class" in info["panels"][1]


def test_saliency_and_predict_reject_bad_input(study, tmp_path, capsys):
    from tf_scenes.experiments import cli

    cfg, out, _ = study
    rec = _eval_wav(cfg)
    assert cli.main(["saliency", str(out / "runs" / "fcnn10"), str(rec.path), "--out", str(tmp_path / "x.png"),
                     "--class", "not_a_scene"]) == 2
    assert "unknown class 'not_a_scene'" in capsys.readouterr().err
    assert cli.main(["saliency", str(tmp_path), str(rec.path), "--out", str(tmp_path / "x.png")]) == 2
    assert "not a model run folder" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path), str(rec.path)]) == 2
    assert "not a tf-scenes export" in capsys.readouterr().err


# ---- augmentation modes: offline (files, the tiny study above) and online (in the pipeline) ----


def _online(cfg, **changes):
    """The tiny config in online mode, with a bank of 2 rooms (each takes ~1 s to simulate)."""
    import dataclasses

    return dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, mode="online", rir_bank_size=2,
                                                                **changes))


@pytest.fixture(scope="module")
def online_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("online_cache")


@pytest.fixture(scope="module")
def both_modes(tiny_study, online_cache):
    """(cfg, offline Data from the tiny study's caches, online Data prepared into its own cache)."""
    from tf_scenes.experiments.study import StudyEnv

    s = tiny_study("two_stage")
    off = two_stage.prepare(s.cfg, StudyEnv(s.out, s.cache, s.study, s.cfg))
    cfg_on = _online(s.cfg)
    on = two_stage.prepare(cfg_on, StudyEnv(s.out, online_cache, s.study, cfg_on))
    return s.cfg, off, on


def test_online_training_set_is_the_offline_one(both_modes, online_cache):
    """Online mode trains every run on the clips offline mode trains it on: the originals plus one
    copy per (chosen device-A source, kind of the run), same names, labels and order, with the
    same clips left out (same_class_mix without a partner of another recording). Nothing is
    written but the stored clips' features, the device ratio and the room bank. Spectrum
    correction draws nothing, so its online copy (decode, augment, front-end in the pipeline)
    equals the offline file's cached features up to the file's 24-bit rounding."""
    import tensorflow as tf

    cfg, off, on = both_modes
    assert on.online is not None and off.online is None
    assert [r.filename for r in on.aug_records] == [r.filename for r in off.aug_records]
    assert len(off.aug_records) == 5  # tiny: 1 source x 6 kinds, no same-class partner
    assert len(off.features) == len(on.features) + len(off.aug_records)  # online caches only the originals
    for name, mrun in cfg.models.items():
        a, b = two_stage.with_augmentations(off, mrun.offline), two_stage.with_augmentations(on, mrun.offline)
        assert [r.filename for r in a.records] == [r.filename for r in b.records], name
        for n in (10, 3):
            np.testing.assert_array_equal(a.labels(n), b.labels(n))
        n_aug = len(a.records) - len(off.train.records)
        assert (b.computed is None and n_aug == 0) or len(b.computed) == n_aug, name
    # the online records point at their source clip, which the pipeline decodes
    src = {r.filename: r for r in on.train.records}
    for r, (row, k) in zip(on.aug_records, on.online.sources):
        assert on.train.records[row].path == r.path and r.filename.endswith(f"-{on.online.kinds[k]}.wav")
        assert src[on.train.records[row].filename].scene == r.scene
    assert sorted(p.name for p in online_cache.iterdir()) == ["augment", "features"]
    assert sorted(p.suffix for p in (online_cache / "augment").iterdir()) == [".npy", ".npz"]  # ratio, rooms
    # spectrum correction: online features == offline features (cached from the written file)
    j = next(i for i, r in enumerate(on.aug_records) if r.filename.endswith("-spectrum_correction.wav"))
    computed = on.online.computed(on.online.sources[j:j + 1])
    got = tf.function(computed.fn)(tf.constant(0, tf.int64), tf.constant(0, tf.int64)).numpy()  # as in tf.data
    want = np.asarray(off.features[off.aug_offset + j])
    assert got.shape == want.shape == (423, 128, 3)
    print("spectrum correction, online vs offline features: max abs", np.abs(got - want).max())
    assert np.abs(got - want).max() < 1e-3, np.abs(got - want).max()


def test_online_batches_are_seeded_and_resume(both_modes, online_cache):
    """Same seed, same batches; a run resumed at epoch 1 gets exactly the batches an uninterrupted
    run gets from epoch 1 on, in both draw modes; "fixed" gives a clip the same copy every epoch,
    "fresh" a new one."""
    import dataclasses

    import tensorflow as tf

    cfg, _, on = both_modes
    kinds = ["speed_change", "noise"]  # two cheap kinds: each data set built traces every kind of the study

    def online(draws):
        records, aug = two_stage.augment_online(on.train.records, kinds, _online(cfg, draws=draws), online_cache)
        return dataclasses.replace(on, aug_records=records, online=aug)

    fixed, fresh = online("fixed"), online("fresh")
    t = dataclasses.replace(cfg.train, steps_per_epoch=1)  # one batch of 2 x 8 of the 19 clips per epoch
    mrun = dataclasses.replace(cfg.models["resnet10"], epochs=2, offline=tuple(kinds))

    def batches(data, initial_epoch):
        split = two_stage.with_augmentations(data, mrun.offline)
        assert len(split.computed) == 2
        spec = two_stage.study.RunSpec("resnet10", "two_stage_resnet", None, {}, seed=5, train=t, item=(mrun, split))
        return [(x.numpy(), y.numpy()) for x, y in two_stage.train_dataset(spec, data, t, initial_epoch)]

    epoch1 = []
    for data in (fixed, fresh):
        full, resumed = batches(data, 0), batches(data, 1)  # built twice from the same seed
        assert len(full) == 2 and len(resumed) == 1
        np.testing.assert_array_equal(full[1][0], resumed[0][0])
        np.testing.assert_array_equal(full[1][1], resumed[0][1])
        epoch1.append(full[1][0])
    assert not np.array_equal(*epoch1)  # the compared batch holds computed copies (fixed and fresh differ)
    # a noise copy: fixed, the same in epochs 0 and 1; fresh, another one in epoch 1
    j = kinds.index("noise")  # one source clip: one copy per kind
    for data, same in ((fixed, True), (fresh, False)):
        fn = tf.function(data.online.computed(data.online.sources[j:j + 1]).fn)  # graph mode, as in tf.data
        e0, e1 = (fn(tf.constant(0, tf.int64), tf.constant(e, tf.int64)).numpy() for e in (0, 1))
        assert np.array_equal(e0, e1) == same


@pytest.fixture(scope="module")
def online_study(tiny_study, online_cache):
    """The tiny study in online mode, reduced to one 10-class run with every augmentation and the
    3-class run the fusion needs (no figures, no export): (cfg, out, report)."""
    from tf_scenes.experiments.reproduce import get_study, load_study_config
    from tf_scenes.experiments.study import run_study

    s = tiny_study("two_stage")
    models = ("{fcnn10: {arch: fcnn, num_classes: 10, width: 0.0625, epochs: 1, spec_augment: true},"
              " fcnn3: {arch: fcnn, num_classes: 3, width: 0.0625, epochs: 1, offline: []}}")
    cfg = load_study_config("two_stage", "tiny", overrides=[
        f"data.synthetic_dir={s.cfg.data.synthetic_dir}", "augment.mode=online", "augment.rir_bank_size=2",
        f"models={models}", "ensemble10=[fcnn10]", "ensemble3=[fcnn3]", "table1=[fcnn3]", "table2=[fcnn10]",
        "table3=[fcnn10]", "figures=false", "export=false"])
    out = s.out.parent / "two_stage_online"
    return cfg, out, run_study(get_study("two_stage"), cfg, out, cache_dir=online_cache)


def test_online_mode_runs_the_study_end_to_end(online_study, online_cache):
    """Tables written; the augmented run trained on the offline mode's 22 clips, its config (reuse
    key) naming the mode; the run without augmentation keyed without it (reused by either mode);
    no augmented file written."""
    from tf_scenes.runs import read_run_config

    cfg, out, report = online_study
    assert json.loads((out / "study.json").read_text())["augment"] == {"mode": "online", "draws": "fixed"}
    assert [r["key"] for r in json.loads((out / "table2.json").read_text())["rows"]][0] == "fcnn10"
    run_cfg = read_run_config(out / "runs" / "fcnn10")
    assert run_cfg["train_clips"] == 22
    assert run_cfg["augment"] == {"mode": "online", "fraction": 0.05, "seed": 0, "draws": "fixed", "rir_bank_size": 2}
    assert "augment" not in read_run_config(out / "runs" / "fcnn3")
    assert len((out / "runs" / "fcnn10" / "history.csv").read_text().splitlines()) == 2  # header + 1 epoch
    assert not (online_cache / "offline_aug").exists() and report["summary"]["ensemble10_acc"] >= 0


@pytest.mark.slow
def test_online_run_retrained_repeats_its_result(online_study, online_cache):
    """Retraining the online run (a resumed study) repeats its history and scores bit for bit on CPU."""
    import csv
    import shutil

    from tf_scenes.experiments.reproduce import get_study
    from tf_scenes.experiments.study import run_study

    cfg, out, _ = online_study
    run_dir = out / "runs" / "fcnn10"

    def history():
        with open(run_dir / "history.csv") as f:
            return [{k: v for k, v in row.items() if k != "time_s"} for row in csv.DictReader(f)]

    before, scores = history(), (run_dir / "scores_evaluate.tsv").read_text()
    shutil.rmtree(run_dir)
    run_study(get_study("two_stage"), cfg, out, cache_dir=online_cache)
    assert history() == before and len(before) == 1
    assert (run_dir / "scores_evaluate.tsv").read_text() == scores


def test_profiles_choose_their_augmentation_mode():
    """quick and tiny write the copies (the reference's way); paper computes one fixed copy per
    clip and kind online (the offline set would be tens of GB: README)."""
    from tf_scenes.experiments.reproduce import load_study_config

    modes = {p: load_study_config("two_stage", p).augment for p in ("paper", "quick", "tiny")}
    assert (modes["paper"].mode, modes["paper"].draws, modes["paper"].fraction) == ("online", "fixed", 1.0)
    assert modes["quick"].mode == modes["tiny"].mode == "offline"
    assert modes["paper"].key() == {"mode": "online", "fraction": 1.0, "seed": 0, "draws": "fixed", "rir_bank_size": 128}
    assert modes["quick"].key() == {"mode": "offline", "fraction": 0.1, "seed": 0}
