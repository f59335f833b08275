"""Feature batches of PCM WAV files with the decoding inside the XLA front-end (the feature cache's
XLA path).

    for rows, feats in pcm_feature_batches(sources, cfg, num_samples=441_000, batch_size=16):
        out[rows] = feats                              # (batch, frames, mel_bands, channels)

For mono 16-, 24- or 32-bit integer PCM WAV files already at the config's rate, the sample bytes
of a batch of files are read straight into one uint8 array (one copy from the page cache, in a
reader thread that fills the next batch while the current one is computed) and a single XLA program
turns the bytes into samples (integer shifts: sample = int / 2^(bits - 1), exactly libsndfile's
value) and the samples into features.  Measured on the two-stage features (64 ten-second 24-bit
clips, 2 shared cores, docs/performance.md): 4.5-5.4 CPU ms per clip against 5.6-7.2 for the
tf.data pipeline with the XLA front-end (:func:`tf_scenes.pipelines.cache.feature_dataset`), whose per-file
map calls, 24-bit decoding through ``tf.numpy_function`` and batching copy every waveform several
times; the bare STFT + power + mel projection alone takes 3.1-3.2.

The features are bit-identical to that pipeline's for the configs handled here (the decoding is
exact, and for them XLA compiles the front-end of a batch, fused with the decoding, to the same
arithmetic as the front-end of one clip: tests/test_cache.py); they differ from the graph
front-end exactly as the XLA front-end does (<= 2.4e-7 on [0, 1]-scaled two-stage features).
Configs whose front-end sums over samples or frames outside the FFT and the mel product
(pre-emphasis, per-band standardisation, mean-normalised raw windows) are not handled: there XLA
may order those sums or contract the pre-emphasis multiply-add differently in the batched, fused
program (measured: DcaseNet features 4.5e-5 apart, raw windows 1.2e-7), so the cache keeps the
per-clip pipeline for them.  Nor are files with several channels, another rate or encoding, float
samples or another container.  :func:`supported` says which.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

import numpy as np

from tf_scenes.errors import AudioError

from .audio import AudioSource

BYTES_PER_SAMPLE = {"pcm16": 2, "pcm24": 3, "pcm32": 4}


def config_supported(cfg) -> bool:
    """True if the batched, fused XLA program of `cfg` computes exactly the per-clip front-end:
    log-mel configs without pre-emphasis and without per-band standardisation (module docstring)."""
    from tf_scenes.features import get_feature_config

    cfg = get_feature_config(cfg)
    return cfg.kind == "logmel" and cfg.pre_emphasis is None and cfg.scaling != "per_band_standardise"


def supported(sources: Sequence[AudioSource], cfg) -> bool:
    """True if :func:`pcm_feature_batches` handles these files under `cfg`: a supported config, and
    every source a mono integer PCM WAV at the config's rate, all with one encoding (one XLA
    program), on a little-endian machine."""
    from tf_scenes.features import get_feature_config

    cfg = get_feature_config(cfg)
    if sys.byteorder != "little" or not sources or not config_supported(cfg):
        return False
    encodings = {s.encoding for s in sources}
    return (len(encodings) == 1 and encodings <= set(BYTES_PER_SAMPLE)
            and all(s.channels == 1 and s.sample_rate == cfg.sample_rate and s.data_offset > 0 for s in sources))


def pcm_to_float(raw, encoding: str):
    """(batch, n * width) uint8 little-endian PCM bytes -> (batch, n) float32 int / 2^(bits - 1).

    TensorFlow integer ops only (XLA-compilable): the bytes of each sample are assembled into an
    int32 and sign-extended with a left and an arithmetic right shift.  Exact for 16 and 24 bits;
    for 32 bits the int32 -> float32 conversion rounds as the in-graph decoder of
    :mod:`tf_scenes.pipelines.audio` does.
    """
    import tensorflow as tf

    width = BYTES_PER_SAMPLE[encoding]
    b = tf.cast(tf.reshape(raw, [tf.shape(raw)[0], -1, width]), tf.int32)  # (batch, n, width)
    v = b[..., 0]
    for k in range(1, width):
        v = v | tf.bitwise.left_shift(b[..., k], 8 * k)
    if width < 4:
        v = tf.bitwise.right_shift(tf.bitwise.left_shift(v, 32 - 8 * width), 32 - 8 * width)  # sign extension
    return tf.cast(v, tf.float32) * (2.0 ** -(8 * width - 1))  # (batch, n); a power of two: exact


def feature_program(cfg, encoding: str):
    """The XLA-compiled ``bytes (batch, n * width) uint8 -> features`` function of `cfg` (compiled on
    its first call for each batch shape; keep it to reuse the compilation)."""
    import tensorflow as tf

    from tf_scenes.features import get_feature_config
    from tf_scenes.features.frontend import tf_features

    cfg = get_feature_config(cfg)
    return tf.function(lambda raw: tf_features(cfg, pcm_to_float(raw, encoding)), jit_compile=True)


def _read_batch(sources: Sequence[AudioSource], num_samples: int, width: int, out: np.ndarray | None = None
                ) -> np.ndarray:
    """The first `num_samples` samples' bytes of each file as rows of a uint8 array (`out`'s
    leading rows when given), zero bytes past a file's end (zero samples: the cache's zero padding)."""
    nbytes = num_samples * width
    buf = out[:len(sources)] if out is not None else np.empty((len(sources), nbytes), np.uint8)
    for j, s in enumerate(sources):
        want = min(nbytes, s.frames * width)
        try:
            with open(s.path, "rb", buffering=0) as f:
                f.seek(s.data_offset)
                got = f.readinto(memoryview(buf[j])[:want])
        except OSError as e:
            raise AudioError(s.path, f"cannot read the samples: {e}") from e
        if got != want:
            raise AudioError(s.path, f"holds {got} bytes of samples where its header declared at least {want} "
                                     f"(file changed since it was probed?)")
        buf[j, want:] = 0
    return buf


def _aligned_empty(shape, align: int = 64) -> np.ndarray:
    """An uninitialised uint8 array whose data starts on an `align`-byte boundary (XLA's alignment)."""
    n = int(np.prod(shape))
    raw = np.empty(n + align, np.uint8)
    start = (-raw.ctypes.data) % align
    return raw[start:start + n].reshape(shape)


def _as_tensor(buf: np.ndarray):
    """`buf` as a TensorFlow tensor without a copy (DLPack), or with one where that is refused."""
    import tensorflow as tf

    try:
        return tf.experimental.dlpack.from_dlpack(buf.__dlpack__())
    except Exception:  # an older numpy or TensorFlow: copy
        return tf.convert_to_tensor(buf)


def pcm_feature_batches(sources: Sequence[AudioSource], cfg, *, num_samples: int, batch_size: int = 16,
                        program=None) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, features) for consecutive batches of `sources` (which must be :func:`supported`).

    Every waveform is cut or zero-padded to `num_samples` samples before its features are taken,
    as :func:`tf_scenes.pipelines.audio.decode_dataset` with ``num_samples`` does.  One XLA compilation per
    batch shape (the last partial batch is a second one); pass the :func:`feature_program` of an
    earlier call as `program` to reuse its compilations.
    """
    from tf_scenes.features import get_feature_config

    cfg = get_feature_config(cfg)
    sources = list(sources)
    if not supported(sources, cfg):
        raise ValueError(f"pcm_feature_batches handles mono integer PCM WAV files of one encoding at the config's "
                         f"rate under configs without pre-emphasis or standardisation (config {cfg.name!r})")
    encoding = sources[0].encoding
    width = BYTES_PER_SAMPLE[encoding]
    program = program if program is not None else feature_program(cfg, encoding)
    starts = list(range(0, len(sources), batch_size))
    # Two buffers: the reader thread fills one while the XLA program reads the other (handed to
    # TensorFlow without a copy); a buffer is refilled only after its batch's features are out.
    buffers = [_aligned_empty((min(batch_size, len(sources)), num_samples * width)) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pcm-reader") as reader:
        pending = reader.submit(_read_batch, sources[:batch_size], num_samples, width, buffers[0])
        for k, lo in enumerate(starts):
            raw = pending.result()
            if k + 1 < len(starts):  # read the next batch while this one is computed
                nxt = starts[k + 1]
                pending = reader.submit(_read_batch, sources[nxt:nxt + batch_size], num_samples, width,
                                        buffers[(k + 1) % 2])
            feats = program(_as_tensor(raw)).numpy()  # synchronous: `raw` is free again after this line
            yield slice(lo, lo + len(raw)), feats
