"""Output-bias initialisation at the label prior (Karpathy's "init well" recipe).

A sigmoid output whose bias starts at 0 predicts 0.5 for every class; with multi-label targets
where a class is present in 1-7 % of the clips, the first stretch of training only pushes every
output down to the prior.  Adam moves a bias by about the learning rate per step, so at 3e-3 a bias
needs ~1,000 steps to travel from 0 to logit(0.015) = -4.2: longer than a quick run.  Starting the
bias at the logit of each class's training frequency skips that stretch; the architecture and its
parameter count are unchanged.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def prior_logits(labels) -> np.ndarray:
    """logit of each class's frequency in ``labels`` ((N, classes), 0/1 or soft), smoothed as
    (count + 0.5) / (N + 1) so that a class never seen in training gets a finite bias."""
    p = prior_probabilities(labels)
    return np.log(p) - np.log1p(-p)


def prior_probabilities(labels) -> np.ndarray:
    """Each class's frequency in ``labels`` ((N, classes)), smoothed as (count + 0.5) / (N + 1)."""
    y = np.asarray(labels, np.float64)
    if y.ndim < 2 or y.shape[0] == 0:
        raise ConfigError(f"prior_probabilities needs (N, classes) labels with N >= 1, got shape {y.shape}")
    y = y.reshape(-1, y.shape[-1])
    return (y.sum(axis=0) + 0.5) / (y.shape[0] + 1.0)


def set_prior_bias(layer, labels, shared: bool = False) -> np.ndarray:
    """Set ``layer``'s bias (a Dense or 1x1 Conv with one unit per class) to ``prior_logits(labels)``;
    returns the values set.

    shared: the layer's units are not classes (e.g. a presence layer applied to every class alike):
    every unit gets the logit of the mean frequency over all classes."""
    bias = getattr(layer, "bias", None)
    if bias is None:
        raise ConfigError(f"layer {layer.name!r} has no bias to initialise")
    if shared:
        y = np.asarray(labels, np.float64)
        values = np.full(tuple(bias.shape), prior_logits(y.reshape(-1, 1))[0])
    else:
        values = prior_logits(labels)
    if tuple(bias.shape) != values.shape:
        raise ConfigError(f"layer {layer.name!r}: bias shape {tuple(bias.shape)} != {values.shape[0]} classes")
    bias.assign(values.astype(bias.dtype))
    return values


def calibrate_bias(layer, outputs, targets, *, low: float = -20.0, high: float = 20.0, iters: int = 16) -> np.ndarray:
    """Shift ``layer``'s bias, one offset per class, so that the model's mean output over a batch
    of training inputs equals ``targets`` (e.g. each class's training frequency); returns the
    offsets.

    For a pooled class map (global max or rank pooling of a sigmoid map) the bias at the prior
    logit does not make the *pooled* output start at the prior: the pool picks the cells that the
    random initial weights made highest, so the clip output starts far above the prior and the
    first steps mostly flatten the map.  Here the offset is found by bisection: the pooled output
    of a class rises monotonically with its bias.

    outputs: callable returning the (classes,) mean output with the current weights (it is called
        ``iters`` times; run it in the mode training starts in, and undo any side effect such as
        BatchNorm's moving statistics).
    low, high: bracket of the offset (logits).  A class whose target lies outside the outputs at
        the bracket ends gets the nearer end.
    """
    bias = getattr(layer, "bias", None)
    if bias is None:
        raise ConfigError(f"layer {layer.name!r} has no bias to calibrate")
    base = np.asarray(bias.numpy(), np.float64)
    t = np.asarray(targets, np.float64)
    if t.shape != base.shape:
        raise ConfigError(f"layer {layer.name!r}: bias shape {base.shape} != targets shape {t.shape}")
    lo, hi = np.full(base.shape, float(low)), np.full(base.shape, float(high))
    for _ in range(int(iters)):
        mid = (lo + hi) / 2
        bias.assign((base + mid).astype(bias.dtype))
        above = np.asarray(outputs(), np.float64) > t
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    offset = (lo + hi) / 2
    bias.assign((base + offset).astype(bias.dtype))
    return offset


def training_mode_call(model, x):
    """``model(x, training=True)`` as the first training step sees it (BatchNorm on the batch's
    statistics), with the call's side effects on the model's non-trainable variables (BatchNorm's
    moving statistics) undone."""
    frozen = [(v, v.numpy()) for v in model.non_trainable_variables]
    y = model(x, training=True)
    for v, value in frozen:
        v.assign(value)
    return y
