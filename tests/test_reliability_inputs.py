"""Bad inputs: each gets a clear error (file, line or sample, problem, fix) or a documented, logged
fallback, never a traceback from inside TensorFlow and never a silent change of results.

Cases are generated (hypothesis where the input space is large) for the audio reader, the dataset
readers, the feature front-end, the tf.data pipelines, the exported serving signature,
`tf-scenes predict` and config loading. The guarantees are listed in docs/reliability.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import struct
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tf_scenes import audio, config
from tf_scenes.datasets import LoadReport, esc50, fsd2018, fsd2019, nigens2020, tau2020
from tf_scenes.errors import AudioError, ConfigError, DataFormatError

FAST = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))

# A small front-end (8 kHz, 16 mels, no fixed length) keeps the TF cases fast. It needs at least
# 129 samples for one frame (centred frames with reflect padding of n_fft // 2 = 128).
TINY_FEATURES = dict(name="tiny", sample_rate=8000, clip_samples=None, n_fft=256, hop_length=128, n_mels=16,
                     fmax=4000.0, log_offset=1e-6)


def _wav(path: Path, x, sr: int = 8000, subtype: str = "PCM_16") -> Path:
    """Write with soundfile directly (write_audio refuses NaN, which these tests need)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(x), sr, subtype=subtype, format="WAV")
    return path


def _tone(n: int = 8000, channels: int = 1) -> np.ndarray:
    x = (0.5 * np.sin(np.arange(n) / 10.0)).astype(np.float32)
    return x if channels == 1 else np.stack([x * (c + 1) / channels for c in range(channels)], axis=1)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# ===================================================================================== audio reader

BITS = {"PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}


@FAST
@given(subtype=st.sampled_from(sorted(BITS)), channels=st.integers(1, 4), n=st.integers(1, 300),
       seed=st.integers(0, 2**31 - 1))
def test_integer_pcm_reads_exactly_and_downmixes_by_averaging(tmp_path_factory, subtype, channels, n, seed):
    """8/16/24/32-bit PCM: sample k reads as k / 2^(bits-1) exactly; mono = channel mean."""
    bits = BITS[subtype]
    k = np.random.default_rng(seed).integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(n, channels))
    path = _wav(tmp_path_factory.mktemp("pcm") / "x.wav", (k.astype(np.int64) << (32 - bits)).astype(np.int32),
                subtype=subtype)
    want = (k / 2.0 ** (bits - 1)).astype(np.float32)
    x, sr = audio.read_audio(path, mono=False)
    assert sr == 8000 and x.dtype == np.float32
    np.testing.assert_array_equal(x, want)
    mono, _ = audio.read_audio(path)
    np.testing.assert_array_equal(mono, want.mean(axis=1) if channels > 1 else want[:, 0])


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_float_formats_read_exactly(tmp_path, subtype):
    x = np.random.default_rng(0).uniform(-1, 1, 500).astype(np.float32)
    got, _ = audio.read_audio(_wav(tmp_path / "f.wav", x, subtype=subtype))
    np.testing.assert_array_equal(got, x)


def test_float_beyond_full_scale_is_kept_and_logged(tmp_path, caplog):
    x = _tone() * 4  # peak 2.0
    with caplog.at_level(logging.WARNING):
        got, _ = audio.read_audio(_wav(tmp_path / "loud.wav", x, subtype="FLOAT"))
    np.testing.assert_array_equal(got, x)
    assert _warnings(caplog) == [f"{tmp_path / 'loud.wav'}: samples exceed full scale (peak 2 > 1.0); kept unscaled"]


def test_silence_is_valid_audio(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        x, sr = audio.read_audio(_wav(tmp_path / "silence.wav", np.zeros(4000, np.float32)))
    assert sr == 8000 and x.shape == (4000,) and not x.any()
    assert _warnings(caplog) == []


def _riff(fmt_tag=1, channels=1, sr=8000, bits=16, data: bytes = b"", declared: int | None = None) -> bytes:
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, sr, sr * channels * bits // 8, channels * bits // 8, bits)
    size = len(data) if declared is None else declared
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


BAD_AUDIO = {
    # name: (bytes or None for a special case, regex of the AudioError message after the path)
    "empty": (b"", r"empty file \(0 bytes\)$"),
    "text": (b"this is not audio\n" * 20,
             r"cannot decode audio: .*Format not recognised.*\(is it really a wav/flac file\? check with `soxi`"),
    "riff_junk": (b"RIFF\x00\x10\x00\x00WAVE" + bytes(range(7, 207)),
                  r"truncated wav: no 'data' chunk found "
                  r"\(the file was probably cut off .* or its header is corrupt\)"),
    "header_only": (_riff(declared=16000), r"truncated wav: header declares 16000 bytes of audio, file holds 0"),
    "half_data": (_riff(data=b"\x01\x00" * 100, declared=400),
                  r"truncated wav: header declares 400 bytes of audio, file holds 200"),
    "no_samples": (_riff(data=b""), r"no audio samples in file$"),
    "bad_fmt": (_riff(fmt_tag=0x1234, data=b"\x00\x00" * 10), r"cannot decode audio: .*Malformed 'fmt ' chunk"),
}


@pytest.mark.parametrize("name", sorted(BAD_AUDIO))
def test_bad_wav_bytes_raise_audio_error_naming_the_file(tmp_path, name):
    data, message = BAD_AUDIO[name]
    path = tmp_path / f"{name}.wav"
    path.write_bytes(data)
    with pytest.raises(AudioError) as e:
        audio.read_audio(path, sr=8000)
    assert e.value.path == str(path)
    assert re.search(message, str(e.value)[len(str(path)) + 2:]), str(e.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError, match=re.escape(f"{tmp_path / 'gone.wav'}: file not found")):
        audio.read_audio(tmp_path / "gone.wav")
    with pytest.raises(AudioError, match=re.escape(f"{tmp_path}: is a directory, expected an audio file")):
        audio.read_audio(tmp_path)


@FAST
@given(cut=st.integers(1, 8043))
def test_every_truncation_is_detected(tmp_path_factory, cut):
    """A 16-bit wav (44-byte header + 8000 bytes) cut anywhere: never read as a shorter clip."""
    full = tmp_path_factory.mktemp("cut") / "full.wav"
    _wav(full, _tone(4000))
    data = full.read_bytes()
    assert len(data) == 8044
    path = full.with_name("cut.wav")
    path.write_bytes(data[:cut])
    with pytest.raises(AudioError) as e:
        audio.read_audio(path)
    msg = str(e.value)
    if cut < 12:  # not even "RIFF....WAVE": libsndfile cannot open it
        assert "cannot decode audio" in msg
    elif cut < 44:  # the header stops before the data chunk
        assert "truncated wav: no 'data' chunk found" in msg
    else:
        assert f"truncated wav: header declares 8000 bytes of audio, file holds {cut - 44}" in msg


@FAST
@given(n=st.integers(2, 400), where=st.data(), value=st.sampled_from([np.nan, np.inf, -np.inf]),
       channels=st.integers(1, 3))
def test_non_finite_samples_are_reported_with_their_index(tmp_path_factory, n, where, value, channels):
    i = where.draw(st.integers(0, n - 1))
    c = where.draw(st.integers(0, channels - 1))
    x = np.zeros((n, channels), np.float32)
    x[i, c] = value
    path = _wav(tmp_path_factory.mktemp("nan") / "bad.wav", x, subtype="FLOAT")
    with pytest.raises(AudioError, match=re.escape(f"bad.wav: non-finite sample (NaN or Inf) at sample {i} "
                                                   "(the file is corrupt; regenerate it")):
        audio.read_audio(path)


def test_wrong_sample_rate_is_resampled_and_logged_or_refused(tmp_path, caplog):
    path = _wav(tmp_path / "r8k.wav", _tone(8000), sr=8000)
    with caplog.at_level(logging.WARNING):
        x, sr = audio.read_audio(path, sr=16000)
    assert (sr, x.shape) == (16000, (16000,))
    assert _warnings(caplog) == [f"{path}: resampling 8000 Hz -> 16000 Hz"]
    with pytest.raises(AudioError, match=re.escape(f"{path}: sample rate is 8000 Hz, expected 16000 Hz")):
        audio.read_audio(path, sr=16000, resample=False)


@pytest.mark.parametrize("file_ch, kwargs, outcome", [
    (2, {}, ("mono", "2 channels, down-mixing to mono by averaging")),
    (4, {}, ("mono", "4 channels, down-mixing to mono by averaging")),
    (1, dict(mono=False, channels=2), ("repeat", "mono file, repeating it to 2 channels")),
    (1, dict(mono=False, channels=4), ("repeat", "mono file, repeating it to 4 channels")),
    (2, dict(mono=False, channels=2), ("same", None)),
    (4, dict(mono=False, channels=2), ("error", "has 4 channels, expected 2")),
    (2, dict(mono=False, channels=4), ("error", "has 2 channels, expected 4")),
])
def test_channel_mismatches(tmp_path, caplog, file_ch, kwargs, outcome):
    src = _tone(1000, file_ch)
    path = _wav(tmp_path / f"ch{file_ch}.wav", src, subtype="FLOAT")
    kind, message = outcome
    if kind == "error":
        with pytest.raises(AudioError, match=re.escape(f"{path}: {message}")):
            audio.read_audio(path, **kwargs)
        return
    with caplog.at_level(logging.WARNING):
        x, _ = audio.read_audio(path, **kwargs)
    assert _warnings(caplog) == ([f"{path}: {message}"] if message else [])
    want = {"mono": lambda: src.mean(axis=1), "same": lambda: src,
            "repeat": lambda: np.repeat(src[:, None], kwargs.get("channels", 1), axis=1)}[kind]()
    np.testing.assert_array_equal(x, want.astype(np.float32))


def test_clip_shorter_than_required(tmp_path):
    path = _wav(tmp_path / "short.wav", _tone(4000))
    with pytest.raises(AudioError, match=re.escape(f"{path}: too short: 4000 samples (0.500 s), "
                                                   "need at least 8000 (1.000 s)")):
        audio.read_audio(path, min_samples=8000)
    assert audio.read_audio(path, min_samples=4000)[0].shape == (4000,)


@pytest.mark.parametrize("value", [1e30, -3e13, 3.4e38])
def test_extreme_float_samples_are_rejected_naming_the_sample(tmp_path, value):
    """Finite samples far beyond full scale would overflow the front-end's power spectrum (NaN
    features): rejected above MAX_ABS_SAMPLE, naming the file and the sample."""
    from tf_scenes.features import MAX_ABS_SAMPLE

    assert MAX_ABS_SAMPLE == 1e12
    x = _tone(1000, 2)
    x[321, 1] = value
    path = _wav(tmp_path / "huge.wav", x, subtype="FLOAT")
    want = f"{path}: sample 321 is {value:.3g}, beyond the limit of 1e+12 times full scale"
    with pytest.raises(AudioError, match=re.escape(want)):
        audio.read_audio(path)
    with pytest.raises(AudioError, match=re.escape(want)):
        list(audio.iter_audio_blocks(path, block_seconds=0.01))  # found in the fourth block of 80 samples


def test_samples_up_to_the_limit_are_kept_with_the_full_scale_warning(tmp_path, caplog):
    x = _tone(1000)
    x[5] = 1e12  # exactly the limit (float32 holds 999999995904)
    path = _wav(tmp_path / "loud.wav", x, subtype="FLOAT")
    with caplog.at_level(logging.WARNING):
        got, _ = audio.read_audio(path)
    np.testing.assert_array_equal(got, x)
    assert _warnings(caplog) == [f"{path}: samples exceed full scale (peak 1e+12 > 1.0); kept unscaled"]


def test_decode_dataset_rejects_extreme_samples_while_decoding(tmp_path):
    from tf_scenes.pipelines import audio as paudio

    x = _tone()
    x[4000] = 1e20
    paths = [_wav(tmp_path / "good.wav", _tone()), _wav(tmp_path / "huge.wav", x, subtype="FLOAT")]
    errors = paudio.DecodeErrors()
    with pytest.raises(AudioError, match=re.escape(f"{paths[1]}: sample 4000 is 1e+20, beyond the limit")):
        list(paudio.iterate_checked(paudio.decode_dataset(paths, 8000, num_samples=8000, errors=errors), errors))


def _special_files(tmp_path) -> dict[str, tuple[Path, str]]:
    """name -> (path, the message after 'path: ')."""
    import socket

    good = _wav(tmp_path / "good.wav", _tone())
    (tmp_path / "loop_a.wav").symlink_to(tmp_path / "loop_b.wav")
    (tmp_path / "loop_b.wav").symlink_to(tmp_path / "loop_a.wav")
    (tmp_path / "self.wav").symlink_to(tmp_path / "self.wav")
    (tmp_path / "dangling.wav").symlink_to(tmp_path / "gone" / "x.wav")
    (tmp_path / "link.wav").symlink_to(good)  # a good link: read through
    os.mkfifo(tmp_path / "fifo.wav")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock.wav"))
    sock.close()
    return {
        "loop": (tmp_path / "loop_a.wav", "symlink loop (following its links leads back to a link already followed) "
                                          "(fix or remove the link)"),
        "self": (tmp_path / "self.wav", "symlink loop"),
        "dangling": (tmp_path / "dangling.wav", f"broken symlink -> {tmp_path / 'gone' / 'x.wav'} "
                                                "(the target does not exist)"),
        "fifo": (tmp_path / "fifo.wav", "not a regular file (FIFO) (audio is read from regular files only"),
        "socket": (tmp_path / "sock.wav", "not a regular file (socket)"),
        "device": (Path("/dev/null"), "not a regular file (character device)"),
        "missing": (tmp_path / "missing.wav", "file not found"),
    }


def _in_thread(fn, timeout: float = 20.0):
    """fn() in a thread, failing (not hanging) if it blocks: opening a FIFO for reading would."""
    import threading

    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"blocked for {timeout} s (was a FIFO opened?)"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def test_symlink_loops_broken_links_fifos_and_devices_are_named_as_such(tmp_path):
    from tf_scenes.pipelines import audio as paudio

    cases = _special_files(tmp_path)
    assert _in_thread(lambda: audio.read_audio(tmp_path / "link.wav"))[0].shape == (8000,)
    for name, (path, message) in cases.items():
        for reader in (audio.read_audio, audio.audio_info, lambda p: paudio.probe_audio([p]),
                       lambda p: list(audio.iter_audio_blocks(p))):
            with pytest.raises(AudioError, match="^" + re.escape(f"{path}: {message}")):
                _in_thread(lambda: reader(path))
    # a loop in a parent folder is a loop too
    with pytest.raises(AudioError, match=re.escape(f"{tmp_path / 'loop_a.wav' / 'x.wav'}: symlink loop")):
        audio.read_audio(tmp_path / "loop_a.wav" / "x.wav")


def test_summarised_warnings_log_one_line_per_kind(tmp_path, caplog):
    """Inside summarised_warnings the per-file warnings are counted and logged once per kind at
    the end (distinct files, one example); outside they stay one per call."""
    paths = [_wav(tmp_path / f"s{i}.wav", _tone(16000, 2), sr=16000) for i in range(3)]
    paths.append(_wav(tmp_path / "loud.wav", _tone(4000) * 3, subtype="FLOAT"))
    paths.append(_wav(tmp_path / "long.wav", _tone(12000)))
    with caplog.at_level(logging.WARNING, logger="tf_scenes.audio"):
        with audio.summarised_warnings("test set") as summary:
            for p in paths + paths[:1]:  # a file read twice counts once
                audio.read_audio(p, sr=8000, num_samples=8000)
            assert _warnings(caplog) == []  # nothing until the block ends
            assert summary.counts() == {"resample": 3, "downmix": 3, "full_scale": 1, "cut": 1, "padded": 1}
    assert _warnings(caplog) == [
        f"test set: resampled 3 of 5 files with soxr (16000 Hz -> 8000 Hz), e.g. {paths[0]}",
        f"test set: down-mixed 3 of 5 files to mono by averaging their channels (2 channels), e.g. {paths[0]}",
        f"test set: 1 of 5 files exceed full scale (peaks up to 1.5 > 1.0): kept unscaled, e.g. {paths[3]}",
        f"test set: cut 1 of 5 files to their first 8000 samples (1.000 s; longest file 1.500 s), e.g. {paths[4]}",
        f"test set: zero-padded 1 of 5 files at the end to 8000 samples (1.000 s; shortest file 0.500 s), "
        f"e.g. {paths[3]}"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tf_scenes.audio"):
        audio.read_audio(paths[4], num_samples=8000)
        audio.read_audio(paths[3], num_samples=8000)
    assert _warnings(caplog) == [
        f"{paths[4]}: 1.500 s long: only its first 8000 samples (1.000 s) are used",
        f"{paths[3]}: samples exceed full scale (peak 1.5 > 1.0); kept unscaled",
        f"{paths[3]}: 4000 samples (0.500 s): zero-padded at the end to 8000 samples (1.000 s)"]


def test_summaries_are_per_thread_and_logged_even_on_error(tmp_path, caplog):
    import threading

    stereo = _wav(tmp_path / "st.wav", _tone(1000, 2))
    with caplog.at_level(logging.WARNING, logger="tf_scenes.audio"):
        with pytest.raises(AudioError, match="file not found"):
            with audio.summarised_warnings("run"):
                t = threading.Thread(target=lambda: audio.read_audio(stereo))  # not in this block: logs itself
                t.start()
                t.join()
                audio.read_audio(stereo)
                audio.read_audio(tmp_path / "missing.wav")
    assert _warnings(caplog) == [
        f"{stereo}: 2 channels, down-mixing to mono by averaging",
        f"run: down-mixed 1 of 1 files to mono by averaging their channels (2 channels), e.g. {stereo}"]


def test_decode_dataset_counts_in_the_active_summary(tmp_path, caplog):
    """decode_dataset's warnings (from the headers when built; beyond full scale while decoding in
    tf.data threads) land in the summarised_warnings block active when the dataset is built."""
    from tf_scenes.pipelines import audio as paudio

    paths = [_wav(tmp_path / "short.wav", _tone(4000)), _wav(tmp_path / "st.wav", _tone(16000, 2)),
             _wav(tmp_path / "loud16k.wav", _tone(20000) * 3, sr=16000, subtype="FLOAT")]
    with caplog.at_level(logging.WARNING):
        with audio.summarised_warnings("cache"):
            got = [w.numpy() for w in paudio.decode_dataset(paths, 8000, num_samples=8000)]
            assert _warnings(caplog) == []
    assert _warnings(caplog) == [
        f"cache: resampled 1 of 3 files with soxr (16000 Hz -> 8000 Hz), e.g. {paths[2]}",
        f"cache: down-mixed 1 of 3 files to mono by averaging their channels (2 channels), e.g. {paths[1]}",
        f"cache: 1 of 3 files exceed full scale (peaks up to 1.5 > 1.0): kept unscaled, e.g. {paths[2]}",
        f"cache: cut 2 of 3 files to their first 8000 samples (1.000 s; longest file 2.000 s), e.g. {paths[1]}",
        f"cache: zero-padded 1 of 3 files at the end to 8000 samples (1.000 s; shortest file 0.500 s), "
        f"e.g. {paths[0]}"]
    for p, w in zip(paths, got):
        np.testing.assert_array_equal(w, audio.read_audio(p, sr=8000, num_samples=8000)[0])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        with audio.summarised_warnings("early"):
            ds = paudio.decode_dataset(paths[2:], 8000, num_samples=8000)
        assert len(list(ds)) == 1  # decoded after the block was logged: the reader logs its own warning
    assert _warnings(caplog)[-1] == f"{paths[2]}: samples exceed full scale (peak 1.5 > 1.0); kept unscaled"


def test_fixed_length_reads_decode_only_the_samples_used(tmp_path, monkeypatch):
    """A 10-minute file with a 1 s fixed length: the same samples as reading it all, but only the
    frames needed are asked of soundfile (plus a resampling margin), and memory stays small."""
    import tracemalloc

    from tf_scenes.pipelines import audio as paudio

    rng = np.random.default_rng(0)
    at8k = _wav(tmp_path / "long8k.wav", rng.uniform(-0.5, 0.5, 8000 * 600).astype(np.float32))
    at16k = _wav(tmp_path / "long16k.wav", rng.uniform(-0.5, 0.5, 16000 * 600).astype(np.float32), sr=16000,
                 subtype="FLOAT")
    full8, _ = audio.read_audio(at8k)
    full16, _ = audio.read_audio(at16k, sr=8000)
    asked = []
    real_read = sf.read

    def recording_read(file, frames=-1, *args, **kwargs):
        asked.append((Path(file).name, frames))
        return real_read(file, frames, *args, **kwargs)

    monkeypatch.setattr(sf, "read", recording_read)
    tracemalloc.start()
    try:
        x8, _ = audio.read_audio(at8k, num_samples=8000)
        peak8 = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        x16, _ = audio.read_audio(at16k, sr=8000, num_samples=8000)
        peak16 = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (w16,) = [w.numpy() for w in paudio.decode_dataset([at16k], 8000, num_samples=8000)]  # the tf.data route
    np.testing.assert_array_equal(x8, full8[:8000])
    np.testing.assert_array_equal(x16, full16[:8000])  # the margin makes the resampled prefix exact
    np.testing.assert_array_equal(w16, full16[:8000])
    margin = audio.resample_read_margin(16000, 8000)
    assert margin == 16000 + 2 * 4096
    assert asked == [("long8k.wav", 8000), ("long16k.wav", 16000 + margin), ("long16k.wav", 16000 + margin)]
    # whole files: 4.8 M samples (9.6 MB as PCM_16, 19 MB as float32) and 9.6 M samples (38 MB)
    assert peak8 < 2**20 and peak16 < 2 * 2**20, (peak8, peak16)


# ===================================================================================== dataset readers

TAU_OK = ("filename\tscene_label\n"
          "audio/airport-lisbon-1000-40000-a.wav\tairport\n"
          "audio/bus-paris-3-4-s1.wav\tbus\n")


READERS = {
    "tau": (tau2020.read_fold_csv, "fold1_train.csv"),
    "fsd2019": (fsd2019.read_tag_csv, "train_curated.csv"),
    "fsd2018": (lambda p: fsd2018.read_train_csv(p, verified_only=False), "train.csv"),
    "esc50": (esc50.read_esc50_csv, "esc50.csv"),
    "nigens": (nigens2020.read_metadata, "fold1_room1_mix001_ov1.csv"),
}

# (reader, file text, exact "line: problem" the DataFormatError reports after the path)
BAD_TABLES = {
    "tau missing column": ("tau", "filename\tscene\naudio/bus-paris-3-4-s1.wav\tbus\n",
                           r":1: bad header \['filename', 'scene'\]: missing column\(s\) scene_label; "
                           r"unexpected column\(s\) 'scene'"),
    "tau extra column": ("tau", "filename\tscene_label\tcity\naudio/bus-paris-3-4-s1.wav\tbus\tparis\n",
                         r":1: bad header .*: unexpected column\(s\) 'city'"),
    "tau comma delimiter": ("tau", TAU_OK.replace("\t", ","),
                            r":1: header 'filename,scene_label' is comma-separated, expected TAB-separated"),
    "tau one comma row": ("tau", TAU_OK + "audio/park-vienna-7-8-b.wav,park\n",
                          r":4: expected 2 TAB-separated fields .* found 1: .*this row seems comma-separated"),
    "tau semicolon delimiter": ("tau", TAU_OK.replace("\t", ";"), r":1: header .* is semicolon-separated"),
    "tau duplicate row": ("tau", TAU_OK + "audio/bus-paris-3-4-s1.wav\tbus\n",
                          r":4: duplicate file name 'audio/bus-paris-3-4-s1.wav' \(first on line 3\)"),
    "tau unknown label": ("tau", TAU_OK.replace("\tbus", "\tbuss"),
                          r":3: unknown scene label 'buss' \(did you mean 'bus'\?\)"),
    "tau label/name mismatch": ("tau", TAU_OK.replace("\tbus", "\tpark"),
                                r":3: scene label 'park' does not match the file name"),
    "tau broad label": ("tau", TAU_OK.replace("\tbus", "\ttransportation"),
                        r":3: label 'transportation' is a broad class, expected a scene label"),
    "tau bad file name": ("tau", TAU_OK.replace("bus-paris-3-4-s1", "bus_paris_3_4_s1"),
                          r":3: bad TAU 2020 file name 'audio/bus_paris_3_4_s1.wav'"),
    "tau header only": ("tau", "filename\tscene_label\n", r": no data rows \(only a header\)"),
    "tau empty file": ("tau", "", r": empty file \(expected a header line"),
    "tau blank lines only": ("tau", "\n\r\n  \n", r": empty file"),
    "tau not utf-8": ("tau", b"filename\tscene_label\n\xff\xfe\n",
                      r":2: not UTF-8 text \(byte 0xff at offset 21\)"),
    "fsd2019 missing column": ("fsd2019", "fname\n0006ae4e.wav\n",
                               r":1: bad header \['fname'\]: missing column\(s\) labels"),
    "fsd2019 tab delimiter": ("fsd2019", "fname\tlabels\n0006ae4e.wav\tBark\n",
                              r":1: header 'fname\\tlabels' is TAB-separated, expected comma-separated"),
    "fsd2019 unquoted multi-label": ("fsd2019", "fname,labels\n0006ae4e.wav,Bark,Slam\n",
                                     r":2: expected 2 comma-separated fields .* found 3.*quote it"),
    "fsd2019 unknown label": ("fsd2019", "fname,labels\n0006ae4e.wav,\"Bark,Slamm\"\n",
                              r":2: unknown label 'Slamm' \(did you mean 'Slam'\?\)"),
    "fsd2019 duplicate": ("fsd2019", "fname,labels\na.wav,Bark\na.wav,Bark\n",
                          r":3: duplicate fname 'a.wav' \(first on line 2\)"),
    "fsd2019 NUL in fname": ("fsd2019", "fname,labels\na\x00/b.wav,Bark\n",
                             r":2: NUL character in name 'a\\x00/b.wav'"),
    "fsd2019 absolute fname": ("fsd2019", "fname,labels\n/data/a.wav,Bark\n",
                               r":2: absolute path '/data/a.wav': listed files must lie inside the dataset root"),
    "fsd2018 '..' in fname": ("fsd2018", "fname,label,manually_verified\n../a.wav,Bark,1\n",
                              r":2: '\.\.' segment '\.\./a.wav'"),
    "esc50 alias filename": ("esc50", "filename,fold,target,category,esc10,src_file,take\n"
                                      "1-100032-A-0.wav,1,0,dog,True,100032,A\n"
                                      "./1-100032-A-0.wav,1,0,dog,True,100032,A\n",
                             r":3: './1-100032-A-0.wav' is the same file as '1-100032-A-0.wav' \(line 2\)"),
    "fsd2018 verified flag": ("fsd2018", "fname,label,manually_verified\na.wav,Bark,yes\n",
                              r":2: manually_verified must be 0 or 1, found 'yes'"),
    "esc50 target/category": ("esc50", "filename,fold,target,category,esc10,src_file,take\n"
                                       "1-100032-A-0.wav,1,0,cat,True,100032,A\n",
                              r":2: target 0 does not match category 'cat' \(expected target 5\)"),
    "esc50 extra column": ("esc50", "filename,fold,target,category,esc10,src_file,take,x\n",
                           r":1: bad header .*unexpected column\(s\) 'x'"),
    "nigens tab delimiter": ("nigens", "0\t1\t0\t10\t-20\n",
                             r":1: expected 5 comma-separated integers .*found 1.*the file must be comma-separated"),
    "nigens class range": ("nigens", "0,14,0,10,-20\n", r":1: class 14 out of range \[0, 13\]"),
    "nigens frame not int": ("nigens", "0,1,0,10,-20\n1.5,1,0,10,-20\n", r":2: frame '1.5' is not an integer"),
}


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_malformed_metadata_names_file_line_and_problem(tmp_path, case):
    reader, text, message = BAD_TABLES[case]
    fn, name = READERS[reader]
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(DataFormatError) as e:
        fn(path)
    assert str(e.value).startswith(str(path)), str(e.value)
    assert re.search(message, str(e.value)[len(str(path)):]), str(e.value)


@FAST
@given(nl=st.sampled_from(["\n", "\r\n", "\r"]), bom=st.booleans(), final=st.booleans(),
       blank=st.booleans(), n=st.integers(1, 12), seed=st.integers(0, 10**6))
def test_line_endings_bom_and_blank_lines_do_not_change_the_records(tmp_path_factory, nl, bom, final, blank, n, seed):
    rng = np.random.default_rng(seed)
    rows = [f"audio/{s}-{c}-{i}-{i * 7}-{d}.wav\t{s}" for i, (s, c, d) in enumerate(zip(
        rng.choice(tau2020.SCENES, n), rng.choice(tau2020.CITIES, n), rng.choice(tau2020.DEVICES, n)))]
    ref_dir, var_dir = tmp_path_factory.mktemp("ref"), tmp_path_factory.mktemp("var")
    (ref_dir / "fold1_train.csv").write_text("\n".join(["filename\tscene_label", *rows]) + "\n")
    lines = ["filename\tscene_label", *rows]
    if blank:
        lines.insert(1 + n // 2, "  ")
    text = nl.join(lines) + (nl if final else "")
    (var_dir / "fold1_train.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    ref = tau2020.read_fold_csv(ref_dir / "fold1_train.csv", root=Path("R"))
    got = tau2020.read_fold_csv(var_dir / "fold1_train.csv", root=Path("R"))
    assert got == ref


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(reader=st.sampled_from(sorted(READERS)), data=st.one_of(
    st.binary(max_size=300),
    st.lists(st.lists(st.sampled_from(["filename", "scene_label", "fname", "labels", "label", "0", "1", "-3",
                                       "manually_verified", "airport", "Bark", '"Bark,Slam"', "x.wav", "", '"',
                                       "audio/airport-lisbon-1000-40000-a.wav", "\x00", "\ufeff", "1.5"]),
                      max_size=7).map(lambda f: ",".join(f) if len(f) % 2 else "\t".join(f)),
             max_size=6).map(lambda rows: "\r\n".join(rows).encode())))
def test_fuzzed_metadata_gives_records_or_data_format_error(tmp_path_factory, reader, data):
    """Whatever the bytes, a reader returns records or raises DataFormatError (nothing else)."""
    fn, name = READERS[reader]
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(data)
    try:
        fn(path)
    except DataFormatError as e:
        assert str(e).startswith(str(path))


def _tau_root(tmp_path, rows: list[str], audio_files: list[str]) -> Path:
    setup = tmp_path / "evaluation_setup"
    setup.mkdir(parents=True)
    (setup / "fold1_train.csv").write_text("\n".join(["filename\tscene_label", *rows]) + "\n")
    for name in audio_files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    return tmp_path


def test_files_listed_but_missing_and_empty_dataset(tmp_path):
    rows = ["audio/airport-lisbon-1000-40000-a.wav\tairport", "audio/bus-paris-3-4-s1.wav\tbus"]
    root = _tau_root(tmp_path / "a", rows, ["audio/airport-lisbon-1000-40000-a.wav"])
    csv = root / "evaluation_setup" / "fold1_train.csv"
    with pytest.raises(DataFormatError, match=re.escape(
            f"{csv}: 1 of 2 listed audio files are missing: {root / 'audio/bus-paris-3-4-s1.wav'} "
            "(is the root folder right and the audio fully extracted?")):
        tau2020.load(root, "train")
    assert len(tau2020.load(root, "train", check_files=False)) == 2
    with pytest.raises(DataFormatError, match=re.escape(f"{root / 'evaluation_setup' / 'fold1_evaluate.csv'}: "
                                                        "file not found")):
        tau2020.load(root, "evaluate")
    # empty datasets
    (tmp_path / "f18").mkdir()
    (tmp_path / "f18" / "train.csv").write_text("fname,label,manually_verified\na.wav,Bark,0\n")
    with pytest.raises(DataFormatError, match=re.escape(f"{tmp_path / 'f18' / 'train.csv'}: no verified clips found")):
        fsd2018.load(tmp_path / "f18")
    (tmp_path / "nig" / "metadata_dev").mkdir(parents=True)
    with pytest.raises(DataFormatError, match=r"metadata_dev: no metadata csv files for folds \(1, 2, 3, 4, 5, 6\)"):
        nigens2020.load(tmp_path / "nig", check_files=False)
    # folder-per-class data: stray folders, missing or empty classes, a class mapped twice
    (tmp_path / "map.csv").write_text("fine,coarse\ndog,animals\ncat,animals\nrain,nature\n")
    cmap = esc50.load_class_map(tmp_path / "map.csv")
    root = tmp_path / "classes"
    for name in ("dog", "dgo", "cat"):
        (root / name).mkdir(parents=True)
    (root / "dog" / "a.wav").write_bytes(b"")
    with pytest.raises(DataFormatError, match=re.escape(f"{root / 'dgo'}: unknown class folder 'dgo' (did you mean "
                                                        "'dog'?; add it to the class map or move it out of the root)")):
        esc50.load_folder_per_class(root, cmap)
    (root / "dgo").rmdir()
    with pytest.raises(DataFormatError, match=re.escape(f"{root}: 2 of 3 classes have no audio: rain/ missing; "
                                                        "cat/ has no .wav files")):
        esc50.load_folder_per_class(root, cmap)
    (tmp_path / "map2.csv").write_text("fine,coarse\ndog,animals\ndog,nature\n")
    with pytest.raises(DataFormatError, match=re.escape(f"{tmp_path / 'map2.csv'}:3: duplicate fine class 'dog' "
                                                        "(first on line 2) (each fine class maps to exactly one")):
        esc50.load_class_map(tmp_path / "map2.csv")
    # an empty metadata file is a recording without events (documented), not an error
    empty = tmp_path / "fold1_room1_mix001_ov1.csv"
    empty.write_text("")
    assert nigens2020.read_metadata(empty).shape == (0, 5)


# Rows leading out of the dataset root, two spellings of one file, a clip in two lists: the exact
# messages of docs/reliability.md (TAU 2020; tests/test_datasets.py runs the same cases on every reader).
ROOT_CASES = {
    "absolute path": ("{out}/bus-paris-3-4-s1.wav",
                      ":3: absolute path '{out}/bus-paris-3-4-s1.wav': listed files must lie inside the dataset "
                      "root {root} (pass allow_outside_root=True to use audio kept outside the dataset root on "
                      "purpose)"),
    "'..' segment": ("audio/../../outside/bus-paris-3-4-s1.wav",
                     ":3: '..' segment 'audio/../../outside/bus-paris-3-4-s1.wav': listed files must lie inside the "
                     "dataset root {root} (pass allow_outside_root=True"),
    "symlink out of the root": ("audio/bus-paris-3-4-s1.wav",
                                ":3: 'audio/bus-paris-3-4-s1.wav' resolves to {out}/bus-paris-3-4-s1.wav, outside "
                                "the dataset root {root} (a symlink or folder leads out of it; pass "
                                "allow_outside_root=True"),
    "alias": ("audio/./airport-lisbon-1000-40000-a.wav",
              ":3: 'audio/./airport-lisbon-1000-40000-a.wav' is the same file as "
              "'audio/airport-lisbon-1000-40000-a.wav' (line 2): both resolve to {root}/audio/"
              "airport-lisbon-1000-40000-a.wav (each clip must be listed once)"),
}


@pytest.mark.parametrize("case", sorted(ROOT_CASES))
def test_rows_outside_the_root_and_aliases_name_file_and_line(tmp_path, case):
    tmp_path = Path(os.path.realpath(tmp_path))
    root, out = tmp_path / "ds", tmp_path / "outside"
    name, message = ROOT_CASES[case]
    name = name.format(out=out)
    (out).mkdir()
    (out / "bus-paris-3-4-s1.wav").write_bytes(b"")
    label = "airport" if "airport" in name else "bus"
    _tau_root(root, ["audio/airport-lisbon-1000-40000-a.wav\tairport", f"{name}\t{label}"],
              ["audio/airport-lisbon-1000-40000-a.wav"])
    if case == "symlink out of the root":
        (root / name).symlink_to(out / "bus-paris-3-4-s1.wav")
    csv = root / "evaluation_setup" / "fold1_train.csv"
    with pytest.raises(DataFormatError) as e:
        tau2020.load(root, "train")
    assert str(e.value).startswith(f"{csv}" + message.format(out=out, root=root)), str(e.value)
    if case != "alias":
        assert len(tau2020.load(root, "train", allow_outside_root=True)) == 2


def test_skip_mode_logs_one_line_per_list_and_records_each_file(tmp_path, caplog):
    rows = [f"audio/tram-milan-{i}-{i}-a.wav\ttram" for i in range(40)]
    root = _tau_root(tmp_path, rows, [r.split("\t")[0] for r in rows[::2]])
    report = LoadReport()
    with caplog.at_level(logging.INFO):
        recs = tau2020.load(root, "train", missing="skip", report=report)
    assert [r.filename for r in recs] == [r.split("\t")[0] for r in rows[::2]]
    assert [(s.name, s.line) for s in report.skipped] == [(rows[i].split("\t")[0], i + 2) for i in range(1, 40, 2)]
    csv = root / "evaluation_setup" / "fold1_train.csv"
    assert _warnings(caplog) == [
        f"{csv}: skipped 20 of 40 listed audio files that are missing (missing='skip'): audio/tram-milan-1-1-a.wav, "
        "audio/tram-milan-3-3-a.wav, audio/tram-milan-5-5-a.wav, audio/tram-milan-7-7-a.wav, "
        "audio/tram-milan-9-9-a.wav and 15 more"]


def test_dcasenet_data_root_without_the_dataset_folders_fails_first(tmp_path, capsys):
    """`reproduce dcasenet --data PARENT` with the datasets under other names: one line saying
    what was looked for and how to pass each root, before any data generation or training."""
    parent = tmp_path / "parent"
    (parent / "FSDKaggle2019").mkdir(parents=True)
    (parent / "TAU2020").mkdir()
    synth, out = tmp_path / "synthetic", tmp_path / "out"
    code, stdout, err = _cli(capsys, "reproduce", "dcasenet", "--profile", "tiny", "--data", parent, "--out", out,
                             "--set", f"data.synthetic_dir={synth}", "--cache-dir", tmp_path / "cache")
    assert (code, stdout) == (2, "")
    assert err == (f"tf-scenes reproduce: error: data.root {parent}: no TAU-urban-acoustic-scenes-2020-mobile-"
                   "development, TAU-NIGENS-2020 folder in it (looked for TAU-urban-acoustic-scenes-2020-mobile-"
                   "development, FSDKaggle2019, TAU-NIGENS-2020); pass each dataset's own root: "
                   "--set data.asc_root=DIR --set data.sed_root=DIR\n")
    assert not synth.exists() and not (out / "runs").exists()
    assert sorted(p.name for p in parent.iterdir()) == ["FSDKaggle2019", "TAU2020"]


# ===================================================================================== feature front-end

def test_extract_on_silence_gives_the_documented_constant_features():
    from tf_scenes.features import extract, get_feature_config

    want = {"two_stage": (0.0, 0.0), "weak_sed": (np.log(np.float32(1e-8)), np.log(np.float32(1e-8))),
            "raw": (0.0, 0.0)}
    for name, (lo, hi) in want.items():
        cfg = get_feature_config(name)
        f = extract(cfg, np.zeros(cfg.clip_samples, np.float32))
        assert np.all(np.isfinite(f))
        assert f.min() == pytest.approx(lo, abs=1e-5) and f.max() == pytest.approx(hi, abs=1e-5)
    # dcasenet standardises each band over time: a constant band gives (x - mean) / std_floor,
    # finite and constant (float rounding of the mean leaves a value near 0)
    f = extract("dcasenet", np.zeros(24000, np.float32))
    assert np.all(np.isfinite(f)) and np.ptp(f) == 0 and abs(float(f.flat[0])) < 0.01


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_extract_rejects_non_finite_samples_naming_them(value):
    from tf_scenes.features import extract

    x = np.zeros((2, 8000), np.float32)
    x[1, 777] = value
    with pytest.raises(ValueError, match=r"non-finite value \(NaN or Inf\) at sample 777 of example 1"):
        extract(TINY_FEATURES, x)
    with pytest.raises(ValueError, match=r"at sample 777: features would be NaN"):
        extract(TINY_FEATURES, x[1])


def test_feature_layer_propagates_nan_only_to_the_frames_that_hold_it():
    """Documented: the graph front-end does not test values (TFLite-friendly); read_audio and the
    serving signature do. Without per-clip scaling only the frames whose window holds the NaN change."""
    import tensorflow as tf

    from tf_scenes.features import FeatureExtractor, get_feature_config

    x = np.random.default_rng(0).normal(0, 0.1, (1, 8000)).astype(np.float32)
    x[0, 1000] = np.nan
    f = FeatureExtractor(TINY_FEATURES)(tf.constant(x)).numpy()[0, :, :, 0]  # (frames, mels)
    bad_frames = np.flatnonzero(~np.isfinite(f).all(axis=1))
    # centred frames t cover samples [128 t - 128, 128 t + 128): sample 1000 is in frames 7 and 8
    assert bad_frames.tolist() == [7, 8] and np.isnan(f[[7, 8]]).all()
    # per-clip min-max scaling (as two_stage) spreads it over the whole clip
    cfg = get_feature_config({**TINY_FEATURES, "scaling": "minmax_clip"})
    assert np.isnan(FeatureExtractor(cfg)(tf.constant(x)).numpy()).all()


def test_short_and_empty_waveforms():
    import tensorflow as tf

    from tf_scenes.features import FeatureExtractor, extract, get_feature_config, min_input_samples

    assert min_input_samples(get_feature_config(TINY_FEATURES)) == 129
    assert min_input_samples(get_feature_config("dcasenet")) == 1026  # pre-emphasis drops one sample
    assert extract(TINY_FEATURES, np.ones(129, np.float32)).shape == (2, 16, 1)
    with pytest.raises(ConfigError, match="feature config 'tiny': 128 samples are too short for one frame"):
        extract(TINY_FEATURES, np.ones(128, np.float32))
    # the Keras layer says the same for a known length (not a MirrorPad error from inside TF)
    with pytest.raises(ConfigError, match="feature config 'tiny': 5 samples are too short for one frame"):
        FeatureExtractor(TINY_FEATURES)(tf.zeros((1, 5)))
    with pytest.raises(ValueError, match=r"waveform is empty \(shape \(0,\)\)"):
        extract(TINY_FEATURES, np.zeros(0, np.float32))
    # configs with a fixed clip length zero-pad short input (documented policy)
    cfg = get_feature_config("weak_sed")
    short = np.random.default_rng(1).normal(0, 0.1, 1000).astype(np.float32)
    np.testing.assert_array_equal(extract(cfg, short), extract(cfg, np.pad(short, (0, cfg.clip_samples - 1000))))


# ===================================================================================== tf.data pipelines

def test_decode_dataset_mixed_formats_are_logged_and_equal_read_audio(tmp_path, caplog):
    from tf_scenes.pipelines import audio as paudio

    x = _tone(8000)
    paths = [_wav(tmp_path / "pcm16.wav", x), _wav(tmp_path / "u8.wav", x, subtype="PCM_U8"),
             _wav(tmp_path / "st24.wav", _tone(8000, 2), subtype="PCM_24"),
             _wav(tmp_path / "q4.wav", _tone(8000, 4), subtype="FLOAT"),
             _wav(tmp_path / "r16k.wav", _tone(16000), sr=16000, subtype="PCM_32")]
    with caplog.at_level(logging.WARNING, logger="tf_scenes.pipelines.audio"):
        got = [w.numpy() for w in paudio.decode_dataset(paths, 8000)]
    assert _warnings(caplog) == [  # one line per kind, in the words of audio.summarised_warnings
        f"resampled 1 of 5 files with soxr (16000 Hz -> 8000 Hz), e.g. {paths[4]}",
        f"down-mixed 2 of 5 files to mono by averaging their channels (2 or 4 channels), e.g. {paths[2]}"]
    for p, w in zip(paths, got):
        np.testing.assert_array_equal(w, audio.read_audio(p, sr=8000)[0])


def test_decode_dataset_bad_file_fails_before_decoding_naming_it(tmp_path):
    from tf_scenes.pipelines import audio as paudio

    good = _wav(tmp_path / "good.wav", _tone())
    for name, data, message in [("empty.wav", b"", "empty file (0 bytes)"),
                                ("junk.wav", b"junk" * 50, "cannot decode audio"),
                                ("cut.wav", good.read_bytes()[:1000], "truncated wav")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(AudioError, match=re.escape(f"{tmp_path / name}: {message}")):
            paudio.decode_dataset([good, tmp_path / name], 8000)
    with pytest.raises(AudioError, match=re.escape(f"{good}: too short: 8000 samples at 8000 Hz, need 9000")):
        paudio.decode_dataset([good], 8000, num_samples=9000, short="error")
    (w,) = list(paudio.decode_dataset([good], 8000, num_samples=9000))  # short="pad": zero-padded at the end
    assert w.shape == (9000,) and not w.numpy()[8000:].any()
    with pytest.raises(ValueError, match="decode_dataset: no audio files given"):
        paudio.decode_dataset([], 8000)


def test_decode_dataset_nan_file_surfaces_as_the_audio_error(tmp_path):
    """NaN can only hide in float files, read with soundfile inside tf.data: iterate_checked (used by
    the feature cache) re-raises the AudioError itself; plain iteration gets TensorFlow's error
    whose message carries the same text."""
    import tensorflow as tf

    from tf_scenes.pipelines import audio as paudio

    x = _tone()
    x[4321] = np.nan
    paths = [_wav(tmp_path / "good.wav", _tone()), _wav(tmp_path / "nan.wav", x, subtype="FLOAT")]
    errors = paudio.DecodeErrors()
    want = f"{paths[1]}: non-finite sample (NaN or Inf) at sample 4321"
    with pytest.raises(AudioError, match=re.escape(want)):
        list(paudio.iterate_checked(paudio.decode_dataset(paths, 8000, errors=errors), errors))
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape("AudioError: " + want)):
        list(paudio.decode_dataset(paths, 8000))


def test_train_dataset_crop_longer_than_the_clip_fails_at_construction():
    from tf_scenes.pipelines.train_data import make_train_dataset
    from tf_scenes.pipelines.transforms import crop

    feats = np.zeros((8, 50, 16, 3), np.float32)
    labels = np.eye(2, dtype=np.float32)[np.arange(8) % 2]
    with pytest.raises(ValueError, match="random_crop: the clip has 50 frames along axis 0, "
                                         "fewer than the crop length 64"):
        make_train_dataset(feats, labels, batch_size=2, seed=0, epochs=1, transforms=[crop(64)])
    x, _ = next(iter(make_train_dataset(feats, labels, batch_size=2, seed=0, epochs=1, transforms=[crop(50)])))
    assert x.shape == (2, 50, 16, 3)
    with pytest.raises(ValueError, match=r"labels\[0\] has 3 rows but features has 8 examples"):
        make_train_dataset(feats, labels[:3], batch_size=2, seed=0, epochs=1)
    with pytest.raises(ValueError, match=r"features is empty \(0 examples\)"):
        make_train_dataset(feats[:0], labels[:0], batch_size=2, seed=0, epochs=1)


# ===================================================================================== SavedModel + predict

@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """A tiny waveform model (the TINY front-end, pooling, a 3-class softmax) exported as a SavedModel."""
    import keras

    from tf_scenes.export import export_saved_model, waveform_signature_model

    def inner(feats):
        x = keras.layers.GlobalAveragePooling2D(name="pool")(feats)
        return keras.layers.Dense(3, activation="softmax", name="probs")(x)

    keras.utils.set_random_seed(0)
    model = waveform_signature_model(inner, TINY_FEATURES, "tiny")
    out = tmp_path_factory.mktemp("export") / "tiny"
    export_saved_model(model, out, sample_rate=8000, labels={"probs": ["a", "b", "c"]})
    return out, model


def test_serving_signature_rejects_bad_waveforms_with_plain_messages(tiny_export):
    import tensorflow as tf

    out, model = tiny_export
    meta = json.loads((out / "assets.extra" / "metadata.json").read_text())
    assert meta["input"]["min_samples"] == 129  # what the front-end needs, recorded for predict
    fn = tf.saved_model.load(str(out)).signatures["serving_default"]
    good = np.random.default_rng(0).normal(0, 0.1, (2, 8000)).astype(np.float32)
    np.testing.assert_allclose(fn(waveform=tf.constant(good))["probs"].numpy(), model(good).numpy(), atol=1e-6)
    assert fn(waveform=tf.constant(good[:, :129]))["probs"].shape == (2, 3)
    nan = good.copy()
    nan[1, 5] = np.nan
    cases = {
        "empty clip": (np.zeros((1, 0), np.float32),
                       "waveform too short: this model needs at least 129 samples per clip at 8000 Hz"),
        "short clip": (good[:, :128], "waveform too short: this model needs at least 129 samples per clip"),
        "empty batch": (np.zeros((0, 8000), np.float32), "waveform: empty batch (0 clips)"),
        "nan": (nan, "waveform contains NaN or Inf samples"),
        "rank 1": (good[0], "Shape of tensor waveform [8000] is not compatible with expected shape [?,?]"),
        "rank 3": (good[..., None], "Shape of tensor waveform [2,8000,1] is not compatible with expected shape [?,?]"),
        "int32": (np.zeros((1, 8000), np.int32), "was expected to be a float tensor but is a int32 tensor"),
    }
    for name, (x, message) in cases.items():
        with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
            fn(waveform=tf.constant(x))


def _tiny_run_folder(root: Path) -> Path:
    """A run folder of the registered two-stage ResNet (3 classes, width 1/16) on the TINY front-end."""
    import keras

    from tf_scenes import registry
    from tf_scenes.model_io import write_model_card
    from tf_scenes.two_stage.model import TwoStageModelConfig

    keras.utils.set_random_seed(0)
    cfg = TwoStageModelConfig(arch="resnet", num_classes=3, width=0.0625, n_mels=16, channels=1)
    model = registry.build("two_stage_resnet", cfg)
    (root / "checkpoints").mkdir(parents=True)
    model.save_weights(str(root / "checkpoints" / "selected.weights.h5"))
    write_model_card(root, family="two_stage", builder="two_stage_resnet", config=cfg, feature_config=TINY_FEATURES,
                     outputs={"probs": ["indoor", "outdoor", "transportation"]})
    return root


def _cli(capsys, *argv) -> tuple[int, str, str]:
    """Run `tf-scenes ARGV` in this process (the same code path as the console script)."""
    from tf_scenes.experiments.cli import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_export_and_predict_cli_on_bad_files(tmp_path, capsys):
    """`tf-scenes export` of a run folder, then `tf-scenes predict` on good and bad files: one JSON
    line per good file, one stderr line per bad file naming it and the reason, exit code 2."""
    run = _tiny_run_folder(tmp_path / "run")
    code, out, err = _cli(capsys, "export", run, "--out", tmp_path / "export")
    assert code == 0 and json.loads(out) == {"export": str(tmp_path / "export")}, err
    a = tmp_path / "audio"
    good = _wav(a / "good.wav", _tone(8000))
    stereo_16k = _wav(a / "stereo16k.wav", _tone(16000, 2), sr=16000, subtype="PCM_24")
    silence = _wav(a / "silence.wav", np.zeros(8000, np.float32))
    nan = _tone(8000)
    nan[10] = np.nan
    bad = {"empty.wav": (b"", "empty file (0 bytes)"),
           "notwav.wav": (b"<html>not audio</html>" * 10, "cannot decode audio"),
           "cut.wav": (good.read_bytes()[:3000],
                       "truncated wav: header declares 16000 bytes of audio, file holds 2956"),
           "short.wav": (None, "too short: 100 samples (0.013 s), need at least 129 (0.016 s)"),
           "nan.wav": (None, "non-finite sample (NaN or Inf) at sample 10"),
           "missing.wav": (None, "file not found")}
    _wav(a / "short.wav", _tone(100))
    _wav(a / "nan.wav", nan, subtype="FLOAT")
    for name, (data, _) in bad.items():
        if data is not None:
            (a / name).write_bytes(data)
    files = [good, *(a / n for n in bad), stereo_16k, silence, a]
    code, out, err = _cli(capsys, "predict", tmp_path / "export", *files)
    assert code == 2, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [d["file"] for d in lines] == [str(good), str(stereo_16k), str(silence)]
    for d in lines:
        top = d["outputs"]["probs"]["top"]
        assert d["sample_rate"] == 8000 and len(top) == 3 and abs(sum(p for _, p in top) - 1) < 1e-3
    assert lines[1]["seconds"] == 1.0  # 16 kHz stereo: resampled and down-mixed
    skipped = [line for line in err.splitlines() if line.startswith("tf-scenes predict: skipping ")]
    want = [f"tf-scenes predict: skipping {a / n}: {m}" for n, (_, m) in bad.items()]
    want.append(f"tf-scenes predict: skipping {a}: is a directory, expected an audio file")
    assert [s[:len(w)] for s, w in zip(skipped, want)] == want and len(skipped) == len(want)
    # not an export folder: one clear line, exit 2
    code, out, err = _cli(capsys, "predict", tmp_path / "run", good)
    assert (code, out) == (2, "")
    assert err.startswith(f"tf-scenes predict: error: {tmp_path / 'run'}: not a tf-scenes export")


def test_predict_and_saliency_refuse_extreme_samples(tmp_path, capsys):
    """A finite 1e30 sample once gave NaN features: predict printed NaN and saliency drew NaNs.
    Both now stop at the reader with one line naming the file and the sample."""
    run = _tiny_run_folder(tmp_path / "run")
    x = _tone(8000)
    x[3] = 1e30
    path = _wav(tmp_path / "huge.wav", x, subtype="FLOAT")
    code, out, err = _cli(capsys, "saliency", run, path, "--out", tmp_path / "s.png")
    assert (code, out) == (2, "") and not (tmp_path / "s.png").exists()
    assert err.startswith(f"tf-scenes saliency: error: {path}: sample 3 is 1e+30, beyond the limit of 1e+12")
    assert _cli(capsys, "export", run, "--out", tmp_path / "export")[0] == 0
    code, out, err = _cli(capsys, "predict", tmp_path / "export", path)
    assert (code, out) == (2, "")
    assert err.startswith(f"tf-scenes predict: skipping {path}: sample 3 is 1e+30, beyond the limit of 1e+12")


# ===================================================================================== configs

@dataclasses.dataclass(frozen=True)
class _Train:
    epochs: int = 2
    lr: float = 0.1
    select: Literal["best", "last"] = "best"
    crop: Optional[int] = None
    widths: tuple[int, ...] = (1, 2)


@dataclasses.dataclass(frozen=True)
class _Exp:
    name: str = "x"
    train: _Train = dataclasses.field(default_factory=_Train)


VALID_KEYS = {"name", "train", "train.epochs", "train.lr", "train.select", "train.crop", "train.widths"}


@FAST
@given(key=st.lists(st.text("abcdeilmnoprstwh_", min_size=1, max_size=8), min_size=1, max_size=2).map(".".join))
def test_config_typos_are_never_ignored(key):
    """Any dotted key that is not a field raises ConfigError naming it, never a silent default."""
    if key in VALID_KEYS or key.startswith(("name.", "train.epochs.", "train.lr.", "train.select.",
                                            "train.crop.", "train.widths.")):
        return
    with pytest.raises(ConfigError, match="unknown config key"):
        config.load_config(_Exp, None, [f"{key}=1"])


@pytest.mark.parametrize("override, message", [
    ("train.epochs=three", "train.epochs: expected an integer, got 'three'"),
    ("train.epochs=2.0", "train.epochs: expected an integer, got 2.0"),
    ("train.epochs=true", "train.epochs: expected an integer, got True"),
    ("train.lr=fast", "train.lr: expected a number, got 'fast'"),
    ("train.select=bestt", "train.select: 'bestt' is not one of ['best', 'last']"),
    ("train.widths=3", "train.widths: expected a list, got int 3"),
    ("train.widths=[1, x]", "train.widths[1]: expected an integer, got 'x'"),
    ("train=5", "train: expected a mapping for _Train, got int"),
    ("train.epcohs=3", "unknown config key in train: 'epcohs' (did you mean 'epochs'?)"),
    ("name.first=a", "name: expected a string, got {'first': 'a'}"),
    ("epochs", "override 'epochs' must look like key.sub=value"),
])
def test_config_wrong_types(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.load_config(_Exp, None, [override])


def test_config_yaml_files(tmp_path):
    def load(text: str | bytes, name="c.yaml"):
        p = tmp_path / name
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return config.load_config(_Exp, p)

    assert load("train:\n  lr: 1e-3\n").train.lr == 0.001  # YAML 1.1 reads 1e-3 as a string
    assert load(b"\xef\xbb\xbfname: bom\r\ntrain:\r\n  epochs: 3\r\n") == _Exp("bom", _Train(epochs=3))
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'c.yaml'}:4: duplicate key 'epochs' "
                                                    "(first on line 2)")):
        load("train:\n  epochs: 3\n  lr: 0.5\n  epochs: 4\n")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'c.yaml'}:3: duplicate key 'train'")):
        load("train: {epochs: 3}\nname: a\ntrain: {lr: 0.5}\n")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'c.yaml'}: not UTF-8 text (byte 0xff")):
        load(b"name: \xff\n")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'c.yaml'}: invalid YAML")):
        load("name: [\n")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'c.yaml'}: top level must be a mapping")):
        load("- 1\n")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'c.yaml'}: unknown config key in train: 'lrr'")):
        load("train: {lrr: 1}\n")
    (tmp_path / "a.yaml").write_text("base: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match=re.escape("`base: a.yaml` makes a cycle: ")):
        config.load_config(_Exp, tmp_path / "a.yaml")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'nope.yaml'}: config file not found "
                                                    f"(base of {tmp_path / 'c.yaml'})")):
        load("base: nope.yaml\n")


@pytest.mark.parametrize("study", ["two_stage", "dcasenet", "weak_sed", "raw_waveform"])
def test_study_configs_reject_typos_naming_the_override(study):
    from tf_scenes.experiments.reproduce import config_path, get_study

    cls = get_study(study).Config
    path = config_path(study, "tiny")
    cfg = config.load_config(cls, path)
    assert cfg.profile == "tiny"
    assert config.from_dict(cls, config.to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match=re.escape("--set sed=1: unknown config key: 'sed' (did you mean 'seed'?)")):
        config.load_config(cls, path, ["sed=1"])
    with pytest.raises(ConfigError, match=re.escape("--set seed=one: seed: expected an integer, got 'one'")):
        config.load_config(cls, path, ["seed=one"])
    with pytest.raises(ConfigError, match=re.escape("--set train.batchsize=3: unknown config key in train: 'batchsize'")):
        config.load_config(cls, path, ["train.batchsize=3"])
    with pytest.raises(ConfigError, match=re.escape("no profile 'tiniest' for")):
        config_path(study, "tiniest")
    # every range is checked when the config is loaded, before any data work
    batch = {"two_stage": "batch_size", "dcasenet": "asc_batch", "weak_sed": "batch_size", "raw_waveform": "batch_size"}
    key = f"train.{batch[study]}"
    with pytest.raises(ConfigError, match=re.escape(f"--set {key}=0: {key}: 0 is out of range: must be >= 1")):
        config.load_config(cls, path, [f"{key}=0"])
    with pytest.raises(ConfigError, match=re.escape("--set train.eval_batch_size=-2: train.eval_batch_size: -2 is out")):
        config.load_config(cls, path, ["train.eval_batch_size=-2"])


@pytest.mark.parametrize("override, message", [
    ("data.val_fraction=2.0", "--set data.val_fraction=2.0: data.val_fraction: 2.0 is out of range: must be >= 0.0 and < 1.0"),
    ("train.batch_size=0", "--set train.batch_size=0: train.batch_size: 0 is out of range: must be >= 1"),
    ("models.resnet10.epochs=0", "--set models.resnet10.epochs=0: models.resnet10.epochs: 0 is out of range"),
    ("models.resnet10.width=-1", "--set models.resnet10.width=-1: models.resnet10.width: -1.0 is out of range"),
    ("augment.fraction=1.5", "--set augment.fraction=1.5: augment.fraction: 1.5 is out of range"),
    ("augment.mode=both", "--set augment.mode=both: augment.mode: 'both' is not one of ['offline', 'online']"),
    ("augment.draws=fresh", "--set augment.draws=fresh: augment.draws: 'fresh' needs augment.mode=online"),
    ("augment.rir_bank_size=0", "--set augment.rir_bank_size=0: augment.rir_bank_size: 0 is out of range"),
])
def test_reproduce_rejects_a_bad_override_before_any_work(tmp_path, capsys, override, message):
    """One line naming the override, exit 2, and nothing written: no data, no cache, no run folder."""
    from tf_scenes.experiments.cli import main

    out, data, cache = tmp_path / "out", tmp_path / "data", tmp_path / "cache"
    code = main(["reproduce", "two_stage", "--profile", "tiny", "--out", str(out), "--cache-dir", str(cache),
                 "--set", f"data.synthetic_dir={data}", "--set", override])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"tf-scenes reproduce: error: {message}")
    assert not out.exists() and not data.exists() and not cache.exists()


def test_a_second_study_into_the_same_folder_fails_at_once_naming_the_holder(tmp_path, capsys):
    import os

    from tf_scenes.experiments.cli import main
    from tf_scenes.experiments.study import output_lock

    out = tmp_path / "out"
    out.mkdir()
    with output_lock(out):  # a study holds the folder
        code = main(["reproduce", "two_stage", "--profile", "tiny", "--out", str(out), "--cache-dir",
                     str(tmp_path / "cache"), "--set", f"data.synthetic_dir={tmp_path / 'data'}"])
        err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"{out}: another study is writing into this folder (pid {os.getpid()} on" in err[0]
    assert not (tmp_path / "data").exists() and not (out / "runs").exists()
    with output_lock(out):  # released when the holder is done
        pass
