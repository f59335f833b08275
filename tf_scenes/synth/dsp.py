"""Small vectorised signal primitives shared by the synthesisers (numpy / scipy only).

Everything takes an explicit ``np.random.Generator``; nothing touches a global random state.
Signals are float32 numpy arrays; frequency curves are given in dB at anchor frequencies and
interpolated on a log-frequency axis.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy import signal as ssig


def rfft_freqs(n: int, sr: int) -> np.ndarray:
    return np.fft.rfftfreq(n, 1.0 / sr)


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


def _gain_on_grid(gain_db_fn, nfft: int, sr: int) -> np.ndarray:
    """Linear gain at the rfft bins.

    gain_db_fn is evaluated on 1024 log-spaced frequencies only (the curves are smooth) and
    linearly interpolated to the bins.
    """
    grid = np.geomspace(1.0, sr / 2.0, 1024)
    g_db = np.asarray(gain_db_fn(grid), dtype=np.float64)
    bins = np.arange(nfft // 2 + 1, dtype=np.float32) * np.float32(sr / nfft)
    g = np.interp(bins, grid.astype(np.float32), g_db.astype(np.float32)).astype(np.float32)
    return np.exp(g * np.float32(np.log(10.0) / 20.0))


def filter_fft(x: np.ndarray, sr: int, gain_db_fn) -> np.ndarray:
    """Zero-phase filtering by a magnitude response: gain_db_fn(freqs) -> dB, applied along axis 0."""
    n = x.shape[0]
    nfft = sfft.next_fast_len(n, real=True)
    spec = sfft.rfft(x.astype(np.float32, copy=False), nfft, axis=0)
    g = _gain_on_grid(gain_db_fn, nfft, sr)
    if x.ndim > 1:
        g = g[:, None]
    spec *= g
    return sfft.irfft(spec, nfft, axis=0)[:n].astype(np.float32)


def shaped_noise(rng: np.random.Generator, n: int, sr: int, gain_db_fn) -> np.ndarray:
    """Gaussian noise with magnitude spectrum 10**(gain_db_fn(f)/20), unit RMS.

    Drawn directly in the frequency domain (complex Gaussian bins, one inverse FFT).
    """
    nfft = sfft.next_fast_len(n, real=True)
    k = nfft // 2 + 1
    g = _gain_on_grid(gain_db_fn, nfft, sr)
    g[0] = 0.0
    z = rng.standard_normal((2, k), dtype=np.float32)
    spec = np.empty(k, dtype=np.complex64)
    spec.real = z[0] * g
    spec.imag = z[1] * g
    return normalize_rms(sfft.irfft(spec, nfft)[:n])


def control_noise(rng: np.random.Generator, n: int, sr: int, rate_hz: float = 400.0) -> np.ndarray:
    """Band-limited (about rate_hz / 2) unit-variance noise, made at rate_hz and interpolated."""
    m = max(int(np.ceil(n / sr * rate_hz)) + 2, 2)
    c = rng.standard_normal(m).astype(np.float32)
    return np.interp(np.arange(n, dtype=np.float32) * np.float32(rate_hz / sr), np.arange(m, dtype=np.float32),
                     c).astype(np.float32)


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
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def normalize_rms(x: np.ndarray, target: float = 1.0) -> np.ndarray:
    r = rms(x)
    return (x * (target / r)).astype(np.float32) if r > 1e-12 else x.astype(np.float32)


def db(x: float) -> float:
    return 10.0 ** (x / 20.0)


def slow_curve(rng: np.random.Generator, n: int, sr: int, rate_hz: float) -> np.ndarray:
    """Smooth zero-mean, unit-std random curve with about rate_hz independent values per second.

    Cosine interpolation between random points at a 200 Hz control rate, then linear
    interpolation to the audio rate.
    """
    k = max(int(np.ceil(n / sr * rate_hz)) + 2, 3)
    pts = rng.standard_normal(k)
    m = max(int(np.ceil(n / sr * 200.0)), 4)  # control points
    t = np.linspace(0.0, k - 1.0, m)
    i = np.minimum(t.astype(np.int64), k - 2)
    w = (1 - np.cos(np.pi * (t - i))) / 2
    c = pts[i] * (1 - w) + pts[i + 1] * w
    s = c.std()
    c = (c - c.mean()) / (s if s > 1e-9 else 1.0)
    return np.interp(np.arange(n, dtype=np.float32), np.linspace(0, n - 1, m, dtype=np.float32),
                     c.astype(np.float32)).astype(np.float32)


def am_envelope(rng: np.random.Generator, n: int, sr: int, rate_hz: float, depth_db: float) -> np.ndarray:
    """Random slow gain modulation exp-distributed around 1 with depth_db standard deviation."""
    if depth_db <= 0:
        return np.ones(n, dtype=np.float32)
    return (10.0 ** (depth_db * slow_curve(rng, n, sr, rate_hz) / 20.0)).astype(np.float32)


def adsr(n: int, sr: int, attack: float, release: float, decay_tau: float | None = None) -> np.ndarray:
    """Attack ramp, optional exponential decay (time constant decay_tau s), release ramp."""
    t = np.arange(n, dtype=np.float32) / sr
    env = np.ones(n, dtype=np.float32)
    na = max(1, min(n, int(attack * sr)))
    env[:na] = np.linspace(0.0, 1.0, na, dtype=np.float32)
    if decay_tau:
        env *= np.exp(-t / decay_tau).astype(np.float32)
    nr = max(1, min(n, int(release * sr)))
    env[n - nr:] *= np.linspace(1.0, 0.0, nr, dtype=np.float32)
    return env


def add_at(buf: np.ndarray, ev: np.ndarray, start: int, gain: float = 1.0) -> None:
    """buf[start:start+len(ev)] += gain*ev, clipped to the buffer (start may be negative)."""
    n = buf.shape[0]
    a, b = max(start, 0), min(start + ev.shape[0], n)
    if b > a:
        buf[a:b] += gain * ev[a - start:b - start]


def harmonic_stack(f0_track: np.ndarray, sr: int, amps, inharm: float = 0.0,
                   phase0: np.ndarray | None = None) -> np.ndarray:
    """Sum of partials k*f0*sqrt(1+inharm*k^2) with amplitudes amps[k-1], following f0_track (Hz).

    Harmonic sounds (inharm 0) whose top partial stays below 0.45*sr are read from a one-period
    wavetable (cost independent of the number of partials); otherwise partials are summed and
    muted per sample above 0.45*sr, so sweeps never alias.
    """
    amps = np.asarray(amps, dtype=np.float32)
    k = np.arange(1, amps.shape[0] + 1, dtype=np.float32)
    cyc = np.cumsum(f0_track, dtype=np.float64) / sr  # phase in cycles
    if phase0 is None:
        phase0 = np.zeros(amps.shape[0], dtype=np.float32)
    if inharm == 0.0 and float(np.max(f0_track)) * amps.shape[0] < 0.45 * sr:
        size = 4096
        u = np.arange(size + 1, dtype=np.float64) / size
        table = (amps[:, None] * np.sin(2 * np.pi * k[:, None] * u[None, :] + phase0[:, None])).sum(0)
        pos = (cyc % 1.0) * size
        i = pos.astype(np.int64)
        fr = (pos - i).astype(np.float32)
        t32 = table.astype(np.float32)
        return (t32[i] * (1 - fr) + t32[i + 1] * fr).astype(np.float32)
    ratio = k * np.sqrt(1.0 + inharm * k * k)
    ph = (2 * np.pi * (cyc % 1e6)).astype(np.float32)[None, :] * ratio[:, None] + phase0[:, None]
    below = (f0_track[None, :] * ratio[:, None]) < (0.45 * sr)
    return np.einsum("k,kn->n", amps, np.sin(ph) * below).astype(np.float32)


def damped_sine(n: int, sr: int, freq: float, tau: float, phase: float = 0.0) -> np.ndarray:
    t = np.arange(n, dtype=np.float32) / sr
    return (np.sin(2 * np.pi * freq * t + phase) * np.exp(-t / tau)).astype(np.float32)


def resonator(x: np.ndarray, sr: int, freq: float, q: float) -> np.ndarray:
    """Second-order band-pass (peak gain 1) at freq with quality q."""
    freq = float(np.clip(freq, 20.0, 0.45 * sr))
    b, a = ssig.iirpeak(freq, max(q, 0.5), fs=sr)
    return ssig.lfilter(b, a, x).astype(np.float32)


def butter(x: np.ndarray, sr: int, lo: float | None = None, hi: float | None = None, order: int = 2,
           axis: int = 0) -> np.ndarray:
    """Butterworth high/low/band-pass (sosfilt)."""
    nyq = 0.5 * sr
    if lo and hi:
        sos = ssig.butter(order, [max(lo, 1.0) / nyq, min(hi, 0.99 * nyq) / nyq], "bandpass", output="sos")
    elif lo:
        sos = ssig.butter(order, max(lo, 1.0) / nyq, "highpass", output="sos")
    elif hi:
        sos = ssig.butter(order, min(hi, 0.99 * nyq) / nyq, "lowpass", output="sos")
    else:
        return x.astype(np.float32)
    return ssig.sosfilt(sos, x, axis=axis).astype(np.float32)


def formant_bank(sources: np.ndarray, sr: int, formants, bandwidths, gains) -> np.ndarray:
    """sum_v filter_v(sources[v]) where filter_v is a parallel bank of resonances (a vowel).

    Zero-phase, in the frequency domain: |sum_i g_i / (1 + jQ_i(f/F_i - F_i/f))|, Q = F/B,
    evaluated on a 2048-point log-frequency grid and interpolated to the FFT bins.
    sources: (vowels, samples); formants, bandwidths: (vowels, formants); gains: (formants,).
    """
    v, n = sources.shape
    nfft = sfft.next_fast_len(n, real=True)
    grid = np.geomspace(20.0, sr / 2.0, 2048)
    bins = np.arange(nfft // 2 + 1, dtype=np.float32) * np.float32(sr / nfft)
    total = np.zeros(nfft // 2 + 1, dtype=np.complex64)
    for i in range(v):
        if not np.any(sources[i]):
            continue
        h = np.zeros(grid.shape, dtype=np.complex128)
        for fc, bw, g in zip(np.atleast_1d(formants[i]), np.atleast_1d(bandwidths[i]), gains):
            if fc < 0.45 * sr:
                h += g / (1.0 + 1j * (fc / bw) * (grid / fc - fc / grid))
        mag = np.interp(bins, grid.astype(np.float32), np.abs(h).astype(np.float32))
        total += sfft.rfft(sources[i], nfft) * mag
    return sfft.irfft(total, nfft)[:n].astype(np.float32)


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
