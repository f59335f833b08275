"""Per-band z-score with training statistics (Deshmukh et al. 2021: "z-score per mel band with
training-fold statistics").

The statistics come from the training features only and are stored inside the model as a
keras.layers.Normalization layer, so an exported model standardises exactly as in training.
"""

from __future__ import annotations

import numpy as np


def band_statistics(features, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) std per (mel band, channel) over examples and frames.

    Args:
      features: (examples, frames, mel_bands, channels) array (a memory-mapped cache works; it is
        read in chunks of `batch_size` examples and accumulated in float64).
    Returns:
      (mean, std), each (mel_bands, channels) float32. Like sklearn's StandardScaler (which the
      reference code uses), std is the ddof=0 std.
    """
    if features.ndim != 4:
        raise ValueError(f"features must be (examples, frames, mel_bands, channels), got shape {features.shape}")
    n = 0
    s1 = np.zeros(features.shape[2:], np.float64)
    s2 = np.zeros(features.shape[2:], np.float64)
    # Shifted sums (shift = first example's band means) keep the variance numerically stable.
    shift = np.asarray(features[0], np.float64).mean(axis=0)
    for i in range(0, features.shape[0], batch_size):
        chunk = np.asarray(features[i:i + batch_size], np.float64) - shift  # (b, frames, mels, ch)
        n += chunk.shape[0] * chunk.shape[1]
        s1 += chunk.sum(axis=(0, 1))
        s2 += np.square(chunk).sum(axis=(0, 1))
    mean = s1 / n
    var = np.maximum(s2 / n - mean * mean, 0.0)
    return (mean + shift).astype(np.float32), np.sqrt(var).astype(np.float32)


def band_normalization(mean: np.ndarray, std: np.ndarray, name: str = "band_norm", std_floor: float = 1e-8):
    """A keras.layers.Normalization over the (mel_bands, channels) axes holding `mean` and `std`.

    Input (batch, frames, mel_bands, channels) -> (x - mean) / max(std, std_floor). The values
    are saved with the model (get_config), no adapt() call is needed.
    """
    import keras

    mean = np.asarray(mean, np.float32)
    std = np.maximum(np.asarray(std, np.float32), std_floor)
    if mean.shape != std.shape or mean.ndim != 2:
        raise ValueError(f"mean and std must both be (mel_bands, channels), got {mean.shape} and {std.shape}")
    return keras.layers.Normalization(axis=(-2, -1), mean=mean, variance=np.square(std), name=name)
