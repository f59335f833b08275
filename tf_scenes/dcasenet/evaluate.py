"""DcaseNet evaluation protocol (Jung et al. 2021, Sec. 4; the authors' trainer.py).

* ASC: the mean of the softmax outputs of 3 crops of 5 s, at 0-5 s, 2.5-7.5 s and 5-10 s (frame
  offsets ``0``, ``crop // 2`` and ``frames - crop``), each crop re-standardised like the
  training crops; accuracy of the argmax.
* TAG: the whole clip (tiled by doubling to at least 40 frames, the network's minimum), sigmoid
  of the logits; lwlrap.
* SED: the whole 60 s recording; each of the 4 channels is one example and the 4 channels'
  activity outputs are averaged before thresholding (0.3); segment-based F1 / ER at 1 s and the
  reference code's 5 s-block variant (:func:`tf_scenes.metrics.sed.sed_metrics`); the study adds
  event-based F1 and PSDS of the written score files (:mod:`tf_scenes.metrics.sed_events`).

The averaging and cropping helpers are plain numpy so that they are tested by hand-computed cases.
"""

from __future__ import annotations

import numpy as np

from tf_scenes.metrics.sed import sed_metrics
from tf_scenes.metrics.tagging import tagging_metrics

MIN_FRAMES = 40  # one trunk step: inputs shorter than this give no output


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def asc_crop_offsets(frames: int, crop: int) -> tuple[int, int, int]:
    """Frame offsets of the three evaluation crops: start, ``crop // 2`` (2.5 s for 5 s crops), end."""
    if frames < crop:
        raise ValueError(f"ASC evaluation: the clip has {frames} frames, fewer than the crop ({crop})")
    return 0, min(crop // 2, frames - crop), frames - crop


def three_crop_mean(crop_logits: np.ndarray) -> np.ndarray:
    """(clips, 3, classes) logits -> (clips, classes) mean of the 3 crops' softmax."""
    crop_logits = np.asarray(crop_logits, np.float64)
    if crop_logits.ndim != 3:
        raise ValueError(f"expected (clips, crops, classes) logits, got shape {crop_logits.shape}")
    return softmax(crop_logits, axis=-1).mean(axis=1)


def tile_min_frames(x: np.ndarray, min_frames: int = MIN_FRAMES) -> np.ndarray:
    """Double (frames, ...) ``x`` along frames until it has at least ``min_frames`` frames."""
    while len(x) < min_frames:
        x = np.concatenate([x, x], axis=0)
    return x


def channel_average(frame_probs: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray]:
    """Average the channel examples of each recording.

    Args:
      frame_probs: (examples, frames, classes) activity of every channel example.
      groups: (examples,) recording index of each example.

    Returns:
      (recordings, frames, classes) means in order of first appearance, and the recording ids.
    """
    frame_probs = np.asarray(frame_probs, np.float64)
    groups = np.asarray(groups)
    if len(groups) != len(frame_probs):
        raise ValueError(f"{len(groups)} group ids for {len(frame_probs)} examples")
    ids = list(dict.fromkeys(groups.tolist()))
    return np.stack([frame_probs[groups == g].mean(axis=0) for g in ids]), np.asarray(ids)


def make_runner(model, n_mels: int = 128, eager: bool = False):
    """A traced-once inference function ``x (batch, frames, mels, 1) -> model outputs`` (any length);
    ``eager=True`` calls the model eagerly instead (no tracing: cheaper for a few calls)."""
    import tensorflow as tf

    if eager:
        return lambda x: model(tf.convert_to_tensor(x, tf.float32), training=False)

    @tf.function(input_signature=[tf.TensorSpec([None, None, n_mels, 1], tf.float32)], reduce_retracing=True)
    def run(x):
        return model(x, training=False)

    return run


def _as_runner(model, n_mels: int):
    import keras

    return make_runner(model, n_mels) if isinstance(model, keras.Model) else model


def predict_asc(model, features, crop: int, batch_size: int = 32) -> np.ndarray:
    """(clips, classes) mean softmax of the 3 evaluation crops.

    ``model``: a Keras model or :func:`make_runner` function whose output has ``"scene"`` logits.
    """
    from .crops import restandardise_np

    n = int(features.shape[0])
    run = _as_runner(model, int(features.shape[2]))
    offsets = asc_crop_offsets(int(features.shape[1]), crop)
    out = []
    for lo in range(0, n, batch_size):
        x = np.asarray(features[lo:lo + batch_size], np.float32)  # (b, frames, mels, 1)
        crops = np.stack([x[:, o:o + crop] for o in offsets], axis=1)  # (b, 3, crop, mels, 1)
        crops = restandardise_np(crops)
        flat = crops.reshape((-1,) + crops.shape[2:])  # (b * 3, crop, mels, 1)
        logits = run(flat)["scene"].numpy().reshape(len(x), len(offsets), -1)  # (b, 3, classes)
        out.append(three_crop_mean(logits))
    return np.concatenate(out, axis=0)


def predict_tag(model, clips, batch_size: int = 32) -> np.ndarray:
    """(clips, 80) sigmoid scores of whole clips (ClipFeatures), equal lengths batched together."""
    n = len(clips)
    run = _as_runner(model, int(clips.data.shape[1]))
    tiled = [tile_min_frames(np.asarray(clips.clip(i), np.float32)) for i in range(n)]
    out = [None] * n
    by_len: dict[int, list[int]] = {}
    for i, x in enumerate(tiled):
        by_len.setdefault(len(x), []).append(i)
    for idx in by_len.values():
        for lo in range(0, len(idx), batch_size):
            part = idx[lo:lo + batch_size]
            logits = run(np.stack([tiled[i] for i in part]))["tags"].numpy()
            for i, row in zip(part, sigmoid(logits)):
                out[i] = row
    return np.stack(out)


def predict_sed(model, clips, groups, batch_size: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Channel-averaged activity (recordings, frames, 14) of whole recordings, and recording ids."""
    n = len(clips)
    run = _as_runner(model, int(clips.data.shape[1]))
    probs = []
    lengths = clips.lengths
    for lo in range(0, n, batch_size):
        part = list(range(lo, min(n, lo + batch_size)))
        if len({int(lengths[i]) for i in part}) == 1:
            probs.extend(run(np.stack([np.asarray(clips.clip(i), np.float32) for i in part]))["frames"].numpy())
        else:
            for i in part:
                probs.append(run(np.asarray(clips.clip(i), np.float32)[None])["frames"].numpy()[0])
    frames = min(len(p) for p in probs)
    return channel_average(np.stack([p[:frames] for p in probs]), groups)


def asc_metrics(labels, probs) -> dict:
    labels = np.asarray(labels)
    return {"acc": float(np.mean(np.argmax(probs, axis=1) == labels))}


def tag_metrics(labels, scores, class_names=None) -> dict:
    return tagging_metrics(np.asarray(labels), np.asarray(scores), class_names)


def sed_scores(labels, probs) -> dict:
    """Both SED variants on (recordings, frames, classes), trimmed to the shorter length."""
    labels, probs = np.asarray(labels), np.asarray(probs)
    n = min(labels.shape[1], probs.shape[1])
    return sed_metrics(labels[:, :n], probs[:, :n])
