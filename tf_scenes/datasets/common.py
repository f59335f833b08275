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
"""

from __future__ import annotations

import csv
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable, Iterable, Sequence, TypeVar

from ..errors import DataFormatError

T = TypeVar("T")

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


def check_files_exist(paths: Sequence[Path], listed_in, what: str = "audio file") -> None:
    """Raise one error listing the first few missing files and how many are missing."""
    missing = [p for p in paths if not Path(p).is_file()]
    if not missing:
        return
    shown = ", ".join(str(p) for p in missing[:MAX_LISTED])
    more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
    raise DataFormatError(
        listed_in, f"{len(missing)} of {len(paths)} listed {what}s are missing: {shown}{more}",
        hint="is the root folder right and the audio fully extracted? "
             "(pass check_files=False to read the list without audio)")


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
