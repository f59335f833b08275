"""The `tf-scenes` command as a researcher meets it: --version, defaults in every --help,
TensorFlow's native start-up lines held back, progress bars only on a terminal (plain timestamped
log lines when redirected), and `tf-scenes features` over many files and folders in one process."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
NATIVE_BANNER = re.compile(r"absl::InitializeLog|oneDNN custom operations|Could not find cuda drivers|^[IWE]\d{4} ",
                           re.M)
TIMESTAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) [\w.]+: ")


def _cli(capsys, *argv) -> tuple[int, str, str]:
    from tf_scenes.experiments.cli import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _write(path: Path, seconds: float, sr: int, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * sr))
    sf.write(str(path), x.astype(np.float32), sr, subtype="PCM_16")
    return path


# ----------------------------------------------------------------------------- version and help

def test_version(capsys):
    from importlib import metadata

    from tf_scenes import __version__
    from tf_scenes.experiments.cli import main, version

    assert version() == metadata.version("tf-scenes") == __version__
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"tf-scenes {__version__}\n"


def _help_of_each_option(text: str) -> dict[str, str]:
    """--option -> its help text (joined over wrapped lines) from argparse's help output."""
    out, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^  (-{1,2}[\w-]+)(?:, (--[\w-]+))?(?: [^ ].*?)?(?:  +(.*))?$", line)
        if m:
            current = m.group(2) or m.group(1)
            out[current] = m.group(3) or ""
        elif current and line.startswith("      "):
            out[current] += " " + line.strip()
        else:
            current = None
    return {k: re.sub(r"\s+", " ", v.replace("- ", "-")).strip() for k, v in out.items()}


def test_every_option_shows_its_default():
    """Every option of every subcommand whose default is a value (not None, not a flag, not an
    empty list) names it in --help: argparse's "(default: X)" or the help's own wording."""
    import argparse

    from tf_scenes.experiments.cli import build_parser

    parser, table, _ = build_parser()
    checked = {}
    for name in table:
        parser, _, _ = build_parser(name)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        helps = _help_of_each_option(sub.format_help())
        for action in sub._actions:
            default = action.default
            if not action.option_strings or action.nargs == 0 or default in (None, [], argparse.SUPPRESS):
                continue
            shown = helps[action.option_strings[-1]]
            values = [str(default), " ".join(str(v).rstrip("0").rstrip(".") for v in default)] \
                if isinstance(default, list) else [str(default)]
            assert "default" in shown and any(v in shown for v in values), (name, action.option_strings, shown)
            checked[(name, action.option_strings[-1])] = shown
    # the ones argparse now adds, as users read them
    assert checked[("reproduce", "--profile")].endswith("(default: quick)")
    assert checked[("synth", "--seed")] == "random seed (same seed, same bytes) (default: 0)"
    assert checked[("embed", "--batch-size")] == "windows per model call (default: 32)"
    assert checked[("remix", "--seed")].endswith("(default: 0)")
    assert checked[("predict", "--top")] == "classes to list per output (default 3)"  # already said: not twice
    assert len(checked) >= 12


# ----------------------------------------------------------------------------- TensorFlow's native lines

SAMPLE = (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
          b"I0000 00:00:1796258427.924493   11893 port.cc:153] oneDNN custom operations are on.\n"
          b"W0000 00:00:1796258427.924874   11893 cudart_stub.cc:31] a warning\n"
          b"E0000 00:00:1796258444.262089   12055 cuda_platform.cc:52] failed call to cuInit\n"
          b"2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not find cuda\n"
          b"2025-09-17 14:44:05.157831: W external/x.cc:1] older format warning\n"
          b"F0000 00:00:1796258444.262089   12055 cpu_feature_guard.cc:1] compiled to use AVX\n"
          b"/usr/lib/python3/x.py:3: UserWarning: something\n"
          b"the last bytes, without a newline")


@pytest.mark.parametrize("level, kept", [
    (3, [6, 7, 8]),
    (2, [3, 6, 7, 8]),
    (1, [2, 3, 5, 6, 7, 8]),
])
def test_native_log_filter_drops_what_the_level_hides(level, kept):
    from tf_scenes.experiments.cli import FILTER_SOURCE

    p = subprocess.run([sys.executable, "-I", "-S", "-c", FILTER_SOURCE, str(level)], input=SAMPLE,
                       capture_output=True, timeout=60)
    lines = SAMPLE.splitlines(keepends=True)
    assert (p.returncode, p.stdout) == (0, b"")
    assert p.stderr == b"".join(lines[i] for i in kept)


def test_import_hook_filters_fd2_during_the_import_only(tmp_path):
    """A module that writes native-style lines to file descriptor 2 while it is imported (as
    TensorFlow's libraries do): through the hook the hidden ones are gone, the rest kept in order,
    the module keeps its real loader, and later writes to fd 2 pass untouched."""
    (tmp_path / "native_noise.py").write_text(
        "import os\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "os.write(2, b'I0000 00:00:1796258427.924493   11893 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "os.write(2, b'kept during import\\n')\n")
    code = ("import os, sys\n"
            "from tf_scenes.experiments.cli import _QuietTensorFlowImport\n"
            "os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
            "hook = _QuietTensorFlowImport.install('native_noise')\n"
            "import native_noise\n"
            "print(type(native_noise.__loader__).__name__, type(native_noise.__spec__.loader).__name__, hook in sys.meta_path)\n"
            "os.write(2, b'I0000 00:00:1.0   1 after.cc:1] after the import\\n')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"SourceFileLoader SourceFileLoader False\n"
    assert p.stderr == b"kept during import\nI0000 00:00:1.0   1 after.cc:1] after the import\n"


def test_features_over_folders_in_one_process_with_clean_redirected_output(tmp_path):
    """`tf-scenes features` as a subprocess with stdout and stderr redirected (pipes): several files
    and a folder in one call; no TensorFlow banner, no progress bar (no carriage return, no colour
    code), timestamped log lines, one summary line, one .npy per file equal to the library's."""
    from tf_scenes.audio import read_audio
    from tf_scenes.features import extract

    data = tmp_path / "clips"
    a = _write(data / "a.wav", 1.0, 24000, 0)
    b = _write(data / "sub" / "b.flac", 0.5, 48000, 1)  # resampled: one warning line
    c = _write(tmp_path / "loose" / "c.wav", 0.7, 24000, 2)
    (data / "notes.txt").write_text("not audio\n")
    out = tmp_path / "feats"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the command's own default
    p = subprocess.run([sys.executable, "-m", "tf_scenes.experiments.cli", "features", "dcasenet", str(data), str(c),
                        "--out", str(out)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    assert not NATIVE_BANNER.search(p.stderr), p.stderr
    assert "\x1b" not in p.stderr + p.stdout and "\r" not in p.stderr + p.stdout
    err = p.stderr.splitlines()
    assert len(err) == 1 and TIMESTAMPED.match(err[0]), p.stderr
    assert err[0].endswith(f"WARNING tf_scenes.audio: tf-scenes features: resampled 1 of 3 files with soxr "
                           f"(48000 Hz -> 24000 Hz), e.g. {b}")
    assert re.fullmatch(rf"{re.escape(str(out))}: 3 of 3 files, dcasenet features \(25-50, 128, 1\) float32 "
                        r"\(\d+\.\d s\)\n", p.stdout), p.stdout
    assert sorted(q.relative_to(out).as_posix() for q in out.rglob("*.npy")) == ["a.npy", "c.npy", "sub/b.npy"]
    for src, rel in ((a, "a.npy"), (b, "sub/b.npy"), (c, "c.npy")):
        np.testing.assert_allclose(np.load(out / rel), extract("dcasenet", read_audio(src, sr=24000)[0]), atol=1e-5)


# ----------------------------------------------------------------------------- features over many files

def test_features_many_files_mirrors_names_and_reports_bad_files(tmp_path, capsys):
    from tf_scenes.audio import read_audio
    from tf_scenes.features import extract

    data = tmp_path / "set"
    good = [_write(data / "x" / "one.wav", 0.3, 24000, 3), _write(data / "y" / "one.WAV", 0.3, 24000, 4)]
    short = _write(data / "short.wav", 0.0001, 24000, 5)  # 2 samples: too short for one frame
    (data / "broken.wav").write_bytes(b"RIFF....WAVEnot really")
    out = tmp_path / "out"
    code, stdout, stderr = _cli(capsys, "features", "dcasenet", data, "--out", out, "--no-progress")
    assert code == 2
    broken, too_short = stderr.splitlines()
    assert broken.startswith(f"tf-scenes features: skipping {data / 'broken.wav'}: truncated wav: no 'data' chunk")
    assert too_short == (f"tf-scenes features: skipping {short}: feature config 'dcasenet': 2 samples are too "
                         "short for one frame")
    assert stdout.startswith(f"{out}: 2 of 4 files, dcasenet features (15, 128, 1) float32; 2 skipped (see above) (")
    assert sorted(q.relative_to(out).as_posix() for q in out.rglob("*.npy")) == ["x/one.npy", "y/one.npy"]
    for src, rel in zip(good, ["x/one.npy", "y/one.npy"]):
        np.testing.assert_allclose(np.load(out / rel), extract("dcasenet", read_audio(src, sr=24000)[0]), atol=1e-6)


def test_features_many_files_refuses_clashes_and_a_npy_out_before_any_work(tmp_path, capsys):
    a1 = _write(tmp_path / "d1" / "a.wav", 0.2, 24000, 0)
    a2 = _write(tmp_path / "d2" / "a.flac", 0.2, 24000, 1)
    out = tmp_path / "out"
    code, stdout, stderr = _cli(capsys, "features", "dcasenet", tmp_path / "d1", a2, "--out", out)
    assert (code, stdout) == (2, "")
    assert stderr == (f"tf-scenes features: error: {a1} and {a2} would both be written to {out / 'a.npy'}; "
                      "rename one or compute them in separate runs\n")
    assert not out.exists()
    code, stdout, stderr = _cli(capsys, "features", "dcasenet", tmp_path / "d1", "--out", tmp_path / "f.npy")
    assert (code, stdout) == (2, "") and stderr.startswith(f"tf-scenes features: error: --out {tmp_path / 'f.npy'}: "
                                                            "with several audio files or a folder, --out is the folder")
    (tmp_path / "empty").mkdir()
    code, _, stderr = _cli(capsys, "features", "dcasenet", tmp_path / "empty", "--out", out)
    assert (code, stderr) == (2, f"tf-scenes features: error: {tmp_path / 'empty'}: no .wav or .flac files in "
                                 "this folder\n")
    # a file given twice (itself and through its folder) is computed once
    code, stdout, _ = _cli(capsys, "features", "dcasenet", tmp_path / "d1", a1, "--out", out)
    assert code == 0 and stdout.startswith(f"{out}: 1 of 1 files, dcasenet features (")
    assert [p.name for p in out.iterdir()] == ["a.npy"]


# ----------------------------------------------------------------------------- training output

class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _tiny_fit(run_dir: Path, verbose="auto"):
    import keras
    import tensorflow as tf

    from tf_scenes.training import fit

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", metrics=[keras.metrics.CategoricalAccuracy(name="acc")])
    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[np.arange(8) % 2]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    return fit(model, lambda k: ds.repeat(2 - k), epochs=2, steps_per_epoch=2, run_dir=run_dir, val_data=ds,
               monitor="val_acc", verbose=verbose, tensorboard=False)


def test_fit_redirected_logs_one_plain_line_per_epoch(tmp_path, capsys, caplog):
    with caplog.at_level(logging.INFO, logger="tf_scenes.training.trainer"):
        result = _tiny_fit(tmp_path / "run")
    out = capsys.readouterr()
    assert "\x1b" not in out.out + out.err and "\r" not in out.out + out.err and "━" not in out.out
    lines = [r.getMessage() for r in caplog.records if r.name == "tf_scenes.training.trainer"]
    assert len(lines) == 2
    for epoch, (line, row) in enumerate(zip(lines, result["history"])):
        assert line == (f"epoch {epoch + 1}/2: acc={row['acc']:.4g} loss={row['loss']:.4g} val_acc={row['val_acc']:.4g} "
                        f"val_loss={row['val_loss']:.4g} lr=0.01 ({row['time_s']:.1f} s)")


def test_fit_on_a_terminal_draws_the_keras_bar(tmp_path, monkeypatch, caplog):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    with caplog.at_level(logging.INFO, logger="tf_scenes.training.trainer"):
        _tiny_fit(tmp_path / "run")
    assert "Epoch 1/2" in terminal.getvalue() and "\x1b[1m2/2\x1b[0m" in terminal.getvalue()
    assert [r for r in caplog.records if r.name == "tf_scenes.training.trainer"] == []


def test_progress_mode():
    from tf_scenes.errors import ConfigError
    from tf_scenes.training.trainer import progress_mode

    assert progress_mode(2) == (0, logging.INFO)
    assert progress_mode(0) == (0, logging.DEBUG)
    assert progress_mode("auto") == progress_mode(1) == (0, logging.INFO)  # pytest's stdout is not a terminal
    with pytest.raises(ConfigError, match="verbose must be 'auto', 0, 1 or 2, got 3"):
        progress_mode(3)
