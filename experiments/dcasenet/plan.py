"""DcaseNet v1 / v2 / v3 (Jung et al., ICASSP 2021): config, data and run plan of the study
(`make reproduce-dcasenet`, ``tf-scenes reproduce dcasenet``).

1. data: TAU Urban Acoustic Scenes 2020 Mobile fold1 (ASC), FSDKaggle2019 curated with the
   KFold(5, shuffle, 42) first fold (TAG), TAU-NIGENS 2020 mic_dev folds 3-6 / 1 (SED) -- the
   synthetic stand-ins by default (generated under ``data.synthetic_dir`` if absent), real data
   with ``data.asc_root`` / ``data.tag_root`` / ``data.sed_root`` (or ``data.root`` holding the
   three dataset folders).  A validation split (whole locations / clips / recordings) is held out
   of each training set for the per-epoch metrics and model selection; the evaluation splits are
   never used for either;
2. whole-clip log-mel features (24 kHz, 128 mels, 20 ms hop), cached once; crops are cut in tf.data
   (:mod:`.data`);
3. the runs: Table 2: single-task training of v1 without and with mixup, v2 and v3; Table 3: joint
   training from random init of every task combination x version, then fine-tuning of each task
   from the joint run (same hyper-parameters, nothing frozen);
4. evaluation per the paper's protocol (:mod:`tf_scenes.dcasenet.evaluate`), scores keyed by clip
   (SED: frame scores per recording in sed_scores_eval's format, and from them event-based F1 and
   PSDS by sed_scores_eval, :mod:`tf_scenes.metrics.sed_events`).

``tf-scenes finetune RUN_DIR --task asc|tag|sed [--out DIR] [--set k=v ...]`` fine-tunes any
saved run (typically a joint one) on one task with the run's own hyper-parameters (:mod:`.finetune`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from tf_scenes.config import bounded

from .. import study

log = logging.getLogger(__name__)

TASKS = ("asc", "tag", "sed")
VERSIONS = ("v1", "v2", "v3")
COMBINATIONS = ("asc", "tag", "sed", "asc+tag", "asc+sed", "tag+sed", "asc+tag+sed")
TABLE2_ROWS = ("v1-nomixup", "v1", "v2", "v3")
ASC_SECONDS = 10.0
SED_LABEL_HOP_S = 0.1  # TAU-NIGENS labels: 100 ms frames
DATASETS = {"asc": "TAU Urban Acoustic Scenes 2020 Mobile", "tag": "FSDKaggle2019",
            "sed": "TAU-NIGENS Spatial Sound Events 2020"}


# ----------------------------------------------------------------------------------------------
# configs


@dataclass(frozen=True)
class DataConfig(study.DataConfig):
    asc_root: Optional[str] = None  # TAU-urban-acoustic-scenes-2020-mobile-development
    tag_root: Optional[str] = None  # FSDKaggle2019 (train_curated.csv, train_curated/)
    sed_root: Optional[str] = None  # TAU-NIGENS 2020 (mic_dev/, metadata_dev/)
    synthetic_jobs: int = bounded(2, ge=1)  # processes generating the synthetic data (same output for any number)
    val_fraction: float = bounded(0.1, ge=0.0, lt=1.0)  # held out of each training set (whole groups)
    max_val_clips: Optional[int] = bounded(None, ge=1)  # cap on validation clips per task (SED: recordings)
    max_train_clips: Optional[int] = bounded(None, ge=1)  # cap on training clips per task; smoke tests


@dataclass(frozen=True)
class TrainConfig(study.TrainConfig):
    epochs: int = bounded(160, ge=1)
    steps_per_epoch: int = bounded(500, ge=1)  # one "epoch" = 500 iterations (Sec. 3.3)
    asc_batch: int = bounded(32, ge=1)
    tag_batch: int = bounded(24, ge=1)  # the paper and the code swap the TAG / SED batch sizes
    sed_batch: int = bounded(32, ge=1)
    asc_crop_s: float = bounded(5.0, gt=0.0)
    tag_crop_s: float = bounded(5.0, gt=0.0)
    sed_crop_s: float = bounded(30.0, gt=0.0)
    lr: float = bounded(1e-3, gt=0.0)  # Adam
    lr_min: float = bounded(1e-6, ge=0.0)
    restart_epochs: float = bounded(80.0, gt=0.0)  # cosine annealing with warm restarts, T0, stepped per iteration
    t_mul: float = bounded(1.0, ge=1.0)
    mixup_alpha: float = bounded(0.1, gt=0.0)
    mixup_from_epoch: int = bounded(6, ge=0)  # 0-based
    select: Literal["last", "best"] = "last"  # "best": best val_score epoch on the validation split
    eval_batch_size: int = bounded(16, ge=1)
    run_eagerly: bool = False  # no tf.function tracing (cheaper for a handful of steps: smoke tests)
    # start the TAG output bias (tag_fc3) at the logit of each tag's training frequency instead of
    # 0 (tf_scenes.training.init), in runs that train TAG from scratch; the paper: False
    tag_prior_bias: bool = False

    def batch(self, task: str) -> int:
        return getattr(self, f"{task}_batch")


@dataclass(frozen=True)
class ModelConfig:
    width: float = bounded(1.0, gt=0.0)  # scales every hidden width of v1 / v2 / v3 (1.0 = the paper)


@dataclass(frozen=True)
class Config:
    profile: str = "quick"
    description: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    table2: tuple[str, ...] = TABLE2_ROWS  # rows: v1-nomixup, v1, v2, v3
    table3_versions: tuple[str, ...] = VERSIONS
    table3_combinations: tuple[str, ...] = COMBINATIONS  # "asc+tag" etc.
    finetune: bool = True  # fine-tune every task of each multi-task joint run
    subset_note: str = ""  # why a profile restricts table3 (printed with the tables)
    export_run: str = "v3-asc+tag+sed"  # run exported as a SavedModel ("" = none)
    figures: bool = True
    activity_clips: int = bounded(2, ge=0)

    def __post_init__(self):
        from tf_scenes.errors import ConfigError

        bad = [r for r in self.table2 if r not in TABLE2_ROWS]
        if bad:
            raise ConfigError(f"table2: unknown rows {bad}; valid: {list(TABLE2_ROWS)}", key="table2")
        bad = [v for v in self.table3_versions if v not in VERSIONS]
        if bad:
            raise ConfigError(f"table3_versions: unknown versions {bad}; valid: {list(VERSIONS)}", key="table3_versions")
        for c in self.table3_combinations:
            parse_tasks(c, "table3_combinations")


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run depends on (its run folder's config.yaml)."""

    name: str
    version: Literal["v1", "v2", "v3"]
    tasks: tuple[str, ...]
    mixup: bool = True
    init_from: Optional[str] = None  # a run of the same plan (its name) or a run folder whose weights start it
    seed: int = 0
    model: dict = field(default_factory=dict)  # the DcaseNetConfig as a dict
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)


def parse_tasks(text, what: str = "tasks") -> tuple[str, ...]:
    """'tag+asc' -> ('asc', 'tag') (canonical order); ConfigError for unknown or repeated tasks."""
    from tf_scenes.errors import ConfigError

    parts = text.split("+") if isinstance(text, str) else list(text)
    if not parts or any(p not in TASKS for p in parts) or len(set(parts)) != len(parts):
        raise ConfigError(f"{what}: {text!r} is not a '+'-joined subset of {list(TASKS)}", key=what)
    return tuple(t for t in TASKS if t in parts)


def run_name(version: str, tasks, mixup: bool = True) -> str:
    return f"{version}{'' if mixup else '-nomixup'}-{'+'.join(tasks)}"


def model_config(version: str, width: float):
    from tf_scenes.dcasenet.model import VARIANTS

    return dataclasses.replace(VARIANTS[version], width=float(width))


def make_run(cfg: Config, version: str, tasks, mixup: bool = True, init_from: str | None = None,
             name: str | None = None) -> RunConfig:
    from tf_scenes.config import to_dict

    tasks = parse_tasks(tasks)
    return RunConfig(name=name or run_name(version, tasks, mixup), version=version, tasks=tasks, mixup=mixup,
                     init_from=init_from, seed=cfg.seed, model=to_dict(model_config(version, cfg.model.width)),
                     train=cfg.train, data=cfg.data)


def plan_runs(cfg: Config) -> dict[str, RunConfig]:
    """Every run of the study in execution order (joint runs before their fine-tuning runs)."""
    plan: dict[str, RunConfig] = {}
    for row in cfg.table2:
        version, mixup = row.split("-")[0], not row.endswith("-nomixup")
        for t in TASKS:
            r = make_run(cfg, version, (t,), mixup)
            plan.setdefault(r.name, r)
    for version in cfg.table3_versions:
        for combo in cfg.table3_combinations:
            r = make_run(cfg, version, combo)
            plan.setdefault(r.name, r)
    if cfg.finetune:
        for version in cfg.table3_versions:
            for combo in cfg.table3_combinations:
                tasks = parse_tasks(combo)
                if len(tasks) < 2:
                    continue
                joint = run_name(version, tasks)
                for t in tasks:
                    r = make_run(cfg, version, (t,), init_from=joint, name=f"{joint}-ft-{t}")
                    plan.setdefault(r.name, r)
    return plan


def run_spec(rc: RunConfig, in_plan: bool = True) -> study.RunSpec:
    """The runner's RunSpec of a run (``in_plan``: its init_from names a run of the same plan)."""
    from tf_scenes.config import from_dict, to_dict
    from tf_scenes.dcasenet.model import DcaseNetConfig

    init = rc.init_from if in_plan else None
    context = {"tasks": list(rc.tasks), "init_from": rc.init_from}
    return study.RunSpec(name=rc.name, builder=f"dcasenet_{rc.version}", model_config=from_dict(DcaseNetConfig, rc.model),
                         config=to_dict(rc), seed=study.run_seed(rc.seed, rc.name), train=rc.train, context=context,
                         init_from=init, item=rc)


def plan(cfg: Config, data) -> list:
    return [run_spec(rc) for rc in plan_runs(cfg).values()]


# ----------------------------------------------------------------------------------------------
# data


@dataclass
class TaskData:
    train: object  # TaskSplit
    val: object | None
    test: object
    label: object  # DataLabel
    counts: dict
    test_records: list


@dataclass
class Data:
    tasks: dict  # task -> TaskData
    label: object  # DataLabel of all tasks
    skipped: tuple = ()


def dataset_root(data: DataConfig, task: str) -> Path:
    """The dataset folder of a task: explicit root, ``data.root/<standard folder>``, or the
    synthetic default (generated if absent)."""
    from tf_scenes.synth import DATASET_DIRS

    explicit = getattr(data, f"{task}_root")
    if explicit:
        return Path(explicit)
    if data.root:
        cand = Path(data.root) / DATASET_DIRS[task]
        if not cand.is_dir():
            from tf_scenes.errors import ConfigError

            absent = [t for t in TASKS
                      if not getattr(data, f"{t}_root") and not (Path(data.root) / DATASET_DIRS[t]).is_dir()]
            raise ConfigError(f"data.root {data.root}: no {', '.join(DATASET_DIRS[t] for t in absent)} folder in it "
                              f"(looked for {', '.join(DATASET_DIRS[t] for t in TASKS)}); pass each dataset's "
                              "own root: " + " ".join(f"--set data.{t}_root=DIR" for t in absent), key="data.root")
        return cand
    from tf_scenes.synth import generate

    roots = generate(task, Path(data.synthetic_dir), size=data.synthetic_size, seed=data.synthetic_seed,
                     jobs=data.synthetic_jobs)
    return Path(roots[task])


def holdout(groups, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: whole groups drawn at random until at least ``fraction`` of
    the items are held out; at least one group always stays in training."""
    groups = np.asarray(groups)
    n = len(groups)
    if fraction <= 0 or n == 0:
        return np.arange(n), np.arange(0)
    uniq = sorted(set(groups.tolist()))
    if len(uniq) < 2:
        return np.arange(n), np.arange(0)
    order = np.random.default_rng(seed).permutation(len(uniq))
    val, taken = set(), 0
    for k in order[:-1]:
        if taken >= fraction * n:
            break
        g = uniq[k]
        val.add(g)
        taken += int(np.sum(groups == g))
    mask = np.array([g in val for g in groups.tolist()])
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _cap(idx: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    if cap is None or len(idx) <= cap:
        return idx
    return np.sort(np.random.default_rng(seed).permutation(idx)[:cap])


def _seed_for(text: str, base: int) -> int:
    import hashlib

    return (base + int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)) % (2**31 - 1)


def load_task(task: str, data: DataConfig, seed: int, cache_dir: Path, report=None) -> TaskData:
    """Records, splits, cached features and labels of one task (module docstring, steps 1-2);
    files skipped because they are missing go to ``report`` (with data.skip_missing)."""
    from tf_scenes.datasets import LoadReport, check_disjoint, provenance
    from tf_scenes.features import get_feature_config
    from tf_scenes.pipelines.cache import cached_clips, cached_features

    from tf_scenes.dcasenet.crops import TaskSplit

    fcfg = get_feature_config("dcasenet")
    root = dataset_root(data, task)
    report = LoadReport() if report is None else report
    opts = study.reader_options(data, report)
    label = provenance.describe(DATASETS[task], root)
    cache = Path(cache_dir) / "features"
    s = _seed_for(task, seed)

    if task == "asc":
        from tf_scenes.datasets import tau2020

        train, test = tau2020.load_fold1(root, **opts)
        tr, va = holdout([r.identifier for r in train], data.val_fraction, s)
        tr, va = _cap(tr, data.max_train_clips, s), _cap(va, data.max_val_clips, s)
        recs = [train[i] for i in tr], [train[i] for i in va], test
        paths = [r.path for part in recs for r in part]
        feats = cached_features(paths, fcfg, cache, num_samples=int(round(ASC_SECONDS * fcfg.sample_rate)))
        splits, lo = [], 0
        for part in recs:
            x = feats[lo:lo + len(part)]
            lo += len(part)
            y = np.array([tau2020.SCENES.index(r.scene) for r in part], np.int64)
            splits.append(TaskSplit("asc", x, np.full(len(part), feats.shape[1]), y, [r.filename for r in part])
                          if part else None)
    elif task == "tag":
        from tf_scenes.datasets import fsd2019

        records = fsd2019.load(root, "curated", **opts)
        train, test = fsd2019.kfold_split(records)  # KFold(5, shuffle=True, random_state=42), fold 0
        tr, va = holdout(np.arange(len(train)), data.val_fraction, s)
        tr, va = _cap(tr, data.max_train_clips, s), _cap(va, data.max_val_clips, s)
        recs = [train[i] for i in tr], [train[i] for i in va], test
        clips = cached_clips([r.path for part in recs for r in part], fcfg, cache)
        splits, lo = [], 0
        for part in recs:
            c = clips.slice(lo, lo + len(part))
            lo += len(part)
            y = np.stack([fsd2019.multi_hot(r.labels) for r in part]) if part else np.zeros((0, 80), np.float32)
            splits.append(TaskSplit("tag", c, c.lengths, y, [r.fname for r in part]) if part else None)
    elif task == "sed":
        from tf_scenes.datasets import nigens2020

        train = nigens2020.load(root, folds=(3, 4, 5, 6), fmt="mic", **opts)
        test = nigens2020.load(root, folds=(1,), fmt="mic", **opts)
        check_disjoint(train, test)
        tr, va = holdout(np.arange(len(train)), data.val_fraction, s)
        tr, va = _cap(tr, data.max_train_clips, s), _cap(va, data.max_val_clips, s)
        recs = [train[i] for i in tr], [train[i] for i in va], test
        ch = nigens2020.N_CHANNELS
        clips = cached_clips([r.path for part in recs for r in part], fcfg, cache, split_channels=True,
                             n_channels=ch)
        splits, lo = [], 0
        for part in recs:
            c = clips.slice(lo, lo + ch * len(part))
            lo += ch * len(part)
            act = [nigens2020.activity_matrix(nigens2020.read_metadata(r.meta_path)) for r in part]
            y = np.stack([a for a in act for _ in range(ch)]) if part else np.zeros((0, 600, 14), np.float32)
            names = [r.path.stem for r in part for _ in range(ch)]
            groups = np.repeat(np.arange(len(part)), ch)
            splits.append(TaskSplit("sed", c, c.lengths, y, names, groups) if part else None)
    else:
        raise ValueError(f"unknown task {task!r}")
    counts = {"train": len(recs[0]), "validation": len(recs[1]), "evaluation": len(recs[2])}
    log.info("%s: %s: %s", task, label.text, counts)
    return TaskData(splits[0], splits[1], splits[2], label, counts, list(recs[2]))


def prepare(cfg: Config, env) -> Data:
    from tf_scenes.datasets import provenance
    from tf_scenes.io_utils import ensure_writable_dir

    plan_ = plan_runs(cfg)
    if cfg.export_run and cfg.export_run not in plan_:
        from tf_scenes.errors import ConfigError

        raise ConfigError(f"export_run {cfg.export_run!r} is not a run of this profile; runs: {list(plan_)}",
                          key="export_run")
    from tf_scenes.datasets import LoadReport

    needed = sorted({t for r in plan_.values() for t in r.tasks}, key=TASKS.index)
    if cfg.data.root:
        for t in needed:
            dataset_root(cfg.data, t)  # ConfigError now, before any work, when a dataset folder is not there
    if not cfg.data.root and not all(getattr(cfg.data, f"{t}_root") for t in needed):
        ensure_writable_dir(cfg.data.synthetic_dir)  # fail before any long work
    report = LoadReport()
    tasks = {t: load_task(t, cfg.data, cfg.seed, env.cache_dir, report) for t in needed}
    label = study.label_with_skipped(provenance.combine([d.label for d in tasks.values()]), report)
    return Data(tasks, label, tuple(report.to_dict()["skipped"]))


# ----------------------------------------------------------------------------------------------
# one run: train, select, evaluate


def crop_frames(train: TrainConfig) -> dict[str, int]:
    """Training crop lengths in feature frames: ASC / TAG 5 s = 251 frames (the code's 120,000
    pre-emphasised samples); SED 30 s = 1500 frames (the code's window on whole-clip features)."""
    from tf_scenes.features import get_feature_config, n_frames, samples_for_seconds

    cfg = get_feature_config("dcasenet")
    hop_s = cfg.hop_length / cfg.sample_rate
    return {"asc": n_frames(cfg, samples_for_seconds(cfg, train.asc_crop_s)),
            "tag": n_frames(cfg, samples_for_seconds(cfg, train.tag_crop_s)),
            "sed": int(round(train.sed_crop_s / hop_s))}


def label_hop_frames() -> int:
    from tf_scenes.features import get_feature_config

    cfg = get_feature_config("dcasenet")
    return int(round(SED_LABEL_HOP_S * cfg.sample_rate / cfg.hop_length))  # 5


def evaluate_split(task: str, runner, split, train: TrainConfig) -> tuple[dict, dict]:
    """(metrics with task-prefixed keys, predictions) of one task on one split."""
    from tf_scenes.dcasenet import evaluate as ev
    from tf_scenes.datasets import fsd2019

    if task == "asc":
        probs = ev.predict_asc(runner, split.features, crop_frames(train)["asc"], train.eval_batch_size)
        return {"asc_acc": ev.asc_metrics(split.labels, probs)["acc"]}, {"probs": probs, "names": split.names}
    if task == "tag":
        scores = ev.predict_tag(runner, split.features, train.eval_batch_size)
        m = ev.tag_metrics(split.labels, scores, fsd2019.CLASSES)
        return {f"tag_{k}": v for k, v in m.items()}, {"probs": scores, "names": split.names}
    probs, rec = ev.predict_sed(runner, split.features, split.groups, max(1, train.eval_batch_size // 4))
    first = [int(np.flatnonzero(split.groups == g)[0]) for g in rec]
    labels = split.labels[first]
    m = ev.sed_scores(labels, probs)
    n = min(labels.shape[1], probs.shape[1])
    return {f"sed_{k}": v for k, v in m.items()}, {"probs": probs[:, :n].astype(np.float32),
                                                   "names": [split.names[i] for i in first], "labels": labels}


def sed_reference(split) -> tuple[list, np.ndarray]:
    """Recording names and (recordings, frames, classes) reference activity of a SED split (from
    the first channel example of each recording)."""
    groups = np.asarray(split.groups)
    first = [int(np.flatnonzero(groups == g)[0]) for g in dict.fromkeys(groups.tolist())]
    return [split.names[i] for i in first], np.asarray(split.labels)[first]


def sed_event_metrics(frames_dir: Path, names, labels) -> dict:
    """Event-based F1 and PSDS (:mod:`tf_scenes.metrics.sed_events`) of a run's SED score files
    against the reference activity of each recording (``names``, ``labels`` (recordings, frames,
    classes)), trimmed to the frames scored; keys ``sed_event_f1`` etc."""
    from tf_scenes.datasets import nigens2020
    from tf_scenes.metrics.sed_events import event_metrics, read_score_folder, reference_events

    scores = read_score_folder(frames_dir)
    ref = dict(zip(names, labels))
    gt = {k: reference_events(ref[k][:len(v)], SED_LABEL_HOP_S, nigens2020.CLASSES) for k, v in scores.items()
          if k in ref}
    durations = {k: len(v) * SED_LABEL_HOP_S for k, v in scores.items()}
    m = event_metrics(scores, gt, durations, source=frames_dir)
    return {f"sed_{k}": v for k, v in m.items()}


def validation_fn(trainer, data: Data, train: TrainConfig):
    """Per-epoch metrics of the active tasks on their validation splits, and val_score = the mean
    of val_acc, val_lwlrap and val_f1 (1 s) over them (the selection metric with select: best)."""
    from tf_scenes.dcasenet.evaluate import make_runner

    tasks = [t for t in trainer.tasks if data.tasks[t].val is not None]
    if not tasks:
        return None
    runners = {t: make_runner(trainer.task_models[t], eager=train.run_eagerly) for t in tasks}

    def fn(_model):
        out, parts = {}, []
        for t in tasks:
            m, _ = evaluate_split(t, runners[t], data.tasks[t].val, train)
            if t == "asc":
                out["val_acc"] = m["asc_acc"]
                parts.append(m["asc_acc"])
            elif t == "tag":
                out["val_lwlrap"] = m["tag_lwlrap"]
                parts.append(m["tag_lwlrap"])
            else:
                out["val_f1"], out["val_er"] = m["sed_f1_1s"], m["sed_er_1s"]
                parts.append(0.0 if np.isnan(m["sed_f1_1s"]) else m["sed_f1_1s"])
        out["val_score"] = float(np.mean(parts))
        return out

    return fn


def init_weights(init_from: str | None, init=None) -> Path | None:
    """The selected weights a run starts from: its init run of the plan (``init``, a finished
    RunResult), or the run folder ``init_from`` names."""
    from tf_scenes.errors import TFScenesError
    from tf_scenes.model_io import read_model_card

    if not init_from:
        return None
    run_dir = init.run_dir if init is not None else Path(init_from)
    card = read_model_card(run_dir)
    if card.get("family") != "dcasenet":
        raise TFScenesError(f"{run_dir}: not a DcaseNet run (model.json family {card.get('family')!r})")
    path = Path(run_dir) / card["weights"]
    if not path.exists():
        raise TFScenesError(f"{path}: weights missing (has the run finished?)")
    return path


def train(spec, data: Data, run_dir: Path, build, env, *, strategy, init=None) -> study.Trained:
    """Adam with cosine warm restarts on the summed task losses (JointTrainer), one batch per task
    per step; the last epoch (or the best val_score epoch) is kept."""
    import keras

    from tf_scenes.dcasenet.joint import JointTrainer
    from tf_scenes.datasets import tau2020
    from tf_scenes.training.distribute import jit_compile_arg
    from tf_scenes.training.schedules import CosineWarmRestarts
    from tf_scenes.training.trainer import fit, load_model_weights

    from .data import joint_dataset, train_dataset

    rc: RunConfig = spec.item
    t = rc.train
    net = build()
    with strategy.scope():  # variables (model, optimizer) live under the strategy
        trainer = JointTrainer(spec.model_config, rc.tasks, net=net)
        weights = init_weights(rc.init_from, init)
        if t.tag_prior_bias and "tag" in rc.tasks and weights is None:
            from tf_scenes.training.init import set_prior_bias

            set_prior_bias(trainer.net.get_layer("tag_fc3"), data.tasks["tag"].train.labels)
        if weights is not None:
            log.info("%s: initialised from %s", rc.name, weights)
            load_model_weights(trainer.net, weights)
        schedule = CosineWarmRestarts(max_lr=t.lr, min_lr=t.lr_min, first_cycle_epochs=t.restart_epochs,
                                      steps_per_epoch=t.steps_per_epoch, t_mul=t.t_mul)
        trainer.compile(optimizer=keras.optimizers.Adam(schedule, epsilon=1e-8),  # PyTorch's eps
                        run_eagerly=t.run_eagerly, jit_compile=jit_compile_arg(t.jit_compile))

    crops, hop = crop_frames(t), label_hop_frames()

    def make_ds(initial_epoch: int):
        per_task = {}
        for k, task in enumerate(rc.tasks):
            per_task[task] = train_dataset(
                data.tasks[task].train, batch_size=t.batch(task), crop_frames=crops[task],
                seed=[spec.seed, k + 1], epochs=t.epochs, initial_epoch=initial_epoch,
                steps_per_epoch=t.steps_per_epoch, mixup_alpha=t.mixup_alpha if rc.mixup else None,
                mixup_from_epoch=t.mixup_from_epoch, n_classes=len(tau2020.SCENES), label_hop=hop)
        return joint_dataset(per_task)

    val_fn = validation_fn(trainer, data, t)
    select = t.select if val_fn is not None else "last"
    t_fit, c_fit = time.monotonic(), time.process_time()
    result = fit(trainer, make_ds, epochs=t.epochs, steps_per_epoch=t.steps_per_epoch, run_dir=run_dir,
                 val_data=val_fn, monitor="val_score", mode="max", select=select, verbose=0)
    seconds = {"fit": round(time.monotonic() - t_fit, 2), "fit_cpu": round(time.process_time() - c_fit, 2)}
    return study.Trained(trainer.net, card={"selected_epoch": result["best_epoch"] if select == "best"
                                            else result["last_epoch"], "selection": select, "seconds": seconds})


def evaluate(spec, net, data: Data, run_dir: Path) -> dict:
    """Each trained task on its evaluation split: metrics, and the scores keyed by clip
    (``scores_evaluate_scene.tsv``, ``scores_evaluate_tags.tsv``) or, for SED, per recording in
    sed_scores_eval's format (``scores_evaluate_frames/<recording>.tsv``, 100 ms frames)."""
    from tf_scenes.datasets import fsd2019, nigens2020, tau2020
    from tf_scenes.dcasenet.evaluate import make_runner
    from tf_scenes.dcasenet.model import count_parameters, task_models
    from tf_scenes.scores import ScoreTable, write_frame_scores, write_scores

    rc: RunConfig = spec.item
    t = rc.train
    t_eval, c_eval = time.monotonic(), time.process_time()
    metrics = {"run": rc.name, "version": rc.version, "tasks": list(rc.tasks), "mixup": rc.mixup,
               "init_from": rc.init_from}
    models = task_models(net)
    for task in rc.tasks:
        runner = make_runner(models[task], eager=t.run_eagerly)
        m, preds = evaluate_split(task, runner, data.tasks[task].test, t)
        metrics.update(m)
        if task == "sed":
            for name, probs in zip(preds["names"], preds["probs"]):
                write_frame_scores(run_dir / "scores_evaluate_frames" / f"{name}.tsv", probs, SED_LABEL_HOP_S,
                                   nigens2020.CLASSES)
            # from the files just written: the numbers anyone gets from the run folder
            metrics.update(sed_event_metrics(run_dir / "scores_evaluate_frames", preds["names"], preds["labels"]))
        else:
            classes = tau2020.SCENES if task == "asc" else fsd2019.CLASSES
            output = "scene" if task == "asc" else "tags"
            write_scores(run_dir / study.score_file("evaluate", output), ScoreTable(preds["names"], preds["probs"],
                                                                                   classes))
    metrics["params"] = count_parameters(net)
    metrics["seconds"] = {"evaluate": round(time.monotonic() - t_eval, 2)}
    metrics["cpu_seconds"] = {"evaluate": round(time.process_time() - c_eval, 2)}
    return metrics


def required_files(spec) -> tuple[str, ...]:
    """The score files a finished run holds (the reuse rule checks them)."""
    out = []
    for task in spec.item.tasks:
        out.append("scores_evaluate_frames" if task == "sed" else
                   study.score_file("evaluate", "scene" if task == "asc" else "tags"))
    return tuple(out)
