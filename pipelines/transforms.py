"""Named, seeded training transforms that :func:`tf_scenes.pipelines.train_data.make_train_dataset`
composes, in the order given, from what a study's config asks for.

    transforms = [spec_augment(max_freq_width=12, max_time_width=39, per_channel=True), crop(400)]
    ds = make_train_dataset(x, y, batch_size=32, seed=s, epochs=E, transforms=transforms,
                            mixup=Mixup(alpha=0.4, pairing="halves"))

An example transform is a pure function ``(x, y, seed) -> (x, y)`` of one example with a shape-[2]
seed (stateless random ops only). Each named kind draws from its own seed stream (``stream``), so
adding, removing or reordering one transform never changes the draws of another, and the draws
are a function of (dataset seed, kind, example position) alone. The batch-level transform is mixup.

Waveform kinds (one example is a waveform ``(samples,)``): :func:`speed_change`, :func:`time_stretch`,
:func:`pitch_shift`, :func:`compander`, :func:`noise`, :func:`gain`, each applied with a probability
(the branch not taken is not computed) and built on the two-stage study's audio augmentations
(:mod:`tf_scenes.pipelines.waveform_augment`): band-limited resampling, the phase vocoder, the
sox-style compander and the noise draw.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from . import augment as _aug

# Seed streams of the named kinds (fixed: a kind's draws must not depend on the others present).
STREAMS = {"map": 0, "spec_augment": 1, "crop": 2, "waveform": 3, "speed_change": 4, "time_stretch": 5,
           "pitch_shift": 6, "compander": 7, "noise": 8, "gain": 9}


@dataclasses.dataclass(frozen=True)
class ExampleTransform:
    """name: what it is (for logs and errors); fn: ``(x, y, seed) -> (x, y)``; stream: its seed stream."""

    name: str
    fn: Callable
    stream: int


@dataclasses.dataclass(frozen=True)
class Mixup:
    """Mixup of each batch (:func:`tf_scenes.pipelines.augment.mixup`): lambda ~ Beta(alpha, alpha);
    ``pairing="halves"`` mixes each output batch from 2 x batch_size examples (two-stage reference);
    ``from_epoch``: only in epochs >= this (DcaseNet: 6, 0-based)."""

    alpha: float
    pairing: str = "permutation"
    per_example: bool = True
    from_epoch: int = 0

    def __post_init__(self):
        if self.pairing not in _aug.MIXUP_PAIRINGS:
            raise ValueError(f"unknown mixup_pairing {self.pairing!r}; choose one of {_aug.MIXUP_PAIRINGS}")


def crop(length: int, axis: int = 0) -> ExampleTransform:
    """A random crop of ``length`` frames along ``axis`` (two-stage: 400 of 423 frames)."""
    length = int(length)

    def fn(x, y, seed):
        return _aug.random_crop(x, length, seed, axis=axis), y

    return ExampleTransform(f"crop({length})", fn, STREAMS["crop"])


def spec_augment(**kwargs) -> ExampleTransform:
    """SpecAugment masks (:func:`tf_scenes.pipelines.augment.spec_augment`; ``{}``: its defaults)."""

    def fn(x, y, seed):
        return _aug.spec_augment(x, seed, **kwargs), y

    return ExampleTransform("spec_augment", fn, STREAMS["spec_augment"])


def map_example(name: str, fn: Callable) -> ExampleTransform:
    """A study's own per-example function ``(x, y, seed) -> (x, y)`` (e.g. tile short clips to the
    crop, cut label-aligned SED windows), run on the "map" stream."""
    return ExampleTransform(name, fn, STREAMS["map"])


def waveform(name: str, fn: Callable) -> ExampleTransform:
    """A waveform augmentation ``(x, seed) -> x`` applied to each example (labels unchanged)."""

    def wrapped(x, y, seed):
        return fn(x, seed), y

    return ExampleTransform(name, wrapped, STREAMS["waveform"])


# ----------------------------------------------------------------------------- waveform kinds


def _uniform(seed, lo, hi):
    import tensorflow as tf

    return tf.random.stateless_uniform([], seed=seed, minval=float(lo), maxval=float(hi))


def _with_probability(name: str, prob: float, apply: Callable) -> ExampleTransform:
    """A waveform kind: ``apply(x, seed) -> x`` with probability `prob` (drawn from the example's
    seed), else the example unchanged; only the branch taken is computed."""
    import tensorflow as tf

    prob = float(prob)
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"{name}: probability must be in [0, 1], got {prob}")

    def fn(x, y, seed):
        if prob >= 1.0:
            return apply(x, _aug.fold_seed(seed, 1)), y
        u = _uniform(_aug.fold_seed(seed, 0), 0.0, 1.0)
        return tf.cond(u < prob, lambda: apply(x, _aug.fold_seed(seed, 1)), lambda: tf.identity(x)), y

    return ExampleTransform(name, fn, STREAMS[name])


def speed_change(max_change: float, prob: float = 1.0) -> ExampleTransform:
    """Play the waveform at a rate ~ U(1 - max_change, 1 + max_change) (tempo and pitch together)
    by band-limited resampling (:func:`tf_scenes.pipelines.waveform_augment.apply_speed_change`):
    the same length out, zero-padded at the end when faster, cut when slower."""
    from . import waveform_augment as wa

    if not 0.0 <= max_change < 1.0:
        raise ValueError(f"speed_change: max_change must be in [0, 1), got {max_change}")
    return _with_probability("speed_change", prob, lambda x, s: wa.apply_speed_change(
        x, _uniform(s, 1.0 - max_change, 1.0 + max_change)))


def time_stretch(max_change: float, prob: float = 1.0) -> ExampleTransform:
    """Change the tempo by a rate ~ U(1 - max_change, 1 + max_change) at the same pitch (phase
    vocoder, :func:`tf_scenes.pipelines.waveform_augment.apply_time_stretch`); same length out."""
    from . import waveform_augment as wa

    if not 0.0 <= max_change < 1.0:
        raise ValueError(f"time_stretch: max_change must be in [0, 1), got {max_change}")
    return _with_probability("time_stretch", prob, lambda x, s: wa.apply_time_stretch(
        x, _uniform(s, 1.0 - max_change, 1.0 + max_change)))


def pitch_shift(max_semitones: float, prob: float = 1.0) -> ExampleTransform:
    """Shift the pitch by U(-max_semitones, max_semitones) semitones at the same tempo
    (:func:`tf_scenes.pipelines.waveform_augment.apply_pitch_shift`, librosa's method)."""
    from . import waveform_augment as wa

    if max_semitones < 0:
        raise ValueError(f"pitch_shift: max_semitones must be >= 0, got {max_semitones}")
    return _with_probability("pitch_shift", prob, lambda x, s: wa.apply_pitch_shift(
        x, _uniform(s, -max_semitones, max_semitones)))


def compander(curves, sample_rate: int, prob: float = 1.0, keep_rms: bool = True) -> ExampleTransform:
    """Dynamic range compression with a transfer curve drawn from `curves` (names of
    :data:`tf_scenes.pipelines.offline_augment.COMPAND_CURVES`): the two-stage "drc" kind (sox
    compand, attack 0.2 s, decay 0.3 s, peak limited to 0.999) at `sample_rate`; with `keep_rms`
    the result is scaled back to the input's RMS (a change of dynamics, not of level)."""
    import tensorflow as tf

    from . import waveform_augment as wa

    params = wa.AugmentParams(wa.WaveAugmentConfig(sample_rate=int(sample_rate), curves=tuple(curves)))

    def apply(x, seed):
        y = wa.augment("drc", x, seed, params)
        if not keep_rms:
            return y
        rms_x, rms_y = (tf.sqrt(tf.reduce_mean(tf.square(v))) for v in (x, y))
        return y * tf.where(rms_y > 0, rms_x / tf.where(rms_y > 0, rms_y, 1.0), 1.0)

    return _with_probability("compander", prob, apply)


def noise(snr_db: tuple[float, float], prob: float = 1.0) -> ExampleTransform:
    """Add white Gaussian noise at an SNR ~ U(snr_db) relative to the example's RMS (the
    two-stage "noise" kind's draw, scaled to that level)."""
    import tensorflow as tf

    from . import waveform_augment as wa

    lo, hi = (float(v) for v in snr_db)
    if lo > hi:
        raise ValueError(f"noise: low SNR {lo} above high SNR {hi}")
    unit = wa.AugmentParams(wa.WaveAugmentConfig(noise_std=1.0))
    kind = wa.REGISTRY["noise"]

    def apply(x, seed):
        snr = _uniform(_aug.fold_seed(seed, 0), lo, hi)
        std = tf.sqrt(tf.reduce_mean(tf.square(x)) + 1e-12) * 10.0 ** (-snr / 20.0)
        drawn = kind.draw(_aug.fold_seed(seed, 1), x, unit)  # N(0, 1) per sample
        return kind.apply(x, {"noise": drawn["noise"] * std}, unit)

    return _with_probability("noise", prob, apply)


def gain(max_db: float) -> ExampleTransform:
    """Multiply by a gain ~ U(-max_db, max_db) dB."""
    if max_db < 0:
        raise ValueError(f"gain: max_db must be >= 0, got {max_db}")
    return _with_probability("gain", 1.0, lambda x, s: x * 10.0 ** (_uniform(s, -max_db, max_db) / 20.0))
