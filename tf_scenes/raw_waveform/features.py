"""The input features of Abrol & Sharma 2020: the front-end's named config (tf_scenes.features) and the
reference recipe written the way the paper's code computes it (librosa / scipy / numpy), used only
to check the TensorFlow front-end (tests) and as the feature benchmark's baseline: keep the
reference out of training paths (librosa's first call costs ~20 s of numba compilation).
"""

from __future__ import annotations

import numpy as np

from ..features.config import FeatureConfig

FEATURES = FeatureConfig(
    # Abrol & Sharma 2020 (no public code): 16 kHz, "2 s raw inputs chunked from 5 s long audio
    # signals with an overlap of 0.5 s" (hop 1.5 s -> 3 windows per clip), pre-emphasis 0.97
    # (length-keeping form), then mean normalisation (mean subtraction) per window
    # -> (3, 32000, 1).
    name="raw", kind="raw", sample_rate=16000, clip_samples=80_000, pre_emphasis=0.97,
    pre_emphasis_mode="same", window_seconds=2.0, hop_seconds=1.5, mean_normalise=True,
)


def reference(y: np.ndarray, sr: int = 16000) -> np.ndarray:
    """Abrol & Sharma 2020 input (as the paper describes it): 5 s clip, pre-emphasis 0.97
    (y[0] = x[0]), 2 s windows every 1.5 s (0.5 s overlap), mean removed per window.
    Returns (3, 32000, 1)."""
    y = np.asarray(y, np.float64)[:5 * sr]
    y = np.concatenate([y[:1], y[1:] - 0.97 * y[:-1]])
    win, hop = 2 * sr, int(1.5 * sr)
    starts = range(0, len(y) - win + 1, hop)
    w = np.stack([y[s:s + win] for s in starts])
    return (w - w.mean(axis=1, keepdims=True))[..., None].astype(np.float32)
