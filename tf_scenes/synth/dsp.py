"""Small vectorised signal primitives shared by the synthesisers (numpy / scipy only).

Everything takes an explicit ``np.random.Generator``; nothing touches a global random state.
Signals are float32 numpy arrays; frequency curves are given in dB at anchor frequencies and
interpolated on a log-frequency axis.

Speed (a 10 s clip at 44.1 kHz is 441,000 samples and a scene sums a dozen of them): work stays in
float32, where numpy's sin / exp / tanh are vectorised (float64 sin is 18x slower here); phases
are wrapped with ``x - floor(x)`` rather than ``%`` (numpy's float remainder costs ~20 ns a
sample, 100x a subtraction); FFT lengths are products of 2 and 3 (:func:`fft_len`: a real FFT of
442,368 points takes 2.6 ms, of 441,000 = 2^3 3^2 5^3 7^2 points 3.8 ms); slow control curves are
upsampled by reshaping rather than ``np.interp`` (which works in float64).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft
from scipy import signal as ssig

_LN10_20 = math.log(10.0) / 20.0


def fft_len(n: int) -> int:
    """The smallest 2^a * 3^b >= n (fast for pocketfft; at most 12.5 % longer than n)."""
    n = max(int(n), 1)
    best = 1 << (n - 1).bit_length()
    p3 = 1
    while p3 < best:
        m = p3
        while m < n:
            m *= 2
        best = min(best, m)
        p3 *= 3
    return best


class Memo:
    """Values that are costly to make and fixed once made (a device's response at the bins of one
    FFT length, the spectrum of a room impulse response), kept while a worker writes a chunk."""

    def __init__(self):
        self._values: dict = {}

    def get(self, key, make):
        """The value under `key`, made by make() on first use."""
        value = self._values.get(key)
        if value is None:
            value = self._values[key] = make()
        return value


def rfft_freqs(n: int, sr: int) -> np.ndarray:
    return np.fft.rfftfreq(n, 1.0 / sr)


def frac(x: np.ndarray) -> np.ndarray:
    """x - floor(x): the fractional part (a fast ``x % 1``; may give 1.0 for tiny negative x)."""
    return x - np.floor(x)


def upsample_linear(c: np.ndarray, step: int, n: int) -> np.ndarray:
    """n float32 samples linearly interpolated between control values c[j] at samples j*step.

    The last control value is held if c is short.  Reshaping into (segments, step) makes this two
    passes over the output.
    """
    c = np.asarray(c, dtype=np.float32)
    need = -(-n // step) + 1
    if c.shape[0] < need:
        c = np.concatenate([c, np.full(need - c.shape[0], c[-1], dtype=np.float32)])
    w = np.arange(step, dtype=np.float32) * np.float32(1.0 / step)
    seg = c[:need - 1, None] + (c[1:need] - c[:need - 1])[:, None] * w[None, :]  # (need - 1, step)
    return seg.reshape(-1)[:n]


def curve_db(freqs: np.ndarray, anchors_hz, gains_db) -> np.ndarray:
    """Piecewise-linear dB curve over log frequency; flat beyond the outer anchors."""
    anchors = np.log2(np.maximum(np.asarray(anchors_hz, dtype=np.float64), 1.0))
    f = np.log2(np.maximum(freqs, 1.0))
    return np.interp(f, anchors, np.asarray(gains_db, dtype=np.float64))


def band_curve_db(freqs: np.ndarray, lo_hz: float | None, hi_hz: float | None,
                  order_lo: float = 2.0, order_hi: float = 2.0) -> np.ndarray:
    """Butterworth-like magnitude (dB) of a high-pass at lo_hz and a low-pass at hi_hz."""
    f = np.maximum(freqs, 1e-3)
    g = np.zeros_like(f)
    if lo_hz:
        g += -10.0 * np.log10(1.0 + (lo_hz / f) ** (2 * order_lo))
    if hi_hz:
        g += -10.0 * np.log10(1.0 + (f / hi_hz) ** (2 * order_hi))
    return g


def _grid_step(nfft: int, sr: int) -> int:
    """rfft bins per point of the linear grid that responses are evaluated on: points at most 2 Hz
    apart, and at most 16 bins (1.6 Hz for a 10 s clip; a 0.3 s clip is evaluated at every bin)."""
    return int(min(16, max(1, 2.0 * nfft // sr)))


def gain_on_bins(gain_db_fn, nfft: int, sr: int) -> np.ndarray:
    """Linear gain (float32) at the nfft // 2 + 1 rfft bins of a smooth dB response.

    gain_db_fn is evaluated on 1024 log-spaced frequencies only (the curves are smooth), moved to a
    linear grid of points at most 2 Hz apart (:func:`_grid_step`) and linearly interpolated to the
    bins.
    """
    k = nfft // 2 + 1
    grid = np.geomspace(1.0, sr / 2.0, 1024)
    g_db = np.asarray(gain_db_fn(grid), dtype=np.float64)
    step = _grid_step(nfft, sr)
    coarse_f = np.arange(-(-k // step) + 1) * (step * sr / nfft)
    coarse = np.exp(np.interp(coarse_f, grid, g_db) * _LN10_20)
    return upsample_linear(coarse, step, k)


def filter_fft(x: np.ndarray, sr: int, gain_db_fn) -> np.ndarray:
    """Zero-phase filtering by a magnitude response: gain_db_fn(freqs) -> dB, applied along axis 0."""
    n = x.shape[0]
    nfft = fft_len(n)
    spec = sfft.rfft(x.astype(np.float32, copy=False), nfft, axis=0)
    g = gain_on_bins(gain_db_fn, nfft, sr)
    if x.ndim > 1:
        g = g[:, None]
    spec *= g
    return sfft.irfft(spec, nfft, axis=0)[:n].astype(np.float32, copy=False)


def noise_spectrum(rng: np.random.Generator, gain: np.ndarray) -> np.ndarray:
    """Random rfft spectrum (complex64) with magnitude shaped by `gain` (float32, at the bins).

    Real and imaginary parts of every bin are independent and uniform (unit variance): after the
    inverse FFT each sample sums ~10^5 bins, so the noise is Gaussian all the same, and uniform
    numbers cost a fifth of normal ones (1.5 vs 7.5 ms for the 442,000 numbers of a 10 s clip).
    The DC bin is zero.
    """
    k = gain.shape[0]
    u = rng.random(2 * k, dtype=np.float32).reshape(k, 2)  # (bins, re / im)
    u -= np.float32(0.5)
    u *= (gain * np.float32(math.sqrt(12.0)))[:, None]
    spec = u.view(np.complex64).reshape(k)
    spec[0] = 0.0
    return spec


def spectrum_energy(spec: np.ndarray, nfft: int) -> float:
    """Sum of squares of irfft(spec, nfft) (Parseval), without the inverse transform."""
    p = np.square(spec.real) + np.square(spec.imag)
    e = 2.0 * float(np.sum(p)) - float(p[0])
    if nfft % 2 == 0:
        e -= float(p[-1])
    return e / nfft


def shaped_noise(rng: np.random.Generator, n: int, sr: int, gain_db_fn) -> np.ndarray:
    """Noise with magnitude spectrum 10**(gain_db_fn(f)/20), unit RMS (one inverse FFT)."""
    nfft = fft_len(n)
    return shaped_noise_from_gain(rng, n, nfft, gain_on_bins(gain_db_fn, nfft, sr))


def control_noise(rng: np.random.Generator, n: int, sr: int, rate_hz: float = 400.0) -> np.ndarray:
    """Band-limited (about rate_hz / 2) unit-variance noise, made at rate_hz and interpolated."""
    step = max(int(round(sr / rate_hz)), 1)
    c = rng.standard_normal(-(-n // step) + 1, dtype=np.float32)
    return upsample_linear(c, step, n)


def tilt_fn(slope_db_oct: float, lo_hz: float | None = None, hi_hz: float | None = None,
            ref_hz: float = 1000.0, peak_hz: float | None = None, peak_db: float = 0.0,
            peak_oct: float = 1.0):
    """A gain_db_fn: spectral tilt (dB/octave about ref_hz), optional band limits and one bump."""

    def fn(freqs):
        f = np.maximum(freqs, 1.0)
        g = slope_db_oct * np.log2(f / ref_hz) + band_curve_db(freqs, lo_hz, hi_hz)
        if peak_hz and peak_db:
            g = g + peak_db * np.exp(-0.5 * (np.log2(f / peak_hz) / (peak_oct / 2.355)) ** 2)
        return g

    return fn


def bandpass_fn(center_hz: float, width_oct: float, floor_db: float = -40.0, slope_db_oct: float = 0.0):
    """A gain_db_fn: Gaussian bump on log frequency (FWHM width_oct) over a floor."""

    def fn(freqs):
        f = np.maximum(freqs, 1.0)
        lf = np.log2(f / center_hz)
        bump = np.exp(-0.5 * (lf / max(width_oct / 2.355, 1e-3)) ** 2)
        return 20 * np.log10(bump + 10 ** (floor_db / 20)) + slope_db_oct * lf

    return fn


def rms(x: np.ndarray) -> float:
    # float32 squares, numpy's pairwise sum (relative error ~1e-6; no float64 copy of the signal).
    x = np.asarray(x, dtype=np.float32)
    return math.sqrt(float(np.sum(np.square(x))) / max(x.size, 1) + 1e-20)


def normalize_rms(x: np.ndarray, target: float = 1.0) -> np.ndarray:
    r = rms(x)
    x = np.asarray(x, dtype=np.float32)
    return x * np.float32(target / r) if r > 1e-12 else x


def db(x: float) -> float:
    return 10.0 ** (x / 20.0)


def semitones(st: np.ndarray) -> np.ndarray:
    """2 ** (st / 12) in float32 (the frequency ratio of st semitones)."""
    return np.exp2(np.asarray(st, dtype=np.float32) * np.float32(1.0 / 12.0))


_CONTROL_HZ = 200.0  # control rate of slow_curve


def slow_curve(rng: np.random.Generator, n: int, sr: int, rate_hz: float) -> np.ndarray:
    """Smooth zero-mean, unit-std random curve with about rate_hz independent values per second.

    Cosine interpolation between random points at a 200 Hz control rate, then linear
    interpolation to the audio rate.
    """
    k = max(int(np.ceil(n / sr * rate_hz)) + 2, 3)
    pts = rng.standard_normal(k)
    step = max(int(round(sr / _CONTROL_HZ)), 1)
    m = max(-(-n // step) + 1, 4)  # control points
    t = np.linspace(0.0, k - 1.0, m)
    i = np.minimum(t.astype(np.int64), k - 2)
    w = (1 - np.cos(np.pi * (t - i))) / 2
    c = pts[i] * (1 - w) + pts[i + 1] * w
    s = c.std()
    c = (c - c.mean()) / (s if s > 1e-9 else 1.0)
    return upsample_linear(c, step, n)


def am_envelope(rng: np.random.Generator, n: int, sr: int, rate_hz: float, depth_db: float) -> np.ndarray:
    """Random slow gain modulation exp-distributed around 1 with depth_db standard deviation."""
    if depth_db <= 0:
        return np.ones(n, dtype=np.float32)
    return np.exp(slow_curve(rng, n, sr, rate_hz) * np.float32(depth_db * _LN10_20))


def adsr(n: int, sr: int, attack: float, release: float, decay_tau: float | None = None) -> np.ndarray:
    """Attack ramp, optional exponential decay (time constant decay_tau s), release ramp."""
    env = np.ones(n, dtype=np.float32)
    if decay_tau:
        env = np.exp(np.arange(n, dtype=np.float32) * np.float32(-1.0 / (sr * decay_tau)))
    na = max(1, min(n, int(attack * sr)))
    env[:na] *= np.linspace(0.0, 1.0, na, dtype=np.float32)
    nr = max(1, min(n, int(release * sr)))
    env[n - nr:] *= np.linspace(1.0, 0.0, nr, dtype=np.float32)
    return env


def add_at(buf: np.ndarray, ev: np.ndarray, start: int, gain: float = 1.0) -> None:
    """buf[start:start+len(ev)] += gain*ev, clipped to the buffer (start may be negative)."""
    n = buf.shape[0]
    a, b = max(start, 0), min(start + ev.shape[0], n)
    if b > a:
        buf[a:b] += np.float32(gain) * ev[a - start:b - start]


_BLOCK = 1024  # samples per block of the running phase (float32 sums inside, float64 across)


def _running_cycles(f0_track: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """The running phase (cycles) of f0_track, sum of f0_track[:i + 1] / sr, in two parts.

    within (blocks, 1024) float32: cycles since the start of each block; start (blocks,) float64:
    cycles before each block.  A float64 cumsum of a float32 track costs 5 ms per 10 s clip, this
    1.5 ms; the float32 sums inside a block stay within ~1e-4 cycles of the exact phase.
    """
    n = f0_track.shape[0]
    m = -(-n // _BLOCK)
    inc = np.zeros(m * _BLOCK, dtype=np.float32)
    np.multiply(f0_track, np.float32(1.0 / sr), out=inc[:n], casting="unsafe")
    within = np.cumsum(inc.reshape(m, _BLOCK), axis=1)
    start = np.zeros(m, dtype=np.float64)
    np.cumsum(within[:-1, -1], dtype=np.float64, out=start[1:])
    return within, start


def _partial_phase(within: np.ndarray, start: np.ndarray, ratio: float, n: int) -> np.ndarray:
    """frac(ratio * running cycles) as float32 (n,), exact enough for any clip length."""
    off = frac(start * ratio).astype(np.float32)
    return frac(within * np.float32(ratio) + off[:, None]).reshape(-1)[:n]


_TABLE = 4096


def harmonic_stack(f0_track: np.ndarray, sr: int, amps, inharm: float = 0.0,
                   phase0: np.ndarray | None = None) -> np.ndarray:
    """Sum of partials k*f0*sqrt(1+inharm*k^2) with amplitudes amps[k-1], following f0_track (Hz).

    Partials are muted per sample above 0.45*sr, so sweeps never alias.  Harmonic partials that
    stay below 0.45*sr for the whole track are read together from a one-period wavetable (cost
    independent of their number); the others are summed one sine at a time.  Silent partials
    (amplitude 0) cost nothing.
    """
    f0_track = np.asarray(f0_track, dtype=np.float32)
    n = f0_track.shape[0]
    amps = np.asarray(amps, dtype=np.float32)
    k = np.arange(1, amps.shape[0] + 1, dtype=np.float64)
    if phase0 is None:
        phase0 = np.zeros(amps.shape[0], dtype=np.float32)
    phase0 = np.asarray(phase0, dtype=np.float32)
    ratio = k * np.sqrt(1.0 + inharm * k * k)
    within, start = _running_cycles(f0_track, sr)
    fmax = float(np.max(f0_track)) if n else 0.0
    live = amps != 0
    table_k = live & (fmax * ratio < 0.45 * sr) if inharm == 0.0 else np.zeros_like(live)
    out = np.zeros(n, dtype=np.float32)
    if table_k.any():
        u = np.arange(_TABLE + 1, dtype=np.float32) * np.float32(2 * np.pi / _TABLE)
        kk = k[table_k].astype(np.float32)
        table = (amps[table_k, None] * np.sin(kk[:, None] * u[None, :] + phase0[table_k, None])).sum(0)
        step = np.diff(table)  # (TABLE,)
        pos = _partial_phase(within, start, 1.0, n) * np.float32(_TABLE)
        fl = np.floor(pos)
        i = fl.astype(np.int32)
        np.minimum(i, _TABLE - 1, out=i)
        out += table.take(i) + (pos - fl) * step.take(i)  # take: 0.4 ms, fancy indexing 0.7
    two_pi = np.float32(2 * np.pi)
    for j in np.flatnonzero(live & ~table_k):
        s = np.sin(_partial_phase(within, start, float(ratio[j]), n) * two_pi + phase0[j])
        if fmax * ratio[j] >= 0.45 * sr:
            s *= f0_track < np.float32(0.45 * sr / ratio[j])
        out += amps[j] * s
    return out


def damped_sine(n: int, sr: int, freq: float, tau: float, phase: float = 0.0) -> np.ndarray:
    t = np.arange(n, dtype=np.float64) / sr
    ph = frac(t * freq).astype(np.float32) * np.float32(2 * np.pi) + np.float32(phase)
    return np.sin(ph) * np.exp(np.arange(n, dtype=np.float32) * np.float32(-1.0 / (sr * tau)))


def resonator(x: np.ndarray, sr: int, freq: float, q: float) -> np.ndarray:
    """Second-order band-pass (peak gain 1) at freq with quality q."""
    freq = float(np.clip(freq, 20.0, 0.45 * sr))
    b, a = ssig.iirpeak(freq, max(q, 0.5), fs=sr)
    return ssig.lfilter(b, a, x).astype(np.float32)


def butter_sos(sr: int, lo: float | None = None, hi: float | None = None, order: int = 2) -> np.ndarray | None:
    """Second-order sections of a Butterworth high/low/band-pass (None: neither edge given).

    Designing costs ~1-2 ms; callers filtering many pieces with one filter design it once.
    """
    nyq = 0.5 * sr
    if lo and hi:
        return ssig.butter(order, [max(lo, 1.0) / nyq, min(hi, 0.99 * nyq) / nyq], "bandpass", output="sos")
    if lo:
        return ssig.butter(order, max(lo, 1.0) / nyq, "highpass", output="sos")
    if hi:
        return ssig.butter(order, min(hi, 0.99 * nyq) / nyq, "lowpass", output="sos")
    return None


def butter(x: np.ndarray, sr: int, lo: float | None = None, hi: float | None = None, order: int = 2,
           axis: int = 0, sos: np.ndarray | None = None) -> np.ndarray:
    """Butterworth high/low/band-pass (sosfilt); `sos` (from :func:`butter_sos`) skips the design."""
    if sos is None:
        sos = butter_sos(sr, lo, hi, order)
    if sos is None:
        return x.astype(np.float32)
    return ssig.sosfilt(sos, x, axis=axis).astype(np.float32)


def butter_gain_db(lo: float | None = None, hi: float | None = None, order: int = 2):
    """A gain_db_fn: the magnitude of :func:`butter`'s filter (to shape noise in the spectrum)."""
    return lambda f: band_curve_db(f, lo, hi, order, order)


def filtered_noise(rng: np.random.Generator, n: int, sr: int, lo: float | None = None,
                   hi: float | None = None, order: int = 2) -> np.ndarray:
    """White unit-variance noise through butter(lo, hi, order), drawn in the spectrum.

    Same spectrum and level as ``butter(rng.standard_normal(n), ...)`` without the recursive
    filter (sosfilt runs at ~6 ns a sample); the phase response, meaningless for noise, is lost.
    """
    nfft = fft_len(n)
    g = gain_on_bins(butter_gain_db(lo, hi, order), nfft, sr)
    level = math.sqrt(float(np.mean(np.square(g[1:]))))  # RMS of white noise through the filter
    return shaped_noise_from_gain(rng, n, nfft, g) * np.float32(level)


def shaped_noise_from_gain(rng: np.random.Generator, n: int, nfft: int, gain: np.ndarray) -> np.ndarray:
    """Unit-RMS noise of n samples with rfft magnitude `gain` at nfft."""
    return normalize_rms(sfft.irfft(noise_spectrum(rng, gain), nfft)[:n])


def formant_pieces(pieces, n: int, sr: int, formants, bandwidths, gains) -> np.ndarray:
    """Sum of short source pieces, each through its vowel's bank of formant resonances.

    pieces: [(vowel index, start sample, float32 signal)]; formants, bandwidths: (vowels, formants)
    in Hz; gains: (formants,).  A vowel's filter is zero-phase with magnitude
    |sum_i g_i / (1 + jQ_i(f/F_i - F_i/f))|, Q = F/B, evaluated on a 2048-point log-frequency grid
    from 1 Hz and interpolated to the FFT bins.  Filtering is linear and its response dies out within 30 ms
    (-60 dB for the narrowest formant, 90 Hz), so a few pieces (one talker) are filtered one by
    one with 30 ms of room on each side, in one batch of short FFTs, and added back: for a 10 s
    talker a sixth of the FFT work of filtering five full-length vowel tracks.  Many overlapping
    pieces (a crowd) are summed per vowel and filtered at full length, whichever costs fewer FFT
    points.  Returns (n,) float32.
    """
    pieces = [p for p in pieces if p[2].shape[0]]
    if not pieces:
        return np.zeros(n, dtype=np.float32)
    pad = int(math.ceil(0.03 * sr))
    nfft = fft_len(max(p[2].shape[0] for p in pieces) + 2 * pad)
    vowels = sorted({p[0] for p in pieces})
    if len(pieces) * nfft > (len(vowels) + 1) * fft_len(n):
        return _formant_tracks(pieces, vowels, n, sr, formants, bandwidths, gains)
    frames = np.zeros((len(pieces), nfft), dtype=np.float32)  # (pieces, nfft)
    for j, (_, _, x) in enumerate(pieces):
        frames[j, pad:pad + x.shape[0]] = x
    mags = np.zeros((len(formants), nfft // 2 + 1), dtype=np.float32)  # (vowels, bins)
    for i in vowels:
        mags[i] = _vowel_magnitude(formants[i], bandwidths[i], gains, nfft, sr)
    spec = sfft.rfft(frames, nfft, axis=1)  # (pieces, bins)
    spec *= mags[[p[0] for p in pieces]]
    frames = sfft.irfft(spec, nfft, axis=1)  # (pieces, nfft)
    out = np.zeros(n, dtype=np.float32)
    for j, (_, start, _) in enumerate(pieces):
        add_at(out, frames[j], start - pad)
    return out


def _vowel_magnitude(formants, bandwidths, gains, nfft: int, sr: int) -> np.ndarray:
    """|sum_i g_i / (1 + jQ_i(f/F_i - F_i/f))| at the rfft bins of nfft (float32).

    The grid starts at 1 Hz so the response keeps falling towards DC (as 1 / Q): held flat below
    20 Hz it had a corner there whose zero-phase response lasts longer than a syllable's margin.
    """
    grid = np.geomspace(1.0, sr / 2.0, 2048)
    h = np.zeros(grid.shape, dtype=np.complex128)
    for fc, bw, g in zip(np.atleast_1d(formants), np.atleast_1d(bandwidths), gains):
        if fc < 0.45 * sr:
            h += g / (1.0 + 1j * (fc / bw) * (grid / fc - fc / grid))
    k = nfft // 2 + 1
    step = _grid_step(nfft, sr)
    coarse_f = np.arange(-(-k // step) + 1) * (step * sr / nfft)
    return upsample_linear(np.interp(coarse_f, grid, np.abs(h)), step, k)


def _formant_tracks(pieces, vowels, n: int, sr: int, formants, bandwidths, gains) -> np.ndarray:
    """formant_pieces by summing the pieces of each vowel into one track and filtering the tracks."""
    nfft = fft_len(n)
    total = np.zeros(nfft // 2 + 1, dtype=np.complex64)
    for i in vowels:
        track = np.zeros(n, dtype=np.float32)
        for v, start, x in pieces:
            if v == i:
                add_at(track, x, start)
        total += sfft.rfft(track, nfft) * _vowel_magnitude(formants[i], bandwidths[i], gains, nfft, sr)
    return sfft.irfft(total, nfft)[:n].astype(np.float32, copy=False)


def fade(x: np.ndarray, sr: int, seconds: float = 0.005) -> np.ndarray:
    """Short raised-cosine fade in and out (removes clicks at the cut points)."""
    n = min(x.shape[0] // 2, int(seconds * sr))
    if n > 1:
        w = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))).astype(np.float32)
        x = x.copy()
        x[:n] *= w
        x[-n:] *= w[::-1]
    return x


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    if x.shape[0] >= n:
        return x[:n]
    pad = [(0, n - x.shape[0])] + [(0, 0)] * (x.ndim - 1)
    return np.pad(x, pad)


def fftconvolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    return ssig.fftconvolve(x, h, mode="full").astype(np.float32)
