"""Online (tf.data) versions of the two-stage audio augmentations: pure, seeded TensorFlow functions.

Hu et al., "A two-stage approach to device-robust acoustic scene classification" (ICASSP 2021),
Sec. 3.2, and the authors' code (github.com/MihawkHu/DCASE2020_task1).  The offline implementation
(:mod:`tf_scenes.pipelines.offline_augment`) writes one wav file per clip and kind; the functions
here compute the same augmentations inside a tf.data pipeline (or on an accelerator), with TF ops
only in the per-clip path: no ``numpy_function`` or ``py_function``.

Kinds (:data:`REGISTRY`; also one function each, e.g. ``pitch_shift(waveform, seed, params)``)
return a waveform of the input's length (1-D float32 ``(samples,)``).  Each is split into a draw
(what the seed picks) and an apply (a deterministic function of the waveform and the drawn
values), so that a test can feed the offline implementation's draws to the online apply:

=====================  ============================================  ===========================
kind                   online (TF)                                   offline (numpy)
=====================  ============================================  ===========================
spectrum_correction    |STFT| x per-bin device ratio, inverse STFT   the same (numpy STFT)
reverb                 FFT convolution with a RIR of a cached bank,  per-clip pyroomacoustics
                       aligned to its direct path, RMS kept          room simulation
drc                    compander: envelope by policy iteration over  sample loop in Python
                       exact affine scans, piecewise-linear curve
reverb_drc             reverb then drc, then a peak limit (0.999)    :func:`reverb_drc`
pitch_shift            phase vocoder + band-limited resampling       audiomentations (Signalsmith)
speed_change           band-limited resampling, cut / zero-pad       soxr, cut / zero-pad
noise                  + N(0, std^2)                                 the same (numpy draw)
same_class_mix         f1 y1 + f2 y2 with a same-scene partner       the same
=====================  ============================================  ===========================

Equivalence with the offline functions, given the same drawn values (tests/test_waveform_augment.py):
waveform SNR >= 40 dB for every kind but pitch shift (measured: speed change 45-48 dB on full-band
pink noise, the others 134-152 dB); the pitch shift matches librosa's phase vocoder (the reference
code's method) at 46-47 dB and the offline Signalsmith shift in log-mel as closely as librosa
does (the algorithms differ).

Also :func:`apply_time_stretch` (the phase-vocoder time stretch alone, librosa's method), which
the raw-waveform study's window augmentation uses with the speed change, compander and noise.

In tf.data: :func:`augmented_dataset` (one copy per (clip, kind), clip-major) and :func:`copy_fn`
(one copy on demand, ``copy(clip, kind, epoch)``: the two-stage study's online mode computes a
copy's features as a training example, :class:`tf_scenes.pipelines.train_data.Computed`).

Seeds.  Every function takes a shape-[2] integer seed (stateless random ops, as
:mod:`tf_scenes.pipelines.augment`).  :func:`clip_seed` derives a clip's seed for a kind: mode "fixed" from
(seed, clip key, kind) only, so every epoch sees the same augmented copy (the reference's
semantics without the disk), mode "fresh" also folds in the epoch (a new draw every epoch).  Clip
keys (:func:`clip_keys`) hash the clip's filename, so a clip's copy does not depend on which other
clips are in the list or in what order.

Resources computed once, outside the per-clip path: the spectrum-correction ratio
(:func:`correction_ratio`, from the training set's parallel recordings, cached as npy) and the
room impulse response bank (:func:`rir_bank`, pyroomacoustics, cached as npz).  Same-scene
partners come from :class:`ScenePartners` (per-scene index tables over ALL training clips).

tensorflow-io: not installed in this environment (the package list names tensorflow-io 0.37.1), so
nothing could be run on TF 2.21; its audio source (``tensorflow_io/python/ops/audio_ops.py``) was
read for pure-TF functions that could replace parts of this module.  ``tfio.audio.resample`` calls
a compiled op (``core_ops.io_audio_resample``, which does not load on TF >= 2.18);
``spectrogram`` is ``|tf.signal.stft(pad_end=True)|``: magnitude only, not centred, no reflect
padding and no inverse, where spectrum correction needs the centred, reflect-padded complex STFT
and its window-normalised inverse; ``freq_mask`` / ``time_mask`` draw with the stateful
``tf.random.uniform`` (not reproducible per clip; :mod:`tf_scenes.pipelines.augment` has seeded ones);
``melscale`` / ``dbscale`` / ``fade`` / ``trim`` are not needed here; there is no time stretch or
pitch shift.  So nothing from it is used.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from .offline_augment import ATTACK_S, COMPAND_CURVES, DECAY_S, HOP, N_FFT, SR

from .augment import _as_seed, fold_seed

log = logging.getLogger(__name__)

# Only explicit tf.cond / switch_case / while_loop and Python loops over constants here: AutoGraph
# need not rewrite these functions when a tf.function or a tf.data map calls them (faster tracing).
_no_autograph = tf.autograph.experimental.do_not_convert

__all__ = ["WaveAugmentConfig", "AugmentParams", "RirBank", "ScenePartners", "REGISTRY", "KINDS",
           "augment", "apply_kinds", "clip_seed", "clip_keys", "rir_bank", "correction_ratio",
           "augmented_dataset", "copy_fn", "spectrum_correction", "reverb", "drc", "reverb_drc",
           "pitch_shift", "speed_change", "noise", "same_class_mix", "apply_spectrum_correction",
           "apply_reverb", "apply_pitch_shift", "apply_time_stretch", "apply_speed_change", "envelope",
           "compand", "resample_at", "kind_id"]

# The offline kinds (tf_scenes.pipelines.offline_augment.KINDS), then the two halves of reverb_drc.
KINDS = ("spectrum_correction", "reverb_drc", "pitch_shift", "speed_change", "noise", "same_class_mix")
ALL_KINDS = KINDS + ("reverb", "drc")
MODES = ("fixed", "fresh")
# Peak limit of the offline files (generate_augmented_set scales a clip down only if it would clip).
PEAK_LIMIT = 0.999
# Phase vocoder framing of librosa.effects.time_stretch (n_fft 2048, hop n_fft // 4).
PV_N_FFT, PV_HOP = 2048, 512
# Band-limited resampling: raised-cosine roll-off from 91.3 % of the cut-off to the cut-off (soxr's
# HQ passband end); 2x oversampling then cubic interpolation.  Against soxr HQ on 10 s of a
# full-band synthetic scene: SNR 52.7-73 dB for rates 0.5-1.9 (roll-off from 95 %: 45-64 dB; from
# 85 %: 43-59 dB; 4x or 8x oversampling: no gain).
RESAMPLE_PASSBAND = 0.913
RESAMPLE_OVERSAMPLE = 2
RESAMPLE_PAD = 4096


# ----------------------------------------------------------------------------- configuration

@dataclass(frozen=True)
class WaveAugmentConfig:
    """Parameters of the online kinds; the defaults are the offline ones
    (:class:`tf_scenes.pipelines.offline_augment.OfflineAugmentConfig`)."""

    sample_rate: int = SR
    rt60_range: tuple[float, float] = (0.2, 1.0)
    curves: tuple[str, ...] = tuple(COMPAND_CURVES)
    attack: float = ATTACK_S
    decay: float = DECAY_S
    semitone_range: tuple[float, float] = (-4.0, 4.0)
    rate_range: tuple[float, float] = (0.5, 2.0)
    noise_std: float = 0.01
    mix_factor_range: tuple[float, float] = (0.5, 1.0)
    n_fft: int = N_FFT  # spectrum correction STFT
    hop: int = HOP
    # Room impulse responses: a bank generated once (pyroomacoustics), one drawn per clip.  The
    # offline design simulates one room per clip.  For RT60 in 0.2-1.0 s a room takes 0.6-1.1 s
    # on average (measured on 2 cores) and its RIR up to ~4 s (165,009 samples at RT60 0.95 s),
    # so 128 rooms take ~1.5-2.5 min once and ~85 MB (float32, zero-padded to the longest).
    rir_bank_size: int = 128
    rir_bank_seed: int = 0

    def __post_init__(self):
        for name in ("rt60_range", "semitone_range", "rate_range", "mix_factor_range"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"WaveAugmentConfig.{name}: low end {lo} above high end {hi}")
        if self.rate_range[0] <= 0:
            raise ValueError(f"WaveAugmentConfig.rate_range must be > 0, got {self.rate_range}")
        unknown = [c for c in self.curves if c not in COMPAND_CURVES]
        if unknown or not self.curves:
            raise ValueError(f"WaveAugmentConfig.curves: unknown {unknown}; known: {list(COMPAND_CURVES)}")
        if self.rir_bank_size < 1:
            raise ValueError("WaveAugmentConfig.rir_bank_size must be >= 1")


@dataclass
class AugmentParams:
    """Everything the kinds need besides the waveform and the seed.

    ``ratio``: the (n_fft // 2 + 1,) spectrum-correction ratio (:func:`correction_ratio`);
    ``bank``: the RIR bank (:func:`rir_bank`).  Only the kinds that use them require them.
    """

    cfg: WaveAugmentConfig = field(default_factory=WaveAugmentConfig)
    ratio: np.ndarray | None = None
    bank: "RirBank | None" = None

    def ratio_tensor(self) -> tf.Tensor:
        if self.ratio is None:
            raise ValueError("spectrum_correction needs the device ratio: AugmentParams(ratio=correction_ratio(...))")
        r = np.asarray(self.ratio, np.float32)
        want = (self.cfg.n_fft // 2 + 1,)
        if r.shape != want:
            raise ValueError(f"spectrum-correction ratio must have shape {want}, got {r.shape}")
        return tf.constant(r)

    def require_bank(self) -> "RirBank":
        if self.bank is None:
            raise ValueError("reverb needs a room impulse response bank: AugmentParams(bank=rir_bank(...))")
        return self.bank


# ----------------------------------------------------------------------------- helpers

def _check_length(wave: tf.Tensor, min_samples: int, what: str, name=None) -> tf.Tensor:
    """`wave` as a 1-D float32 tensor of at least `min_samples` samples.

    A known length below it raises ValueError when traced; an unknown one is checked when run
    (InvalidArgumentError carrying the same sentence, and `name` when given, e.g. the file).
    """
    wave = tf.convert_to_tensor(wave)
    if wave.dtype != tf.float32:
        wave = tf.cast(wave, tf.float32)
    if wave.shape.rank is not None and wave.shape.rank != 1:
        raise ValueError(f"{what}: expected a mono waveform (samples,), got shape {wave.shape}")
    n = wave.shape[0] if wave.shape.rank == 1 else None
    msg = f"{what}: the clip is too short for augmentation: need at least {min_samples} samples (one STFT frame)"
    if n is not None:
        if n < min_samples:
            raise ValueError(f"{what}: the clip has {n} samples, too short for augmentation: need at least "
                             f"{min_samples} (one STFT frame)")
        return wave
    data = [msg, "; samples:", tf.shape(wave)[0]] + ([" clip:", name] if name is not None else [])
    check = tf.debugging.Assert(tf.shape(wave)[0] >= min_samples, data, summarize=1)
    with tf.control_dependencies([check]):
        return tf.identity(wave)


def _fit(x: tf.Tensor, n) -> tf.Tensor:
    """First `n` samples of x, zero-padded at the end when shorter (offline ``_fit_length``)."""
    x = x[:n]
    return tf.pad(x, [[0, n - tf.shape(x)[0]]])


def _hann(n: int, dtype=tf.float32) -> tf.Tensor:
    return tf.signal.hann_window(n, periodic=True, dtype=dtype)


def _stft(x: tf.Tensor, n_fft: int, hop: int, pad_mode: str) -> tf.Tensor:
    """Centred STFT (periodic Hann, n_fft // 2 padding on both sides): (frames, n_fft // 2 + 1)
    complex64, frames = 1 + len(x) // hop (librosa / offline_augment.stft)."""
    xp = tf.pad(x, [[n_fft // 2, n_fft // 2]], mode=pad_mode)
    return tf.signal.stft(xp, n_fft, hop, n_fft, window_fn=_hann, pad_end=False)


def _istft(spec: tf.Tensor, n_fft: int, hop: int, length) -> tf.Tensor:
    """Inverse of :func:`_stft` by weighted overlap-add, normalised by the overlap-added squared
    window (librosa's istft, offline_augment.istft), cut or zero-padded to `length`.

    ``tf.signal.inverse_stft`` with ``inverse_stft_window_fn`` divides by the steady-state sum of
    squared windows instead, which is wrong where fewer frames overlap: with hop = n_fft / 2 the
    last ``len % hop`` samples of the clip lie under one frame only, and their error against the
    offline inverse is -3.5 dB there (sin^4 + cos^4 instead of sin^4).  So the forward window is
    applied by ``inverse_stft`` and the normalisation is computed here.
    """
    y = tf.signal.inverse_stft(spec, n_fft, hop, n_fft, window_fn=_hann)  # OLA of irfft * window
    frames = tf.shape(spec)[0]
    w2 = tf.signal.overlap_and_add(tf.tile((_hann(n_fft) ** 2)[None], tf.stack([frames, 1])), hop)
    y = y / tf.where(w2 > 1e-10, w2, tf.ones_like(w2))
    return _fit(y[n_fft // 2:], length)


def _fast_lengths(limit: int = 2 ** 27) -> np.ndarray:
    """Sorted even 5-smooth numbers (2^a 3^b 5^c, a >= 1) up to `limit`: fast FFT sizes."""
    out = []
    p2 = 2
    while p2 <= limit:
        p3 = p2
        while p3 <= limit:
            p5 = p3
            while p5 <= limit:
                out.append(p5)
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return np.array(sorted(out), np.int64)


def _fast_len(n) -> tf.Tensor:
    """The smallest fast FFT size >= n (int32).  An even 5-smooth size instead of the next power
    of two: a 10 s clip plus padding (445,096 samples) takes 450,000 points, not 1,048,576, and
    the FFT pair 12.6 ms instead of 44 ms (measured, TF 2.21 CPU)."""
    table = tf.constant(_fast_lengths())
    i = tf.searchsorted(table, tf.reshape(tf.cast(n, tf.int64), [1]), side="left")[0]
    return tf.cast(tf.gather(table, i), tf.int32)


@_no_autograph
def resample_at(x: tf.Tensor, positions: tf.Tensor, cutoff) -> tf.Tensor:
    """Band-limited values of `x` at fractional sample `positions` (float32, any shape).

    `x` (zero outside its samples) is low-passed at `cutoff` (a fraction of its Nyquist
    frequency, <= 1: ``1 / step`` when reading every `step` > 1 samples, so nothing aliases) with a
    raised-cosine roll-off from ``RESAMPLE_PASSBAND * cutoff``, oversampled 2x, both in one FFT,
    and read with cubic (4-point Lagrange) interpolation.  Static output shape: usable for
    arbitrary (drawn) rates without dynamic shapes in the output.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    positions = tf.convert_to_tensor(positions, tf.float32)
    cutoff = tf.clip_by_value(tf.cast(cutoff, tf.float32), 1e-3, 1.0)
    n = tf.shape(x)[0]
    nfft = _fast_len(n + RESAMPLE_PAD)  # zero padding: the FFT's circular wrap stays in the zeros
    half = nfft // 2
    spec = tf.signal.rfft(tf.pad(x, [[0, nfft - n]]), fft_length=tf.reshape(nfft, [1]))  # (half + 1,)
    k = tf.cast(tf.range(half + 1), tf.float32) / tf.cast(half, tf.float32)  # fraction of Nyquist
    lo = cutoff * RESAMPLE_PASSBAND
    g = tf.clip_by_value((cutoff - k) / (cutoff - lo), 0.0, 1.0)
    g = 0.5 - 0.5 * tf.cos(np.pi * g)  # 1 in the passband, raised-cosine to 0 at the cut-off
    up = RESAMPLE_OVERSAMPLE
    spec_up = tf.pad(spec * tf.cast(g, tf.complex64), [[0, (up - 1) * half]])  # (up * half + 1,)
    xu = tf.signal.irfft(spec_up, fft_length=tf.reshape(up * nfft, [1])) * float(up)  # (up * nfft,)
    p = positions * float(up)
    i0 = tf.floor(p)
    f = (p - i0)[..., None]
    idx = tf.clip_by_value(tf.cast(i0, tf.int32)[..., None] + tf.constant([-1, 0, 1, 2]), 0, up * nfft - 1)
    taps = tf.gather(xu, idx)  # (..., 4)
    w = tf.concat([-f * (f - 1) * (f - 2) / 6, (f + 1) * (f - 1) * (f - 2) / 2,
                   -(f + 1) * f * (f - 2) / 2, (f + 1) * f * (f - 1) / 6], axis=-1)
    return tf.reduce_sum(taps * w, axis=-1)


def _uniform(seed, lo, hi, shape=()) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed=seed, minval=float(lo), maxval=float(hi), dtype=tf.float32)


def _index(seed, n: int) -> tf.Tensor:
    return tf.random.stateless_uniform([], seed=seed, minval=0, maxval=int(n), dtype=tf.int32)


# ----------------------------------------------------------------------------- spectrum correction

@_no_autograph
def apply_spectrum_correction(wave, ratio, n_fft: int = N_FFT, hop: int = HOP) -> tf.Tensor:
    """Scale |STFT(wave)| per frequency bin by `ratio` and invert, keeping the phase (Hu et al. 2021,
    Sec. 3.2; offline :func:`~tf_scenes.pipelines.offline_augment.apply_spectrum_correction`).

    Centred STFT with reflect padding, periodic Hann, n_fft 2048, hop 1024; same length out.
    """
    wave = _check_length(wave, n_fft, "spectrum_correction")
    spec = _stft(wave, n_fft, hop, "REFLECT")  # (frames, bins)
    ratio = tf.cast(tf.convert_to_tensor(ratio), tf.complex64)  # a real gain keeps the phase
    return _istft(spec * ratio[None], n_fft, hop, tf.shape(wave)[0])


# ----------------------------------------------------------------------------- reverb

@dataclass(frozen=True)
class RirBank:
    """Room impulse responses generated once: ``rirs`` (n, max_len) float32 zero-padded,
    ``direct_path`` (n,) the index of each RIR's largest sample, ``params`` what each room was."""

    rirs: np.ndarray
    direct_path: np.ndarray
    params: tuple
    key: str = ""

    def __len__(self) -> int:
        return int(self.rirs.shape[0])

    @functools.cached_property
    def _tensors(self) -> tuple[tf.Tensor, tf.Tensor]:
        # Made eagerly once and captured by the graphs that use them (tf.data map functions,
        # tf.function), not copied into each graph as a constant (the bank is tens of MB).
        with tf.init_scope():
            return tf.constant(self.rirs, tf.float32), tf.constant(self.direct_path, tf.int32)

    def tensors(self) -> tuple[tf.Tensor, tf.Tensor]:
        """(rirs (n, max_len) float32, direct_path (n,) int32) tensors."""
        return self._tensors


def rir_bank(size: int = 128, rt60_range=(0.2, 1.0), sample_rate: int = SR, seed: int = 0,
             cache_dir=None, progress: bool = False) -> RirBank:
    """`size` ShoeBox RIRs (pyroomacoustics image source method), generated once and cached.

    RIR i is :func:`tf_scenes.pipelines.offline_augment.room_impulse_response` drawn from
    ``np.random.default_rng([seed, i])``: the same rooms (RT60 ~ U(rt60_range), inverse Sabine,
    random source and microphone) as the offline augmentation draws per clip.  With `cache_dir`
    the bank is read from / written to ``cache_dir/rir_bank-KEY.npz`` (atomic write), KEY hashing
    the size, RT60 range, rate, seed and the pyroomacoustics version.
    """
    import pyroomacoustics as pra

    from tf_scenes.io_utils import atomic_path
    from tf_scenes.pipelines.offline_augment import room_impulse_response

    size = int(size)
    if size < 1:
        raise ValueError(f"rir_bank: size must be >= 1, got {size}")
    rt60_range = (float(rt60_range[0]), float(rt60_range[1]))
    key = hashlib.sha1(json.dumps({"size": size, "rt60_range": rt60_range, "sr": int(sample_rate), "seed": int(seed),
                                   "pyroomacoustics": pra.__version__, "version": 1}, sort_keys=True).encode()
                       ).hexdigest()[:16]
    path = Path(cache_dir) / f"rir_bank-{key}.npz" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return RirBank(z["rirs"], z["direct_path"], tuple(json.loads(str(z["params"]))), key)
        except (OSError, ValueError, KeyError) as e:
            log.warning("%s: unreadable RIR bank (%s), regenerating", path, e)
    from tqdm.auto import tqdm

    rirs, peaks, params = [], [], []
    for i in tqdm(range(size), desc="RIR bank", unit="room", disable=None if progress else True):
        rir, p = room_impulse_response(np.random.default_rng([int(seed), i]), int(sample_rate), rt60_range)
        rirs.append(rir.astype(np.float32))
        peaks.append(p["direct_path_index"])
        params.append(p)
    out = np.zeros((size, max(len(r) for r in rirs)), np.float32)
    for i, r in enumerate(rirs):
        out[i, :len(r)] = r
    bank = RirBank(out, np.asarray(peaks, np.int32), tuple(params), key)
    if path is not None:
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, rirs=bank.rirs, direct_path=bank.direct_path, params=np.array(json.dumps(params)))
        log.info("RIR bank of %d rooms written to %s", size, path)
    return bank


@_no_autograph
def apply_reverb(wave, rir, direct_path) -> tf.Tensor:
    """Convolve with `rir` (FFT), aligned to its direct path (sample `direct_path`), original length
    (offline: ``fftconvolve(x, rir)[peak:peak + len(x)]``)."""
    wave = tf.convert_to_tensor(wave, tf.float32)
    rir = tf.convert_to_tensor(rir, tf.float32)
    n = tf.shape(wave)[0]
    nfft = _fast_len(n + tf.shape(rir)[0] - 1)  # linear, not circular, convolution
    fl = tf.reshape(nfft, [1])
    wet = tf.signal.irfft(tf.signal.rfft(wave, fl) * tf.signal.rfft(rir, fl), fl)  # (nfft,)
    return wet[direct_path:direct_path + n]


def _level_to(x, ref) -> tf.Tensor:
    """x scaled to the RMS of `ref` (unchanged when x is silent)."""
    rms_ref = tf.sqrt(tf.reduce_mean(tf.square(ref)))
    rms_x = tf.sqrt(tf.reduce_mean(tf.square(x)))
    return x * tf.where(rms_x > 0, rms_ref / tf.where(rms_x > 0, rms_x, 1.0), 1.0)


def _limit_peak(x, limit: float = PEAK_LIMIT) -> tf.Tensor:
    top = tf.reduce_max(tf.abs(x))
    return x * tf.where(top > limit, limit / tf.where(top > limit, top, 1.0), 1.0)


# ----------------------------------------------------------------------------- compander

def _affine_scan(a: tf.Tensor, b: tf.Tensor, block: int = 64, min_a: float | None = None) -> tf.Tensor:
    """v[n] = a[n] v[n-1] + b[n] with v[-1] = 0, for 1-D a, b (exact; no sequential loop).

    The composition of affine maps is associative, so the recurrence is a prefix scan, computed
    in blocks: inside each block, then over the blocks' total maps, then each block is started
    from the state its predecessors leave.  Inside a block the scan is recursive doubling
    (log2(block) vector steps), or, when every factor is known to be >= `min_a` and the products
    over a block stay above 1e-6 (no loss of precision), the closed form
    ``v = P (v_in + cumsum(b / P))`` with ``P = cumprod(a)`` in blocks of 1024 (4 vector passes;
    the compander's coefficients allow it: (1 - 1/8820)^1024 = 0.89).
    """
    if min_a is not None and min_a > 0 and min_a ** 1024 > 1e-6:
        block = 1024
    n = tf.shape(a)[0]
    nb = (n + block - 1) // block
    pad = nb * block - n
    A = tf.reshape(tf.pad(a, [[0, pad]], constant_values=1.0), tf.stack([nb, block]))  # (blocks, block)
    B = tf.reshape(tf.pad(b, [[0, pad]]), tf.stack([nb, block]))
    if block == 1024:
        A = tf.math.cumprod(A, axis=1)
        B = A * tf.math.cumsum(B / A, axis=1)
    else:
        d = 1
        while d < block:  # inclusive scan inside each block
            A_prev = tf.pad(A[:, :-d], [[0, 0], [d, 0]], constant_values=1.0)
            B_prev = tf.pad(B[:, :-d], [[0, 0], [d, 0]])
            B = A * B_prev + B
            A = A * A_prev
            d *= 2
    # Block totals, scanned over the blocks (recursive doubling with a dynamic number of steps).
    At, Bt = A[:, -1], B[:, -1]

    def body(d, At, Bt):
        A_prev = tf.concat([tf.ones([tf.minimum(d, nb)], At.dtype), At[:nb - tf.minimum(d, nb)]], 0)
        B_prev = tf.concat([tf.zeros([tf.minimum(d, nb)], Bt.dtype), Bt[:nb - tf.minimum(d, nb)]], 0)
        return d * 2, At * A_prev, At * B_prev + Bt

    _, _, carry = tf.while_loop(lambda d, *_: d < nb, body, [tf.constant(1), At, Bt])
    start = tf.concat([tf.zeros([1], b.dtype), carry[:-1]], 0)  # state entering each block
    v = A * start[:, None] + B  # (blocks, block)
    return tf.reshape(v, [-1])[:n]


@_no_autograph
def envelope(x, sample_rate: int = SR, attack: float = ATTACK_S, decay: float = DECAY_S,
             max_iterations: int = 32, dtype=tf.float64, return_iterations: bool = False):
    """sox compand's level follower on |x| (offline :func:`~tf_scenes.pipelines.offline_augment.envelope`):
    ``v[n] = v[n-1] + (|x[n]| - v[n-1]) * c``, c = the attack coefficient when the level rises,
    the decay coefficient when it falls, v[-1] = 0.

    Vectorised exactly by policy iteration: for a fixed choice of coefficient per sample (a
    "policy") the recurrence is linear and solved by :func:`_affine_scan`; the policy is then
    re-chosen from the solution (attack where |x[n]| > v[n-1]) until it no longer changes, which
    is the sequential solution.  Each step's update is a max (attack faster than decay) or min of
    two increasing affine maps of v[n-1], so the solution is monotone in the policy and the
    iteration converges in finitely many steps (a Newton method for the max-recurrence).
    Measured: at most 6 iterations on scenes, tones, square waves, impulses, silence and noise
    (tests/test_waveform_augment.py); agreement with the sample loop to 1e-13 relative (float64).
    Speed (CPU time, 2-core machine shared with other work): 8 ms per second of audio (~65 ms per
    10 s clip), the Python sample loop 10 ms per second, and ``tf.scan`` over the samples (the
    sequential recursion in TF) 460 ms per second, 57x slower.  `max_iterations` bounds the loop
    (never reached in the tests); ``return_iterations=True`` also returns how many re-solves it took.
    """
    s = tf.abs(tf.cast(tf.convert_to_tensor(x), dtype))
    att = 1.0 - math.exp(-1.0 / (sample_rate * attack)) if attack * sample_rate > 1 else 1.0
    dec = 1.0 - math.exp(-1.0 / (sample_rate * decay)) if decay * sample_rate > 1 else 1.0
    min_a = 1.0 - max(att, dec)
    att, dec = tf.constant(att, dtype), tf.constant(dec, dtype)

    def solve(rising):
        c = tf.where(rising, att, dec)
        return _affine_scan(1.0 - c, c * s, min_a=min_a)

    def prev(v):
        return tf.concat([tf.zeros([1], dtype), v[:-1]], 0)

    rising = tf.ones_like(s, tf.bool)
    v = solve(rising)

    def body(k, rising, v, changed):
        new = s > prev(v)
        return k + 1, new, solve(new), tf.reduce_any(new != rising)

    k, _, v, _ = tf.while_loop(lambda k, r, v, changed: changed & (k < max_iterations), body,
                               [tf.constant(0), rising, v, tf.constant(True)])
    return (v, k) if return_iterations else v


def _curve_table(curves: Sequence) -> np.ndarray:
    """(n_curves, points, 2) float32 of (in_dB, out_dB) points, shorter curves extended by points
    10 dB apart on their last segment's constant gain (which changes nothing)."""
    pts = [np.asarray(COMPAND_CURVES[c] if isinstance(c, str) else c, np.float64) for c in curves]
    for p in pts:
        if p.ndim != 2 or p.shape[1] != 2 or np.any(np.diff(p[:, 0]) <= 0):
            raise ValueError("curve must be (in_dB, out_dB) points with increasing in_dB")
    k = max(len(p) for p in pts)
    out = []
    for p in pts:
        extra = [p[-1] + 10.0 * (j + 1) for j in range(k - len(p))]
        out.append(np.concatenate([p, np.asarray(extra).reshape(-1, 2)]) if extra else p)
    return np.stack(out).astype(np.float32)


def _interp_gain(env_db, points) -> tf.Tensor:
    """np.interp(env_db, in, out - in) for (points, 2): constant beyond the end points."""
    x, g = points[:, 0], points[:, 1] - points[:, 0]
    frac = tf.clip_by_value((env_db[:, None] - x[None, :-1]) / (x[None, 1:] - x[None, :-1]), 0.0, 1.0)
    return g[0] + tf.reduce_sum(frac * (g[1:] - g[:-1])[None], axis=1)


@_no_autograph
def compand(wave, curve_points, sample_rate: int = SR, attack: float = ATTACK_S, decay: float = DECAY_S,
            floor_db: float = -120.0) -> tf.Tensor:
    """Dynamic range compression like ``sox compand attack,decay points`` (offline
    :func:`~tf_scenes.pipelines.offline_augment.compand`): the :func:`envelope` in dB mapped
    through the piecewise-linear curve ((points, 2) (in_dB, out_dB)); each sample times the gain."""
    wave = tf.convert_to_tensor(wave, tf.float32)
    points = tf.convert_to_tensor(curve_points, tf.float32)
    env = tf.cast(envelope(wave, sample_rate, attack, decay), tf.float32)
    env_db = 20.0 * tf.math.log(tf.maximum(env, 10.0 ** (floor_db / 20.0))) / math.log(10.0)
    gain_db = _interp_gain(env_db, points)
    return wave * tf.exp(gain_db * (math.log(10.0) / 20.0))  # 10^(dB/20); exp is 10x faster than pow


# ----------------------------------------------------------------------------- pitch and speed

def _unit(z: tf.Tensor) -> tf.Tensor:
    """z / |z| (1 where z == 0, as np.angle(0) == 0)."""
    m = tf.abs(z)
    return tf.where(m > 0, z / tf.cast(tf.where(m > 0, m, 1.0), z.dtype), tf.ones_like(z))


def _phase_vocoder(spec: tf.Tensor, rate, hop: int) -> tf.Tensor:
    """librosa.phase_vocoder, vectorised: (frames, bins) -> (ceil(frames / rate), bins).

    librosa advances each bin's phase by the expected advance phi (pi * hop * bin / (bins - 1))
    plus the wrapped deviation ``angle(c1) - angle(c0) - phi``, i.e. by ``angle(c1) - angle(c0)``
    modulo 2 pi.  So the output phasor is the running product of the unit phasors
    ``(c1 / |c1|) conj(c0 / |c0|)``: a cumulative product, without arctangents or sines (those
    cost 3x the rest of this function on the CPU, measured), and without librosa's float32
    accumulation of the unwrapped phase (whose rounding grows with the phase, ~0.1 rad per step
    after 10 s).
    """
    n_frames = tf.shape(spec)[0]
    steps = tf.range(0.0, tf.cast(n_frames, tf.float64), tf.cast(rate, tf.float64), dtype=tf.float64)
    i0 = tf.cast(tf.floor(steps), tf.int32)
    alpha = tf.cast(steps - tf.floor(steps), tf.float32)[:, None]  # (steps, 1)
    padded = tf.pad(spec, [[0, 2], [0, 0]])  # librosa pads two zero frames
    mags, units = tf.abs(padded), _unit(padded)
    mag = (1.0 - alpha) * tf.gather(mags, i0) + alpha * tf.gather(mags, i0 + 1)  # (steps, bins)
    turn = tf.gather(units, i0 + 1) * tf.math.conj(tf.gather(units, i0))  # phase advance per step
    phasor = units[0][None] * tf.math.cumprod(turn, axis=0, exclusive=True)
    return tf.cast(mag, tf.complex64) * _unit(phasor)  # renormalised: rounding of the product


@_no_autograph
def apply_pitch_shift(wave, semitones, n_fft: int = PV_N_FFT, hop: int = PV_HOP) -> tf.Tensor:
    """Shift the pitch by `semitones`, same duration: librosa.effects.pitch_shift's method (time
    stretch by 2^(-semitones/12) with a phase vocoder, centred zero-padded STFT n_fft 2048, hop
    512; then band-limited resampling back by the same factor; cut / zero-pad to the length)."""
    wave = _check_length(wave, n_fft, "pitch_shift")
    n = tf.shape(wave)[0]
    rate = tf.pow(tf.constant(2.0, tf.float64), -tf.cast(semitones, tf.float64) / 12.0)
    stretched_spec = _phase_vocoder(_stft(wave, n_fft, hop, "CONSTANT"), rate, hop)
    n_stretch = tf.cast(tf.round(tf.cast(n, tf.float64) / rate), tf.int32)
    stretched = _istft(stretched_spec, n_fft, hop, n_stretch)
    # Resample from sr / rate to sr: output sample m sits at stretched sample m / rate.
    step = tf.cast(1.0 / rate, tf.float32)
    pos = tf.range(n, dtype=tf.float32) * step
    y = resample_at(stretched, pos, tf.minimum(1.0, 1.0 / step))
    return tf.where(pos < tf.cast(n_stretch, tf.float32), y, 0.0)


@_no_autograph
def apply_time_stretch(wave, rate, n_fft: int = PV_N_FFT, hop: int = PV_HOP) -> tf.Tensor:
    """Play `wave` `rate` times faster at the same pitch: librosa.effects.time_stretch's method
    (phase vocoder on the centred, zero-padded STFT, n_fft 2048, hop 512), then cut (rate < 1) or
    zero-padded (rate > 1) to the input's length."""
    wave = _check_length(wave, n_fft, "time_stretch")
    n = tf.shape(wave)[0]
    # A Python float stays float64 (not rounded to float32 first): the vocoder's steps k * rate
    # that land on whole frames decide which phase advance is used, as in librosa.
    rate = tf.cast(tf.convert_to_tensor(rate, dtype_hint=tf.float64), tf.float64)
    stretched_spec = _phase_vocoder(_stft(wave, n_fft, hop, "CONSTANT"), rate, hop)
    n_stretch = tf.cast(tf.round(tf.cast(n, tf.float64) / rate), tf.int32)
    return _fit(_istft(stretched_spec, n_fft, hop, n_stretch), n)


@_no_autograph
def apply_speed_change(wave, rate) -> tf.Tensor:
    """Play `wave` `rate` times faster (pitch and tempo together): output sample m is the
    band-limited value at input time m * rate; past the input's end the output is zero (offline:
    soxr from sr to sr / rate, then cut or zero-padded to the length)."""
    wave = tf.convert_to_tensor(wave, tf.float32)
    n = tf.shape(wave)[0]
    rate = tf.cast(rate, tf.float32)
    pos = tf.range(n, dtype=tf.float32) * rate
    y = resample_at(wave, pos, tf.minimum(1.0, 1.0 / rate))
    return tf.where(pos < tf.cast(n, tf.float32), y, 0.0)


# ----------------------------------------------------------------------------- the kinds: draw + apply

def _sub(seed, k: int) -> tf.Tensor:
    return fold_seed(seed, k)


def _draw_spectrum_correction(seed, wave, params) -> dict:
    return {}


def _apply_spectrum_correction(wave, drawn, params, partner=None):
    return apply_spectrum_correction(wave, params.ratio_tensor(), params.cfg.n_fft, params.cfg.hop)


def _draw_reverb(seed, wave, params) -> dict:
    return {"rir_index": _index(_sub(seed, 0), len(params.require_bank()))}


def _apply_reverb(wave, drawn, params, partner=None):
    wave = _check_length(wave, params.cfg.n_fft, "reverb")
    rirs, peaks = params.require_bank().tensors()
    i = drawn["rir_index"]
    wet = apply_reverb(wave, tf.gather(rirs, i), tf.gather(peaks, i))
    return _level_to(wet, wave)  # the loudness of the dry clip (offline: before the compander)


def _draw_drc(seed, wave, params) -> dict:
    return {"curve_index": _index(_sub(seed, 1), len(params.cfg.curves))}


def _apply_drc(wave, drawn, params, partner=None):
    cfg = params.cfg
    wave = _check_length(wave, cfg.n_fft, "drc")
    points = tf.gather(tf.constant(_curve_table(cfg.curves)), drawn["curve_index"])
    return _limit_peak(compand(wave, points, cfg.sample_rate, cfg.attack, cfg.decay))


def _draw_reverb_drc(seed, wave, params) -> dict:
    return {**_draw_reverb(seed, wave, params), **_draw_drc(seed, wave, params)}


def _apply_reverb_drc(wave, drawn, params, partner=None):
    return _apply_drc(_apply_reverb(wave, drawn, params), drawn, params)


def _draw_pitch_shift(seed, wave, params) -> dict:
    return {"semitones": _uniform(_sub(seed, 2), *params.cfg.semitone_range)}


def _apply_pitch_shift(wave, drawn, params, partner=None):
    return apply_pitch_shift(wave, drawn["semitones"])


def _draw_speed_change(seed, wave, params) -> dict:
    return {"rate": _uniform(_sub(seed, 3), *params.cfg.rate_range)}


def _apply_speed_change(wave, drawn, params, partner=None):
    wave = _check_length(wave, params.cfg.n_fft, "speed_change")
    return apply_speed_change(wave, drawn["rate"])


def _draw_noise(seed, wave, params) -> dict:
    n = tf.shape(tf.convert_to_tensor(wave))[0:1]
    return {"noise": params.cfg.noise_std * tf.random.stateless_normal(n, seed=_sub(seed, 4), dtype=tf.float32)}


def _apply_noise(wave, drawn, params, partner=None):
    wave = _check_length(wave, params.cfg.n_fft, "noise")
    return wave + tf.cast(drawn["noise"], tf.float32)


def _draw_same_class_mix(seed, wave, params) -> dict:
    f = _uniform(_sub(seed, 5), *params.cfg.mix_factor_range, shape=[2])
    return {"f1": f[0], "f2": f[1]}


def _apply_same_class_mix(wave, drawn, params, partner=None):
    wave = _check_length(wave, params.cfg.n_fft, "same_class_mix")
    if partner is None:
        raise ValueError("same_class_mix needs the partner's waveform (partner=...; see ScenePartners)")
    partner = _fit(tf.convert_to_tensor(partner, tf.float32), tf.shape(wave)[0])
    return drawn["f1"] * wave + drawn["f2"] * partner


@dataclass(frozen=True)
class Kind:
    """One augmentation: ``draw(seed, wave, params) -> dict`` of what the seed picks and
    ``apply(wave, drawn, params, partner) -> wave`` (deterministic)."""

    name: str
    draw: Callable
    apply: Callable
    needs_partner: bool = False


REGISTRY: dict[str, Kind] = {k.name: k for k in (
    Kind("spectrum_correction", _draw_spectrum_correction, _apply_spectrum_correction),
    Kind("reverb_drc", _draw_reverb_drc, _apply_reverb_drc),
    Kind("pitch_shift", _draw_pitch_shift, _apply_pitch_shift),
    Kind("speed_change", _draw_speed_change, _apply_speed_change),
    Kind("noise", _draw_noise, _apply_noise),
    Kind("same_class_mix", _draw_same_class_mix, _apply_same_class_mix, needs_partner=True),
    Kind("reverb", _draw_reverb, _apply_reverb),
    Kind("drc", _draw_drc, _apply_drc),
)}


def _kind(name: str) -> Kind:
    if name not in REGISTRY:
        raise ValueError(f"unknown augmentation kind {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


@_no_autograph
def augment(kind: str, wave, seed, params: AugmentParams | None = None, partner=None,
            return_drawn: bool = False):
    """One augmentation of `wave` ((samples,) float32) drawn with `seed` (shape-[2] int tensor).

    Returns the augmented waveform (same length), and with ``return_drawn=True`` also the dict of
    drawn values (``rir_index``, ``curve_index``, ``semitones``, ``rate``, ``noise``, ``f1``/``f2``).
    """
    k = _kind(kind)
    params = params or AugmentParams()
    seed = _as_seed(seed)
    drawn = k.draw(seed, wave, params)
    y = k.apply(wave, drawn, params, partner)
    return (y, drawn) if return_drawn else y


@_no_autograph
def apply_kinds(wave, seed, kinds: Sequence[str], params: AugmentParams | None = None, partner=None) -> tf.Tensor:
    """Apply `kinds` one after the other (a chain, e.g. ``["reverb", "drc"]``), each with its own
    seed ``fold_seed(seed, kind_id(kind))``."""
    for name in kinds:
        wave = augment(name, wave, fold_seed(seed, kind_id(name)), params, partner)
    return wave


def spectrum_correction(wave, seed, params: AugmentParams) -> tf.Tensor:
    """The spectrum-correction kind (deterministic: the seed is not used)."""
    return augment("spectrum_correction", wave, seed, params)


def reverb_drc(wave, seed, params: AugmentParams) -> tf.Tensor:
    """Reverb with a RIR of the bank drawn by `seed`, then the compander with a drawn curve."""
    return augment("reverb_drc", wave, seed, params)


def reverb(wave, seed, params: AugmentParams) -> tf.Tensor:
    """Reverb alone (RMS of the dry clip kept)."""
    return augment("reverb", wave, seed, params)


def drc(wave, seed, params: AugmentParams | None = None) -> tf.Tensor:
    """The compander alone, with a curve drawn by `seed`, peak-limited to 0.999."""
    return augment("drc", wave, seed, params)


def pitch_shift(wave, seed, params: AugmentParams | None = None) -> tf.Tensor:
    """Pitch shift by U(semitone_range) semitones (:func:`apply_pitch_shift`)."""
    return augment("pitch_shift", wave, seed, params)


def speed_change(wave, seed, params: AugmentParams | None = None) -> tf.Tensor:
    """Speed change by a rate ~ U(rate_range) (:func:`apply_speed_change`)."""
    return augment("speed_change", wave, seed, params)


def noise(wave, seed, params: AugmentParams | None = None) -> tf.Tensor:
    """wave + N(0, noise_std^2)."""
    return augment("noise", wave, seed, params)


def same_class_mix(wave, seed, params: AugmentParams | None = None, partner=None) -> tf.Tensor:
    """f1 wave + f2 partner, f1, f2 ~ U(mix_factor_range); the partner cut or zero-padded."""
    return augment("same_class_mix", wave, seed, params, partner=partner)


# ----------------------------------------------------------------------------- seeds and partners

def kind_id(kind: str) -> int:
    """A stable integer per kind name (CRC-32), folded into seeds."""
    return zlib.crc32(kind.encode()) & 0x7FFFFFFF


def clip_keys(filenames: Sequence[str]) -> np.ndarray:
    """int64 keys of clip filenames (first 62 bits of SHA-1): stable across runs and machines."""
    return np.array([int(hashlib.sha1(str(f).encode()).hexdigest()[:15], 16) >> 2 for f in filenames], np.int64)


_FIXED, _FRESH, _PARTNER = 11, 12, 13


@_no_autograph
def clip_seed(seed, clip_key, kind: str, mode: str = "fixed", epoch=None) -> tf.Tensor:
    """The seed of one clip's augmented copy of one kind.

    mode "fixed": from (seed, clip key, kind) only: the same copy in every epoch (the offline
    reference's semantics, without files); "fresh": also from the epoch (a new draw per epoch).
    `seed` is an int or a shape-[2] integer tensor; `clip_key` and `epoch` may be tensors.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    base = tf.constant([int(seed) & 0x7FFFFFFF, 0x0A06], tf.int64) if isinstance(seed, (int, np.integer)) else seed
    if mode == "fixed":
        return fold_seed(base, _FIXED, clip_key, kind_id(kind))
    if epoch is None:
        raise ValueError("mode 'fresh' needs the epoch")
    return fold_seed(base, _FRESH, clip_key, kind_id(kind), epoch)


class ScenePartners:
    """Per-scene index tables over ALL training clips, to draw same-scene mixing partners in tf.data.

    ``scenes[i]`` is clip i's scene and ``groups[i]`` its recording (TAU: the clip_id shared by
    the parallel recordings of one segment on several devices).  A clip's partner is drawn
    uniformly from the clips of its scene outside its own group: mixing a clip with its own
    parallel recording would only filter it.  The tables are sorted by (scene, group, index), so a
    group is one run inside its scene's run and the draw is one uniform integer plus an offset.
    """

    def __init__(self, scenes: Sequence[str], groups: Sequence[str] | None = None):
        scenes = [str(s) for s in scenes]
        groups = [str(g) for g in groups] if groups is not None else [str(i) for i in range(len(scenes))]
        if len(groups) != len(scenes):
            raise ValueError(f"ScenePartners: {len(scenes)} scenes but {len(groups)} groups")
        n = len(scenes)
        order = sorted(range(n), key=lambda i: (scenes[i], groups[i], i))
        scene_start, scene_len = np.zeros(n, np.int64), np.zeros(n, np.int64)
        group_off, group_len = np.zeros(n, np.int64), np.zeros(n, np.int64)
        runs_s: dict[str, list[int]] = {}
        for pos, i in enumerate(order):
            runs_s.setdefault(scenes[i], []).append(pos)
        for s, positions in runs_s.items():
            start = positions[0]
            by_group: dict[str, list[int]] = {}
            for pos in positions:
                by_group.setdefault(groups[order[pos]], []).append(pos)
            for g, gpos in by_group.items():
                for pos in gpos:
                    i = order[pos]
                    scene_start[i], scene_len[i] = start, len(positions)
                    group_off[i], group_len[i] = gpos[0] - start, len(gpos)
        self.order = np.asarray(order, np.int64)
        self.scene_start, self.scene_len, self.group_off, self.group_len = scene_start, scene_len, group_off, group_len
        self.candidates = scene_len - group_len  # partners available to each clip
        lonely = sorted({scenes[i] for i in range(n) if self.candidates[i] == 0})
        if lonely:
            log.warning("same-class mixing: no partner outside the clip's own recording in scene(s) %s; "
                        "those clips are left unmixed", ", ".join(lonely))

    @classmethod
    def from_records(cls, records) -> "ScenePartners":
        """From TAU AscRecords (scene, clip_id)."""
        return cls([r.scene for r in records], [r.clip_id for r in records])

    def __len__(self) -> int:
        return len(self.order)

    @_no_autograph
    def draw(self, index, seed) -> tf.Tensor:
        """Partner index (int64) of clip `index` drawn with `seed`, or -1 when it has none."""
        index = tf.cast(index, tf.int64)
        t = {k: tf.constant(getattr(self, k)) for k in ("scene_start", "group_off", "group_len", "candidates")}
        cand = tf.gather(t["candidates"], index)
        k = tf.random.stateless_uniform([], seed=_as_seed(seed), minval=tf.constant(0, tf.int64),
                                        maxval=tf.maximum(cand, 1), dtype=tf.int64)
        off, glen = tf.gather(t["group_off"], index), tf.gather(t["group_len"], index)
        pos = tf.gather(t["scene_start"], index) + k + tf.where(k >= off, glen, tf.zeros_like(glen))
        return tf.where(cand > 0, tf.gather(tf.constant(self.order), tf.minimum(pos, len(self.order) - 1)),
                        tf.constant(-1, tf.int64))


# ----------------------------------------------------------------------------- tf.data

def copy_fn(kinds: Sequence[str], params: AugmentParams, *, read: Callable, keys, partners: ScenePartners | None = None,
            seed=0, mode: str = "fixed", peak_limit: float | None = PEAK_LIMIT,
            names: Sequence[str] | None = None) -> Callable:
    """``copy(clip_index, kind_index, epoch) -> (samples,) float32``: one augmented copy of a clip,
    for use inside tf.data (TF ops only; every argument may be a tensor).

    The copy of clip i in kind ``kinds[k]`` is drawn with :func:`clip_seed` (seed, the clip's key,
    the kind, `mode`, `epoch`): a pure function of those, whatever else the pipeline reads.  A
    ``same_class_mix`` copy of a clip without a partner is the clip itself.  Arguments as
    :func:`augmented_dataset`.
    """
    kinds = list(kinds)
    for k in kinds:
        _kind(k)
    if not kinds:
        raise ValueError("copy_fn: no kinds given")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if any(REGISTRY[k].needs_partner for k in kinds) and partners is None:
        raise ValueError("same_class_mix needs partners=ScenePartners(...) over every training clip")
    keys_t = tf.constant(np.asarray(keys, np.int64))
    names_t = tf.constant([str(n) for n in names]) if names is not None else None

    # Explicit tf.cond / switch_case / while_loop only: AutoGraph would only slow tracing (2 s -> 0.3 s).
    @tf.autograph.experimental.do_not_convert
    def copy(idx, k, epoch=0):
        idx, k = tf.cast(idx, tf.int64), tf.cast(k, tf.int32)
        wave = read(idx)
        name = tf.gather(names_t, idx) if names_t is not None else tf.strings.as_string(idx)
        wave = _check_length(wave, params.cfg.n_fft, "augmented_dataset", name)
        key = tf.gather(keys_t, idx)

        def branch(name_k: str):
            def fn():
                s = clip_seed(seed, key, name_k, mode, epoch)
                if not REGISTRY[name_k].needs_partner:
                    return augment(name_k, wave, s, params)
                p = partners.draw(idx, fold_seed(s, _PARTNER))
                return tf.cond(p >= 0, lambda: augment(name_k, wave, s, params, partner=read(tf.maximum(p, 0))),
                               lambda: wave)
            return fn

        y = tf.switch_case(k, [branch(n) for n in kinds]) if len(kinds) > 1 else branch(kinds[0])()
        y = tf.ensure_shape(y, wave.shape)
        if peak_limit is not None:
            y = _limit_peak(y, float(peak_limit))
        return y

    return copy


def augmented_dataset(sources: Sequence[int], kinds: Sequence[str], params: AugmentParams, *, read: Callable,
                      keys, partners: ScenePartners | None = None, seed=0, mode: str = "fixed", epoch=0,
                      peak_limit: float | None = PEAK_LIMIT, num_parallel_calls=tf.data.AUTOTUNE,
                      names: Sequence[str] | None = None) -> tf.data.Dataset:
    """One augmented copy per (source clip, kind), as the offline set has: elements
    ``(waveform, clip_index, kind_index)``, clip-major (clip 0 in every kind, then clip 1, ...).

    Args:
      sources: indices (into `read`, `keys`, `partners`) of the clips to augment, e.g. the
        device-A training clips chosen for augmentation.
      kinds: kind names (:data:`REGISTRY`); each gives one copy per clip.
      params: config and resources (ratio, RIR bank).
      read: ``read(index) -> (samples,) float32`` inside tf.data, e.g.
        :func:`tf_scenes.pipelines.audio.index_reader` over every training file, or a gather from an array.
      keys: int64 clip keys of every clip (:func:`clip_keys` of the filenames).
      partners: same-scene tables over every training clip (needed for ``same_class_mix``);
        a clip without a partner is left unmixed.
      seed, mode, epoch: see :func:`clip_seed`; `epoch` may be a tensor (e.g. from
        ``Dataset.range(e0, e1).flat_map(lambda e: augmented_dataset(..., epoch=e))``).
      peak_limit: scale a copy down when its peak exceeds this (the offline files' rule); None: off.
      names: clip names for the too-short error message (default: the clip index).
    """
    copy = copy_fn(kinds, params, read=read, keys=keys, partners=partners, seed=seed, mode=mode,
                   peak_limit=peak_limit, names=names)
    sources = np.asarray(list(sources), np.int64)
    if sources.size == 0:
        raise ValueError("augmented_dataset: no source clips")
    kinds = list(kinds)
    pairs = np.stack([np.repeat(sources, len(kinds)), np.tile(np.arange(len(kinds)), len(sources))], 1)

    @tf.autograph.experimental.do_not_convert
    def one(pair):
        return copy(pair[0], pair[1], epoch), pair[0], tf.cast(pair[1], tf.int32)

    ds = tf.data.Dataset.from_tensor_slices(pairs)
    return ds.map(one, num_parallel_calls=num_parallel_calls, deterministic=True)


# ----------------------------------------------------------------------------- the device ratio

def correction_ratio(records, cache_dir=None, *, devices: Sequence[str] | None = None,
                     max_pairs_per_device: int | None = None, reduce: str = "mean", seed: int = 0,
                     sample_rate: int = SR) -> np.ndarray:
    """The spectrum-correction ratio from the parallel recordings in `records` (TAU AscRecords:
    device A against every other training device), cached as ``cache_dir/spectrum_ratio-KEY.npy``
    (KEY: the pairs' filenames, sizes and modification times, and the parameters).

    :func:`tf_scenes.pipelines.offline_augment.spectrum_correction_reference` computes it.
    """
    from tf_scenes.io_utils import atomic_save_npy
    from tf_scenes.pipelines import offline_augment as oa

    devices = tuple(devices) if devices is not None else oa.NON_A_TRAIN_DEVICES
    pairs = oa.pair_parallel(list(records), devices)

    def stamp(r):
        try:
            st = Path(r.path).stat()
            return [r.filename, st.st_size, st.st_mtime_ns]
        except OSError:
            return [r.filename, None, None]

    key = hashlib.sha1(json.dumps({"pairs": {d: [stamp(a) + stamp(b) for a, b in ps] for d, ps in pairs.items()},
                                   "max_pairs": max_pairs_per_device, "reduce": reduce, "seed": seed,
                                   "sr": sample_rate, "n_fft": N_FFT, "hop": HOP}, sort_keys=True).encode()
                       ).hexdigest()[:16]
    path = Path(cache_dir) / f"spectrum_ratio-{key}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            log.warning("%s: unreadable ratio (%s), recomputing", path, e)
    ratio = oa.spectrum_correction_reference(list(records), devices=devices,
                                             max_pairs_per_device=max_pairs_per_device,
                                             rng=np.random.default_rng(seed), sr=sample_rate, reduce=reduce)
    if path is not None:
        atomic_save_npy(path, ratio)
    return ratio


def params_json(drawn: dict) -> dict:
    """Drawn values as JSON-able numbers (the noise vector summarised by its length)."""
    out = {}
    for k, v in drawn.items():
        v = np.asarray(v)
        out[k] = f"<{v.size} samples>" if v.size > 1 else v.item()
    return out
