"""Ensembles and two-stage score fusion (Hu et al. 2021, Sec. 2.1 and 4.2).

Two-stage fusion multiplies each fine scene score by the score of its broad class::

    score[c] = P10[c] * P3[broad(c)],   prediction = argmax_c score[c]

Scores of two systems are always joined by clip filename (``join_by_clip``), never by row order: the
reference code fused two score files row by row although their clips were ordered differently, which
paired each clip with another clip of the same true scene (see ``tf_scenes.two_stage.audit``).
numpy only.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np

from ..scores import ScoreTable, join_by_clip

# The ten TAU Urban Acoustic Scenes 2020 scenes in alphabetical order (the published score files'
# column order) and the three broad classes of the first stage.
SCENES = ("airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall",
          "street_pedestrian", "street_traffic", "tram")
BROAD_CLASSES = ("indoor", "outdoor", "transportation")
BROAD_OF: Mapping[str, str] = MappingProxyType({
    "airport": "indoor", "metro_station": "indoor", "shopping_mall": "indoor",
    "park": "outdoor", "public_square": "outdoor", "street_pedestrian": "outdoor", "street_traffic": "outdoor",
    "bus": "transportation", "metro": "transportation", "tram": "transportation",
})


def broad_class(scene: str) -> str:
    """Broad class (indoor / outdoor / transportation) of a TAU 2020 scene."""
    try:
        return BROAD_OF[scene]
    except KeyError:
        raise ValueError(f"unknown scene {scene!r}; known: {', '.join(SCENES)}") from None


def ensemble(prob_list: Sequence) -> np.ndarray:
    """Sum of the models' softmax outputs (paper Sec. 4.2), each (clips, classes)."""
    if len(prob_list) == 0:
        raise ValueError("ensemble of no models")
    arrays = [np.asarray(p, dtype=np.float64) for p in prob_list]
    shape = arrays[0].shape
    if len(shape) != 2 or any(a.shape != shape for a in arrays):
        raise ValueError(f"all score arrays must share one (clips, classes) shape, got {[a.shape for a in arrays]}")
    return np.sum(arrays, axis=0)


def broad_index(class_names_10: Sequence[str], broad_names: Sequence[str] = BROAD_CLASSES,
                broad_of: Mapping[str, str] = BROAD_OF) -> np.ndarray:
    """Column of the broad-class score for each fine class: (classes_10,) int array."""
    broad_pos = {b: i for i, b in enumerate(broad_names)}
    idx = []
    for c in class_names_10:
        if c not in broad_of:
            raise ValueError(f"fine class {c!r} has no broad class")
        if broad_of[c] not in broad_pos:
            raise ValueError(f"broad class {broad_of[c]!r} of {c!r} is not among {list(broad_names)}")
        idx.append(broad_pos[broad_of[c]])
    return np.asarray(idx, dtype=np.int64)


def fuse(p10, p3, class_names_10: Sequence[str] = SCENES, broad_names: Sequence[str] = BROAD_CLASSES,
         broad_of: Mapping[str, str] = BROAD_OF) -> np.ndarray:
    """Two-stage scores: score[:, c] = p10[:, c] * p3[:, broad(c)].  Rows must already be aligned."""
    p10, p3 = np.asarray(p10, dtype=np.float64), np.asarray(p3, dtype=np.float64)
    if p10.ndim != 2 or p3.ndim != 2 or len(p10) != len(p3):
        raise ValueError(f"need aligned (clips, classes) arrays, got {p10.shape} and {p3.shape}")
    if p10.shape[1] != len(class_names_10) or p3.shape[1] != len(broad_names):
        raise ValueError(f"score columns {p10.shape[1]}/{p3.shape[1]} do not match "
                         f"{len(class_names_10)} fine and {len(broad_names)} broad class names")
    return p10 * p3[:, broad_index(class_names_10, broad_names, broad_of)]


def fuse_tables(t10: ScoreTable, t3: ScoreTable, broad_of: Mapping[str, str] = BROAD_OF) -> ScoreTable:
    """Two-stage fusion of a fine (10-class) and a broad (3-class) table, joined by clip name.

    The result has t10's rows and columns.
    """
    a, b = join_by_clip(t10, t3)
    fused = fuse(a.scores, b.scores, a.class_names, b.class_names, broad_of)
    return ScoreTable(a.clip_ids, fused, a.class_names)


def ensemble_tables(tables: Sequence[ScoreTable]) -> ScoreTable:
    """Sum of several systems' tables (same classes), joined by clip name; rows of the first table."""
    if not tables:
        raise ValueError("ensemble of no tables")
    first = tables[0]
    aligned = [first]
    for t in tables[1:]:
        if t.class_names != first.class_names:
            raise ValueError(f"class names differ: {first.class_names} vs {t.class_names}")
        aligned.append(join_by_clip(first, t)[1])
    return ScoreTable(first.clip_ids, ensemble([t.scores for t in aligned]), first.class_names)
