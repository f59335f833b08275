"""DcaseNet's per-task examples and crop standardisation (Jung et al. 2021, Sec. 3.3; the authors'
dataloaders.py): the split container every task's data comes in, per-band re-standardisation of a
crop over its own frames, and the tiling of short clips. TensorFlow and numpy twins; the tf.data
pipelines that cut the crops are the study's (tf_scenes.experiments.dcasenet.data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

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
