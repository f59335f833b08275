"""Core utilities: strict configs, audio IO errors, atomic writes, run folders, the CLI."""

import dataclasses
import json
import os
import struct
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import pytest
import soundfile as sf

from tf_scenes import audio, config, io_utils, runs
from tf_scenes.errors import AudioError, ConfigError, OutputDirError


@dataclasses.dataclass(frozen=True)
class Train:
    epochs: int = 2
    lr: float = 0.1
    strategy: Literal["default", "mirrored"] = "default"
    crop: Optional[int] = None
    widths: tuple[int, ...] = (1, 2)


@dataclasses.dataclass(frozen=True)
class Exp:
    name: str = "x"
    train: Train = dataclasses.field(default_factory=Train)


def test_config_overrides_and_types(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: demo\ntrain:\n  epochs: 5\n  widths: [3, 4, 5]\n")
    cfg = config.load_config(Exp, p, ["train.lr=0.01", "train.strategy=mirrored", "train.crop=400"])
    assert cfg == Exp("demo", Train(5, 0.01, "mirrored", 400, (3, 4, 5)))
    assert isinstance(cfg.train.lr, float)
    assert config.from_dict(Exp, config.to_dict(cfg)) == cfg


@pytest.mark.parametrize("override, message", [
    ("train.epohcs=3", "did you mean 'epochs'"),
    ("train.epochs=three", "train.epochs: expected an integer"),
    ("train.epochs=2.5", "train.epochs: expected an integer"),
    ("train.strategy=tpuu", "not one of"),
    ("trian.epochs=3", "unknown config key"),
    ("train", "must look like"),
])
def test_config_rejects_typos_and_wrong_types(override, message):
    with pytest.raises(ConfigError, match=message):
        config.load_config(Exp, None, [override])


def test_config_base_merge(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\ntrain:\n  epochs: 7\n  lr: 0.5\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\ntrain:\n  lr: 0.2\n")
    cfg = config.load_config(Exp, tmp_path / "child.yaml")
    assert (cfg.name, cfg.train.epochs, cfg.train.lr) == ("base", 7, 0.2)


def _write(path, x, sr, subtype):
    sf.write(str(path), x, sr, subtype=subtype)
    return path


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_read_audio_bit_depths(tmp_path, subtype):
    x = 0.5 * np.sin(np.linspace(0, 100, 4410)).astype(np.float32)
    p = _write(tmp_path / "a.wav", x, 44100, subtype)
    y, sr = audio.read_audio(p, sr=44100)
    assert sr == 44100 and y.dtype == np.float32 and y.shape == x.shape
    tol = {"PCM_U8": 1e-2, "PCM_16": 1e-4}.get(subtype, 1e-6)
    assert np.max(np.abs(y - x)) < tol


def test_read_audio_resamples_and_downmixes(tmp_path, caplog):
    x = np.random.default_rng(0).normal(0, 0.1, (16000, 2)).astype(np.float32)
    p = _write(tmp_path / "st.wav", x, 16000, "PCM_16")
    y, sr = audio.read_audio(p, sr=32000)
    assert sr == 32000 and y.shape == (32000,)
    assert "down-mixing" in caplog.text and "resampling 16000 Hz -> 32000 Hz" in caplog.text
    with pytest.raises(AudioError, match="sample rate is 16000 Hz, expected 32000"):
        audio.read_audio(p, sr=32000, resample=False)
    with pytest.raises(AudioError, match="has 2 channels, expected 4"):
        audio.read_audio(p, mono=False, channels=4)
    y4, _ = audio.read_audio(_write(tmp_path / "m.wav", x[:, 0], 16000, "FLOAT"), mono=False, channels=4)
    assert y4.shape == (16000, 4) and np.array_equal(y4[:, 0], y4[:, 3])


def test_read_audio_bad_inputs(tmp_path):
    with pytest.raises(AudioError, match="file not found"):
        audio.read_audio(tmp_path / "nope.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty file"):
        audio.read_audio(tmp_path / "empty.wav")
    (tmp_path / "text.wav").write_bytes(b"this is not audio at all, just text" * 10)
    with pytest.raises(AudioError, match="text.wav: cannot decode audio"):
        audio.read_audio(tmp_path / "text.wav")
    good = _write(tmp_path / "good.wav", np.zeros(44100, np.float32), 44100, "PCM_24")
    data = good.read_bytes()
    (tmp_path / "trunc.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="trunc.wav: truncated wav: header declares 132300 bytes"):
        audio.read_audio(tmp_path / "trunc.wav")
    nan = np.zeros(100, np.float32)
    nan[37] = np.nan
    p = _write(tmp_path / "nan.wav", nan, 8000, "FLOAT")
    with pytest.raises(AudioError, match="non-finite sample .* at sample 37"):
        audio.read_audio(p)
    with pytest.raises(AudioError, match="too short: 100 samples"):
        audio.read_audio(_write(tmp_path / "short.wav", np.zeros(100, np.float32), 8000, "PCM_16"),
                         min_samples=400)


def test_write_audio_is_atomic_and_rejects_nan(tmp_path):
    p = tmp_path / "out" / "x.wav"
    audio.write_audio(p, np.zeros(10), 8000, subtype="PCM_24")
    assert sf.info(str(p)).subtype == "PCM_24"
    with pytest.raises(AudioError):
        audio.write_audio(tmp_path / "bad.wav", np.array([0.0, np.inf]), 8000)
    assert not (tmp_path / "bad.wav").exists()
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "f.npy"
    with pytest.raises(RuntimeError):
        with io_utils.atomic_path(target) as tmp:
            np.save(tmp, np.ones(3))
            raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []
    io_utils.atomic_save_npy(target, np.arange(3))
    assert np.array_equal(np.load(target), np.arange(3))


def _strict_loads(text: str):
    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def test_json_writers_write_strict_json_and_note_undefined_values(tmp_path):
    """NaN / Inf become null, listed by JSON pointer under "nulls" with what they were; read_json
    gives the original values back; a file without them is what json.dumps writes."""
    metrics = {"acc": 0.5, "recall/park": float("nan"), "per_class": np.array([0.25, np.nan], np.float32),
               "x~y": {"lo": -np.inf, "hi": np.float64(np.inf)}, "n": np.int64(3), "path": Path("a/b")}
    path = io_utils.atomic_write_json(tmp_path / "metrics.json", metrics)
    doc = _strict_loads(path.read_text())
    assert doc == {"acc": 0.5, "recall/park": None, "per_class": [0.25, None], "x~y": {"lo": None, "hi": None},
                   "n": 3, "path": "a/b",
                   "nulls": {"note": io_utils.NULLS_NOTE,
                             "values": {"/recall~1park": "NaN", "/per_class/1": "NaN", "/x~0y/lo": "-Infinity",
                                        "/x~0y/hi": "Infinity"}}}
    assert "undefined" in io_utils.NULLS_NOTE and "without examples" in io_utils.NULLS_NOTE
    back = io_utils.read_json(path)
    assert set(back) == set(metrics) and np.isnan(back["recall/park"]) and np.isnan(back["per_class"][1])
    assert back["x~y"] == {"lo": -np.inf, "hi": np.inf} and back["acc"] == 0.5
    plain = {"a": [1, 2.5, None], "b": {"c": "d"}, "e": np.float32(0.25)}
    assert io_utils.dumps_json(plain, indent=1) == json.dumps({**plain, "e": 0.25}, indent=1)
    assert io_utils.read_json(io_utils.atomic_write_json(tmp_path / "p.json", plain)) == {**plain, "e": 0.25}
    assert io_utils.loads_json('{"a": NaN}')["a"] != 0  # old files with NaN literals still read
    with pytest.raises(ValueError, match="non-finite value.* at /1 of a top-level list"):
        io_utils.dumps_json([1.0, float("nan")])
    with pytest.raises(ValueError, match="already has a 'nulls' key"):
        io_utils.dumps_json({"nulls": 1, "x": float("nan")})


def test_trainer_checkpoint_state_keeps_nan_through_strict_json(tmp_path):
    """The state embedded in a checkpoint (history with an undefined metric) is strict JSON and
    reads back with the NaN, so a resumed run continues from exactly the same state."""
    import h5py
    import keras

    from tf_scenes.training import trainer

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    state = {"epoch": 1, "history": [{"epoch": 0, "loss": 0.5, "val_auc": float("nan")}], "best_value": None}
    trainer._write_checkpoint(model, tmp_path / "last.weights.h5", state)
    with h5py.File(tmp_path / "last.weights.h5", "r") as f:
        raw = f[trainer.STATE_GROUP].attrs["state"]
    assert _strict_loads(raw)["history"][0]["val_auc"] is None
    back = trainer.read_checkpoint_state(tmp_path / "last.weights.h5")
    assert np.isnan(back["history"][0]["val_auc"]) and back["history"][0]["loss"] == 0.5 and "nulls" not in back


def test_ensure_writable_dir_fails_early(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):  # running as root: permissions are not enforced
            with pytest.raises(OutputDirError, match="MiB free"):
                io_utils.ensure_writable_dir(ro, min_free_bytes=2**62)
        else:
            with pytest.raises(OutputDirError, match="not writable"):
                io_utils.ensure_writable_dir(ro)
    finally:
        os.chmod(ro, 0o700)
    with pytest.raises(OutputDirError, match="need at least"):
        io_utils.ensure_writable_dir(tmp_path / "x", min_free_bytes=2**62)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputDirError, match="cannot create output directory"):
        io_utils.ensure_writable_dir(tmp_path / "file" / "sub")


def test_run_dir_describes_itself_and_refuses_mixing(tmp_path):
    cfg = Exp()
    d = runs.create_run_dir(tmp_path / "run", cfg, seed=3)
    assert config.from_dict(Exp, runs.read_run_config(d)) == cfg
    info = json.loads((d / "run.json").read_text())
    assert info["seed"] == 3 and info["status"] == "running"
    versions = json.loads((d / "versions.json").read_text())
    assert versions["python"].startswith("3.") and "code_version" in versions
    runs.create_run_dir(d, cfg, seed=3)  # resume: same config is fine
    assert len(json.loads((d / "run.json").read_text())["attempts"]) == 2
    with pytest.raises(ConfigError, match="another config"):
        runs.create_run_dir(d, Exp(name="other"), seed=3)
    runs.finish_run(d, {"acc": 0.5})
    assert json.loads((d / "metrics.json").read_text()) == {"acc": 0.5}
    assert json.loads((d / "run.json").read_text())["status"] == "finished"


def test_cli_help_and_unknown_command(capsys):
    from tf_scenes.experiments import cli

    assert cli.main([]) == 2
    assert "synth" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["no-such-command"])


def test_config_base_replace_marker(tmp_path):
    (tmp_path / "base.yaml").write_text("a: {x: 1, y: 2}\nb: {x: 1}\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\na: {__replace__: true, z: 3}\nb: {y: 2}\n")
    assert config.read_yaml(tmp_path / "child.yaml") == {"a": {"z": 3}, "b": {"x": 1, "y": 2}}


def test_is_finished_requires_same_config_status_and_files(tmp_path):
    d = runs.create_run_dir(tmp_path / "r", Exp(), seed=0)
    assert not runs.is_finished(d, Exp())  # still running
    runs.finish_run(d, {"acc": 1.0})
    assert not runs.is_finished(d, Exp())  # model.json missing
    (d / "model.json").write_text("{}")
    assert runs.is_finished(d, Exp())
    assert not runs.is_finished(d, Exp(name="other"))
    assert not runs.is_finished(tmp_path / "none", Exp())
