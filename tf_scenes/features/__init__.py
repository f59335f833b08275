"""The feature front-end: one TensorFlow implementation of each paper's recipe.

Layout everywhere: ``(batch, frames, mel_bands, channels)``, time-major, float32; a single example
is ``(frames, mel_bands, channels)``. The "raw" config gives ``(batch, n_windows, window_samples, 1)``.

    from tf_scenes.features import get_feature_config, extract, FeatureExtractor
    cfg = get_feature_config(name)                 # frozen FeatureConfig
    x = extract(cfg, waveform)                     # numpy (frames, mel_bands, channels)
    layer = FeatureExtractor(cfg)                  # Keras layer, waveform -> features
    ds = ds.map(lambda w: tf_features(cfg, w))     # the same ops in tf.data

Named configs: one per paper, defined in its family's folder (``tf_scenes/<family>/features.py``,
with every parameter and its source, and the reference recipe the front-end is checked against);
:data:`FEATURE_CONFIGS` lists them.

Config objects and shape helpers import without TensorFlow; the TF names (FeatureExtractor,
tf_features, extract, BandNormalization helpers) load TensorFlow on first access.
"""

from __future__ import annotations

import importlib
import sys
import types

from .config import (
    MAX_ABS_SAMPLE,
    FeatureConfig,
    get_feature_config,
    min_input_samples,
    n_frames,
    output_shape,
    samples_for_seconds,
)

_LAZY = {
    "FeatureExtractor": "frontend",
    "tf_features": "frontend",
    "extract": "frontend",
    "mel_matrix": "frontend",
    "band_statistics": "normalization",
    "band_normalization": "normalization",
    "mel_filterbank": "filters",
}

__all__ = ["FEATURE_CONFIGS", "MAX_ABS_SAMPLE", "FeatureConfig", "get_feature_config", "min_input_samples",
           "n_frames", "output_shape", "samples_for_seconds", *_LAZY]


def __getattr__(name):
    if name == "FEATURE_CONFIGS":
        from .config import feature_configs

        return feature_configs()
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """``tf_scenes.features`` is this package and the public function of the Python interface:
    ``tf_scenes.features(name, waveform, sample_rate)`` (:func:`tf_scenes.api.features`)."""

    def __call__(self, name, waveform, sample_rate: int):
        return features_of(name, waveform, sample_rate)


def features_of(name, waveform, sample_rate: int):
    """Features of a named feature config (FEATURE_CONFIGS) for one in-memory waveform, resampled
    to the config's rate first."""
    from ..audio import waveform_at
    from .frontend import extract

    cfg = get_feature_config(name)
    return extract(cfg, waveform_at(waveform, sample_rate, cfg.sample_rate))


sys.modules[__name__].__class__ = _CallableModule
