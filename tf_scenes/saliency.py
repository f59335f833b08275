"""Class activation maps (CAM) and Grad-CAM for Keras 3 functional models.

Both return maps on the model input's grid: (batch, time, freq) for spectrogram models and
(batch, time) for waveform / frame-sequence models, normalised per clip to [0, 1].

- CAM (Zhou et al. 2016) for fully convolutional models whose class scores are the global average of
  a class map (the two-stage ResNet: the last 1x1 class conv). The map of class c is channel c of
  that layer's output.
- Grad-CAM (Selvaraju et al. 2017) for any conv layer: weights = spatial mean of d score_c / d A,
  map = ReLU(sum_k w_k A_k).

Models may return a tensor or a dict of tensors (multi-task / SED models): pass `output` to choose
the head. Scores are taken from the model output as is (probabilities or logits).
"""

from __future__ import annotations

import numpy as np


def layer_names(model, kinds: tuple[str, ...] = ("Conv1D", "Conv2D")) -> list[str]:
    """Names of the model's layers of the given classes, input to output order."""
    return [layer.name for layer in model.layers if type(layer).__name__ in kinds]


def _submodel(model, layer_name: str, output: str | None):
    import keras

    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        raise ValueError(f"model {model.name!r} has no layer {layer_name!r}; conv layers: "
                         f"{', '.join(layer_names(model)) or 'none'}") from None
    out = model.output
    if isinstance(out, dict):
        if output is None:
            raise ValueError(f"model {model.name!r} has several outputs {sorted(out)}: choose one with output=")
        if output not in out:
            raise ValueError(f"model {model.name!r} has no output {output!r}; outputs: {sorted(out)}")
        out = out[output]
    elif output is not None and output != "output":
        raise ValueError(f"model {model.name!r} has a single output; output={output!r} is not valid")
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, [layer.output, out])


def _upsample(maps: np.ndarray, grid: tuple[int, ...]) -> np.ndarray:
    """(batch, t, f) -> (batch, T, F) bilinear, or (batch, t) -> (batch, T) linear."""
    import tensorflow as tf

    if maps.ndim == 2:  # (batch, t): 1-D time maps
        up = tf.image.resize(maps[:, :, None, None], (grid[0], 1), method="bilinear")
        return up.numpy()[:, :, 0, 0]
    up = tf.image.resize(maps[..., None], grid[:2], method="bilinear")  # (batch, T, F, 1)
    return up.numpy()[..., 0]


def normalise(maps: np.ndarray) -> np.ndarray:
    """Per-clip min-max to [0, 1]; a constant map becomes all zeros."""
    axes = tuple(range(1, maps.ndim))
    lo = maps.min(axis=axes, keepdims=True)
    span = maps.max(axis=axes, keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 0.0).astype(np.float32)


def _grid(x: np.ndarray) -> tuple[int, ...]:
    return tuple(x.shape[1:3]) if x.ndim >= 3 else (x.shape[1],)


def _class_index(scores: np.ndarray, class_index) -> np.ndarray:
    n = scores.shape[0]
    if class_index is None:
        return scores.reshape(n, -1, scores.shape[-1]).max(axis=1).argmax(-1)
    return np.broadcast_to(np.asarray(class_index, dtype=np.int64), (n,))


def cam(model, x, layer: str, class_index=None, output: str | None = None, grid=None) -> np.ndarray:
    """CAM from a class-map layer (channels = classes), upsampled to the input grid.

    Args:
      model: functional Keras model.
      x: input batch (batch, time, freq, ch) or (batch, time, feat).
      layer: name of the layer whose output has one channel per class.
      class_index: int, per-example array, or None for the top class.
      grid: output grid; default the input's (time, freq).
    Returns: (batch, time, freq) maps in [0, 1].
    """
    sub = _submodel(model, layer, output)
    fmap, scores = sub(np.asarray(x), training=False)
    fmap, scores = np.asarray(fmap, np.float32), np.asarray(scores)
    c = _class_index(scores, class_index)
    maps = fmap[np.arange(len(c)), ..., c] if fmap.ndim == 3 else np.take_along_axis(
        fmap, c[:, None, None, None], axis=-1)[..., 0]
    return normalise(_upsample(maps, grid or _grid(np.asarray(x))))


def grad_cam(model, x, layer: str, class_index=None, output: str | None = None, grid=None) -> np.ndarray:
    """Grad-CAM at `layer` for `class_index` (None: the top class), upsampled to the input grid.

    For frame-level outputs (batch, frames, classes) the score is the sum over frames of class c.
    """
    import tensorflow as tf

    sub = _submodel(model, layer, output)
    x = tf.convert_to_tensor(np.asarray(x, np.float32))
    with tf.GradientTape() as tape:
        fmap, scores = sub(x, training=False)
        c = _class_index(np.asarray(scores), class_index)
        flat = tf.reshape(scores, (tf.shape(scores)[0], -1, tf.shape(scores)[-1]))  # (batch, frames, classes)
        score = tf.reduce_sum(tf.gather(flat, c, axis=2, batch_dims=1), axis=1)  # (batch,)
    grads = tape.gradient(score, fmap)
    if grads is None:
        raise ValueError(f"output does not depend on layer {layer!r}")
    spatial = tuple(range(1, fmap.shape.rank - 1))
    weights = tf.reduce_mean(grads, axis=spatial, keepdims=True)  # (batch, 1, [1,] channels)
    maps = tf.nn.relu(tf.reduce_sum(weights * fmap, axis=-1)).numpy()  # (batch, t[, f])
    return normalise(_upsample(maps, grid or _grid(x.numpy())))


def frequency_path_edges(model) -> list[int]:
    """Frequency bins where a model's separate frequency paths meet: the edges of the
    ``Cropping2D`` layers that cut the input's frequency axis (axis 2) into bands, e.g. [64] for the
    two-stage ResNet (bands 0-63 and 64-127); [] for a model with one path. Saliency maps of such a
    model can jump at these edges, since each band is seen through its own path only."""
    import keras

    n = model.inputs[0].shape[2] if len(model.inputs[0].shape) == 4 else None
    edges = set()
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Cropping2D) or n is None:
            continue
        try:
            if layer.input.shape[2] != n:  # a crop inside the network, not a split of the input bands
                continue
        except (AttributeError, ValueError):
            continue
        lo, hi = layer.cropping[1]
        edges.update(e for e in (lo, n - hi) if 0 < e < n)
    return sorted(int(e) for e in edges)
