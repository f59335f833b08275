"""Model cards: how a run folder tells export / predict / saliency what model it holds.

Every trained model run folder holds `model.json`:

    {"family": "two_stage" | "dcasenet" | "weak_sed" | "raw_waveform",
     "builder": "<registry name>",           # tf_scenes.registry.build(builder, config)
     "config": {...},                        # the builder's config as a dict (from_dict-able)
     "config_class": "module:Class",         # the frozen dataclass the config dict loads into
     "weights": "checkpoints/selected.weights.h5",
     "feature_config": "two_stage" | {...},  # tf_scenes.features config the model's input comes from
     "input": "features" | "waveform",       # what the Keras model takes
     "outputs": {"scene": ["airport", ...]}, # output name -> class names (a single output: its name)
     "saliency": {"layer": "class_conv", "method": "cam", "output": null},  # defaults for `tf-scenes saliency`
     "normalization": {"mean": [[...]], "std": [[...]]} | null,  # per-band (mels, ch) training statistics
     "squeeze_channel": false,               # the model takes (batch, frames, mels): drop the channel axis
     "sample_rate": 44100}

`load_run_model(run_dir)` rebuilds the Keras model from the registry and loads the weights;
`waveform_model(run_dir)` wraps it with the feature front-end so it takes waveforms.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from .errors import TFScenesError

CARD = "model.json"


def write_model_card(run_dir, *, family: str, builder: str, config, feature_config, outputs: dict,
                     weights: str = "checkpoints/selected.weights.h5", input_kind: str = "features",
                     saliency: dict | None = None, normalization: dict | None = None, extra: dict | None = None) -> Path:
    from .config import to_dict
    from .features import get_feature_config
    from .io_utils import atomic_write_json

    fcfg = get_feature_config(feature_config)
    card = {"family": family, "builder": builder, "config": to_dict(config),
            "config_class": f"{type(config).__module__}:{type(config).__qualname__}",
            "weights": weights, "feature_config": to_dict(fcfg), "input": input_kind,
            "outputs": {k: list(v) for k, v in outputs.items()}, "saliency": saliency or {},
            "normalization": normalization, "sample_rate": fcfg.sample_rate, **(extra or {})}
    return atomic_write_json(Path(run_dir) / CARD, card)


def read_model_card(run_dir) -> dict:
    path = Path(run_dir) / CARD
    if not path.exists():
        raise TFScenesError(f"{run_dir}: no {CARD}: not a trained tf-scenes model run folder")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise TFScenesError(f"{path}: unreadable model card: {e}") from e


def _config_object(card: dict):
    from .config import from_dict

    module, _, qual = card["config_class"].partition(":")
    cls = getattr(importlib.import_module(module), qual)
    return from_dict(cls, card["config"])


def load_run_model(run_dir):
    """(keras model on features, card) from a run folder's model card and selected weights."""
    from . import registry
    from .training.trainer import load_model_weights

    card = read_model_card(run_dir)
    model = registry.build(card["builder"], _config_object(card))
    weights = Path(run_dir) / card["weights"]
    if not weights.exists():
        raise TFScenesError(f"{weights}: weights missing (has training finished?)")
    load_model_weights(model, weights)
    return model, card


def feature_config_of(card: dict):
    from .features import get_feature_config

    return get_feature_config(card["feature_config"])


def waveform_model(run_dir):
    """(keras model taking waveforms [batch, samples] at the card's rate, card)."""
    import keras

    from .features import FeatureExtractor

    model, card = load_run_model(run_dir)
    if card["input"] == "waveform":
        return model, card
    fcfg = feature_config_of(card)
    wav = keras.Input((None,), dtype="float32", name="waveform")
    x = FeatureExtractor(fcfg, name="features")(wav)  # (batch, frames, mels, ch)
    norm = card.get("normalization")
    if norm:  # per-band training statistics, (mel_bands, channels) each
        from .features import band_normalization

        x = band_normalization(norm["mean"], norm["std"])(x)
    squeeze = card.get("squeeze_channel", False)
    if squeeze:
        x = keras.layers.Reshape((-1, fcfg.n_mels), name="drop_channel")(x)  # (batch, frames, mels)
    out = model(x)
    return keras.Model(wav, out, name=f"{model.name}_waveform"), card
