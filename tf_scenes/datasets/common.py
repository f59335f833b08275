"""Shared helpers for the dataset readers: tolerant csv reading, strict validation, clear errors.

Every reader in :mod:`tf_scenes.datasets` goes through :func:`read_table`, which

* accepts LF, CRLF (``fold1_evaluate.csv`` of TAU 2020 is CRLF in the wild), a missing final
  newline and a UTF-8 byte-order mark;
* checks the header against the expected column names and tells a wrong delimiter (a comma csv
  where TAB is required, and the reverse) apart from missing or extra columns;
* checks the field count of every row and reports the 1-based line number.

The other helpers turn the usual mistakes (duplicate rows, unknown labels, files listed but
missing, an empty list) into one :class:`~tf_scenes.errors.DataFormatError` that names the file,
the line and the fix.  Nothing here imports TensorFlow.

Listed files must lie inside the dataset root (:class:`RowPaths`): an absolute path, a ``..``
segment or a symlink whose target leaves the root is refused unless the caller opts in with
``allow_outside_root=True`` (audio kept on another disk); two spellings of one file
(``audio/./x.wav`` beside ``audio/x.wav``, or a symlink to a listed file) are a duplicate.
:func:`check_disjoint` refuses a clip listed for both training and evaluation.  Files listed but
missing raise one error, or with ``missing="skip"`` are dropped, logged in one line and recorded
in a :class:`LoadReport` (:func:`apply_missing`).
"""

from __future__ import annotations

import csv
import difflib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Sequence, TypeVar

from ..errors import DataFormatError

T = TypeVar("T")

log = logging.getLogger(__name__)

MISSING_MODES = ("error", "skip")
OUTSIDE_HINT = "pass allow_outside_root=True to use audio kept outside the dataset root on purpose"

# Delimiters we recognise when guessing what a malformed file was written with.
_DELIMITER_NAMES = {"\t": "TAB", ",": "comma", ";": "semicolon", " ": "space", "|": "pipe"}

# How many missing files / bad names an error message lists before "... and N more".
MAX_LISTED = 5


@dataclass(frozen=True)
class Row:
    """One data row of a delimited file: its 1-based line number and its fields."""

    line: int
    fields: tuple[str, ...]


def delimiter_name(delimiter: str) -> str:
    return _DELIMITER_NAMES.get(delimiter, repr(delimiter))


def read_lines(path) -> list[tuple[int, str]]:
    """Read a text file as (1-based line number, text) pairs.

    Accepts a UTF-8 BOM, LF / CRLF / CR line endings and a missing final newline.  Blank lines
    (empty or whitespace only) are dropped but do not shift the numbering.

    Raises:
      DataFormatError: the file is missing, is a directory, or is not UTF-8 text.
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(path, "file not found", hint="check the dataset root folder")
    if path.is_dir():
        raise DataFormatError(path, "is a directory, expected a csv file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataFormatError(path, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})",
                              line=line, hint="re-save the file as UTF-8") from e
    # str.splitlines also splits on \x0b, \x1c... which never belong in these files; split on
    # the three real line endings only.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [(i, s) for i, s in enumerate(text.split("\n"), start=1) if s.strip()]


def _split(line: str, delimiter: str, quoted: bool) -> tuple[str, ...]:
    if quoted:
        return tuple(next(csv.reader([line], delimiter=delimiter, quotechar='"', skipinitialspace=False)))
    return tuple(line.split(delimiter))


def _guess_delimiter(line: str, expected: str) -> str | None:
    """A delimiter other than `expected` that the line seems to use, or None."""
    for d in ("\t", ",", ";", "|"):
        if d != expected and d in line:
            return d
    return None


def read_table(path, columns: Sequence[str] | Sequence[Sequence[str]], *, delimiter: str = "\t",
               quoted: bool = False, header: bool = True, allow_empty: bool = False
               ) -> tuple[tuple[str, ...], list[Row]]:
    """Read a delimited text file with a known header.

    Args:
      path: the csv file.
      columns: the expected header, or several accepted headers (e.g. the three TAU csv kinds).
        With ``header=False`` the expected column count is ``len(columns)`` and no header line
        is read.
      delimiter: field separator ("\\t" for TAU, "," for FSDKaggle / ESC-50).
      quoted: parse double-quoted fields (FSDKaggle2019 multi-labels: ``x.wav,"Bark,Slam"``).
      header: whether the first non-blank line is a header.
      allow_empty: accept a file with no data rows (otherwise DataFormatError).

    Returns:
      (the header actually found, list of :class:`Row`), every row having exactly as many
      fields as the header.
    """
    path = Path(path)
    accepted = [tuple(columns)] if columns and isinstance(columns[0], str) else [tuple(c) for c in columns]
    lines = read_lines(path)
    if not lines:
        raise DataFormatError(path, "empty file", hint="expected a header line: "
                              + delimiter_name(delimiter) + "-separated " + ", ".join(accepted[0]))
    if header:
        head_line, head_text = lines[0]
        found = tuple(f.strip() for f in _split(head_text, delimiter, quoted))
        if found not in accepted:
            _header_error(path, head_line, head_text, found, accepted, delimiter, quoted)
        body = lines[1:]
    else:
        found = accepted[0]
        body = lines
    n = len(found)
    rows: list[Row] = []
    for line_no, text in body:
        fields = _split(text, delimiter, quoted)
        if len(fields) != n:
            other = _guess_delimiter(text, delimiter)
            hint = None
            if len(fields) == 1 and other is not None:
                hint = (f"this row seems {delimiter_name(other)}-separated; the file must be "
                        f"{delimiter_name(delimiter)}-separated")
            elif len(fields) > n and delimiter == ",":
                hint = 'a field contains a comma; quote it ("Bark,Slam")'
            raise DataFormatError(
                path, f"expected {n} {delimiter_name(delimiter)}-separated fields "
                f"({', '.join(found)}), found {len(fields)}: {text[:120]!r}", line=line_no, hint=hint)
        rows.append(Row(line_no, tuple(f.strip() for f in fields)))
    if not rows and not allow_empty:
        raise DataFormatError(path, "no data rows (only a header)" if header else "no data rows",
                              hint="the list is empty; was the file truncated?")
    return found, rows


def _header_error(path, line, text, found, accepted, delimiter, quoted):
    want = accepted[0]
    # Wrong delimiter: re-splitting with another delimiter yields an accepted header.
    for d in ("\t", ",", ";", "|", " "):
        if d == delimiter:
            continue
        alt = tuple(f.strip() for f in _split(text, d, quoted and d == ","))
        if alt in accepted or (len(alt) > 1 and set(alt) & set(want) and len(found) == 1):
            raise DataFormatError(
                path, f"header {text.strip()!r} is {delimiter_name(d)}-separated, "
                f"expected {delimiter_name(delimiter)}-separated columns {', '.join(want)}",
                line=line, hint=f"convert the file to {delimiter_name(delimiter)}-separated values")
    best = max(accepted, key=lambda a: len(set(a) & set(found)))
    missing = [c for c in best if c not in found]
    extra = [c for c in found if c not in best]
    parts = []
    if missing:
        parts.append("missing column(s) " + ", ".join(missing))
    if extra:
        parts.append("unexpected column(s) " + ", ".join(repr(c) for c in extra))
    if not parts:
        parts.append("columns in the wrong order")
    expected_txt = " or ".join("[" + ", ".join(a) + "]" for a in accepted)
    raise DataFormatError(path, f"bad header {list(found)}: " + "; ".join(parts), line=line,
                          hint=f"expected {delimiter_name(delimiter)}-separated header {expected_txt}")


def check_label(label: str, allowed: Sequence[str], path, line: int | None, what: str = "label",
                hint: str | None = None) -> str:
    """Return `label` if it is in `allowed`, else raise naming the label, file, line and a close match."""
    if label in allowed:
        return label
    close = difflib.get_close_matches(label, list(allowed), n=1, cutoff=0.6)
    if close:
        h = f"did you mean {close[0]!r}?"
    else:
        h = "known: " + ", ".join(allowed[:12]) + (", ..." if len(allowed) > 12 else "")
    if hint:
        h = f"{h}; {hint}"
    raise DataFormatError(path, f"unknown {what} {label!r}", line=line, hint=h)


def check_unique(items: Iterable[T], key: Callable[[T], Hashable], line: Callable[[T], int], path,
                 what: str = "row", hint: str = "each clip must be listed once") -> None:
    """Raise on the first duplicate key, naming both lines."""
    seen: dict = {}
    for it in items:
        k = key(it)
        if k in seen:
            raise DataFormatError(path, f"duplicate {what} {k!r} (first on line {seen[k]})",
                                  line=line(it), hint=hint)
        seen[k] = line(it)


_MISSING_HINT = ("is the root folder right and the audio fully extracted? missing='skip' drops the "
                 "missing files and reports them; check_files=False reads the list without audio")


def _shown(items: Sequence[str]) -> str:
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def check_files_exist(paths: Sequence[Path], listed_in, what: str = "audio file") -> None:
    """Raise one error listing the first few missing files and how many are missing."""
    missing = [p for p in paths if not Path(p).is_file()]
    if not missing:
        return
    raise DataFormatError(
        listed_in, f"{len(missing)} of {len(paths)} listed {what}s are missing: "
        f"{_shown([str(p) for p in missing])}", hint=_MISSING_HINT)


# ----------------------------------------------------------------------------------------------
# listed files: inside the root, listed once, present (or skipped and reported)


def check_missing_mode(missing: str) -> None:
    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {', '.join(map(repr, MISSING_MODES))}, got {missing!r}")


@dataclass(frozen=True)
class SkippedFile:
    """A file that a list names but that is not on disk, dropped by ``missing="skip"``."""

    name: str              # as listed (``audio/x.wav``, ``x.wav``)
    path: str              # the path that was looked for
    listed_in: str         # the list file
    line: int | None = None


@dataclass
class LoadReport:
    """What the readers dropped, for a study to record.

    Pass one to any ``load(..., missing="skip", report=report)`` (several loads may share it);
    every listed file found missing is appended to :attr:`skipped`, in list order::

        report = LoadReport()
        train = tau2020.load(root, "train", missing="skip", report=report)
        json.dump(report.to_dict(), f)   # {"n_skipped": 2, "skipped": [{"name": ..., ...}]}
    """

    skipped: list[SkippedFile] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"n_skipped": len(self.skipped),
                "skipped": [{"name": s.name, "path": s.path, "listed_in": s.listed_in, "line": s.line}
                            for s in self.skipped]}


def apply_missing(records: Sequence[T], listed_in, *, missing: str = "error",
                  report: LoadReport | None = None, name: Callable[[T], str] = lambda r: r.path.name,
                  path: Callable[[T], Path] = lambda r: r.path,
                  line: Callable[[T], int | None] = lambda r: getattr(r, "line", None),
                  source: Callable[[T], Any] | None = None, what: str = "audio file") -> list[T]:
    """The records whose file exists; the others raise (``missing="error"``) or are dropped.

    ``"error"``: one DataFormatError naming the list, the first few missing files and the count.
    ``"skip"``: one warning line (count, first few names, what was done), each dropped file
    appended to `report` (with ``source(record)`` as its list file when given, else
    `listed_in`); a list whose files are all missing still raises (wrong root).
    """
    check_missing_mode(missing)
    absent = [r for r in records if not Path(path(r)).is_file()]
    if not absent:
        return list(records)
    if missing == "error" or len(absent) == len(records):
        problem = (f"all {len(records)} listed {what}s are missing" if missing == "skip"
                   else f"{len(absent)} of {len(records)} listed {what}s are missing")
        raise DataFormatError(listed_in, f"{problem}: {_shown([str(path(r)) for r in absent])}",
                              hint=_MISSING_HINT)
    log.warning("%s: skipped %d of %d listed %ss that are missing (missing='skip'): %s",
                listed_in, len(absent), len(records), what, _shown([name(r) for r in absent]))
    if report is not None:
        report.skipped.extend(SkippedFile(name(r), str(path(r)), str(listed_in if source is None else source(r)),
                                          line(r)) for r in absent)
    gone = {id(r) for r in absent}
    return [r for r in records if id(r) not in gone]


def real_path(path, folders: dict[str, str] | None = None) -> str:
    """``os.path.realpath(path)`` of a file, with its folder's real path cached in `folders`:
    one lstat per file instead of a walk over every component (4x faster on the 13,965 rows of
    TAU's fold1_train.csv)."""
    text = str(path)
    if folders is None or os.path.islink(text):
        return os.path.realpath(text)
    parent, base = os.path.split(text)
    real = folders.get(parent)
    if real is None:
        real = folders[parent] = os.path.realpath(parent)
    return os.path.join(real, base)


def is_inside(real: str, real_root: str) -> bool:
    """Whether real path `real` is `real_root` or below it (both from :func:`real_path`)."""
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


# Windows spellings count too: they are never right in these lists.
_ABSOLUTE = re.compile(r"^(?:[/\\]|[A-Za-z]:)")
_DOTDOT = re.compile(r"(?:^|[/\\])\.\.(?:[/\\]|$)")


def outside_spelling(name: str) -> str | None:
    """``"absolute path"`` or ``"'..' segment"`` when a listed name leaves its folder by its
    spelling alone, else None."""
    if _ABSOLUTE.match(name):
        return "absolute path"
    if _DOTDOT.search(name):
        return "'..' segment"
    return None


class RowPaths:
    """Turns the names listed in a list file into paths inside a dataset root.

    Each call refuses (DataFormatError naming the list file and line) an absolute name, a
    ``..`` segment and a path whose real location (symlinks resolved) is outside `root`, unless
    ``allow_outside_root``; and, always, a name that reaches a file already listed under another
    spelling (``audio/./x.wav`` after ``audio/x.wav``, a symlink to a listed file), naming both
    lines.  Exact repeats are left to :func:`check_unique`, which says "duplicate".
    """

    def __init__(self, root, source, *, allow_outside_root: bool = False):
        self.root = Path(root)
        self.real_root = os.path.realpath(self.root)
        self.source = source
        self.allow_outside_root = allow_outside_root
        self._seen: dict[str, tuple[Any, int | None, str]] = {}
        self._real_dirs: dict[str, str] = {}

    def __call__(self, base, name: str, line: int | None, source=None) -> Path:
        """`base` / `name` (base: the folder the names are relative to, inside the root)."""
        source = self.source if source is None else source
        if "\x00" in name:  # no file system accepts it (os.path.realpath would raise ValueError)
            raise DataFormatError(source, f"NUL character in name {name!r}", line=line)
        why = outside_spelling(name)
        if why is not None and not self.allow_outside_root:
            raise DataFormatError(source, f"{why} {name!r}: listed files must lie inside the dataset root "
                                  f"{self.root}", line=line, hint=OUTSIDE_HINT)
        text = os.path.join(base, name)  # str work: Path objects cost 3x more on 14k rows
        real = real_path(text, self._real_dirs)
        if not self.allow_outside_root and not is_inside(real, self.real_root):
            raise DataFormatError(source, f"{name!r} resolves to {real}, outside the dataset root "
                                  f"{self.real_root}", line=line,
                                  hint="a symlink or folder leads out of it; " + OUTSIDE_HINT)
        first = self._seen.get(real)
        if first is not None:
            first_source, first_line, first_name = first
            if first_line is None:
                where = "" if first_source == source else f" in {first_source}"
            else:
                where = f" (line {first_line})" if first_source == source else f" ({first_source}:{first_line})"
            raise DataFormatError(source, f"{name!r} is the same file as {first_name!r}{where}: "
                                  f"both resolve to {real}", line=line, hint="each clip must be listed once")
        self._seen[real] = (source, line, name)
        return Path(text)


def clip_key(record, folders: dict[str, str] | None = None) -> Hashable:
    """Identity of a clip for :func:`check_disjoint`: the real path of ``record.path`` (symlinks
    and ``./`` resolved), or the item itself when it has no ``path``."""
    path = getattr(record, "path", None)
    if path is None:
        return record
    return real_path(path, folders)


def _where(record) -> tuple[Any, int | None]:
    source = getattr(record, "source", None) or getattr(record, "meta_path", None)
    return source, getattr(record, "line", None)


def _label(record) -> str:
    for attr in ("filename", "fname", "name"):
        value = getattr(record, attr, None)
        if isinstance(value, str):
            return value
    path = getattr(record, "path", None)
    return str(path) if path is not None else str(record)


def check_disjoint(train: Iterable, evaluate: Iterable, *, key: Callable[[Any], Hashable] = clip_key,
                   names: tuple[str, str] = ("training", "evaluation")) -> None:
    """Raise one DataFormatError when a clip is in both lists (a clip trained on is never evaluated on).

    The message names the first shared clip with its file and line in each list and the count,
    e.g. ``fold1_train.csv:12: 'audio/x.wav' is in the training list and also in the evaluation list
    fold1_evaluate.csv:40 ('audio/x.wav')``.
    Records from the dataset readers carry their list file and line; `key` defaults to the real
    path of ``record.path`` so that two spellings of one file are one clip.
    """
    folders: dict[str, str] = {}
    key = key if key is not clip_key else (lambda r: clip_key(r, folders))
    first: dict[Hashable, Any] = {}
    for r in train:
        first.setdefault(key(r), r)
    both = [(first[k], r) for r in evaluate if (k := key(r)) in first]
    if not both:
        return
    a, b = both[0]
    (src_a, line_a), (src_b, line_b) = _where(a), _where(b)
    in_b = f"{src_b}:{line_b}" if src_b is not None and line_b is not None else (src_b or f"the {names[1]} list")
    count = f"; {len(both)} clips are in both lists" if len(both) > 1 else ""
    raise DataFormatError(src_a if src_a is not None else f"<{names[0]} list>",
                          f"{_label(a)!r} is in the {names[0]} list and also in the {names[1]} list "
                          f"{in_b} ({_label(b)!r}){count}", line=line_a,
                          hint=f"a clip used for {names[0]} must not be used for {names[1]}; fix the split lists")


def require_nonempty(records: Sequence[T], source, what: str = "clips") -> Sequence[T]:
    if len(records) == 0:
        raise DataFormatError(source, f"no {what} found", hint="check the root folder and the selection")
    return records


def list_errors(problems: Sequence[str], total: int, source, what: str, hint: str | None = None) -> None:
    """Raise one DataFormatError summarising several problems (first few + count)."""
    if not problems:
        return
    shown = "; ".join(problems[:MAX_LISTED])
    more = f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    raise DataFormatError(source, f"{len(problems)} of {total} {what}: {shown}{more}", hint=hint)


def seeded_folds(keys: Sequence[str], groups: Sequence[str], n_folds: int = 5, seed: int = 0) -> list[int]:
    """Deterministic class-balanced fold ids 1..n_folds.

    Within each group (class) the keys are sorted, shuffled with ``np.random.default_rng(seed)``
    and dealt round-robin, so every fold gets ~1/n_folds of every class.
    """
    import numpy as np

    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    rng = np.random.default_rng(seed)
    folds = [0] * len(keys)
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    offset = 0
    for g in sorted(by_group):
        idx = sorted(by_group[g], key=lambda i: keys[i])
        order = rng.permutation(len(idx))
        for rank, j in enumerate(order):
            folds[idx[j]] = (rank + offset) % n_folds + 1
        offset += len(idx)  # rotate so small classes do not all start in fold 1
    return folds
