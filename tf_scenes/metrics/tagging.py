"""Audio tagging metrics: label-weighted label-ranking average precision (lwlrap).

lwlrap is the official metric of DCASE 2019 Task 2 (FSDKaggle2019), used by DcaseNet for its TAG
task (Jung et al. 2021, Table 2).  For every (clip, positive label) pair it takes the
precision of the clip's ranked label list truncated at that label; lwlrap is the mean of these
precisions over all pairs, so every positive label counts equally (clips with more labels weigh
more).  Equivalently it is the mean of the per-class lwlraps weighted by each class's share of
all positive labels.

With untied scores this equals
``sklearn.metrics.label_ranking_average_precision_score(y_true, scores, sample_weight=n_pos)``
where ``n_pos`` is the number of positive labels of each row.  Ties are handled differently:
sklearn ranks every tied label at the worst tied position, the DCASE reference ranks them in sort
order.  Here ties are broken deterministically: a stable sort, so among equal scores the class
with the HIGHER index is ranked first (the reference uses ``np.argsort(scores)[::-1]``, whose tie
order depends on numpy's sort implementation).

Pure numpy; no TensorFlow import.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _check_inputs(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    if y_true.ndim != 2 or scores.ndim != 2:
        raise ValueError(f"lwlrap needs 2-D (clips, classes) arrays, got y_true {y_true.shape} and "
                         f"scores {scores.shape}")
    if y_true.shape != scores.shape:
        raise ValueError(f"lwlrap: y_true shape {y_true.shape} differs from scores shape {scores.shape}")
    if y_true.size and not np.isin(y_true, (0, 1)).all():
        raise ValueError("lwlrap: y_true must be binary (0/1 or bool)")
    if not np.isfinite(scores).all():
        raise ValueError("lwlrap: scores contain NaN or infinite values")
    return y_true.astype(bool), scores


def _positive_precisions(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(clips, classes) array holding, at each positive label, the precision of the clip's ranked
    list truncated at that label; 0 elsewhere (and on rows without positives)."""
    n, c = scores.shape
    # Stable ascending sort reversed: rank 0 = highest score; ties -> higher class index first.
    order = np.argsort(scores, axis=1, kind="stable")[:, ::-1]  # (clips, classes) class ids by rank
    rows = np.arange(n)[:, None]
    hits_by_rank = y_true[rows, order]  # (clips, classes) positive flag at each rank
    cum_hits = np.cumsum(hits_by_rank, axis=1)  # positives retrieved up to and including each rank
    precision_by_rank = cum_hits / np.arange(1, c + 1)[None, :]
    precisions = np.zeros((n, c))
    precisions[rows, order] = np.where(hits_by_rank, precision_by_rank, 0.0)
    return precisions


def lwlrap(y_true, scores) -> tuple[float, np.ndarray, np.ndarray]:
    """Label-weighted label-ranking average precision (DCASE 2019 Task 2 definition).

    Args:
      y_true: (clips, classes) binary ground truth.
      scores: (clips, classes) real-valued scores (logits or probabilities; only the order
        within each row matters).

    Returns:
      (overall, per_class_lwlrap, class_weights): ``overall = sum(per_class * weights)``;
      ``per_class_lwlrap[k]`` is the mean precision over the positive labels of class k (0 for a
      class with no positive label, whose weight is 0); ``class_weights[k]`` is class k's share
      of all positive labels.  Rows without any positive label contribute nothing, as in the
      reference.

    Raises:
      ValueError: shapes differ or are not 2-D, labels not binary, non-finite scores, or no
        positive label at all (lwlrap is undefined).
    """
    y_true, scores = _check_inputs(y_true, scores)
    labels_per_class = y_true.sum(axis=0)  # (classes,)
    total_labels = int(labels_per_class.sum())
    if total_labels == 0:
        raise ValueError("lwlrap is undefined: y_true has no positive label")
    precisions = _positive_precisions(y_true, scores)
    per_class = precisions.sum(axis=0) / np.maximum(1, labels_per_class)
    weights = labels_per_class / float(total_labels)
    overall = float(np.sum(per_class * weights))
    return overall, per_class, weights


def tagging_metrics(y_true, scores, class_names: Sequence[str] | None = None) -> dict[str, float]:
    """Flat dict ``{"lwlrap": overall, "lwlrap/<class>": per-class lwlrap, ...}``.

    Classes default to their indices as names.  Per-class values of classes without any positive
    label are left out (they are 0 with weight 0 and would only mislead).
    """
    overall, per_class, weights = lwlrap(y_true, scores)
    if class_names is None:
        class_names = [str(i) for i in range(len(per_class))]
    if len(class_names) != len(per_class):
        raise ValueError(f"tagging_metrics: {len(class_names)} class names for {len(per_class)} classes")
    out = {"lwlrap": overall}
    for name, value, weight in zip(class_names, per_class, weights):
        if weight > 0:
            out[f"lwlrap/{name}"] = float(value)
    return out
