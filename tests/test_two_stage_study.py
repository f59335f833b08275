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
    assert sum(f.startswith("cam_") for f in figs) == cfg.cam_clips
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
