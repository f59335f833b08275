"""FSDKaggle2019 audio tagging (DCASE 2019 Task 2).

On disk (the dataset's page, https://zenodo.org/record/3612637)::

    train_curated/*.wav   4,970 clips, 44.1 kHz, 16-bit mono, 0.3-30 s
    train_noisy/*.wav
    train_curated.csv     fname,labels     (comma-separated)
    train_noisy.csv       fname,labels
    sample_submission.csv fname,<80 class names in class order>

Several labels of one clip are joined by commas inside double quotes:
``x.wav,"Walk_and_footsteps,Slam"``.  DcaseNet (Jung et al. 2021, Sec. 4.1) splits the curated
set with scikit-learn ``KFold(5, shuffle=True, random_state=42)`` and uses the first fold:
:func:`kfold_split` reproduces it without scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TypeVar

import numpy as np

from ..errors import DataFormatError
from .common import (LoadReport, RowPaths, apply_missing, check_disjoint, check_label, check_missing_mode,
                     check_unique, outside_spelling, read_lines, read_table, require_nonempty)

T = TypeVar("T")

CLASSES = (
    "Accelerating_and_revving_and_vroom", "Accordion", "Acoustic_guitar", "Applause", "Bark",
    "Bass_drum", "Bass_guitar", "Bathtub_(filling_or_washing)", "Bicycle_bell",
    "Burping_and_eructation", "Bus", "Buzz", "Car_passing_by", "Cheering",
    "Chewing_and_mastication", "Child_speech_and_kid_speaking", "Chink_and_clink",
    "Chirp_and_tweet", "Church_bell", "Clapping", "Computer_keyboard", "Crackle", "Cricket", "Crowd",
    "Cupboard_open_or_close", "Cutlery_and_silverware", "Dishes_and_pots_and_pans",
    "Drawer_open_or_close", "Drip", "Electric_guitar", "Fart", "Female_singing",
    "Female_speech_and_woman_speaking", "Fill_(with_liquid)", "Finger_snapping", "Frying_(food)",
    "Gasp", "Glockenspiel", "Gong", "Gurgling", "Harmonica", "Hi-hat", "Hiss", "Keys_jangling",
    "Knock", "Male_singing", "Male_speech_and_man_speaking", "Marimba_and_xylophone",
    "Mechanical_fan", "Meow", "Microwave_oven", "Motorcycle", "Printer", "Purr",
    "Race_car_and_auto_racing", "Raindrop", "Run", "Scissors", "Screaming", "Shatter", "Sigh",
    "Sink_(filling_or_washing)", "Skateboard", "Slam", "Sneeze", "Squeak", "Stream", "Strum", "Tap",
    "Tick-tock", "Toilet_flush", "Traffic_noise_and_roadway_noise", "Trickle_and_dribble",
    "Walk_and_footsteps", "Water_tap_and_faucet", "Waves_and_surf", "Whispering", "Writing", "Yell",
    "Zipper_(clothing)",
)
SUBSETS = ("curated", "noisy")
COLUMNS = ("fname", "labels")


@dataclass(frozen=True)
class TagRecord:
    """One FSDKaggle2019 clip: audio path, file name as in the csv and its labels (csv order);
    the csv and 1-based line that listed it (not compared)."""

    path: Path
    fname: str
    labels: tuple[str, ...]
    source: Path | None = field(default=None, compare=False, repr=False)
    line: int | None = field(default=None, compare=False, repr=False)


def read_tag_csv(path, audio_dir=None, *, check_files: bool = False, missing: str = "error",
                 allow_outside_root: bool = False, report: LoadReport | None = None) -> list[TagRecord]:
    """Read ``train_curated.csv`` / ``train_noisy.csv`` (comma-separated, quoted multi-labels).

    Args:
      path: the csv.  Its folder is the dataset root: every listed file must lie inside it.
      audio_dir: folder of the wav files (default: ``train_curated/`` or ``train_noisy/`` beside
        the csv, named after the csv).
      check_files: look for the listed wav files.
      missing: with check_files, "error" (one error listing the missing files) or "skip" (drop
        them, log one line, append them to `report`).
      allow_outside_root: accept absolute names, ``..`` and audio outside the csv's folder.
      report: a :class:`~.common.LoadReport` collecting the skipped files.
    """
    path = Path(path)
    check_missing_mode(missing)
    audio_dir = Path(audio_dir) if audio_dir is not None else path.parent / path.stem
    _, rows = read_table(path, COLUMNS, delimiter=",", quoted=True)
    check_unique(rows, key=lambda r: r.fields[0], line=lambda r: r.line, path=path, what="fname")
    paths = RowPaths(path.parent, path, allow_outside_root=allow_outside_root)
    records = []
    for row in rows:
        fname, raw = row.fields
        wav = paths(audio_dir, fname, row.line)
        if not fname.endswith(".wav") or ("/" in fname and outside_spelling(fname) is None):
            raise DataFormatError(path, f"bad fname {fname!r}", line=row.line,
                                  hint="expected a bare wav name such as 0006ae4e.wav")
        labels = tuple(s.strip() for s in raw.split(","))
        if not raw or any(not s for s in labels):
            raise DataFormatError(path, f"empty label in {raw!r}", line=row.line)
        for lab in labels:
            check_label(lab, CLASSES, path, row.line, what="label")
        if len(set(labels)) != len(labels):
            raise DataFormatError(path, f"label repeated in {raw!r}", line=row.line)
        records.append(TagRecord(path=wav, fname=fname, labels=labels, source=path, line=row.line))
    if check_files:
        records = apply_missing(records, path, missing=missing, report=report, name=lambda r: r.fname)
    return records


def load(root, subset: str = "curated", *, check_files: bool = True, missing: str = "error",
         allow_outside_root: bool = False, report: LoadReport | None = None) -> list[TagRecord]:
    """Load ``train_{subset}.csv`` with audio in ``train_{subset}/``.

    `missing` ("error" / "skip"), `allow_outside_root` and `report` are those of
    :func:`read_tag_csv` (and of :func:`tf_scenes.datasets.tau2020.load`).
    """
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; expected one of {', '.join(SUBSETS)}")
    root = Path(root)
    return read_tag_csv(root / f"train_{subset}.csv", root / f"train_{subset}", check_files=check_files,
                        missing=missing, allow_outside_root=allow_outside_root, report=report)


def check_sample_submission(path) -> tuple[str, ...]:
    """Check that ``sample_submission.csv`` has the header fname + the 80 classes in class order.

    Returns the class names.  The first differing column is reported with its number.
    """
    path = Path(path)
    lines = read_lines(path)
    want = ("fname",) + CLASSES
    if not lines:
        raise DataFormatError(path, "empty file", hint="expected header fname," + ",".join(CLASSES[:2]) + ",...")
    line_no, text = lines[0]
    found = tuple(f.strip() for f in text.split(","))
    if found == want:
        read_table(path, want, delimiter=",", allow_empty=True)  # row field counts
        return CLASSES
    if len(found) == 1 and "\t" in text:
        raise DataFormatError(path, "header is TAB-separated, expected comma-separated", line=line_no)
    for i, (f, w) in enumerate(zip(found, want), start=1):
        if f != w:
            raise DataFormatError(path, f"column {i} is {f!r}, expected {w!r}", line=line_no,
                                  hint="the 80 classes must follow the DCASE 2019 Task 2 order")
    raise DataFormatError(path, f"header has {len(found)} columns, expected {len(want)} "
                          "(fname + 80 classes)", line=line_no)


def multi_hot(labels: Sequence[str]) -> np.ndarray:
    """float32 (80,) target vector for a clip's labels."""
    y = np.zeros(len(CLASSES), np.float32)
    for lab in labels:
        y[CLASSES.index(lab)] = 1.0
    return y


def kfold_indices(n: int, n_splits: int = 5, seed: int = 42, fold: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices exactly as ``sklearn.model_selection.KFold(n_splits,
    shuffle=True, random_state=seed)``'s `fold`-th split (both sorted ascending)."""
    if not 2 <= n_splits <= n:
        raise ValueError(f"n_splits must be in [2, {n}], got {n_splits}")
    if not 0 <= fold < n_splits:
        raise ValueError(f"fold must be in [0, {n_splits - 1}], got {fold}")
    order = np.arange(n)
    np.random.RandomState(seed).shuffle(order)  # the legacy generator, as scikit-learn uses
    sizes = np.full(n_splits, n // n_splits, dtype=int)
    sizes[: n % n_splits] += 1
    start = int(sizes[:fold].sum())
    mask = np.zeros(n, bool)
    mask[order[start:start + sizes[fold]]] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def kfold_split(records: Sequence[T], n_splits: int = 5, seed: int = 42, fold: int = 0
                ) -> tuple[list[T], list[T]]:
    """Split records like ``KFold(n_splits, shuffle=True, random_state=seed)``, fold `fold`.

    For the 4,970 curated clips in csv order this gives 3,976 training and 994 validation clips.
    Records combined from several lists must not name one file twice: a clip in both parts
    raises one DataFormatError naming both lines (:func:`~.common.check_disjoint`).
    """
    require_nonempty(records, "kfold_split", "records")
    tr, va = kfold_indices(len(records), n_splits, seed, fold)
    train, validation = [records[i] for i in tr], [records[i] for i in va]
    check_disjoint(train, validation, names=("training", "validation"))
    return train, validation
