"""Scene-classification metrics (DCASE 2020 Task 1a style), plain numpy.

Accuracy overall and per recording device, the device groups of Hu et al. 2021 (Table 2: A, B&C,
s1-s3, s4-s6), multi-class log loss, per-class recall and the confusion matrix.
``classification_report`` returns them as one flat dict::

    {"acc": 0.79, "acc/device_a": 0.88, ..., "acc/group_A": 0.88, "acc/group_B&C": 0.84, ...,
     "acc/group_average": 0.79, "logloss": 0.94, "logloss/device_a": ..., "recall/airport": 0.74, ...}

Device groups are unweighted means of per-device accuracies over the member devices present
(B&C = mean(b, c); s1-s3 = mean(s1, s2, s3); s4-s6 = mean(s4, s5, s6)); a group none of whose
devices is present is left out.  "average" is the unweighted mean over ALL devices present (on the
balanced TAU 2020 evaluation fold, 330 clips per device, it equals the overall accuracy "acc").
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

DEVICE_GROUPS = (
    ("A", ("a",)),
    ("B&C", ("b", "c")),
    ("s1-s3", ("s1", "s2", "s3")),
    ("s4-s6", ("s4", "s5", "s6")),
)
GROUP_NAMES = tuple(g for g, _ in DEVICE_GROUPS) + ("average",)
LOGLOSS_EPS = 1e-15


def _labels(y_true, num_classes: int | None = None, class_names: Sequence[str] | None = None) -> np.ndarray:
    """Integer labels from ints or (with class_names) strings; checks the range."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    if y.dtype.kind in "USO":
        if class_names is None:
            raise ValueError("string labels need class_names")
        index = {c: i for i, c in enumerate(class_names)}
        unknown = sorted({str(v) for v in y} - set(index))
        if unknown:
            raise ValueError(f"labels not in class_names: {unknown[:10]}")
        y = np.array([index[str(v)] for v in y], dtype=np.int64)
    elif y.dtype.kind not in "iu":
        if y.size and not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError("labels must be integers")
        y = y.astype(np.int64)
    if num_classes is not None and y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), got range [{y.min()}, {y.max()}]")
    return y


def _scores(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"scores must be (clips, classes), got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("scores contain NaN or inf")
    return p


def accuracy(y_true, y_pred) -> float:
    """Fraction of clips with y_pred == y_true."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 1-D shapes")
    if y_true.size == 0:
        raise ValueError("accuracy of zero clips is undefined")
    return float(np.mean(y_true == y_pred))


def per_device_accuracy(y_true, y_pred, devices) -> dict[str, float]:
    """{device: accuracy} over the devices present, in sorted device order (a, b, c, s1, ...)."""
    y_true, y_pred, devices = np.asarray(y_true), np.asarray(y_pred), np.asarray(devices).astype(str)
    if not (y_true.shape == y_pred.shape == devices.shape):
        raise ValueError(f"shapes differ: y_true {y_true.shape}, y_pred {y_pred.shape}, devices {devices.shape}")
    devices = np.char.lower(devices)
    return {d: accuracy(y_true[devices == d], y_pred[devices == d]) for d in sorted(set(devices.tolist()))}


def device_group_accuracy(per_device: dict[str, float]) -> dict[str, float]:
    """Paper device groups from per-device accuracies: {"A", "B&C", "s1-s3", "s4-s6", "average"}.

    Each group is the unweighted mean over its member devices present; "average" is the unweighted
    mean over all devices present.  Groups with no member present are omitted.
    """
    per_device = {k.lower(): v for k, v in per_device.items()}
    out = {}
    for group, members in DEVICE_GROUPS:
        vals = [per_device[d] for d in members if d in per_device]
        if vals:
            out[group] = float(np.mean(vals))
    if per_device:
        out["average"] = float(np.mean(list(per_device.values())))
    return out


def log_loss(y_true, probs, eps: float = LOGLOSS_EPS, normalize_first: bool = True) -> float:
    """Mean negative log probability of the true class.

    Probabilities are clipped to [eps, 1 - eps] and each row renormalised to sum to 1.  With
    ``normalize_first`` (default) every row is first divided by its sum, so unnormalised scores
    (ensemble sums, fused products) are scored as the distribution they define; for rows that
    already sum to 1 this changes nothing.  ``normalize_first=False`` clips the raw scores (the
    classic scikit-learn behaviour the reference code used: it reproduces the reference's printed
    log loss of its fused scores, where values above 1 are clipped to 1 - eps).
    Negative scores or an all-zero row raise ValueError.
    """
    p = _scores(probs)
    y = _labels(y_true, p.shape[1])
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} score rows")
    if np.any(p < 0):
        raise ValueError("log loss needs non-negative scores")
    if normalize_first:
        total = p.sum(axis=1, keepdims=True)
        if np.any(total <= 0):
            raise ValueError(f"score rows with zero total: {np.flatnonzero(total[:, 0] <= 0)[:10].tolist()}")
        p = p / total
    p = np.clip(p, eps, 1 - eps)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; rows = true class, columns = predicted class."""
    y_true, y_pred = _labels(y_true, num_classes), _labels(y_pred, num_classes)
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def per_class_recall(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Recall (class accuracy) per true class; NaN for a class with no clips."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def classification_report(y_true, probs, devices=None, class_names: Sequence[str] | None = None) -> dict[str, float]:
    """All scene metrics in one flat dict (see module docstring for the keys).

    y_true: integer labels, or strings when class_names is given.  probs: (clips, classes) scores
    (softmax outputs, ensemble sums or fused scores; argmax decides).  devices: one device name per
    clip ("a", "b", "s1"...) or None.  class_names: names used for "recall/<name>" keys (default
    "0", "1", ...).
    """
    p = _scores(probs)
    k = p.shape[1]
    if class_names is not None and len(class_names) != k:
        raise ValueError(f"{len(class_names)} class names for {k} score columns")
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    y = _labels(y_true, k, class_names)
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} score rows")
    pred = p.argmax(axis=1)
    out = {"acc": accuracy(y, pred)}
    if devices is not None:
        devices = np.char.lower(np.asarray(devices).astype(str))
        per_dev = per_device_accuracy(y, pred, devices)
        out.update({f"acc/device_{d}": v for d, v in per_dev.items()})
        out.update({f"acc/group_{g}": v for g, v in device_group_accuracy(per_dev).items()})
    out["logloss"] = log_loss(y, p)
    if devices is not None:
        for d in sorted(set(devices.tolist())):
            out[f"logloss/device_{d}"] = log_loss(y[devices == d], p[devices == d])
    for name, r in zip(names, per_class_recall(y, pred, k)):
        out[f"recall/{name}"] = float(r)
    return out
