"""Scene classification metrics against hand-computed tiny cases."""

import math
import sys

import numpy as np
import pytest

from tf_scenes.metrics.classification import (
    accuracy,
    classification_report,
    confusion_matrix,
    device_group_accuracy,
    log_loss,
    per_class_recall,
    per_device_accuracy,
)

# 8 clips, 3 classes.  Devices: a a b b c s1 s4 s4.
Y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
P = np.array([
    [0.7, 0.2, 0.1],  # pred 0, right
    [0.1, 0.8, 0.1],  # pred 1, right
    [0.5, 0.3, 0.2],  # pred 0, wrong
    [0.6, 0.3, 0.1],  # pred 0, right
    [0.3, 0.4, 0.3],  # pred 1, right
    [0.1, 0.1, 0.8],  # pred 2, right
    [0.2, 0.5, 0.3],  # pred 1, wrong
    [0.0, 1.0, 0.0],  # pred 1, right (p=1 exactly: clipped in log loss)
])
D = ["a", "a", "b", "b", "c", "s1", "s4", "S4"]  # device names are case-insensitive
NAMES = ["airport", "bus", "park"]


def test_accuracy_and_per_device():
    pred = P.argmax(1)
    assert accuracy(Y, pred) == 6 / 8
    assert per_device_accuracy(Y, pred, D) == {"a": 1.0, "b": 0.5, "c": 1.0, "s1": 1.0, "s4": 0.5}
    with pytest.raises(ValueError):
        accuracy([], [])


def test_device_groups_are_unweighted_means_over_present_devices():
    g = device_group_accuracy({"a": 1.0, "b": 0.5, "c": 1.0, "s1": 1.0, "s4": 0.5})
    assert g == {"A": 1.0, "B&C": 0.75, "s1-s3": 1.0, "s4-s6": 0.5, "average": 4.0 / 5}
    # B&C is the mean of b and c even when their clip counts differ; absent groups are left out.
    assert device_group_accuracy({"b": 0.2, "c": 0.6}) == pytest.approx({"B&C": 0.4, "average": 0.4})


def test_log_loss_hand_computed():
    p_true = [0.7, 0.8, 0.2, 0.6, 0.4, 0.8, 0.2]
    eps = 1e-15
    # Last row [0, 1, 0] clipped to [eps, 1 - eps, eps] and renormalised.
    last = (1 - eps) / (1 - eps + 2 * eps)
    expected = -(sum(math.log(v) for v in p_true) + math.log(last)) / 8
    assert log_loss(Y, P) == pytest.approx(expected, rel=1e-12)
    # Unnormalised scores (an ensemble sum) are renormalised per row.
    assert log_loss([0], [[2.0, 6.0]]) == pytest.approx(-math.log(0.25))
    # The classic convention clips raw scores first: both 2 and 6 become 1 - eps -> 0.5 each.
    assert log_loss([0], [[2.0, 6.0]], normalize_first=False) == pytest.approx(math.log(2))
    # A zero probability on the true class costs -log(eps), not inf.
    assert log_loss([0], [[0.0, 1.0]]) == pytest.approx(-math.log(1e-15), rel=1e-6)


def test_confusion_matrix_and_recall():
    cm = confusion_matrix(Y, P.argmax(1), 3)
    np.testing.assert_array_equal(cm, [[2, 1, 0], [0, 3, 0], [1, 0, 1]])
    np.testing.assert_allclose(per_class_recall(Y, P.argmax(1), 3), [2 / 3, 1.0, 0.5])
    r = per_class_recall([0, 0], [0, 1], 3)
    assert r[0] == 0.5 and np.isnan(r[1]) and np.isnan(r[2])


def test_classification_report_flat_dict():
    rep = classification_report(Y, P, devices=D, class_names=NAMES)
    assert rep["acc"] == 0.75
    assert rep["acc/device_a"] == 1.0 and rep["acc/device_s4"] == 0.5
    assert rep["acc/group_A"] == 1.0
    assert rep["acc/group_B&C"] == 0.75
    assert rep["acc/group_s1-s3"] == 1.0
    assert rep["acc/group_s4-s6"] == 0.5
    assert rep["acc/group_average"] == pytest.approx(0.8)
    assert rep["logloss"] == pytest.approx(log_loss(Y, P))
    assert rep["logloss/device_a"] == pytest.approx(-(math.log(0.7) + math.log(0.8)) / 2)
    assert rep["recall/airport"] == pytest.approx(2 / 3)
    assert rep["recall/bus"] == 1.0 and rep["recall/park"] == 0.5
    assert all(isinstance(v, float) for v in rep.values())
    # String labels with class names give the same report; no devices -> no device keys.
    rep2 = classification_report([NAMES[i] for i in Y], P, class_names=NAMES)
    assert rep2["acc"] == 0.75 and not any(k.startswith("acc/") for k in rep2)
    assert "recall/0" in classification_report(Y, P)


def test_report_rejects_bad_input():
    with pytest.raises(ValueError, match="labels"):
        classification_report([0, 5], P[:2])
    with pytest.raises(ValueError, match="class names"):
        classification_report(Y, P, class_names=["x", "y"])
    with pytest.raises(ValueError, match="NaN"):
        classification_report([0], [[np.nan, 1.0, 0.0]])
    with pytest.raises(ValueError, match="rows"):
        classification_report(Y[:3], P)


def test_sklearn_agreement():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    p = rng.dirichlet(np.ones(4), 200)
    assert log_loss(y, p) == pytest.approx(sk.log_loss(y, p, labels=range(4)), rel=1e-9)
    np.testing.assert_array_equal(confusion_matrix(y, p.argmax(1), 4),
                                  sk.confusion_matrix(y, p.argmax(1), labels=range(4)))
    np.testing.assert_allclose(per_class_recall(y, p.argmax(1), 4),
                               sk.recall_score(y, p.argmax(1), average=None, labels=range(4)))


def test_metrics_module_does_not_import_tensorflow():
    import subprocess

    code = "import sys, tf_scenes.metrics.classification; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
