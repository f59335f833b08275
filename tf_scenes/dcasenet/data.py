"""Per-task training pipelines of DcaseNet and the joint (zipped) dataset.

Features come from whole-clip caches (:func:`tf_scenes.pipelines.cache.cached_features` for ASC,
:func:`tf_scenes.dcasenet.cache.clip_features` for TAG and SED) and are cropped in tf.data, as the
authors' code does (Jung et al. 2021, Sec. 3.3; dataloaders.py):

* ASC: a random 5 s crop (251 frames) of the 10 s clip.
* TAG: the clip tiled (doubled until it is at least as long as the crop, like the code's
  ``torch.cat([X, X])`` loop) and a random 5 s crop of it.
* SED: a random 30 s window (1500 frames, the code's ``X[:, s*5 : s*5+1500]``) whose start is a
  whole 100 ms label frame ``s`` (0 <= s < (frames - 1500) / 5), with labels ``y[s : s+300]``.

ASC and TAG crops are re-standardised per band over the crop's frames: the code computes their
log-mel features on the cropped waveform, so each crop is standardised over itself.  Log-mel
standardisation is affine per band, so standardising a crop of whole-clip standardised features
gives the crop-level standardisation exactly, except for the STFT's edge frames (reflect padding
at the clip ends vs real context at a crop boundary).  SED windows are not re-standardised (the
code standardises each 60 s channel once, in preprocess.py).

Every random draw is a stateless function of the seed and the example's stream position
(:mod:`tf_scenes.pipelines.train_data`), so a resumed run sees the same batches.  :func:`joint_dataset`
zips one dataset per active task; each element is ``{task: (x, y)}``: one batch per task per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tf_scenes.pipelines import augment as aug
from tf_scenes.pipelines.train_data import make_train_dataset

from .cache import ClipFeatures, CopyingView

TASKS = ("asc", "tag", "sed")
STD_FLOOR = 1e-3  # the front-end's (and the code's) floor on the per-band std


@dataclass
class TaskSplit:
    """Features and labels of one task's split.

    Attributes:
      task: "asc", "tag" or "sed".
      features: (N, frames, mels, 1) array (ASC: ndarray / memmap) or ClipFeatures (TAG, SED:
        whole clips of their own lengths).
      lengths: (N,) true number of frames of each example (padding beyond it).
      labels: asc (N,) int class indices; tag (N, 80) multi-hot; sed (N, label_frames, 14).
      names: (N,) clip names (sed: the recording of each channel example).
      groups: sed only: (N,) recording index of each channel example (evaluation averages the
        channels of one recording); None otherwise.
    """

    task: str
    features: object
    lengths: np.ndarray
    labels: np.ndarray
    names: list
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lengths)


def restandardise(x, std_floor: float = STD_FLOOR):
    """Per-band standardisation over time (axis 0) of ``(frames, mels, ch)``, unbiased std floored."""
    x = tf.convert_to_tensor(x)
    n = tf.cast(tf.shape(x)[0], x.dtype)
    mean = tf.reduce_mean(x, axis=0, keepdims=True)  # (1, mels, ch)
    var = tf.reduce_sum(tf.square(x - mean), axis=0, keepdims=True) / tf.maximum(n - 1.0, 1.0)
    return (x - mean) / tf.maximum(tf.sqrt(var), std_floor)


def restandardise_np(x: np.ndarray, std_floor: float = STD_FLOOR) -> np.ndarray:
    """numpy twin of :func:`restandardise` over axis -3 (frames) of (..., frames, mels, ch)."""
    x = np.asarray(x, np.float32)
    mean = x.mean(axis=-3, keepdims=True)
    std = x.std(axis=-3, ddof=1, keepdims=True) if x.shape[-3] > 1 else np.zeros_like(mean)
    return ((x - mean) / np.maximum(std, std_floor)).astype(np.float32)


def tile_to(x, length: int):
    """Double ``x`` along frames until it has at least ``length`` frames (the code's tiling)."""
    n = tf.shape(x)[0]
    reps = tf.cast(tf.math.ceil(tf.cast(length, tf.float32) / tf.cast(n, tf.float32)), tf.int32)
    # Doubling: 2**ceil(log2(reps)) copies, as `while len < L: X = cat([X, X])`.
    reps = tf.cast(2.0 ** tf.math.ceil(tf.math.log(tf.cast(reps, tf.float32)) / math.log(2.0)), tf.int32)
    reps = tf.maximum(reps, 1)
    return tf.tile(x, tf.concat([[reps], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0))


def _asc_map(crop: int, norm: bool):
    def fn(x, y, seed):
        x = aug.random_crop(x, crop, seed)  # (crop, mels, 1)
        return (restandardise(x) if norm else x), y
    return fn


def _tag_map(crop: int, norm: bool):
    def fn(x, y, seed):
        x = x[: y["n"]]  # the clip without padding
        x = tile_to(x, crop)
        x = aug.random_crop(x, crop, seed)
        x.set_shape([crop, *x.shape[1:]])
        return (restandardise(x) if norm else x), y["y"]
    return fn


def _sed_map(crop: int, label_crop: int, hop: int):
    """Window of ``crop`` feature frames starting at label frame s (feature frame s * hop)."""
    def fn(x, y, seed):
        n, labels = y["n"], y["y"]
        max_start = tf.minimum((n - crop) // hop, tf.shape(labels)[0] - label_crop)
        s = tf.random.stateless_uniform([], seed=seed, minval=0, maxval=tf.maximum(max_start, 1), dtype=tf.int32)
        xs = x[s * hop: s * hop + crop]
        ys = labels[s: s + label_crop]
        xs.set_shape([crop, *x.shape[1:]])
        ys.set_shape([label_crop, labels.shape[-1]])
        return xs, ys
    return fn


def train_dataset(split: TaskSplit, *, batch_size: int, crop_frames: int, seed, epochs: int, initial_epoch: int,
                  steps_per_epoch: int, mixup_alpha: float | None, mixup_from_epoch: int,
                  n_classes: int | None = None, label_hop: int = 5, restandardise_crops: bool = True
                  ) -> tf.data.Dataset:
    """Batches ``(x, y)`` of one task for epochs ``initial_epoch .. epochs-1`` (module docstring).

    ``label_hop``: feature frames per SED label frame (100 ms / 20 ms = 5).  ``n_classes``: ASC
    one-hot size.  Mixup (one lambda ~ Beta(alpha, alpha) per batch) from ``mixup_from_epoch``.
    """
    task = split.task
    lengths = np.asarray(split.lengths, np.int32)
    if task == "asc":
        if int(lengths.min()) < crop_frames:
            raise ValueError(f"ASC clips have {int(lengths.min())} frames, fewer than the crop ({crop_frames})")
        labels = np.eye(int(n_classes), dtype=np.float32)[np.asarray(split.labels, np.int64)]
        fn = _asc_map(crop_frames, restandardise_crops)
    elif task == "tag":
        labels = {"y": np.asarray(split.labels, np.float32), "n": lengths}
        fn = _tag_map(crop_frames, restandardise_crops)
    elif task == "sed":
        if int(lengths.min()) < crop_frames:
            raise ValueError(f"SED examples have {int(lengths.min())} frames, fewer than the window ({crop_frames})")
        labels = {"y": np.asarray(split.labels, np.float32), "n": lengths}
        fn = _sed_map(crop_frames, crop_frames // label_hop, label_hop)
    else:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    features = split.features
    if isinstance(features, ClipFeatures):
        features = features.padded()  # (N, longest, mels, 1); true lengths go with the labels
    elif isinstance(features, np.ndarray):  # memmaps: hand TensorFlow writable copies (CopyingView)
        features = CopyingView(features)
    return make_train_dataset(features, labels, batch_size=batch_size, seed=seed, epochs=epochs,
                              initial_epoch=initial_epoch, extra_map=fn, steps_per_epoch=steps_per_epoch,
                              mixup_alpha=mixup_alpha, mixup_per_example=False,
                              mixup_from_epoch=mixup_from_epoch if mixup_alpha is not None else 0)


def joint_dataset(per_task: dict[str, tf.data.Dataset]) -> tf.data.Dataset:
    """``{task: (x, y)}`` per step: the task datasets zipped (equal, known lengths)."""
    if not per_task:
        raise ValueError("joint_dataset needs at least one task")
    cards = {t: int(ds.cardinality()) for t, ds in per_task.items()}
    if len(set(cards.values())) != 1:
        raise ValueError(f"task datasets differ in length: {cards}")
    return tf.data.Dataset.zip(dict(per_task)).prefetch(tf.data.AUTOTUNE)
