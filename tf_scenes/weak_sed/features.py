"""The input features of Deshmukh et al. 2021 (Kong et al.'s log-mel): the front-end's named config (tf_scenes.features) and the
reference recipe written the way the paper's code computes it (librosa / scipy / numpy), used only
to check the TensorFlow front-end (tests) and as the feature benchmark's baseline: keep the
reference out of training paths (librosa's first call costs ~20 s of numba compilation).
"""

from __future__ import annotations

import numpy as np

from ..features.config import FeatureConfig

FEATURES = FeatureConfig(
    # Kong et al.'s LogMelExtractor (utils/features.py of
    # https://github.com/qiuqiangkong/sed_time_freq_segmentation): 32 kHz, scipy.signal.spectrogram
    # with np.hamming(2048) (symmetric), noverlap 1024, mode="magnitude" (density scaling, fs=1), no
    # padding -> 311 frames for 10 s; librosa.filters.mel(32000, 2048, 64, fmin=50, fmax=16000)
    # (Slaney scale, Slaney area norm); ln(x + 1e-8). The z-score with training-fold statistics
    # is not part of the front-end: see tf_scenes.features.normalization.
    name="weak_sed", sample_rate=32000, clip_samples=320_000, n_fft=2048, hop_length=1024,
    window="hamming", window_periodic=False, center=False, power=1, stft_scale="window_energy",
    n_mels=64, fmin=50.0, fmax=16000.0, mel_scale="slaney", mel_norm="slaney", log="ln",
    log_offset=1e-8, scaling="none",
)


def reference(y: np.ndarray, sr: int = 32000) -> np.ndarray:
    """Kong et al.'s LogMelExtractor as used by Deshmukh et al. 2021 (Kong's utils/features.py):
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
