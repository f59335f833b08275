"""Reference recipes in librosa / scipy / numpy, written the way each paper's code computes them.

Used only to check the TensorFlow front-end (tests) and as the baseline of the feature benchmark:
keep them out of training paths (librosa's first call costs ~20 s of numba compilation).
Each function takes a mono float32 waveform at the config's rate and returns
(frames, mel_bands, channels) float32, the same layout as :func:`tf_scenes.features.extract`.
"""

from __future__ import annotations

import numpy as np


def numpy_deltas(x: np.ndarray) -> np.ndarray:
    """The two-stage code's deltas along axis 0 (time), valid frames only: T -> T - 4.

    d[t] = (x[t+1] - x[t-1]) / 10 + (x[t+2] - x[t-2]) / 5 = sum_{n=1,2} n (x[t+n] - x[t-n]) / 10.
    """
    out = (x[2:] - x[:-2]) / 10.0
    return out[1:-1] + (x[4:] - x[:-4]) / 5.0


def two_stage(y: np.ndarray, sr: int = 44100) -> np.ndarray:
    """Hu et al. 2021 (two_stage_asc.md, Features): librosa melspectrogram (n_fft 2048, hop 1024,
    Hann, centred; pad_mode "reflect", the librosa default of the reference code's time), 128 HTK
    mels 0-22050, no norm, power 2; ln(S + 1e-8); per-clip min-max; deltas without padding.
    Returns (423, 128, 3) for 10 s."""
    import librosa

    y = np.asarray(y, np.float32)[:441_000]
    s = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=1024, window="hann",
                                       center=True, pad_mode="reflect", power=2.0, n_mels=128,
                                       fmin=0.0, fmax=sr / 2, htk=True, norm=None)  # (128, 431)
    s = np.log(s + 1e-8)
    s = (s - s.min()) / (s.max() - s.min())
    x = s.T  # (431, 128): time first
    d1 = numpy_deltas(x)  # (427, 128)
    d2 = numpy_deltas(d1)  # (423, 128)
    return np.stack([x[4:-4], d1[2:-2], d2], axis=-1).astype(np.float32)


def dcasenet(y: np.ndarray, sr: int = 24000) -> np.ndarray:
    """Jung et al. 2021 (dcasenet.md, Features; the authors' preprocess.py): pre-emphasis
    x[1:] - 0.97 x[:-1]; torchaudio MelSpectrogram(24000, n_fft 2048, win 960 periodic Hamming,
    hop 480, centred reflect, 128 HTK mels 0-12 kHz, no norm, power 2), written with librosa
    (same framing and filters); ln with floor 1e-7; per-band standardisation over time with the
    unbiased std (torch.std) floored at 1e-3. Returns (frames, 128, 1)."""
    import librosa

    y = np.asarray(y, np.float32)
    y = y[1:] - 0.97 * y[:-1]
    s = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, win_length=960, hop_length=480,
                                       window="hamming", center=True, pad_mode="reflect", power=2.0,
                                       n_mels=128, fmin=0.0, fmax=12000.0, htk=True, norm=None)  # (128, T)
    s = np.log(np.maximum(s, 1e-7))
    m = s.mean(axis=-1, keepdims=True)
    sd = np.maximum(s.std(axis=-1, ddof=1, keepdims=True), 1e-3)
    return ((s - m) / sd).T[..., None].astype(np.float32)


def weak_sed(y: np.ndarray, sr: int = 32000) -> np.ndarray:
    """Kong et al.'s LogMelExtractor as used by Deshmukh et al. 2021 (weak_sed.md, Features):
    scipy.signal.spectrogram(window=np.hamming(2048), nperseg 2048, noverlap 1024, detrend=False,
    mode="magnitude") @ librosa.filters.mel(sr, 2048, 64, fmin=50, fmax=16000) (Slaney scale and
    norm), ln(x + 1e-8). Returns (311, 64, 1) for 10 s (before the training-set z-score)."""
    import librosa
    from scipy import signal

    y = np.asarray(y, np.float32)
    mel_w = librosa.filters.mel(sr=sr, n_fft=2048, n_mels=64, fmin=50.0, fmax=16000.0).T  # (1025, 64)
    _, _, x = signal.spectrogram(y, window=np.hamming(2048), nperseg=2048, noverlap=1024, detrend=False,
                                 return_onesided=True, mode="magnitude")
    x = x.T.astype(np.float32)  # (frames, 1025)
    return np.log(x @ mel_w + 1e-8)[..., None].astype(np.float32)


def raw(y: np.ndarray, sr: int = 16000) -> np.ndarray:
    """Abrol & Sharma 2020 input (raw_waveform_asc.md, Input): 5 s clip, pre-emphasis 0.97
    (y[0] = x[0]), 2 s windows every 1.5 s (0.5 s overlap), mean removed per window.
    Returns (3, 32000, 1)."""
    y = np.asarray(y, np.float64)[:5 * sr]
    y = np.concatenate([y[:1], y[1:] - 0.97 * y[:-1]])
    win, hop = 2 * sr, int(1.5 * sr)
    starts = range(0, len(y) - win + 1, hop)
    w = np.stack([y[s:s + win] for s in starts])
    return (w - w.mean(axis=1, keepdims=True))[..., None].astype(np.float32)


RECIPES = {"two_stage": two_stage, "dcasenet": dcasenet, "weak_sed": weak_sed, "raw": raw}
