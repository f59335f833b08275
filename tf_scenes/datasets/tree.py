"""Parse the output of the Unix ``tree`` command into relative paths.

Used to check the readers' name parsing on real file listings (tests/data/reference/tree_*.txt.gz)
without the audio.  The listing looks like::

    dcase2020_asc
    ├── audio
    │   ├── airport-barcelona-0-0-a.wav
    │   └── tram-vienna-285-8655-s6.wav
    └── meta.csv

    2 directories, 23049 files

Indentation units are 4 characters (``│   ``, ``    ``, or ``│`` + two no-break spaces + space).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from ..errors import DataFormatError

_ENTRY_RE = re.compile(r"^(?P<indent>(?:[│|\s\u00a0]{4})*)(?:├──|└──|\|--|`--)[\s\u00a0](?P<name>.+)$")
_SUMMARY_RE = re.compile(r"^\d+ director(?:y|ies)(?:, \d+ files?)?$")


def parse_tree(text: str, source="<tree>") -> list[str]:
    """Relative paths (``audio/x.wav``) of every entry of a ``tree`` listing, in listing order.

    The root line and the summary line are skipped; ``name -> target`` symlinks keep the name.
    Directories appear as entries too (``audio``); use :func:`tree_files` for files with a suffix.
    """
    stack: list[str] = []
    out: list[str] = []
    seen_root = False
    for line_no, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        line = raw.rstrip()
        if not line.strip() or _SUMMARY_RE.match(line.strip()):
            continue
        m = _ENTRY_RE.match(line)
        if m is None:
            if not seen_root and not stack:
                seen_root = True  # the root folder's own name
                continue
            raise DataFormatError(source, f"not a tree entry: {line[:80]!r}", line=line_no)
        depth = len(m["indent"]) // 4
        if depth > len(stack):
            raise DataFormatError(source, f"indentation jumps to depth {depth} under depth {len(stack)}",
                                  line=line_no)
        name = m["name"].split(" -> ", 1)[0]
        del stack[depth:]
        stack.append(name)
        out.append("/".join(stack))
    return out


def read_tree(path) -> list[str]:
    """:func:`parse_tree` on a file, gzip-compressed when its name ends in ``.gz``."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DataFormatError(path, f"not a readable gzip file ({e})") from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataFormatError(path, f"not UTF-8 text (offset {e.start})") from e
    return parse_tree(text, source=path)


def tree_files(paths_or_file, under: str | None = None, suffix: str | None = None) -> list[str]:
    """Entries of a parsed listing (or a listing file) directly inside folder `under` with `suffix`.

    ``tree_files(listing, under="audio", suffix=".wav")`` -> ``["audio/a.wav", ...]``.
    """
    paths = read_tree(paths_or_file) if isinstance(paths_or_file, (str, Path)) else list(paths_or_file)
    out = []
    for p in paths:
        parent, _, name = p.rpartition("/")
        if under is not None and parent != under.strip("/"):
            continue
        if suffix is not None and not name.endswith(suffix):
            continue
        out.append(p)
    return out
