"""Reading and writing audio with clear errors.

Decoding uses soundfile (libsndfile: 8/16/24/32-bit PCM and float wav, and more); resampling uses
soxr.  Every problem raises :class:`~tf_scenes.errors.AudioError` naming the file.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np

from .errors import AudioError
from .io_utils import atomic_path

log = logging.getLogger(__name__)


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
    """soundfile.info with clear errors."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, expected an audio file")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(12)
    _check_riff(path, head, size)
    try:
        return sf.info(str(path))
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError with terse text
        raise AudioError(path, f"cannot decode audio: {e}",
                         "is it really a wav/flac file? check with `soxi` or `ffprobe`") from e


def read_audio(path, sr: int | None = None, *, mono: bool = True, channels: int | None = None,
               resample: bool = True, max_seconds: float | None = None,
               min_samples: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 in [-1, 1].

    Integer PCM (8/16/24/32-bit) is scaled by 2^-(bits-1) as libsndfile does.  Float files are
    returned as stored: samples beyond full scale are kept (a warning is logged), NaN / Inf
    samples raise.

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

    Returns:
      (audio float32 (samples,) or (samples, channels), sample rate)
    """
    import soundfile as sf

    path = Path(path)
    info = audio_info(path)
    frames = None if max_seconds is None else int(round(max_seconds * info.samplerate))
    try:
        x, file_sr = sf.read(str(path), frames=-1 if frames is None else frames, dtype="float32",
                             always_2d=True)
    except Exception as e:
        raise AudioError(path, f"cannot decode audio: {e}") from e
    if x.shape[0] == 0:
        raise AudioError(path, "no audio samples in file")
    if not np.all(np.isfinite(x)):
        bad = int(np.argmax(~np.isfinite(x).all(axis=1)))
        raise AudioError(path, f"non-finite sample (NaN or Inf) at sample {bad}",
                         "the file is corrupt; regenerate it or remove it from the list")
    peak = float(np.max(np.abs(x)))
    if peak > 1.0:  # only float files can exceed full scale; keep the values, as libsndfile does
        log.warning("%s: samples exceed full scale (peak %.3g > 1.0); kept unscaled", path, peak)
    n_ch = x.shape[1]
    if mono:
        if n_ch > 1:
            log.warning("%s: %d channels, down-mixing to mono by averaging", path, n_ch)
            x = x.mean(axis=1, keepdims=True)
    elif channels is not None and n_ch != channels:
        if n_ch == 1:
            log.warning("%s: mono file, repeating it to %d channels", path, channels)
            x = np.repeat(x, channels, axis=1)
        else:
            raise AudioError(path, f"has {n_ch} channels, expected {channels}")
    if sr is not None and file_sr != sr:
        if not resample:
            raise AudioError(path, f"sample rate is {file_sr} Hz, expected {sr} Hz")
        log.warning("%s: resampling %d Hz -> %d Hz", path, file_sr, sr)
        x = resample_audio(x, file_sr, sr)
        file_sr = sr
    x = x[:, 0] if mono else x
    if min_samples is not None and x.shape[0] < min_samples:
        raise AudioError(path, f"too short: {x.shape[0]} samples ({x.shape[0] / file_sr:.3f} s), "
                         f"need at least {min_samples} ({min_samples / file_sr:.3f} s)")
    return np.ascontiguousarray(x, dtype=np.float32), int(file_sr)


def resample_audio(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample along axis 0 with soxr (high quality)."""
    import soxr

    if sr_in == sr_out:
        return x
    return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32)


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
