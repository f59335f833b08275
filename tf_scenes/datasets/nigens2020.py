"""TAU-NIGENS Spatial Sound Events 2020, development set (DCASE 2020 Task 3).

On disk (the dataset's README, https://zenodo.org/record/4064792)::

    foa_dev/      600 wav, 4 channels (first-order ambisonics), 24 kHz, 16-bit, 60 s
    mic_dev/      600 wav, 4 channels (tetrahedral mic array)
    metadata_dev/ 600 csv, no header: frame (0-599, 100 ms), class (0-13), track, azimuth, elevation

File names: ``fold{1-6}_room{r}_mix{NNN}_ov{1|2}`` (+ .wav / .csv).  Overlapping events repeat a
frame.  DcaseNet (Jung et al. 2021) uses the SED part: :func:`activity_matrix` turns a metadata
file into the (600, 14) frame-level target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataFormatError
from .common import LoadReport, RowPaths, apply_missing, check_missing_mode, list_errors, read_lines

CLASSES = ("alarm", "baby", "crash", "dog", "engine", "female_scream", "female_speech", "fire",
           "footsteps", "knock", "male_scream", "male_speech", "phone", "piano")
FORMATS = ("mic", "foa")
FOLDS = (1, 2, 3, 4, 5, 6)
N_FRAMES = 600          # 60 s at 100 ms label resolution
FRAME_SECONDS = 0.1
SAMPLE_RATE = 24000
N_CHANNELS = 4
METADATA_DIR = "metadata_dev"
COLUMNS = ("frame", "class", "track", "azimuth", "elevation")
# Accepted ranges per column (inclusive).  The dev set uses azimuth [-180, 180) and elevation
# [-45, 45]; we accept the whole sphere.
_RANGES = {"frame": (0, N_FRAMES - 1), "class": (0, len(CLASSES) - 1), "track": (0, 99),
           "azimuth": (-180, 180), "elevation": (-90, 90)}

_NAME_RE = re.compile(r"^fold(?P<fold>[1-6])_room(?P<room>\d+)_mix(?P<mix>\d{3})_ov(?P<ov>[12])$")


@dataclass(frozen=True)
class SedRecord:
    """One TAU-NIGENS 2020 recording and its metadata file."""

    path: Path
    meta_path: Path
    fold: int
    room: int
    mix: int
    ov: int
    fmt: str


def parse_nigens_name(name: str, *, source=None) -> dict:
    """Parse ``fold1_room2_mix031_ov2`` (with or without a folder / .wav / .csv suffix)."""
    stem = Path(name).name
    for suffix in (".wav", ".csv"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    m = _NAME_RE.match(stem)
    if m is None:
        raise DataFormatError(source if source is not None else name, f"bad TAU-NIGENS file name {name!r}",
                              hint="expected fold{1-6}_room{r}_mix{NNN}_ov{1|2}.wav/.csv")
    return {"fold": int(m["fold"]), "room": int(m["room"]), "mix": int(m["mix"]), "ov": int(m["ov"]),
            "stem": stem}


def read_metadata(path, n_frames: int = N_FRAMES) -> np.ndarray:
    """Read one metadata csv into an int64 array (rows, 5): frame, class, track, azimuth, elevation.

    No header.  Every value must be an integer in range (frame < n_frames, class 0-13); errors
    name the file and line.  An empty file gives a (0, 5) array (a mixture without events).
    """
    path = Path(path)
    ranges = dict(_RANGES, frame=(0, n_frames - 1))
    out = []
    for line_no, text in read_lines(path):
        fields = [f.strip() for f in text.split(",")]
        if len(fields) != len(COLUMNS):
            hint = "the file must be comma-separated" if len(fields) == 1 and ("\t" in text or ";" in text) else None
            raise DataFormatError(path, f"expected {len(COLUMNS)} comma-separated integers "
                                  f"({', '.join(COLUMNS)}), found {len(fields)}: {text[:80]!r}",
                                  line=line_no, hint=hint)
        row = []
        for name, f in zip(COLUMNS, fields):
            try:
                v = int(f)
            except ValueError:
                try:
                    fv = float(f)
                except ValueError:
                    fv = None
                if fv is None or not fv.is_integer():
                    raise DataFormatError(path, f"{name} {f!r} is not an integer", line=line_no) from None
                v = int(fv)
            lo, hi = ranges[name]
            if not lo <= v <= hi:
                extra = f" ({CLASSES[0]}..{CLASSES[-1]})" if name == "class" else ""
                raise DataFormatError(path, f"{name} {v} out of range [{lo}, {hi}]{extra}", line=line_no)
            row.append(v)
        out.append(row)
    return np.asarray(out, dtype=np.int64).reshape(-1, len(COLUMNS))


def activity_matrix(rows: np.ndarray, n_frames: int = N_FRAMES, n_classes: int = len(CLASSES)) -> np.ndarray:
    """Frame-level multi-label targets: float32 (n_frames, n_classes), 1 where a class is active."""
    rows = np.asarray(rows)
    y = np.zeros((n_frames, n_classes), np.float32)
    if rows.size:
        frames, classes = rows[:, 0], rows[:, 1]
        if frames.min() < 0 or frames.max() >= n_frames or classes.min() < 0 or classes.max() >= n_classes:
            raise ValueError(f"rows outside ({n_frames} frames, {n_classes} classes)")
        y[frames, classes] = 1.0
    return y


def load(root, folds=FOLDS, fmt: str = "mic", *, check_files: bool = True, missing: str = "error",
         allow_outside_root: bool = False, report: LoadReport | None = None) -> list[SedRecord]:
    """Pair ``{fmt}_dev/*.wav`` with ``metadata_dev/*.csv`` by name, for the selected folds.

    The metadata folder is the index.  With ``check_files`` every metadata file needs its wav
    and every wav its metadata; the problems are listed in one error.  With ``missing="skip"``
    recordings whose wav is missing are dropped instead (one log line, appended to `report`); a
    wav without metadata is still an error.  A metadata file or wav that is a symlink leading
    out of `root` is refused unless ``allow_outside_root``, and so are two names of one file.
    """
    check_missing_mode(missing)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    bad = [f for f in folds if f not in FOLDS]
    if bad:
        raise ValueError(f"unknown fold(s) {bad}; folds are 1..6")
    root = Path(root)
    meta_dir, audio_dir = root / METADATA_DIR, root / f"{fmt}_dev"
    if not meta_dir.is_dir():
        raise DataFormatError(meta_dir, "metadata folder not found",
                              hint="root must hold metadata_dev/ and mic_dev/ or foa_dev/")
    # Names come from the folder listing, so only symlinks can lead out of the root or alias a file.
    metas_in = RowPaths(root, root, allow_outside_root=allow_outside_root)
    wavs_in = RowPaths(root, root, allow_outside_root=allow_outside_root)
    records = []
    for csv_path in sorted(meta_dir.glob("*.csv")):
        p = parse_nigens_name(csv_path.name, source=csv_path)
        if p["fold"] in folds:
            metas_in(root, f"{METADATA_DIR}/{csv_path.name}", None)
            wav = wavs_in(root, f"{fmt}_dev/{p['stem']}.wav", None)
            records.append(SedRecord(path=wav, meta_path=csv_path, fold=p["fold"],
                                     room=p["room"], mix=p["mix"], ov=p["ov"], fmt=fmt))
    if check_files:
        if not audio_dir.is_dir():
            raise DataFormatError(audio_dir, "audio folder not found", hint=f"expected {fmt}_dev/ beside metadata_dev/")
        wavs = {w.stem for w in audio_dir.glob("*.wav")}
        metas = {c.stem for c in meta_dir.glob("*.csv")}
        unlisted = [f"{s}.wav has no metadata" for s in sorted(wavs - metas)
                    if parse_nigens_name(s, source=audio_dir)["fold"] in folds]
        absent = [f"{r.meta_path.name} has no {fmt}_dev wav" for r in records if r.path.stem not in wavs]
        list_errors(unlisted + (absent if missing == "error" else []), len(records), root,
                    "recordings are unpaired", hint="every recording needs a wav and a metadata csv with the same name")
        if missing == "skip":
            records = apply_missing(records, meta_dir, missing=missing, report=report, name=lambda r: r.path.name,
                                    source=lambda r: r.meta_path, what=f"{fmt}_dev wav")
    if not records:
        raise DataFormatError(meta_dir, f"no metadata csv files for folds {tuple(folds)}",
                              hint="check the root folder")
    return records
