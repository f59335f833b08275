"""Clip-level weak-SED metrics against hand-computed values."""

import logging
import math

import numpy as np
import pytest

from tf_scenes.metrics.clip import clip_metrics

# 4 clips, scores shared by the classes so the rankings are easy to follow by hand.
SCORES = [0.9, 0.8, 0.7, 0.1]


def test_hand_computed_ap_and_auc():
    # class a: ranking P N P N -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6; AUC: 3 of 4 pairs ordered.
    # class b: ranking N P P N -> AP = 1/2 * 1/2 + 1/2 * 2/3 = 7/12; AUC 2/4.
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    p = np.array([SCORES, SCORES]).T
    m = clip_metrics(y, p, class_names=["a", "b"])
    assert m["ap/a"] == pytest.approx(5 / 6)
    assert m["ap/b"] == pytest.approx(7 / 12)
    assert m["macro_ap"] == pytest.approx((5 / 6 + 7 / 12) / 2)
    assert m["auc/a"] == pytest.approx(0.75) and m["auc/b"] == pytest.approx(0.5)
    assert m["auc"] == pytest.approx(0.625)
    # micro: 8 pairs; thresholds 0.9 (TP1 FP1), 0.8 (TP2 FP2), 0.7 (TP4 FP2):
    # AP = 0.25 * 1/2 + 0.25 * 2/4 + 0.5 * 4/6 = 7/12 (tied scores handled as one threshold).
    assert m["micro_ap"] == pytest.approx(7 / 12)
    assert m["n_classes_ap"] == 2 and m["n_excluded_ap"] == 0 and m["n_excluded_auc"] == 0


def test_perfect_and_reversed():
    y = np.array([[1], [1], [0], [0]])
    assert clip_metrics(y, np.array([SCORES]).T)["ap/0"] == pytest.approx(1.0)
    m = clip_metrics(y, np.array([SCORES[::-1]]).T)
    # ranking N N P P -> AP = 1/2 * 1/3 + 1/2 * 2/4 = 5/12, AUC 0.
    assert m["macro_ap"] == pytest.approx(5 / 12) and m["auc"] == pytest.approx(0.0)


def test_class_without_positives_is_excluded_and_counted(caplog):
    y = np.array([[1, 0, 0, 1], [0, 1, 0, 1], [1, 1, 0, 1], [0, 0, 0, 1]])
    p = np.array([SCORES, SCORES, [0.05] * 4, SCORES]).T
    with caplog.at_level(logging.WARNING):
        m = clip_metrics(y, p, class_names=["a", "b", "empty", "full"])
    assert "ap/empty" not in m and "auc/empty" not in m
    assert "auc/full" not in m and m["ap/full"] == pytest.approx(1.0)
    assert m["n_classes_ap"] == 3 and m["n_excluded_ap"] == 1
    assert m["n_classes_auc"] == 2 and m["n_excluded_auc"] == 2
    assert m["macro_ap"] == pytest.approx((5 / 6 + 7 / 12 + 1.0) / 3)
    assert m["auc"] == pytest.approx(0.625)
    assert all(math.isfinite(v) for v in m.values())
    assert "empty" in caplog.text and "full" in caplog.text


def test_no_positive_anywhere_gives_nan_with_counts():
    m = clip_metrics(np.zeros((3, 2), int), np.full((3, 2), 0.3))
    assert math.isnan(m["micro_ap"]) and math.isnan(m["macro_ap"]) and math.isnan(m["auc"])
    assert m["n_classes_ap"] == 0 and m["n_excluded_ap"] == 2


def test_matches_sklearn_on_random_data():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(0)
    y = (rng.random((50, 6)) < 0.3).astype(int)
    y[0] = 1  # every class has a positive
    y[1] = 0  # ... and a negative
    p = rng.random((50, 6))
    m = clip_metrics(y, p)
    assert m["micro_ap"] == pytest.approx(average_precision_score(y, p, average="micro"))
    assert m["macro_ap"] == pytest.approx(average_precision_score(y, p, average="macro"))
    assert m["auc"] == pytest.approx(roc_auc_score(y, p, average="macro"))


@pytest.mark.parametrize("y,p,match", [
    (np.zeros((2, 3)), np.zeros((2, 2)), "differs"),
    (np.zeros(3), np.zeros(3), "2-D"),
    (np.full((2, 2), 2), np.zeros((2, 2)), "only 0 and 1"),
    (np.zeros((2, 2)), np.array([[0.1, np.nan], [0.2, 0.3]]), "clip 0, class 1"),
])
def test_bad_input(y, p, match):
    with pytest.raises(ValueError, match=match):
        clip_metrics(y, p)
