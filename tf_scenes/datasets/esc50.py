"""ESC-50 and a generic folder-per-class format with a fine -> coarse class map.

ESC-50 on disk (https://github.com/karolpiczak/ESC-50)::

    audio/{fold}-{clip}-{take}-{target}.wav   5 s, 44.1 kHz mono
    meta/esc50.csv    filename,fold,target,category,esc10,src_file,take

The 50 classes form 5 groups of 10 by target id (0-9 animals, 10-19 natural soundscapes & water,
20-29 human non-speech, 30-39 interior/domestic, 40-49 exterior/urban).  The raw-waveform
hierarchy-aware model (Abrol & Sharma 2020) trains on (fine, coarse) pairs: :class:`HierRecord`.

Generic hierarchical format: a csv ``fine,coarse`` (one row per fine class,
:func:`load_class_map`) and ``root/{fine}/*.wav`` (:func:`load_folder_per_class`); folds come from
a seeded class-balanced 5-way split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataFormatError
from .common import (LoadReport, RowPaths, apply_missing, check_label, check_missing_mode, check_unique,
                     list_errors, outside_spelling, read_table, require_nonempty, seeded_folds)

CATEGORIES = (
    "dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow",
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops", "wind",
    "pouring_water", "toilet_flush", "thunderstorm",
    "crying_baby", "sneezing", "clapping", "breathing", "coughing", "footsteps", "laughing",
    "brushing_teeth", "snoring", "drinking_sipping",
    "door_wood_knock", "mouse_click", "keyboard_typing", "door_wood_creaks", "can_opening",
    "washing_machine", "vacuum_cleaner", "clock_alarm", "clock_tick", "glass_breaking",
    "helicopter", "chainsaw", "siren", "car_horn", "engine", "train", "church_bells", "airplane",
    "fireworks", "hand_saw",
)
# Coarse groups in target-id order: group of target t is GROUPS[t // 10].
GROUPS = ("animals", "natural_soundscapes_water", "human_non_speech", "interior_domestic",
          "exterior_urban")
COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
CLASS_MAP_COLUMNS = ("fine", "coarse")
N_FOLDS = 5

_NAME_RE = re.compile(r"^(?P<fold>\d+)-(?P<clip>[^-]+)-(?P<take>[A-Za-z]+)-(?P<target>\d+)\.wav$")


@dataclass(frozen=True)
class EscRecord:
    """One ESC-50 clip, fields as in meta/esc50.csv."""

    path: Path
    filename: str
    fold: int
    target: int
    category: str
    esc10: bool
    src_file: str
    take: str
    source: Path | None = field(default=None, compare=False, repr=False)  # the csv (not compared)
    line: int | None = field(default=None, compare=False, repr=False)     # its 1-based line


@dataclass(frozen=True)
class HierRecord:
    """A clip with a fine and a coarse label and a fold id (1..5); the csv and line that listed
    it when it came from one (not compared)."""

    path: Path
    fine: str
    coarse: str
    fold: int
    source: Path | None = field(default=None, compare=False, repr=False)
    line: int | None = field(default=None, compare=False, repr=False)


def group_of(target: int) -> str:
    """ESC-50 coarse group of a target id."""
    if not 0 <= target < len(CATEGORIES):
        raise ValueError(f"ESC-50 target must be in [0, 49], got {target}")
    return GROUPS[target // 10]


def _int(path, line, name, text) -> int:
    try:
        return int(text)
    except ValueError:
        raise DataFormatError(path, f"{name} {text!r} is not an integer", line=line) from None


def read_esc50_csv(path, audio_dir=None, *, check_files: bool = False, missing: str = "error",
                   allow_outside_root: bool = False, report: LoadReport | None = None) -> list[EscRecord]:
    """Read ``meta/esc50.csv``; `audio_dir` defaults to ``audio/`` beside ``meta/``.

    Checks category == CATEGORIES[target], fold in 1..5, esc10 True/False, and that the file
    name's fold, take and target agree with the columns.  The folder above ``meta/`` is the
    dataset root; `missing`, `allow_outside_root` and `report` are those of
    :func:`tf_scenes.datasets.tau2020.read_fold_csv`.
    """
    path = Path(path)
    check_missing_mode(missing)
    audio_dir = Path(audio_dir) if audio_dir is not None else path.parent.parent / "audio"
    _, rows = read_table(path, COLUMNS, delimiter=",", quoted=True)
    check_unique(rows, key=lambda r: r.fields[0], line=lambda r: r.line, path=path, what="filename")
    paths = RowPaths(path.parent.parent, path, allow_outside_root=allow_outside_root)
    records = []
    for row in rows:
        filename, fold_s, target_s, category, esc10_s, src_file, take = row.fields
        wav = paths(audio_dir, filename, row.line)
        fold, target = _int(path, row.line, "fold", fold_s), _int(path, row.line, "target", target_s)
        if not 1 <= fold <= N_FOLDS:
            raise DataFormatError(path, f"fold {fold} out of range 1..{N_FOLDS}", line=row.line)
        check_label(category, CATEGORIES, path, row.line, what="category")
        if not 0 <= target < len(CATEGORIES) or CATEGORIES[target] != category:
            raise DataFormatError(path, f"target {target} does not match category {category!r} "
                                  f"(expected target {CATEGORIES.index(category)})", line=row.line)
        if esc10_s not in ("True", "False"):
            raise DataFormatError(path, f"esc10 must be True or False, found {esc10_s!r}", line=row.line)
        # A path accepted by allow_outside_root is checked by its last part.
        m = _NAME_RE.match(Path(filename).name if outside_spelling(filename) else filename)
        if m is None or int(m["fold"]) != fold or int(m["target"]) != target or m["take"] != take:
            raise DataFormatError(path, f"file name {filename!r} does not match fold {fold}, take {take!r}, "
                                  f"target {target}", line=row.line,
                                  hint="expected {fold}-{clip}-{take}-{target}.wav")
        records.append(EscRecord(path=wav, filename=filename, fold=fold, target=target,
                                 category=category, esc10=esc10_s == "True", src_file=src_file, take=take,
                                 source=path, line=row.line))
    if check_files:
        records = apply_missing(records, path, missing=missing, report=report, name=lambda r: r.filename)
    return records


def load(root, *, check_files: bool = True, missing: str = "error", allow_outside_root: bool = False,
         report: LoadReport | None = None) -> list[EscRecord]:
    """Load ESC-50 from ``root/meta/esc50.csv`` and ``root/audio/`` (arguments: :func:`read_esc50_csv`)."""
    root = Path(root)
    return read_esc50_csv(root / "meta" / "esc50.csv", root / "audio", check_files=check_files, missing=missing,
                          allow_outside_root=allow_outside_root, report=report)


def to_hier(records, class_map: dict[str, str] | None = None) -> list[HierRecord]:
    """ESC-50 records as HierRecords; coarse = the ESC-50 group, or class_map[category]."""
    out = []
    for r in records:
        if class_map is None:
            coarse = group_of(r.target)
        elif r.category in class_map:
            coarse = class_map[r.category]
        else:
            raise DataFormatError(r.path, f"category {r.category!r} is not in the class map")
        out.append(HierRecord(path=r.path, fine=r.category, coarse=coarse, fold=r.fold, source=r.source,
                              line=r.line))
    return out


def load_hier(root, class_map_path=None, *, check_files: bool = True, missing: str = "error",
              allow_outside_root: bool = False, report: LoadReport | None = None) -> list[HierRecord]:
    """ESC-50 as (fine, coarse, fold) records, with an optional ``fine,coarse`` class map csv
    (the other arguments: :func:`load`)."""
    cmap = load_class_map(class_map_path) if class_map_path is not None else None
    return to_hier(load(root, check_files=check_files, missing=missing, allow_outside_root=allow_outside_root,
                        report=report), cmap)


def load_class_map(path) -> dict[str, str]:
    """Read a ``fine,coarse`` csv (header required, one row per fine class) -> {fine: coarse}."""
    path = Path(path)
    _, rows = read_table(path, CLASS_MAP_COLUMNS, delimiter=",", quoted=True)
    check_unique(rows, key=lambda r: r.fields[0], line=lambda r: r.line, path=path, what="fine class",
                 hint="each fine class maps to exactly one coarse class")
    cmap = {}
    for row in rows:
        fine, coarse = row.fields
        if not fine or not coarse:
            raise DataFormatError(path, "empty class name", line=row.line)
        cmap[fine] = coarse
    return cmap


def load_folder_per_class(root, class_map: dict[str, str], *, n_folds: int = N_FOLDS, seed: int = 0,
                          extensions=(".wav",), allow_outside_root: bool = False) -> list[HierRecord]:
    """Records for ``root/{fine}/*.wav`` with coarse labels from `class_map`.

    Every sub-folder must be a fine class of the map and every fine class must have a folder
    with at least one file.  Folds 1..n_folds come from :func:`~.common.seeded_folds` (balanced
    per fine class, deterministic for a seed).  A file (or class folder) that is a symlink
    leading out of `root` is refused unless ``allow_outside_root``; two entries that are the
    same file (symlinks) are refused, naming both.  The files are found on disk, so none can be
    missing: there is no `missing` mode.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(root, "folder not found")
    if not class_map:
        raise DataFormatError(root, "empty class map")
    dirs = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    for d in dirs:
        check_label(d, sorted(class_map), root / d, None, what="class folder",
                    hint="add it to the class map or move it out of the root")
    problems = [f"{fine}/ missing" for fine in class_map if fine not in dirs]
    files: list[tuple[str, Path]] = []
    for fine in class_map:
        if fine in dirs:
            found = sorted(p for p in (root / fine).iterdir() if p.is_file() and p.suffix.lower() in extensions)
            if not found:
                problems.append(f"{fine}/ has no {'/'.join(extensions)} files")
            files += [(fine, p) for p in found]
    list_errors(problems, len(class_map), root, "classes have no audio")
    require_nonempty(files, root, "audio files")
    paths = RowPaths(root, root, allow_outside_root=allow_outside_root)
    for _, p in files:
        paths(root, str(p.relative_to(root)), None)
    folds = seeded_folds([str(p.relative_to(root)) for _, p in files], [f for f, _ in files], n_folds, seed)
    return [HierRecord(path=p, fine=fine, coarse=class_map[fine], fold=k) for (fine, p), k in zip(files, folds)]
