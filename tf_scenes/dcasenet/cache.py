"""Whole-clip feature cache for clips of different lengths and for per-channel examples.

:func:`pipelines.cache.cached_features` stores one fixed-shape array per file list and down-mixes
multi-channel files; that fits the 10 s ASC clips.  DcaseNet also needs

* TAG (FSDKaggle2019): clips of 0.3-30 s, each standardised over its OWN length (the front-end's
  per-utterance standardisation), so padding waveforms to a common length before the front-end
  would change the features;
* SED (TAU-NIGENS 2020 mic_dev): 4-channel recordings whose channels are separate training
  examples (Jung et al. 2021, Sec. 4.1; the authors' preprocess.py standardises each channel on
  its own), which a down-mix would destroy.

:func:`clip_features` computes each clip's (or channel's) features once with the TF front-end of
:mod:`tf_scenes.features` and stores them back to back in one float32 array
``(total_frames, mels, channels)`` with row offsets: :class:`ClipFeatures`.  The cache key is
:func:`pipelines.cache.cache_key` of the file list (config, paths, sizes, mtimes) plus the layout,
so any change rebuilds it; the array is written under a temporary name and the JSON sidecar (key,
offsets, byte size) last, so an interrupted build is never reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tf_scenes.errors import AudioError, ConfigError

log = logging.getLogger(__name__)

FORMAT = 1


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
    :func:`pipelines.train_data.make_train_dataset` reads (``shape``, ``dtype``, ``view[i]``);
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

    :func:`pipelines.train_data.make_train_dataset` hands ``features[i]`` to TensorFlow through
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


def _paths(cache_dir, cfg, key: str) -> tuple[Path, Path]:
    base = Path(cache_dir) / f"{cfg.name}-clips-{key[:24]}"
    return base.with_suffix(".npy"), base.with_suffix(".json")


def clip_features(paths, cache_dir, *, feature_cfg="dcasenet", split_channels: bool = False,
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
    from pipelines.cache import cache_key
    from tf_scenes.features import get_feature_config
    from tf_scenes.io_utils import ensure_writable_dir

    cfg = get_feature_config(feature_cfg)
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("clip_features: the file list is empty")
    base_key = cache_key(paths, cfg)
    key = hashlib.sha256(json.dumps({"format": FORMAT, "base": base_key, "split_channels": split_channels,
                                     "n_channels": n_channels}).encode()).hexdigest()
    npy, meta_path = _paths(ensure_writable_dir(cache_dir), cfg, key)
    cached = _load(npy, meta_path, key)
    if cached is not None:
        log.info("clip feature cache hit: %s (%d examples)", npy, len(cached))
        return cached
    _compute(paths, cfg, npy, meta_path, key, split_channels, n_channels, progress)
    cached = _load(npy, meta_path, key)
    if cached is None:  # pragma: no cover - _compute raises on every failure it can see
        raise RuntimeError(f"{npy}: the cache just written does not load")
    return cached


def _load(npy: Path, meta_path: Path, key: str) -> ClipFeatures | None:
    if not npy.exists() or not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != key or meta.get("format") != FORMAT:
            raise ValueError("sidecar describes another cache")
        if npy.stat().st_size != meta["file_bytes"]:
            raise ValueError(f"array file holds {npy.stat().st_size} bytes, sidecar says {meta['file_bytes']}")
        data = np.load(npy, mmap_mode="r", allow_pickle=False)
        offsets = np.asarray(meta["offsets"], np.int64)
        if data.dtype != np.float32 or data.shape[0] != offsets[-1] or list(data.shape[1:]) != meta["example_shape"]:
            raise ValueError(f"array is {data.dtype} {data.shape}, sidecar says {offsets[-1]} frames")
        return ClipFeatures(data, offsets, tuple(meta["sources"]), tuple(meta["channels"]))
    except Exception as e:  # any defect means rebuild
        log.warning("clip feature cache %s is unusable (%s): rebuilding it", npy, e)
        return None


def _compute(paths, cfg, npy: Path, meta_path: Path, key: str, split_channels: bool, n_channels, progress):
    import tensorflow as tf
    from tqdm.auto import tqdm

    from pipelines.audio import fix_length_np, probe_audio
    from tf_scenes.audio import read_audio, summarised_warnings
    from tf_scenes.features import n_frames, tf_features
    from tf_scenes.io_utils import atomic_path, atomic_write_json

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
    with summarised_warnings(f"clip features {cfg.name}"), atomic_path(npy, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(int(offsets[-1]),) + example_shape)
        row = 0
        for s, samples, frames, c in tqdm(plan, unit="file", desc=f"features {cfg.name}", disable=not progress):
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
        "format": FORMAT, "key": key, "config": cfg.name, "split_channels": split_channels,
        "example_shape": list(example_shape), "offsets": offsets.tolist(), "sources": srcs, "channels": chans,
        "file_bytes": os.path.getsize(npy), "layout": "(total_frames, mel_bands, channels), examples back to back",
    })
