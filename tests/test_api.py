"""The Python interface (tf_scenes.api): docs/api.md's examples run as written, on the tiny
two-stage study, and what they print is checked."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.xdist_group("two_stage")  # shares the tiny two-stage study's worker

REPO = Path(__file__).resolve().parent.parent


def test_import_is_light():
    code = "import sys, tf_scenes; tf_scenes.__all__; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


@pytest.fixture
def paths(tiny_study, study_root, tmp_path):
    from tf_scenes.export_cli import export_run

    s = tiny_study("two_stage")
    export_dir, _ = export_run(s.out / "runs" / "resnet10", tmp_path / "export")
    wav = sorted((study_root / "data" / "TAU-urban-acoustic-scenes-2020-mobile-development" / "audio")
                 .glob("*-s4.wav"))[0]
    return {"run_dir": s.out / "runs" / "resnet10", "study_dir": s.out, "export_dir": export_dir, "wav_path": wav}


def test_docs_api_examples_run(paths, capsys):
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "api.md").read_text(), re.S)
    assert len(blocks) == 4
    ns = dict(paths)
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), ns)
    printed = capsys.readouterr().out
    assert "'probs': ('airport'" in printed and "44100" in printed
    model, out = ns["model"], ns["out"]
    assert isinstance(out["probs"], ns["tf_scenes"].Scores) and out["probs"].values.shape == (10,)
    np.testing.assert_allclose(out["probs"].values.sum(), 1.0, atol=1e-5)
    assert ns["fused"].values.shape == (10,) and ns["x"].shape == (423, 128, 3)
    assert ns["sal"]["map"].shape == ns["x"].shape[:2] and 0 <= ns["sal"]["map"].min() <= ns["sal"]["map"].max() <= 1
    assert ns["sal_park"]["class"] == "park" and ns["feats"].shape == (423, 128, 3)
    assert ns["net"].output.shape[-1] == 3 and "two_stage_resnet" in ns["tf_scenes"].list_models()
    # predict through the API equals the run's own Keras model on the same features
    from tf_scenes.model_io import load_run_model

    keras_model, _ = load_run_model(paths["run_dir"])
    want = np.asarray(keras_model(ns["x"][None], training=False))[0]
    np.testing.assert_allclose(out["probs"].values, want, atol=1e-5)


def test_errors_are_one_line(paths):
    import tf_scenes
    from tf_scenes.errors import TFScenesError

    model = tf_scenes.load(paths["run_dir"])
    with pytest.raises(TFScenesError, match="mono waveform"):
        model.predict(np.zeros((2, 3, 4), np.float32), 44100)
    with pytest.raises(TFScenesError, match="NaN or Inf"):
        model.predict(np.full(44100, np.nan, np.float32), 44100)
    with pytest.raises(TFScenesError, match="config fields"):
        tf_scenes.build("two_stage_fcnn", nosuch=1)
