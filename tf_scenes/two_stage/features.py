"""The input features of Hu et al. 2021: the front-end's named config (tf_scenes.features) and the
reference recipe written the way the paper's code computes it (librosa / scipy / numpy), used only
to check the TensorFlow front-end (tests) and as the feature benchmark's baseline: keep the
reference out of training paths (librosa's first call costs ~20 s of numba compilation).
"""

from __future__ import annotations

import numpy as np

from ..features.config import FeatureConfig

FEATURES = FeatureConfig(
    # The authors' task1a/10class/extr_feat_2020_nodelta_scaled.py and the deltas of their
    # train_*.py (https://github.com/MihawkHu/DCASE2020_task1): 44.1 kHz, first 441,000 samples,
    # 2048/1024 Hann centred (reflect), 128 HTK mels 0-22050 without area norm, power 2,
    # ln(S + 1e-8), per-clip min-max, deltas without padding: 431 -> 427 -> 423 frames
    # -> (423, 128, 3).
    name="two_stage", sample_rate=44100, clip_samples=441_000, n_fft=2048, hop_length=1024,
    window="hann", center=True, pad_mode="reflect", power=2, n_mels=128, fmin=0.0, fmax=22050.0,
    mel_scale="htk", mel_norm=None, log="ln", log_offset=1e-8, scaling="minmax_clip",
    deltas=2, delta_width=2, delta_padding=False,
)


def numpy_deltas(x: np.ndarray) -> np.ndarray:
    """The two-stage code's deltas along axis 0 (time), valid frames only: T -> T - 4.

    d[t] = (x[t+1] - x[t-1]) / 10 + (x[t+2] - x[t-2]) / 5 = sum_{n=1,2} n (x[t+n] - x[t-n]) / 10.
    """
    out = (x[2:] - x[:-2]) / 10.0
    return out[1:-1] + (x[4:] - x[:-4]) / 5.0


def reference(y: np.ndarray, sr: int = 44100) -> np.ndarray:
    """Hu et al. 2021 (the authors' extr_feat_2020_nodelta_scaled.py): librosa melspectrogram
    (n_fft 2048, hop 1024, Hann, centred; pad_mode "reflect", the librosa default of the reference
    code's time), 128 HTK mels 0-22050, no norm, power 2; ln(S + 1e-8); per-clip min-max; deltas
    without padding. Returns (423, 128, 3) for 10 s."""
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
