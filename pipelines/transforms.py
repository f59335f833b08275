"""Named, seeded training transforms that :func:`tf_scenes.pipelines.train_data.make_train_dataset`
composes, in the order given, from what a study's config asks for.

    transforms = [spec_augment(max_freq_width=12, max_time_width=39, per_channel=True), crop(400)]
    ds = make_train_dataset(x, y, batch_size=32, seed=s, epochs=E, transforms=transforms,
                            mixup=Mixup(alpha=0.4, pairing="halves"))

An example transform is a pure function ``(x, y, seed) -> (x, y)`` of one example with a shape-[2]
seed (stateless random ops only). Each named kind draws from its own seed stream (``stream``), so
adding, removing or reordering one transform never changes the draws of another, and the draws
are a function of (dataset seed, kind, example position) alone. The batch-level transform is mixup.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from . import augment as _aug

# Seed streams of the named kinds (fixed: a kind's draws must not depend on the others present).
STREAMS = {"map": 0, "spec_augment": 1, "crop": 2, "waveform": 3}


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
