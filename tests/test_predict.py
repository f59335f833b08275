"""`tf-scenes predict`: strict JSON lines, non-finite model outputs, the model's fixed clip length
(only that much decoded, cutting / padding noted once per run), and `--windows` over long files.

Most tests replace the SavedModel by a recording fake (`load_export` monkeypatched) so that the
windows the model sees can be checked sample by sample; one test uses a real tiny export.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tf_scenes import predict_cli
from tf_scenes.audio import read_audio

SR = 8000


def _strict(text: str):
    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def _wav(path: Path, x, sr: int = SR, subtype: str = "FLOAT") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(x, np.float32), sr, subtype=subtype, format="WAV")
    return path


def _noise(seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, int(round(seconds * sr))).astype(np.float32)


class FakeModel:
    """Stands in for a serving signature: records each waveform, returns its mean and peak."""

    def __init__(self, nan_above: float | None = None):
        self.calls: list[np.ndarray] = []
        self.nan_above = nan_above

    def __call__(self, waveform):
        w = np.asarray(waveform)[0]
        self.calls.append(w.copy())
        level = np.array([[w.mean(), np.abs(w).max()]], np.float32)
        if self.nan_above is not None and level[0, 1] > self.nan_above:
            level[0, 0] = np.nan
        return {"level": level}


def _use(monkeypatch, model, clip_samples=None, min_samples=1):
    meta = {"input": {"sample_rate": SR, "min_samples": min_samples}}
    if clip_samples:
        meta["input"]["clip_samples"] = clip_samples
    monkeypatch.setattr(predict_cli, "load_export", lambda export_dir: (model, meta, {}))


def _predict(capsys, *argv):
    from tf_scenes.experiments.cli import main

    capsys.readouterr()
    code = main(["predict", "EXPORT", *map(str, argv)])
    out = capsys.readouterr()
    return code, [_strict(line) for line in out.out.splitlines()], out.err


def test_non_finite_model_output_is_an_error_line_never_nan_text(tmp_path, monkeypatch, capsys):
    quiet = _wav(tmp_path / "quiet.wav", _noise(1) * 0.1)
    loud = _wav(tmp_path / "loud.wav", _noise(1, seed=1))
    _use(monkeypatch, FakeModel(nan_above=0.2))
    code, lines, err = _predict(capsys, quiet, loud, quiet)
    assert code == 2
    assert [d["file"] for d in lines] == [str(quiet), str(quiet)]
    assert err.splitlines() == [f"tf-scenes predict: skipping {loud}: the model's output 'level' holds NaN or Inf "
                                "(1 of 2 values); no prediction written"]


def test_extreme_samples_are_skipped_with_the_reason(tmp_path, monkeypatch, capsys):
    x = _noise(1)
    x[3] = 1e30
    bad = _wav(tmp_path / "huge.wav", x)
    model = FakeModel()
    _use(monkeypatch, model)
    code, lines, err = _predict(capsys, bad)
    assert (code, lines, model.calls) == (2, [], [])
    assert err.startswith(f"tf-scenes predict: skipping {bad}: sample 3 is 1e+30, beyond the limit of 1e+12 "
                          "times full scale")


def test_fixed_clip_length_decodes_only_the_clip_and_warns_once(tmp_path, monkeypatch, capsys, caplog):
    long1 = _wav(tmp_path / "long1.wav", _noise(60, seed=1))
    long2 = _wav(tmp_path / "long2.wav", _noise(30, seed=2))
    short = _wav(tmp_path / "short.wav", _noise(0.5, seed=3))
    exact = _wav(tmp_path / "exact.wav", _noise(2, seed=4))
    model = FakeModel()
    _use(monkeypatch, model, clip_samples=2 * SR)
    asked = []
    real_read = sf.read
    monkeypatch.setattr(sf, "read", lambda f, frames=-1, **kw: asked.append(frames) or real_read(f, frames, **kw))
    with caplog.at_level(logging.WARNING):
        code, lines, err = _predict(capsys, long1, long2, short, exact)
    assert code == 0 and asked == [2 * SR] * 4
    want = [read_audio(p)[0][:2 * SR] for p in (long1, long2, short, exact)]
    want[2] = np.pad(want[2], (0, 2 * SR - 4000))
    for got, w in zip(model.calls, want, strict=True):
        np.testing.assert_array_equal(got, w)
    assert [d["seconds"] for d in lines] == [60.0, 30.0, 0.5, 2.0]
    assert [d.get("input") for d in lines] == [
        "the first 2.000 s (the model's clip length; use --windows for the whole file)",
        "the first 2.000 s (the model's clip length; use --windows for the whole file)",
        "zero-padded at the end to 2.000 s (the model's clip length)", None]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        f"tf-scenes predict: cut 2 of 4 files to their first 16000 samples (2.000 s; longest file 60.000 s), "
        f"e.g. {long1}",
        f"tf-scenes predict: zero-padded 1 of 4 files at the end to 16000 samples (2.000 s; shortest file "
        f"0.500 s), e.g. {short}"]


@pytest.mark.parametrize("file_sr", [SR, 16000])
def test_windows_cover_the_file_block_by_block(tmp_path, monkeypatch, capsys, file_sr):
    """--windows 10 --hop 7.5 over 25.3 s: windows at 0, 7.5, 15 and 22.5 s, the last zero-padded;
    each one exactly the file's samples (resampled as a whole file would be); mean over windows;
    the file is read in blocks of at most 10 s."""
    path = _wav(tmp_path / "long.wav", _noise(25.3, sr=file_sr), sr=file_sr)
    audio = read_audio(path, sr=SR)[0]
    assert audio.shape == (202_400,)
    model = FakeModel()
    _use(monkeypatch, model)
    blocks = []
    real = sf.SoundFile.read
    monkeypatch.setattr(sf.SoundFile, "read",
                        lambda self, frames=-1, **kw: blocks.append(frames) or real(self, frames, **kw))
    code, (line,), err = _predict(capsys, path, "--windows", "10", "--hop", "7.5")
    assert code == 0, err
    starts = [0, 60_000, 120_000, 180_000]
    assert len(model.calls) == 4
    for got, s in zip(model.calls, starts):
        np.testing.assert_array_equal(got, np.pad(audio[s:s + 80_000], (0, max(0, s + 80_000 - len(audio)))))
    assert set(blocks) == {10 * file_sr}  # never the whole file at once
    assert (line["seconds"], line["window_s"], line["hop_s"]) == (25.3, 10.0, 7.5)
    assert [(w["start_s"], w["end_s"]) for w in line["windows"]] == [(0.0, 10.0), (7.5, 17.5), (15.0, 25.0),
                                                                    (22.5, 25.3)]
    levels = [[float(c.mean()), float(np.abs(c).max())] for c in model.calls]
    for w, lv in zip(line["windows"], levels):
        np.testing.assert_allclose(w["outputs"]["level"]["values"], lv, atol=1e-5)
    np.testing.assert_allclose(line["outputs"]["level"]["values"], np.mean(levels, axis=0), atol=1e-5)
    assert line["windowing"].startswith("4 windows of 10 s every 7.5 s from the start of the file; the last one "
                                        "zero-padded")


def test_windows_generator_matches_slicing_whatever_the_blocks():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 400))
        window = int(rng.integers(1, 60))
        hop = int(rng.integers(1, window + 1))
        x = rng.normal(size=n).astype(np.float32)
        cuts = np.sort(rng.integers(0, n, size=int(rng.integers(0, 6))))
        blocks = [b for b in np.split(x, cuts) if b.size]
        got = list(predict_cli.windows(iter(blocks), window, hop))
        starts = [0]
        while starts[-1] + window < n:
            starts.append(starts[-1] + hop)
        assert [s for s, _, _ in got] == starts
        for s, w, filled in got:
            assert filled == min(window, n - s)
            np.testing.assert_array_equal(w, np.pad(x[s:s + window], (0, window - filled)))


@pytest.mark.parametrize("argv, message", [
    (["--hop", "2"], "--hop needs --windows"),
    (["--windows"], "--windows: this export takes whole clips of any length (no fixed clip length to use as "
                    "the window); give the window length: --windows SECONDS"),
    (["--windows", "0"], "--windows 0: the window length must be > 0 seconds"),
    (["--windows", "ten"], "--windows 'ten': expected a length in seconds"),
    (["--windows", "0.01"], "--windows: 0.01 s is shorter than the 129 samples (0.016125 s) this model needs"),
    (["--windows", "1", "--hop", "2"], "--hop 2.0: must be > 0 and at most the window length (1 s)"),
])
def test_window_options_are_checked(tmp_path, monkeypatch, capsys, argv, message):
    path = _wav(tmp_path / "a.wav", _noise(1))
    _use(monkeypatch, FakeModel(), min_samples=129)
    code, lines, err = _predict(capsys, path, *argv)
    assert (code, lines) == (2, [])
    assert err.startswith(f"tf-scenes predict: error: {message}"), err


def test_windows_default_to_the_model_clip_and_never_exceed_it(tmp_path, monkeypatch, capsys):
    path = _wav(tmp_path / "a.wav", _noise(5))
    model = FakeModel()
    _use(monkeypatch, model, clip_samples=2 * SR)
    code, (line,), _ = _predict(capsys, path, "--windows")
    assert code == 0 and [(w["start_s"], w["end_s"]) for w in line["windows"]] == [(0, 2), (2, 4), (4, 5)]
    code, _, err = _predict(capsys, path, "--windows", "3")
    assert code == 2 and "--windows: 3 s is longer than the model's clip length 2 s" in err


def test_real_export_clip_length_from_the_graph_and_windows(tmp_path, capsys):
    """A real SavedModel: its fixed clip length is found in the serving graph (none recorded in
    metadata), and --windows gives each window the signature's own output."""
    import keras
    import tensorflow as tf

    from tf_scenes.export import export_saved_model, waveform_signature_model

    tiny = dict(name="tiny", sample_rate=SR, n_fft=256, hop_length=128, n_mels=16, fmax=4000.0, log_offset=1e-6)

    def inner(feats):
        x = keras.layers.GlobalAveragePooling2D(name="pool")(feats)
        return keras.layers.Dense(3, activation="softmax", name="probs")(x)

    keras.utils.set_random_seed(0)
    fixed = export_saved_model(waveform_signature_model(inner, {**tiny, "clip_samples": 4000}, "fixed"),
                               tmp_path / "fixed", sample_rate=SR, labels={"probs": ["a", "b", "c"]})
    free = export_saved_model(waveform_signature_model(inner, {**tiny, "clip_samples": None}, "free"),
                              tmp_path / "free", sample_rate=SR, labels={"probs": ["a", "b", "c"]})
    fn, meta, _ = predict_cli.load_export(fixed)
    assert "clip_samples" not in meta["input"] and predict_cli.model_clip_samples(fn, meta) == 4000
    fn_free, meta_free, _ = predict_cli.load_export(free)
    assert predict_cli.model_clip_samples(fn_free, meta_free) is None
    path = _wav(tmp_path / "a.wav", _noise(1.3))
    audio = read_audio(path)[0]
    from tf_scenes.experiments.cli import main

    capsys.readouterr()
    assert main(["predict", str(fixed), str(path), "--windows", "--top", "3"]) == 0
    line = _strict(capsys.readouterr().out)
    assert [(w["start_s"], w["end_s"]) for w in line["windows"]] == [(0, 0.5), (0.5, 1.0), (1.0, 1.3)]
    probs = []
    for w, s in zip(line["windows"], (0, 4000, 8000)):
        chunk = np.pad(audio[s:s + 4000], (0, max(0, s + 4000 - len(audio))))
        p = fn(waveform=tf.constant(chunk[None]))["probs"].numpy()[0]
        probs.append(p)
        assert {c: v for c, v in w["outputs"]["probs"]["top"]} == pytest.approx(dict(zip("abc", p)), abs=1e-5)
    mean = np.mean(probs, axis=0)
    assert {c: v for c, v in line["outputs"]["probs"]["top"]} == pytest.approx(dict(zip("abc", mean)), abs=1e-5)
    assert re.search(r"3 windows of 0\.5 s every 0\.5 s", line["windowing"])


# ---------------------------------------------------------------------------------------------
# --format dcase: event lists from frame outputs


def test_frame_events_by_hand():
    """100 ms frames; threshold 0.5 (a frame is active when its score is strictly above it)."""
    dog = [0.2, 0.6, 0.7, 0.5, 0.1, 0.9, 0.5, 0.2]
    car = [0.0, 0.0, 0.0, 0.8, 0.8, 0.0, 0.8, 0.8]
    frames = np.array([dog, car]).T  # (8 frames, 2 classes)
    events = predict_cli.frame_events(frames, 0.1, ["dog", "car"], 0.5)
    assert events == [(0.1, 0.3, "dog"), (0.3, 0.5, "car"), (0.5, 0.6, "dog"), (0.6, 0.8, "car")]
    # median over 3 frames (edges reflected): dog 0.2 .6 .6 .5 .5 .5 .5 .2 (the lone 0.9 goes), car's gap fills
    assert predict_cli.frame_events(frames, 0.1, ["dog", "car"], 0.5, median=3) == [
        (0.1, 0.3, "dog"), (0.3, 0.8, "car")]
    # a window starting at 10 s of a file that ends at 10.65 s: shifted, cut at the end of the audio
    assert predict_cli.frame_events(frames, 0.1, ["dog", "car"], 0.5, start_s=10.0, end_s=10.65) == [
        (10.1, 10.3, "dog"), (10.3, 10.5, "car"), (10.5, 10.6, "dog"), (10.6, 10.65, "car")]
    assert predict_cli.frame_events(frames, 0.1, ["dog", "car"], 0.5, start_s=10.0, end_s=10.6)[-1] == (
        10.5, 10.6, "dog")  # the car event starting at the end of the audio is dropped
    # min duration 0.15 s: the 0.1 s dog event goes, the 0.2 s events stay
    assert predict_cli.join_events(events, 0.15) == [(0.1, 0.3, "dog"), (0.3, 0.5, "car"), (0.6, 0.8, "car")]
    # events of one class meeting at a window boundary are joined, other classes untouched
    assert predict_cli.join_events([(1.0, 1.5, "dog"), (0.0, 1.0, "dog"), (1.0, 1.2, "car")]) == [
        (0.0, 1.5, "dog"), (1.0, 1.2, "car")]
    assert [predict_cli.median_frames(s, 0.1) for s in (0, 0.1, 0.2, 0.3, 0.4, 0.04)] == [1, 1, 3, 3, 5, 1]


class FakeSed:
    """A serving signature with a frame output: per 100 ms frame, "loud" = mean |sample| x 2 and
    "quiet" = 1 - loud; and a clip output (not frame-level)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, waveform):
        w = np.asarray(waveform)[0]
        self.calls += 1
        n = len(w) // (SR // 10)
        loud = np.abs(w[:n * (SR // 10)]).reshape(n, -1).mean(axis=1) * 2
        act = np.stack([loud, 1 - loud], axis=1)[None].astype(np.float32)  # (1, frames, 2)
        return {"activity": act, "clip": act.mean(axis=1)}


def _use_sed(monkeypatch, model, frame_seconds=0.1):
    meta = {"input": {"sample_rate": SR, "min_samples": 1}}
    if frame_seconds:
        meta["frame_seconds"] = frame_seconds
    labels = {"activity": ["loud", "quiet"], "clip": ["loud", "quiet"]}
    monkeypatch.setattr(predict_cli, "load_export", lambda export_dir: (model, meta, labels))


def _dcase(capsys, *argv):
    from tf_scenes.experiments.cli import main

    capsys.readouterr()
    code = main(["predict", "EXPORT", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


def _bursts(seconds: float, spans) -> np.ndarray:
    """Silence with full-scale noise (mean |x| 0.5) over the given (start_s, end_s) spans."""
    x = np.zeros(int(round(seconds * SR)), np.float32)
    for a, b in spans:
        x[int(a * SR):int(b * SR)] = _noise(b - a, seed=int(a * 10)) * 2
    return x


def test_dcase_event_lines_whole_file_and_windows(tmp_path, monkeypatch, capsys):
    """Noise over 0.3-0.7 s and 1.2-1.5 s of a 1.75 s file: "loud" there, "quiet" elsewhere. With
    1 s windows the quiet event across the 1 s boundary is one event, and nothing is reported
    in the zero padding of the last window (past 1.75 s)."""
    a = _wav(tmp_path / "a.wav", _bursts(1.75, [(0.3, 0.7), (1.2, 1.5)]))
    b = _wav(tmp_path / "b.wav", _bursts(0.5, []))
    _use_sed(monkeypatch, FakeSed())
    code, lines, err = _dcase(capsys, a, b, "--format", "dcase", "--threshold", "0.5")
    assert code == 0, err
    assert lines == [f"{a}\t0.000\t0.300\tquiet", f"{a}\t0.300\t0.700\tloud", f"{a}\t0.700\t1.200\tquiet",
                     f"{a}\t1.200\t1.500\tloud", f"{a}\t1.500\t1.700\tquiet",  # 17 whole frames in 1.75 s
                     f"{b}\t0.000\t0.500\tquiet"]
    code, lines, err = _dcase(capsys, a, "--format", "dcase", "--threshold", "0.5", "--windows", "1")
    assert code == 0, err
    assert lines == [f"{a}\t0.000\t0.300\tquiet", f"{a}\t0.300\t0.700\tloud", f"{a}\t0.700\t1.200\tquiet",
                     f"{a}\t1.200\t1.500\tloud", f"{a}\t1.500\t1.750\tquiet"]
    code, lines, _ = _dcase(capsys, a, "--format", "dcase", "--threshold", "0.5", "--min-duration", "0.35")
    assert lines == [f"{a}\t0.300\t0.700\tloud", f"{a}\t0.700\t1.200\tquiet"]


@pytest.mark.parametrize("argv, frame_seconds, message", [
    (["--format", "dcase"], 0.1, "--format dcase needs --threshold T"),
    (["--format", "dcase", "--threshold", "0.5"], None, "EXPORT: the export's metadata has no frame_seconds"),
    (["--format", "dcase", "--threshold", "0.5", "--windows", "1", "--hop", "0.5"], 0.1,
     "--format dcase with --windows: the windows must not overlap"),
    (["--median-filter", "0.3"], 0.1, "--median-filter: only with --format dcase"),
    (["--format", "dcase", "--threshold", "0.5", "--output", "clip"], 0.1,
     "EXPORT: --output clip: not a frame-level output of this model (frame-level outputs: activity)"),
])
def test_dcase_options_are_checked(tmp_path, monkeypatch, capsys, argv, frame_seconds, message):
    path = _wav(tmp_path / "a.wav", _noise(1))
    _use_sed(monkeypatch, FakeSed(), frame_seconds)
    code, lines, err = _dcase(capsys, path, *argv)
    assert (code, lines) == (2, [])
    assert err.startswith(f"tf-scenes predict: error: {message}"), err


def test_dcase_needs_a_frame_output(tmp_path, monkeypatch, capsys):
    path = _wav(tmp_path / "a.wav", _noise(1))
    meta = {"input": {"sample_rate": SR, "min_samples": 1}, "frame_seconds": 0.1}
    monkeypatch.setattr(predict_cli, "load_export", lambda export_dir: (FakeModel(), meta, {"level": ["m", "p"]}))
    code, lines, err = _dcase(capsys, path, "--format", "dcase", "--threshold", "0.5")
    assert (code, lines) == (2, [])
    assert err.startswith("tf-scenes predict: error: EXPORT: the model has no frame-level output"), err
