"""Weakly supervised SED with a self-supervised auxiliary task and two-step attention pooling
(Deshmukh, Raj & Singh, Interspeech 2021): config, data and run plan of the study
(`make reproduce-weak-sed`, ``tf-scenes reproduce weak_sed``):

1. data: FSDKaggle2018 verified event clips mixed into 10 s acoustic scenes at each SNR
   (tf_scenes.weak_sed.remix).  By default the synthetic stand-ins
   (tf_scenes.synth.generate("remix")); with data.events_root + data.scenes_root the remix of the
   real datasets is built once into a cache folder; data.root (``--data``) names a remix built
   earlier (a folder of snr{S}/ subfolders).  ``data.remix``: ``files`` writes the mixtures as wav
   files and reads them back; ``online`` writes the plan only (mixture.yaml) and makes the
   mixtures in the input pipeline from their sources (tf_scenes.pipelines.remix), quantised as the
   16-bit files, so the features and every number are the same without the mixture files;
2. log-mel features (32 kHz, 311 x 64), cached once per SNR and file list (online: per SNR, plan
   and sources); per-band z-score with
   the statistics of the training mixtures of each split only (stored in every model card and in
   the exported model);
3. the fold protocol: for each held-out fold of ``eval_folds`` train on the other folds (a seeded
   ``val_fraction`` of their mixtures held out for validation), evaluate on the held-out fold;
4. every model run of the config (Table 1: GAP, GMP, GWRP, dilated-CNN attention pooling, 2APAE;
   Table 2: 2APAE with alpha 0 / 0.001 / 0.1) at every SNR and split, each in its own resumable run
   folder runs/{name}/snr{S}/fold{k}/ (Adam, BCE + alpha * MSE, ReduceLROnPlateau on validation
   micro-AP, best validation epoch selected);
5. tables 1-2 (.json + .md, paper numbers beside ours), per-class AP (json + bars), the paper's
   Figure 2 for example clips, and the exported 2APAE (waveform in; clip probabilities and time
   attention out).

Runs are trained, reused and resumed by the shared runner (tf_scenes.experiments.study).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from tf_scenes.config import bounded

from .. import study

log = logging.getLogger(__name__)

MODEL_KINDS = ("2apae", "gap", "gmp", "gwrp", "dilated_attention")
MONITOR = "val_micro_ap"
HOP_SECONDS = 1024 / 32000


@dataclass(frozen=True)
class DataConfig(study.DataConfig):
    root: Optional[str] = None  # a remix built earlier (snr{S}/ subfolders); set by --data
    events_root: Optional[str] = None  # FSDKaggle2018 root (train.csv, audio_train/)
    scenes_root: Optional[str] = None  # TAU-format scene root (audio/*.wav); DCASE 2019 Task 1 in the paper
    remix_dir: Optional[str] = None  # where the remix of real data is built; None: {cache_dir}/weak_sed_remix/{key}
    mixtures_per_fold: Optional[int] = bounded(None, ge=1)  # real data; None: min(2000, smallest fold's clips // 3)
    n_folds: int = bounded(4, ge=2)
    remix_seed: int = 0
    snrs: tuple[float, ...] = (20.0, 10.0, 0.0)
    val_fraction: float = bounded(0.1, ge=0.0, lt=1.0)  # of the training folds' mixtures, held out for validation
    # files: mixtures written as wav (15 GB for the paper's 24,000) and read back; online: only the
    # plan is written, the mixtures are made from their sources in the input pipeline (same features)
    remix: Literal["files", "online"] = "files"
    # Synthetic default only: verified event clips per class (None: the synthetic size's, 8 for
    # small); another count gets its own event set and remix folders beside the shared ones.
    synthetic_events_per_class: Optional[int] = bounded(None, ge=1)
    # with synthetic_events_per_class: deal each class's clips evenly into the folds (otherwise a
    # class can have 1 clip in one fold and 13 in another)
    class_balanced_folds: bool = False


@dataclass(frozen=True)
class TrainConfig(study.TrainConfig):
    batch_size: int = bounded(24, ge=1)
    lr: float = bounded(1e-3, gt=0.0)  # Adam
    plateau_factor: float = bounded(0.1, gt=0.0, lt=1.0)  # ReduceLROnPlateau on validation micro-AP (max)
    plateau_patience: int = bounded(3, ge=0)
    plateau_threshold: float = bounded(1e-4, ge=0.0)  # relative, as PyTorch's default
    eval_batch_size: int = bounded(16, ge=1)
    steps_per_epoch: Optional[int] = bounded(None, ge=1)  # None: ceil(training mixtures / batch_size), one pass
    run_eagerly: bool = False  # Keras eager steps (no tf.function tracing): for smoke tests of many tiny runs


@dataclass(frozen=True)
class ModelRun:
    model: Literal["2apae", "gap", "gmp", "gwrp", "dilated_attention"]
    alpha: float = bounded(0.001, ge=0.0)  # weight of the reconstruction loss (2APAE only)
    width: float = bounded(1.0, gt=0.0)  # multiplier on every convolution width (1.0: the paper's models)
    epochs: int = bounded(50, ge=1)
    lr: Optional[float] = bounded(None, gt=0.0)  # Adam rate of this run; None: train.lr
    # start the clip output near the label prior instead of 0.5 (tf_scenes.training.init): the
    # VGG-ish baselines' sigmoid class map gets the logit of each class's frequency in the training
    # mixtures; 2APAE's time-step presence layer (shared by all classes) the logit of the mean
    # frequency.  The paper: False (zero biases / PyTorch's default)
    prior_bias: bool = False
    # then shift each class's class-map bias so that the *pooled* clip output, averaged over
    # CALIBRATION_MIXTURES training mixtures as the first step sees them, starts at the class's
    # training frequency (tf_scenes.training.init.calibrate_bias).  For GMP and GWRP the prior
    # logit per cell is not enough: the pool picks the cells the random kernel made highest, and
    # their quick-profile clip outputs started at 0.68-1.00 (GMP) and 0.10-0.23 (GWRP) against
    # priors of 0.06-0.08.  VGG-ish baselines only; needs prior_bias.  The paper: False.
    calibrate_bias: bool = False

    def __post_init__(self):
        from tf_scenes.errors import ConfigError

        if self.prior_bias and self.model not in PRIOR_BIAS_LAYERS:
            raise ConfigError(f"prior_bias applies to {sorted(PRIOR_BIAS_LAYERS)}, not {self.model!r}")
        if self.calibrate_bias and (self.model not in CALIBRATED_MODELS or not self.prior_bias):
            raise ConfigError(f"calibrate_bias applies to {list(CALIBRATED_MODELS)} with prior_bias: true, "
                              f"not to {self.model!r} with prior_bias: {str(self.prior_bias).lower()}")


# model -> (layer whose bias prior_bias sets, one bias shared by all classes)
PRIOR_BIAS_LAYERS = {"gap": ("class_conv", False), "gmp": ("class_conv", False), "gwrp": ("class_conv", False),
                     "2apae": ("att_time_presence_dense", True)}
# models whose clip output is a pooled sigmoid class map (calibrate_bias), and the training
# mixtures the calibration averages over (the first ones of the fit split)
CALIBRATED_MODELS = ("gap", "gmp", "gwrp")
CALIBRATION_MIXTURES = 16


@dataclass(frozen=True)
class Config:
    profile: str = "quick"
    description: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval_folds: tuple[int, ...] = (1, 2, 3, 4)  # each held out once (paper: 4-fold protocol)
    models: dict[str, ModelRun] = field(default_factory=dict)
    table1: tuple[str, ...] = ("gap", "gmp", "gwrp", "dilated_attention", "2apae")
    table2: tuple[str, ...] = ("2apae_alpha0", "2apae", "2apae_alpha0_1")
    figures: bool = True
    figure_clips: int = bounded(2, ge=0)  # example clips of Figure 2 (the same mixtures at every SNR)
    export: bool = True
    export_snrs: Optional[tuple[float, ...]] = None  # SNRs whose 2APAE is exported; None: all
    table2_snrs: Optional[tuple[float, ...]] = None  # SNRs of the alpha ablation (Table 2); None: all

    def __post_init__(self):
        from tf_scenes.errors import ConfigError

        names = set(self.models)
        for key in ("table1", "table2"):
            missing = [m for m in getattr(self, key) if m not in names]
            if missing:
                raise ConfigError(f"{key} names model runs not defined under models: {missing}")
        not_apae = [m for m in self.table2 if self.models[m].model != "2apae"]
        if not_apae:
            raise ConfigError(f"table2 (alpha ablation) must list 2APAE runs; {not_apae} are not")
        apae1 = [m for m in self.table1 if self.models[m].model == "2apae"]
        if len(apae1) > 1:
            raise ConfigError(f"table1 lists several 2APAE runs {apae1}; give one")
        if not self.data.snrs or len(set(self.data.snrs)) != len(self.data.snrs):
            raise ConfigError(f"data.snrs must be non-empty and distinct, got {list(self.data.snrs)}", key="data.snrs")
        bad = [k for k in self.eval_folds if not 1 <= k <= self.data.n_folds]
        if not self.eval_folds or bad or len(set(self.eval_folds)) != len(self.eval_folds):
            raise ConfigError(f"eval_folds must be distinct folds in 1..{self.data.n_folds}, "
                              f"got {list(self.eval_folds)}")
        if bool(self.data.events_root) != bool(self.data.scenes_root):
            raise ConfigError("set both data.events_root and data.scenes_root (real data), or neither")
        if self.data.class_balanced_folds and self.data.synthetic_events_per_class is None:
            raise ConfigError("data.class_balanced_folds applies to the synthetic remix made with "
                              "data.synthetic_events_per_class; set that too", key="data.class_balanced_folds")
        if self.data.root and self.data.events_root:
            raise ConfigError("data.root (a built remix) and data.events_root / data.scenes_root exclude each other")
        if self.export_snrs is not None:
            extra = [s for s in self.export_snrs if s not in self.data.snrs]
            if extra:
                raise ConfigError(f"export_snrs {extra} are not among data.snrs {list(self.data.snrs)}")
        chosen = self.table2_snrs
        if chosen is not None and (not chosen or len(set(chosen)) != len(chosen)
                                   or any(s not in self.data.snrs for s in chosen)):
            raise ConfigError(f"table2_snrs must be distinct SNRs among data.snrs {list(self.data.snrs)}, "
                              f"got {list(chosen)}", key="table2_snrs")


# ----------------------------------------------------------------------------------------------
# data


@dataclass
class SnrData:
    """One SNR's mixtures (same plan, names and folds at every SNR) and their features."""

    snr: float
    folder: Path
    records: list  # tf_scenes.weak_sed.remix.RemixRecord
    features: np.ndarray  # (N, 311, 64, 1) memmap
    labels: np.ndarray  # (N, 41) multi-hot
    plan_sha256: str


@dataclass(frozen=True)
class Split:
    """Rows of one fold split: fit (training), validation (from the training folds), evaluation."""

    eval_fold: int
    fit: np.ndarray
    val: np.ndarray
    evaluate: np.ndarray


@dataclass
class Data:
    label: object  # DataLabel
    folders: dict  # snr -> remix folder
    snr: dict  # snr -> SnrData
    splits: dict  # eval fold -> Split
    stats: dict  # (snr, eval fold) -> (mean, std) of the training mixtures
    folds: list
    protocol: str
    selection: str
    skipped: tuple = ()


REMIX_TITLE = "FSDKaggle2018 events in acoustic scenes (weak-SED remix)"


def resolve_remix(cfg: Config, cache_dir: Path):
    """({snr: remix folder}, DataLabel); builds the remix when needed. The label follows the one
    rule (tf_scenes.datasets.provenance): synthetic sources make a synthetic remix, sources that
    cannot be found any more make it unverified (data.remix=online refuses them: it mixes from them)."""
    from tf_scenes.datasets import provenance
    from tf_scenes.errors import ConfigError
    from tf_scenes.weak_sed import remix

    d = cfg.data
    online = d.remix == "online"
    if d.root:
        folders = {s: Path(d.root) / remix.snr_dirname(s) for s in d.snrs}
        missing = [str(f) for f in folders.values() if not (f / "mixture.yaml").is_file()]
        if missing:
            raise ConfigError(f"data.root={d.root}: no remix at {', '.join(missing)}; build one with "
                              f"`tf-scenes remix` or set data.events_root / data.scenes_root", key="data.root")
        mans = [remix.read_manifest(f) or {} for f in folders.values()]
        sources = list(dict.fromkeys(s for man in mans for s in (man.get("events_root"), man.get("scenes_root"))))
        if online and not all(s and Path(s).is_dir() for s in sources):
            raise ConfigError(f"data.root={d.root}: data.remix=online makes the mixtures from their sources, and "
                              f"the sources its manifests record ({', '.join(map(str, sources))}) are not all "
                              "there; use data.remix=files to read the written mixtures", key="data.remix")
        if not online and any(man.get("audio") is False for man in mans):
            raise ConfigError(f"data.root={d.root}: holds the remix plan only (no mixtures written); use "
                              "--set data.remix=online, or write the mixtures with `tf-scenes remix`", key="data.root")
        return folders, provenance.describe(REMIX_TITLE, d.root, sources=sources)
    if d.events_root:
        out = Path(d.remix_dir) if d.remix_dir else Path(cache_dir) / "weak_sed_remix" / _remix_key(cfg)
        log.info("building (or reusing) the remix %sof %s and %s in %s", "plan " if online else "", d.events_root,
                 d.scenes_root, out)
        folders = remix.build_remix(d.events_root, d.scenes_root, out, snrs=d.snrs, seed=d.remix_seed,
                                    mixtures_per_fold=d.mixtures_per_fold, n_folds=d.n_folds, audio=not online)
        return folders, provenance.describe(REMIX_TITLE, out, sources=[d.events_root, d.scenes_root])
    from tf_scenes.synth import REMIX_DIR, REMIX_PER_FOLD, generate

    if d.n_folds != 4:
        raise ConfigError("the synthetic default remix has 4 folds; data.n_folds must be 4", key="data.n_folds")
    out = Path(d.synthetic_dir) / REMIX_DIR
    if d.synthetic_events_per_class is not None:
        return _synthetic_remix_with_events(d, online)
    if online:  # the sources, then the plan only (the same plan as generate("remix") writes)
        roots = {k: generate(k, Path(d.synthetic_dir), size=d.synthetic_size, seed=d.synthetic_seed)[k]
                 for k in ("events", "asc")}
    else:
        roots = generate("remix", Path(d.synthetic_dir), size=d.synthetic_size, seed=d.synthetic_seed)
        out = Path(roots["remix"])
    folders = {s: out / remix.snr_dirname(s) for s in d.snrs}
    if online or any(not (f / "manifest.json").is_file() for f in folders.values()):
        # The synthetic remix holds 0, 10 and 20 dB; other SNRs are added beside them (same plan).
        folders = remix.build_remix(roots["events"], roots["asc"], out, snrs=d.snrs, seed=d.synthetic_seed,
                                    mixtures_per_fold=REMIX_PER_FOLD[d.synthetic_size], progress=False,
                                    audio=not online)
    return folders, provenance.describe(REMIX_TITLE, out, sources=[roots["events"], roots["asc"]])


def _synthetic_remix_with_events(d: DataConfig, online: bool):
    """The synthetic remix made of ``d.synthetic_events_per_class`` verified event clips per class:
    the events in ``{synthetic_dir}/FSDKaggle2018-{n}pc``, the remix in ``weak_sed_remix-{n}pc``
    (``-balanced``: class-balanced folds); the shared synthetic sets of the other studies are left
    as they are."""
    from tf_scenes.datasets import provenance
    from tf_scenes.synth import DATASET_DIRS, REMIX_DIR, REMIX_PER_FOLD, generate, generate_dataset
    from tf_scenes.weak_sed import remix

    n, base = d.synthetic_events_per_class, Path(d.synthetic_dir)
    events_root = base / f"{DATASET_DIRS['events']}-{n}pc"
    generate_dataset("events", events_root, d.synthetic_size, d.synthetic_seed, progress=False, events_per_class=n)
    scenes_root = generate("asc", base, size=d.synthetic_size, seed=d.synthetic_seed)["asc"]
    out = base / f"{REMIX_DIR}-{n}pc{'-balanced' if d.class_balanced_folds else ''}"
    folders = remix.build_remix(events_root, scenes_root, out, snrs=d.snrs, seed=d.synthetic_seed,
                                mixtures_per_fold=REMIX_PER_FOLD[d.synthetic_size], progress=False, audio=not online,
                                class_balanced_folds=d.class_balanced_folds)
    return folders, provenance.describe(REMIX_TITLE, out, sources=[events_root, scenes_root])


def _remix_key(cfg: Config) -> str:
    d = cfg.data
    text = "|".join([str(Path(d.events_root).resolve()), str(Path(d.scenes_root).resolve()), str(d.remix_seed),
                     str(d.mixtures_per_fold), str(d.n_folds)])
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def load_snr(snr: float, folder: Path, cache: Path, reader: dict | None = None, online: bool = False) -> SnrData:
    """Read one SNR's remix (``reader``: study.reader_options) and its (cached) features: of the
    written mixtures, or (``online``) of the mixtures made from the plan and the sources its
    manifest names (tf_scenes.pipelines.remix), quantised as the written 16-bit files."""
    from tf_scenes.errors import ConfigError
    from tf_scenes.features import get_feature_config
    from tf_scenes.pipelines.cache import cached_features
    from tf_scenes.pipelines.remix import cached_mixture_features
    from tf_scenes.weak_sed.remix import drop_missing_sources, multi_hot, read_manifest, read_remix

    cfg = get_feature_config("weak_sed")
    manifest = read_manifest(folder) or {}
    if not online:
        records = read_remix(folder, **(reader or {}))
        feats = cached_features([r.path for r in records], cfg, cache / "features", progress=False)
    else:
        reader = dict(reader or {})
        if manifest.get("sample_rate", cfg.sample_rate) != cfg.sample_rate:
            raise ConfigError(f"{folder}: the remix is planned at {manifest['sample_rate']} Hz; data.remix=online "
                              f"makes mixtures at the features' {cfg.sample_rate} Hz", key="data.remix")
        events_root, scenes_root = manifest.get("events_root"), manifest.get("scenes_root")
        if not events_root or not scenes_root:
            raise ConfigError(f"{folder}/manifest.json: missing or without events_root / scenes_root: "
                              "data.remix=online cannot find the sources", key="data.remix")
        records = read_remix(folder, check_files=False, allow_outside_root=reader.get("allow_outside_root", False))
        records = drop_missing_sources(records, events_root, scenes_root, missing=reader.get("missing", "error"),
                                       report=reader.get("report"))
        feats = cached_mixture_features(records, events_root, scenes_root, snr, cfg, cache / "features",
                                        progress=False)
    return SnrData(float(snr), folder, records, feats, multi_hot(records), manifest.get("plan_sha256", ""))


def fold_split(folds: np.ndarray, eval_fold: int, val_fraction: float, seed: int) -> Split:
    """Train on every fold but `eval_fold`, evaluate on it; a seeded `val_fraction` of the
    training mixtures (at least one when val_fraction > 0) is held out for validation."""
    folds = np.asarray(folds)
    train = np.flatnonzero(folds != eval_fold)
    test = np.flatnonzero(folds == eval_fold)
    if not len(test) or not len(train):
        raise ValueError(f"fold {eval_fold}: {len(train)} training and {len(test)} evaluation mixtures")
    n_val = 0
    if val_fraction > 0:
        n_val = min(max(1, int(round(val_fraction * len(train)))), len(train) - 1)
    perm = np.random.default_rng([seed, eval_fold]).permutation(len(train))
    val = np.sort(train[perm[:n_val]])
    fit = np.sort(train[perm[n_val:]])
    return Split(int(eval_fold), fit, val, test)


def training_statistics(features, rows) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and std over the training mixtures `rows` only ((mels, 1) each)."""
    from tf_scenes.features import band_statistics
    from tf_scenes.pipelines.train_data import RowView

    return band_statistics(RowView(features, rows))


def _protocol_text(cfg: Config) -> str:
    n = cfg.data.n_folds
    if len(cfg.eval_folds) == n:
        return (f"{n}-fold: each fold held out once, trained on the other {n - 1}; table values are the mean "
                f"over the {n} held-out folds")
    held = ", ".join(str(k) for k in cfg.eval_folds)
    return (f"reduced: held-out fold(s) {held} only (of {n}), each model trained on the other {n - 1} folds; "
            "table values are the mean over these held-out folds")


def prepare(cfg: Config, env) -> Data:
    from tf_scenes.io_utils import ensure_writable_dir

    if not cfg.data.root and not cfg.data.events_root:
        ensure_writable_dir(cfg.data.synthetic_dir)  # fail before any long work
    from tf_scenes.datasets import LoadReport

    folders, label = resolve_remix(cfg, env.cache_dir)
    report = LoadReport()
    snr_data = {s: load_snr(s, folders[s], env.cache_dir, study.reader_options(cfg.data, report),
                            online=cfg.data.remix == "online") for s in cfg.data.snrs}
    label = study.label_with_skipped(label, report)
    first = snr_data[cfg.data.snrs[0]]
    for s, d in snr_data.items():  # the same mixtures (names, folds, events) at every SNR
        if [r.name for r in d.records] != [r.name for r in first.records] or d.plan_sha256 != first.plan_sha256:
            raise ValueError(f"{d.folder} holds another remix plan than {first.folder}")
    folds = np.array([r.fold for r in first.records])
    splits = {k: fold_split(folds, k, cfg.data.val_fraction, cfg.seed) for k in cfg.eval_folds}
    for k, sp in splits.items():
        log.info("fold %d held out: %d training, %d validation, %d evaluation mixtures", k, len(sp.fit),
                 len(sp.val), len(sp.evaluate))
    stats = {(s, k): training_statistics(snr_data[s].features, sp.fit) for s in cfg.data.snrs
             for k, sp in splits.items()}
    selection = (f"{cfg.train.select} epoch on validation micro-AP (a seeded {cfg.data.val_fraction:g} "
                 "of the training folds' mixtures)" if cfg.data.val_fraction > 0 else "last epoch (no validation split)")
    return Data(label, folders, snr_data, splits, stats, sorted(set(folds.tolist())), _protocol_text(cfg), selection,
                tuple(report.to_dict()["skipped"]))


# ----------------------------------------------------------------------------------------------
# the plan: every model at every SNR and held-out fold


@dataclass(frozen=True)
class Item:
    name: str  # the model run of the config
    run: ModelRun
    snr: float
    fold: int


def model_config(run: ModelRun):
    from tf_scenes.datasets.fsd2018 import CLASSES
    from tf_scenes.weak_sed.model import WeakSedConfig

    return WeakSedConfig(model=run.model, n_classes=len(CLASSES), alpha=run.alpha, width=run.width)


def uses_reconstruction(run: ModelRun) -> bool:
    return run.model == "2apae" and run.alpha > 0


def used_runs(cfg: Config, snr: float | None = None) -> list[str]:
    """The model runs of both tables (at ``snr``: Table 2's only where it is among table2_snrs)."""
    table2 = cfg.table2 if snr is None or snr in ablation_snrs(cfg) else ()
    return list(dict.fromkeys([*cfg.table1, *table2]))


def ablation_snrs(cfg: Config) -> tuple[float, ...]:
    """The SNRs of Table 2 (the alpha ablation), in the order of data.snrs."""
    chosen = cfg.data.snrs if cfg.table2_snrs is None else cfg.table2_snrs
    return tuple(s for s in cfg.data.snrs if s in chosen)


def run_dir_name(name: str, snr: float, fold: int) -> str:
    return f"{name}/snr{snr:g}/fold{fold}"


def plan(cfg: Config, data: Data) -> list:
    from tf_scenes.config import to_dict

    out = []
    for s in cfg.data.snrs:
        d = data.snr[s]
        for k, sp in data.splits.items():
            for name in used_runs(cfg, s):
                run = cfg.models[name]
                config = {"model_run": to_dict(run), "train": to_dict(cfg.train), "seed": cfg.seed,
                          "data": data.label.text, "snr": float(s), "eval_fold": k, "plan_sha256": d.plan_sha256,
                          "val_fraction": cfg.data.val_fraction, "fit_mixtures": len(sp.fit),
                          "val_mixtures": len(sp.val)}
                # One seed per model and held-out fold, the same at every SNR.
                out.append(study.RunSpec(name=run_dir_name(name, s, k), builder=f"weak_sed_{run.model}",
                                         model_config=model_config(run), config=config,
                                         seed=study.run_seed(cfg.seed, f"{name}|fold{k}"), train=cfg.train,
                                         item=Item(name, run, float(s), int(k))))
    return out


def clip_model(model):
    """The clip-probability head of a weak-SED model (the decoder and the maps are not computed)."""
    import keras

    return keras.Model(model.inputs[0], model.output["clip"], name=f"{model.name}_clip")


def predict_clip(model, features, rows, mean, std, batch_size: int, head=None) -> np.ndarray:
    """(len(rows), classes) clip probabilities of the standardised features of `rows`.

    head: ``clip_model(model)`` made once by the caller.  Batches are read from the (memory-mapped)
    features, standardised with numpy and run through the head directly: no tf.data pipeline or
    predict function is traced per call (validation runs every epoch)."""
    from tf_scenes.pipelines.train_data import RowView
    from tf_scenes.weak_sed.training import standardize_array

    head = head if head is not None else clip_model(model)
    view = RowView(features, rows)
    out = []
    for lo in range(0, len(view), batch_size):
        x = standardize_array(view[lo:lo + batch_size], mean, std)  # (b, frames, mels)
        out.append(np.asarray(head(x, training=False), np.float64))
    return np.concatenate(out, axis=0) if out else np.zeros((0, model.output["clip"].shape[-1]))


@contextlib.contextmanager
def _quiet(logger_name: str, level: int = logging.ERROR):
    logger = logging.getLogger(logger_name)
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


def train(spec, data: Data, run_dir: Path, build, env, *, strategy, init=None) -> study.Trained:
    """Adam, BCE + alpha * MSE (reconstruction), ReduceLROnPlateau on validation micro-AP (restored
    on resume), the best validation epoch kept."""
    import keras
    import tensorflow as tf

    from tf_scenes.metrics.clip import clip_metrics
    from tf_scenes.pipelines.train_data import RowView, make_train_dataset
    from tf_scenes.training.distribute import jit_compile_arg
    from tf_scenes.training.trainer import CHECKPOINT_DIR, LAST, fit, read_checkpoint_state
    from tf_scenes.weak_sed.model import weak_sed_loss
    from tf_scenes.weak_sed.training import ResumablePlateau, inputs_and_targets

    it: Item = spec.item
    run, t = it.run, env.config.train
    d, sp = data.snr[it.snr], data.splits[it.fold]
    mean, std = data.stats[(it.snr, it.fold)]
    recon = uses_reconstruction(run)
    lr = t.lr if run.lr is None else run.lr
    model = build()
    if run.prior_bias:  # before fit: a resumed run's checkpoint replaces it
        from tf_scenes.training.init import set_prior_bias

        layer, shared = PRIOR_BIAS_LAYERS[run.model]
        set_prior_bias(model.get_layer(layer), d.labels[sp.fit], shared=shared)
        if run.calibrate_bias:
            from tf_scenes.training.init import calibrate_bias, prior_probabilities, training_mode_call
            from tf_scenes.weak_sed.training import standardize_array

            # The trunk's features (BatchNorm on the batch, as the first step) once; then only the
            # class map and the pool per bisection step (the bias leaves the trunk unchanged).
            rows = np.asarray(sp.fit)[:CALIBRATION_MIXTURES]
            x = standardize_array(np.stack([d.features[int(i)] for i in rows]), mean, std)
            cmap, pool = model.get_layer(layer), model.get_layer("clip")
            features = training_mode_call(keras.Model(model.inputs[0], cmap.input), x)
            offsets = calibrate_bias(cmap, lambda: np.asarray(pool(cmap(features)), np.float64).mean(axis=0),
                                     prior_probabilities(d.labels[sp.fit]))
            log.info("%s: class-map bias calibrated, offsets %.2f to %.2f from the prior logit",
                     spec.name, offsets.min(), offsets.max())
    with strategy.scope():  # the optimizer's variables live under the strategy
        # Adam(lr) and the paper's loss BCE(clip) + alpha * MSE(reconstruction, standardised input);
        # the baselines and alpha = 0 have the BCE term only.
        model.compile(optimizer=keras.optimizers.Adam(lr), run_eagerly=t.run_eagerly,
                      jit_compile=jit_compile_arg(t.jit_compile), **weak_sed_loss(run.alpha, reconstruction=recon))

    steps = t.steps_per_epoch or max(1, -(-len(sp.fit) // t.batch_size))
    train_x = RowView(d.features, sp.fit)
    train_y = d.labels[sp.fit]
    to_model = inputs_and_targets(mean, std, recon)

    def make_ds(initial_epoch: int):
        ds = make_train_dataset(train_x, train_y, batch_size=t.batch_size, seed=spec.seed, epochs=run.epochs,
                                initial_epoch=initial_epoch, steps_per_epoch=steps)
        return ds.map(to_model, num_parallel_calls=tf.data.AUTOTUNE)

    head = clip_model(model)
    val_fn, select = None, "last"
    if len(sp.val):
        y_val = d.labels[sp.val]

        def val_fn(m):
            probs = predict_clip(m, d.features, sp.val, mean, std, t.eval_batch_size,
                                 head=head if m is model else None)
            # A small validation split lacks many classes: clip_metrics' per-call warnings about
            # them are expected here (they are logged once for the evaluation fold).
            with _quiet("tf_scenes.metrics.clip"):
                met = clip_metrics(y_val, probs)
            return {"val_micro_ap": met["micro_ap"], "val_macro_ap": met["macro_ap"], "val_auc": met["auc"]}

        select = t.select
    callbacks = []
    if val_fn is not None:
        last = run_dir / CHECKPOINT_DIR / LAST
        history = (read_checkpoint_state(last) or {}).get("history", []) if last.exists() else []
        callbacks.append(ResumablePlateau(MONITOR, lr, factor=t.plateau_factor, patience=t.plateau_patience,
                                          threshold=t.plateau_threshold, history=history))
    with warnings.catch_warnings():
        if run.model == "2apae" and not recon:  # alpha 0: the decoder is left untrained, as meant
            warnings.filterwarnings("ignore", message="Gradients do not exist for variables")
        result = fit(model, make_ds, epochs=run.epochs, steps_per_epoch=steps, run_dir=run_dir, val_data=val_fn,
                     monitor=MONITOR, mode="max", select=select, extra_callbacks=callbacks, verbose=0)
    return study.Trained(model, card={"selected_epoch": result["best_epoch"] if select == "best"
                                      else result["last_epoch"], "selection": select, "snr": it.snr,
                                      "eval_fold": it.fold},
                         normalization={"mean": np.asarray(mean).tolist(), "std": np.asarray(std).tolist()})


def evaluate(spec, model, data: Data, run_dir: Path) -> dict:
    """Clip scores of the held-out fold's mixtures (keyed by mixture name) and the clip metrics of
    the scores as written."""
    from tf_scenes.datasets.fsd2018 import CLASSES
    from tf_scenes.metrics.clip import clip_metrics
    from tf_scenes.scores import ScoreTable, read_scores, write_scores

    it: Item = spec.item
    d, sp = data.snr[it.snr], data.splits[it.fold]
    mean, std = data.stats[(it.snr, it.fold)]
    probs = predict_clip(model, d.features, sp.evaluate, mean, std, spec.train.eval_batch_size)
    names = [d.records[i].name for i in sp.evaluate]
    path = write_scores(run_dir / study.score_file(), ScoreTable(names, probs, CLASSES))
    return {**clip_metrics(d.labels[sp.evaluate], read_scores(path).take(names).scores, CLASSES),
            "epochs": it.run.epochs}
