"""Two-stage device-robust acoustic scene classification (Hu et al., ICASSP 2021): config, data and
run plan of the study (`make reproduce-two-stage`, ``tf-scenes reproduce two_stage``).

1. data: TAU Urban Acoustic Scenes 2020 Mobile fold1 (the synthetic stand-in by default); a
   validation split carved from the training fold, grouped by recording location (model selection
   never looks at the evaluation fold, unlike the reference code);
2. augmentation of device-A training clips (spectrum correction, reverb + DRC, pitch shift, speed
   change, noise, same-class mixing): `augment.mode` "offline" writes one copy per clip and kind
   once (wav files and a manifest, as the reference), "online" computes the copies in each run's
   tf.data pipeline (decode, augment, front-end) and writes nothing;
3. log-mel + deltas features (423 x 128 x 3), cached once for every clip of the study (offline
   copies included; online copies are computed per batch);
4. every model run of the config (10-class and 3-class ResNet / FCNN / fsFCNN and the ResNet
   augmentation ablation), trained by the shared runner (tf_scenes.experiments.study);
5. evaluation scores keyed by filename; ensembles, two-stage fusion, tables, figures and the
   exported system in :mod:`.report`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Optional

import numpy as np

from tf_scenes.config import bounded

from .. import study

log = logging.getLogger(__name__)

OFFLINE_KINDS = ("spectrum_correction", "reverb_drc", "pitch_shift", "speed_change", "noise", "same_class_mix")
DATASET = "TAU Urban Acoustic Scenes 2020 Mobile"


@dataclass(frozen=True)
class DataConfig(study.DataConfig):
    val_fraction: float = bounded(0.1, ge=0.0, lt=1.0)  # of the training clips, held out by location
    max_train_clips: Optional[int] = bounded(None, ge=1)  # cap on training clips (smoke tests)
    cache_dtype: Literal["float32", "float16"] = "float32"  # feature cache storage (float16: half the disk)


@dataclass(frozen=True)
class AugmentConfig:
    """The audio augmentations (Hu et al. 2021, Sec. 3.2): a seeded `fraction` of the device-A
    training clips gets one augmented copy per kind that a model run lists (``models.X.offline``).

    mode "offline": the copies are written once as wav files with a manifest
    (tf_scenes.pipelines.offline_augment, as the reference) and their features cached with the
    other clips; "online": each run computes them in its tf.data pipeline
    (tf_scenes.pipelines.waveform_augment: decode the source clip, augment, front-end), nothing is
    written. draws (online only): "fixed", one copy per clip and kind seeded by (seed, clip, kind),
    the same in every epoch (the offline semantics without the disk); "fresh", a new copy every
    epoch. rir_bank_size (online reverb): rooms simulated once and cached, one drawn per copy (the
    offline files simulate a room per clip).
    """

    mode: Literal["offline", "online"] = "offline"
    draws: Literal["fixed", "fresh"] = "fixed"
    fraction: float = bounded(1.0, gt=0.0, le=1.0)  # of the device-A training clips, augmented by each kind
    seed: int = 0
    rir_bank_size: int = bounded(128, ge=1)

    def key(self) -> dict:
        """What a run's result depends on (part of its reuse key)."""
        out = {"mode": self.mode, "fraction": self.fraction, "seed": self.seed}
        if self.mode == "online":
            out.update(draws=self.draws, rir_bank_size=self.rir_bank_size)
        return out


@dataclass(frozen=True)
class TrainConfig(study.TrainConfig):
    batch_size: int = bounded(32, ge=1)
    lr_max: float = bounded(0.1, gt=0.0)
    lr_min: float = bounded(1e-5, ge=0.0)
    momentum: float = bounded(0.9, ge=0.0, lt=1.0)
    first_cycle_epochs: int = bounded(2, ge=1)  # cosine warm restarts: cycles of 2, 4, 8, ... epochs
    cycle_mult: int = bounded(2, ge=1)
    mixup_alpha: float = bounded(0.4, gt=0.0)
    crop_frames: int = bounded(400, ge=16)
    spec_augment_freq: int = bounded(12, ge=0)
    spec_augment_time: int = bounded(39, ge=0)
    steps_per_epoch: Optional[int] = bounded(None, ge=1)  # None: ceil(clips / batch_size)
    # BatchNorm moving-statistics momentum (reference: Keras' 0.99). Runs of a few hundred steps
    # need less (0.9): with 0.99 the inference statistics still lag the weights and every clip
    # gets the same class (measured on the quick profile: validation accuracy 0.065 -> 0.64).
    bn_momentum: float = bounded(0.99, gt=0.0, lt=1.0)


@dataclass(frozen=True)
class ModelRun:
    arch: Literal["resnet", "fcnn", "fsfcnn"]
    num_classes: Literal[10, 3] = 10
    width: float = bounded(1.0, gt=0.0)
    epochs: int = bounded(126, ge=1)
    offline: tuple[str, ...] = OFFLINE_KINDS
    spec_augment: bool = False
    mixup: bool = True


@dataclass(frozen=True)
class Config:
    profile: str = "quick"
    description: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
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
    cam_clips: int = bounded(2, ge=0)

    def __post_init__(self):
        from tf_scenes.errors import ConfigError

        if not self.models:
            raise ConfigError("models: the profile defines no model runs")
        if self.augment.draws == "fresh" and self.augment.mode == "offline":
            raise ConfigError("augment.draws: 'fresh' needs augment.mode=online (offline copies are files made "
                              "once)", key="augment.draws")
        names = set(self.models)
        for key in ("ensemble10", "ensemble3", "table1", "table2", "table3"):
            missing = [m for m in getattr(self, key) if m not in names]
            if missing:
                raise ConfigError(f"{key} names model runs not defined under models: {missing}", key=key)
        for name, m in self.models.items():
            bad = [k for k in m.offline if k not in OFFLINE_KINDS]
            if bad:
                raise ConfigError(f"models.{name}.offline: unknown kinds {bad}; valid: {list(OFFLINE_KINDS)}",
                                  key=f"models.{name}.offline")
        for key, n in (("ensemble10", 10), ("ensemble3", 3)):
            wrong = [m for m in getattr(self, key) if self.models[m].num_classes != n]
            if wrong:
                raise ConfigError(f"{key} must list {n}-class models; {wrong} are not", key=key)


# ----------------------------------------------------------------------------------------------
# data


@dataclass
class Split:
    records: list
    features: np.ndarray  # (N, 423, 128, 3) or a row view of the study's feature cache
    # online mode: the augmented examples after the rows of `features`, one per record after them:
    # (m, 2) [source row in Data.train, kind index in Data.online.kinds]
    computed: Optional[np.ndarray] = None

    def labels(self, num_classes: int) -> np.ndarray:
        from tf_scenes.datasets.tau2020 import BROAD_CLASSES, SCENES

        if num_classes == 10:
            return np.array([SCENES.index(r.scene) for r in self.records], np.int64)
        return np.array([BROAD_CLASSES.index(r.broad) for r in self.records], np.int64)

    def filenames(self) -> list[str]:
        return [r.filename for r in self.records]


@dataclass
class OnlineAugment:
    """What a run's pipeline needs to compute the augmented copies (augment.mode online)."""

    kinds: tuple[str, ...]  # the kinds any run lists; `sources` index into it
    sources: np.ndarray  # (len(Data.aug_records), 2): [source row in Data.train, kind index] per record
    copy: Callable  # waveform_augment.copy_fn over the training clips: (row, kind index, epoch) -> waveform

    def computed(self, pairs: np.ndarray):
        """The examples of `pairs` ((m, 2) rows of `sources`) as pipeline-computed features:
        decode the source clip, augment it, two-stage front-end (423, 128, 3)."""
        import tensorflow as tf

        from tf_scenes.features import get_feature_config
        from tf_scenes.features.config import output_shape
        from tf_scenes.features.frontend import tf_features
        from tf_scenes.pipelines.train_data import Computed

        fcfg = get_feature_config("two_stage")
        table = tf.constant(np.asarray(pairs, np.int64).reshape(-1, 2))
        copy = self.copy

        @tf.autograph.experimental.do_not_convert
        def fn(j, epoch):
            pair = tf.gather(table, j)
            return tf_features(fcfg, copy(pair[0], pair[1], epoch))  # (423, 128, 3)

        return Computed(len(pairs), fn, output_shape(fcfg, fcfg.clip_samples))


@dataclass
class Data:
    label: object  # DataLabel
    root: Path
    train: Split  # the training split without augmented clips
    val: Split
    test: Split
    aug_records: list  # offline: the written copies; online: the same names, path = the source clip
    features: np.ndarray  # every clip of the study: train, val, test (+ the augmented copies offline)
    aug_offset: int  # offline: the row of the first augmented copy in `features`
    skipped: tuple = ()
    online: Optional[OnlineAugment] = None  # online mode: how runs compute the copies


def resolve_data_root(cfg: Config) -> Path:
    """The dataset root: --data, or the synthetic default (generated if absent)."""
    if cfg.data.root:
        return Path(cfg.data.root)
    from tf_scenes.synth import generate

    roots = generate("asc", Path(cfg.data.synthetic_dir), size=cfg.data.synthetic_size, seed=cfg.data.synthetic_seed)
    return Path(roots["asc"])


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


def prepare(cfg: Config, env) -> Data:
    from tf_scenes.datasets import provenance, tau2020
    from tf_scenes.features import get_feature_config
    from tf_scenes.io_utils import ensure_writable_dir
    from tf_scenes.pipelines.cache import cached_features

    if not cfg.data.root:
        ensure_writable_dir(cfg.data.synthetic_dir)  # fail before any long work
    from tf_scenes.datasets import LoadReport

    root = resolve_data_root(cfg)
    report = LoadReport()
    records, eval_records = tau2020.load_fold1(root, **study.reader_options(cfg.data, report))
    label = study.label_with_skipped(provenance.describe(DATASET, root), report)
    if cfg.data.max_train_clips:
        rng = np.random.default_rng(cfg.seed)
        records = [records[i] for i in sorted(rng.permutation(len(records))[: cfg.data.max_train_clips])]
    train_records, val_records = location_split(records, cfg.data.val_fraction, cfg.seed)
    log.info("clips: train %d, validation %d (held-out locations), evaluation %d",
             len(train_records), len(val_records), len(eval_records))

    # Augmentation: the union of kinds any model run asks for, of one seeded choice of clips.
    kinds = sorted({k for m in cfg.models.values() for k in m.offline}, key=OFFLINE_KINDS.index)
    aug_records, online = [], None
    if kinds and cfg.augment.mode == "offline":
        aug_records = augment_offline(train_records, kinds, cfg, env.cache_dir, root)
    elif kinds:
        aug_records, online = augment_online(train_records, kinds, cfg, env.cache_dir)

    # One feature cache for every stored clip of the study; splits are views of it (no copies).
    all_records = train_records + val_records + eval_records + (aug_records if online is None else [])
    log.info("features for %d clips", len(all_records))
    x_all = cached_features([str(r.path) for r in all_records], get_feature_config("two_stage"),
                            env.cache_dir / "features", dtype=cfg.data.cache_dtype)
    n_tr, n_va, n_ev = len(train_records), len(val_records), len(eval_records)
    return Data(label, root, Split(train_records, x_all[:n_tr]), Split(val_records, x_all[n_tr:n_tr + n_va]),
                Split(eval_records, x_all[n_tr + n_va:n_tr + n_va + n_ev]), aug_records, x_all, n_tr + n_va + n_ev,
                tuple(report.to_dict()["skipped"]), online)


def augmentation_kind(record) -> str:
    """The offline augmentation that made a generated clip ({source stem}-{kind}.wav)."""
    stem = Path(record.filename).stem
    for kind in OFFLINE_KINDS:
        if stem.endswith("-" + kind):
            return kind
    raise ValueError(f"{record.filename}: not an offline-augmented clip")


def with_augmentations(data: Data, kinds) -> Split:
    """The training split plus the augmented copies of the given kinds: offline, a row view of the
    study's feature array (the training clips are its first rows); online, the training rows and
    the (source, kind) pairs the pipeline computes. The records are the same in both modes."""
    from tf_scenes.pipelines.train_data import RowView

    idx = [i for i, r in enumerate(data.aug_records) if augmentation_kind(r) in kinds]
    if not idx:
        return data.train
    records = data.train.records + [data.aug_records[i] for i in idx]
    if data.online is not None:
        return Split(records, data.train.features, computed=data.online.sources[np.asarray(idx)])
    rows = np.concatenate([np.arange(len(data.train.records)), data.aug_offset + np.asarray(idx)])
    return Split(records, RowView(data.features, rows))


def augmentation_sources(train_records, aug: AugmentConfig) -> list:
    """The device-A training clips that get augmented copies: a seeded `aug.fraction` of them, in
    the order of `train_records` (the same choice in both modes)."""
    a = [r for r in train_records if r.device == "a"]
    rng = np.random.default_rng(aug.seed)
    n = max(1, int(round(aug.fraction * len(a))))
    return [a[i] for i in sorted(rng.permutation(len(a))[:n])]


def augment_offline(train_records, kinds, cfg: Config, cache: Path, root: Path):
    """Generate (or reuse) the offline augmentations of a seeded fraction of device-A training clips.

    Non-A training clips are passed along too: spectrum correction estimates its per-bin ratio
    from their parallel pairs with device-A clips (all non-A training devices, as in the paper)."""
    import hashlib

    from tf_scenes.pipelines.offline_augment import generate_augmented_set, spectrum_correction_reference

    chosen = augmentation_sources(train_records, cfg.augment)
    n = len(chosen)
    # The correction ratio uses every parallel pair of the training split (all non-A training
    # devices, as in the paper), not only the pairs of the chosen clips.
    ratio = spectrum_correction_reference(train_records) if "spectrum_correction" in kinds else None
    out = cache / "offline_aug" / hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    log.info("offline augmentation (%s) of %d device-A clips -> %s", ", ".join(kinds), n, out)
    # Same-class mixing draws partners from every training clip of the scene, not only the chosen.
    return generate_augmented_set(chosen, out, kinds=kinds, seed=cfg.augment.seed, correction_ratio=ratio,
                                  partner_pool=train_records)


def augment_online(train_records, kinds, cfg: Config, cache: Path) -> tuple[list, OnlineAugment]:
    """The records of the augmented copies the offline mode would write (same names, kinds and
    sources, in the same order; ``path`` is the source clip) and what the pipeline needs to compute
    them: the device ratio (cached, the same ratio as offline), the room bank (cached), the
    same-scene partner tables over every training clip, a reader of the training files.

    As offline, a source without a clip of another recording of its scene gets no same_class_mix
    copy, and a source shorter than one STFT frame is an AudioError naming it (before training).
    """
    from tf_scenes.errors import AudioError
    from tf_scenes.io_utils import ensure_writable_dir
    from tf_scenes.pipelines import waveform_augment as wa
    from tf_scenes.pipelines.audio import index_reader, probe_audio
    from tf_scenes.pipelines.offline_augment import N_FFT, SR, augmented_name

    aug = cfg.augment
    chosen = sorted(augmentation_sources(train_records, aug), key=lambda r: r.filename)  # offline's order
    row = {r.filename: i for i, r in enumerate(train_records)}
    audio = probe_audio([r.path for r in train_records])  # headers: every file checked once
    for r in chosen:
        n = audio[row[r.filename]].resampled_frames(SR)
        if n < N_FFT:
            raise AudioError(r.path, f"too short for augmentation: {n} samples ({n / SR:.3f} s), need at least "
                             f"{N_FFT} (one STFT frame)")
    partners = wa.ScenePartners.from_records(train_records) if "same_class_mix" in kinds else None
    records, sources = [], []
    for k, kind in enumerate(kinds):
        for r in chosen:
            i = row[r.filename]
            if kind == "same_class_mix" and partners.candidates[i] == 0:
                continue  # no partner of another recording of the scene (ScenePartners logged it)
            records.append(dataclasses.replace(r, filename=augmented_name(r.filename, kind)))
            sources.append((i, k))
    aug_dir = ensure_writable_dir(cache / "augment")
    ratio = wa.correction_ratio(train_records, aug_dir) if "spectrum_correction" in kinds else None
    wcfg = wa.WaveAugmentConfig(rir_bank_size=aug.rir_bank_size, rir_bank_seed=aug.seed)
    bank = wa.rir_bank(wcfg.rir_bank_size, wcfg.rt60_range, wcfg.sample_rate, wcfg.rir_bank_seed, aug_dir,
                       progress=True) if "reverb_drc" in kinds else None
    names = [r.filename for r in train_records]
    copy = wa.copy_fn(kinds, wa.AugmentParams(wcfg, ratio, bank), read=index_reader(audio, SR),
                      keys=wa.clip_keys(names), partners=partners, seed=aug.seed, mode=aug.draws, names=names)
    log.info("online augmentation (%s, draws %s) of %d device-A clips: %d copies computed in the pipeline",
             ", ".join(kinds), aug.draws, len(chosen), len(records))
    return records, OnlineAugment(tuple(kinds), np.asarray(sources, np.int64).reshape(-1, 2), copy)


# ----------------------------------------------------------------------------------------------
# the plan: one run per model of the config


def model_config(run: ModelRun, train: TrainConfig):
    from tf_scenes.two_stage.model import TwoStageModelConfig

    return TwoStageModelConfig(arch=run.arch, num_classes=run.num_classes, width=run.width,
                               bn_momentum=train.bn_momentum)


def plan(cfg: Config, data: Data) -> list:
    from tf_scenes.config import to_dict

    out = []
    for name, mrun in cfg.models.items():
        train = with_augmentations(data, mrun.offline)
        config = {"model_run": to_dict(mrun), "train": to_dict(cfg.train), "seed": cfg.seed,
                  "data": data.label.text, "train_clips": len(train.records)}
        if mrun.offline:
            config["augment"] = cfg.augment.key()
        if cfg.data.cache_dtype != "float32":  # float32 runs keep their reuse keys
            config["cache_dtype"] = cfg.data.cache_dtype
        out.append(study.RunSpec(name=name, builder=f"two_stage_{mrun.arch}", model_config=model_config(mrun, cfg.train),
                                 config=config, seed=study.run_seed(cfg.seed, name), train=cfg.train,
                                 item=(mrun, train)))
    return out


def epoch_steps(split: Split, t: TrainConfig) -> int:
    """As the reference: each batch of `batch_size` mixup pairs is drawn from 2 x batch_size clips
    (first half mixed with second half), ceil(N / batch) steps per epoch."""
    return t.steps_per_epoch or max(1, -(-len(split.records) // t.batch_size))


def train_dataset(spec, data: Data, t: TrainConfig, initial_epoch: int = 0):
    """The training batches of a run from `initial_epoch` on: the stored features (and, online, the
    augmented copies computed in the pipeline), SpecAugment, random crops, mixup; a pure function
    of the run's seed and the epoch."""
    from tf_scenes.pipelines.train_data import make_train_dataset
    from tf_scenes.pipelines.transforms import Mixup, crop, spec_augment

    mrun, split = spec.item
    n_classes = mrun.num_classes
    y_train = np.eye(n_classes, dtype=np.float32)[split.labels(n_classes)]
    # SpecAugment as the reference: one frequency and one time mask per channel, before cropping.
    transforms = [spec_augment(max_freq_width=t.spec_augment_freq, max_time_width=t.spec_augment_time,
                               per_channel=True)] if mrun.spec_augment else []
    transforms.append(crop(t.crop_frames))
    mixup = Mixup(t.mixup_alpha, pairing="halves") if mrun.mixup else None
    computed = data.online.computed(split.computed) if split.computed is not None else None
    return make_train_dataset(split.features, y_train, batch_size=t.batch_size, seed=spec.seed, epochs=mrun.epochs,
                              initial_epoch=initial_epoch, transforms=transforms, mixup=mixup,
                              steps_per_epoch=epoch_steps(split, t), computed=computed)


def train(spec, data: Data, run_dir: Path, build, env, *, strategy, init=None) -> study.Trained:
    """SGD with cosine warm restarts, mixup, SpecAugment and random crops, as the reference; the
    epoch with the best validation accuracy (held-out locations) is kept."""
    import keras

    from tf_scenes.training.distribute import jit_compile_arg
    from tf_scenes.training.schedules import CosineWarmRestarts
    from tf_scenes.training.trainer import fit

    mrun, split = spec.item
    t = env.config.train
    n_classes = mrun.num_classes
    steps = epoch_steps(split, t)
    model = build()
    with strategy.scope():
        schedule = CosineWarmRestarts(max_lr=t.lr_max, min_lr=t.lr_min, steps_per_epoch=steps,
                                      first_cycle_epochs=t.first_cycle_epochs, t_mul=t.cycle_mult)
        model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=t.momentum),
                      loss="categorical_crossentropy", metrics=["accuracy"], jit_compile=jit_compile_arg(t.jit_compile))

    def make_ds(initial_epoch: int):
        return train_dataset(spec, data, t, initial_epoch)

    val_fn = None
    if len(data.val.records):
        y_val = data.val.labels(n_classes)

        def val_fn(m):
            probs = m.predict(data.val.features, batch_size=t.eval_batch_size, verbose=0)
            return {"val_acc": float(np.mean(probs.argmax(1) == y_val))}

    select = t.select if val_fn is not None else "last"
    result = fit(model, make_ds, epochs=mrun.epochs, steps_per_epoch=steps, run_dir=run_dir, val_data=val_fn,
                 monitor="val_acc", mode="max", select=select)
    return study.Trained(model, card={"selected_epoch": result["best_epoch"] if select == "best"
                                      else result["last_epoch"], "selection": select})


def evaluate(spec, model, data: Data, run_dir: Path) -> dict:
    """Scores of the evaluation clips (keyed by filename) and the classification report of the
    scores as written (so a reused run gives the same metrics)."""
    from tf_scenes.datasets.tau2020 import BROAD_CLASSES, SCENES
    from tf_scenes.metrics.classification import classification_report
    from tf_scenes.scores import ScoreTable, read_scores, write_scores

    mrun, _ = spec.item
    names = SCENES if mrun.num_classes == 10 else BROAD_CLASSES
    probs = model.predict(data.test.features, batch_size=spec.train.eval_batch_size, verbose=0)
    path = write_scores(run_dir / study.score_file(), ScoreTable(data.test.filenames(), probs, names))
    scores = read_scores(path).take(data.test.filenames()).scores
    return classification_report(data.test.labels(mrun.num_classes), scores,
                                 devices=[r.device for r in data.test.records], class_names=list(names))
