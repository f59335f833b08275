"""The model families: one entry per paper, the one list the rest of the suite reads.

A family is a folder on each side of the layering (docs/architecture.md):

* the library side, ``tf_scenes/<name>/``: ``model.py`` (the builders, registered by name, with
  their frozen config dataclasses and variants as data), ``paper.py`` (the published numbers) and
  ``__init__.py`` defining ``FAMILY``, a :class:`Family`: what the suite needs to know about the
  family's models (card facts, export contract, saliency defaults, extra commands);
* the study side, ``experiments/<name>/`` (installed as ``tf_scenes.experiments.<name>``):
  ``plan.py`` (config and run plan), ``report.py`` (tables and figures), ``configs/*.yaml`` and
  ``__init__.py`` defining ``STUDY``.

The registry, ``tf-scenes reproduce / export / predict / saliency`` and the Python API read
:data:`FAMILIES` and the :class:`Family` objects; no other code branches on family names.
Adding a family is one folder on each side and one line below.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

from .errors import TFScenesError

# name -> (library module defining FAMILY, study module defining STUDY). The study module is only
# a name here: the library never imports it (the entry points do).
FAMILIES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "two_stage": ("tf_scenes.two_stage", "tf_scenes.experiments.two_stage"),
    "dcasenet": ("tf_scenes.dcasenet", "tf_scenes.experiments.dcasenet"),
    "weak_sed": ("tf_scenes.weak_sed", "tf_scenes.experiments.weak_sed"),
    "raw_waveform": ("tf_scenes.raw_waveform", "tf_scenes.experiments.raw_waveform"),
})


@dataclasses.dataclass(frozen=True)
class CardFacts:
    """What a model card records about a model because of what the model is (not how it was trained).

    outputs: output name -> class names (the order of the output's last axis).
    saliency: defaults of `tf-scenes saliency`: {"method": "cam" | "gradcam", "layer": name,
        "output": head or None, "attention": [outputs drawn beside the map]}.
    input: "features" (the Keras model takes the feature front-end's output) or "waveform".
    feature_config: the tf_scenes.features config (name) that makes the model's input.
    squeeze_channel: the model takes (batch, frames, mels) features (no channel axis).
    extra: more card fields (family-specific, JSON data only).
    """

    outputs: Mapping[str, Sequence[str]]
    saliency: Mapping[str, Any]
    feature_config: str
    input: str = "features"
    squeeze_channel: bool = False
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ExportSpec:
    """What `tf-scenes export` writes for a run (or a group of runs): a Keras model taking waveforms
    [batch, samples] at ``sample_rate``, the class names of its outputs, metadata recorded in the
    export, and the shortest input it accepts (None: what its front-end needs)."""

    model: Any
    sample_rate: int
    labels: Mapping[str, Sequence[str]]
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    min_samples: int | None = None


@dataclasses.dataclass(frozen=True)
class Family:
    """One paper's models as the suite sees them.

    name: the family's name (its folders are named so).
    title: the paper, for listings and help texts.
    builders: the registry names of its builders (tf_scenes.registry).
    default_config: ``(builder) -> config``: the paper's model of a builder (its variant, as data).
    card: ``(builder, config, context) -> CardFacts``; ``context`` holds what only the study knows
        (class names of data-dependent outputs, trained tasks), as the family documents.
    export: ``(run_dir) -> ExportSpec`` for one trained run; None: the feature front-end and the
        model, as :func:`tf_scenes.model_io.waveform_model` builds it.
    group_export: ``(folder) -> ExportSpec | None`` for a folder holding several runs that ship as
        one system (the two-stage study); None: the family has none.
    saliency_runs: ``(folder) -> [run_dir, ...] | None``: the runs `tf-scenes saliency` explains
        for such a group folder (or an export of it); None: the family has none.
    saliency_class: ``(card, class_arg) -> class_arg``: translate a class named for the group into
        one run's class (two-stage: a scene into its broad class for the 3-class model).
    saliency_extra: ``(run_dir, model, out_path) -> {name: path}``: extra figures of a run.
    commands: subcommands the family adds to `tf-scenes`: name -> (module, one-line help); the
        module has ``add_arguments(parser)`` and ``run(args) -> int``.
    """

    name: str
    title: str
    builders: tuple[str, ...]
    default_config: Callable[[str], Any]
    card: Callable[..., CardFacts]
    export: Callable[[Path], ExportSpec] | None = None
    group_export: Callable[[Path], ExportSpec | None] | None = None
    saliency_runs: Callable[[Path], list | None] | None = None
    saliency_class: Callable[[dict, Any], Any] | None = None
    saliency_extra: Callable[..., dict] | None = None
    commands: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)


def names() -> list[str]:
    return list(FAMILIES)


def get(name: str) -> Family:
    """The :class:`Family` of a name listed in :data:`FAMILIES` (TFScenesError otherwise)."""
    if name not in FAMILIES:
        raise TFScenesError(f"unknown model family {name!r}; families: {', '.join(FAMILIES)}")
    family = importlib.import_module(FAMILIES[name][0]).FAMILY
    if family.name != name:
        raise TFScenesError(f"{FAMILIES[name][0]} defines family {family.name!r}, listed as {name!r}")
    return family


def all_families() -> list[Family]:
    return [get(n) for n in FAMILIES]


def study_module(name: str) -> str:
    """The module of a family's study (imported by the entry points, never by the library)."""
    if name not in FAMILIES:
        raise TFScenesError(f"unknown study {name!r}; studies: {', '.join(FAMILIES)}")
    return FAMILIES[name][1]


def of_builder(builder: str) -> Family:
    """The family owning a registry builder name."""
    for family in all_families():
        if builder in family.builders:
            return family
    raise TFScenesError(f"no family owns the model {builder!r}")
