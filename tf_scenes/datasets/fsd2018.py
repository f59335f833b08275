"""FSDKaggle2018 (DCASE 2018 Task 2): single-label event clips used as weak-SED event sources.

On disk (the dataset's page, https://zenodo.org/record/2552860)::

    audio_train/*.wav   44.1 kHz, 16-bit mono
    train.csv           fname,label,manually_verified    (comma-separated, verified is 0 or 1)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataFormatError
from .common import (LoadReport, RowPaths, apply_missing, check_label, check_missing_mode, check_unique,
                     outside_spelling, read_table, require_nonempty)

CLASSES = (
    "Acoustic_guitar", "Applause", "Bark", "Bass_drum", "Burping_or_eructation", "Bus", "Cello",
    "Chime", "Clarinet", "Computer_keyboard", "Cough", "Cowbell", "Double_bass",
    "Drawer_open_or_close", "Electric_piano", "Fart", "Finger_snapping", "Fireworks", "Flute",
    "Glockenspiel", "Gong", "Gunshot_or_gunfire", "Harmonica", "Hi-hat", "Keys_jangling", "Knock",
    "Laughter", "Meow", "Microwave_oven", "Oboe", "Saxophone", "Scissors", "Shatter", "Snare_drum",
    "Squeak", "Tambourine", "Tearing", "Telephone", "Trumpet", "Violin_or_fiddle", "Writing",
)
COLUMNS = ("fname", "label", "manually_verified")


@dataclass(frozen=True)
class EventRecord:
    """One FSDKaggle2018 clip; source and line: the csv and 1-based line that listed it (not compared)."""

    path: Path
    fname: str
    label: str
    verified: bool
    source: Path | None = field(default=None, compare=False, repr=False)
    line: int | None = field(default=None, compare=False, repr=False)


def read_train_csv(path, audio_dir=None, *, verified_only: bool = True, check_files: bool = False,
                   missing: str = "error", allow_outside_root: bool = False,
                   report: LoadReport | None = None) -> list[EventRecord]:
    """Read ``train.csv``; `audio_dir` defaults to ``audio_train/`` beside it.

    The csv's folder is the dataset root; `missing`, `allow_outside_root` and `report` are those
    of :func:`tf_scenes.datasets.fsd2019.read_tag_csv`.
    """
    path = Path(path)
    check_missing_mode(missing)
    audio_dir = Path(audio_dir) if audio_dir is not None else path.parent / "audio_train"
    _, rows = read_table(path, COLUMNS, delimiter=",", quoted=True)
    check_unique(rows, key=lambda r: r.fields[0], line=lambda r: r.line, path=path, what="fname")
    paths = RowPaths(path.parent, path, allow_outside_root=allow_outside_root)
    records = []
    for row in rows:
        fname, label, ver = row.fields
        wav = paths(audio_dir, fname, row.line)
        if not fname.endswith(".wav") or ("/" in fname and outside_spelling(fname) is None):
            raise DataFormatError(path, f"bad fname {fname!r}", line=row.line,
                                  hint="expected a bare wav name such as 00044347.wav")
        check_label(label, CLASSES, path, row.line, what="label")
        if ver not in ("0", "1"):
            raise DataFormatError(path, f"manually_verified must be 0 or 1, found {ver!r}", line=row.line)
        if verified_only and ver == "0":
            continue
        records.append(EventRecord(path=wav, fname=fname, label=label, verified=ver == "1", source=path,
                                   line=row.line))
    require_nonempty(records, path, "verified clips" if verified_only else "clips")
    if check_files:
        records = apply_missing(records, path, missing=missing, report=report, name=lambda r: r.fname)
    return records


def load(root, verified_only: bool = True, *, check_files: bool = True, missing: str = "error",
         allow_outside_root: bool = False, report: LoadReport | None = None) -> list[EventRecord]:
    """Load ``root/train.csv`` with audio in ``root/audio_train/`` (arguments: :func:`read_train_csv`)."""
    root = Path(root)
    return read_train_csv(root / "train.csv", root / "audio_train", verified_only=verified_only,
                          check_files=check_files, missing=missing, allow_outside_root=allow_outside_root,
                          report=report)
