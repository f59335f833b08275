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
    y = np.asarray(labels, np.float64)
    if y.ndim < 2 or y.shape[0] == 0:
        raise ConfigError(f"prior_logits needs (N, classes) labels with N >= 1, got shape {y.shape}")
    y = y.reshape(-1, y.shape[-1])
    p = (y.sum(axis=0) + 0.5) / (y.shape[0] + 1.0)
    return np.log(p) - np.log1p(-p)


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
