"""TAU Urban Acoustic Scenes 2020 Mobile, development set (DCASE 2020 Task 1a).

On disk (the dataset's README, https://zenodo.org/record/3819968)::

    TAU-urban-acoustic-scenes-2020-mobile-development/
      audio/{scene}-{city}-{location}-{segment}-{device}.wav   23,040 clips, 10 s, 44.1 kHz, 24-bit
      meta.csv                             filename, scene_label, identifier, source_label
      evaluation_setup/fold1_train.csv     filename, scene_label      (13,965 rows)
      evaluation_setup/fold1_evaluate.csv  filename, scene_label      (2,970 rows, CRLF)
      evaluation_setup/fold1_test.csv      filename

All csv files are TAB-separated with one header line.  ``filename`` is relative to the root
(``audio/airport-lisbon-1000-40000-a.wav``).  Parallel recordings of one segment by several
devices share ``{scene}-{city}-{location}-{segment}`` (:attr:`AscRecord.clip_id`).

The two-stage system (Hu et al. 2021, Sec. 2) also uses the same clips relabelled with three
broad classes (indoor / outdoor / transportation): :func:`read_broad_csv`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataFormatError
from .common import (LoadReport, RowPaths, apply_missing, check_disjoint, check_label, check_missing_mode,
                     check_unique, read_table)

# Scene classes in the order of the DCASE 2020 Task 1 description
# (https://dcase.community/challenge2020/task-acoustic-scene-classification).
SCENES = ("airport", "shopping_mall", "metro_station", "street_pedestrian", "public_square",
          "street_traffic", "tram", "bus", "metro", "park")
# The published score files (two-stage paper code) order the 10 classes alphabetically, which is
# what pandas' ``astype('category').cat.codes`` gives.
SCENES_ALPHABETICAL = tuple(sorted(SCENES))

DEVICES = ("a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6")
TRAIN_DEVICES = ("a", "b", "c", "s1", "s2", "s3")
UNSEEN_DEVICES = ("s4", "s5", "s6")  # only in the evaluation fold

CITIES = ("barcelona", "helsinki", "lisbon", "london", "lyon", "milan", "paris", "prague",
          "stockholm", "vienna")

# Two-stage ASC broad classes (Hu et al. 2021, Sec. 2.1).
BROAD_CLASSES = ("indoor", "outdoor", "transportation")
SCENE_TO_BROAD = {
    "airport": "indoor", "metro_station": "indoor", "shopping_mall": "indoor",
    "park": "outdoor", "public_square": "outdoor", "street_pedestrian": "outdoor",
    "street_traffic": "outdoor",
    "bus": "transportation", "metro": "transportation", "tram": "transportation",
}

ROOT_NAME = "TAU-urban-acoustic-scenes-2020-mobile-development"
SPLITS = ("train", "evaluate", "test", "all")

FOLD_COLUMNS = ("filename", "scene_label")
TEST_COLUMNS = ("filename",)
META_COLUMNS = ("filename", "scene_label", "identifier", "source_label")

_NAME_RE = re.compile(
    r"^(?P<scene>[a-z_]+)-(?P<city>[a-z]+)-(?P<location>\d+)-(?P<segment>\d+)-(?P<device>[a-z0-9]+)"
    r"(?:-(?P<augmentation>[a-z][a-z0-9_]*))?\.wav$")


@dataclass(frozen=True)
class AscRecord:
    """One TAU 2020 clip.

    Attributes:
      path: absolute (or root-relative when the root is relative) audio path.
      filename: as written in the csv, e.g. ``audio/airport-lisbon-1000-40000-a.wav``.
      scene, city, location, segment, device: parsed from the file name.
      identifier: ``{city}-{location}`` (the recording location; group splits by it).
      clip_id: ``{scene}-{city}-{location}-{segment}``, shared by parallel recordings.
      broad: the two-stage broad class of the scene.
      source, line: the csv and the 1-based line that listed the clip (not compared).
    """

    path: Path
    filename: str
    scene: str
    city: str
    location: str
    segment: str
    device: str
    identifier: str
    clip_id: str
    broad: str
    source: Path | None = field(default=None, compare=False, repr=False)
    line: int | None = field(default=None, compare=False, repr=False)


def parse_tau_filename(name: str, *, source=None, line: int | None = None,
                       allow_augmented: bool = False) -> dict:
    """Split a TAU 2020 file name into its parts.

    Accepts ``audio/airport-lisbon-1000-40000-a.wav`` or just the base name.  With
    ``allow_augmented`` a trailing ``-{augmentation}`` tag (clips written by
    :func:`tf_scenes.pipelines.offline_augment.generate_augmented_set`, e.g.
    ``airport-lisbon-1000-40000-a-reverb_drc.wav``) is accepted.

    Returns:
      dict with filename (as given), scene, city, location, segment, device, identifier,
      clip_id, broad, augmentation (None for an original clip).

    Raises:
      DataFormatError naming `source` (or the name) and line when the name does not follow
      ``{scene}-{city}-{location}-{segment}-{device}.wav`` or a part is unknown.
    """
    where = source if source is not None else name
    base = name.rsplit("/", 1)[-1]
    m = _NAME_RE.match(base)
    if m is None:
        raise DataFormatError(where, f"bad TAU 2020 file name {name!r}", line=line,
                              hint="expected {scene}-{city}-{location}-{segment}-{device}.wav, "
                                   "e.g. audio/airport-lisbon-1000-40000-a.wav")
    d = m.groupdict()
    if d["augmentation"] is not None and not allow_augmented:
        raise DataFormatError(where, f"bad TAU 2020 file name {name!r}: unexpected suffix "
                              f"-{d['augmentation']}", line=line,
                              hint="augmented lists are read with allow_augmented=True")
    check_label(d["scene"], SCENES, where, line, what="scene in file name")
    check_label(d["city"], CITIES, where, line, what="city in file name")
    check_label(d["device"], DEVICES, where, line, what="device in file name")
    d["filename"] = name
    d["identifier"] = f"{d['city']}-{d['location']}"
    d["clip_id"] = f"{d['scene']}-{d['city']}-{d['location']}-{d['segment']}"
    d["broad"] = SCENE_TO_BROAD[d["scene"]]
    return d


def _record(paths: RowPaths, name: str, source, line: int, allow_augmented: bool = False) -> AscRecord:
    path = paths(paths.root, name, line)  # before the name: "outside the root" says more than "bad name"
    p = parse_tau_filename(name, source=source, line=line, allow_augmented=allow_augmented)
    return AscRecord(path=path, filename=name, scene=p["scene"], city=p["city"],
                     location=p["location"], segment=p["segment"], device=p["device"],
                     identifier=p["identifier"], clip_id=p["clip_id"], broad=p["broad"],
                     source=source, line=line)


def _default_root(path: Path) -> Path:
    return path.parent.parent if path.parent.name == "evaluation_setup" else path.parent


def read_fold_csv(path, root=None, *, check_files: bool = False, missing: str = "error",
                  allow_outside_root: bool = False, report: LoadReport | None = None,
                  allow_augmented: bool = False) -> list[AscRecord]:
    """Read a TAU 2020 csv: ``fold1_{train,evaluate}.csv``, ``fold1_test.csv`` or ``meta.csv``.

    The kind is recognised from the header.  Scene labels must match the scene in the file name;
    meta.csv's identifier and source_label must match the name too.  Every ``filename`` must
    lie inside `root` (no absolute path, no ``..``, no symlink leading out) and name a file
    listed once, whatever its spelling (:class:`~.common.RowPaths`).

    Args:
      path: the csv.
      root: dataset root that ``filename`` is relative to; default: the folder above
        ``evaluation_setup/`` (or the csv's folder).
      check_files: look for the listed audio files (default False: a bare csv works).
      missing: with check_files, "error" raises one error listing the missing files; "skip"
        drops them, logs one line and appends them to `report` (:func:`~.common.apply_missing`).
      allow_outside_root: accept rows that lead outside `root` (audio kept elsewhere).
      report: a :class:`~.common.LoadReport` collecting the skipped files.
      allow_augmented: accept names with an augmentation tag (lists of generated clips).
    """
    path = Path(path)
    check_missing_mode(missing)
    root = Path(root) if root is not None else _default_root(path)
    header, rows = read_table(path, [FOLD_COLUMNS, TEST_COLUMNS, META_COLUMNS], delimiter="\t")
    check_unique(rows, key=lambda r: r.fields[0], line=lambda r: r.line, path=path, what="file name")
    paths = RowPaths(root, path, allow_outside_root=allow_outside_root)
    records = []
    for row in rows:
        rec = _record(paths, row.fields[0], path, row.line, allow_augmented)
        if len(header) >= 2:
            label = row.fields[1]
            if label in BROAD_CLASSES:
                raise DataFormatError(path, f"label {label!r} is a broad class, expected a scene label",
                                      line=row.line, hint="read 3-class csv files with read_broad_csv")
            check_label(label, SCENES, path, row.line, what="scene label")
            if label != rec.scene:
                raise DataFormatError(path, f"scene label {label!r} does not match the file name "
                                      f"{rec.filename!r} (scene {rec.scene!r})", line=row.line)
        if header == META_COLUMNS:
            ident, source = row.fields[2], row.fields[3]
            if ident != rec.identifier:
                raise DataFormatError(path, f"identifier {ident!r} does not match the file name "
                                      f"(expected {rec.identifier!r})", line=row.line)
            if source != rec.device:
                raise DataFormatError(path, f"source_label {source!r} does not match the file name "
                                      f"(expected device {rec.device!r})", line=row.line)
        records.append(rec)
    if check_files:
        records = apply_missing(records, path, missing=missing, report=report, name=lambda r: r.filename)
    return records


def read_broad_csv(path, root=None, *, check_files: bool = False, missing: str = "error",
                   allow_outside_root: bool = False, report: LoadReport | None = None) -> list[AscRecord]:
    """Read a 3-class csv (filename, scene_label with labels indoor / outdoor / transportation).

    This is the relabelled list of the two-stage code (e.g. ``fold1_evaluate_3class.csv``).  The
    broad label must agree with the scene in the file name.  The other arguments are those of
    :func:`read_fold_csv`.
    """
    path = Path(path)
    check_missing_mode(missing)
    root = Path(root) if root is not None else _default_root(path)
    _, rows = read_table(path, FOLD_COLUMNS, delimiter="\t")
    check_unique(rows, key=lambda r: r.fields[0], line=lambda r: r.line, path=path, what="file name")
    paths = RowPaths(root, path, allow_outside_root=allow_outside_root)
    records = []
    for row in rows:
        rec = _record(paths, row.fields[0], path, row.line)
        label = row.fields[1]
        check_label(label, BROAD_CLASSES, path, row.line, what="broad label",
                    hint="10-class lists are read with read_fold_csv" if label in SCENES else None)
        if label != rec.broad:
            raise DataFormatError(path, f"broad label {label!r} does not match the scene of "
                                  f"{rec.filename!r} ({rec.scene} -> {rec.broad})", line=row.line)
        records.append(rec)
    if check_files:
        records = apply_missing(records, path, missing=missing, report=report, name=lambda r: r.filename)
    return records


def resolve_root(root) -> Path:
    """The dataset folder: `root` itself, or ``root/TAU-urban-acoustic-scenes-2020-mobile-development``."""
    root = Path(root)
    if not (root / "evaluation_setup").is_dir() and not (root / "meta.csv").is_file() \
            and (root / ROOT_NAME).is_dir():
        return root / ROOT_NAME
    return root


def csv_path(root, split: str) -> Path:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    root = resolve_root(root)
    return root / "meta.csv" if split == "all" else root / "evaluation_setup" / f"fold1_{split}.csv"


def load(root, split: str = "train", *, check_files: bool = True, missing: str = "error",
         allow_outside_root: bool = False, report: LoadReport | None = None) -> list[AscRecord]:
    """Load one split of TAU 2020 Mobile development.

    Args:
      root: dataset root (the folder holding audio/, meta.csv and evaluation_setup/), or its parent.
      split: "train", "evaluate", "test" (fold1_*.csv) or "all" (meta.csv).
      check_files: look for the listed audio files.
      missing: "error" (one DataFormatError listing the missing files) or "skip" (drop them, log
        one line, append them to `report`).
      allow_outside_root: accept rows that are absolute, hold ``..`` or lead out of the root
        through a symlink (audio kept elsewhere); refused by default.
      report: a :class:`~.common.LoadReport` collecting the files skipped.
    """
    path = csv_path(root, split)
    return read_fold_csv(path, resolve_root(root), check_files=check_files, missing=missing,
                         allow_outside_root=allow_outside_root, report=report)


def load_fold1(root, *, check_files: bool = True, missing: str = "error", allow_outside_root: bool = False,
               report: LoadReport | None = None) -> tuple[list[AscRecord], list[AscRecord]]:
    """(train, evaluate) records of fold 1, checked to share no clip (:func:`~.common.check_disjoint`).

    The arguments are those of :func:`load`.  A clip in both lists raises one DataFormatError
    naming both csv files and lines.
    """
    kw = dict(check_files=check_files, missing=missing, allow_outside_root=allow_outside_root, report=report)
    train, evaluate = load(root, "train", **kw), load(root, "evaluate", **kw)
    check_disjoint(train, evaluate)
    return train, evaluate


def parallel_groups(records) -> dict[str, dict[str, AscRecord]]:
    """Group records by clip_id: {clip_id: {device: record}} (parallel recordings)."""
    groups: dict[str, dict[str, AscRecord]] = {}
    for r in records:
        groups.setdefault(r.clip_id, {})[r.device] = r
    return groups


def scene_index(scene: str, alphabetical: bool = False) -> int:
    """Class index of a scene in ``SCENES`` order (or alphabetical order, as in the published scores)."""
    order = SCENES_ALPHABETICAL if alphabetical else SCENES
    return order.index(scene)
