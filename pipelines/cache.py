"""Feature cache: each file's features computed once per (feature config, file list).

    feats = cached_features(paths, "two_stage", "cache/")   # memory-mapped (N, 423, 128, 3)

The cache key is a SHA-256 of the feature config, the target length and the ordered file list
with each file's size and modification time, so any change (config field, file added, removed,
reordered or rewritten) gives a new cache. A cache is the pair ``NAME-KEY.npy`` (float32 array,
written to a temporary name and renamed when complete) and ``NAME-KEY.json`` (config, files,
shape; written after the array). A cache whose sidecar is missing or disagrees, or whose array
does not open with the recorded shape and size (truncated, corrupt), is rebuilt, never reused.

Extraction is the TF front-end of :mod:`tf_scenes.features` in a tf.data pipeline
(:func:`feature_dataset`): files are decoded in parallel (:mod:`pipelines.audio`), the features of
each clip computed in parallel map calls, then batched. From ``XLA_MIN_CLIPS`` files on, the
front-end is compiled with XLA (``jit_compile``): XLA fuses the framing, window, power spectrum,
log, scaling and delta steps into a few loops over memory, ~1.5 ms less CPU per 10 s clip on the
two-stage features (bench/results.md, docs/performance.md), for a one-off compilation of 1-2 s.
The values are those of the graph front-end up to float32 rounding (max abs difference ~2e-7 on
[0, 1]-scaled features); the sidecar records which was used.  On the XLA path, plain PCM WAV files
under the two-stage and weak-SED configs skip tf.data: :mod:`pipelines.pcm_features` reads their
sample bytes into batches and decodes them inside the XLA program (the same features, less CPU).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from tf_scenes.errors import AudioError, ConfigError
from tf_scenes.features.config import FeatureConfig, config_to_dict, get_feature_config, output_shape
from tf_scenes.io_utils import atomic_path, atomic_write_json, ensure_writable_dir

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
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


def cache_key(paths, feature_cfg, *, num_samples: int | None = None) -> str:
    """Hex SHA-256 of (format, feature config, num_samples, ordered [path, size, mtime_ns])."""
    cfg = get_feature_config(feature_cfg)
    return _key(cfg, num_samples, _file_records(paths))


def _key(cfg: FeatureConfig, num_samples, records) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, "config": config_to_dict(cfg), "num_samples": num_samples,
                       "files": records}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_paths(cache_dir, cfg: FeatureConfig, key: str) -> tuple[Path, Path]:
    base = Path(cache_dir) / f"{cfg.name}-{key[:24]}"
    return base.with_suffix(".npy"), base.with_suffix(".json")


def _load_valid(npy: Path, meta_path: Path, key: str):
    """The memory-mapped cache if it is complete and matches `key`, else None (with a reason logged)."""
    if not npy.exists() and not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != key or meta.get("format") != CACHE_FORMAT:
            raise ValueError("sidecar describes another cache")
        if npy.stat().st_size != meta["file_bytes"]:
            raise ValueError(f"array file holds {npy.stat().st_size} bytes, sidecar says {meta['file_bytes']}")
        arr = np.load(npy, mmap_mode="r", allow_pickle=False)
        if arr.shape != tuple(meta["shape"]) or arr.dtype != np.float32:
            raise ValueError(f"array is {arr.dtype} {arr.shape}, sidecar says float32 {tuple(meta['shape'])}")
        return arr
    except Exception as e:  # any defect means rebuild
        log.warning("feature cache %s is unusable (%s): rebuilding it", npy, e)
        return None


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

    The pipeline of the cache: decode (:func:`pipelines.audio.decode_dataset`, parallel) -> the
    front-end of each clip (parallel map calls; XLA-compiled with ``jit_compile``) -> batch ->
    prefetch. Per-clip calls keep both cores busy (a batch is one sequential XLA call) and never
    compile a second shape for the last partial batch.

    Args:
      sources: audio paths or :class:`pipelines.audio.AudioSource` objects.
      feature_cfg: FeatureConfig or a named config.
      num_samples: trim / zero-pad every waveform to this length (None: the files' own lengths).
      batch_size: clips per output batch.
      jit_compile: compile the front-end with XLA (one compilation per waveform length).
      errors: a :class:`pipelines.audio.DecodeErrors` for :func:`pipelines.audio.iterate_checked`.
    """
    import tensorflow as tf

    from tf_scenes.features.frontend import tf_features

    from .audio import decode_dataset

    cfg = get_feature_config(feature_cfg)
    front_end = functools.partial(tf_features, cfg)
    if jit_compile:
        front_end = tf.function(front_end, jit_compile=True)
    ds = decode_dataset(sources, cfg.sample_rate, num_samples=num_samples, errors=errors)
    ds = ds.map(front_end, num_parallel_calls=tf.data.AUTOTUNE)  # (frames, mel_bands, channels)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def cached_features(paths, feature_cfg, cache_dir, *, sample_rate: int | None = None, batch_size: int = 16,
                    progress: bool = True, num_samples: int | None = None,
                    jit_compile: bool | None = None) -> np.ndarray:
    """Features of `paths` (in order) under `feature_cfg`, computed once and memory-mapped.

    Args:
      paths: audio files; the order is the row order of the result.
      feature_cfg: FeatureConfig or a named config ("two_stage", "dcasenet", "weak_sed", "raw").
      cache_dir: folder holding the caches (created if needed).
      sample_rate: rate of the front-end; None keeps the config's. A different rate gives another
        config (and cache key); files at other rates are resampled once with soxr.
      batch_size: clips per batch written to the cache.
      progress: show a tqdm bar while computing.
      num_samples: trim / zero-pad every waveform to this length (configs without clip_samples
        need it when files differ in length).
      jit_compile: compile the front-end with XLA; None: from ``XLA_MIN_CLIPS`` files on. If XLA
        cannot compile it on this platform, the graph front-end is used (with a warning).

    Returns:
      read-only memory-mapped float32 array (N, frames, mel_bands, channels).
    """
    cfg = get_feature_config(feature_cfg)
    if sample_rate is not None and sample_rate != cfg.sample_rate:
        cfg = cfg.replace(sample_rate=int(sample_rate))
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("cached_features: the file list is empty")
    if batch_size < 1:
        raise ConfigError(f"cached_features: batch_size must be >= 1, got {batch_size}")
    records = _file_records(paths)
    key = _key(cfg, num_samples, records)
    npy, meta_path = cache_paths(cache_dir, cfg, key)
    arr = _load_valid(npy, meta_path, key)
    if arr is not None:
        log.info("feature cache hit: %s %s", npy, arr.shape)
        return arr
    if jit_compile is None:
        jit_compile = len(paths) >= XLA_MIN_CLIPS
    _compute(paths, cfg, npy, meta_path, key, records, batch_size=batch_size, progress=progress,
             num_samples=num_samples, jit_compile=bool(jit_compile))
    return np.load(npy, mmap_mode="r", allow_pickle=False)


def _compute(paths, cfg: FeatureConfig, npy: Path, meta_path: Path, key: str, records, *, batch_size: int,
             progress: bool, num_samples: int | None, jit_compile: bool) -> None:
    from .audio import probe_audio

    sources = probe_audio(paths)
    n_in = _example_samples(cfg, sources, num_samples)
    length = n_in if n_in is not None else sources[0].resampled_frames(cfg.sample_rate)
    shape = (len(paths),) + output_shape(cfg, length)
    nbytes = int(np.prod(shape)) * 4
    ensure_writable_dir(npy.parent, min_free_bytes=nbytes + 64 * 2**20)
    for stale in (meta_path, npy):  # the sidecar goes first: an array without one is never trusted
        if stale.exists():
            stale.unlink()

    log.info("computing %s features of %d files into %s %s (XLA: %s)", cfg.name, len(paths), npy, shape,
             jit_compile)
    with atomic_path(npy, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        try:
            _fill(out, paths, sources, cfg, n_in, batch_size=batch_size, progress=progress, jit_compile=jit_compile)
        except _XlaUnavailable as e:
            log.warning("XLA could not compile the %s front-end (%s): using the graph front-end", cfg.name, e)
            jit_compile = False
            _fill(out, paths, sources, cfg, n_in, batch_size=batch_size, progress=progress, jit_compile=False)
        out.flush()
        del out
    atomic_write_json(meta_path, {
        "format": CACHE_FORMAT, "key": key, "config": config_to_dict(cfg), "num_samples": num_samples,
        "shape": list(shape), "dtype": "float32", "file_bytes": os.path.getsize(npy),
        "layout": "(examples, frames, mel_bands, channels)", "front_end": {"jit_compile": jit_compile},
        "files": [{"path": p, "bytes": size, "mtime_ns": mtime} for p, size, mtime in records],
    })


class _XlaUnavailable(Exception):
    pass


def _fill(out: np.ndarray, paths, sources, cfg: FeatureConfig, n_in, *, batch_size: int, progress: bool,
          jit_compile: bool) -> None:
    """Write the features of every file into `out` in order."""
    import tensorflow as tf
    from tqdm.auto import tqdm

    from .audio import DecodeErrors, iterate_checked
    from .pcm_features import pcm_feature_batches, supported

    errors = DecodeErrors()
    if jit_compile and supported(sources, cfg):
        # Plain PCM WAV files: sample bytes read straight into batches and decoded inside the XLA
        # front-end: 15-25 % less CPU, the same features (pipelines.pcm_features).
        length = n_in if n_in is not None else sources[0].frames
        batches = (b for _, b in pcm_feature_batches(sources, cfg, num_samples=length, batch_size=batch_size))
    else:
        ds = feature_dataset(sources, cfg, num_samples=n_in, batch_size=batch_size, jit_compile=jit_compile,
                             errors=errors)
        batches = (batch.numpy() for batch in iterate_checked(ds, errors))
    shape = out.shape
    i = 0
    with tqdm(total=len(paths), unit="clip", desc=f"features {cfg.name}", disable=not progress) as bar:
        try:
            for b in batches:
                if b.shape[1:] != shape[1:]:
                    raise AudioError(paths[i], f"features have shape {b.shape[1:]}, expected {shape[1:]}")
                out[i:i + len(b)] = b
                i += len(b)
                bar.update(len(b))
        except tf.errors.OpError as e:
            # Nothing written yet and no decoding error recorded: XLA itself failed (e.g. a
            # platform without XLA CPU support); the caller retries with the graph front-end.
            if jit_compile and i == 0 and errors.error is None:
                raise _XlaUnavailable(str(e).splitlines()[0]) from e
            raise
    if i != len(paths):
        raise RuntimeError(f"feature pipeline produced {i} examples for {len(paths)} files")
