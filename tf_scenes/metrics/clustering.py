"""Metrics and helpers of the hierarchy-aware raw-waveform study (Abrol & Sharma 2020).

Plain numpy (scikit-learn only inside the transfer helpers; no TensorFlow):

* top-k accuracy at coarse and fine level (Tables II, VI);
* clustering quality of embeddings (Table VII): intra-cluster distance (mean over clusters of the
  mean pairwise Euclidean distance inside the cluster; lower is better) and inter-cluster centroid
  distance (mean Euclidean distance between the centroids of distinct clusters; higher is better);
* clip-level decisions by averaging the scores of a clip's windows;
* binaural expansion into 4 waveforms: left, right, sum, difference;
* transfer with frozen embeddings (Table V): polynomial-kernel SVM (degree 3) and logistic
  regression, each after standardisation.
"""

from __future__ import annotations

import numpy as np


def _labels_1d(y, name: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D class ids, got shape {y.shape}")
    return y


def topk_accuracy(y, probs, k: int = 1) -> float:
    """Fraction of rows whose true class is among the k highest scores.

    A row counts as correct when fewer than k classes score strictly higher than the true class
    (ties are resolved in favour of the true class).  y: (n,) int class ids; probs: (n, C).
    """
    y = _labels_1d(y)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != y.shape[0]:
        raise ValueError(f"probs must be (n, classes) with n = len(y) = {len(y)}, got shape {probs.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if len(y) == 0:
        raise ValueError("topk_accuracy of an empty set")
    if y.min() < 0 or y.max() >= probs.shape[1]:
        raise ValueError(f"labels must lie in [0, {probs.shape[1]}), got [{y.min()}, {y.max()}]")
    true_score = probs[np.arange(len(y)), y.astype(np.int64)]
    n_higher = (probs > true_score[:, None]).sum(axis=1)
    return float(np.mean(n_higher < k))


def topk_report(y, probs, ks=(1, 3), prefix: str = "") -> dict[str, float]:
    """{"{prefix}top1": .., "{prefix}top3": ..} (Table II columns)."""
    return {f"{prefix}top{k}": topk_accuracy(y, probs, k) for k in ks}


def _sum_pairwise_distances(x: np.ndarray, block: int = 1024) -> float:
    """Sum of Euclidean distances over unordered pairs of rows (Gram-matrix form, in row blocks)."""
    total = 0.0
    sq = np.einsum("ij,ij->i", x, x)
    for start in range(0, len(x), block):
        stop = min(start + block, len(x))
        rest = x[start:]  # pairs (i, j) with i in the block and j >= i
        d2 = sq[start:stop, None] + sq[None, start:] - 2.0 * x[start:stop] @ rest.T  # (block, n - start)
        upper = np.arange(len(rest))[None, :] > np.arange(stop - start)[:, None]  # j > i
        total += float(np.sqrt(np.maximum(d2[upper], 0.0)).sum())
    return total


def _clusters(embeddings, labels) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(embeddings, dtype=np.float64)
    labels = _labels_1d(labels, "labels")
    if x.ndim != 2 or x.shape[0] != labels.shape[0]:
        raise ValueError(f"embeddings must be (n, dim) with n = len(labels) = {len(labels)}, got shape {x.shape}")
    return x, labels


def intra_cluster_distance(embeddings, labels) -> float:
    """Mean over clusters of the mean pairwise Euclidean distance inside the cluster (Table VII).

    Clusters with a single member have no pair and are left out of the mean.
    """
    x, labels = _clusters(embeddings, labels)
    means = []
    for c in np.unique(labels):
        xc = x[labels == c]
        n = len(xc)
        if n >= 2:
            means.append(_sum_pairwise_distances(xc) / (n * (n - 1) / 2))
    if not means:
        raise ValueError("intra_cluster_distance needs a cluster with at least 2 members")
    return float(np.mean(means))


def cluster_centroids(embeddings, labels) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique labels, (n_clusters, dim) centroids)."""
    x, labels = _clusters(embeddings, labels)
    classes = np.unique(labels)
    return classes, np.stack([x[labels == c].mean(axis=0) for c in classes])


def inter_cluster_centroid_distance(embeddings, labels) -> float:
    """Mean Euclidean distance between the centroids of distinct clusters (Table VII)."""
    _, centroids = cluster_centroids(embeddings, labels)
    k = len(centroids)
    if k < 2:
        raise ValueError("inter_cluster_centroid_distance needs at least 2 clusters")
    return _sum_pairwise_distances(centroids) / (k * (k - 1) / 2)


def clustering_report(embeddings, labels, prefix: str = "") -> dict[str, float]:
    """{"{prefix}intra": .., "{prefix}inter": ..} (Table VII)."""
    return {f"{prefix}intra": intra_cluster_distance(embeddings, labels),
            f"{prefix}inter": inter_cluster_centroid_distance(embeddings, labels)}


def clip_decision(window_probs, clip_ids, window_labels=None):
    """Average window scores per clip.

    window_probs (n_windows, C), clip_ids (n_windows,) any hashable ids.  Returns
    (clip ids in order of first appearance, (n_clips, C) mean scores); with `window_labels`
    (n_windows,) also the clip labels, checking that all windows of a clip share one label.
    """
    probs = np.asarray(window_probs, dtype=np.float64)
    ids = np.asarray(clip_ids)
    if ids.ndim != 1 or probs.ndim != 2 or len(ids) != len(probs):
        raise ValueError(f"window_probs must be (n, classes) and clip_ids (n,), got {probs.shape} and {ids.shape}")
    uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # clips in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    inv = rank[inverse.reshape(-1)]
    sums = np.zeros((len(uniq), probs.shape[1]))
    np.add.at(sums, inv, probs)
    counts = np.bincount(inv, minlength=len(uniq))
    clip_probs = sums / counts[:, None]
    clip_ids_out = uniq[order]
    if window_labels is None:
        return clip_ids_out, clip_probs
    labels = np.asarray(window_labels)
    if labels.shape != ids.shape:
        raise ValueError(f"window_labels must have shape {ids.shape}, got {labels.shape}")
    clip_labels = labels[first[order]]
    bad = labels != clip_labels[inv]
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"clip {ids[i].item()!r} has windows with different labels "
                         f"({clip_labels[inv[i]].item()!r} and {labels[i].item()!r} at window {i})")
    return clip_ids_out, clip_probs, clip_labels


def binaural_expand(stereo) -> np.ndarray:
    """(samples, 2) stereo -> (4, samples) float32: left, right, left + right, left - right.

    No rescaling: the per-window pre-emphasis and mean normalisation that follow are linear, and
    the sum may exceed [-1, 1].
    """
    x = np.asarray(stereo)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"binaural_expand expects (samples, 2) stereo, got shape {x.shape}")
    x = x.astype(np.float32)
    left, right = x[:, 0], x[:, 1]
    return np.stack([left, right, left + right, left - right])  # (4, samples)


def fit_svm_poly3(emb_train, y_train, *, C: float = 1.0, seed: int = 0):
    """Standardise -> SVC(kernel="poly", degree=3) on frozen embeddings (Table V); returns the fitted Pipeline."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    model = make_pipeline(StandardScaler(), SVC(kernel="poly", degree=3, C=C, random_state=seed))
    return model.fit(np.asarray(emb_train), _labels_1d(y_train, "y_train"))


def fit_logreg(emb_train, y_train, *, C: float = 1.0, max_iter: int = 1000, seed: int = 0):
    """Standardise -> LogisticRegression on frozen embeddings (Table V); returns the fitted Pipeline."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, random_state=seed))
    return model.fit(np.asarray(emb_train), _labels_1d(y_train, "y_train"))
