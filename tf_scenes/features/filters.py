"""Mel filterbanks and analysis windows in numpy (computed once, used as constants in TF).

``mel_filterbank`` reproduces ``librosa.filters.mel`` (htk=True/False, norm=None/"slaney"); the
HTK/no-norm case is also what torchaudio's MelSpectrogram uses (same triangles in Hz).
"""

from __future__ import annotations

import numpy as np

# Slaney (Auditory Toolbox) mel scale: linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(f, htk: bool = False) -> np.ndarray:
    f = np.asanyarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    mels = f / _F_SP
    log_t = f >= _MIN_LOG_HZ
    return np.where(log_t, _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP, mels)


def mel_to_hz(m, htk: bool = False) -> np.ndarray:
    m = np.asanyarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    freqs = _F_SP * m
    log_t = m >= _MIN_LOG_MEL
    return np.where(log_t, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), freqs)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None, *,
                   htk: bool = False, norm: str | None = "slaney") -> np.ndarray:
    """Triangular mel filters, shape (n_mels, n_fft // 2 + 1), float64.

    Same construction as librosa.filters.mel: n_mels + 2 edges equally spaced on the mel scale,
    triangles interpolated linearly in Hz on the FFT bin frequencies; norm="slaney" scales each
    triangle by 2 / (upper edge - lower edge) (constant area).
    """
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None or 'slaney', got {norm!r}")
    fmax = sr / 2.0 if fmax is None else float(fmax)
    fftfreqs = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights


def window(name: str, length: int, periodic: bool = True) -> np.ndarray:
    """Hann or Hamming window, float64.

    periodic=True is the DFT-even window (scipy.signal.get_window(name, length, fftbins=True),
    librosa, torch.hann_window / torch.hamming_window); periodic=False the symmetric one
    (np.hanning / np.hamming).
    """
    coeffs = {"hann": (0.5, 0.5), "hamming": (0.54, 0.46)}
    if name not in coeffs:
        raise ValueError(f"window must be one of {sorted(coeffs)}, got {name!r}")
    if length == 1:
        return np.ones(1)
    a, b = coeffs[name]
    denom = length if periodic else length - 1
    return a - b * np.cos(2.0 * np.pi * np.arange(length) / denom)


def padded_window(name: str, win_length: int, n_fft: int, periodic: bool = True) -> np.ndarray:
    """The window zero-padded and centred inside n_fft (left pad (n_fft - win_length) // 2), as
    librosa.util.pad_center and torch.stft do."""
    w = window(name, win_length, periodic)
    lpad = (n_fft - win_length) // 2
    out = np.zeros(n_fft)
    out[lpad:lpad + win_length] = w
    return out
