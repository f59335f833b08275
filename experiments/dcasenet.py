"""DcaseNet v1 / v2 / v3 (Jung et al., ICASSP 2021): joint ASC, audio tagging and SED, end to end.

`make reproduce-dcasenet` (``tf-scenes reproduce dcasenet --profile quick``) runs:

1. data: TAU Urban Acoustic Scenes 2020 Mobile fold1 (ASC), FSDKaggle2019 curated with the
   KFold(5, shuffle, 42) first fold (TAG), TAU-NIGENS 2020 mic_dev folds 3-6 / 1 (SED) -- the
   synthetic stand-ins by default (generated under ``data.synthetic_dir`` if absent), real data
   with ``data.asc_root`` / ``data.tag_root`` / ``data.sed_root`` (or ``data.root`` holding the
   three dataset folders).  A validation split (whole locations / clips / recordings) is held out
   of each training set for the per-epoch metrics and model selection; the evaluation splits are
   never used for either;
2. whole-clip log-mel features (24 kHz, 128 mels, 20 ms hop), cached once; crops are cut in tf.data;
3. every training run of the plan, each in its own resumable run folder under ``OUT/runs``:
   Table 2: single-task training of v1 without and with mixup, v2 and v3; Table 3: joint
   training from random init of every task combination x version, then fine-tuning of each task
   from the joint checkpoint (same hyper-parameters, nothing frozen);
4. evaluation per the paper's protocol (:mod:`tf_scenes.dcasenet.evaluate`);
5. ``table2`` / ``table3`` (.json + .md, the paper's numbers beside ours), SED activity plots and
   the exported SavedModel of one joint run (waveform in, probabilities out).

A run folder whose run finished with the same config is reused, so an interrupted study resumes
where it stopped (and a run interrupted mid-training resumes from its last epoch).

``tf-scenes finetune RUN_DIR --task asc|tag|sed [--out DIR] [--set k=v ...]`` fine-tunes any
saved run (typically a joint one) on one task with the run's own hyper-parameters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np

log = logging.getLogger(__name__)

TASKS = ("asc", "tag", "sed")
VERSIONS = ("v1", "v2", "v3")
COMBINATIONS = ("asc", "tag", "sed", "asc+tag", "asc+sed", "tag+sed", "asc+tag+sed")
TABLE2_ROWS = ("v1-nomixup", "v1", "v2", "v3")
ASC_SECONDS = 10.0
SED_LABEL_HOP_S = 0.1  # TAU-NIGENS labels: 100 ms frames


# ----------------------------------------------------------------------------------------------
# configs


@dataclass(frozen=True)
class DataConfig:
    root: Optional[str] = None      # folder holding the three dataset folders (as `tf-scenes synth all` writes)
    asc_root: Optional[str] = None  # TAU-urban-acoustic-scenes-2020-mobile-development
    tag_root: Optional[str] = None  # FSDKaggle2019 (train_curated.csv, train_curated/)
    sed_root: Optional[str] = None  # TAU-NIGENS 2020 (mic_dev/, metadata_dev/)
    synthetic_dir: str = "data"     # where the synthetic default lives (generated if absent)
    synthetic_size: Literal["tiny", "small", "full"] = "small"
    synthetic_seed: int = 0
    synthetic_jobs: int = 2         # processes generating the synthetic data (same output for any number)
    cache_dir: str = ".cache"
    val_fraction: float = 0.1       # held out of each training set (whole locations / clips / recordings)
    max_val_clips: Optional[int] = None    # cap on validation clips per task (SED: recordings)
    max_train_clips: Optional[int] = None  # cap on training clips per task (SED: recordings); smoke tests

    def __post_init__(self):
        from tf_scenes.errors import ConfigError

        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction: expected a value in [0, 1), got {self.val_fraction}")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 160
    steps_per_epoch: int = 500           # one "epoch" = 500 iterations (Sec. 3.3)
    asc_batch: int = 32
    tag_batch: int = 24                  # the paper and the code swap the TAG / SED batch sizes
    sed_batch: int = 32
    asc_crop_s: float = 5.0
    tag_crop_s: float = 5.0
    sed_crop_s: float = 30.0
    lr: float = 1e-3                     # Adam
    lr_min: float = 1e-6
    restart_epochs: float = 80.0         # cosine annealing with warm restarts, T0, stepped per iteration
    t_mul: float = 1.0
    mixup_alpha: float = 0.1
    mixup_from_epoch: int = 6            # 0-based
    select: Literal["last", "best"] = "last"  # "best": best val_score epoch on the validation split
    eval_batch_size: int = 16
    precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    strategy: Literal["default", "one_device", "mirrored", "multi_worker", "tpu"] = "default"
    jit_compile: Literal["auto", "on", "off"] = "auto"  # XLA; "auto": Keras' rule (see training.distribute)
    run_eagerly: bool = False            # no tf.function tracing (cheaper for a handful of steps: smoke tests)

    def __post_init__(self):
        from tf_scenes.errors import ConfigError

        for name in ("epochs", "steps_per_epoch", "asc_batch", "tag_batch", "sed_batch", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}: expected >= 1, got {getattr(self, name)}")
        if not 0 <= self.mixup_from_epoch:
            raise ConfigError(f"train.mixup_from_epoch: expected >= 0, got {self.mixup_from_epoch}")

    def batch(self, task: str) -> int:
        return getattr(self, f"{task}_batch")


@dataclass(frozen=True)
class ModelConfig:
    width: float = 1.0  # scales every hidden width of v1 / v2 / v3 (1.0 = the paper)


@dataclass(frozen=True)
class Config:
    profile: str = "quick"
    description: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    table2: tuple[str, ...] = TABLE2_ROWS                 # rows: v1-nomixup, v1, v2, v3
    table3_versions: tuple[str, ...] = VERSIONS
    table3_combinations: tuple[str, ...] = COMBINATIONS   # "asc+tag" etc.
    finetune: bool = True                                 # fine-tune every task of each multi-task joint run
    subset_note: str = ""                                 # why a profile restricts table3 (printed in its header)
    export_run: str = "v3-asc+tag+sed"                    # run exported as a SavedModel ("" = none)
    figures: bool = True
    activity_clips: int = 2

    def __post_init__(self):
        from tf_scenes.errors import ConfigError

        bad = [r for r in self.table2 if r not in TABLE2_ROWS]
        if bad:
            raise ConfigError(f"table2: unknown rows {bad}; valid: {list(TABLE2_ROWS)}")
        bad = [v for v in self.table3_versions if v not in VERSIONS]
        if bad:
            raise ConfigError(f"table3_versions: unknown versions {bad}; valid: {list(VERSIONS)}")
        for c in self.table3_combinations:
            parse_tasks(c, "table3_combinations")


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run depends on (its run folder's config.yaml)."""

    name: str
    version: Literal["v1", "v2", "v3"]
    tasks: tuple[str, ...]
    mixup: bool = True
    init_from: Optional[str] = None  # run folder whose selected weights initialise the network
    seed: int = 0
    model: dict = field(default_factory=dict)  # the DcaseNetConfig as a dict
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)


def parse_tasks(text, what: str = "tasks") -> tuple[str, ...]:
    """'tag+asc' -> ('asc', 'tag') (canonical order); ConfigError for unknown or repeated tasks."""
    from tf_scenes.errors import ConfigError

    parts = text.split("+") if isinstance(text, str) else list(text)
    if not parts or any(p not in TASKS for p in parts) or len(set(parts)) != len(parts):
        raise ConfigError(f"{what}: {text!r} is not a '+'-joined subset of {list(TASKS)}")
    return tuple(t for t in TASKS if t in parts)


def run_name(version: str, tasks, mixup: bool = True) -> str:
    return f"{version}{'' if mixup else '-nomixup'}-{'+'.join(tasks)}"


def model_config(version: str, width: float):
    from tf_scenes.models.dcasenet import VARIANTS

    return dataclasses.replace(VARIANTS[version], width=float(width))


def make_run(cfg: Config, version: str, tasks, mixup: bool = True, init_from: str | None = None,
             name: str | None = None) -> RunConfig:
    from tf_scenes.config import to_dict

    tasks = parse_tasks(tasks)
    return RunConfig(name=name or run_name(version, tasks, mixup), version=version, tasks=tasks, mixup=mixup,
                     init_from=init_from, seed=cfg.seed, model=to_dict(model_config(version, cfg.model.width)),
                     train=cfg.train, data=cfg.data)


def plan_runs(cfg: Config, runs_dir: Path) -> dict[str, RunConfig]:
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
                    r = make_run(cfg, version, (t,), init_from=str((runs_dir / joint).resolve()),
                                 name=f"{joint}-ft-{t}")
                    plan.setdefault(r.name, r)
    return plan


# ----------------------------------------------------------------------------------------------
# data


@dataclass
class TaskData:
    train: object  # TaskSplit
    val: object | None
    test: object
    source: str
    synthetic: bool
    counts: dict


def _is_synthetic(root: Path) -> bool:
    return (Path(root) / "SYNTHETIC_DATASET.json").exists()


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
                              "own root: " + " ".join(f"--set data.{t}_root=DIR" for t in absent))
        return cand
    from tf_scenes.synth import generate

    roots = generate(task, Path(data.synthetic_dir), size=data.synthetic_size, seed=data.synthetic_seed,
                     jobs=data.synthetic_jobs)
    return Path(roots[task])


def check_data_dirs(data: DataConfig, tasks=TASKS) -> None:
    """The cache folder (and the synthetic-data folder when a task uses it) must be writable, and
    data.root must hold the dataset folder of each of `tasks` without an explicit root."""
    from tf_scenes.io_utils import ensure_writable_dir

    ensure_writable_dir(data.cache_dir)
    if not data.root and not all(getattr(data, f"{t}_root") for t in TASKS):
        ensure_writable_dir(data.synthetic_dir)
    if data.root:
        for t in tasks:
            dataset_root(data, t)  # ConfigError now, before any work, when a dataset folder is not there


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
    return (base + int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)) % (2**31 - 1)


def load_task(task: str, data: DataConfig, seed: int) -> TaskData:
    """Records, splits, cached features and labels of one task (module docstring, step 1-2)."""
    from tf_scenes.dcasenet.data import TaskSplit
    from tf_scenes.features import get_feature_config

    fcfg = get_feature_config("dcasenet")
    root = dataset_root(data, task)
    synthetic = _is_synthetic(root)
    cache = Path(data.cache_dir) / "features"
    s = _seed_for(task, seed)

    if task == "asc":
        from pipelines.cache import cached_features
        from tf_scenes.datasets import tau2020

        train = tau2020.load(root, "train")
        test = tau2020.load(root, "evaluate")
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
        label = ("SYNTHETIC TAU Urban Acoustic Scenes 2020 Mobile format" if synthetic
                 else "TAU Urban Acoustic Scenes 2020 Mobile")
    elif task == "tag":
        from tf_scenes.dcasenet.cache import clip_features
        from tf_scenes.datasets import fsd2019

        records = fsd2019.load(root, "curated")
        train, test = fsd2019.kfold_split(records)  # KFold(5, shuffle=True, random_state=42), fold 0
        tr, va = holdout(np.arange(len(train)), data.val_fraction, s)
        tr, va = _cap(tr, data.max_train_clips, s), _cap(va, data.max_val_clips, s)
        recs = [train[i] for i in tr], [train[i] for i in va], test
        clips = clip_features([r.path for part in recs for r in part], cache, feature_cfg=fcfg)
        splits, lo = [], 0
        for part in recs:
            c = clips.slice(lo, lo + len(part))
            lo += len(part)
            y = np.stack([fsd2019.multi_hot(r.labels) for r in part]) if part else np.zeros((0, 80), np.float32)
            splits.append(TaskSplit("tag", c, c.lengths, y, [r.fname for r in part]) if part else None)
        label = "SYNTHETIC FSDKaggle2019 format" if synthetic else "FSDKaggle2019 curated"
    elif task == "sed":
        from tf_scenes.dcasenet.cache import clip_features
        from tf_scenes.datasets import nigens2020

        train = nigens2020.load(root, folds=(3, 4, 5, 6), fmt="mic")
        test = nigens2020.load(root, folds=(1,), fmt="mic")
        tr, va = holdout(np.arange(len(train)), data.val_fraction, s)
        tr, va = _cap(tr, data.max_train_clips, s), _cap(va, data.max_val_clips, s)
        recs = [train[i] for i in tr], [train[i] for i in va], test
        ch = nigens2020.N_CHANNELS
        clips = clip_features([r.path for part in recs for r in part], cache, feature_cfg=fcfg,
                              split_channels=True, n_channels=ch)
        splits, lo = [], 0
        for part in recs:
            c = clips.slice(lo, lo + ch * len(part))
            lo += ch * len(part)
            act = [nigens2020.activity_matrix(nigens2020.read_metadata(r.meta_path)) for r in part]
            y = np.stack([a for a in act for _ in range(ch)]) if part else np.zeros((0, 600, 14), np.float32)
            names = [r.path.stem for r in part for _ in range(ch)]
            groups = np.repeat(np.arange(len(part)), ch)
            splits.append(TaskSplit("sed", c, c.lengths, y, names, groups) if part else None)
        label = "SYNTHETIC TAU-NIGENS Spatial Sound Events 2020 format (mic)" if synthetic else \
            "TAU-NIGENS Spatial Sound Events 2020 mic_dev"
    else:
        raise ValueError(f"unknown task {task!r}")
    counts = {"train": len(recs[0]), "validation": len(recs[1]), "evaluation": len(recs[2])}
    log.info("%s: %s at %s: %s", task, label, root, counts)
    return TaskData(splits[0], splits[1], splits[2], f"{label} at {root}", synthetic, counts)


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
    """(metrics with task-prefixed keys, predictions to save) of one task on one split."""
    from tf_scenes.dcasenet import evaluate as ev
    from tf_scenes.datasets import fsd2019

    if task == "asc":
        probs = ev.predict_asc(runner, split.features, crop_frames(train)["asc"], train.eval_batch_size)
        return {"asc_acc": ev.asc_metrics(split.labels, probs)["acc"]}, {"probs": probs, "labels": split.labels}
    if task == "tag":
        scores = ev.predict_tag(runner, split.features, train.eval_batch_size)
        m = ev.tag_metrics(split.labels, scores, fsd2019.CLASSES)
        return {f"tag_{k}": v for k, v in m.items()}, {"scores": scores, "labels": split.labels}
    probs, rec = ev.predict_sed(runner, split.features, split.groups, max(1, train.eval_batch_size // 4))
    first = [int(np.flatnonzero(split.groups == g)[0]) for g in rec]
    labels = split.labels[first]
    m = ev.sed_scores(labels, probs)
    n = min(labels.shape[1], probs.shape[1])
    preds = {"probs": probs[:, :n].astype(np.float32), "labels": labels[:, :n],
             "names": [split.names[i] for i in first]}
    return {f"sed_{k}": v for k, v in m.items()}, preds


def validation_fn(trainer, data: dict, train: TrainConfig):
    """Per-epoch metrics of the active tasks on their validation splits, and val_score = the mean
    of val_acc, val_lwlrap and val_f1 (1 s) over them (the selection metric with select: best)."""
    from tf_scenes.dcasenet.evaluate import make_runner

    tasks = [t for t in trainer.tasks if data[t].val is not None]
    if not tasks:
        return None
    runners = {t: make_runner(trainer.task_models[t], eager=train.run_eagerly) for t in tasks}

    def fn(_model):
        out, parts = {}, []
        for t in tasks:
            m, _ = evaluate_split(t, runners[t], data[t].val, train)
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


def _finished(run_dir: Path, spec: RunConfig) -> bool:
    from tf_scenes.runs import is_finished

    return is_finished(run_dir, spec, required=("model.json", "metrics.json"))


def train_run(spec: RunConfig, data: dict, run_dir: Path) -> dict:
    """Train (or resume, or reuse) one run; returns its evaluation metrics (also metrics.json)."""
    import json

    if _finished(run_dir, spec):
        log.info("%s: finished earlier, reusing %s", spec.name, run_dir)
        return json.loads((run_dir / "metrics.json").read_text())

    import keras

    from tf_scenes import runs
    from tf_scenes.config import from_dict
    from tf_scenes.dcasenet.data import joint_dataset, train_dataset
    from tf_scenes.dcasenet.evaluate import make_runner
    from tf_scenes.dcasenet.joint import JointTrainer
    from tf_scenes.datasets import tau2020
    from tf_scenes.io_utils import atomic_path
    from tf_scenes.models.dcasenet import DcaseNetConfig
    from tf_scenes.training.distribute import configure_precision, get_strategy, jit_compile_arg
    from tf_scenes.training.schedules import CosineWarmRestarts
    from tf_scenes.training.trainer import fit, load_model_weights, set_determinism

    t = spec.train
    t_start, c_start = time.monotonic(), time.process_time()
    runs.create_run_dir(run_dir, spec, seed=spec.seed, name=spec.name)
    configure_precision(t.precision)
    set_determinism(spec.seed)
    mcfg = from_dict(DcaseNetConfig, spec.model)
    with get_strategy(t.strategy).scope():  # variables (model, optimizer) live under the strategy
        trainer = JointTrainer(mcfg, spec.tasks)
        if spec.init_from:
            init_weights = selected_weights(Path(spec.init_from))
            log.info("%s: initialised from %s", spec.name, init_weights)
            load_model_weights(trainer.net, init_weights)
        schedule = CosineWarmRestarts(max_lr=t.lr, min_lr=t.lr_min, first_cycle_epochs=t.restart_epochs,
                                      steps_per_epoch=t.steps_per_epoch, t_mul=t.t_mul)
        trainer.compile(optimizer=keras.optimizers.Adam(schedule, epsilon=1e-8),  # PyTorch's eps
                        run_eagerly=t.run_eagerly, jit_compile=jit_compile_arg(t.jit_compile))

    crops, hop = crop_frames(t), label_hop_frames()

    def make_ds(initial_epoch: int):
        per_task = {}
        for k, task in enumerate(spec.tasks):
            per_task[task] = train_dataset(
                data[task].train, batch_size=t.batch(task), crop_frames=crops[task],
                seed=[spec.seed, k + 1], epochs=t.epochs, initial_epoch=initial_epoch,
                steps_per_epoch=t.steps_per_epoch, mixup_alpha=t.mixup_alpha if spec.mixup else None,
                mixup_from_epoch=t.mixup_from_epoch, n_classes=len(tau2020.SCENES), label_hop=hop)
        return joint_dataset(per_task)

    val_fn = validation_fn(trainer, data, t)
    select = t.select if val_fn is not None else "last"
    t_fit, c_fit = time.monotonic(), time.process_time()
    result = fit(trainer, make_ds, epochs=t.epochs, steps_per_epoch=t.steps_per_epoch, run_dir=run_dir,
                 val_data=val_fn, monitor="val_score", mode="max", select=select, verbose=0)
    weights = run_dir / "checkpoints" / "selected.weights.h5"
    with atomic_path(weights, suffix=".weights.h5") as tmp:
        trainer.net.save_weights(str(tmp))
    write_card(run_dir, spec, mcfg, weights.relative_to(run_dir))

    metrics = {"run": spec.name, "version": spec.version, "tasks": list(spec.tasks), "mixup": spec.mixup,
               "init_from": spec.init_from, "selected_epoch": result["best_epoch"] if select == "best"
               else result["last_epoch"], "select": select}
    t_eval, c_eval = time.monotonic(), time.process_time()
    for task in spec.tasks:
        runner = make_runner(trainer.task_models[task], eager=t.run_eagerly)
        m, preds = evaluate_split(task, runner, data[task].test, t)
        metrics.update(m)
        np.savez_compressed(run_dir / f"predictions_{task}.npz", **{k: np.asarray(v) for k, v in preds.items()})
    metrics["params"] = _count(trainer.net)
    t_end, c_end = time.monotonic(), time.process_time()
    # Wall-clock and process CPU seconds (all threads) of each phase, for run-time estimates.
    metrics["seconds"] = {"setup": round(t_fit - t_start, 2), "fit": round(t_eval - t_fit, 2),
                          "evaluate": round(t_end - t_eval, 2)}
    metrics["cpu_seconds"] = {"setup": round(c_fit - c_start, 2), "fit": round(c_eval - c_fit, 2),
                              "evaluate": round(c_end - c_eval, 2)}
    log.info("%s: setup %.1f s, training %.1f s, evaluation %.1f s (CPU %.1f / %.1f / %.1f s)", spec.name,
             *metrics["seconds"].values(), *metrics["cpu_seconds"].values())
    runs.finish_run(run_dir, metrics)
    keras.backend.clear_session()
    return metrics


def _count(net) -> int:
    from tf_scenes.models.dcasenet import count_parameters

    return count_parameters(net)


def selected_weights(run_dir: Path) -> Path:
    from tf_scenes.errors import TFScenesError
    from tf_scenes.model_io import read_model_card

    card = read_model_card(run_dir)
    path = Path(run_dir) / card["weights"]
    if not path.exists():
        raise TFScenesError(f"{path}: weights missing (has the run finished?)")
    if card.get("family") != "dcasenet":
        raise TFScenesError(f"{run_dir}: not a DcaseNet run (model.json family {card.get('family')!r})")
    return path


def write_card(run_dir: Path, spec: RunConfig, mcfg, weights: Path) -> None:
    from tf_scenes.datasets import fsd2019, nigens2020, tau2020
    from tf_scenes.model_io import write_model_card

    write_model_card(run_dir, family="dcasenet", builder=f"dcasenet_{spec.version}", config=mcfg,
                     feature_config="dcasenet", weights=str(weights),
                     outputs={"scene": tau2020.SCENES, "tags": fsd2019.CLASSES, "frames": nigens2020.CLASSES},
                     saliency={"method": "gradcam", "layer": "block3_conv2",
                               "output": {"asc": "scene", "tag": "tags", "sed": "frames"}[spec.tasks[0]]},
                     extra={"trained_tasks": list(spec.tasks), "init_from": spec.init_from,
                            "note": "heads of tasks not in trained_tasks keep their initial weights"})


# ----------------------------------------------------------------------------------------------
# the study


def run_study(cfg: Config, out: Path) -> dict:
    """Run the whole study (module docstring); returns the tables as dicts."""
    import json

    from tf_scenes import runs
    from tf_scenes.io_utils import atomic_write_json, ensure_writable_dir

    out = ensure_writable_dir(Path(out))
    check_data_dirs(cfg.data)  # fail before any long work, not after it
    runs.create_run_dir(out, cfg, seed=cfg.seed, name="dcasenet")  # refuses a folder of another config
    runs_dir = out / "runs"
    plan = plan_runs(cfg, runs_dir)
    if cfg.export_run and cfg.export_run not in plan:
        from tf_scenes.errors import ConfigError

        raise ConfigError(f"export_run {cfg.export_run!r} is not a run of this profile; runs: {list(plan)}")
    needed = sorted({t for r in plan.values() for t in r.tasks}, key=TASKS.index)
    data = {t: load_task(t, cfg.data, cfg.seed) for t in needed}
    meta = {"profile": cfg.profile, "description": cfg.description,
            "synthetic": any(d.synthetic for d in data.values()),
            "data": {t: d.source for t, d in data.items()}, "clips": {t: d.counts for t, d in data.items()},
            "selection": (f"{cfg.train.select} epoch" + (" on the validation split (val_score)"
                                                           if cfg.train.select == "best" else
                                                           " of the fixed schedule")),
            "subset_note": cfg.subset_note}
    results = {}
    for i, (name, spec) in enumerate(plan.items()):
        log.info("run %d/%d: %s", i + 1, len(plan), name)
        results[name] = train_run(spec, data, runs_dir / name)

    from experiments import dcasenet_report

    tables = dcasenet_report.write_tables(cfg, out, results, meta)
    figures = dcasenet_report.figures(cfg, out, runs_dir, results, meta) if cfg.figures else []
    export = None
    if cfg.export_run:
        export = export_and_check(runs_dir / cfg.export_run, out / "export" / f"dcasenet_{cfg.export_run}")
    atomic_write_json(out / "study.json", {**meta, "runs": list(plan), "tables": sorted(tables),
                                           "figures": [str(p.relative_to(out)) for p in figures], "export": export})
    runs.finish_run(out, {"runs": len(plan)})
    log.info("done: %s", json.dumps({k: len(v["rows"]) for k, v in tables.items()}))
    return tables


def export_and_check(run_dir: Path, out_dir: Path, seconds: float = 2.0) -> dict:
    """Export a run as a SavedModel, reload it and compare with the Keras model on a waveform."""
    import tensorflow as tf

    from tf_scenes.dcasenet.serving import export_run, serving_model

    path = export_run(run_dir, out_dir)
    model, card = serving_model(run_dir)
    wav = (0.1 * np.random.default_rng(0).standard_normal((1, int(seconds * card["sample_rate"])))).astype(np.float32)
    ref = {k: np.asarray(v) for k, v in model(wav, training=False).items()}
    got = tf.saved_model.load(str(path)).signatures["serving_default"](waveform=tf.constant(wav))
    diff = {k: float(np.max(np.abs(ref[k] - got[k].numpy()))) for k in ref}
    log.info("exported %s -> %s (max abs difference to Keras: %s)", run_dir.name, path, diff)
    return {"path": str(path), "run": run_dir.name, "max_abs_diff": diff}


# ----------------------------------------------------------------------------------------------
# `tf-scenes finetune RUN_DIR --task T`


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path, help="a trained DcaseNet run folder (model.json, config.yaml)")
    parser.add_argument("--task", required=True, choices=TASKS, help="the task to fine-tune on")
    parser.add_argument("--out", type=Path, help="run folder of the fine-tuned model (default RUN_DIR-ft-TASK)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a value of the run's config, e.g. --set train.epochs=3 (repeatable)")


def finetune_config(run_dir: Path, task: str, overrides=()) -> RunConfig:
    """The fine-tuning run of ``task`` from ``run_dir``: the run's own config (hyper-parameters,
    data, model), one task, initialised from its selected weights, with ``overrides`` applied."""
    import yaml

    from tf_scenes.config import apply_overrides, from_dict, to_dict
    from tf_scenes.errors import ConfigError

    run_dir = Path(run_dir)
    selected_weights(run_dir)  # clear error if not a finished DcaseNet run
    try:
        raw = yaml.safe_load((run_dir / "config.yaml").read_text())
    except OSError as e:
        raise ConfigError(f"{run_dir}: no readable config.yaml ({e})") from e
    base = from_dict(RunConfig, raw, prefix=str(run_dir / "config.yaml"))
    spec = dataclasses.replace(base, name=f"{base.name}-ft-{task}", tasks=(task,), init_from=str(run_dir.resolve()))
    spec = from_dict(RunConfig, apply_overrides(to_dict(spec), list(overrides)))
    return dataclasses.replace(spec, tasks=parse_tasks(spec.tasks))


def run(args) -> int:
    import json

    from tf_scenes.io_utils import ensure_writable_dir

    spec = finetune_config(args.run_dir, args.task, args.overrides)
    out = Path(args.out) if args.out else args.run_dir.parent / spec.name
    ensure_writable_dir(out)
    check_data_dirs(spec.data, spec.tasks)
    data = {t: load_task(t, spec.data, spec.seed) for t in spec.tasks}
    metrics = train_run(spec, data, out)
    print(json.dumps({"run_dir": str(out), **{k: v for k, v in metrics.items() if "/" not in k}}, indent=2))
    return 0
