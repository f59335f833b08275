"""Two-stage device-robust acoustic scene classification (Hu et al., ICASSP 2021), end to end.

`make reproduce-two-stage` (or `tf-scenes reproduce two_stage --profile quick`) runs:

1. data: TAU Urban Acoustic Scenes 2020 Mobile fold1 (the synthetic stand-in by default); a
   validation split carved from the training fold, grouped by recording location (model selection
   never looks at the evaluation fold, unlike the reference code);
2. offline augmentation of device-A training clips (spectrum correction, reverb + DRC, pitch shift,
   speed change, noise, same-class mixing), computed once and cached;
3. log-mel + deltas features (423 x 128 x 3), cached once per feature config and file list;
4. training every model run of the config (10-class and 3-class ResNet / FCNN / fsFCNN and the
   ResNet augmentation ablation), each in its own resumable run folder;
5. evaluation, ensembles and two-stage fusion joined by clip filename;
6. tables 1-3 (.json + .md, paper numbers beside ours), figures, and the exported two-stage system.

Every model run is skipped when its run folder already holds finished results for the same config,
so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np

log = logging.getLogger(__name__)

OFFLINE_KINDS = ("spectrum_correction", "reverb_drc", "pitch_shift", "speed_change", "noise", "same_class_mix")


@dataclass(frozen=True)
class DataConfig:
    root: Optional[str] = None  # TAU 2020 Mobile development root; None: the synthetic default
    synthetic_dir: str = "data"  # where the synthetic default lives (generated if absent)
    synthetic_size: Literal["tiny", "small", "full"] = "small"
    synthetic_seed: int = 0
    val_fraction: float = 0.1  # fraction of training clips held out for model selection, by location
    cache_dir: str = ".cache"  # feature and offline-augmentation caches
    max_train_clips: Optional[int] = None  # cap on training clips (smoke tests)


@dataclass(frozen=True)
class OfflineConfig:
    fraction: float = 1.0  # fraction of device-A training clips augmented by each kind
    seed: int = 0


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32
    lr_max: float = 0.1
    lr_min: float = 1e-5
    momentum: float = 0.9
    first_cycle_epochs: int = 2  # cosine warm restarts: cycles of 2, 4, 8, ... epochs
    cycle_mult: int = 2
    mixup_alpha: float = 0.4
    crop_frames: int = 400
    spec_augment_freq: int = 12
    spec_augment_time: int = 39
    select: Literal["best", "last"] = "best"  # best on the validation split, or the last epoch
    strategy: Literal["default", "one_device", "mirrored", "multi_worker", "tpu"] = "default"
    precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = "auto"
    jit_compile: Literal["auto", "on", "off"] = "auto"  # XLA; "auto": Keras' rule (see training.distribute)
    eval_batch_size: int = 32
    steps_per_epoch: Optional[int] = None  # None: ceil(clips / batch_size)
    # BatchNorm moving-statistics momentum (reference: Keras' 0.99). Runs of a few hundred steps
    # need less (0.9): with 0.99 the inference statistics still lag the weights and every clip
    # gets the same class (measured on the quick profile: validation accuracy 0.065 -> 0.64).
    bn_momentum: float = 0.99


@dataclass(frozen=True)
class ModelRun:
    arch: Literal["resnet", "fcnn", "fsfcnn"]
    num_classes: Literal[10, 3] = 10
    width: float = 1.0
    epochs: int = 126
    offline: tuple[str, ...] = OFFLINE_KINDS
    spec_augment: bool = False
    mixup: bool = True


@dataclass(frozen=True)
class Config:
    profile: str = "quick"
    description: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    offline: OfflineConfig = field(default_factory=OfflineConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    models: dict[str, ModelRun] = field(default_factory=dict)
    ensemble10: tuple[str, ...] = ("resnet10", "fcnn10", "fsfcnn10")
    ensemble3: tuple[str, ...] = ("resnet3", "fcnn3")
    table1: tuple[str, ...] = ("resnet3", "fcnn3")
    table2: tuple[str, ...] = ("resnet10", "fcnn10", "fsfcnn10")
    table3: tuple[str, ...] = ("resnet10_base", "resnet10_specaug", "resnet10_spectrum", "resnet10_reverb",
                               "resnet10")
    export: bool = True
    figures: bool = True
    cam_clips: int = 2

    def __post_init__(self):
        from tf_scenes.errors import ConfigError

        names = set(self.models)
        for key in ("ensemble10", "ensemble3", "table1", "table2", "table3"):
            missing = [m for m in getattr(self, key) if m not in names]
            if missing:
                raise ConfigError(f"{key} names model runs not defined under models: {missing}")
        for name, m in self.models.items():
            bad = [k for k in m.offline if k not in OFFLINE_KINDS]
            if bad:
                raise ConfigError(f"models.{name}.offline: unknown kinds {bad}; valid: {list(OFFLINE_KINDS)}")
        for key, n in (("ensemble10", 10), ("ensemble3", 3)):
            wrong = [m for m in getattr(self, key) if self.models[m].num_classes != n]
            if wrong:
                raise ConfigError(f"{key} must list {n}-class models; {wrong} are not")


# ----------------------------------------------------------------------------------------------
# data


@dataclass
class Split:
    records: list
    features: np.ndarray  # (N, 423, 128, 3)

    def labels(self, num_classes: int) -> np.ndarray:
        from tf_scenes.datasets.tau2020 import BROAD_CLASSES, SCENES

        if num_classes == 10:
            return np.array([SCENES.index(r.scene) for r in self.records], np.int64)
        return np.array([BROAD_CLASSES.index(r.broad) for r in self.records], np.int64)


def resolve_data_root(cfg: Config) -> tuple[Path, bool]:
    """The dataset root and whether it is the synthetic default (generated if absent)."""
    if cfg.data.root:
        return Path(cfg.data.root), False
    from tf_scenes.synth import generate

    roots = generate("asc", Path(cfg.data.synthetic_dir), size=cfg.data.synthetic_size, seed=cfg.data.synthetic_seed)
    return Path(roots["asc"]), True


def location_split(records, val_fraction: float, seed: int):
    """Hold out whole recording locations (all devices, all segments) for validation."""
    if val_fraction <= 0:
        return list(records), []
    rng = np.random.default_rng(seed)
    by_loc: dict[str, list] = {}
    for r in records:
        by_loc.setdefault(r.identifier, []).append(r)
    # Stratify by scene: take locations of each scene until its share of clips is reached.
    val_ids = set()
    scenes = sorted({r.scene for r in records})
    for scene in scenes:
        locs = sorted({r.identifier for r in records if r.scene == scene})
        if len(locs) < 2:
            continue
        rng.shuffle(locs)
        n_scene = sum(len(by_loc[i]) for i in locs)
        taken = 0
        for loc in locs[:-1]:  # always keep at least one location for training
            if taken >= val_fraction * n_scene:
                break
            val_ids.add(loc)
            taken += len(by_loc[loc])
    train = [r for r in records if r.identifier not in val_ids]
    val = [r for r in records if r.identifier in val_ids]
    return train, val


def extract_features(paths, cache_dir: Path, what: str) -> np.ndarray:
    from pipelines.cache import cached_features
    from tf_scenes.features import get_feature_config

    log.info("features for %d %s clips", len(paths), what)
    return cached_features([str(p) for p in paths], get_feature_config("two_stage"), cache_dir / "features")


# ----------------------------------------------------------------------------------------------
# training and evaluation of one model run


def _model_config(run: ModelRun, train: TrainConfig):
    from tf_scenes.models.two_stage import TwoStageModelConfig

    return TwoStageModelConfig(arch=run.arch, num_classes=run.num_classes, width=run.width,
                               bn_momentum=train.bn_momentum)


def train_one(name: str, run: ModelRun, cfg: Config, train: Split, val: Split | None, run_dir: Path):
    """Train one model run in its resumable run folder; returns the selected model."""
    import keras

    from pipelines.train_data import make_train_dataset
    from tf_scenes.models.two_stage import build_two_stage_model
    from tf_scenes.training.distribute import configure_precision, get_strategy, jit_compile_arg
    from tf_scenes.training.schedules import CosineWarmRestarts
    from tf_scenes.training.trainer import fit

    t = cfg.train
    n_classes = run.num_classes
    y_train = keras.utils.to_categorical(train.labels(n_classes), n_classes).astype(np.float32)
    # As the reference: each batch of `batch_size` mixup pairs is drawn from 2 x batch_size clips
    # (first half mixed with second half), ceil(N / batch) steps per epoch.
    steps = t.steps_per_epoch or max(1, -(-len(train.records) // t.batch_size))
    seed = cfg.seed + _stable_hash(name) % 10_000
    # Initial weights and dropout seeds from this run's own seed: a run's result must not depend on
    # what consumed the global random state before it (the runs trained earlier in this process,
    # an offline augmentation computed now or read from its cache, a resumed study).
    keras.utils.set_random_seed(seed)

    configure_precision(t.precision)
    strategy = get_strategy(t.strategy)
    with strategy.scope():
        model = build_two_stage_model(_model_config(run, t))
        schedule = CosineWarmRestarts(max_lr=t.lr_max, min_lr=t.lr_min, steps_per_epoch=steps,
                                      first_cycle_epochs=t.first_cycle_epochs, t_mul=t.cycle_mult)
        model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=t.momentum),
                      loss="categorical_crossentropy", metrics=["accuracy"], jit_compile=jit_compile_arg(t.jit_compile))

    # SpecAugment as the reference: one frequency and one time mask per channel, before cropping.
    spec = dict(max_freq_width=t.spec_augment_freq, max_time_width=t.spec_augment_time,
                per_channel=True) if run.spec_augment else None

    def make_ds(initial_epoch: int):
        return make_train_dataset(train.features, y_train, batch_size=t.batch_size, seed=seed, epochs=run.epochs,
                                  initial_epoch=initial_epoch, crop=t.crop_frames, spec_augment=spec,
                                  mixup_alpha=t.mixup_alpha if run.mixup else None,
                                  mixup_pairing="halves" if run.mixup else "permutation", steps_per_epoch=steps)

    val_fn = None
    if val is not None and len(val.records):
        y_val = val.labels(n_classes)

        def val_fn(m):
            probs = m.predict(val.features, batch_size=t.eval_batch_size, verbose=0)
            return {"val_acc": float(np.mean(probs.argmax(1) == y_val))}

    select = t.select if val_fn is not None else "last"
    result = fit(model, make_ds, epochs=run.epochs, steps_per_epoch=steps, run_dir=run_dir, val_data=val_fn,
                 monitor="val_acc", mode="max", select=select)
    write_card(run_dir, run, t, Path(result["weights"]).relative_to(run_dir))
    return model


def write_card(run_dir: Path, run: ModelRun, train: TrainConfig, weights: Path) -> None:
    from tf_scenes.datasets.tau2020 import BROAD_CLASSES, SCENES
    from tf_scenes.model_io import write_model_card

    write_model_card(run_dir, family="two_stage", builder=f"two_stage_{run.arch}", config=_model_config(run, train),
                     feature_config="two_stage", weights=str(weights),
                     outputs={"probs": SCENES if run.num_classes == 10 else BROAD_CLASSES},
                     saliency={"method": "cam" if run.arch == "resnet" else "gradcam",
                               "layer": "class_conv" if run.arch == "resnet" else
                               "block3_conv4"})


def _stable_hash(text: str) -> int:
    import hashlib

    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


def evaluate(model, split: Split, num_classes: int, batch_size: int) -> np.ndarray:
    return model.predict(split.features, batch_size=batch_size, verbose=0).astype(np.float64)


def report(probs: np.ndarray, split: Split, num_classes: int) -> dict:
    from tf_scenes.datasets.tau2020 import BROAD_CLASSES, SCENES
    from tf_scenes.metrics.classification import classification_report

    names = SCENES if num_classes == 10 else BROAD_CLASSES
    return classification_report(split.labels(num_classes), probs, devices=[r.device for r in split.records],
                                 class_names=list(names))


# ----------------------------------------------------------------------------------------------
# the study


def run_study(cfg: Config, out: Path) -> dict:
    """Run the whole study; returns the tables as dicts."""
    import json

    from tf_scenes import runs
    from tf_scenes.config import to_dict
    from tf_scenes.datasets import tau2020
    from tf_scenes.io_utils import atomic_write_json, ensure_writable_dir
    from tf_scenes.training.trainer import set_determinism

    out = ensure_writable_dir(out)
    ensure_writable_dir(cfg.data.cache_dir)  # fail before any long work, not after it
    if not cfg.data.root:
        ensure_writable_dir(cfg.data.synthetic_dir)
    set_determinism(cfg.seed)
    root, synthetic = resolve_data_root(cfg)
    data_label = (f"SYNTHETIC TAU-format data ({cfg.data.synthetic_size}, seed {cfg.data.synthetic_seed}); "
                  "not the DCASE 2020 Task 1a data" if synthetic else f"TAU 2020 Mobile at {root}")
    log.info("data: %s", data_label)
    cache = Path(cfg.data.cache_dir)

    records = tau2020.load(root, split="train")
    if cfg.data.max_train_clips:
        rng = np.random.default_rng(cfg.seed)
        records = [records[i] for i in sorted(rng.permutation(len(records))[: cfg.data.max_train_clips])]
    eval_records = tau2020.load(root, split="evaluate")
    train_records, val_records = location_split(records, cfg.data.val_fraction, cfg.seed)
    log.info("clips: train %d, validation %d (held-out locations), evaluation %d",
             len(train_records), len(val_records), len(eval_records))

    # Offline augmentation: one pass for the union of kinds any model run asks for.
    kinds = sorted({k for m in cfg.models.values() for k in m.offline}, key=OFFLINE_KINDS.index)
    aug_records = augment_offline(train_records, kinds, cfg, cache, root) if kinds else []

    # One feature cache for every clip of the study; splits are views of it (no copies).
    all_records = train_records + val_records + eval_records + aug_records
    x_all = extract_features([r.path for r in all_records], cache, "all")
    n_tr, n_va, n_ev = len(train_records), len(val_records), len(eval_records)
    base_train = Split(train_records, x_all[:n_tr])
    val = Split(val_records, x_all[n_tr:n_tr + n_va])
    test = Split(eval_records, x_all[n_tr + n_va:n_tr + n_va + n_ev])
    aug_offset = n_tr + n_va + n_ev

    meta = {"profile": cfg.profile, "data": data_label, "synthetic": synthetic, "data_root": str(root),
            "clips": {"train": n_tr, "validation": n_va, "evaluation": len(eval_records),
                      "augmented": len(aug_records)},
            "selection": f"{cfg.train.select} epoch on the validation split (held-out locations)"}
    runs.create_run_dir(out, cfg, seed=cfg.seed, name="two_stage")

    scores: dict[str, np.ndarray] = {}
    models = {}
    for name, mrun in cfg.models.items():
        run_dir = out / "runs" / name
        train = with_augmentations(base_train, aug_records, x_all, aug_offset, mrun.offline)
        model_cfg = {"model_run": to_dict(mrun), "train": to_dict(cfg.train), "seed": cfg.seed,
                     "data": data_label, "train_clips": len(train.records)}
        if _finished(run_dir, model_cfg):
            log.info("%s: finished earlier, reusing %s", name, run_dir)
            model = load_selected(run_dir)
        else:
            log.info("%s: training %s (%d-class, width %s, %d epochs) on %d clips", name, mrun.arch,
                     mrun.num_classes, mrun.width, mrun.epochs, len(train.records))
            runs.create_run_dir(run_dir, model_cfg, seed=cfg.seed, name=name)
            model = train_one(name, mrun, cfg, train, val, run_dir)
        probs = evaluate(model, test, mrun.num_classes, cfg.train.eval_batch_size)
        metrics = report(probs, test, mrun.num_classes)
        save_scores(run_dir / "scores_evaluate.csv", test.records, probs, mrun.num_classes)
        runs.finish_run(run_dir, metrics)
        scores[name], models[name] = probs, model

    from experiments import two_stage_report

    tables = two_stage_report.write_all(cfg, out, test, scores, meta)
    if cfg.figures:
        two_stage_report.figures(cfg, out, test, scores, models, meta)
    if cfg.export:
        from tf_scenes.export import export_two_stage

        export_two_stage({m: models[m] for m in cfg.ensemble10}, {m: models[m] for m in cfg.ensemble3},
                         out / "export" / "two_stage_system")
    atomic_write_json(out / "study.json", {**meta, "models": list(cfg.models), "tables": sorted(tables)})
    runs.finish_run(out, {k: v for k, v in tables.items() if k == "summary"})
    log.info("done: %s", json.dumps(tables.get("summary", {})))
    return tables


def augmentation_kind(record) -> str:
    """The offline augmentation that made a generated clip ({source stem}-{kind}.wav)."""
    stem = Path(record.filename).stem
    for kind in OFFLINE_KINDS:
        if stem.endswith("-" + kind):
            return kind
    raise ValueError(f"{record.filename}: not an offline-augmented clip")


def with_augmentations(base: Split, aug_records, x_all, aug_offset: int, kinds) -> Split:
    """The base training split plus the generated clips of the given offline kinds, as a row view
    of the study's feature array (`base.features` are its first rows; generated clips start at
    `aug_offset`)."""
    from pipelines.train_data import RowView

    idx = [i for i, r in enumerate(aug_records) if augmentation_kind(r) in kinds]
    if not idx:
        return base
    rows = np.concatenate([np.arange(len(base.records)), aug_offset + np.asarray(idx)])
    return Split(base.records + [aug_records[i] for i in idx], RowView(x_all, rows))


def augment_offline(train_records, kinds, cfg: Config, cache: Path, root: Path):
    """Generate (or reuse) the offline augmentations of a seeded fraction of device-A training clips.

    Non-A training clips are passed along too: spectrum correction estimates its per-bin ratio
    from their parallel pairs with device-A clips (all non-A training devices, as in the paper)."""
    import hashlib

    from tf_scenes.two_stage.offline_augment import generate_augmented_set, spectrum_correction_reference

    a = [r for r in train_records if r.device == "a"]
    rng = np.random.default_rng(cfg.offline.seed)
    n = max(1, int(round(cfg.offline.fraction * len(a))))
    chosen = [a[i] for i in sorted(rng.permutation(len(a))[:n])]
    # The correction ratio uses every parallel pair of the training split (all non-A training
    # devices, as in the paper), not only the pairs of the chosen clips.
    ratio = spectrum_correction_reference(train_records) if "spectrum_correction" in kinds else None
    out = cache / "offline_aug" / hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    log.info("offline augmentation (%s) of %d device-A clips -> %s", ", ".join(kinds), n, out)
    # Same-class mixing draws partners from every training clip of the scene, not only the chosen.
    return generate_augmented_set(chosen, out, kinds=kinds, seed=cfg.offline.seed, correction_ratio=ratio,
                                  partner_pool=train_records)


def _finished(run_dir: Path, model_cfg: dict) -> bool:
    from tf_scenes.runs import is_finished

    return is_finished(run_dir, model_cfg, required=("model.json",))


def load_selected(run_dir: Path):
    from tf_scenes.model_io import load_run_model

    return load_run_model(run_dir)[0]


def save_scores(path: Path, records, probs: np.ndarray, num_classes: int) -> None:
    """Scores keyed by filename (fusion joins on this column, never on row order)."""
    from tf_scenes.datasets.tau2020 import BROAD_CLASSES, SCENES
    from tf_scenes.io_utils import atomic_write_text

    names = SCENES if num_classes == 10 else BROAD_CLASSES
    lines = ["\t".join(["filename", *names])]
    lines += ["\t".join([r.filename, *(f"{p:.6f}" for p in row)]) for r, row in zip(records, probs)]
    atomic_write_text(path, "\n".join(lines) + "\n")
