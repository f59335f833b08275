"""SavedModel export: every exported model takes float32 waveforms [batch, samples] at its rate.

The feature front-end is part of the exported graph (one implementation, tf_scenes.features).
Beside the SavedModel, `assets.extra/labels.json` holds the class names of each output and
`assets.extra/metadata.json` the sample rate, the outputs and how the model was made.

    export_saved_model(model, "export/my_model", sample_rate=44100, labels={"probs": [...]})
    m = tf.saved_model.load(path); out = m.signatures["serving_default"](waveform=wav)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path



def waveform_signature_model(inner, feature_cfg, name: str):
    """keras.Model: waveform (batch, samples) -> features -> `inner` (a model or a callable on features)."""
    import keras

    from .features import FeatureExtractor

    wav = keras.Input((None,), dtype="float32", name="waveform")
    feats = FeatureExtractor(feature_cfg, name="features")(wav)  # (batch, frames, mels, ch)
    return keras.Model(wav, inner(feats), name=name)


def _front_end_min_samples(model) -> int:
    """The shortest waveform every FeatureExtractor inside `model` (nested models included) accepts."""
    from .features import FeatureExtractor, min_input_samples

    need, stack, seen = 1, [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, FeatureExtractor):
            need = max(need, min_input_samples(layer.feature_config))
        stack.extend(getattr(layer, "layers", None) or [])
    return need


def export_saved_model(model, out_dir, *, sample_rate: int, labels: dict[str, list[str]], metadata: dict | None = None,
                       min_samples: int | None = None) -> Path:
    """Write `model` (waveform in, dict or tensor out) as a SavedModel with a serving signature
    `serving_default(waveform: float32[batch, samples]) -> dict`. Replaces `out_dir` atomically.

    The signature rejects bad input with an InvalidArgumentError whose message says what is wrong:
    a tensor that is not [batch, samples], an empty batch, fewer than `min_samples` samples (at
    least what the model's feature front-end needs for one frame; recorded in metadata.json), or
    NaN / Inf samples. The output folder is checked for writability before anything is traced.
    """
    import keras
    import tensorflow as tf

    from .io_utils import atomic_write_json, ensure_writable_dir

    out_dir = Path(out_dir)
    ensure_writable_dir(out_dir.parent)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    if isinstance(model.output, dict):
        out_names = list(model.output.keys())
    else:  # one output: name it as its labels are keyed (predict looks class names up by this name)
        out_names = list(labels) if len(labels) == 1 else [model.output_names[0]]
    min_samples = max(int(min_samples or 1), _front_end_min_samples(model))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform")])
    def serve(waveform):
        # A loaded signature does not enforce the declared shape: check it (and the values) here so
        # that bad input fails with a plain message instead of deep inside the front-end.
        waveform = tf.ensure_shape(waveform, [None, None], name="waveform_must_be_batch_by_samples")
        shape = tf.shape(waveform)
        tf.debugging.assert_positive(shape[0], message="waveform: empty batch (0 clips)")
        tf.debugging.assert_greater_equal(
            shape[1], min_samples,
            message=f"waveform too short: this model needs at least {min_samples} samples per clip at {sample_rate} Hz")
        waveform = tf.debugging.assert_all_finite(waveform, "waveform contains NaN or Inf samples")
        out = model(waveform, training=False)
        if not isinstance(out, dict):
            out = {out_names[0]: out}
        return {k: tf.cast(v, tf.float32) for k, v in out.items()}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve)
    archive.write_out(str(tmp), verbose=False)
    meta = {"input": {"name": "waveform", "dtype": "float32", "shape": "[batch, samples]", "sample_rate": sample_rate,
                      "channels": 1, "min_samples": min_samples},
            "outputs": out_names, **(metadata or {})}
    atomic_write_json(tmp / "assets.extra" / "labels.json", labels)
    atomic_write_json(tmp / "assets.extra" / "metadata.json", meta)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def read_export_metadata(export_dir) -> tuple[dict, dict]:
    d = Path(export_dir) / "assets.extra"
    from .errors import TFScenesError

    if not (d / "metadata.json").exists():
        raise TFScenesError(f"{export_dir}: not a tf-scenes export (no assets.extra/metadata.json)")
    out = []
    for name in ("metadata.json", "labels.json"):
        try:
            out.append(json.loads((d / name).read_text()))
        except (OSError, ValueError) as e:
            raise TFScenesError(f"{d / name}: unreadable ({e}); re-export the model") from e
    return out[0], out[1]
