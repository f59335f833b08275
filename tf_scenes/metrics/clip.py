"""Clip-level metrics of weakly supervised SED (Deshmukh et al., Interspeech 2021, Table 1;
Kong et al.'s evaluation): micro and macro average precision and macro ROC AUC, with scikit-learn.

Classes that cannot be scored are left out of the macro averages and counted, never scored as 0
or NaN silently: a class with no positive clip has no defined AP or AUC, a class with no negative
clip has no defined AUC.  The counts are in the result (``n_excluded_ap``, ``n_excluded_auc``) and
the classes are logged.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)


def _check(y_true, probs) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    if y_true.ndim != 2 or probs.ndim != 2:
        raise ValueError(f"y_true and probs must be 2-D (clips, classes), got shapes "
                         f"{y_true.shape} and {probs.shape}")
    if y_true.shape != probs.shape:
        raise ValueError(f"y_true shape {y_true.shape} differs from probs shape {probs.shape}")
    if y_true.shape[0] == 0:
        raise ValueError("no clips to score (0 rows)")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must hold only 0 and 1 (multi-hot weak labels)")
    if not np.isfinite(probs).all():
        bad = np.argwhere(~np.isfinite(probs))[0]
        raise ValueError(f"probs has a non-finite value at clip {bad[0]}, class {bad[1]}")
    return y_true.astype(np.int64), probs


def clip_metrics(y_true, probs, class_names: Sequence[str] | None = None) -> dict[str, float]:
    """Micro / macro average precision and macro ROC AUC of clip-level predictions.

    Args:
      y_true: (clips, classes) multi-hot 0/1 labels.
      probs: (clips, classes) scores (probabilities; any monotone score works).
      class_names: names for the per-class keys; default "0", "1", ...

    Returns a flat dict:
      micro_ap: AP over all (clip, class) pairs (``average_precision_score(average="micro")``).
      macro_ap: mean of the per-class APs of classes with at least one positive clip.
      auc: mean of the per-class ROC AUCs of classes with both positive and negative clips.
      ap/<class>, auc/<class>: per-class values (only for classes that can be scored).
      n_classes_ap, n_excluded_ap, n_classes_auc, n_excluded_auc: how many classes were averaged
        / left out.
    Averages over no class at all are NaN (the counts say why).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true, probs = _check(y_true, probs)
    n_classes = y_true.shape[1]
    if class_names is None:
        class_names = [str(i) for i in range(n_classes)]
    if len(class_names) != n_classes:
        raise ValueError(f"{len(class_names)} class names for {n_classes} classes")

    positives = y_true.sum(axis=0)
    negatives = y_true.shape[0] - positives
    out: dict[str, float] = {}

    if positives.sum() > 0:
        out["micro_ap"] = float(average_precision_score(y_true, probs, average="micro"))
    else:
        out["micro_ap"] = float("nan")
        log.warning("no positive label in y_true: micro AP is undefined (NaN)")

    aps, aucs = [], []
    no_pos, no_neg = [], []
    for c, name in enumerate(class_names):
        if positives[c] == 0:
            no_pos.append(name)
            continue
        ap = float(average_precision_score(y_true[:, c], probs[:, c]))
        out[f"ap/{name}"] = ap
        aps.append(ap)
        if negatives[c] == 0:
            no_neg.append(name)
            continue
        auc = float(roc_auc_score(y_true[:, c], probs[:, c]))
        out[f"auc/{name}"] = auc
        aucs.append(auc)

    out["macro_ap"] = float(np.mean(aps)) if aps else float("nan")
    out["auc"] = float(np.mean(aucs)) if aucs else float("nan")
    out["n_classes_ap"] = len(aps)
    out["n_excluded_ap"] = len(no_pos)
    out["n_classes_auc"] = len(aucs)
    out["n_excluded_auc"] = len(no_pos) + len(no_neg)
    if no_pos:
        log.warning("%d class(es) without positive clips left out of macro AP and AUC: %s",
                    len(no_pos), ", ".join(no_pos))
    if no_neg:
        log.warning("%d class(es) without negative clips left out of AUC: %s", len(no_neg),
                    ", ".join(no_neg))
    return out
