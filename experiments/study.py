"""The shared study runner: every paper's study is a plan of runs that this module trains or reuses,
evaluates and reports in one way (docs/architecture.md).

A study (``experiments/<family>/__init__.py`` defines ``STUDY``) supplies what is its own:

* ``Config``: its frozen config dataclass (shared sections below; every range checked on load);
* ``prepare(cfg, env) -> data``: resolve and read the data, features, splits (``data.label`` is
  the :class:`~tf_scenes.datasets.provenance.DataLabel` every output carries);
* ``plan(cfg, data) -> [RunSpec, ...]``: the runs, in an order where every ``init_from`` comes
  first;
* ``train(run, data, run_dir, build, env) -> Trained``: compile and fit the model ``build()``
  returns (always built through the registry under the name that goes on the card);
* ``evaluate(run, model, data, run_dir) -> metrics``: score the evaluation split, write the score
  files (:mod:`tf_scenes.scores`), return the flat metrics;
* ``report(cfg, data, results, env) -> dict``: tables (:mod:`tf_scenes.experiments.tables`),
  figures and exports; returns what study.json records.

and this module does the rest the same way for all: the output-folder lock, the cache root, one
seed derivation, one per-run set-up (clear the Keras session, seed, precision, strategy), one reuse
rule (:func:`tf_scenes.runs.is_finished`: same config, finished, card + metrics + scores present),
the model card (facts from the family, :mod:`tf_scenes.families`) and study.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Optional

from tf_scenes.config import bounded
from tf_scenes.errors import OutputDirError

log = logging.getLogger(__name__)

WEIGHTS = "model.weights.h5"
LOCK = ".tf_scenes.lock"
CACHE_ENV = "TF_SCENES_CACHE"


# ----------------------------------------------------------------------------------------------
# config sections every study shares


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Fields of every study's ``data`` section (studies extend it)."""

    root: Optional[str] = None  # the dataset (set by --data); None: the synthetic default
    synthetic_dir: str = "data"  # where the synthetic default lives (generated if absent)
    synthetic_size: Literal["tiny", "small", "full"] = "small"
    synthetic_seed: int = 0
    skip_missing: bool = False  # listed files missing from a real copy: skip them (recorded) instead of failing
    allow_outside_root: bool = False  # accept csv rows that point outside the dataset folder


def reader_options(data: DataConfig, report) -> dict:
    """Keyword arguments of the dataset readers from the data section: missing files skipped (into
    ``report``, a tf_scenes.datasets.LoadReport) or an error, rows outside the root refused or not."""
    return {"missing": "skip" if data.skip_missing else "error", "allow_outside_root": data.allow_outside_root,
            "report": report}


def label_with_skipped(label, report):
    """The data label, saying when listed files were skipped (study.json lists each of them)."""
    if not report.skipped:
        return label
    return dataclasses.replace(label, text=f"{label.text} ({len(report.skipped)} listed files missing and skipped; "
                                          "study.json lists them)")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Fields of every study's ``train`` section (studies extend it)."""

    eval_batch_size: int = bounded(32, ge=1)
    select: Literal["best", "last"] = "best"  # the best epoch on the validation split, or the last
    strategy: Literal["default", "one_device", "mirrored", "multi_worker", "tpu"] = "default"  # tf.distribute
    precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = "auto"  # auto: mixed float16 on a GPU
    jit_compile: Literal["auto", "on", "off"] = "auto"  # XLA; "auto": Keras' rule (tf_scenes.training.distribute)


# ----------------------------------------------------------------------------------------------
# what a study provides


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One model run of a plan.

    name: its folder under ``OUT/runs`` ("resnet10", "2apae/snr20/fold4").
    builder, model_config: the registry builder and its config (what the card records).
    config: everything the run's result depends on, as plain data: its config.yaml and the key of
        the reuse rule.
    seed: from :func:`run_seed`.
    train: the study's train section (precision, strategy) for the run's set-up.
    context: what the family's card needs from the study (class names, trained tasks).
    init_from: a run of the same plan whose selected weights start this one.
    item: the study's own description of the run (not part of the reuse key).
    """

    name: str
    builder: str
    model_config: Any
    config: Mapping
    seed: int
    train: Any
    context: Mapping = dataclasses.field(default_factory=dict)
    init_from: Optional[str] = None
    item: Any = None


@dataclasses.dataclass
class Trained:
    """What a study's ``train`` returns: the model with the selected weights loaded (the one the
    registry built), and card fields about the training (selected epoch, normalisation...)."""

    model: Any
    card: dict = dataclasses.field(default_factory=dict)
    normalization: Optional[dict] = None


@dataclasses.dataclass(frozen=True)
class Study:
    family: str
    Config: type
    prepare: Callable
    plan: Callable
    train: Callable
    evaluate: Callable
    report: Callable
    description: str = ""
    commands: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    # score files every finished run holds (or a function of the RunSpec giving them)
    required: tuple[str, ...] | Callable = ("scores_evaluate.tsv",)

    @property
    def config_dir(self) -> Path:
        import importlib

        from tf_scenes.families import study_module

        return Path(importlib.import_module(study_module(self.family)).__file__).resolve().parent / "configs"

    def profiles(self) -> dict[str, str]:
        """profile name -> its description (the YAML's ``description``)."""
        from tf_scenes.config import read_yaml

        out = {}
        for p in sorted(self.config_dir.glob("*.yaml")):
            out[p.stem] = str(read_yaml(p).get("description", ""))
        return out


@dataclasses.dataclass
class StudyEnv:
    """What the runner hands to a study's hooks."""

    out: Path
    cache_dir: Path
    study: Study
    config: Any


@dataclasses.dataclass
class RunResult:
    """A finished run: its folder, metrics and (loaded on demand) model."""

    spec: RunSpec
    run_dir: Path
    metrics: dict
    reused: bool
    _model: Any = None

    def model(self):
        if self._model is None:
            from tf_scenes.model_io import load_run_model

            self._model = load_run_model(self.run_dir)[0]
        return self._model

    def scores(self, split: str = "evaluate", output: str | None = None):
        from tf_scenes.scores import read_scores

        return read_scores(self.run_dir / score_file(split, output))


def score_file(split: str = "evaluate", output: str | None = None) -> str:
    """The name of a run's score file: ``scores_<split>[_<output>].tsv``."""
    return f"scores_{split}{'_' + output if output else ''}.tsv"


def run_seed(seed: int, key: str) -> int:
    """The seed of one run: the study seed plus a stable hash of the run's key (its name, or what
    identifies it across a study's repeats), so it does not depend on the order runs are made in."""
    return int(seed) + int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 10_000


# ----------------------------------------------------------------------------------------------
# the runner


def cache_root(cli_value=None) -> Path:
    """The cache root: ``--cache-dir``, else $TF_SCENES_CACHE, else $XDG_CACHE_HOME/tf-scenes
    (default ~/.cache/tf-scenes). Feature caches, offline augmentations and remixes live below it."""
    if cli_value:
        return Path(cli_value).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "tf-scenes"


@contextlib.contextmanager
def output_lock(out: Path):
    """Hold an exclusive lock on an output folder for the whole study: a second study writing
    into the same folder fails at once with a message naming the holder. The lock is an OS file
    lock (released when the process dies, even by kill -9); the file says who holds it."""
    import fcntl

    path = Path(out) / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = Path(path).read_text(errors="replace").strip() or "another process"
            raise OutputDirError(f"{out}: another study is writing into this folder ({holder}); wait for it to "
                                 "finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, (f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv)}\n").encode())
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)


def run_study(study: Study, cfg, out, *, cache_dir=None) -> dict:
    """Run a whole study into ``out``; returns what its report returned."""
    from tf_scenes import runs
    from tf_scenes.io_utils import atomic_write_json, ensure_writable_dir
    from tf_scenes.training.trainer import set_determinism

    out = ensure_writable_dir(Path(out))
    cache = Path(cache_dir) if cache_dir is not None else cache_root()
    ensure_writable_dir(cache)  # fail before any long work, not after it
    with output_lock(out):
        log.info("cache: %s", cache)
        env = StudyEnv(out, cache, study, cfg)
        set_determinism(cfg.seed)
        data = study.prepare(cfg, env)
        label = data.label
        log.info("data: %s", label.text)
        runs.create_run_dir(out, cfg, seed=cfg.seed, name=study.family)
        plan = study.plan(cfg, data)
        names = [r.name for r in plan]
        if len(set(names)) != len(names):
            raise ValueError(f"{study.family}: the plan repeats run names")
        results: dict[str, RunResult] = {}
        for i, spec in enumerate(plan):
            log.info("run %d/%d: %s", i + 1, len(plan), spec.name)
            results[spec.name] = train_or_reuse(study, spec, data, out / "runs" / spec.name, env, results)
        report = study.report(cfg, data, results, env) or {}
        doc = {"study": study.family, "profile": getattr(cfg, "profile", None),
               "description": getattr(cfg, "description", ""), **label.as_dict(), "cache_dir": str(cache),
               "skipped_files": [s if isinstance(s, dict) else str(s) for s in getattr(data, "skipped", ()) or ()],
               "runs": names,
               **{k: v for k, v in report.items() if k != "summary"}}
        atomic_write_json(out / "study.json", doc)
        runs.finish_run(out, report.get("summary", {}))
        log.info("done: %s", json.dumps(report.get("summary", {}), default=str)[:500])
        return report


@contextlib.contextmanager
def run_setup(seed: int, train):
    """The set-up of every run: a fresh Keras session (no graphs of earlier runs), the run's seed
    for initial weights and dropout, the precision policy and the tf.distribute strategy."""
    import keras

    from tf_scenes.training.distribute import configure_precision, get_strategy

    keras.backend.clear_session()
    keras.utils.set_random_seed(int(seed))
    configure_precision(getattr(train, "precision", "auto"))
    yield get_strategy(getattr(train, "strategy", "default"))


def train_or_reuse(study: Study, spec: RunSpec, data, run_dir: Path, env: StudyEnv,
                   done: Mapping[str, RunResult] | None = None) -> RunResult:
    """Reuse the run if its folder holds it finished with the same config; else train, write the
    model card, evaluate (scores + metrics) and mark it finished."""
    from tf_scenes import registry, runs
    from tf_scenes.io_utils import read_json

    scores = study.required(spec) if callable(study.required) else study.required
    required = ("model.json", "metrics.json", *scores)
    if runs.is_finished(run_dir, spec.config, required=required):
        log.info("%s: finished earlier, reusing %s", spec.name, run_dir)
        return RunResult(spec, run_dir, read_json(run_dir / "metrics.json"), reused=True)  # NaN comes back as NaN
    if spec.init_from and (done is None or spec.init_from not in done):
        raise ValueError(f"{spec.name}: starts from {spec.init_from!r}, which the plan has not run before it")
    runs.create_run_dir(run_dir, spec.config, seed=spec.seed, name=spec.name)
    with run_setup(spec.seed, spec.train) as strategy:
        def build():
            with strategy.scope():
                return registry.build(spec.builder, spec.model_config)

        trained = study.train(spec, data, run_dir, build, env, strategy=strategy,
                              init=(done or {}).get(spec.init_from) if spec.init_from else None)
    save_weights(trained.model, run_dir / WEIGHTS)
    write_card(study.family, spec, run_dir, trained)
    metrics = study.evaluate(spec, trained.model, data, run_dir)
    runs.finish_run(run_dir, metrics)
    return RunResult(spec, run_dir, metrics, reused=False, _model=trained.model)


def save_weights(model, path: Path) -> Path:
    """Inference weights of the selected model (no optimizer state): what the card points to."""
    from tf_scenes.io_utils import atomic_path

    with atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(str(tmp))
    return path


def write_card(family_name: str, spec: RunSpec, run_dir: Path, trained: Trained) -> None:
    from tf_scenes import families
    from tf_scenes.model_io import write_model_card

    facts = families.get(family_name).card(spec.builder, spec.model_config, spec.context)
    write_model_card(run_dir, family=family_name, builder=spec.builder, config=spec.model_config,
                     feature_config=facts.feature_config, outputs=dict(facts.outputs), weights=WEIGHTS,
                     input_kind=facts.input, saliency=dict(facts.saliency), normalization=trained.normalization,
                     extra={"squeeze_channel": facts.squeeze_channel, **dict(facts.extra), **trained.card})
