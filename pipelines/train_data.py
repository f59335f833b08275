"""Epoch-indexed, resumable training datasets over in-memory or memory-mapped feature arrays.

The order of the examples of epoch ``e`` and every random draw made in epoch ``e`` are functions of
``(seed, e, position)`` only: epoch ``e`` reads a seeded permutation of the examples (a new one per
pass over the data), each example gets its own stateless seed derived from its global position in
the stream, and each batch gets a seed derived from the position of its first example.  A run
restarted with ``initial_epoch=k`` therefore sees exactly the batches that an uninterrupted run
sees from epoch ``k`` on, which is what :func:`tf_scenes.training.trainer.fit` relies on to resume.

Examples are read from ``features`` (an ``np.ndarray`` or ``np.memmap`` of shape
``(N, frames, mels, channels)``) one at a time with ``tf.numpy_function`` in parallel map calls:
the array is never copied into the graph, so a memory-mapped feature cache of many GB costs only the
pages actually read.  Measured on a 650 MB memmap (1000 x 423 x 128 x 3 float32, 2-core machine):
``Dataset.from_tensor_slices`` needs 4.5 s and +1.3 GB of RSS before the first batch, this pipeline
0.9 s and +7 MiB (+72 MiB after the first batch, the prefetch buffers).

Examples can also be computed inside the pipeline (:class:`Computed`: e.g. decode a clip, augment it
and compute its features, the two-stage study's online augmentation): they follow the stored rows,
take part in the same permutations and transforms, and are pure functions of their index and the
epoch, so the same guarantees hold.

Typical use (two-stage ASC reference settings)::

    ds = make_train_dataset(feats, onehot, batch_size=32, seed=0, epochs=254, initial_epoch=k,
                            transforms=[spec_augment(per_channel=True), crop(400)],
                            mixup=Mixup(0.4, pairing="halves"), steps_per_epoch=ceil(N / 32))

DcaseNet (one epoch = 500 iterations, mixup from epoch 6, one lambda per batch)::

    ds = make_train_dataset(asc_feats, asc_onehot, batch_size=32, seed=0, epochs=160,
                            steps_per_epoch=500, transforms=[crop(251)],  # 5 s crops
                            mixup=Mixup(0.1, per_example=False, from_epoch=6))

(``crop``, ``spec_augment`` and ``Mixup`` from :mod:`tf_scenes.pipelines.transforms`.)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from . import augment as _aug

__all__ = ["make_train_dataset", "make_eval_dataset", "epoch_steps", "Computed"]

AUTOTUNE = tf.data.AUTOTUNE

# Independent random streams derived from the user's seed.
_ORDER, _EXAMPLE, _BATCH = 0, 1, 2


class RowView:
    """Rows ``rows`` of ``array`` (any object with ``shape``, ``dtype`` and numpy indexing, e.g. a
    memmap), indexable like an array of shape ``(len(rows), *array.shape[1:])``.

    Reads touch only the rows asked for: ``view[i]`` and ``view[lo:hi]`` read from the base array.
    """

    def __init__(self, array, rows: Sequence[int]):
        self.base = array
        self.rows = np.asarray(rows, dtype=np.int64)
        if self.rows.ndim != 1:
            raise ValueError(f"rows must be 1-D, got shape {self.rows.shape}")
        n = int(array.shape[0])
        if len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= n):
            raise IndexError(f"row index out of range for an array of {n} rows")

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.base.shape[1:])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self):
        return self.base.dtype

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return np.asarray(self.base[int(self.rows[index])])
        picked = self.rows[index]
        if picked.size == 0:
            return np.zeros((0, *self.base.shape[1:]), self.base.dtype)
        # Sorted unique reads (memmap friendly), then back to the requested order.
        uniq, inverse = np.unique(picked, return_inverse=True)
        return np.asarray(self.base[uniq])[inverse.reshape(picked.shape)]

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out.astype(dtype) if dtype is not None else out


@dataclasses.dataclass(frozen=True)
class Computed:
    """Training examples computed inside the pipeline instead of read from an array.

    With ``make_train_dataset(features, labels, computed=Computed(count, fn, shape))`` the data set
    has ``len(features) + count`` examples: rows ``0 .. len(features)-1`` are read from
    ``features``, example ``len(features) + j`` is ``fn(j, epoch)`` (``j`` and ``epoch``: scalar
    int64 tensors; TF ops only), e.g. decode a clip, augment it and compute its features.  ``fn``
    must be a pure function of ``j`` and ``epoch`` (stateless random ops seeded from them) for the
    batches to be reproducible and resumable.  ``labels`` cover all examples.
    """

    count: int
    fn: Callable
    shape: tuple
    dtype: str = "float32"

    def __post_init__(self):
        if int(self.count) < 1:
            raise ValueError(f"Computed: count must be >= 1, got {self.count}")


def _check_arrays(features, labels, extra: int = 0):
    """The number of examples (rows of `features` plus `extra` computed ones); labels must cover them."""
    if not hasattr(features, "shape") or len(features.shape) < 1:
        raise ValueError(f"features must be an array with a leading example axis, got {type(features).__name__}")
    n = int(features.shape[0])
    if n == 0:
        raise ValueError("features is empty (0 examples)")
    n += int(extra)
    if labels is not None:
        for i, lab in enumerate(tf.nest.flatten(labels)):
            lab = np.asarray(lab) if not hasattr(lab, "shape") else lab
            if int(lab.shape[0]) != n:
                raise ValueError(f"labels[{i}] has {lab.shape[0]} rows but features has {n} examples")
    return n


def epoch_steps(n_examples: int, batch_size: int, *, drop_remainder: bool = True,
                mixup_pairing: str | None = None) -> int:
    """Number of batches in one pass over ``n_examples`` (the ``steps_per_epoch`` of one-pass epochs).

    With ``mixup_pairing="halves"`` each batch consumes ``2 * batch_size`` examples.
    """
    per_batch = batch_size * (2 if mixup_pairing == "halves" else 1)
    return n_examples // per_batch if drop_remainder else math.ceil(n_examples / per_batch)


def _seed_pair(seed) -> tf.Tensor:
    if isinstance(seed, (int, np.integer)):
        return tf.constant([int(seed) & 0x7FFFFFFF, 0x5CE7E5], tf.int64)
    seed = tf.convert_to_tensor(seed, tf.int64)
    if seed.shape.as_list() != [2]:
        raise ValueError(f"seed must be an int or a shape-[2] integer array, got shape {seed.shape.as_list()}")
    return seed


def _permutation(seed, n: int) -> tf.Tensor:
    """A seeded permutation of 0..n-1 (argsort of full-range random int64 keys, stable ties)."""
    keys = tf.random.stateless_uniform([n], seed=seed, minval=None, maxval=None, dtype=tf.int64)
    return tf.argsort(keys, stable=True)


def _gather_fn(features, labels, dtype):
    """A py function returning example ``i`` as a flat list of numpy arrays (features first;
    labels only when `features` is None)."""
    flat_labels = [] if labels is None else tf.nest.flatten(labels)
    feat_dtype = (np.dtype(dtype) if dtype is not None else features.dtype) if features is not None else None

    def gather(i):
        i = int(i)
        # Always hand TensorFlow a fresh, writeable copy: a read-only memmap view can be reused as
        # an op's output buffer by tf.numpy_function and crash the process.
        out = [np.array(features[i], dtype=feat_dtype, copy=True)] if features is not None else []
        out.extend(np.array(lab[i], copy=True) for lab in flat_labels)
        return out

    specs = [tf.TensorSpec(features.shape[1:], tf.as_dtype(feat_dtype))] if features is not None else []
    specs.extend(tf.TensorSpec(np.shape(lab)[1:], tf.as_dtype(np.asarray(lab[:1]).dtype)) for lab in flat_labels)
    return gather, specs


def make_train_dataset(features, labels, *, batch_size: int, seed, epochs: int, initial_epoch: int = 0,
                       transforms: Sequence = (), mixup=None, drop_remainder: bool = True,
                       steps_per_epoch: int | None = None, dtype="float32", computed: Computed | None = None,
                       num_parallel_calls=AUTOTUNE) -> tf.data.Dataset:
    """Training batches ``(x, y)`` for epochs ``initial_epoch .. epochs-1``.

    Args:
        features: array (N, frames, mels, channels), e.g. ``np.load(path, mmap_mode="r")``.
        labels: array (N, ...) (one-hot, multi-hot or frame labels) or a nested structure (dict,
            tuple) of such arrays; ``y`` has the same structure.
        batch_size: examples per output batch.
        seed: int or shape-[2] int array: the only source of randomness.
        epochs, initial_epoch: the dataset covers epochs ``initial_epoch .. epochs-1``; batches
            never straddle two epochs.
        transforms: per-example transforms (:mod:`tf_scenes.pipelines.transforms`: crop,
            spec_augment, a study's own map...) applied in this order, each drawing from its own
            seed stream.
        mixup: a :class:`~tf_scenes.pipelines.transforms.Mixup` of each batch, or None.  With
            ``pairing="halves"`` each output batch is mixed from ``2 * batch_size`` examples.
        drop_remainder: drop the last partial batch of each one-pass epoch.
        steps_per_epoch: None = an epoch is one pass over the data (``epoch_steps`` batches).  An
            int = an epoch is exactly this many batches drawn from an endless sequence of seeded
            passes (DcaseNet: 500 iterations per epoch; two-stage reference: ceil(N/32) steps of
            2 x 32 clips, i.e. about two passes).
        dtype: features are cast to this dtype after reading (None keeps the stored dtype).
        computed: examples computed in the pipeline after the rows of ``features``
            (:class:`Computed`; ``fn(j, epoch)`` gets the epoch the example is drawn in).  Each
            computed example is cast to ``dtype`` like a read one.
    """
    n = _check_arrays(features, labels, computed.count if computed is not None else 0)
    n_stored = int(features.shape[0])
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    halves = mixup is not None and mixup.pairing == "halves"
    if halves and steps_per_epoch is None and not drop_remainder:
        raise ValueError("mixup_pairing='halves' needs whole batches of 2 x batch_size: use drop_remainder=True")
    per_batch = 2 * batch_size if halves else batch_size  # examples read per output batch
    if steps_per_epoch is None:
        per_epoch_steps = epoch_steps(n, batch_size, drop_remainder=drop_remainder,
                                      mixup_pairing="halves" if halves else None)
        if per_epoch_steps == 0:
            raise ValueError(f"{n} examples give 0 batches of {per_batch} per epoch with drop_remainder=True")
        # Examples per epoch: the permutation of one pass, cut to whole batches when dropping.
        per_epoch = per_epoch_steps * per_batch if drop_remainder else n
        one_pass = True
    else:
        if int(steps_per_epoch) < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        per_epoch = int(steps_per_epoch) * per_batch
        one_pass = False
    if initial_epoch < 0:
        raise ValueError(f"initial_epoch must be >= 0, got {initial_epoch}")

    base = _seed_pair(seed)
    order_seed = _aug.fold_seed(base, _ORDER)
    # One stream per kind of per-example transform: a single fold_in per example and transform.
    streams = [_aug.fold_seed(base, _EXAMPLE, t.stream) for t in transforms]
    batch_seed = _aug.fold_seed(base, _BATCH)
    gather, specs = _gather_fn(features, labels, dtype)
    label_struct = labels

    def pass_slice(p, lo, hi):
        """Positions lo..hi-1 of pass p: (global position, example index)."""
        perm = _permutation(_aug.fold_seed(order_seed, p), n)
        pos = tf.range(lo, hi, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices((p * n + pos, tf.gather(perm, pos)))

    def epoch_indices(e):
        if one_pass:
            # Global position g = e * n + k for the k-th example of epoch e's permutation.
            return pass_slice(e, tf.constant(0, tf.int64), tf.constant(per_epoch, tf.int64))
        start, end = e * per_epoch, (e + 1) * per_epoch
        p0, p1 = start // n, (end - 1) // n

        def one(p):
            return pass_slice(p, tf.maximum(start - p * n, 0), tf.minimum(end - p * n, n))

        return tf.data.Dataset.range(p0, p1 + 1).flat_map(one)

    if computed is not None:
        feat_dtype = tf.as_dtype(np.dtype(dtype) if dtype is not None else features.dtype)
        computed_shape = tuple(computed.shape)
        if computed_shape != tuple(features.shape[1:]):
            raise ValueError(f"computed examples have shape {computed_shape}, the stored ones "
                             f"{tuple(features.shape[1:])}")
        gather_row, row_specs = _gather_fn(features, None, dtype)
        gather_labels, label_specs = _gather_fn(None, labels, dtype)

    def epoch_of(g):
        return g // n if one_pass else g // per_epoch

    def read_computed(g, idx):
        """Example idx: a stored row (numpy_function) or computed in the graph; and its labels."""
        def stored():
            (row,) = tf.numpy_function(gather_row, [idx], [row_specs[0].dtype], stateful=False)
            return tf.ensure_shape(row, row_specs[0].shape)

        def made():
            x = tf.cast(computed.fn(idx - n_stored, epoch_of(g)), feat_dtype)
            return tf.ensure_shape(x, row_specs[0].shape)

        x = tf.cond(idx < n_stored, stored, made)
        labs = tf.numpy_function(gather_labels, [idx], [s.dtype for s in label_specs], stateful=False) \
            if label_specs else []
        return [x] + [tf.ensure_shape(t, s.shape) for t, s in zip(labs, label_specs)]

    def load(g, idx):
        if computed is None:
            flat = tf.numpy_function(gather, [idx], [s.dtype for s in specs], stateful=False)
            flat = [tf.ensure_shape(t, s.shape) for t, s in zip(flat, specs)]
        else:
            flat = read_computed(g, idx)
        x = flat[0]
        y = tf.nest.pack_sequence_as(label_struct, flat[1:]) if label_struct is not None else ()
        for t, stream in zip(transforms, streams):
            x, y = t.fn(x, y, _aug.fold_seed(stream, g))
        return x, y, g

    def epoch_batches(e):
        ds = epoch_indices(e).map(load, num_parallel_calls=num_parallel_calls, deterministic=True)
        return ds.batch(per_batch, drop_remainder=drop_remainder or not one_pass)

    def mix(x, y, g):
        first = g[0]
        epoch = first // per_epoch if not one_pass else first // n
        s = _aug.fold_seed(batch_seed, first)

        def do_mix():
            return _aug.mixup(x, y, s, alpha=float(mixup.alpha), pairing=mixup.pairing,
                              per_example=mixup.per_example)

        def no_mix():
            xs, ys = (x, y)
            if halves:
                xs = x[:batch_size]
                ys = tf.nest.map_structure(lambda t: t[:batch_size], y)
            return xs, tf.nest.map_structure(lambda t: tf.cast(t, tf.float32), ys)

        if mixup.from_epoch <= 0:
            return do_mix()
        return tf.cond(epoch >= mixup.from_epoch, do_mix, no_mix)

    ds = tf.data.Dataset.range(int(initial_epoch), int(epochs)).flat_map(epoch_batches)
    if mixup is not None:
        ds = ds.map(mix, num_parallel_calls=num_parallel_calls, deterministic=True)
    else:
        ds = ds.map(lambda x, y, g: (x, y))
    if label_struct is None:
        ds = ds.map(lambda x, y: x)
    # Known length (flat_map hides it), so that fit() can check it against its steps_per_epoch.
    batches_per_epoch = int(steps_per_epoch) if not one_pass else per_epoch_steps
    total = max(int(epochs) - int(initial_epoch), 0) * batches_per_epoch
    ds = ds.apply(tf.data.experimental.assert_cardinality(total))
    return ds.prefetch(AUTOTUNE)


def make_eval_dataset(features, labels=None, batch_size: int = 32, dtype="float32") -> tf.data.Dataset:
    """Batches ``(x, y)`` (or ``x`` when ``labels`` is None) in array order: no shuffling, no
    augmentation, the last partial batch kept.  Reads contiguous slices from ``features`` (memmap
    friendly) with ``tf.numpy_function``.
    """
    n = _check_arrays(features, labels)
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    flat_labels = [] if labels is None else tf.nest.flatten(labels)
    feat_dtype = np.dtype(dtype) if dtype is not None else features.dtype
    dtypes = [tf.as_dtype(feat_dtype)] + [tf.as_dtype(np.asarray(lab[:1]).dtype) for lab in flat_labels]
    shapes = [features.shape[1:]] + [np.shape(lab)[1:] for lab in flat_labels]

    def read(b):
        lo, hi = int(b) * batch_size, min((int(b) + 1) * batch_size, n)
        out = [np.asarray(features[lo:hi], dtype=feat_dtype)]
        out.extend(np.asarray(lab[lo:hi]) for lab in flat_labels)
        return out

    def load(b):
        flat = tf.numpy_function(read, [b], dtypes, stateful=False)
        flat = [tf.ensure_shape(t, [None, *s]) for t, s in zip(flat, shapes)]
        if labels is None:
            return flat[0]
        return flat[0], tf.nest.pack_sequence_as(labels, flat[1:])

    ds = tf.data.Dataset.range(math.ceil(n / batch_size)).map(load, num_parallel_calls=AUTOTUNE,
                                                              deterministic=True)
    return ds.prefetch(AUTOTUNE)
