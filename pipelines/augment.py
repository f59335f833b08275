"""Pure, seeded augmentations for log-mel training examples.

Every function takes an explicit ``seed``: a shape-[2] integer tensor (int32 or int64), as used by
TensorFlow's stateless random ops (``tf.random.stateless_*``).  The same input and seed always give
the same output, on any run and after resuming, which is what lets the training datasets of
:mod:`tf_scenes.pipelines.train_data` reproduce an interrupted run batch for batch.  No function keeps state.

Layout: one example is ``(frames, mels, channels)`` (time first) unless the axes are given.

References
----------
- Random crop, SpecAugment, mixup as in the two-stage ASC reference code (Hu et al., ICASSP 2021,
  Sec. 2.3; DCASE 2020 Task 1a): crop 400 of 423 frames at offset 0..22; one frequency mask of
  width 0..12 and one time mask of width 0..39 set to 0, drawn independently for each of the three
  channels (``per_channel=True``) on the uncropped 423 frames (the paper says 10 % of each axis:
  ``fraction=0.1``); mixup with alpha 0.4, one lambda per pair, 32 pairs made from the two halves of
  64 clips (``pairing="halves"``), labels mixed the same way.
- SpecAugment: Park et al., Interspeech 2019, Sec. 2 (masks of width ``w ~ U{0..W}`` starting at
  ``s ~ U{0..size-w-1}``).
- mixup: Zhang et al., ICLR 2018 (lambda ~ Beta(alpha, alpha)).  DcaseNet (Jung et al., ICASSP 2021,
  Sec. 3.3) draws one lambda per batch (``per_example=False``) with alpha 0.1.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["random_crop", "spec_augment", "mixup", "fold_seed"]

MIXUP_PAIRINGS = ("permutation", "reverse", "halves")


def fold_seed(seed, *data) -> tf.Tensor:
    """Derive a new shape-[2] seed from ``seed`` and integers ``data`` (``stateless_fold_in``).

    Different ``data`` give independent streams; the same ``data`` give the same seed.
    """
    seed = _as_seed(seed)
    for d in data:
        seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(d, tf.int64))
    return seed


def _as_seed(seed) -> tf.Tensor:
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64):
        raise TypeError(f"seed must be an int32/int64 tensor of shape [2], got dtype {seed.dtype.name}")
    if seed.shape.rank is not None and seed.shape.as_list() != [2]:
        raise ValueError(f"seed must have shape [2], got {seed.shape.as_list()}")
    return seed


def _norm_axis(axis: int, rank: int, what: str) -> int:
    if not -rank <= axis < rank:
        raise ValueError(f"{what}={axis} is out of range for an input of rank {rank}")
    return axis % rank


def random_crop(x, length: int, seed, axis: int = 0) -> tf.Tensor:
    """Crop ``length`` consecutive frames along ``axis``, at an offset drawn uniformly in
    ``0..size-length-1`` (0 when ``size == length``).

    This follows the two-stage reference, ``np.random.randint(0, size - length)``, which never
    draws the last possible offset: ``random_crop(x, 400, seed)`` on a (423, 128, 3) example
    starts at 0..22.  The crop is applied per example.

    Raises ``ValueError`` (static shapes) or ``tf.errors.InvalidArgumentError`` (dynamic shapes) when
    the clip is shorter than ``length``; the message names both sizes.
    """
    x = tf.convert_to_tensor(x)
    seed = _as_seed(seed)
    rank = x.shape.rank
    if rank is None:
        raise ValueError("random_crop needs an input of known rank")
    axis = _norm_axis(axis, rank, "axis")
    length = int(length)
    if length < 1:
        raise ValueError(f"random_crop: crop length must be >= 1, got {length}")
    static = x.shape[axis]
    if static is not None and static < length:
        raise ValueError(f"random_crop: the clip has {static} frames along axis {axis}, "
                         f"fewer than the crop length {length}")
    size = tf.shape(x)[axis]
    check = tf.debugging.Assert(
        size >= length,
        [f"random_crop: the clip is shorter along axis {axis} than the crop length: clip frames =",
         size, "crop length =", length])
    with tf.control_dependencies([check]):
        offset = tf.random.stateless_uniform([], seed=seed, minval=0, maxval=tf.maximum(size - length, 1),
                                             dtype=tf.int32)
    begin = offset * tf.one_hot(axis, rank, dtype=tf.int32)
    sizes = [-1] * rank
    sizes[axis] = length
    out = tf.slice(x, begin, sizes)
    shape = x.shape.as_list()
    shape[axis] = length
    out.set_shape(shape)
    return out


def _band_masks(size, max_width, u) -> tf.Tensor:
    """Boolean (groups, size): the union of bands drawn from uniforms ``u`` of shape (groups, n, 2).

    Width ``w = floor(u0 * (max_width + 1))`` in 0..max_width (capped at ``size``); start
    ``floor(u1 * (size - w))`` in 0..size-w-1 as in the reference (``randrange(0, size - w)``).
    """
    max_width = tf.minimum(tf.cast(max_width, tf.int32), size)
    w = tf.minimum(tf.cast(u[..., 0] * tf.cast(max_width + 1, tf.float32), tf.int32), max_width)
    span = tf.maximum(size - w, 1)
    start = tf.minimum(tf.cast(u[..., 1] * tf.cast(span, tf.float32), tf.int32), span - 1)
    pos = tf.range(size)[None, None, :]  # (1, 1, size)
    band = (pos >= start[..., None]) & (pos < (start + w)[..., None])  # (groups, n, size)
    return tf.reduce_any(band, axis=1)  # (groups, size)


def _place(mask, axes, rank: int) -> tf.Tensor:
    """Reshape ``mask`` whose dims correspond to ``axes`` (in that order) to broadcast over rank dims."""
    order = sorted(range(len(axes)), key=lambda i: axes[i])
    mask = tf.transpose(mask, order)
    sorted_axes = [axes[i] for i in order]
    dims = tf.unstack(tf.shape(mask))
    target = [dims[sorted_axes.index(a)] if a in sorted_axes else 1 for a in range(rank)]
    return tf.reshape(mask, tf.stack(target))


def spec_augment(x, seed, max_freq_width: int = 12, max_time_width: int = 39, n_freq_masks: int = 1,
                 n_time_masks: int = 1, value: float = 0.0, fraction: float | None = None,
                 time_axis: int = 0, freq_axis: int = 1, per_channel: bool = False,
                 channel_axis: int = -1) -> tf.Tensor:
    """SpecAugment frequency and time masking of one example (no time warping).

    Each mask has a width ``w ~ U{0..max_width}`` and starts at ``s ~ U{0..size-w-1}``; masked
    cells are set to ``value``.  Defaults are the two-stage reference (Hu et al. 2021): one
    frequency mask of width 0..12 bins and one time mask of width 0..39 frames, value 0.

    Args:
        x: one example, default layout (frames, mels, channels); (frames, mels) works too.
        seed: shape-[2] int tensor.
        fraction: if given, the maximum widths are ``floor(fraction * size)`` of each axis instead
            of ``max_freq_width``/``max_time_width`` (the paper's "10 % of each axis": 0.1).
        per_channel: draw independent masks for every channel along ``channel_axis``.  The two-stage
            reference code masks each of the three channels (static, delta, delta-delta)
            independently (``per_channel=True``); the default masks all channels alike.
    """
    x = tf.convert_to_tensor(x)
    seed = _as_seed(seed)
    rank = x.shape.rank
    if rank is None or rank < 2:
        raise ValueError(f"spec_augment needs an example of rank >= 2, got rank {rank}")
    time_axis = _norm_axis(time_axis, rank, "time_axis")
    freq_axis = _norm_axis(freq_axis, rank, "freq_axis")
    if time_axis == freq_axis:
        raise ValueError("spec_augment: time_axis and freq_axis must differ")
    for name, v in (("n_freq_masks", n_freq_masks), ("n_time_masks", n_time_masks)):
        if int(v) < 0:
            raise ValueError(f"spec_augment: {name} must be >= 0, got {v}")
    axes = [time_axis, freq_axis]
    groups = 1
    if per_channel:
        channel_axis = _norm_axis(channel_axis, rank, "channel_axis")
        if channel_axis in axes:
            raise ValueError("spec_augment: channel_axis must differ from time_axis and freq_axis")
        groups = tf.shape(x)[channel_axis]
    n_time, n_freq = tf.shape(x)[time_axis], tf.shape(x)[freq_axis]
    if fraction is not None:
        if not 0.0 <= float(fraction) <= 1.0:
            raise ValueError(f"spec_augment: fraction must be in [0, 1], got {fraction}")
        max_time_width = tf.cast(tf.floor(float(fraction) * tf.cast(n_time, tf.float32)), tf.int32)
        max_freq_width = tf.cast(tf.floor(float(fraction) * tf.cast(n_freq, tf.float32)), tf.int32)
    else:
        if int(max_time_width) < 0 or int(max_freq_width) < 0:
            raise ValueError("spec_augment: mask widths must be >= 0")
    # One random draw per example (few ops: this runs per example inside tf.data).
    n_t, n_f = int(n_time_masks), int(n_freq_masks)
    u = tf.random.stateless_uniform(tf.stack([groups, n_t + n_f, 2]), seed=seed)
    time_mask = _band_masks(n_time, max_time_width, u[:, :n_t])
    freq_mask = _band_masks(n_freq, max_freq_width, u[:, n_t:])
    # keep = 1 outside every mask; multiply-add is much faster than a broadcasting select on CPU.
    keep = (tf.cast(~time_mask, x.dtype)[:, :, None]
            * tf.cast(~freq_mask, x.dtype)[:, None, :])  # (groups, time, freq)
    if per_channel:
        keep = _place(keep, [channel_axis, time_axis, freq_axis], rank)
    else:
        keep = _place(keep[0], axes, rank)
    if value == 0:
        return x * keep
    return x * keep + tf.cast(value, x.dtype) * (1 - keep)


def _sample_beta(shape, alpha: float, seed) -> tf.Tensor:
    """Beta(alpha, alpha) from two stateless Gamma(alpha) draws, in float64.

    float64 because Gamma(0.1) underflows float32 with probability ~1e-4 per draw; if both draws
    are 0 the result is 0.5.
    """
    a = tf.constant(alpha, tf.float64)
    g1 = tf.random.stateless_gamma(shape, seed=fold_seed(seed, 0), alpha=a, dtype=tf.float64)
    g2 = tf.random.stateless_gamma(shape, seed=fold_seed(seed, 1), alpha=a, dtype=tf.float64)
    total = g1 + g2
    return tf.where(total > 0, g1 / tf.where(total > 0, total, 1.0), 0.5)


def mixup(x, y, seed, alpha: float = 0.4, pairing: str = "permutation", per_example: bool = True):
    """Batch-level mixup: ``x_mix[i] = lam_i x[i] + (1 - lam_i) x[j(i)]``, labels mixed with the same
    ``lam_i``; returns ``(x_mix, y_mix)``.

    ``x`` and ``y`` are tensors (or nested structures of tensors) with the batch on axis 0; ``y`` may
    be one-hot, multi-hot or frame labels of any rank (integer labels are cast to float32).

    ``lam ~ Beta(alpha, alpha)``, one per output example (``per_example=True``, two-stage reference
    "one lambda per pair") or one for the whole batch (``per_example=False``, DcaseNet).

    ``pairing`` chooses the partner ``j(i)``:
        - ``"permutation"``: a seeded random permutation of the batch (the usual in-batch mixup; an
          example may be paired with itself).  Output batch = input batch.
        - ``"reverse"``: ``j(i) = B - 1 - i``.  Output batch = input batch.
        - ``"halves"``: the two-stage reference: a batch of 2B clips gives B mixed examples,
          example i of the first half with example i of the second half.  Needs an even batch.
    """
    if alpha is None or float(alpha) <= 0:
        raise ValueError(f"mixup: alpha must be > 0, got {alpha} (use no mixup instead)")
    if pairing not in MIXUP_PAIRINGS:
        raise ValueError(f"mixup: unknown pairing {pairing!r}; choose one of {', '.join(MIXUP_PAIRINGS)}")
    seed = _as_seed(seed)
    x = tf.nest.map_structure(tf.convert_to_tensor, x)
    y = tf.nest.map_structure(tf.convert_to_tensor, y)
    first = tf.nest.flatten(x)[0]
    batch = tf.shape(first)[0]

    if pairing == "halves":
        half = batch // 2
        check = tf.debugging.Assert(tf.equal(batch % 2, 0),
                                    ["mixup(pairing='halves') needs an even batch (2 x pairs), got", batch])
        with tf.control_dependencies([check]):
            half = tf.identity(half)
        n_out = half

        def split(t):
            return t[:half], t[half:2 * half]
    else:
        n_out = batch
        if pairing == "reverse":
            partner = tf.reverse(tf.range(batch), axis=[0])
        else:
            keys = tf.random.stateless_uniform([batch], seed=fold_seed(seed, 2), minval=None, maxval=None,
                                               dtype=tf.int64)
            partner = tf.argsort(keys, stable=True)

        def split(t):
            return t, tf.gather(t, partner)

    lam_shape = tf.reshape(n_out, [1]) if per_example else tf.constant([1], tf.int32)
    lam = _sample_beta(lam_shape, float(alpha), fold_seed(seed, 3))
    if not per_example:
        lam = tf.broadcast_to(lam, tf.reshape(n_out, [1]))

    def mix(t, labels: bool):
        if not (t.dtype.is_floating or t.dtype.is_complex):
            if labels:
                t = tf.cast(t, tf.float32)
            else:
                raise TypeError(f"mixup: features must be floating point, got {t.dtype.name}")
        a, b = split(t)
        lam_t = tf.reshape(tf.cast(lam, t.dtype), tf.concat([[-1], tf.ones([t.shape.rank - 1], tf.int32)], 0))
        return lam_t * a + (1 - lam_t) * b

    x_mix = tf.nest.map_structure(lambda t: mix(t, False), x)
    y_mix = tf.nest.map_structure(lambda t: mix(t, True), y)
    return x_mix, y_mix
