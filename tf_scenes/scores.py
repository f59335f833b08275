"""Evaluation scores of a run, in one file format for every family, joined by clip name.

Every run folder holds ``scores_<split>.tsv`` per clip-level output: a TAB-separated table with a
header ``filename<TAB>class...`` and one row per clip, keyed by the clip's file (or mixture) name;
frame-level (SED) outputs are one file per recording in sed_scores_eval's format
(``onset<TAB>offset<TAB>class...``, one row per frame, times in seconds);
numbers are written with Python's shortest round-trip repr, so reading the file back gives the
exact float64 values that were written (tables computed from a reused run equal those of a fresh
one). Systems are combined by joining on the clip name, never by row order (the two-stage
reference fused two files by row order and paired clips wrongly: `tf-scenes audit-fusion`).

    write_scores(run_dir / "scores_evaluate.tsv", ScoreTable(names, probs, classes))
    table = read_scores(run_dir / "scores_evaluate.tsv")
"""

from __future__ import annotations

import dataclasses
import posixpath
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import DataFormatError, TFScenesError


class ClipMismatchError(TFScenesError, ValueError):
    """Two score tables do not cover the same clips (or a table repeats a clip)."""


def clip_key(name: str) -> str:
    """Join key of a clip: its file name without folders ("audio/x-a.wav" and "x-a.wav" match)."""
    return posixpath.basename(str(name).replace("\\", "/")).strip()


@dataclasses.dataclass(frozen=True)
class ScoreTable:
    """Scores of one system: one row per clip, named columns.

    clip_ids: clip file names (any folder prefix; rows are matched by ``clip_key``).
    scores: (clips, classes) float array.  class_names: column names.
    """

    clip_ids: tuple[str, ...]
    scores: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "clip_ids", tuple(str(c) for c in self.clip_ids))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        scores = np.asarray(self.scores, dtype=np.float64)
        object.__setattr__(self, "scores", scores)
        if scores.ndim != 2 or scores.shape != (len(self.clip_ids), len(self.class_names)):
            raise ValueError(f"scores shape {scores.shape} does not match {len(self.clip_ids)} clips x "
                             f"{len(self.class_names)} classes")
        keys = [clip_key(c) for c in self.clip_ids]
        if len(set(keys)) != len(keys):
            seen, dups = set(), []
            for k in keys:
                if k in seen:
                    dups.append(k)
                seen.add(k)
            raise ClipMismatchError(f"score table repeats clips: {_preview(dups)}")

    def __len__(self) -> int:
        return len(self.clip_ids)

    def keys(self) -> list[str]:
        return [clip_key(c) for c in self.clip_ids]

    def predictions(self) -> list[str]:
        """Predicted class name per clip (argmax)."""
        return [self.class_names[i] for i in self.scores.argmax(axis=1)]

    def take(self, clip_ids: Sequence[str]) -> "ScoreTable":
        """Rows for the given clips, in that order (matched by clip_key)."""
        pos = {k: i for i, k in enumerate(self.keys())}
        missing = [c for c in clip_ids if clip_key(c) not in pos]
        if missing:
            raise ClipMismatchError(f"{len(missing)} clips not in score table: {_preview(missing)}")
        rows = [pos[clip_key(c)] for c in clip_ids]
        return ScoreTable(tuple(self.clip_ids[i] for i in rows), self.scores[rows], self.class_names)


def _preview(items, n: int = 10) -> str:
    items = list(items)
    text = ", ".join(items[:n])
    return text + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def join_by_clip(table_a: ScoreTable, table_b: ScoreTable) -> tuple[ScoreTable, ScoreTable]:
    """Align two score tables by clip file name; rows follow table_a's order.

    Raises ClipMismatchError listing the clips present on only one side.
    """
    keys_a, keys_b = table_a.keys(), table_b.keys()
    only_a = sorted(set(keys_a) - set(keys_b))
    only_b = sorted(set(keys_b) - set(keys_a))
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} clips only in the first table: {_preview(only_a)}")
        if only_b:
            parts.append(f"{len(only_b)} clips only in the second table: {_preview(only_b)}")
        raise ClipMismatchError("cannot join score tables by clip; " + "; ".join(parts))
    return table_a, table_b.take(table_a.clip_ids)


def write_scores(path, table: ScoreTable) -> Path:
    """Write a score table as TSV (atomically)."""
    from .io_utils import atomic_write_text

    for c in (*table.class_names, *table.clip_ids):
        if "\t" in c or "\n" in c:
            raise ValueError(f"{path}: a clip or class name holds a TAB or newline: {c!r}")
    if not np.all(np.isfinite(table.scores)):
        raise ValueError(f"{path}: refusing to write non-finite scores")
    lines = ["\t".join(["filename", *table.class_names])]
    lines += ["\t".join([clip, *(repr(float(v)) for v in row)]) for clip, row in zip(table.clip_ids, table.scores)]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_scores(path) -> ScoreTable:
    """Read a file written by :func:`write_scores` (DataFormatError naming the line if malformed)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise DataFormatError(path, f"cannot read score file: {e}") from e
    if not lines or not lines[0].startswith("filename\t"):
        raise DataFormatError(path, "not a score file (first line must start with 'filename<TAB>')", line=1)
    classes = lines[0].split("\t")[1:]
    clips, rows = [], []
    for i, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        if len(parts) != len(classes) + 1:
            raise DataFormatError(path, f"expected {len(classes) + 1} columns, found {len(parts)}", line=i)
        try:
            rows.append([float(v) for v in parts[1:]])
        except ValueError as e:
            raise DataFormatError(path, f"not a number: {e}", line=i) from None
        clips.append(parts[0])
    return ScoreTable(tuple(clips), np.asarray(rows, np.float64).reshape(len(clips), len(classes)), tuple(classes))


def write_frame_scores(path, scores, hop_seconds: float, class_names: Sequence[str]) -> Path:
    """One recording's frame scores (frames, classes) as a sed_scores_eval score file."""
    from .io_utils import atomic_write_text

    scores = np.asarray(scores, np.float64)
    if scores.ndim != 2 or scores.shape[1] != len(class_names):
        raise ValueError(f"{path}: frame scores {scores.shape} do not match {len(class_names)} classes")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{path}: refusing to write non-finite scores")
    lines = ["\t".join(["onset", "offset", *class_names])]
    for i, row in enumerate(scores):
        lines.append("\t".join([repr(round(i * hop_seconds, 6)), repr(round((i + 1) * hop_seconds, 6)),
                                *(repr(float(v)) for v in row)]))
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_frame_scores(path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(onsets, scores (frames, classes), class names) of a file written by write_frame_scores."""
    times, scores, classes = read_frame_score_times(path)
    return times[:-1], scores, classes


def read_frame_score_times(path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(timestamps (frames + 1: every frame's onset, then the last offset), scores (frames,
    classes), class names) of a frame score file; DataFormatError naming the line when a row is
    malformed or the frames are not back to back (each onset the previous offset)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise DataFormatError(path, f"cannot read score file: {e}") from e
    if not lines or not lines[0].startswith("onset\toffset\t"):
        raise DataFormatError(path, "not a frame score file (header must start with 'onset<TAB>offset')", line=1)
    classes = tuple(lines[0].split("\t")[2:])
    if len(lines) < 2:
        raise DataFormatError(path, "no frames (only the header)")
    rows = np.empty((len(lines) - 1, len(classes) + 2), np.float64)
    for i, ln in enumerate(lines[1:]):
        parts = ln.split("\t")
        if len(parts) != len(classes) + 2:
            raise DataFormatError(path, f"expected {len(classes) + 2} columns, found {len(parts)}", line=i + 2)
        try:
            rows[i] = [float(v) for v in parts]
        except ValueError as e:
            raise DataFormatError(path, f"not a number: {e}", line=i + 2) from None
    onsets, offsets = rows[:, 0], rows[:, 1]
    bad = np.flatnonzero((offsets <= onsets) | np.r_[onsets[1:] != offsets[:-1], False])
    if bad.size:
        raise DataFormatError(path, "frames are not back to back (offset after onset, next onset = this offset)",
                              line=int(bad[0]) + 2)
    return np.append(onsets, offsets[-1]), rows[:, 2:], classes
