"""Atomic file writes and output-directory checks.

Every file that a later step may read back as valid (cached features, generated audio, metrics,
checkpoints' side files) is written to a temporary name in the same directory and renamed into
place, so a crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import json
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
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def atomic_save_npy(path, array) -> Path:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(array), allow_pickle=False)
    return Path(path)


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
