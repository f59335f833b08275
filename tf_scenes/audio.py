"""Reading and writing audio with clear errors.

Decoding uses soundfile (libsndfile: 8/16/24/32-bit PCM and float wav, and more); resampling uses
soxr.  Every problem raises :class:`~tf_scenes.errors.AudioError` naming the file.

Per-file warnings (resampling, down-mixing, repeating channels, samples beyond full scale, zero
padding or cutting to a fixed length) are logged once per call.  Code that reads a whole dataset
wraps its loop in :func:`summarised_warnings`, which counts them instead and logs one line per
kind when the block ends::

    with summarised_warnings("feature cache"):
        for p in paths:
            x, sr = read_audio(p, sr=44100)
    # WARNING feature cache: resampled 126 of 400 files with soxr (48000 Hz -> 44100 Hz), e.g. ...
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import logging
import math
import os
import stat
import struct
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import AudioError
from .features.config import MAX_ABS_SAMPLE
from .io_utils import atomic_path

log = logging.getLogger(__name__)

def resample_read_margin(sr_in: int, sr_out: int) -> int:
    """Input samples to read beyond ``ceil(n * sr_in / sr_out)`` so that the first n samples
    resampled with soxr equal those of resampling the whole file."""
    # soxr's filter and block processing look ahead. Measured over every pair of 11 rates from 8 to
    # 192 kHz (random lengths): the prefix is bit-identical from at most 6,912 extra input samples
    # (48 kHz -> 8 kHz). The margin, one second of input plus 4096 per unit of down-sampling
    # ratio (53,248 samples for 48 kHz -> 8 kHz), is several times that.
    return int(sr_in) + 4096 * max(1, math.ceil(sr_in / sr_out))


# ----------------------------------------------------------------------------- warning summaries

_KINDS = ("resample", "downmix", "repeat", "full_scale", "cut", "padded")


class WarningSummary:
    """Counts the per-file warnings of :func:`read_audio` by kind; :meth:`log` writes one line per kind.

    Thread-safe (tf.data calls the readers from several threads). Each file counts once per kind.
    """

    def __init__(self, what: str | None = None):
        self.what = what
        self._lock = threading.Lock()
        self._files: set[str] = set()
        self._seen: dict[str, dict[str, object]] = {k: {} for k in _KINDS}  # kind -> {path: detail}
        self._logged = False

    def file(self, path) -> None:
        """Count `path` among the files read (the "of N files" of each line)."""
        with self._lock:
            self._files.add(str(path))

    def add(self, kind: str, path, detail) -> bool:
        """Count one warning; False (not counted) once the summary has been logged, so that a late
        reader (a dataset iterated after its block ended) logs its warning itself."""
        if kind not in self._seen:
            raise ValueError(f"unknown warning kind {kind!r}; known: {', '.join(_KINDS)}")
        with self._lock:
            if self._logged:
                return False
            self._files.add(str(path))
            self._seen[kind].setdefault(str(path), detail)
            return True

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {k: len(v) for k, v in self._seen.items() if v}

    def lines(self) -> list[str]:
        """One line per kind that occurred, in a fixed order."""
        with self._lock:
            total = len(self._files)
            seen = {k: dict(v) for k, v in self._seen.items() if v}
        out = []
        for kind, by_path in seen.items():
            n, example = len(by_path), next(iter(by_path))
            details = list(by_path.values())
            of = f"{n} of {total} files"
            if kind == "resample":
                pairs = ", ".join(f"{a} Hz -> {b} Hz" for a, b in sorted(set(details)))
                text = f"resampled {of} with soxr ({pairs}), e.g. {example}"
            elif kind == "downmix":
                chans = " or ".join(str(c) for c in sorted(set(details)))
                text = f"down-mixed {of} to mono by averaging their channels ({chans} channels), e.g. {example}"
            elif kind == "repeat":
                chans = " or ".join(str(c) for c in sorted(set(details)))
                text = f"repeated {of} (mono) to {chans} channels, e.g. {example}"
            elif kind == "full_scale":
                text = (f"{of} exceed full scale (peaks up to {max(details):.3g} > 1.0): kept unscaled, "
                        f"e.g. {example}")
            elif kind == "cut":  # detail: (file seconds, kept samples, rate)
                _, keep, rate = details[0]
                text = (f"cut {of} to their first {keep} samples ({keep / rate:.3f} s; longest file "
                        f"{max(d[0] for d in details):.3f} s), e.g. {example}")
            else:  # padded; detail: (file samples, length, rate)
                _, length, rate = details[0]
                text = (f"zero-padded {of} at the end to {length} samples ({length / rate:.3f} s; shortest "
                        f"file {min(d[0] for d in details) / rate:.3f} s), e.g. {example}")
            out.append(f"{self.what}: {text}" if self.what else text)
        return out

    def log(self, logger: logging.Logger | None = None) -> list[str]:
        """Log every line (WARNING) and return them. Later warnings are not counted (see add)."""
        with self._lock:
            self._logged = True  # first: no warning can be counted after the lines are made
        lines = self.lines()
        for line in lines:
            (logger or log).warning("%s", line)
        return lines


# The summary of the innermost `summarised_warnings` block of this context (thread / task); None
# outside one. A ContextVar, so concurrent readers in other threads or tasks are not affected.
_ACTIVE: contextvars.ContextVar[WarningSummary | None] = contextvars.ContextVar("tf_scenes_audio_summary",
                                                                               default=None)


@contextlib.contextmanager
def summarised_warnings(what: str | None = None, logger: logging.Logger | None = None):
    """Inside the block, read_audio's per-file warnings are counted, then logged as one line per
    kind when it ends (also when it ends with an exception). Yields the :class:`WarningSummary`.

    Only the calling thread's reads are counted; code that reads in other threads (tf.data) passes
    ``current_summary()`` to the readers explicitly (``summary=``).
    """
    summary = WarningSummary(what)
    token = _ACTIVE.set(summary)
    try:
        yield summary
    finally:
        _ACTIVE.reset(token)
        summary.log(logger)


def current_summary() -> WarningSummary | None:
    """The summary of the enclosing :func:`summarised_warnings` block, or None."""
    return _ACTIVE.get()


def _warn(summary: WarningSummary | None, kind: str, path, detail, message: str) -> None:
    """Count the warning in `summary` (or the active one), else log `path: message` now."""
    s = summary if summary is not None else _ACTIVE.get()
    if s is None or not s.add(kind, path, detail):
        log.warning("%s: %s", path, message)


def _seen(summary: WarningSummary | None, path) -> None:
    s = summary if summary is not None else _ACTIVE.get()
    if s is not None:
        s.file(path)


# ----------------------------------------------------------------------------- checks


def _check_path(path: Path) -> None:
    """AudioError unless `path` is (a symlink to) a regular file. Never opens it: opening a FIFO
    for reading blocks until a writer appears."""
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise AudioError(path, "symlink loop (following its links leads back to a link already followed)",
                             "fix or remove the link") from None
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            if os.path.islink(path):
                raise AudioError(path, f"broken symlink -> {os.readlink(path)} (the target does not exist)") from None
            raise AudioError(path, "file not found") from None
        raise AudioError(path, f"cannot access: {e.strerror or e}") from None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise AudioError(path, "is a directory, expected an audio file")
    if not stat.S_ISREG(mode):
        kind = ("FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode)
                else "character device" if stat.S_ISCHR(mode) else "block device" if stat.S_ISBLK(mode)
                else "special file")
        raise AudioError(path, f"not a regular file ({kind})", "audio is read from regular files only; "
                         "write the stream to a file first")


def _check_riff(path: Path, raw_head: bytes, size: int) -> None:
    """Detect truncated RIFF/WAVE files (libsndfile silently reads what is there)."""
    if raw_head[:4] not in (b"RIFF", b"RF64") or raw_head[8:12] != b"WAVE":
        return
    with open(path, "rb") as f:
        f.seek(12)
        while True:
            hdr = f.read(8)
            if len(hdr) < 8:
                raise AudioError(path, "truncated wav: no 'data' chunk found",
                                 "the file was probably cut off while being written or copied, or its header "
                                 "is corrupt")
            cid, csize = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == b"data":
                remaining = size - f.tell()
                if csize != 0xFFFFFFFF and remaining < csize:
                    raise AudioError(
                        path, f"truncated wav: header declares {csize} bytes of audio, file holds {remaining}",
                        "re-copy or re-generate the file")
                return
            f.seek(csize + (csize & 1), 1)


def audio_info(path):
    """soundfile.info with clear errors (missing, symlink loop or broken symlink, directory, FIFO /
    socket / device, empty, truncated wav, undecodable)."""
    import soundfile as sf

    path = Path(path)
    _check_path(path)
    size = path.stat().st_size
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as e:
        raise AudioError(path, f"cannot read: {e.strerror or e}") from None
    _check_riff(path, head, size)
    try:
        return sf.info(str(path))
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError with terse text
        raise AudioError(path, f"cannot decode audio: {e}",
                         "is it really a wav/flac file? check with `soxi` or `ffprobe`") from e


def _check_samples(path, x: np.ndarray, offset: int = 0) -> float:
    """AudioError for NaN / Inf or |sample| > MAX_ABS_SAMPLE in (frames, channels) `x` whose first
    frame is sample `offset` of the file; returns the peak."""
    if not np.all(np.isfinite(x)):
        bad = int(np.argmax(~np.isfinite(x).all(axis=1)))
        raise AudioError(path, f"non-finite sample (NaN or Inf) at sample {offset + bad}",
                         "the file is corrupt; regenerate it or remove it from the list")
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > MAX_ABS_SAMPLE:
        bad = int(np.argmax((np.abs(x) > MAX_ABS_SAMPLE).any(axis=1)))
        value = float(x[bad][np.argmax(np.abs(x[bad]))])
        raise AudioError(path, f"sample {offset + bad} is {value:.3g}, beyond the limit of {MAX_ABS_SAMPLE:.0e} "
                         "times full scale (its spectrum would overflow float32: features Inf / NaN)",
                         "the file is corrupt or holds unscaled data; rescale it to [-1, 1]")
    return peak


def _out_frames(frames: int, sr_in: int, sr_out: int) -> int:
    """Samples that `frames` samples at `sr_in` give at `sr_out` (as the probe counts them)."""
    return frames if sr_in == sr_out else int(round(frames * sr_out / sr_in))


# ----------------------------------------------------------------------------- reading


def read_audio(path, sr: int | None = None, *, mono: bool = True, channels: int | None = None,
               resample: bool = True, max_seconds: float | None = None,
               min_samples: int | None = None, num_samples: int | None = None,
               summary: WarningSummary | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 in [-1, 1].

    Integer PCM (8/16/24/32-bit) is scaled by 2^-(bits-1) as libsndfile does.  Float files are
    returned as stored: samples beyond full scale are kept (a warning is logged); NaN / Inf
    samples and samples beyond ``MAX_ABS_SAMPLE`` (1e12 times full scale, where spectra overflow;
    see :mod:`tf_scenes.features.config`) raise AudioError naming the sample.

    Args:
      path: the file.
      sr: expected sample rate. If the file has another rate it is resampled once with soxr and a
        warning is logged (or AudioError when ``resample=False``). None keeps the file's rate.
      mono: down-mix multi-channel audio to mono by averaging channels (logged). If False the
        result is (samples, channels).
      channels: if given (and mono is False), the exact channel count required. Mono input is
        repeated to this many channels (logged); any other mismatch raises.
      max_seconds: read at most this much audio (from the start).
      min_samples: raise AudioError if fewer samples than this remain (after resampling).
      num_samples: a fixed length (at the output rate): only the samples that give the first
        `num_samples` are decoded (memory stays bounded whatever the file's length; the samples
        are those of reading the whole file), and shorter audio is zero-padded at the end. A file
        cut or padded is logged.
      summary: count the warnings here instead of logging them (default: the enclosing
        :func:`summarised_warnings` block, if any).

    Returns:
      (audio float32 (samples,) or (samples, channels), sample rate)
    """
    import soundfile as sf

    path = Path(path)
    info = audio_info(path)
    file_sr = int(info.samplerate)
    out_sr = sr if sr is not None and resample else file_sr
    frames = None if max_seconds is None else int(round(max_seconds * file_sr))
    total = info.frames if frames is None else min(info.frames, frames)  # at the file's rate
    if num_samples is not None:
        need = num_samples if out_sr == file_sr else (
            math.ceil(num_samples * file_sr / out_sr) + resample_read_margin(file_sr, out_sr))
        frames = need if frames is None else min(frames, need)
    _seen(summary, path)
    try:
        x, file_sr = sf.read(str(path), frames=-1 if frames is None else frames, dtype="float32",
                             always_2d=True)
    except Exception as e:
        raise AudioError(path, f"cannot decode audio: {e}") from e
    if x.shape[0] == 0:
        raise AudioError(path, "no audio samples in file")
    peak = _check_samples(path, x)
    if peak > 1.0:  # only float files can exceed full scale; keep the values, as libsndfile does
        _warn(summary, "full_scale", path, peak, f"samples exceed full scale (peak {peak:.3g} > 1.0); kept unscaled")
    n_ch = x.shape[1]
    if mono:
        if n_ch > 1:
            _warn(summary, "downmix", path, n_ch, f"{n_ch} channels, down-mixing to mono by averaging")
            x = x.mean(axis=1, keepdims=True)
    elif channels is not None and n_ch != channels:
        if n_ch == 1:
            _warn(summary, "repeat", path, channels, f"mono file, repeating it to {channels} channels")
            x = np.repeat(x, channels, axis=1)
        else:
            raise AudioError(path, f"has {n_ch} channels, expected {channels}")
    if sr is not None and file_sr != sr:
        if not resample:
            raise AudioError(path, f"sample rate is {file_sr} Hz, expected {sr} Hz")
        _warn(summary, "resample", path, (file_sr, sr), f"resampling {file_sr} Hz -> {sr} Hz")
        x = resample_audio(x, file_sr, sr)
        file_sr = sr
    x = x[:, 0] if mono else x
    if min_samples is not None and x.shape[0] < min_samples:
        raise AudioError(path, f"too short: {x.shape[0]} samples ({x.shape[0] / file_sr:.3f} s), "
                         f"need at least {min_samples} ({min_samples / file_sr:.3f} s)")
    if num_samples is not None:
        x = _fix_length(path, x, num_samples, file_sr, _out_frames(total, int(info.samplerate), file_sr), summary)
    return np.ascontiguousarray(x, dtype=np.float32), int(file_sr)


def _fix_length(path, x: np.ndarray, num_samples: int, sr: int, full: int, summary) -> np.ndarray:
    """First `num_samples` of `x` (a prefix of a file of `full` samples), zero-padded at the end;
    a cut or padded file is logged."""
    if full > num_samples:
        _warn(summary, "cut", path, (full / sr, num_samples, sr),
              f"{full / sr:.3f} s long: only its first {num_samples} samples ({num_samples / sr:.3f} s) are used")
    x = x[:num_samples]
    if x.shape[0] < num_samples:
        _warn(summary, "padded", path, (x.shape[0], num_samples, sr),
              f"{x.shape[0]} samples ({x.shape[0] / sr:.3f} s): zero-padded at the end to {num_samples} samples "
              f"({num_samples / sr:.3f} s)")
        x = np.pad(x, [(0, num_samples - x.shape[0])] + [(0, 0)] * (x.ndim - 1))
    return x


def iter_audio_blocks(path, sr: int | None = None, *, block_seconds: float = 10.0,
                      summary: WarningSummary | None = None) -> Iterator[np.ndarray]:
    """Decode `path` block by block as float32 mono at `sr` (memory bounded by the block size).

    The samples, once concatenated, equal ``read_audio(path, sr)[0]`` (down-mixing and soxr
    streaming resampling give the same values as whole-file processing). The same checks and
    warnings apply; AudioError names the file and the sample.
    """
    import soundfile as sf
    import soxr

    path = Path(path)
    info = audio_info(path)
    file_sr = int(info.samplerate)
    out_sr = file_sr if sr is None else int(sr)
    block = max(1, int(round(block_seconds * file_sr)))
    _seen(summary, path)
    if info.channels > 1:
        _warn(summary, "downmix", path, info.channels, f"{info.channels} channels, down-mixing to mono by averaging")
    stream = None
    if out_sr != file_sr:
        _warn(summary, "resample", path, (file_sr, out_sr), f"resampling {file_sr} Hz -> {out_sr} Hz")
        stream = soxr.ResampleStream(file_sr, out_sr, 1, dtype="float32", quality="HQ")
    offset, peak = 0, 0.0
    try:
        f = sf.SoundFile(str(path))
    except Exception as e:
        raise AudioError(path, f"cannot decode audio: {e}") from e
    with f:
        while True:
            try:
                x = f.read(block, dtype="float32", always_2d=True)
            except Exception as e:
                raise AudioError(path, f"cannot decode audio at sample {offset}: {e}") from e
            last = x.shape[0] < block
            peak = max(peak, _check_samples(path, x, offset))
            offset += x.shape[0]
            x = x.mean(axis=1, keepdims=True) if x.shape[1] > 1 else x
            y = x[:, 0] if stream is None else stream.resample_chunk(x[:, 0], last=last)
            if y.size:
                yield np.ascontiguousarray(y, dtype=np.float32)
            if last:
                break
    if offset == 0:
        raise AudioError(path, "no audio samples in file")
    if peak > 1.0:
        _warn(summary, "full_scale", path, peak, f"samples exceed full scale (peak {peak:.3g} > 1.0); kept unscaled")


def resample_audio(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample along axis 0 with soxr (high quality)."""
    import soxr

    if sr_in == sr_out:
        return x
    return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32)


def waveform_at(waveform, sample_rate: int, target: int) -> np.ndarray:
    """An in-memory waveform as the readers return files: float32 mono ((samples, channels) is
    down-mixed), checked finite, resampled from `sample_rate` to `target` (soxr, as read_audio)."""
    from .errors import TFScenesError

    x = np.asarray(waveform, np.float32)
    if x.ndim == 2:  # (samples, channels): down-mix as the readers do
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise TFScenesError(f"expected a mono waveform (samples,) or (samples, channels), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise TFScenesError("the waveform holds NaN or Inf samples")
    return x if int(sample_rate) == int(target) else resample_audio(x, int(sample_rate), int(target))


def write_audio(path, x: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    """Write audio atomically (temporary name, then rename). x: (samples,) or (samples, channels)."""
    import soundfile as sf

    x = np.asarray(x)
    if not np.all(np.isfinite(x)):
        raise AudioError(path, "refusing to write non-finite samples")
    if subtype.startswith("PCM"):
        x = np.clip(x, -1.0, 1.0 - 2.0 ** -23)
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), x, sr, subtype=subtype, format="WAV")
    return Path(path)
