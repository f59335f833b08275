"""Shared machinery of the dataset writers: seeds, manifests, csv writing, (parallel) item loops.

Determinism: every generated item draws from its own ``np.random.Generator`` seeded by
``SeedSequence([seed, crc32(key parts)...])``, so output bytes depend only on (kind, size, seed)
and never on the order or the process in which items are made.

Speed: :func:`map_items` spreads chunks of items over worker processes (all usable CPUs by
default); :func:`write_pcm` writes the integer samples itself, which soundfile then only packs.

Safety: a dataset folder is (re)generated only when it is empty or carries our manifest
(``SYNTHETIC_DATASET.json``) or our in-progress marker; a non-empty folder without either (a real
copy of the dataset, say) is never touched.  The manifest is written last: its presence with the
same parameters and all listed files in place means "complete, skip".
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import numbers
import os
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..errors import AudioError, ConfigError, OutputDirError
from ..io_utils import atomic_path, atomic_write_json, atomic_write_text, dumps_json, ensure_writable_dir

log = logging.getLogger(__name__)

GENERATOR = "tf_scenes.synth"
GENERATOR_VERSION = "2.0"  # 2.0: scenes and recordings made in the frequency domain, one RIR bank per dataset
MANIFEST = "SYNTHETIC_DATASET.json"
PARTIAL = ".SYNTHETIC_DATASET.partial.json"
SIZES = ("tiny", "small", "full")
STATEMENT = ("SYNTHETIC DATA. Every file in this folder was generated procedurally by "
             "tf_scenes.synth; it only imitates the on-disk format of the real dataset named here "
             "and contains no real recordings. Results on it say nothing about the real dataset.")


def key_int(*parts) -> int:
    """A stable 32-bit integer for any parts (crc32 of their joined text)."""
    return zlib.crc32("/".join(str(p) for p in parts).encode())


def rng_for(seed: int, *parts) -> np.random.Generator:
    """The generator of one item: independent streams for different (seed, parts)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, key_int(*parts)]))


def split_counts(total: int, k: int) -> list[int]:
    """total split into k near-equal integers, larger ones first."""
    q, r = divmod(int(total), k)
    return [q + (1 if i < r else 0) for i in range(k)]


def write_table(path, header: Sequence[str] | None, rows: Iterable[Sequence], delimiter: str = "\t",
                newline: str = "\n", final_newline: bool = True) -> Path:
    """Write a plain delimited table (no quoting) atomically with the given line ending."""
    lines = ([delimiter.join(header)] if header else []) + [delimiter.join(str(v) for v in r) for r in rows]
    text = newline.join(lines) + (newline if final_newline and lines else "")
    return _write_bytes_text(path, text)


def write_csv(path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    """Comma-separated values with minimal quoting (fields holding commas are double-quoted), LF."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, delimiter=",", quotechar='"', quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return _write_bytes_text(path, buf.getvalue())


def _write_bytes_text(path, text: str) -> Path:
    # atomic_write_text opens in text mode: newline translation is platform dependent, so write
    # bytes ourselves to keep CRLF / LF exactly as asked.
    from ..io_utils import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(text.encode("utf-8"))
    return Path(path)


# ------------------------------------------------------------------------------------- manifest
def manifest_core(kind: str, dataset: str, size: str, seed: int, parameters: dict) -> dict:
    """The part of the manifest that identifies a dataset (compared to decide skipping)."""
    return {"synthetic": True, "statement": STATEMENT, "dataset": dataset, "kind": kind, "size": size,
            "seed": int(seed), "generator": GENERATOR, "generator_version": GENERATOR_VERSION,
            "parameters": json.loads(json.dumps(parameters, sort_keys=True, default=_json_default))}


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (tuple, set, frozenset)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_manifest(root) -> dict | None:
    p = Path(root) / MANIFEST
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def is_complete(root, core: dict) -> bool:
    """True if `root` holds a finished dataset with the same identifying manifest and all its files."""
    m = read_manifest(root)
    if m is None or any(m.get(k) != v for k, v in core.items()):
        return False
    for rel, size in m.get("files", []):
        p = Path(root) / rel
        try:
            if p.stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def prepare_root(root, core: dict) -> bool:
    """Get `root` ready for writing. Returns False when a complete identical dataset is there.

    Raises OutputDirError when `root` is a non-empty folder that we did not write.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise OutputDirError(f"{root}: exists and is not a directory")
    if is_complete(root, core):
        return False
    if root.is_dir() and any(root.iterdir()):
        ours = (root / MANIFEST).exists() or (root / PARTIAL).exists()
        if not ours:
            raise OutputDirError(
                f"{root}: folder is not empty and holds no {MANIFEST}: refusing to write synthetic "
                "data into it (it may be a real copy of the dataset); choose another --out")
        old = read_manifest(root)
        log.warning("%s: replacing %s synthetic dataset", root,
                    "an incomplete" if old is None else "a different or incomplete")
        for child in root.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    # A floor, not an estimate of the dataset's size: enough to stop at once on a full disk.
    ensure_writable_dir(root, min_free_bytes=16 * 2**20)
    atomic_write_json(root / PARTIAL, core)
    return True


def finish_root(root, core: dict, extra: dict | None = None) -> dict:
    """Write the manifest (listing every file with its size) and drop the in-progress marker."""
    root = Path(root)
    files = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if name in (MANIFEST, PARTIAL) or name.startswith("."):
                continue
            p = Path(dirpath) / name
            files.append([p.relative_to(root).as_posix(), p.stat().st_size])
    files.sort()
    manifest = dict(core)
    manifest.update(extra or {})
    manifest["n_files"] = len(files)
    manifest["n_bytes"] = int(sum(s for _, s in files))
    manifest["files"] = files
    atomic_write_text(root / MANIFEST, dumps_json(manifest, indent=1, default=_json_default) + "\n")
    (root / PARTIAL).unlink(missing_ok=True)
    return manifest


# ------------------------------------------------------------------------------------ item loops
def default_jobs() -> int:
    """Worker processes used when none are asked for: the CPUs this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # no affinity masks (macOS, Windows)
        return max(os.cpu_count() or 1, 1)


def check_jobs(jobs: int | None) -> int:
    """`jobs` as a worker count (None: :func:`default_jobs`); ConfigError unless a whole number >= 1."""
    if jobs is None:
        return default_jobs()
    if not isinstance(jobs, numbers.Integral) or isinstance(jobs, bool) or jobs < 1:
        raise ConfigError(f"jobs must be a whole number >= 1, got {jobs!r}")
    return int(jobs)


# Modules every worker needs: the fork server imports them once and forks the workers from it.
_WORKER_MODULES = ["numpy", "scipy.fft", "scipy.signal", "soundfile", "tf_scenes.synth.dsp",
                   "tf_scenes.synth.sounds", "tf_scenes.synth.scenes", "tf_scenes.synth.devices"]


def _pool_context():
    """Workers come from a fork server (where the platform has one) or are spawned, never forked
    from the caller: the caller may hold TensorFlow's or BLAS's threads."""
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_WORKER_MODULES)
        return ctx
    return multiprocessing.get_context("spawn")


def map_items(fn: Callable, items: Sequence, jobs: int | None = None, desc: str = "", unit: str = "clip",
              progress: bool = True, chunk: int = 16) -> list:
    """[fn(chunk_of_items) for chunks] flattened, in order; in worker processes when jobs > 1.

    fn takes a list of items and returns a list of results (one per item), so a worker can keep
    per-chunk caches (device responses, RIR spectra) without module-level state.  jobs: worker
    processes (None: every usable CPU, :func:`default_jobs`); 1 runs in this process.  Chunks are
    fixed by `chunk` alone, and fn must not depend on which process runs it, so the results never
    depend on `jobs`.
    """
    from tqdm import tqdm

    jobs = check_jobs(jobs)
    items = list(items)
    chunks = [items[i:i + chunk] for i in range(0, len(items), chunk)]
    out: list = []
    with tqdm(total=len(items), desc=desc, unit=unit, disable=None if progress else True, leave=False) as bar:
        if jobs <= 1 or len(chunks) <= 1:
            for c in chunks:
                out.extend(fn(c))
                bar.update(len(c))
            return out
        with ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), mp_context=_pool_context()) as ex:
            for c, res in zip(chunks, ex.map(fn, chunks)):
                out.extend(res)
                bar.update(len(c))
    return out


# ----------------------------------------------------------------------------------------- audio
_PCM = {"PCM_16": (np.int16, 15, 0), "PCM_24": (np.int32, 23, 8)}


def write_pcm(path, x: np.ndarray, sr: int, subtype: str) -> Path:
    """Write float samples (samples,) or (samples, channels) as a PCM wav, atomically.

    Samples are rounded to the nearest step of 2**-15 (PCM_16) or 2**-23 (PCM_24) and clipped to
    [-1, 1 - step], so reading the file back as float gives exactly those values.  Rounding here
    and handing soundfile integers costs 3.9 ms per 10 s 24-bit clip where soundfile's own float
    conversion costs 5.1 (1.4 vs 3.9 ms at 16 bits).
    """
    x = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise AudioError(path, "refusing to write non-finite samples")
    try:
        dtype, bits, shift = _PCM[subtype]
    except KeyError:
        raise ConfigError(f"{path}: unsupported subtype {subtype!r}; known: {', '.join(_PCM)}") from None
    import soundfile as sf

    full = float(1 << bits)
    q = np.rint(x * np.float32(full))
    np.clip(q, -full, full - 1.0, out=q)
    q = q.astype(np.int32)
    if shift:
        q <<= shift  # soundfile writes the top 24 bits of an int32
    # Through memory: writing to a file, libsndfile fsyncs it on close (6 ms a file on a busy disk).
    buf = io.BytesIO()
    sf.write(buf, q.astype(dtype, copy=False), sr, subtype=subtype, format="WAV")
    with atomic_path(path, suffix=".wav") as tmp:
        tmp.write_bytes(buf.getbuffer())
    return Path(path)


def peak_normalize(x: np.ndarray, peak_db: float) -> np.ndarray:
    m = float(np.max(np.abs(x))) if x.size else 0.0
    return (x * (10 ** (peak_db / 20) / m)).astype(np.float32) if m > 0 else x.astype(np.float32)


def hex_names(rng: np.random.Generator, n: int, length: int = 8) -> list[str]:
    """n distinct random lowercase hex names (like the Freesound-derived fnames)."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        for v in rng.integers(0, 16 ** length, size=n - len(names) + 8, dtype=np.int64):
            s = format(int(v), f"0{length}x")
            if s not in seen:
                seen.add(s)
                names.append(s)
                if len(names) == n:
                    break
    return names
