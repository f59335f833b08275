"""Metrics of the raw-waveform study: top-k, clustering distances, clip decisions, binaural, transfer."""

import math

import numpy as np
import pytest

from tf_scenes.metrics.clustering import (
    binaural_expand,
    clip_decision,
    cluster_centroids,
    clustering_report,
    fit_logreg,
    fit_svm_poly3,
    inter_cluster_centroid_distance,
    intra_cluster_distance,
    topk_accuracy,
    topk_report,
)


def test_topk_accuracy_hand_computed():
    y = [0, 1, 2, 1]
    probs = [[0.5, 0.3, 0.2],   # true class first
             [0.5, 0.3, 0.2],   # true class second
             [0.1, 0.2, 0.7],   # true class first
             [0.2, 0.2, 0.6]]   # true class ties for second: one class strictly higher
    assert topk_accuracy(y, probs, 1) == 0.5
    assert topk_accuracy(y, probs, 2) == 1.0
    assert topk_report(y, probs, ks=(1, 2), prefix="coarse/") == {"coarse/top1": 0.5, "coarse/top2": 1.0}


def test_topk_accuracy_matches_sklearn_without_ties():
    from sklearn.metrics import top_k_accuracy_score

    rng = np.random.default_rng(0)
    probs = rng.random((200, 7))
    y = rng.integers(0, 7, 200)
    for k in (1, 3, 5):
        assert topk_accuracy(y, probs, k) == pytest.approx(top_k_accuracy_score(y, probs, k=k, labels=range(7)))


def test_topk_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match="labels must lie"):
        topk_accuracy([0, 3], [[0.5, 0.5, 0.0], [0.1, 0.2, 0.7]], 1)
    with pytest.raises(ValueError, match="probs must be"):
        topk_accuracy([0, 1], [[0.5, 0.5]], 1)


def _toy_clusters():
    # A: unit square of side 2 (centroid (1, 1)); B: two points 2 apart (centroid (4, 5)); C: one point (1, 5).
    emb = np.array([[0, 0], [2, 0], [0, 2], [2, 2], [4, 4], [4, 6], [1, 5]], dtype=float)
    labels = np.array(["A", "A", "A", "A", "B", "B", "C"])
    return emb, labels


def test_intra_cluster_distance_hand_computed():
    emb, labels = _toy_clusters()
    intra_a = (4 * 2 + 2 * 2 * math.sqrt(2)) / 6  # 4 sides of 2, 2 diagonals of 2 sqrt 2, 6 pairs
    intra_b = 2.0
    # C has a single member: no pair, left out of the mean
    assert intra_cluster_distance(emb, labels) == pytest.approx((intra_a + intra_b) / 2, rel=1e-12)


def test_inter_cluster_centroid_distance_hand_computed():
    emb, labels = _toy_clusters()
    classes, centroids = cluster_centroids(emb, labels)
    assert list(classes) == ["A", "B", "C"]
    np.testing.assert_allclose(centroids, [[1, 1], [4, 5], [1, 5]])
    # |AB| = 5 (3-4-5), |AC| = 4, |BC| = 3
    assert inter_cluster_centroid_distance(emb, labels) == pytest.approx(4.0, rel=1e-12)
    rep = clustering_report(emb, labels, prefix="coarse/")
    assert set(rep) == {"coarse/intra", "coarse/inter"}
    assert rep["coarse/inter"] == pytest.approx(4.0)


def test_cluster_distances_match_scipy_on_random_data():
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(1)
    emb = rng.normal(size=(300, 16))
    labels = rng.integers(0, 4, 300)
    want = np.mean([pdist(emb[labels == c]).mean() for c in range(4)])
    assert intra_cluster_distance(emb, labels) == pytest.approx(want, rel=1e-10)
    cents = np.stack([emb[labels == c].mean(0) for c in range(4)])
    assert inter_cluster_centroid_distance(emb, labels) == pytest.approx(pdist(cents).mean(), rel=1e-10)


def test_cluster_distance_errors():
    with pytest.raises(ValueError, match="at least 2 members"):
        intra_cluster_distance([[0.0], [1.0]], [0, 1])
    with pytest.raises(ValueError, match="at least 2 clusters"):
        inter_cluster_centroid_distance([[0.0], [1.0]], [0, 0])
    with pytest.raises(ValueError, match="embeddings must be"):
        intra_cluster_distance([[0.0], [1.0]], [0, 0, 1])


def test_clip_decision_averages_windows_in_first_appearance_order():
    probs = [[0.2, 0.8], [1.0, 0.0], [0.4, 0.6]]
    ids, clip_probs = clip_decision(probs, ["b", "a", "b"])
    assert list(ids) == ["b", "a"]
    np.testing.assert_allclose(clip_probs, [[0.3, 0.7], [1.0, 0.0]])
    ids, clip_probs, clip_labels = clip_decision(probs, ["b", "a", "b"], window_labels=[1, 0, 1])
    assert list(clip_labels) == [1, 0]
    with pytest.raises(ValueError, match="clip 'b' has windows with different labels"):
        clip_decision(probs, ["b", "a", "b"], window_labels=[1, 0, 0])


def test_binaural_expand_hand_computed():
    stereo = np.array([[1, 2], [3, -1]], dtype=np.int16)
    out = binaural_expand(stereo)
    assert out.dtype == np.float32 and out.shape == (4, 2)
    np.testing.assert_array_equal(out, [[1, 3], [2, -1], [3, 2], [-1, 4]])
    with pytest.raises(ValueError, match=r"\(samples, 2\)"):
        binaural_expand(np.zeros((2, 5)))


def _blobs(seed, n=40):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * 8, [6.0] * 8, [-6.0] * 4 + [6.0] * 4])
    y = np.repeat(np.arange(3), n)
    return centres[y] + rng.normal(scale=0.5, size=(len(y), 8)), y


def test_transfer_classifiers_on_separable_data():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x_tr, y_tr = _blobs(0)
    x_te, y_te = _blobs(1)
    svm = fit_svm_poly3(x_tr, y_tr)
    assert isinstance(svm.steps[0][1], StandardScaler)
    assert isinstance(svm.steps[-1][1], SVC)
    assert svm.steps[-1][1].kernel == "poly" and svm.steps[-1][1].degree == 3
    assert (svm.predict(x_te) == y_te).mean() == 1.0
    lr = fit_logreg(x_tr, y_tr)
    assert isinstance(lr.steps[0][1], StandardScaler) and isinstance(lr.steps[-1][1], LogisticRegression)
    assert (lr.predict(x_te) == y_te).mean() == 1.0
