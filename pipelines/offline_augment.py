"""Offline (audio-level) augmentations of the two-stage ASC system.

Hu et al., "A two-stage approach to device-robust acoustic scene classification" (ICASSP 2021),
Sec. 3.2 and Table 3, as the authors' code does them (github.com/MihawkHu/DCASE2020_task1).
Each augmentation writes extra device-A training clips:

* spectrum correction: scale |STFT| of device-A clips by a per-bin device ratio learnt from
  parallel recordings (:func:`spectrum_correction_reference`, :func:`apply_spectrum_correction`);
* reverberation + dynamic range compression (:func:`reverb_drc`): pyroomacoustics ShoeBox RIR
  from a sampled RT60 (inverse Sabine), then a sox-style compander (:func:`compand`);
* pitch shift, speed change, Gaussian noise and same-class mixing (partners from every training
  clip of the scene, ``generate_augmented_set(partner_pool=...)``).

:mod:`pipelines.waveform_augment` computes the same augmentations online, in TensorFlow.

Every function is pure: it takes the signal and an explicit ``np.random.Generator`` and returns
``(y, params)`` where ``params`` is a JSON-able dict of what was drawn.
:func:`generate_augmented_set` writes the clips (24-bit wav, atomic), a manifest of the
parameters per clip, and skips work that a previous call with the same inputs already did.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from tf_scenes.datasets.tau2020 import AscRecord
from tf_scenes.errors import AudioError, DataFormatError
from tf_scenes.io_utils import (atomic_save_npy, atomic_write_json, atomic_write_text, dumps_json, ensure_writable_dir,
                        loads_json, read_json)

log = logging.getLogger(__name__)

SR = 44100
N_FFT = 2048
HOP = 1024
# Training devices other than A that have parallel recordings of device-A segments.
NON_A_TRAIN_DEVICES = ("b", "c", "s1", "s2", "s3")

# sox ``compand`` attack / decay times (s) of the reference recipe.
ATTACK_S = 0.2
DECAY_S = 0.3
# Transfer curves, (input dB, output dB) points, piecewise linear in dB.  Outside the first and
# last points the gain stays constant.  "light": 2:1 above -40 dB; "medium": +10 dB for quiet
# input, 2:1 above -30 dB; "heavy": +20 dB for quiet input, 4:1 above -40 dB.
COMPAND_CURVES = {
    "light": ((-90.0, -90.0), (-40.0, -40.0), (0.0, -20.0)),
    "medium": ((-90.0, -80.0), (-60.0, -50.0), (-30.0, -30.0), (0.0, -15.0)),
    "heavy": ((-90.0, -70.0), (-70.0, -50.0), (-40.0, -30.0), (0.0, -20.0)),
}

KINDS = ("spectrum_correction", "reverb_drc", "pitch_shift", "speed_change", "noise", "same_class_mix")
MANIFEST_VERSION = 1


# ----------------------------------------------------------------------------- STFT helpers

def stft(x: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Centred STFT, periodic Hann window, reflect padding (librosa.stft before 0.10, as the
    reference code ran it; matches ``librosa.stft(x, 2048, 1024, pad_mode="reflect")``).

    Returns complex64 (bins, frames) = (n_fft // 2 + 1, 1 + len(x) // hop).
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a mono signal (samples,), got shape {x.shape}")
    if len(x) <= n_fft // 2:
        raise ValueError(f"signal of {len(x)} samples is too short for n_fft={n_fft}")
    win = np.hanning(n_fft + 1)[:-1]
    xp = np.pad(x, n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop]  # (frames, n_fft)
    return np.fft.rfft(frames * win, axis=1).T.astype(np.complex64)  # (bins, frames)


def istft(spec: np.ndarray, length: int, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Inverse of :func:`stft` by weighted overlap-add; returns float32 (length,)."""
    win = np.hanning(n_fft + 1)[:-1]
    frames = np.fft.irfft(np.asarray(spec).T, n=n_fft, axis=1) * win  # (frames, n_fft)
    n_frames = frames.shape[0]
    total = n_fft + hop * (n_frames - 1)
    y = np.zeros(total)
    norm = np.zeros(total)
    for i in range(n_frames):
        y[i * hop:i * hop + n_fft] += frames[i]
        norm[i * hop:i * hop + n_fft] += win ** 2
    y = y / np.where(norm > 1e-10, norm, 1.0)
    y = y[n_fft // 2:n_fft // 2 + length]
    if len(y) < length:
        y = np.pad(y, (0, length - len(y)))
    return y.astype(np.float32)


# ----------------------------------------------------------------------------- spectrum correction

def pair_parallel(records: Sequence[AscRecord], devices: Sequence[str] = NON_A_TRAIN_DEVICES
                  ) -> dict[str, list[tuple[AscRecord, AscRecord]]]:
    """{device: [(device-A record, device record), ...]} for segments recorded by both."""
    a = {r.clip_id: r for r in records if r.device == "a"}
    pairs: dict[str, list[tuple[AscRecord, AscRecord]]] = {d: [] for d in devices}
    for r in records:
        if r.device in pairs and r.clip_id in a:
            pairs[r.device].append((a[r.clip_id], r))
    for d in pairs:
        pairs[d].sort(key=lambda p: p[1].filename)
    return pairs


def _default_read(sr: int) -> Callable:
    def read(item):
        from tf_scenes.audio import read_audio

        return read_audio(item, sr=sr)[0]
    return read


def spectrum_correction_reference(records_or_pairs, read_fn: Callable | None = None, *,
                                  devices: Sequence[str] = NON_A_TRAIN_DEVICES,
                                  max_pairs_per_device: int | None = None,
                                  rng: np.random.Generator | None = None, n_fft: int = N_FFT,
                                  hop: int = HOP, eps: float = 1e-8, sr: int = SR,
                                  reduce: str = "mean", return_per_device: bool = False):
    """Per-bin device ratio for spectrum correction (Hu et al. 2021, Sec. 3.2).

    For every parallel pair (device-A clip, device-d clip of the same segment) the ratio
    |STFT_d| / |STFT_A| is averaged over frames; pairs are averaged per device, and the devices
    are averaged with equal weight.  This is the paper's "average over all non-A training
    devices".  The reference code meant to do the same but its loop resets the pair index for
    every device, so only the last device (s3) survives; ``devices=("s3",)`` reproduces that.
    Time-frequency cells where |STFT_A| <= eps (digital silence) are left out.

    The mean over frames (paper and reference code) is heavy-tailed: frames where |STFT_A| is
    small in a bin give huge ratios.  On 3 white-noise clips of 1.5 s through a known FIR
    "device", the per-frame mean is within 3 % of the true |H| in the median bin but 50-70 %
    off in the worst 1 % of bins; ``reduce="median"`` (median over frames, mean over pairs)
    stays within 3 % in every bin (tests/test_offline_augment.py).

    Args:
      records_or_pairs: AscRecords (paired by clip_id, device A against `devices`), or a
        sequence of ``(a, dev)`` / ``(a, dev, device_name)`` items whose elements are paths (read
        with `read_fn`) or waveforms.
      read_fn: item -> mono float waveform; default reads the path with
        :func:`tf_scenes.audio.read_audio` at `sr`.
      max_pairs_per_device: use at most this many pairs per device, drawn with `rng` (the
        reference draws 150).
      reduce: "mean" (paper, reference) or "median" over the frames of a pair.
      return_per_device: also return {device: ratio}.

    Returns:
      float32 (n_fft // 2 + 1,) ratio (and the per-device dict when asked).
    """
    if reduce not in ("mean", "median"):
        raise ValueError(f"reduce must be 'mean' or 'median', got {reduce!r}")
    read_fn = read_fn or _default_read(sr)
    items = list(records_or_pairs)
    if items and isinstance(items[0], AscRecord):
        grouped = {d: [(a.path, b.path) for a, b in ps] for d, ps in pair_parallel(items, devices).items()}
        grouped = {d: ps for d, ps in grouped.items() if ps}
    else:
        grouped = {}
        for it in items:
            if len(it) not in (2, 3):
                raise ValueError("pairs must be (a, dev) or (a, dev, device_name)")
            grouped.setdefault(it[2] if len(it) == 3 else "dev", []).append((it[0], it[1]))
    if not grouped:
        raise DataFormatError("spectrum_correction_reference",
                              f"no parallel device-A / {'/'.join(devices)} pairs",
                              hint="pass training records of device A together with other devices")
    from tf_scenes.audio import summarised_warnings

    per_device = {}
    with summarised_warnings("spectrum-correction reference"):
        for dev, pairs in grouped.items():
            if max_pairs_per_device is not None and len(pairs) > max_pairs_per_device:
                rng = rng if rng is not None else np.random.default_rng(0)
                idx = np.sort(rng.choice(len(pairs), max_pairs_per_device, replace=False))
                pairs = [pairs[i] for i in idx]
            total = np.zeros(n_fft // 2 + 1)
            for item_a, item_d in pairs:
                xa = item_a if isinstance(item_a, np.ndarray) else read_fn(item_a)
                xd = item_d if isinstance(item_d, np.ndarray) else read_fn(item_d)
                for item, xi in ((item_a, xa), (item_d, xd)):
                    if len(xi) < n_fft:
                        where = "a waveform given as an array" if isinstance(item, np.ndarray) else item
                        raise AudioError(where, f"too short for the spectrum-correction ratio: {len(xi)} samples, "
                                         f"need at least {n_fft} (one STFT frame)")
                n = min(len(xa), len(xd))
                sa, sd = np.abs(stft(xa[:n], n_fft, hop)), np.abs(stft(xd[:n], n_fft, hop))
                ok = sa > eps
                ratio = np.where(ok, sd / np.where(ok, sa, 1.0), np.nan)  # (bins, frames)
                has = ok.any(axis=1)
                safe = np.where(has[:, None], ratio, 1.0)  # bins silent in every frame -> 1
                total += np.nanmean(safe, axis=1) if reduce == "mean" else np.nanmedian(safe, axis=1)
            per_device[dev] = (total / len(pairs)).astype(np.float32)
    ratio = np.mean(np.stack(list(per_device.values())), axis=0).astype(np.float32)
    return (ratio, per_device) if return_per_device else ratio


def apply_spectrum_correction(x: np.ndarray, ratio: np.ndarray, n_fft: int = N_FFT, hop: int = HOP
                              ) -> np.ndarray:
    """Scale |STFT(x)| per bin by `ratio`, keep the phase, invert; same length as x (float32)."""
    ratio = np.asarray(ratio, np.float64)
    if ratio.shape != (n_fft // 2 + 1,):
        raise ValueError(f"ratio must have shape ({n_fft // 2 + 1},), got {ratio.shape}")
    spec = stft(x, n_fft, hop)  # (bins, frames)
    return istft(spec * ratio[:, None], len(x), n_fft, hop)  # a real gain keeps the phase


# ----------------------------------------------------------------------------- reverb + DRC

def envelope(x: np.ndarray, sr: int, attack: float = ATTACK_S, decay: float = DECAY_S) -> np.ndarray:
    """sox compand's level follower on |x|: one-pole smoothing, faster rising than falling.

    ``v += (|x[n]| - v) * a`` with ``a = 1 - exp(-1 / (sr * t))``, t = attack when the level
    rises and decay when it falls (sox compand.c).
    """
    att = 1.0 - np.exp(-1.0 / (sr * attack)) if attack * sr > 1 else 1.0
    dec = 1.0 - np.exp(-1.0 / (sr * decay)) if decay * sr > 1 else 1.0
    out = np.empty(len(x))
    v = 0.0
    # A sample loop in plain floats: the update is nonlinear (rate depends on the sign), so it
    # does not map to lfilter; ~0.1 s per 10 s clip.
    for i, s in enumerate(np.abs(np.asarray(x, np.float64)).tolist()):
        d = s - v
        v += d * (att if d > 0 else dec)
        out[i] = v
    return out


def compand(x: np.ndarray, sr: int, curve, attack: float = ATTACK_S, decay: float = DECAY_S,
            floor_db: float = -120.0) -> np.ndarray:
    """Dynamic range compression like ``sox compand attack,decay points`` (no soft knee).

    The envelope (:func:`envelope`) in dB is mapped through the piecewise-linear transfer
    `curve` ((in_dB, out_dB) points, or a name of :data:`COMPAND_CURVES`); each sample is
    multiplied by the gain out - in.  Returns float32.
    """
    pts = np.asarray(COMPAND_CURVES[curve] if isinstance(curve, str) else curve, np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or np.any(np.diff(pts[:, 0]) <= 0):
        raise ValueError("curve must be (in_dB, out_dB) points with increasing in_dB")
    env_db = 20.0 * np.log10(np.maximum(envelope(x, sr, attack, decay), 10 ** (floor_db / 20)))
    gain_db = np.interp(env_db, pts[:, 0], pts[:, 1] - pts[:, 0])
    return (np.asarray(x, np.float64) * 10 ** (gain_db / 20)).astype(np.float32)


def _random_room(rng: np.random.Generator, rt60: float, room_min, room_max, tries: int = 50):
    import pyroomacoustics as pra

    for _ in range(tries):
        dims = rng.uniform(room_min, room_max)
        try:
            absorption, max_order = pra.inverse_sabine(rt60, dims)
        except ValueError:  # room too large for this RT60 (absorption would exceed 1)
            continue
        return dims, absorption, max_order
    raise ValueError(f"no room between {room_min} and {room_max} m reaches RT60 {rt60:.2f} s")


def _positions(rng: np.random.Generator, dims: np.ndarray, margin: float, min_dist: float, tries: int = 100):
    lo, hi = np.full(3, margin), dims - margin
    for _ in range(tries):
        src, mic = rng.uniform(lo, hi), rng.uniform(lo, hi)
        if np.linalg.norm(src - mic) >= min_dist:
            return src, mic
    raise ValueError(f"cannot place source and microphone {min_dist} m apart in room {dims.tolist()}")


def room_impulse_response(rng: np.random.Generator, sr: int = SR, rt60_range=(0.2, 1.0),
                          room_min=(3.0, 3.0, 2.5), room_max=(12.0, 10.0, 4.5), margin: float = 0.5,
                          min_distance: float = 1.0) -> tuple[np.ndarray, dict]:
    """A ShoeBox RIR (pyroomacoustics image source method) for a random room, RT60 and placement.

    RT60 ~ U(rt60_range); absorption and image order from ``pra.inverse_sabine``; source and
    microphone uniform inside the room, `margin` from the walls, at least `min_distance` apart.
    """
    import pyroomacoustics as pra

    rt60 = float(rng.uniform(*rt60_range))
    dims, absorption, max_order = _random_room(rng, rt60, np.asarray(room_min), np.asarray(room_max))
    src, mic = _positions(rng, dims, margin, min_distance)
    room = pra.ShoeBox(dims.tolist(), fs=sr, materials=pra.Material(float(absorption)),
                       max_order=int(max_order))
    room.add_source(src.tolist())
    room.add_microphone(mic.tolist())
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], np.float64)
    params = {"room_dim": dims.round(4).tolist(), "rt60": rt60, "absorption": float(absorption),
              "max_order": int(max_order), "source": src.round(4).tolist(), "mic": mic.round(4).tolist(),
              "rir_length": int(len(rir)), "direct_path_index": int(np.argmax(np.abs(rir)))}
    return rir, params


def reverb_drc(x: np.ndarray, sr: int, rng: np.random.Generator, *, rt60_range=(0.2, 1.0),
               curves: Sequence[str] = tuple(COMPAND_CURVES), attack: float = ATTACK_S,
               decay: float = DECAY_S) -> tuple[np.ndarray, dict]:
    """Reverberate with a random ShoeBox RIR, then compress (Hu et al. 2021, Sec. 3.2).

    The convolution is aligned to the RIR's direct-path peak (no added delay) and trimmed to
    len(x); the reverberant signal is scaled back to the RMS of x before the compander (whose
    curve is in absolute dBFS) and the output is scaled down only if it would clip.

    Returns:
      (float32 (len(x),), params): room_dim, rt60, absorption, max_order, source, mic,
      direct_path_index, curve, curve_points, attack, decay, level gains.
    """
    from scipy.signal import fftconvolve

    x = np.asarray(x, np.float64)
    rir, params = room_impulse_response(rng, sr, rt60_range)
    peak = params["direct_path_index"]
    wet = fftconvolve(x, rir)[peak:peak + len(x)]  # aligned to the direct path, original length
    rms_in, rms_wet = np.sqrt(np.mean(x ** 2)), np.sqrt(np.mean(wet ** 2))
    level = float(rms_in / rms_wet) if rms_wet > 0 else 1.0
    curve = str(curves[int(rng.integers(len(curves)))])
    y = compand(wet * level, sr, curve, attack, decay).astype(np.float64)
    top = float(np.max(np.abs(y))) if len(y) else 0.0
    out_gain = 0.999 / top if top > 0.999 else 1.0
    params.update(curve=curve, curve_points=[list(p) for p in COMPAND_CURVES[curve]], attack=attack, decay=decay,
                  reverb_level_gain=level, output_gain=out_gain)
    return (y * out_gain).astype(np.float32), params


# ----------------------------------------------------------------------------- simple augmentations

def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def pitch_shift(x: np.ndarray, sr: int, rng: np.random.Generator, semitone_range=(-4.0, 4.0)
                ) -> tuple[np.ndarray, dict]:
    """Pitch shift by U(semitone_range) semitones, same duration (audiomentations.PitchShift with its
    default method, Signalsmith Stretch; the reference code used librosa's phase vocoder, which the
    online :func:`pipelines.waveform_augment.apply_pitch_shift` follows).

    The shift is drawn from `rng` and passed to audiomentations as a fixed range, so the result
    does not depend on Python's global random state.
    """
    from audiomentations import PitchShift

    n = float(rng.uniform(*semitone_range))
    y = PitchShift(min_semitones=n, max_semitones=n, p=1.0)(samples=np.asarray(x, np.float32), sample_rate=sr)
    return _fit_length(np.asarray(y, np.float32), len(x)), {"semitones": n}


def speed_change(x: np.ndarray, sr: int, rng: np.random.Generator, rate_range=(0.5, 2.0)
                 ) -> tuple[np.ndarray, dict]:
    """Play x `rate` times faster (pitch and tempo together), rate ~ U(rate_range).

    Resampled with soxr from sr to sr / rate and played at sr, so frequencies scale by `rate`;
    then fitted to len(x): a faster clip (rate > 1) is zero-padded at the end, a slower one cut.
    """
    import soxr

    rate = float(rng.uniform(*rate_range))
    y = soxr.resample(np.asarray(x, np.float32), sr, sr / rate, quality="HQ")
    return _fit_length(np.asarray(y, np.float32), len(x)), {"rate": rate, "resampled_length": int(len(y))}


def add_noise(x: np.ndarray, rng: np.random.Generator, std: float = 0.01) -> tuple[np.ndarray, dict]:
    """x + N(0, std^2) white noise (reference: std 0.01)."""
    y = np.asarray(x, np.float64) + rng.normal(0.0, std, size=len(x))
    return y.astype(np.float32), {"std": float(std)}


def same_class_mix(y1: np.ndarray, y2: np.ndarray, rng: np.random.Generator, factor_range=(0.5, 1.0)
                   ) -> tuple[np.ndarray, dict]:
    """f1 * y1 + f2 * y2 with f1, f2 ~ U(factor_range); y2 is cut or zero-padded to len(y1)."""
    f1, f2 = (float(v) for v in rng.uniform(*factor_range, size=2))
    y = f1 * np.asarray(y1, np.float64) + f2 * _fit_length(np.asarray(y2, np.float64), len(y1))
    return y.astype(np.float32), {"f1": f1, "f2": f2}


# ----------------------------------------------------------------------------- generating a set

@dataclass(frozen=True)
class OfflineAugmentConfig:
    """Parameters of :func:`generate_augmented_set` (all part of the cache key)."""

    rt60_range: tuple[float, float] = (0.2, 1.0)
    curves: tuple[str, ...] = tuple(COMPAND_CURVES)
    semitone_range: tuple[float, float] = (-4.0, 4.0)
    rate_range: tuple[float, float] = (0.5, 2.0)
    noise_std: float = 0.01
    mix_factor_range: tuple[float, float] = (0.5, 1.0)
    spectrum_devices: tuple[str, ...] = NON_A_TRAIN_DEVICES
    spectrum_max_pairs: int | None = None   # the reference draws 150 pairs per device
    spectrum_reduce: str = "mean"           # "median" is the robust alternative
    source_devices: tuple[str, ...] = ("a",)


def _kind_params(cfg: OfflineAugmentConfig, kind: str) -> dict:
    keys = {"spectrum_correction": ("spectrum_devices", "spectrum_max_pairs", "spectrum_reduce"),
            "reverb_drc": ("rt60_range", "curves"), "pitch_shift": ("semitone_range",),
            "speed_change": ("rate_range",), "noise": ("noise_std",),
            "same_class_mix": ("mix_factor_range",)}[kind]
    d = dataclasses.asdict(cfg)
    return {k: list(d[k]) if isinstance(d[k], tuple) else d[k] for k in keys}


def _clip_seed(seed: int, kind: str, filename: str) -> int:
    """Per-clip seed: independent of the order and number of the other clips."""
    ss = np.random.SeedSequence([seed, zlib.crc32(kind.encode()), zlib.crc32(filename.encode())])
    return int(ss.generate_state(1, np.uint32)[0])


def _hash(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def augmented_name(filename: str, kind: str) -> str:
    """The file name of a clip's augmented copy of a kind: ``audio/{source stem}-{kind}.wav``."""
    stem = filename.rsplit("/", 1)[-1][:-len(".wav")]
    return f"audio/{stem}-{kind}.wav"


def _out_name(src: AscRecord, kind: str) -> str:
    return augmented_name(src.filename, kind)


def _out_record(root_out: Path, src: AscRecord, name: str) -> AscRecord:
    # Same scene, device and segment id as the source: grouped splits keep an augmented clip
    # with its source.
    return dataclasses.replace(src, path=root_out / name, filename=name)


def generate_augmented_set(records: Sequence[AscRecord], root_out, kinds: Sequence[str] = KINDS, seed: int = 0,
                           *, read_fn: Callable | None = None, sr: int = SR,
                           cfg: OfflineAugmentConfig = OfflineAugmentConfig(),
                           correction_ratio: np.ndarray | None = None, progress: bool = True,
                           partner_pool: Sequence[AscRecord] | None = None) -> list[AscRecord]:
    """Write augmented device-A training clips and their manifests; return their records.

    For each kind, every record of ``cfg.source_devices`` (device A) gives one new clip
    ``root_out/audio/{source stem}-{kind}.wav`` (24-bit PCM at `sr`, written atomically) with
    the scene, device ("a") and clip_id of its source.  Parameters drawn per clip
    (seeded by `seed`, the kind and the source name) go to ``root_out/manifests/{kind}.json``;
    ``root_out/manifest.json`` and ``root_out/augmented.csv`` (TAB: filename, scene_label;
    read it with ``tau2020.read_fold_csv(..., allow_augmented=True)``) list this call's clips.

    Caching: a kind's work is keyed by a hash of the kind, its parameters, the seed, the sample
    rate and the source list (plus the correction ratio).  When the kind's manifest has the same
    key and its files exist, nothing is read or computed.  An interrupted run resumes from the
    kind's journal (one line per finished clip).

    Args:
      records: training records; device-A ones are augmented, the others only feed the
        spectrum-correction ratio (parallel pairs) when `correction_ratio` is None.
      read_fn: path -> mono float waveform at `sr` (default :func:`tf_scenes.audio.read_audio`).
      correction_ratio: a precomputed (1025,) ratio for "spectrum_correction".
      partner_pool: the clips "same_class_mix" draws partners from: every training clip, so that
        a clip augmented from a small selection still finds partners of its scene (default: the
        `records` given).  A partner is drawn uniformly from the pool's clips of the source's
        scene, leaving out the source's own recording (its clip_id: the same segment on any
        device, whose mix would only filter it).  The pool is part of the kind's cache key.

    Raises:
      AudioError naming the file when a source clip is shorter than one STFT frame (N_FFT samples).
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown augmentation kind(s) {unknown}; known: {', '.join(KINDS)}")
    read_fn = read_fn or _default_read(sr)
    root_out = ensure_writable_dir(root_out)
    sources = sorted((r for r in records if r.device in cfg.source_devices), key=lambda r: r.filename)
    if not sources:
        raise DataFormatError(root_out, f"no records of device(s) {', '.join(cfg.source_devices)} to augment")
    by_scene: dict[str, list[AscRecord]] = {}
    pool = sorted(partner_pool if partner_pool is not None else records, key=lambda r: r.filename)
    for r in pool:
        by_scene.setdefault(r.scene, []).append(r)
    source_list = [r.filename for r in sources]
    src_by_name = {r.filename: r for r in sources}
    out_records: list[AscRecord] = []
    entries: list[dict] = []

    for kind in kinds:
        key_obj = {"version": MANIFEST_VERSION, "kind": kind, "params": _kind_params(cfg, kind), "seed": seed,
                   "sr": sr, "sources": source_list}
        ratio = None
        if kind == "spectrum_correction":
            ratio = correction_ratio if correction_ratio is not None else _cached_ratio(records, root_out, cfg,
                                                                                     read_fn, seed, sr)
            key_obj["ratio"] = hashlib.sha1(np.asarray(ratio, np.float32).tobytes()).hexdigest()
        if kind == "same_class_mix":
            key_obj["partner_pool"] = [r.filename for r in pool]
        key = _hash(key_obj)
        man_path = root_out / "manifests" / f"{kind}.json"
        done = _load_manifest(man_path, key, root_out)
        if done is None:
            done = _run_kind(kind, key, sources, by_scene, root_out, cfg, seed, sr, read_fn, ratio, progress)
            atomic_write_json(man_path, {"version": MANIFEST_VERSION, "key": key, "kind": kind,
                                         "params": key_obj["params"], "seed": seed, "sr": sr,
                                         "n_sources": len(sources), "clips": done})
            (root_out / "manifests" / f"{kind}.journal.jsonl").unlink(missing_ok=True)
        else:
            log.info("%s: %d clips already generated (key %s), skipping", kind, len(done), key[:12])
        for e in done:
            out_records.append(_out_record(root_out, src_by_name[e["source"]], e["filename"]))
        entries += done

    atomic_write_json(root_out / "manifest.json", {"version": MANIFEST_VERSION, "seed": seed, "sr": sr,
                                                  "kinds": list(kinds), "config": dataclasses.asdict(cfg),
                                                  "clips": entries})
    atomic_write_text(root_out / "augmented.csv", "filename\tscene_label\n"
                      + "".join(f"{r.filename}\t{r.scene}\n" for r in out_records))
    return out_records


def _load_manifest(path: Path, key: str, root_out: Path) -> list[dict] | None:
    if not path.is_file():
        return None
    try:
        man = read_json(path)
    except (json.JSONDecodeError, OSError):
        log.warning("%s: unreadable manifest, regenerating", path)
        return None
    if man.get("key") != key:
        log.info("%s: parameters or sources changed, regenerating", path)
        return None
    clips = man.get("clips", [])
    if not all((root_out / c["filename"]).is_file() for c in clips):
        log.warning("%s: some generated files are missing, regenerating", path)
        return None
    return clips


def _read_journal(path: Path, key: str, root_out: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if not path.is_file():
        return done
    for line in path.read_text().splitlines():
        try:
            e = loads_json(line)
        except json.JSONDecodeError:
            continue  # a line cut by an interruption
        if e.get("key") == key and (root_out / e["filename"]).is_file():
            done[e["source"]] = {k: v for k, v in e.items() if k != "key"}
    return done


def _run_kind(kind, key, sources, by_scene, root_out, cfg, seed, sr, read_fn, ratio, progress) -> list[dict]:
    """Generate one kind's clips, appending each finished clip to the kind's journal."""
    from tqdm.auto import tqdm

    from tf_scenes.audio import summarised_warnings, write_audio

    journal = root_out / "manifests" / f"{kind}.journal.jsonl"
    journal.parent.mkdir(parents=True, exist_ok=True)
    resumed = _read_journal(journal, key, root_out)
    if resumed:
        log.info("%s: resuming, %d clips already done", kind, len(resumed))
    entries = []
    with summarised_warnings(f"augment {kind}"), open(journal, "a") as jf, \
            tqdm(total=len(sources), desc=f"augment {kind}", disable=None if progress else True, unit="clip") as bar:
        for src in sources:
            if src.filename in resumed:
                entries.append(resumed[src.filename])
                bar.update(1)
                continue
            clip_seed = _clip_seed(seed, kind, src.filename)
            rng = np.random.default_rng(clip_seed)
            x = np.asarray(read_fn(src.path), np.float32)
            if len(x) < N_FFT:
                raise AudioError(src.path, f"too short for augmentation: {len(x)} samples ({len(x) / sr:.3f} s), "
                                 f"need at least {N_FFT} (one STFT frame)")
            extra = {}
            if kind == "spectrum_correction":
                y, params = apply_spectrum_correction(x, ratio), {}
            elif kind == "reverb_drc":
                y, params = reverb_drc(x, sr, rng, rt60_range=cfg.rt60_range, curves=cfg.curves)
            elif kind == "pitch_shift":
                y, params = pitch_shift(x, sr, rng, cfg.semitone_range)
            elif kind == "speed_change":
                y, params = speed_change(x, sr, rng, cfg.rate_range)
            elif kind == "noise":
                y, params = add_noise(x, rng, cfg.noise_std)
            else:  # same_class_mix
                others = [r for r in by_scene.get(src.scene, []) if r.clip_id != src.clip_id]
                if not others:
                    log.warning("%s: no %s clip of another recording to mix with, skipped", src.filename, src.scene)
                    bar.update(1)
                    continue
                partner = others[int(rng.integers(len(others)))]
                y, params = same_class_mix(x, np.asarray(read_fn(partner.path), np.float32), rng,
                                           cfg.mix_factor_range)
                extra["partner"] = partner.filename
            top = float(np.max(np.abs(y))) if len(y) else 0.0
            gain = 0.999 / top if top > 0.999 else 1.0  # never clip the 24-bit file
            name = _out_name(src, kind)
            write_audio(root_out / name, y * gain, sr, subtype="PCM_24")
            entry = {"filename": name, "source": src.filename, "scene": src.scene, "kind": kind,
                     "seed": clip_seed, "params": params, **extra, "write_gain": gain}
            jf.write(dumps_json({"key": key, **entry}, default=_json_default) + "\n")
            jf.flush()
            entries.append(loads_json(dumps_json(entry, default=_json_default)))
            bar.update(1)
    return entries


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _cached_ratio(records, root_out: Path, cfg: OfflineAugmentConfig, read_fn, seed: int, sr: int) -> np.ndarray:
    """Spectrum-correction ratio from the parallel pairs in `records`, cached as npy by pair list."""
    pairs = pair_parallel(records, cfg.spectrum_devices)
    key = _hash({"pairs": {d: [(a.filename, b.filename) for a, b in ps] for d, ps in pairs.items()},
                 "max_pairs": cfg.spectrum_max_pairs, "reduce": cfg.spectrum_reduce, "seed": seed, "sr": sr,
                 "n_fft": N_FFT, "hop": HOP})
    path = root_out / "manifests" / f"spectrum_correction_ratio-{key[:16]}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    ratio = spectrum_correction_reference(records, read_fn, devices=cfg.spectrum_devices,
                                          max_pairs_per_device=cfg.spectrum_max_pairs,
                                          rng=np.random.default_rng(seed), sr=sr,
                                          reduce=cfg.spectrum_reduce)
    atomic_save_npy(path, ratio)
    return ratio
