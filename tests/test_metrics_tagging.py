"""lwlrap (DCASE 2019 Task 2 definition): hand-computed cases and sklearn parity."""

import numpy as np
import pytest
from sklearn.metrics import label_ranking_average_precision_score

from tf_scenes.metrics.tagging import lwlrap, tagging_metrics


def test_single_clip_hand_computed():
    # Ranking: class 0, class 1, class 2. Positive class 1 at rank 2 -> 1/2; class 2 at rank 3 -> 2/3.
    overall, per_class, weights = lwlrap([[0, 1, 1]], [[0.9, 0.8, 0.1]])
    assert overall == pytest.approx(7 / 12)
    np.testing.assert_allclose(per_class, [0.0, 0.5, 2 / 3])
    np.testing.assert_allclose(weights, [0.0, 0.5, 0.5])


def test_two_clips_label_weighting_hand_computed():
    y = np.array([[1, 0, 0],    # ranking 1, 0, 2 -> class 0 precision 1/2
                  [1, 0, 1]])   # ranking 0, 2, 1 -> class 0: 1, class 2: 2/2 = 1
    s = np.array([[0.2, 0.5, 0.1],
                  [0.9, 0.3, 0.4]])
    overall, per_class, weights = lwlrap(y, s)
    np.testing.assert_allclose(per_class, [0.75, 0.0, 1.0])
    np.testing.assert_allclose(weights, [2 / 3, 0.0, 1 / 3])
    # Label-weighted: mean over the 3 positive labels (0.5 + 1 + 1) / 3, not the mean over clips.
    assert overall == pytest.approx(5 / 6)
    clip_mean = (0.5 + 1.0) / 2
    assert overall != pytest.approx(clip_mean)


def test_rows_without_positives_are_excluded():
    y = np.array([[1, 0, 0], [1, 0, 1]])
    s = np.array([[0.2, 0.5, 0.1], [0.9, 0.3, 0.4]])
    base = lwlrap(y, s)
    y2 = np.vstack([y, [0, 0, 0]])
    s2 = np.vstack([s, [0.1, 0.9, 0.5]])
    more = lwlrap(y2, s2)
    assert more[0] == pytest.approx(base[0])
    np.testing.assert_allclose(more[1], base[1])
    np.testing.assert_allclose(more[2], base[2])


def test_perfect_and_worst_ranking():
    y = np.array([[1, 1, 0, 0]])
    assert lwlrap(y, [[0.9, 0.8, 0.2, 0.1]])[0] == pytest.approx(1.0)
    # Positives ranked last: precisions 1/3 and 2/4.
    assert lwlrap(y, [[0.1, 0.2, 0.8, 0.9]])[0] == pytest.approx((1 / 3 + 2 / 4) / 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_sklearn_lrap_weighted_by_label_count(seed):
    rng = np.random.default_rng(seed)
    n, c = 60, 80
    y = (rng.random((n, c)) < 0.04).astype(int)
    y[0] = 0                      # a row without positives
    y[1, :3] = 1                  # make sure there are positives
    s = rng.random((n, c))        # continuous -> no ties
    ours = lwlrap(y, s)[0]
    ref = label_ranking_average_precision_score(y, s, sample_weight=y.sum(axis=1))
    assert ours == pytest.approx(ref, abs=1e-12)


def test_ties_are_broken_deterministically_higher_index_first():
    # sklearn ranks tied labels pessimistically (both at rank 2); the rule here puts class 1 first.
    assert lwlrap([[0, 1]], [[0.5, 0.5]])[0] == pytest.approx(1.0)
    assert lwlrap([[1, 0]], [[0.5, 0.5]])[0] == pytest.approx(0.5)
    assert label_ranking_average_precision_score([[0, 1]], [[0.5, 0.5]]) == pytest.approx(0.5)


def test_tagging_metrics_flat_dict():
    y = np.array([[1, 0, 0], [1, 0, 1]])
    s = np.array([[0.2, 0.5, 0.1], [0.9, 0.3, 0.4]])
    out = tagging_metrics(y, s, class_names=["Bark", "Bus", "Cheering"])
    assert out == pytest.approx({"lwlrap": 5 / 6, "lwlrap/Bark": 0.75, "lwlrap/Cheering": 1.0})
    assert "lwlrap/Bus" not in out  # no positive label: left out


@pytest.mark.parametrize("y, s, msg", [
    ([[1, 0]], [[0.1, 0.2, 0.3]], "differs"),
    ([1, 0], [0.1, 0.2], "2-D"),
    ([[2, 0]], [[0.1, 0.2]], "binary"),
    ([[1, 0]], [[np.nan, 0.2]], "NaN"),
    ([[0, 0]], [[0.1, 0.2]], "no positive"),
])
def test_bad_input_raises_clear_error(y, s, msg):
    with pytest.raises(ValueError, match=msg):
        lwlrap(y, s)
