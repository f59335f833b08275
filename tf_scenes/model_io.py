"""Model cards: how a run folder tells export / predict / saliency what model it holds.

Every trained model run folder holds `model.json`:

    {"family": "<a family of tf_scenes.families>",
     "builder": "<registry name>",           # tf_scenes.registry.build(builder, config)
     "config": {...},                        # the builder's config as a dict (from_dict-able)
     "weights": "checkpoints/selected.weights.h5",  # .h5 inside the run folder
     "feature_config": {...},               # the tf_scenes.features config the model's input comes from
     "input": "features" | "waveform",       # what the Keras model takes
     "outputs": {"scene": ["airport", ...]}, # output name -> class names (a single output: its name)
     "saliency": {"layer": "class_conv", "method": "cam", "output": null},  # defaults for `tf-scenes saliency`
     "normalization": {"mean": [[...]], "std": [[...]]} | null,  # per-band (mels, ch) training statistics
     "squeeze_channel": false,               # the model takes (batch, frames, mels): drop the channel axis
     "sample_rate": 44100}

A card is data: the builder must be a name in `tf_scenes.registry`, and the config dict loads into
the dataclass registered with that builder. Cards written by earlier versions also carry
`"config_class": "module:Class"`; it is only compared with the registered class (a mismatch is
refused), never imported. `read_model_card` checks every field and raises one `DataFormatError`
naming the file and the field.

`load_run_model(run_dir)` rebuilds the Keras model from the registry and loads the weights;
`waveform_model(run_dir)` wraps it with the feature front-end so it takes waveforms.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import ConfigError, DataFormatError, TFScenesError

CARD = "model.json"
REQUIRED = ("family", "builder", "config", "weights", "feature_config", "input", "outputs", "sample_rate")
INPUT_KINDS = ("features", "waveform")
SALIENCY_METHODS = ("cam", "gradcam")


def _class_path(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def write_model_card(run_dir, *, family: str, builder: str, config, feature_config, outputs: dict,
                     weights: str = "checkpoints/selected.weights.h5", input_kind: str = "features",
                     saliency: dict | None = None, normalization: dict | None = None, extra: dict | None = None) -> Path:
    """Write `run_dir/model.json`. `config` must be an instance of the class `builder` is registered with."""
    from . import registry
    from .config import to_dict
    from .features import get_feature_config
    from .io_utils import atomic_write_json

    cls = registry.config_class(builder)
    if cls is None or type(config) is not cls:
        raise ConfigError(f"model card of {run_dir}: builder {builder!r} takes a "
                          f"{getattr(cls, '__name__', 'no')} config, got {type(config).__name__}")
    fcfg = get_feature_config(feature_config)
    card = {"family": family, "builder": builder, "config": to_dict(config),
            "weights": weights, "feature_config": to_dict(fcfg), "input": input_kind,
            "outputs": {k: list(v) for k, v in outputs.items()}, "saliency": saliency or {},
            "normalization": normalization, "sample_rate": fcfg.sample_rate, **(extra or {})}
    validate_model_card(card, Path(run_dir) / CARD)
    return atomic_write_json(Path(run_dir) / CARD, card)


def read_model_card(run_dir) -> dict:
    """The validated model card of a run folder (DataFormatError naming the file on any defect)."""
    path = Path(run_dir) / CARD
    if not path.is_file():
        raise TFScenesError(f"{run_dir}: no {CARD}: not a trained tf-scenes model run folder")
    try:
        card = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DataFormatError(path, f"unreadable model card: not UTF-8 text (byte at offset {e.start})") from None
    except ValueError as e:
        raise DataFormatError(path, f"unreadable model card: {e}") from None
    except OSError as e:
        raise DataFormatError(path, f"unreadable model card: {e.strerror or e}") from None
    validate_model_card(card, path)
    return card


def _is_str_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(s, str) for s in v)


def validate_model_card(card, path) -> None:
    """Raise DataFormatError(path, ...) unless `card` is a well-formed model card.

    Checks every field's type, that the builder is registered, that the config loads into its
    registered dataclass, that the weights are an .h5 file inside the run folder (no absolute path,
    no `..`, no symlink leading out) and that the feature config is valid."""
    from . import registry

    path = Path(path)

    def bad(problem: str):
        raise DataFormatError(path, problem)

    if not isinstance(card, dict):
        bad(f"a model card must be a JSON object, got a JSON {_json_kind(card)}")
    missing = [k for k in REQUIRED if k not in card]
    if missing:
        bad(f"missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    for key in ("family", "builder", "weights"):
        if not isinstance(card[key], str) or not card[key]:
            bad(f"{key}: expected a non-empty string, got {_short(card[key])}")
    known = registry.list_models()
    if card["builder"] not in known:
        bad(f"unknown builder {card['builder']!r}; known builders: {', '.join(known)}")
    cls = registry.config_class(card["builder"])
    if cls is None:
        bad(f"builder {card['builder']!r} has no registered config class, so it cannot be loaded from a card")
    stated = card.get("config_class")
    if stated is not None and stated != _class_path(cls):
        bad(f"config_class {_short(stated)} does not match builder {card['builder']!r}, whose config is "
            f"{_class_path(cls)} (a card's config_class is never imported)")
    if not isinstance(card["config"], dict):
        bad(f"config: expected a JSON object, got {_short(card['config'])}")
    from .config import from_dict

    try:
        from_dict(cls, card["config"], prefix="config")
    except ConfigError as e:
        bad(str(e))
    _check_weights(card["weights"], path.parent, bad)
    from .features import get_feature_config

    if not isinstance(card["feature_config"], (str, dict)):
        bad(f"feature_config: expected a config name or a JSON object, got {_short(card['feature_config'])}")
    try:
        get_feature_config(card["feature_config"])
    except ConfigError as e:
        bad(f"feature_config: {e}")
    if card["input"] not in INPUT_KINDS:
        bad(f"input: expected one of {', '.join(INPUT_KINDS)}, got {_short(card['input'])}")
    outputs = card["outputs"]
    if not isinstance(outputs, dict) or not outputs:
        bad(f"outputs: expected a JSON object of output name -> class names, got {_short(outputs)}")
    for name, classes in outputs.items():
        if not _is_str_list(classes) or not classes:
            bad(f"outputs.{name}: expected a non-empty list of class names (strings), got {_short(classes)}")
    sr = card["sample_rate"]
    if isinstance(sr, bool) or not isinstance(sr, int) or sr <= 0:
        bad(f"sample_rate: expected a positive integer, got {_short(sr)}")
    if not isinstance(card.get("squeeze_channel", False), bool):
        bad(f"squeeze_channel: expected true or false, got {_short(card['squeeze_channel'])}")
    _check_saliency(card.get("saliency"), bad)
    _check_normalization(card.get("normalization"), bad)


def _json_kind(v) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(v), type(v).__name__)


def _short(v, n: int = 60) -> str:
    text = json.dumps(v)
    return f"{_json_kind(v)} {text[:n] + '...' if len(text) > n else text}"


def _check_weights(weights: str, run_dir: Path, bad) -> None:
    if weights.startswith(("/", "\\")) or PureWindowsPath(weights).drive:
        bad(f"weights: {weights!r} is an absolute path; it must be relative to the run folder")
    if ".." in PurePosixPath(weights.replace("\\", "/")).parts:
        bad(f"weights: {weights!r} leaves the run folder ('..'); it must be a file inside it")
    if not weights.endswith(".h5"):
        bad(f"weights: {weights!r} is not an .h5 weights file")
    root = run_dir.resolve()
    target = (run_dir / weights).resolve()
    if not target.is_relative_to(root):
        bad(f"weights: {weights!r} leads out of the run folder through a symlink (to {target})")


def _check_saliency(sal, bad) -> None:
    if sal is None:
        return
    if not isinstance(sal, dict):
        bad(f"saliency: expected a JSON object or null, got {_short(sal)}")
    if sal.get("method") is not None and sal["method"] not in SALIENCY_METHODS:
        bad(f"saliency.method: expected one of {', '.join(SALIENCY_METHODS)}, got {_short(sal['method'])}")
    for key in ("layer", "output"):
        if sal.get(key) is not None and not isinstance(sal[key], str):
            bad(f"saliency.{key}: expected a string or null, got {_short(sal[key])}")
    if sal.get("attention") is not None and not _is_str_list(sal["attention"]):
        bad(f"saliency.attention: expected a list of output names (strings), got {_short(sal['attention'])}")


def _check_normalization(norm, bad) -> None:
    import numpy as np

    if norm is None:
        return
    if not isinstance(norm, dict) or "mean" not in norm or "std" not in norm:
        bad(f"normalization: expected null or a JSON object with mean and std, got {_short(norm)}")
    arrays = {}
    for key in ("mean", "std"):
        try:
            arrays[key] = np.asarray(norm[key], dtype=np.float64)
        except (TypeError, ValueError):
            bad(f"normalization.{key}: expected a (nested) list of numbers of one shape")
        if arrays[key].ndim > 2 or not np.all(np.isfinite(arrays[key])):
            bad(f"normalization.{key}: expected finite numbers shaped (mel_bands, channels), "
                f"got shape {arrays[key].shape}")
    if arrays["mean"].shape != arrays["std"].shape:
        bad(f"normalization: mean {arrays['mean'].shape} and std {arrays['std'].shape} differ in shape")


def model_config(card: dict):
    """The card's config as an instance of the dataclass its builder is registered with."""
    from . import registry
    from .config import from_dict

    return from_dict(registry.config_class(card["builder"]), card["config"], prefix="config")


def weights_path(run_dir, card: dict) -> Path:
    """The weights file of a validated card (inside the run folder)."""
    return Path(run_dir) / card["weights"]


def load_run_model(run_dir):
    """(keras model on features, card) from a run folder's model card and selected weights."""
    from . import registry
    from .training.trainer import load_model_weights

    card = read_model_card(run_dir)
    model = registry.build(card["builder"], model_config(card))
    weights = weights_path(run_dir, card)
    if not weights.is_file():
        raise TFScenesError(f"{weights}: weights missing (has training finished?)")
    try:
        load_model_weights(model, weights)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TFScenesError(f"{weights}: cannot load these weights into builder {card['builder']!r}: "
                            f"{first}") from e
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
