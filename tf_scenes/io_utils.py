"""Atomic file writes and output-directory checks.

Every file that a later step may read back as valid (cached features, generated audio, metrics,
checkpoints' side files) is written to a temporary name in the same directory and renamed into
place, so a crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import OutputDirError

# Refuse to start long work when less than this is free on the output disk.
MIN_FREE_BYTES = 200 * 1024 * 1024


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path next to `path`; rename it to `path` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp",
                               dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the final file the usual mode
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path, obj, indent: int = 2) -> Path:
    """Write `obj` as strict JSON (see :func:`dumps_json`: NaN / Inf become null, recorded under "nulls")."""
    return atomic_write_text(path, dumps_json(obj, indent=indent) + "\n")


def atomic_save_npy(path, array) -> Path:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(array), allow_pickle=False)
    return Path(path)


# Strict JSON --------------------------------------------------------------------------------------
#
# JSON has no NaN or Infinity; Python's json module writes them as bare literals that strict
# parsers (browsers, jq, most languages) reject. Every JSON file and line tf-scenes writes goes
# through dumps_json: a non-finite float becomes null and, in an object, a top-level "nulls" entry
# says what null means and lists each one by JSON pointer with the value it stood for, so that
# loads_json reads the original values back.

NULLS_KEY = "nulls"
NULLS_NOTE = ("null marks a value that is undefined: it was computed as NaN or +-Infinity, which JSON cannot "
              "hold (for example the recall or AP of a class without examples in the evaluated set, or an "
              "AUC over a single class). 'values' lists each one by JSON pointer (RFC 6901) with the value "
              "it stood for")
_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _pointer_part(key) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def finite_json(obj):
    """(copy of `obj` as plain JSON data with every non-finite float replaced by None,
    {JSON pointer: "NaN" | "Infinity" | "-Infinity"} of the replaced values).

    numpy scalars and arrays become Python numbers and lists; other objects are left to
    json.dumps's `default`.
    """
    found: dict[str, str] = {}

    def walk(o, where: str):
        if isinstance(o, float):  # also np.float64
            if math.isfinite(o):
                return float(o)
            found[where] = "NaN" if o != o else ("Infinity" if o > 0 else "-Infinity")
            return None
        if isinstance(o, (str, bool, int)) or o is None:
            return o
        if isinstance(o, dict):
            return {k: walk(v, f"{where}/{_pointer_part(k)}") for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [walk(v, f"{where}/{i}") for i, v in enumerate(o)]
        if isinstance(o, np.ndarray):
            if o.dtype.kind in "biu" or (o.dtype.kind == "f" and np.isfinite(o).all()):
                return o.tolist()
            return walk(o.tolist(), where)
        if isinstance(o, np.generic):
            return walk(o.item(), where)
        return o

    return walk(obj, ""), found


def dumps_json(obj, **kwargs) -> str:
    """json.dumps writing strict JSON (``allow_nan=False``: no NaN / Infinity literals).

    Non-finite floats become null; when there are any, `obj` must be a dict and gets a last key
    "nulls": {"note": what null means, "values": {JSON pointer: "NaN" | "Infinity" | "-Infinity"}}.
    numpy values and Paths are converted. Keyword arguments go to json.dumps.
    """
    data, found = finite_json(obj)
    if found:
        if not isinstance(data, dict):
            raise ValueError(f"non-finite value(s) at {', '.join(list(found)[:5])} of a top-level "
                             f"{type(obj).__name__}: JSON cannot hold them and there is no object to note them in")
        if NULLS_KEY in data:
            raise ValueError(f"cannot record non-finite values: the object already has a {NULLS_KEY!r} key")
        data[NULLS_KEY] = {"note": NULLS_NOTE, "values": found}
    kwargs.setdefault("default", _json_default)
    return json.dumps(data, allow_nan=False, **kwargs)


def _restore(obj, pointer: str, value: float):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    if not parts:
        return value
    parent = obj
    for p in parts[:-1]:
        parent = parent[int(p)] if isinstance(parent, list) else parent[p]
    last = parts[-1]
    if isinstance(parent, list):
        parent[int(last)] = value
    else:
        parent[last] = value
    return obj


def loads_json(text: str):
    """json.loads that undoes :func:`dumps_json`: the values listed under "nulls" are NaN / Inf
    again and the "nulls" entry is removed (also reads files with NaN literals, as json.loads)."""
    data = json.loads(text)
    nulls = data.get(NULLS_KEY) if isinstance(data, dict) else None
    values = nulls.get("values") if isinstance(nulls, dict) else None
    if isinstance(values, dict) and all(v in _NON_FINITE for v in values.values()):
        del data[NULLS_KEY]
        for pointer, name in values.items():
            data = _restore(data, pointer, _NON_FINITE[name])
    return data


def read_json(path):
    """:func:`loads_json` of a file."""
    return loads_json(Path(path).read_text())


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def ensure_writable_dir(path, min_free_bytes: int = MIN_FREE_BYTES) -> Path:
    """Create `path` if needed and fail early if it is not writable or its disk is (nearly) full."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"{path}: exists and is not a directory (choose another --out)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputDirError(f"{path}: cannot create output directory: {e.strerror or e}") from e
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputDirError(f"{path}: output directory is not writable (choose another --out or fix permissions)")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputDirError(f"{path}: cannot write into output directory: {e.strerror or e}") from e
    free = shutil.disk_usage(path).free
    if free < min_free_bytes:
        raise OutputDirError(
            f"{path}: only {free / 2**20:.0f} MiB free on this disk, need at least "
            f"{min_free_bytes / 2**20:.0f} MiB (free space or choose another --out)")
    return path
