"""The feature cache of every study: each file's features computed once per (feature config, file
list, layout) and memory-mapped. Three layouts:

    feats = cached_features(paths, cfg, "cache/")   # fixed: (N, frames, mel_bands, channels)
    clips = cached_clips(paths, cfg, "cache/", split_channels=True)  # ragged: ClipFeatures
    wins = cached_binaural(paths, "raw", "cache/", expand=binaural_expand)  # stereo clips, 4 waveforms

and the fixed layout of waveforms made in a tf.data pipeline instead of read from files
(:func:`cached_waveform_features`; the remix mixtures of :mod:`tf_scenes.pipelines.remix`).

The ragged layout serves clips of different lengths, each standardised over its own length (TAG:
FSDKaggle2019 clips of 0.3-30 s; padding the waveforms first would change the features), and
multi-channel recordings whose channels are separate examples (SED: TAU-NIGENS 2020, as the
DcaseNet authors' preprocessing); features lie back to back with row offsets.

The cache key is a SHA-256 of the feature config, the target length and the ordered file list
with each file's size and modification time, so any change (config field, file added, removed,
reordered or rewritten) gives a new cache. A cache is the pair ``NAME-KEY.npy`` (float32 array, or
float16 where asked for, written to a temporary name and renamed when complete) and ``NAME-KEY.json`` (config, files,
shape; written after the array). A cache whose sidecar is missing or disagrees, or whose array
does not open with the recorded shape and size (truncated, corrupt), is rebuilt, never reused.

Extraction is the TF front-end of :mod:`tf_scenes.features` in a tf.data pipeline
(:func:`feature_dataset`): files are decoded in parallel (:mod:`tf_scenes.pipelines.audio`), the features of
each clip computed in parallel map calls, then batched. From ``XLA_MIN_CLIPS`` files on, the
front-end is compiled with XLA (``jit_compile``): XLA fuses the framing, window, power spectrum,
log, scaling and delta steps into a few loops over memory, ~1.5 ms less CPU per 10 s clip on the
two-stage features (bench/results.md, docs/performance.md), for a one-off compilation of 1-2 s.
The values are those of the graph front-end up to float32 rounding (max abs difference ~2e-7 on
[0, 1]-scaled features); the sidecar records which was used.  On the XLA path, plain PCM WAV files
under the two-stage and weak-SED configs skip tf.data: :mod:`tf_scenes.pipelines.pcm_features` reads their
sample bytes into batches and decodes them inside the XLA program (the same features, less CPU).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tf_scenes.audio import summarised_warnings
from tf_scenes.errors import AudioError, ConfigError
from tf_scenes.features.config import FeatureConfig, config_to_dict, get_feature_config, output_shape
from tf_scenes.io_utils import atomic_path, atomic_write_json, ensure_writable_dir

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
# Storage types of the fixed layout (cached_features). float16 halves the file and the pages read
# per epoch; on [0, 1]-scaled features (two-stage) the rounding is at most 2**-12 (half a float16
# step below 1.0): 2.4e-4 max abs, measured in bench/scale.md.
CACHE_DTYPES = ("float32", "float16")
# Files from which the front-end is XLA-compiled by default (compilation 1-2 s, saves ~1.5 ms a clip).
XLA_MIN_CLIPS = 1000


def _file_records(paths) -> list[list]:
    records = []
    for p in paths:
        p = Path(p).resolve()
        try:
            st = p.stat()
        except FileNotFoundError:
            raise AudioError(p, "file not found") from None
        records.append([str(p), st.st_size, st.st_mtime_ns])
    return records


def file_records(paths) -> list[list]:
    """[resolved path, size, mtime_ns] of each file: what a cache key records of its input files."""
    return _file_records(paths)


def cache_key(paths, feature_cfg, *, num_samples: int | None = None) -> str:
    """Hex SHA-256 of (format, feature config, num_samples, ordered [path, size, mtime_ns])."""
    cfg = get_feature_config(feature_cfg)
    return _key(cfg, num_samples, _file_records(paths))


def _key(cfg: FeatureConfig, num_samples, records, layout: dict | None = None, dtype: str = "float32") -> str:
    doc = {"format": CACHE_FORMAT, "config": config_to_dict(cfg), "num_samples": num_samples, "files": records}
    if layout:  # the ragged and binaural layouts (the fixed layout keeps its historical key)
        doc["layout"] = layout
    if dtype != "float32":  # float32 caches keep their historical key
        doc["dtype"] = dtype
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def cache_paths(cache_dir, cfg: FeatureConfig, key: str, layout: str = "") -> tuple[Path, Path]:
    base = Path(cache_dir) / f"{cfg.name}{'-' + layout if layout else ''}-{key[:24]}"
    return base.with_suffix(".npy"), base.with_suffix(".json")


def _load_valid(npy: Path, meta_path: Path, key: str, dtype: str = "float32"):
    """(memory-mapped array, sidecar) of a cache if it is complete and matches `key`, else None
    (with a reason logged). Temporaries left by a writer that was killed are removed first."""
    remove_stale_temporaries(npy, meta_path)
    if not npy.exists() and not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != key or meta.get("format") != CACHE_FORMAT:
            raise ValueError("sidecar describes another cache")
        if npy.stat().st_size != meta["file_bytes"]:
            raise ValueError(f"array file holds {npy.stat().st_size} bytes, sidecar says {meta['file_bytes']}")
        arr = np.load(npy, mmap_mode="r", allow_pickle=False)
        if arr.shape != tuple(meta["shape"]) or arr.dtype != np.dtype(dtype):
            raise ValueError(f"array is {arr.dtype} {arr.shape}, sidecar says {dtype} {tuple(meta['shape'])}")
        return arr, meta
    except Exception as e:  # any defect means rebuild
        log.warning("feature cache %s is unusable (%s): rebuilding it", npy, e)
        return None


def remove_stale_temporaries(final: Path, *others: Path) -> list[Path]:
    """Delete the temporaries of ``final`` (and of its sidecars ``others``) left by a writer killed
    mid-way (kill -9, power loss).

    A writer holds an exclusive OS lock on ``final``'s lock file while it writes (:func:`_writer_lock`);
    temporaries found while that lock can be taken belong to nobody alive and are removed (returned)."""
    import fcntl

    final = Path(final)
    lock = final.parent / f".{final.name}.lock"
    stale = [p for f in (final, *others) if Path(f).parent.is_dir()
             for p in sorted(Path(f).parent.glob(f".{Path(f).name}.*")) if p != lock]
    if not stale:
        return []
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return []
    removed = []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return []  # a live writer: leave its files alone
    try:
        for p in stale:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    if removed:
        log.warning("removed %d leftover temporaries of an interrupted cache write: %s", len(removed),
                    ", ".join(p.name for p in removed[:3]))
    return removed


@contextlib.contextmanager
def _writer_lock(final: Path):
    """Hold the writer lock of a cache file while it is written (see remove_stale_temporaries)."""
    import fcntl

    lock = final.parent / f".{final.name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _example_samples(cfg: FeatureConfig, sources, num_samples: int | None) -> int | None:
    """Waveform length fed to the front-end: fixed, or the common length of all files."""
    if num_samples is not None:
        return num_samples
    if cfg.clip_samples is not None:
        return cfg.clip_samples
    lengths = {s.resampled_frames(cfg.sample_rate) for s in sources}
    if len(lengths) > 1:
        first = sources[0]
        odd = next(s for s in sources if s.resampled_frames(cfg.sample_rate) != first.resampled_frames(cfg.sample_rate))
        raise ConfigError(
            f"feature config {cfg.name!r} has no clip_samples and the files differ in length "
            f"({first.path}: {first.resampled_frames(cfg.sample_rate)} samples, {odd.path}: "
            f"{odd.resampled_frames(cfg.sample_rate)} at {cfg.sample_rate} Hz): pass num_samples= to cache them "
            f"as one array")
    return None


def feature_dataset(sources, feature_cfg, *, num_samples: int | None = None, batch_size: int = 16,
                    jit_compile: bool = False, errors=None):
    """tf.data.Dataset of feature batches (batch, frames, mel_bands, channels) of `sources` in order.

    The pipeline of the cache: decode (:func:`tf_scenes.pipelines.audio.decode_dataset`, parallel) -> the
    front-end of each clip (parallel map calls; XLA-compiled with ``jit_compile``) -> batch ->
    prefetch. Per-clip calls keep both cores busy (a batch is one sequential XLA call) and never
    compile a second shape for the last partial batch.

    Args:
      sources: audio paths or :class:`tf_scenes.pipelines.audio.AudioSource` objects.
      feature_cfg: FeatureConfig or a named config.
      num_samples: trim / zero-pad every waveform to this length (None: the files' own lengths).
      batch_size: clips per output batch.
      jit_compile: compile the front-end with XLA (one compilation per waveform length).
      errors: a :class:`tf_scenes.pipelines.audio.DecodeErrors` for :func:`tf_scenes.pipelines.audio.iterate_checked`.
    """
    from .audio import decode_dataset

    cfg = get_feature_config(feature_cfg)
    ds = decode_dataset(sources, cfg.sample_rate, num_samples=num_samples, errors=errors)
    return _featurise(ds, cfg, batch_size, jit_compile)


def _featurise(waveforms, cfg: FeatureConfig, batch_size: int, jit_compile: bool):
    """Per-clip front-end (parallel map calls) -> batch -> prefetch; elements that are (waveform,
    aux) pairs keep their aux beside the features."""
    import tensorflow as tf

    from tf_scenes.features.frontend import tf_features

    front_end = functools.partial(tf_features, cfg)
    if jit_compile:
        front_end = tf.function(front_end, jit_compile=True)
    if isinstance(waveforms.element_spec, tuple):
        ds = waveforms.map(lambda x, aux: (front_end(x), aux), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = waveforms.map(front_end, num_parallel_calls=tf.data.AUTOTUNE)  # (frames, mel_bands, channels)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def cached_features(paths, feature_cfg, cache_dir, *, sample_rate: int | None = None, batch_size: int = 16,
                    progress: bool = True, num_samples: int | None = None,
                    jit_compile: bool | None = None, dtype: str = "float32") -> np.ndarray:
    """Features of `paths` (in order) under `feature_cfg`, computed once and memory-mapped.

    Args:
      paths: audio files; the order is the row order of the result.
      feature_cfg: FeatureConfig or a named config (tf_scenes.features.FEATURE_CONFIGS).
      cache_dir: folder holding the caches (created if needed).
      sample_rate: rate of the front-end; None keeps the config's. A different rate gives another
        config (and cache key); files at other rates are resampled once with soxr.
      batch_size: clips per batch written to the cache.
      progress: show a tqdm bar while computing.
      num_samples: trim / zero-pad every waveform to this length (configs without clip_samples
        need it when files differ in length).
      jit_compile: compile the front-end with XLA; None: from ``XLA_MIN_CLIPS`` files on. If XLA
        cannot compile it on this platform, the graph front-end is used (with a warning).
      dtype: storage type, "float32" or "float16" (half the bytes; features computed in float32 and
        rounded to the nearest float16; another cache key). A value beyond float16's range is an
        AudioError naming the file.

    Returns:
      read-only memory-mapped array (N, frames, mel_bands, channels) of `dtype`.
    """
    cfg = get_feature_config(feature_cfg)
    if sample_rate is not None and sample_rate != cfg.sample_rate:
        cfg = cfg.replace(sample_rate=int(sample_rate))
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("cached_features: the file list is empty")
    if batch_size < 1:
        raise ConfigError(f"cached_features: batch_size must be >= 1, got {batch_size}")
    if dtype not in CACHE_DTYPES:
        raise ConfigError(f"cached_features: dtype must be one of {list(CACHE_DTYPES)}, got {dtype!r}")
    records = _file_records(paths)
    key = _key(cfg, num_samples, records, dtype=dtype)
    npy, meta_path = cache_paths(cache_dir, cfg, key)
    loaded = _load_valid(npy, meta_path, key, dtype)
    if loaded is not None:
        log.info("feature cache hit: %s %s", npy, loaded[0].shape)
        return loaded[0]
    if jit_compile is None:
        jit_compile = len(paths) >= XLA_MIN_CLIPS
    _compute(paths, cfg, npy, meta_path, key, records, batch_size=batch_size, progress=progress,
             num_samples=num_samples, jit_compile=bool(jit_compile), dtype=dtype)
    return np.load(npy, mmap_mode="r", allow_pickle=False)


def _compute(paths, cfg: FeatureConfig, npy: Path, meta_path: Path, key: str, records, *, batch_size: int,
             progress: bool, num_samples: int | None, jit_compile: bool, dtype: str = "float32") -> None:
    from .audio import probe_audio

    sources = probe_audio(paths)
    n_in = _example_samples(cfg, sources, num_samples)
    length = n_in if n_in is not None else sources[0].resampled_frames(cfg.sample_rate)
    shape = (len(paths),) + output_shape(cfg, length)
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    ensure_writable_dir(npy.parent, min_free_bytes=nbytes + 64 * 2**20)
    for stale in (meta_path, npy):  # the sidecar goes first: an array without one is never trusted
        if stale.exists():
            stale.unlink()

    log.info("computing %s features of %d files into %s %s (XLA: %s)", cfg.name, len(paths), npy, shape,
             jit_compile)
    # One warning line per kind (resampled, down-mixed, cut, padded, beyond full scale) for the set.
    with _writer_lock(npy), summarised_warnings(f"feature cache {cfg.name}"):
        with atomic_path(npy, suffix=".npy") as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(dtype), shape=shape)
            try:
                _fill(out, paths, sources, cfg, n_in, batch_size=batch_size, progress=progress,
                      jit_compile=jit_compile)
            except _XlaUnavailable as e:
                log.warning("XLA could not compile the %s front-end (%s): using the graph front-end", cfg.name, e)
                jit_compile = False
                _fill(out, paths, sources, cfg, n_in, batch_size=batch_size, progress=progress, jit_compile=False)
            out.flush()
            del out
        atomic_write_json(meta_path, {
            "format": CACHE_FORMAT, "key": key, "config": config_to_dict(cfg), "num_samples": num_samples,
            "shape": list(shape), "dtype": dtype, "file_bytes": os.path.getsize(npy),
            "layout": "(examples, frames, mel_bands, channels)", "front_end": {"jit_compile": jit_compile},
            "files": [{"path": p, "bytes": size, "mtime_ns": mtime} for p, size, mtime in records],
        })


class _XlaUnavailable(Exception):
    pass


def _fill(out: np.ndarray, paths, sources, cfg: FeatureConfig, n_in, *, batch_size: int, progress: bool,
          jit_compile: bool) -> None:
    """Write the features of every file into `out` in order."""

    from .audio import DecodeErrors, iterate_checked
    from .pcm_features import pcm_feature_batches, supported

    errors = DecodeErrors()
    if jit_compile and supported(sources, cfg):
        # Plain PCM WAV files: sample bytes read straight into batches and decoded inside the XLA
        # front-end: 15-25 % less CPU, the same features (tf_scenes.pipelines.pcm_features).
        length = n_in if n_in is not None else sources[0].frames
        batches = (b for _, b in pcm_feature_batches(sources, cfg, num_samples=length, batch_size=batch_size))
    else:
        ds = feature_dataset(sources, cfg, num_samples=n_in, batch_size=batch_size, jit_compile=jit_compile,
                             errors=errors)
        batches = _numpy_batches(iterate_checked(ds, errors))
    _store(out, batches, errors, cfg, progress=progress, jit_compile=jit_compile, name=lambda i: paths[i])


def _numpy_batches(batches):
    for batch in batches:
        yield tuple(t.numpy() for t in batch) if isinstance(batch, tuple) else batch.numpy()


def _store(out: np.ndarray, batches, errors, cfg: FeatureConfig, *, progress: bool, jit_compile: bool, name,
           check=None) -> None:
    """Write the feature `batches` (numpy arrays, or (array, aux) pairs) into `out` in order;
    ``name(i)``: the input of row i (for errors); ``check(first_row, aux)`` sees each batch's aux
    first."""
    import tensorflow as tf
    from tqdm.auto import tqdm

    shape = out.shape
    i = 0
    with tqdm(total=shape[0], unit="clip", desc=f"features {cfg.name}", disable=None if progress else True) as bar:
        try:
            for b in batches:
                if isinstance(b, tuple):
                    b, aux = b
                    if check is not None:
                        check(i, aux)
                if b.shape[1:] != shape[1:]:
                    raise AudioError(name(i), f"features have shape {b.shape[1:]}, expected {shape[1:]}")
                with np.errstate(over="ignore"):  # float16 overflow: _check_half names the file
                    out[i:i + len(b)] = b
                if out.dtype == np.float16:
                    _check_half(out[i:i + len(b)], b, i, name)
                i += len(b)
                bar.update(len(b))
        except tf.errors.OpError as e:
            # Nothing written yet and no decoding error recorded: XLA itself failed (e.g. a
            # platform without XLA CPU support); the caller retries with the graph front-end.
            if jit_compile and i == 0 and errors.error is None:
                raise _XlaUnavailable(str(e).splitlines()[0]) from e
            raise
    if i != shape[0]:
        raise RuntimeError(f"feature pipeline produced {i} examples for {shape[0]} inputs")


def _check_half(stored: np.ndarray, batch: np.ndarray, first: int, name) -> None:
    """A float16 row that overflowed (finite in float32, infinite stored) is an error naming its input."""
    flat = len(stored), -1
    bad = np.isinf(stored).reshape(flat).any(axis=1) & np.isfinite(batch).reshape(flat).all(axis=1)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise AudioError(name(first + j), f"features reach {float(np.abs(batch[j]).max()):.4g}, beyond float16's "
                         f"range ({float(np.finfo(np.float16).max):.0f}): use the float32 cache")


def cached_waveform_features(waveforms, count: int, feature_cfg, cache_dir, *, identity: dict, num_samples: int,
                             name: str, check=None, batch_size: int = 16, progress: bool = True,
                             jit_compile: bool | None = None, what: str = "waveforms") -> np.ndarray:
    """Features of `count` waveforms made in a tf.data pipeline instead of read from files,
    computed once and memory-mapped like :func:`cached_features` (the same front-end, batches and
    XLA rule, so waveforms equal to decoded files give the same features).

    Args:
      waveforms: ``waveforms(errors)`` -> tf.data.Dataset of (num_samples,) float32 waveforms, or
        of (waveform, aux) pairs; called on a cache miss only. `errors` is the
        :class:`tf_scenes.pipelines.audio.DecodeErrors` its decoders report to.
      count: the number of elements.
      identity: JSON document of everything the waveforms depend on; it takes the place of the
        file list in the key (name the source files with :func:`file_records`).
      num_samples: the waveforms' length.
      name: part of the cache's file name (``{config}-{name}-{key}.npy``).
      check: ``check(first_row, aux)`` on each batch's aux before the batch is stored; raise to
        stop (nothing is cached).
      what: the inputs, in log lines.
    """
    from .audio import DecodeErrors, iterate_checked

    cfg = get_feature_config(feature_cfg)
    if count < 1:
        raise ConfigError(f"cached_waveform_features: no {what}")
    if batch_size < 1:
        raise ConfigError(f"cached_waveform_features: batch_size must be >= 1, got {batch_size}")
    key = _key(cfg, num_samples, None, layout={"waveforms": identity})
    npy, meta_path = cache_paths(cache_dir, cfg, key, name)
    loaded = _load_valid(npy, meta_path, key)
    if loaded is not None:
        log.info("feature cache hit: %s %s", npy, loaded[0].shape)
        return loaded[0]
    jit_compile = count >= XLA_MIN_CLIPS if jit_compile is None else bool(jit_compile)
    shape = (count,) + output_shape(cfg, num_samples)
    ensure_writable_dir(npy.parent, min_free_bytes=int(np.prod(shape)) * 4 + 64 * 2**20)
    for stale in (meta_path, npy):  # the sidecar goes first: an array without one is never trusted
        if stale.exists():
            stale.unlink()
    log.info("computing %s features of %d %s into %s %s (XLA: %s)", cfg.name, count, what, npy, shape, jit_compile)

    def fill(out: np.ndarray, jit: bool) -> None:
        errors = DecodeErrors()
        ds = _featurise(waveforms(errors), cfg, batch_size, jit)
        _store(out, _numpy_batches(iterate_checked(ds, errors)), errors, cfg, progress=progress, jit_compile=jit,
               name=lambda i: f"{what}, example {i}",
               check=check)

    with _writer_lock(npy), summarised_warnings(f"feature cache {cfg.name}"):
        with atomic_path(npy, suffix=".npy") as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            try:
                fill(out, jit_compile)
            except _XlaUnavailable as e:
                log.warning("XLA could not compile the %s front-end (%s): using the graph front-end", cfg.name, e)
                jit_compile = False
                fill(out, False)
            out.flush()
            del out
        atomic_write_json(meta_path, {
            "format": CACHE_FORMAT, "key": key, "config": config_to_dict(cfg), "num_samples": num_samples,
            "shape": list(shape), "dtype": "float32", "file_bytes": os.path.getsize(npy),
            "layout": "(examples, frames, mel_bands, channels)", "front_end": {"jit_compile": jit_compile},
            "waveforms": identity,
        })
    return np.load(npy, mmap_mode="r", allow_pickle=False)


# ----------------------------------------------------------------------------------------------
# ragged layout: whole clips of different lengths, or each channel as its own example


@dataclass(frozen=True)
class ClipFeatures:
    """Ragged features: example ``i`` is ``data[offsets[i]:offsets[i + 1]]`` (frames, mels, ch).

    ``sources[i]`` is the file of example ``i`` and ``channels[i]`` its channel (-1: down-mixed).
    """

    data: np.ndarray
    offsets: np.ndarray
    sources: tuple[str, ...]
    channels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def clip(self, i: int) -> np.ndarray:
        return self.data[self.offsets[i]:self.offsets[i + 1]]

    def slice(self, lo: int, hi: int) -> "ClipFeatures":
        """Examples ``lo .. hi-1`` as a view (no copy of a memory-mapped array)."""
        lo, hi = max(0, int(lo)), min(len(self), int(hi))
        if hi < lo:
            hi = lo
        offsets = self.offsets[lo:hi + 1]
        return ClipFeatures(self.data[offsets[0]:offsets[-1]], offsets - offsets[0], self.sources[lo:hi],
                            self.channels[lo:hi])

    def padded(self, frames: int | None = None) -> "PaddedClips":
        return PaddedClips(self, frames)


class PaddedClips:
    """Read-only array-like view ``(N, frames, mels, ch)`` of :class:`ClipFeatures`: example ``i``
    zero-padded (or cut) to ``frames`` (default: the longest clip).  It is what
    :func:`tf_scenes.pipelines.train_data.make_train_dataset` reads (``shape``, ``dtype``, ``view[i]``);
    the true lengths travel with the labels so that crops never reach into the padding."""

    def __init__(self, clips: ClipFeatures, frames: int | None = None):
        self.clips = clips
        self.frames = int(frames if frames is not None else clips.lengths.max())
        self.shape = (len(clips), self.frames) + tuple(clips.data.shape[1:])
        self.dtype = clips.data.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i):
        x = self.clips.clip(int(i))[: self.frames]
        out = np.zeros(self.shape[1:], self.dtype)  # always a fresh, writable array (see CopyingView)
        out[: len(x)] = x
        return out


class CopyingView:
    """Array-like view of a (memory-mapped) array whose items are fresh writable copies.

    :func:`tf_scenes.pipelines.train_data.make_train_dataset` hands ``features[i]`` to TensorFlow through
    ``tf.numpy_function``; for a read-only memmap that is a view of read-only pages, which
    TensorFlow may reuse in place as the output buffer of an elementwise op (a crash: SIGSEGV,
    seen with the per-band re-standardisation of crops).  Copying each example avoids it.
    """

    def __init__(self, array):
        self.array = array
        self.shape = tuple(array.shape)
        self.dtype = array.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i):
        return np.array(self.array[i], copy=True)


def _expected_samples(source, sample_rate: int) -> int:
    return source.resampled_frames(sample_rate)


def cached_clips(paths, feature_cfg, cache_dir, *, split_channels: bool = False,
                 n_channels: int | None = None, progress: bool = True) -> ClipFeatures:
    """Features of every file of ``paths`` (whole clips, each at its own length), cached.

    Args:
      paths: audio files, in the order of the examples.
      cache_dir: folder of the cache files (created if needed).
      feature_cfg: feature config (name or FeatureConfig).
      split_channels: each channel of a multi-channel file is its own example (file-major order:
        file 0 channel 0, file 0 channel 1, ...); otherwise files are down-mixed to mono.
      n_channels: with ``split_channels``, the channel count every file must have (AudioError
        naming the file otherwise); None accepts any.
      progress: tqdm bar while computing.
    """
    cfg = get_feature_config(feature_cfg)
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("cached_clips: the file list is empty")
    key = _key(cfg, None, _file_records(paths), layout={"ragged": True, "split_channels": split_channels,
                                                          "n_channels": n_channels})
    npy, meta_path = cache_paths(ensure_writable_dir(cache_dir), cfg, key, "clips")
    cached = _load_clips(npy, meta_path, key)
    if cached is not None:
        log.info("clip feature cache hit: %s (%d examples)", npy, len(cached))
        return cached
    _compute_clips(paths, cfg, npy, meta_path, key, split_channels, n_channels, progress)
    cached = _load_clips(npy, meta_path, key)
    if cached is None:  # pragma: no cover - _compute raises on every failure it can see
        raise RuntimeError(f"{npy}: the cache just written does not load")
    return cached


def _load_clips(npy: Path, meta_path: Path, key: str) -> ClipFeatures | None:
    loaded = _load_valid(npy, meta_path, key)
    if loaded is None:
        return None
    data, meta = loaded
    return ClipFeatures(data, np.asarray(meta["offsets"], np.int64), tuple(meta["sources"]), tuple(meta["channels"]))


def _compute_clips(paths, cfg, npy: Path, meta_path: Path, key: str, split_channels: bool, n_channels, progress):
    import tensorflow as tf
    from tqdm.auto import tqdm

    from tf_scenes.audio import read_audio
    from tf_scenes.features import n_frames, tf_features

    from .audio import fix_length_np, probe_audio

    sources = probe_audio(paths)  # AudioError naming the first missing / broken file
    plan = []  # (source, samples at cfg rate, frames, channels of this file as examples)
    for s in sources:
        if split_channels and n_channels is not None and s.channels != n_channels:
            raise AudioError(s.path, f"has {s.channels} channels, expected {n_channels}")
        samples = _expected_samples(s, cfg.sample_rate)
        try:
            frames = n_frames(cfg, samples)
        except ConfigError:
            raise AudioError(s.path, f"too short for one feature frame ({samples} samples at "
                             f"{cfg.sample_rate} Hz)") from None
        plan.append((s, samples, frames, s.channels if split_channels else 1))
    lengths = [f for _, _, f, c in plan for _ in range(c)]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    example_shape = (cfg.n_mels, cfg.channels)
    for stale in (meta_path, npy):
        if stale.exists():
            stale.unlink()

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)], reduce_retracing=True)
    def features(batch):
        return tf_features(cfg, batch)  # (batch, frames, mels, ch)

    log.info("computing %s features of %d files (%d examples, %d frames) into %s", cfg.name, len(paths),
             len(lengths), offsets[-1], npy)
    srcs, chans = [], []
    # One warning line per kind (resampled, down-mixed, beyond full scale) for the whole set.
    with _writer_lock(npy), summarised_warnings(f"clip features {cfg.name}"), atomic_path(npy, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(int(offsets[-1]),) + example_shape)
        row = 0
        for s, samples, frames, c in tqdm(plan, unit="file", desc=f"features {cfg.name}", disable=None if progress else True):
            x, _ = read_audio(s.path, sr=cfg.sample_rate, mono=not split_channels)  # resampled once, with soxr
            x = fix_length_np(x, samples)  # soxr may differ from the probe's rounding by a sample
            batch = x.T if split_channels and x.ndim == 2 else np.asarray(x).reshape(1, -1)  # (c, samples)
            f = features(tf.constant(batch, tf.float32)).numpy()
            if f.shape != (c, frames) + example_shape:
                raise AudioError(s.path, f"features have shape {f.shape}, expected {(c, frames) + example_shape}")
            for k in range(c):
                out[offsets[row]:offsets[row + 1]] = f[k]
                srcs.append(str(Path(s.path).resolve()))
                chans.append(k if split_channels else -1)
                row += 1
        out.flush()
        del out
    atomic_write_json(meta_path, {
        "format": CACHE_FORMAT, "key": key, "config": config_to_dict(cfg), "split_channels": split_channels,
        "shape": [int(offsets[-1]), *example_shape], "dtype": "float32", "offsets": offsets.tolist(),
        "sources": srcs, "channels": chans, "file_bytes": os.path.getsize(npy),
        "layout": "(total_frames, mel_bands, channels), examples back to back",
    })


# ----------------------------------------------------------------------------------------------
# binaural layout: each stereo clip as 4 waveforms (left, right, sum, difference)


def cached_binaural(paths, feature_cfg, cache_dir, *, expand, progress: bool = True) -> np.ndarray:
    """Features of stereo clips, each expanded to several waveforms by ``expand`` ((samples, 2) ->
    (waveforms, samples); the raw-waveform study's left, right, sum, difference) and featurised
    the same way, waveform-major: (clips, waveforms * frames_or_windows, ..., channels), cached and
    memory-mapped like :func:`cached_features`."""
    from tf_scenes.audio import read_audio
    from tf_scenes.features import extract

    cfg = get_feature_config(feature_cfg)
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("cached_binaural: the file list is empty")
    records = _file_records(paths)
    key = _key(cfg, None, records, layout={"binaural": getattr(expand, "__name__", "expand")})
    npy, meta_path = cache_paths(ensure_writable_dir(cache_dir), cfg, key, "binaural")
    loaded = _load_valid(npy, meta_path, key)
    if loaded is not None:
        return loaded[0]
    first = np.asarray(expand(np.zeros((cfg.clip_samples or 1, 2), np.float32)))
    w, s_, c = output_shape(cfg, cfg.clip_samples)
    shape = (len(paths), first.shape[0] * w, s_, c)
    log.info("binaural features of %d clips -> %s %s", len(paths), npy, shape)
    with _writer_lock(npy):
        with atomic_path(npy, suffix=".npy") as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            from tqdm.auto import tqdm

            for i, p in enumerate(tqdm(paths, unit="clip", desc=f"features {cfg.name}", disable=None if progress else True)):
                x, _ = read_audio(p, sr=cfg.sample_rate, mono=False, channels=2)
                out[i] = extract(cfg, expand(x)).reshape(shape[1:])  # (waveforms * windows, samples, 1)
            out.flush()
            del out
        atomic_write_json(meta_path, {"format": CACHE_FORMAT, "key": key, "config": config_to_dict(cfg),
                                      "shape": list(shape), "dtype": "float32", "file_bytes": os.path.getsize(npy),
                                      "layout": "(clips, waveforms * windows, samples, 1)",
                                      "files": [r[0] for r in records]})
    return np.load(npy, mmap_mode="r", allow_pickle=False)
