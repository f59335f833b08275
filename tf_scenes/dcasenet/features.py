"""The input features of Jung et al. 2021: the front-end's named config (tf_scenes.features) and the
reference recipe written the way the paper's code computes it (librosa / scipy / numpy), used only
to check the TensorFlow front-end (tests) and as the feature benchmark's baseline: keep the
reference out of training paths (librosa's first call costs ~20 s of numba compilation).
"""

from __future__ import annotations

import numpy as np

from ..features.config import FeatureConfig

FEATURES = FeatureConfig(
    # The authors' preprocess.py / dataloaders.py (https://github.com/Jungjee/DcaseNet): pre-emphasis
    # x[n+1] - 0.97 x[n] on the whole clip (N-1 samples), torchaudio MelSpectrogram(24000,
    # n_fft=2048, win_length=960 periodic Hamming, hop 480, centred reflect, 128 HTK mels 0-12 kHz,
    # no norm, power 2), ln with floor 1e-7, per-band standardisation over time (torch.std:
    # unbiased; floor 1e-3). 60 s (1,440,000 samples) -> 3000 frames; a 5 s crop of the
    # pre-emphasised signal (120,001 raw samples, see samples_for_seconds) -> 251 frames.
    name="dcasenet", sample_rate=24000, clip_samples=None, pre_emphasis=0.97, pre_emphasis_mode="valid",
    n_fft=2048, win_length=960, hop_length=480, window="hamming", center=True, pad_mode="reflect",
    power=2, n_mels=128, fmin=0.0, fmax=12000.0, mel_scale="htk", mel_norm=None, log="ln",
    log_floor=1e-7, scaling="per_band_standardise", std_floor=1e-3, std_ddof=1,
)


def reference(y: np.ndarray, sr: int = 24000) -> np.ndarray:
    """Jung et al. 2021 (the authors' preprocess.py): pre-emphasis
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
