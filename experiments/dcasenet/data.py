"""Per-task training pipelines of DcaseNet and the joint (zipped) dataset.

Features come from whole-clip caches (:func:`tf_scenes.pipelines.cache.cached_features` for ASC,
:func:`tf_scenes.pipelines.cache.cached_clips` for TAG and SED) and are cropped in tf.data, as the
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

import numpy as np
import tensorflow as tf

from tf_scenes.dcasenet.crops import TaskSplit, restandardise, tile_to
from tf_scenes.pipelines import augment as aug
from tf_scenes.pipelines.cache import ClipFeatures, CopyingView
from tf_scenes.pipelines.train_data import make_train_dataset
from tf_scenes.pipelines.transforms import Mixup, map_example

TASKS = ("asc", "tag", "sed")


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
    mixup = Mixup(mixup_alpha, per_example=False, from_epoch=mixup_from_epoch) if mixup_alpha is not None else None
    return make_train_dataset(features, labels, batch_size=batch_size, seed=seed, epochs=epochs,
                              initial_epoch=initial_epoch, transforms=[map_example(f"{task}_crop", fn)],
                              steps_per_epoch=steps_per_epoch, mixup=mixup)


def joint_dataset(per_task: dict[str, tf.data.Dataset]) -> tf.data.Dataset:
    """``{task: (x, y)}`` per step: the task datasets zipped (equal, known lengths)."""
    if not per_task:
        raise ValueError("joint_dataset needs at least one task")
    cards = {t: int(ds.cardinality()) for t, ds in per_task.items()}
    if len(set(cards.values())) != 1:
        raise ValueError(f"task datasets differ in length: {cards}")
    return tf.data.Dataset.zip(dict(per_task)).prefetch(tf.data.AUTOTUNE)
