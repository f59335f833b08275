"""The scene + event remix of weakly supervised SED made inside tf.data, from its plan alone.

:func:`mixture_dataset` turns the plan that :mod:`tf_scenes.weak_sed.remix` writes to
``mixture.yaml`` (its :class:`~tf_scenes.weak_sed.remix.Mixture` or
:class:`~tf_scenes.weak_sed.remix.RemixRecord` objects) into each mixture's waveform, computed as
the remix's writer computes it (:func:`tf_scenes.weak_sed.remix.mix_components` then
:func:`tf_scenes.audio.write_audio`):

1. the sources are decoded by :func:`tf_scenes.pipelines.audio.index_reader` (the decoding of every
   feature cache: mono by averaging channels, resampled once with soxr; the same samples as the
   writer's ``read_audio``); the scene is cut or zero-padded to 10 s;
2. in float64 TensorFlow ops: the scene scaled to RMS 1; each event scaled by
   ``10 ** (snr / 20) / RMS(whole clip)`` and placed in ``[round(onset * sr), round(offset * sr))``,
   cut to its clip and to the mixture; scene + events; divided by the peak; clipped to
   ``[-1, 1 - 2^-23]`` as ``write_audio`` does before integer PCM;
3. optionally (``pcm_bits``) quantised as libsndfile writes 16- or 24-bit PCM, giving the samples
   the written file decodes to.

Without ``pcm_bits`` a mixture differs from the written 16-bit file by its quantisation only (at
most 1 LSB = 2^-15 with this libsndfile, which rounds to 32 bits and then drops the low bits;
1.5 LSB bounds older libsndfiles that round ``x * 32767``; tested). With ``pcm_bits=16`` the
samples equal the file's except where the float64 RMS, whose summation order differs from numpy's
by ~1e-16 relative, moves a sample across a quantisation step: about 1e-11 per sample (none in
the tests, ~0.1 expected over the paper's 24,000 mixtures).

:func:`cached_mixture_features` caches the features of these mixtures exactly like
:func:`tf_scenes.pipelines.cache.cached_features` caches those of the written files, keyed by the
plan, the SNR and the sources' sizes and modification times; with ``pcm_bits=16`` (the default)
the two caches hold the same numbers.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import numpy as np

from tf_scenes.errors import AudioError, ConfigError
from tf_scenes.weak_sed import remix

log = logging.getLogger(__name__)

# Version of the mixing below; part of the feature cache key (bump it when the mixing changes).
MIXING = "tf-scenes-remix-mix/1"
PCM_BITS = (16, 24)


@dataclasses.dataclass(frozen=True)
class MixtureTable:
    """What the pipeline needs of a plan, from the plan and the sources' headers (no samples read).

    scenes / events: the distinct source files (AudioSource, probed once each).
    scene_index: (mixtures,) row of each mixture's scene in `scenes`.
    event_index: (mixtures, slots) rows of its events in `events`; -1 marks an empty slot (plans
      whose mixtures hold different numbers of events).
    starts / ends: (mixtures, slots) ``round(onset * sr)`` and ``round(offset * sr)``.
    """

    mixtures: tuple
    scenes: tuple
    events: tuple
    scene_index: np.ndarray
    event_index: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    sample_rate: int

    def __len__(self) -> int:
        return len(self.mixtures)

    @property
    def samples(self) -> int:
        return remix.clip_samples(self.sample_rate)

    def check_levels(self, first_row: int, levels: np.ndarray) -> None:
        """AudioError naming the first silent source (RMS 0: its level cannot be set) among the
        rows ``first_row ...`` whose source RMS (``levels``: (rows, 1 + slots), scene first) are
        given, in the writer's words."""
        levels = np.asarray(levels)
        used = np.concatenate([np.ones((len(levels), 1), bool),
                               self.event_index[first_row:first_row + len(levels)] >= 0], axis=1)
        silent = np.argwhere(used & (levels == 0))
        if not len(silent):
            return
        row, slot = (int(v) for v in silent[0])
        i = first_row + row
        if slot == 0:
            raise AudioError(self.scenes[self.scene_index[i]].path, remix.SILENT_SCENE)
        raise AudioError(self.events[self.event_index[i, slot - 1]].path, remix.SILENT_EVENT)

    def sources(self) -> list[str]:
        """Every source file, scenes first."""
        return [s.path for s in (*self.scenes, *self.events)]


def mixture_table(mixtures: Sequence, events_root, scenes_root, sample_rate: int = remix.SAMPLE_RATE
                  ) -> MixtureTable:
    """Probe every source of the plan once and lay the plan out as index arrays.

    Raises AudioError naming the file for a missing or unreadable source and for a scene shorter
    than 10 s (less the writer's 10 ms tolerance), before any sample is decoded.
    """
    from .audio import probe_audio

    mixtures = tuple(mixtures)
    if not mixtures:
        raise ConfigError("mixture_table: the plan holds no mixture")
    scene_of, events_of = [], []
    for m in mixtures:
        scene, events = remix.source_paths(m, events_root, scenes_root)
        scene_of.append(str(scene))
        events_of.append([str(p) for p in events])
    scene_rows = {p: k for k, p in enumerate(dict.fromkeys(scene_of))}
    event_rows = {p: k for k, p in enumerate(dict.fromkeys(p for ps in events_of for p in ps))}
    scenes = tuple(probe_audio(scene_rows))
    events = tuple(probe_audio(event_rows))
    shortest = remix.min_scene_samples(sample_rate)
    for s in scenes:
        if s.resampled_frames(sample_rate) < shortest:
            raise AudioError(s.path, f"scene is {s.resampled_frames(sample_rate) / sample_rate:.3f} s, "
                                     f"need {remix.CLIP_SECONDS:g} s")
    slots = max(len(m.events) for m in mixtures)
    event_index = np.full((len(mixtures), slots), -1, np.int32)
    starts = np.zeros((len(mixtures), slots), np.int64)
    ends = np.zeros((len(mixtures), slots), np.int64)
    for i, (m, paths) in enumerate(zip(mixtures, events_of)):
        for k, (ev, p) in enumerate(zip(m.events, paths)):
            event_index[i, k] = event_rows[p]
            starts[i, k], ends[i, k] = remix.event_span(ev, sample_rate)
    return MixtureTable(mixtures, scenes, events, np.array([scene_rows[p] for p in scene_of], np.int32),
                        event_index, starts, ends, int(sample_rate))


def pcm_quantise(x, bits: int):
    """Float64 samples in [-1, 1 - 2^-23] as libsndfile writes them to `bits`-bit PCM (16 or 24)
    and any reader decodes them (int / 2^(bits-1)).

    libsndfile (1.2, the one soundfile ships) rounds ``x * 2^31`` to a 32-bit integer and keeps its
    top `bits` bits (an arithmetic shift: floor); measured bit for bit against it on 3.4 million
    samples, ties and near-ties included. Every step is exact in float64.
    """
    import tensorflow as tf

    if bits not in PCM_BITS:
        raise ConfigError(f"pcm_bits must be one of {PCM_BITS} or None, got {bits!r}")
    q = tf.floor(tf.round(x * 2.0 ** 31) / 2.0 ** (32 - bits))  # tf.round: half to even, as lrint
    return q / 2.0 ** (bits - 1)


def _rms(x):
    import tensorflow as tf

    return tf.sqrt(tf.reduce_mean(tf.square(x)))


def mixture_dataset(mixtures, events_root=None, scenes_root=None, *, snr: float,
                    sample_rate: int = remix.SAMPLE_RATE, pcm_bits: int | None = None, levels: bool = False,
                    errors=None, num_parallel_calls=None, deterministic: bool = True):
    """tf.data.Dataset of the mixtures' waveforms at `snr` dB, in plan order.

    Args:
      mixtures: the plan (Mixture or RemixRecord objects, e.g. ``read_remix(folder,
        check_files=False)``), or a :class:`MixtureTable` of it (then the roots are not needed).
      events_root, scenes_root: the FSDKaggle2018 and scene roots the plan draws from.
      snr: event-to-scene SNR in dB.
      sample_rate: the mixtures' rate (the writer's ``sr``).
      pcm_bits: None: float32 samples before any quantisation (the writer's float output, after
        its clip); 16 or 24: quantised as the written file (see the module docstring).
      levels: elements are ``(waveform, levels)`` where levels (1 + slots,) float64 holds the RMS
        of the scene and of each whole event clip (0 for an empty slot): a silent source (RMS 0)
        makes the waveform NaN, and :meth:`MixtureTable.check_levels` names it.
      errors: a :class:`tf_scenes.pipelines.audio.DecodeErrors` for
        :func:`tf_scenes.pipelines.audio.iterate_checked` (decoding errors name the file).
    Elements: float32 (samples,) waveforms (10 s at `sample_rate`).
    """
    import tensorflow as tf

    from .audio import DecodeErrors, index_reader

    if pcm_bits is not None and pcm_bits not in PCM_BITS:
        raise ConfigError(f"pcm_bits must be one of {PCM_BITS} or None, got {pcm_bits!r}")
    table = mixtures if isinstance(mixtures, MixtureTable) else mixture_table(mixtures, events_root, scenes_root,
                                                                              sample_rate)
    sr, n = table.sample_rate, table.samples
    errors = errors if errors is not None else DecodeErrors()
    read_scene = index_reader(list(table.scenes), sr, num_samples=n, errors=errors)
    read_event = index_reader(list(table.events), sr, errors=errors)
    gain = 10.0 ** (float(snr) / 20.0)  # in Python, as the writer (tf.pow may differ by an ulp)
    scene_index = tf.constant(table.scene_index)
    event_index = tf.constant(table.event_index)
    starts, ends = tf.constant(table.starts), tf.constant(table.ends)
    slots = table.event_index.shape[1]
    f64 = tf.float64

    def place(i, k):
        clip = tf.cast(read_event(event_index[i, k]), f64)
        level = _rms(clip)
        start = starts[i, k]
        end = tf.minimum(tf.minimum(ends[i, k], start + tf.cast(tf.shape(clip)[0], tf.int64)), n)
        track = clip[:end - start] * (gain / level)  # the writer's order: the factor first
        return tf.pad(track, [[start, n - end]]), level

    def empty():
        return tf.zeros([n], f64), tf.constant(0.0, f64)

    @tf.autograph.experimental.do_not_convert
    def mix(i):
        scene = tf.cast(read_scene(scene_index[i]), f64)
        scene_level = _rms(scene)
        scene = scene / scene_level
        tracks, found = None, [scene_level]
        for k in range(slots):  # summed in slot order, as numpy sums the writer's track rows
            track, level = tf.cond(event_index[i, k] >= 0, lambda k=k: place(i, k), empty)
            track = tf.ensure_shape(track, [n])
            tracks = track if tracks is None else tracks + track
            found.append(level)
        out = scene + tracks
        out = out / tf.reduce_max(tf.abs(out))
        out = tf.clip_by_value(out, -1.0, remix.PCM_CLIP_HIGH)  # write_audio's clip before PCM
        if pcm_bits is not None:
            out = pcm_quantise(out, pcm_bits)
        out = tf.cast(out, tf.float32)
        return (out, tf.stack(found)) if levels else out

    ds = tf.data.Dataset.range(len(table))
    return ds.map(mix, num_parallel_calls=num_parallel_calls or tf.data.AUTOTUNE, deterministic=deterministic)


def mixture_identity(table: MixtureTable, snr: float, pcm_bits: int | None) -> dict:
    """What the mixtures depend on: the plan, the SNR, the rate, the quantisation, the mixing
    version and every source file's resolved path, size and modification time."""
    from .cache import file_records

    plan = [remix.Mixture(m.name, m.fold, m.scene_file, tuple(m.events)) for m in table.mixtures]
    return {"mixing": MIXING, "plan_sha256": remix.plan_digest(plan), "snr": float(snr),
            "sample_rate": table.sample_rate, "pcm_bits": pcm_bits, "sources": file_records(table.sources())}


def cached_mixture_features(mixtures, events_root, scenes_root, snr: float, feature_cfg, cache_dir, *,
                            pcm_bits: int | None = 16, batch_size: int = 16, progress: bool = True,
                            jit_compile: bool | None = None) -> np.ndarray:
    """Features of the plan's mixtures at `snr`, made in the pipeline (:func:`mixture_dataset`) and
    cached like :func:`tf_scenes.pipelines.cache.cached_features` (read-only memory-mapped
    (N, frames, mel_bands, channels), one cache per plan, SNR and set of sources).

    pcm_bits: 16 (default): the mixtures as the 16-bit files `tf-scenes remix` writes, so that the
    features equal those of the written files; None: unquantised.
    """
    from tf_scenes.features.config import get_feature_config

    from .cache import cached_waveform_features

    cfg = get_feature_config(feature_cfg)
    table = mixtures if isinstance(mixtures, MixtureTable) else mixture_table(mixtures, events_root, scenes_root,
                                                                              cfg.sample_rate)
    if table.sample_rate != cfg.sample_rate:
        raise ConfigError(f"the mixtures are made at {table.sample_rate} Hz and feature config {cfg.name!r} "
                          f"reads {cfg.sample_rate} Hz")

    def waveforms(errors):
        return mixture_dataset(table, snr=snr, pcm_bits=pcm_bits, levels=True, errors=errors)

    return cached_waveform_features(waveforms, len(table), cfg, cache_dir,
                                    identity=mixture_identity(table, snr, pcm_bits), num_samples=table.samples,
                                    name=f"remix-{remix.snr_dirname(snr)}", check=table.check_levels,
                                    batch_size=batch_size, progress=progress, jit_compile=jit_compile,
                                    what=f"remix mixtures at {float(snr):g} dB")

