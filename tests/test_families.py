"""One harness for every family's study (tf_scenes.families.FAMILIES), on its tiny profile: tables
with the paper's numbers and the data label, complete run folders, reruns that reuse every run,
exports equal to the Keras models, and the export / TFLite / predict / saliency commands.
Paper-specific checks of each study are in tests/test_<family>_study.py."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from tf_scenes import families

FAMILIES = list(families.FAMILIES)


def _paper_numbers(obj) -> int:
    """How many numbers sit under "paper" keys of a table's rows."""
    if isinstance(obj, dict):
        return sum(_numbers(v) if k == "paper" else _paper_numbers(v) for k, v in obj.items())
    if isinstance(obj, list):
        return sum(_paper_numbers(v) for v in obj)
    return 0


def _numbers(obj) -> int:
    if isinstance(obj, dict):
        return sum(_numbers(v) for v in obj.values())
    if isinstance(obj, list):
        return sum(_numbers(v) for v in obj)
    return int(isinstance(obj, (int, float)) and not isinstance(obj, bool))


@pytest.mark.parametrize("family", FAMILIES)
def test_tables_carry_paper_numbers_and_the_data_label(family, tiny_study):
    s = tiny_study(family)
    doc = json.loads((s.out / "study.json").read_text())
    assert doc["study"] == family and doc["profile"] == "tiny"
    assert doc["synthetic"] is True and doc["data_kind"] == "synthetic" and "SYNTHETIC" in doc["data"]
    assert doc["cache_dir"] == str(s.cache)
    assert doc["tables"], "no table written"
    paper = 0
    for name in doc["tables"]:
        table = json.loads((s.out / f"{name}.json").read_text())
        md = (s.out / f"{name}.md").read_text()
        assert table["rows"] and table["profile"] == "tiny" and table["synthetic"] is True
        assert table["banner"].startswith("SYNTHETIC DATA") and table["banner"] in md and table["data"] in md
        paper += _paper_numbers(table["rows"])
    assert paper > 0, "no table shows a paper number beside ours"


@pytest.mark.parametrize("family", FAMILIES)
def test_run_folders_are_complete_and_their_cards_hold(family, tiny_study):
    from tf_scenes.model_io import load_run_model, read_model_card

    s = tiny_study(family)
    runs = json.loads((s.out / "study.json").read_text())["runs"]
    plan = {r.name: r for r in s.study.plan(s.cfg, _data(s))}
    assert list(plan) == runs
    fam = families.get(family)
    for name in runs:
        d = s.out / "runs" / name
        for f in ("config.yaml", "run.json", "versions.json", "history.csv", "metrics.json", "model.json",
                  "model.weights.h5"):
            assert (d / f).exists(), f"{name}: {f} missing"
        required = s.study.required(plan[name]) if callable(s.study.required) else s.study.required
        for f in required:
            assert (d / f).exists(), f"{name}: {f} missing"
        assert json.loads((d / "run.json").read_text())["status"] == "finished"
        card = read_model_card(d)
        assert card["family"] == family and card["builder"] == plan[name].builder in fam.builders
        model = load_run_model(d)[0]
        assert model.get_layer(card["saliency"]["layer"]) is not None


_DATA: dict = {}


def _data(s):
    """The study's prepared data (read from the caches the tiny study left)."""
    from tf_scenes.experiments.study import StudyEnv

    if s.study.family not in _DATA:
        _DATA[s.study.family] = s.study.prepare(s.cfg, StudyEnv(s.out, s.cache, s.study, s.cfg))
    return _DATA[s.study.family]


@pytest.mark.parametrize("family", FAMILIES)
def test_rerun_reuses_every_finished_run(family, tiny_study, caplog):
    from tf_scenes.experiments.study import run_study

    s = tiny_study(family)
    doc = json.loads((s.out / "study.json").read_text())
    tables = {t: (s.out / f"{t}.json").read_text() for t in doc["tables"]}
    caplog.set_level(logging.INFO, logger="tf_scenes")
    again = run_study(s.study, s.cfg, s.out, cache_dir=s.cache)
    reused = [r for r in caplog.messages if "finished earlier, reusing" in r]
    assert len(reused) == len(doc["runs"])
    assert not any("initialised from" in m or "resuming from epoch" in m for m in caplog.messages)
    assert again.get("summary") == s.report.get("summary")
    assert {t: (s.out / f"{t}.json").read_text() for t in doc["tables"]} == tables


def _exports(out: Path) -> list[Path]:
    doc = json.loads((out / "study.json").read_text())
    paths = doc.get("exports") or ([doc["export"]] if isinstance(doc.get("export"), str) else
                                   [doc["export"]["path"]] if doc.get("export") else [])
    return [out / p for p in paths]


@pytest.mark.parametrize("family", FAMILIES)
def test_study_export_equals_the_keras_model(family, tiny_study):
    import tensorflow as tf

    from tf_scenes.export import read_export_metadata
    from tf_scenes.export_cli import family_export

    s = tiny_study(family)
    exports = _exports(s.out)
    assert exports, "the study exported nothing"
    for path in exports:
        meta, labels = read_export_metadata(path)
        source = Path(meta["runs"][0]) if len(meta["runs"]) == 1 else s.out
        spec = family_export(source)
        n = max(int(meta["input"]["min_samples"]), int(2.0 * spec.sample_rate))
        wav = (0.1 * np.random.default_rng(0).standard_normal((2, n))).astype(np.float32)
        got = tf.saved_model.load(str(path)).signatures["serving_default"](waveform=tf.constant(wav))
        want = spec.model(wav, training=False)
        want = want if isinstance(want, dict) else {next(iter(labels)): want}
        assert set(labels) <= set(got) <= set(want)
        for k in labels:
            np.testing.assert_allclose(got[k].numpy(), np.asarray(want[k]), atol=1e-5)


def _audio(root: Path) -> Path:
    """A clip of the tiny synthetic data (any rate: predict and saliency resample)."""
    tau = sorted((root / "data" / "TAU-urban-acoustic-scenes-2020-mobile-development" / "audio").glob("*-s4.wav"))
    return (tau or sorted((root / "data").rglob("*.wav")))[0]  # this worker may hold only its family's data


@pytest.mark.parametrize("family", FAMILIES)
def test_export_tflite_predict_and_saliency_commands(family, tiny_study, study_root, tmp_path, capsys):
    from tf_scenes.experiments import cli

    s = tiny_study(family)
    run = s.out / "runs" / json.loads((s.out / "study.json").read_text())["runs"][0]
    wav = _audio(study_root)
    assert cli.main(["export", str(run), "--out", str(tmp_path / "export"), "--tflite"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert max(res["tflite"]["max_abs_diff"].values()) < 1e-3 and Path(res["tflite"]["path"]).exists()
    assert cli.main(["predict", str(tmp_path / "export"), str(wav)]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    labels = json.loads((tmp_path / "export" / "assets.extra" / "labels.json").read_text())
    assert set(line["outputs"]) >= set(labels) and line["file"] == str(wav)
    fig = tmp_path / "saliency.png"
    assert cli.main(["saliency", str(run), str(wav), "--out", str(fig)]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert fig.stat().st_size > 5000 and info["panels"] and info["runs"] == [str(run)]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_json_file_written_is_strict(family, tiny_study, study_root):
    from strict_json import assert_strict_json_files

    s = tiny_study(family)
    assert_strict_json_files(s.out)  # tables, metrics, cards, trainer states: no NaN / Infinity
    assert_strict_json_files(study_root / "cache")


def _relabel(obj, label_of):
    """A copy of a study's prepared data whose every DataLabel is ``label_of(old)``."""
    import dataclasses

    from tf_scenes.datasets.provenance import DataLabel

    if isinstance(obj, DataLabel):
        return label_of(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _relabel(getattr(obj, f.name), label_of) for f in dataclasses.fields(obj)
                   if f.name == "label" or f.name == "tasks"}
        return dataclasses.replace(obj, **changes) if changes else obj
    if isinstance(obj, dict):
        return {k: _relabel(v, label_of) for k, v in obj.items()}
    return obj


@pytest.mark.parametrize("direction", ["real", "synthetic"])
@pytest.mark.parametrize("family", FAMILIES)
def test_tables_and_figures_state_the_data_truthfully(family, direction, tiny_study, tmp_path, monkeypatch):
    """The label comes from the dataset folder alone (tf_scenes.datasets.provenance.describe): a
    real-format folder without SYNTHETIC_DATASET.json is called real in every table, study field
    and figure title, and a synthetic folder (wherever it lies) synthetic, with no profile text
    saying otherwise."""
    import re
    import shutil

    import matplotlib.figure

    from tf_scenes.datasets import provenance
    from tf_scenes.experiments.study import RunResult, StudyEnv

    s = tiny_study(family)
    folder = tmp_path / "dataset"
    folder.mkdir()
    if direction == "synthetic":
        (folder / provenance.MARKER).write_text(json.dumps({"size": "tiny", "seed": 0}))
    data = _relabel(_data(s), lambda old: provenance.describe("Some dataset", folder))
    out = tmp_path / "study"
    shutil.copytree(s.out, out)
    figures: list[list[str]] = []  # the titles of each figure the report saves
    real_savefig = matplotlib.figure.Figure.savefig

    def savefig(fig, *a, **k):
        texts = [fig._suptitle.get_text()] if fig._suptitle else []
        figures.append([t for t in texts + [ax.get_title() for ax in fig.axes] if t])
        return real_savefig(fig, *a, **k)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    results = {r.name: RunResult(r, out / "runs" / r.name, json.loads((out / "runs" / r.name / "metrics.json")
                                                                         .read_text()), reused=True)
               for r in s.study.plan(s.cfg, _data(s))}
    report = s.study.report(s.cfg, data, results, StudyEnv(out, s.cache, s.study, s.cfg)) or {}
    doc = json.loads((s.out / "study.json").read_text())
    assert report and doc["tables"]
    claims_synthetic = re.compile(r"synthetic(?! by default)", re.I)
    for name in doc["tables"]:
        table = json.loads((out / f"{name}.json").read_text())
        md = (out / f"{name}.md").read_text()
        assert table["synthetic"] is (direction == "synthetic") and table["data_kind"] == direction
        if direction == "real":
            assert table["banner"] == "" and not claims_synthetic.search(md), md[:400]
        else:
            assert table["banner"] == provenance.SYNTHETIC_BANNER and "SYNTHETIC" in md
    assert figures, "the report drew no figure"
    figures = [[" ".join(t.split()) for t in titles] for titles in figures]  # titles may wrap
    for titles in figures:  # every figure says which data it shows, and never claims otherwise
        assert any(f"{direction} data" in t for t in titles), titles
        if direction == "real":
            assert not any(claims_synthetic.search(t) for t in titles), titles
