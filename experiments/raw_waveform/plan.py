"""Hierarchy-aware embeddings from raw audio (Abrol & Sharma, IEEE/ACM TASLP 2020): config, data
and run plan of the study (`make reproduce-raw-waveform`, ``tf-scenes reproduce raw_waveform``):

1. data: ESC-50 (meta/esc50.csv) or a folder-per-class tree with a ``fine,coarse`` class map
   (``--data``); by default the synthetic hierarchical ESC-50 (5 coarse groups x 10 fine classes);
2. the held-out labelled set for transfer (Table V): a few fine classes of every coarse group are
   removed from the main task (seeded choice, or `transfer.classes`); their clips form the
   transfer set, split by fold like the main task;
3. input: 16 kHz, clips cut / zero-padded to 5 s, pre-emphasis (0.97) over the whole clip, 2 s
   windows with a 1.5 s hop (3 per clip), mean removed per window -- the "raw" feature config,
   cached once; stereo clips become 4 waveforms (left, right, sum, difference), 12 windows;
4. the runs (Table II: coarse only / fine only / coarse + fine, each with attention and with mean
   pooling; Table VI: CNN + 2 LSTM / 2 GRU layers; Table V: retrain and fine-tune on the
   transfer classes) on windows with cheap seeded augmentation, multi-task cross-entropy +
   prototype loss, Adam 1e-3, by the shared runner (tf_scenes.experiments.study);
5. clip decisions by averaging window scores; Top-1 / Top-3 at coarse and fine level; tables,
   clustering, frozen-embedding classifiers, figures and the export in :mod:`.report`.

Choices (docs/raw_waveform.md):

* "coarse only" / "fine only": cross-entropy on that head alone (no prototype loss);
  "coarse + fine": both heads and the prototype loss on coarse classes (the hierarchy-aware
  model).  "Without attention" = mean pooling over frames.  A fine-only model's coarse scores are
  the sums of its fine probabilities per coarse class; a coarse-only model has no fine scores.
* Table VII "hierarchical" = the coarse + fine + prototype model with attention, "not
  hierarchical" = the fine-only model with attention; embeddings are the 128-D embeddings of
  the test windows (the model embeds 2 s windows).
* Model selection: the epoch with the best clip-level validation Top-1 (fine, or coarse for
  coarse-only models) on the validation folds, or the last epoch (`train.select`).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Optional

import numpy as np

from tf_scenes.config import bounded

from .. import study

log = logging.getLogger(__name__)

DATASET = "ESC-50 (hierarchical classes)"


# ----------------------------------------------------------------------------------------------
# config


@dataclass(frozen=True)
class DataConfig(study.DataConfig):
    root: Optional[str] = None  # ESC-50 root (meta/esc50.csv) or folder-per-class root; None: synthetic
    class_map: Optional[str] = None  # fine,coarse csv; default: root/meta/class_map.csv or root/class_map.csv
    train_folds: tuple[int, ...] = (1, 2, 3)
    val_folds: tuple[int, ...] = (4,)
    test_folds: tuple[int, ...] = (5,)
    fold_seed: int = 0  # folds of a folder-per-class tree (seeded, class-balanced)
    binaural: Literal["auto", "on", "off"] = "auto"  # stereo -> 4 waveforms (auto: when files are stereo)


@dataclass(frozen=True)
class AugmentConfig:
    """Per-window augmentations (seeded, stateless), applied to the pre-emphasised windows in this
    order, each with its probability, as named transforms (tf_scenes.pipelines.transforms) built on
    the two-stage study's audio augmentations (tf_scenes.pipelines.waveform_augment):

    speed: band-limited resampling by a rate in [1 - speed, 1 + speed] (tempo and pitch change
    together: the cheap stand-in for the paper's time stretch and pitch shift); stretch: phase-vocoder
    time stretch by a rate in [1 - stretch, 1 + stretch]; pitch_semitones: phase-vocoder pitch shift
    by up to that many semitones either way; drc: the sox-style compander with a curve drawn from
    drc_curves, loudness (RMS) kept; noise: white Gaussian noise at a random SNR (background noise);
    gain: +/- gain_db. Then the window's mean is removed again.
    """

    enabled: bool = True
    gain_db: float = bounded(6.0, ge=0.0)
    speed: float = bounded(0.05, ge=0.0, lt=1.0)
    speed_prob: float = bounded(0.5, ge=0.0, le=1.0)
    stretch: float = bounded(0.1, ge=0.0, lt=1.0)
    stretch_prob: float = bounded(0.0, ge=0.0, le=1.0)
    pitch_semitones: float = bounded(2.0, ge=0.0)
    pitch_prob: float = bounded(0.0, ge=0.0, le=1.0)
    drc_prob: float = bounded(0.3, ge=0.0, le=1.0)
    drc_curves: tuple[Literal["light", "medium", "heavy"], ...] = ("light", "medium", "heavy")
    noise_prob: float = bounded(0.5, ge=0.0, le=1.0)
    noise_snr_db: tuple[float, float] = (10.0, 30.0)

    def __post_init__(self):
        from tf_scenes.errors import ConfigError

        if self.drc_prob > 0 and not self.drc_curves:
            raise ConfigError("augment.drc_curves: empty; name at least one of light, medium, heavy",
                              key="augment.drc_curves")
        if self.noise_snr_db[0] > self.noise_snr_db[1]:
            raise ConfigError(f"augment.noise_snr_db: low end {self.noise_snr_db[0]} above high end "
                              f"{self.noise_snr_db[1]}", key="augment.noise_snr_db")


@dataclass(frozen=True)
class ModelSettings:
    """Fields of RawWaveformConfig shared by every run (the rest is set per run)."""

    width: float = 1.0
    fc_units: tuple[int, int] = (512, 128)
    attention_units: int = 128
    rnn_units: int = 30
    dropout: float = 0.2
    ortho_reg: float = 1e-4
    stats_window: int = 5
    stats_hop: int = 1
    merge: Literal["concat", "sum", "short", "long"] = "concat"
    align_to: Literal["long", "short"] = "long"
    prototype_margin: float = 1.0


@dataclass(frozen=True)
class TrainConfig(study.TrainConfig):
    batch_size: int = bounded(32, ge=1)  # windows per batch
    lr: float = bounded(1e-3, gt=0.0)  # Adam
    epochs: int = bounded(50, ge=1)
    prototype_weight: float = bounded(1.0, ge=0.0)  # for the coarse + fine runs
    eval_batch_size: int = bounded(64, ge=1)
    steps_per_epoch: Optional[int] = bounded(None, ge=1)  # None: one pass over the training windows
    verbose: int = 2  # Keras fit verbosity (0 silent, 1 progress bar, 2 one line per epoch)
    tensorboard: bool = True  # TensorBoard logs in each run folder when the package is installed


@dataclass(frozen=True)
class TransferConfig:
    classes: tuple[str, ...] = ()  # held-out fine classes; empty: holdout_per_coarse per group (seeded)
    holdout_per_coarse: int = bounded(2, ge=0)
    seed: int = 0
    train_folds: tuple[int, ...] = (1, 2, 3)
    val_folds: tuple[int, ...] = (4,)
    test_folds: tuple[int, ...] = (5,)
    epochs: int = bounded(30, ge=1)  # retrain and fine-tune
    fine_tune_lr: float = bounded(1e-4, gt=0.0)
    svm_C: float = 1.0
    logreg_C: float = 1.0


@dataclass(frozen=True)
class Config:
    profile: str = "quick"
    description: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainConfig = field(default_factory=TrainConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    projection: Literal["pca", "tsne"] = "pca"
    figures: bool = True
    export: bool = True

    def __post_init__(self):
        from tf_scenes.errors import ConfigError

        for name, folds in (("data", (self.data.train_folds, self.data.val_folds, self.data.test_folds)),
                            ("transfer", (self.transfer.train_folds, self.transfer.val_folds,
                                          self.transfer.test_folds))):
            tr, va, te = (set(f) for f in folds)
            if tr & va or tr & te or va & te:
                raise ConfigError(f"{name}: train_folds, val_folds and test_folds must be disjoint, got "
                                  f"{sorted(tr)}, {sorted(va)}, {sorted(te)}")
            if not tr or not te:
                raise ConfigError(f"{name}: train_folds and test_folds must not be empty")


@dataclass(frozen=True)
class RunKind:
    """One trained model of the tables: which heads, which pooling, prototype loss or not."""

    heads: Literal["coarse", "fine", "both"]
    pooling: Literal["attention", "mean", "lstm", "gru"]
    prototype: bool
    label: str


RUNS = MappingProxyType({
    "coarse_attention": RunKind("coarse", "attention", False, "coarse only, attention"),
    "fine_attention": RunKind("fine", "attention", False, "fine only, attention"),
    "both_attention": RunKind("both", "attention", True, "coarse + fine, attention"),
    "coarse_mean": RunKind("coarse", "mean", False, "coarse only, no attention (mean pooling)"),
    "fine_mean": RunKind("fine", "mean", False, "fine only, no attention (mean pooling)"),
    "both_mean": RunKind("both", "mean", True, "coarse + fine, no attention (mean pooling)"),
    "both_lstm": RunKind("both", "lstm", True, "CNN + 2 LSTM (30 units)"),
    "both_gru": RunKind("both", "gru", True, "CNN + 2 GRU (30 units)"),
})
TABLE2 = ("coarse_attention", "fine_attention", "both_attention", "coarse_mean", "fine_mean", "both_mean")
TABLE6 = ("both_lstm", "both_gru")
HIERARCHICAL = "both_attention"  # Table VII "hierarchical", the transfer base and the exported model
FLAT = "fine_attention"  # Table VII "not hierarchical"
TRANSFER_RUNS = ("transfer_retrain", "transfer_finetune")


# ----------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class Classes:
    """Class lists of the study: coarse groups, main-task fine classes, held-out transfer classes."""

    coarse: tuple[str, ...]
    fine: tuple[str, ...]  # main task
    transfer: tuple[str, ...]  # held out for Table V
    coarse_of: MappingProxyType  # fine (main and transfer) -> coarse

    def fine_to_coarse_matrix(self) -> np.ndarray:
        """(n_fine, n_coarse) 0/1: fine probabilities @ M = coarse probabilities."""
        m = np.zeros((len(self.fine), len(self.coarse)), np.float64)
        for i, f in enumerate(self.fine):
            m[i, self.coarse.index(self.coarse_of[f])] = 1.0
        return m


@dataclass
class Split:
    """Clips of one split: rows of the window cache, coarse / fine label ids, fold ids."""

    name: str
    records: list
    rows: np.ndarray  # (clips,) rows of the window cache
    coarse: np.ndarray  # (clips,) ids into Classes.coarse
    fine: np.ndarray  # (clips,) ids into the split's fine list (Classes.fine or Classes.transfer)

    def __len__(self) -> int:
        return len(self.records)


def resolve_data_root(cfg: Config) -> Path:
    """The dataset root: --data, or the synthetic default (generated if absent)."""
    if cfg.data.root:
        return Path(cfg.data.root)
    from tf_scenes.synth import generate

    roots = generate("esc50", Path(cfg.data.synthetic_dir), size=cfg.data.synthetic_size,
                     seed=cfg.data.synthetic_seed, progress=False)
    return Path(roots["esc50"])


def load_records(cfg: Config, root: Path, report=None) -> tuple[list, list[str]]:
    """HierRecords of the dataset and the fine classes in class-map (or ESC-50 target) order;
    listed files skipped because they are missing go to ``report`` (with data.skip_missing)."""
    from tf_scenes.datasets import LoadReport, esc50
    from tf_scenes.errors import DataFormatError

    root = Path(root)
    opts = study.reader_options(cfg.data, LoadReport() if report is None else report)
    if (root / "meta" / "esc50.csv").exists():
        cmap_path = Path(cfg.data.class_map) if cfg.data.class_map else root / "meta" / "class_map.csv"
        if cfg.data.class_map or cmap_path.exists():
            cmap = esc50.load_class_map(cmap_path)
            records = esc50.to_hier(esc50.load(root, **opts), cmap)
            order = list(cmap)
        else:  # the real ESC-50 without a class map: its 5 groups of 10 classes
            records = esc50.load_hier(root, **opts)
            order = list(esc50.CATEGORIES)
    else:
        cmap_path = Path(cfg.data.class_map) if cfg.data.class_map else root / "class_map.csv"
        if not cmap_path.exists():
            raise DataFormatError(root, "neither ESC-50 (meta/esc50.csv) nor a folder-per-class tree with a "
                                  "class map",
                                  hint=f"pass --set data.class_map=FINE_COARSE.csv (looked for {cmap_path})")
        cmap = esc50.load_class_map(cmap_path)
        records = esc50.load_folder_per_class(root, cmap, seed=cfg.data.fold_seed,
                                              allow_outside_root=cfg.data.allow_outside_root)
        order = list(cmap)
    present = {r.fine for r in records}
    return records, [f for f in order if f in present]


def choose_classes(records, fine_order: list[str], tcfg: TransferConfig) -> Classes:
    """Split the fine classes into the main task and the held-out transfer set.

    With `tcfg.classes` empty, `holdout_per_coarse` fine classes of every coarse group are drawn
    with a seeded generator; every group keeps at least one main-task fine class.
    """
    from tf_scenes.errors import ConfigError

    coarse_of = {}
    for r in records:
        coarse_of.setdefault(r.fine, r.coarse)
    coarse = tuple(dict.fromkeys(coarse_of[f] for f in fine_order))
    if tcfg.classes:
        unknown = [c for c in tcfg.classes if c not in coarse_of]
        if unknown:
            raise ConfigError(f"transfer.classes: {unknown} are not fine classes of the data "
                              f"(known: {', '.join(fine_order)})")
        held = set(tcfg.classes)
    else:
        rng = np.random.default_rng(tcfg.seed)
        held = set()
        for g in coarse:
            members = [f for f in fine_order if coarse_of[f] == g]
            k = min(tcfg.holdout_per_coarse, len(members) - 1)
            held.update(members[i] for i in sorted(rng.permutation(len(members))[:k]))
    fine = tuple(f for f in fine_order if f not in held)
    transfer = tuple(f for f in fine_order if f in held)
    lonely = [g for g in coarse if not any(coarse_of[f] == g for f in fine)]
    if lonely:
        raise ConfigError(f"transfer: coarse groups {lonely} keep no fine class for the main task")
    if len(fine) < 3 or len(transfer) < 3 or len(coarse) < 3:
        raise ConfigError(f"need >= 3 coarse classes, >= 3 main-task fine classes and >= 3 transfer classes; "
                          f"got {len(coarse)}, {len(fine)}, {len(transfer)}")
    return Classes(coarse, fine, transfer, MappingProxyType(dict(coarse_of)))


def make_splits(records, classes: Classes, cfg: Config) -> dict[str, Split]:
    """main_{train,val,test} and transfer_{train,val,test}, by fold; rows index `records`."""
    from tf_scenes.errors import ConfigError

    def build(name, fine_list, folds):
        idx = [i for i, r in enumerate(records) if r.fine in fine_list and r.fold in folds]
        return Split(name, [records[i] for i in idx], np.asarray(idx, np.int64),
                     np.asarray([classes.coarse.index(records[i].coarse) for i in idx], np.int64),
                     np.asarray([fine_list.index(records[i].fine) for i in idx], np.int64))

    d, t = cfg.data, cfg.transfer
    splits = {
        "main_train": build("main_train", classes.fine, d.train_folds),
        "main_val": build("main_val", classes.fine, d.val_folds),
        "main_test": build("main_test", classes.fine, d.test_folds),
        "transfer_train": build("transfer_train", classes.transfer, t.train_folds),
        "transfer_val": build("transfer_val", classes.transfer, t.val_folds),
        "transfer_test": build("transfer_test", classes.transfer, t.test_folds),
    }
    empty = [n for n, s in splits.items() if not len(s) and not n.endswith("_val")]
    if empty:
        raise ConfigError(f"splits {empty} are empty: check data.*_folds / transfer.*_folds against the data's folds "
                          f"(found folds {sorted({r.fold for r in records})})")
    return splits


def is_binaural(records, mode: str) -> bool:
    from tf_scenes.audio import audio_info
    from tf_scenes.errors import AudioError

    channels = audio_info(records[0].path).channels
    if mode == "off":
        return False
    if mode == "on" and channels != 2:
        raise AudioError(records[0].path, f"data.binaural=on needs stereo files, this one has {channels} channel(s)")
    return channels == 2


def clip_windows(paths, cache_dir, *, binaural: bool = False) -> np.ndarray:
    """Windows of every clip, cached: (clips, windows, window_samples, 1) float32 (memory-mapped).

    Mono: the "raw" feature config (resampled to 16 kHz once, 3 windows). Binaural: each stereo
    clip becomes left, right, left + right, left - right (tf_scenes.metrics.clustering.binaural_expand),
    each windowed the same way: 4 x 3 = 12 windows, waveform-major.
    """
    from tf_scenes.metrics.clustering import binaural_expand
    from tf_scenes.pipelines.cache import cached_binaural, cached_features
    from tf_scenes.raw_waveform.windows import feature_config

    if not binaural:
        return cached_features([str(p) for p in paths], feature_config(), Path(cache_dir) / "features", progress=False)
    return cached_binaural([Path(p) for p in paths], feature_config(), Path(cache_dir) / "features",
                           expand=binaural_expand, progress=False)


# ----------------------------------------------------------------------------------------------
# augmentation


def window_transforms(aug: AugmentConfig, sample_rate: int) -> list:
    """The augmentations of `aug` as named per-example transforms (tf_scenes.pipelines.transforms),
    in order, ending with the removal of the window's mean; none but that when disabled."""
    import tensorflow as tf

    from tf_scenes.pipelines import transforms as T

    out = []
    if aug.enabled:
        if aug.speed > 0 and aug.speed_prob > 0:
            out.append(T.speed_change(aug.speed, aug.speed_prob))
        if aug.stretch > 0 and aug.stretch_prob > 0:
            out.append(T.time_stretch(aug.stretch, aug.stretch_prob))
        if aug.pitch_semitones > 0 and aug.pitch_prob > 0:
            out.append(T.pitch_shift(aug.pitch_semitones, aug.pitch_prob))
        if aug.drc_prob > 0:
            out.append(T.compander(aug.drc_curves, sample_rate, aug.drc_prob, keep_rms=True))
        if aug.noise_prob > 0:
            out.append(T.noise(aug.noise_snr_db, aug.noise_prob))
        if aug.gain_db > 0:
            out.append(T.gain(aug.gain_db))
    out.append(T.map_example("remove_mean", lambda x, y, s: (x - tf.reduce_mean(x), y)))
    return out


def augment_window(x, seed, aug: AugmentConfig, sample_rate: int = 16000):
    """One pre-emphasised window (samples,) through :func:`window_transforms`, each transform
    seeded by ``fold_seed(seed, its stream)`` (training folds the example's position in instead)."""
    from tf_scenes.pipelines.augment import fold_seed

    for t in window_transforms(aug, sample_rate):
        x, _ = t.fn(x, (), fold_seed(seed, t.stream))
    return x


# ----------------------------------------------------------------------------------------------
# data


@dataclass
class Data:
    label: object  # DataLabel
    root: Path
    classes: Classes
    splits: dict  # name -> Split
    views: dict  # name -> WindowView
    binaural: bool
    windows_per_clip: int
    skipped: tuple = ()


def prepare(cfg: Config, env) -> Data:
    from tf_scenes.datasets import provenance
    from tf_scenes.io_utils import ensure_writable_dir
    from tf_scenes.raw_waveform.windows import WindowView

    if not cfg.data.root:
        ensure_writable_dir(cfg.data.synthetic_dir)  # fail before any long work
    from tf_scenes.datasets import LoadReport

    root = resolve_data_root(cfg)
    report = LoadReport()
    records, fine_order = load_records(cfg, root, report)
    label = study.label_with_skipped(provenance.describe(DATASET, root), report)
    classes = choose_classes(records, fine_order, cfg.transfer)
    splits = make_splits(records, classes, cfg)
    binaural = is_binaural(records, cfg.data.binaural)
    log.info("%d coarse, %d main fine, %d transfer classes; binaural: %s", len(classes.coarse), len(classes.fine),
             len(classes.transfer), binaural)
    windows = clip_windows([r.path for r in records], env.cache_dir, binaural=binaural)
    views = {k: WindowView(windows, s.rows) for k, s in splits.items()}
    data = Data(label, root, classes, splits, views, binaural, int(windows.shape[1]), tuple(report.to_dict()["skipped"]))
    write_splits(data, env.out)
    return data


def write_splits(data: Data, out: Path) -> Path:
    """splits.json: the files of every split (the transfer classes never appear in the main splits)."""
    from tf_scenes.io_utils import atomic_write_json

    def rel(p):
        try:
            return str(Path(p).relative_to(data.root))
        except ValueError:
            return str(p)

    doc = {"root": str(data.root), "coarse": list(data.classes.coarse), "main_fine": list(data.classes.fine),
           "transfer_fine": list(data.classes.transfer),
           "splits": {k: [{"file": rel(r.path), "fine": r.fine, "coarse": r.coarse, "fold": r.fold}
                          for r in s.records] for k, s in data.splits.items()}}
    return atomic_write_json(Path(out) / "splits.json", doc)


# ----------------------------------------------------------------------------------------------
# the plan: Tables II and VI, then the transfer runs of Table V


@dataclass(frozen=True)
class Item:
    kind: RunKind
    train_split: str
    val_split: str
    test_split: str
    fine_names: tuple
    epochs: int
    lr: float


def model_config(cfg: Config, kind: RunKind, classes: Classes, *, n_fine: int | None = None):
    """The RawWaveformConfig of one run."""
    from tf_scenes.raw_waveform.model import RawWaveformConfig
    from tf_scenes.raw_waveform.windows import feature_config

    m = cfg.model
    return RawWaveformConfig(
        window_samples=feature_config().raw_window_samples, n_coarse=len(classes.coarse),
        n_fine=n_fine if n_fine is not None else len(classes.fine), pooling=kind.pooling, heads=kind.heads,
        rnn_units=m.rnn_units, dropout=m.dropout, width=m.width, stats_window=m.stats_window,
        stats_hop=m.stats_hop, merge=m.merge, align_to=m.align_to, fc_units=tuple(m.fc_units),
        attention_units=m.attention_units, ortho_reg=m.ortho_reg,
        prototype_weight=cfg.train.prototype_weight if kind.prototype and kind.heads != "fine" else 0.0,
        prototype_margin=m.prototype_margin)


def plan(cfg: Config, data: Data) -> list:
    from tf_scenes.config import to_dict
    from tf_scenes.raw_waveform import builder_name

    classes = data.classes
    entries = [(name, kind, model_config(cfg, kind, classes), Item(kind, "main_train", "main_val", "main_test",
                                                                   classes.fine, cfg.train.epochs, cfg.train.lr), None)
               for name, kind in RUNS.items()]
    transfer_kind = RunKind("fine", "attention", False, "transfer")
    tcfg = model_config(cfg, transfer_kind, classes, n_fine=len(classes.transfer))
    for name, lr, init in (("transfer_retrain", cfg.train.lr, None),
                           ("transfer_finetune", cfg.transfer.fine_tune_lr, HIERARCHICAL)):
        entries.append((name, transfer_kind, tcfg, Item(transfer_kind, "transfer_train", "transfer_val",
                                                        "transfer_test", classes.transfer, cfg.transfer.epochs, lr),
                        init))
    out = []
    for name, kind, mcfg, item, init in entries:
        seed = study.run_seed(cfg.seed, name)
        config = {"run": name, "model": to_dict(mcfg), "train": to_dict(cfg.train), "epochs": item.epochs,
                  "lr": item.lr, "augment": to_dict(cfg.augment), "seed": seed, "data": data.label.text,
                  "train_split": item.train_split, "train_clips": len(data.splits[item.train_split]),
                  **({"init_from": f"runs/{init}"} if init else {})}
        outputs = {"coarse": list(classes.coarse), "fine": list(item.fine_names)}
        out.append(study.RunSpec(name=name, builder=builder_name(kind.pooling), model_config=mcfg, config=config,
                                 seed=seed, train=cfg.train, context={"classes": outputs}, init_from=init, item=item))
    return out


def clip_scores(out: dict, view, classes: Classes, heads: tuple[str, ...], *, derive_coarse: bool = True
                ) -> dict[str, np.ndarray]:
    """Clip-level coarse / fine scores (mean of window scores) and clip embeddings.

    A main-task model without a coarse head gets coarse scores = fine probabilities summed per
    coarse class (``derive_coarse``).
    """
    from tf_scenes.metrics.clustering import clip_decision

    ids = view.clip_ids()
    res = {}
    if "fine" in heads:
        res["fine"] = clip_decision(out["fine"], ids)[1]
    if "coarse" in heads:
        res["coarse"] = clip_decision(out["coarse"], ids)[1]
    elif derive_coarse and "fine" in res:
        res["coarse"] = res["fine"] @ classes.fine_to_coarse_matrix()
    res["embedding"] = clip_decision(out["embedding"], ids)[1]
    return res


def clip_metrics(scores: dict, split: Split) -> dict[str, float]:
    """Top-1 / Top-3 at coarse and fine level (as fractions) of clip scores."""
    from tf_scenes.metrics.clustering import topk_report

    m = {}
    if "coarse" in scores:
        m.update(topk_report(split.coarse, scores["coarse"], prefix="coarse_"))
    if "fine" in scores:
        m.update(topk_report(split.fine, scores["fine"], prefix="fine_"))
    return m


def train(spec, data: Data, run_dir: Path, build, env, *, strategy, init=None) -> study.Trained:
    """Windows of the training split with seeded augmentation; cross-entropy on the heads (+ the
    prototype loss on coarse classes for the hierarchical runs); Adam; the best clip-level
    validation Top-1 kept. A transfer fine-tuning run starts from the layers of its init run."""
    import keras

    from tf_scenes.pipelines.train_data import epoch_steps, make_train_dataset
    from tf_scenes.raw_waveform.prototype import attach_hierarchical_losses
    from tf_scenes.raw_waveform.windows import copy_matching_weights, feature_config, predict_windows
    from tf_scenes.training.distribute import jit_compile_arg
    from tf_scenes.training.trainer import fit

    it: Item = spec.item
    cfg = env.config
    t, mcfg = cfg.train, spec.model_config
    split, view = data.splits[it.train_split], data.views[it.train_split]
    labels = {"coarse": view.repeat(split.coarse), "fine": view.repeat(split.fine)}
    log.info("%s: training %s/%s (width %s) for %d epochs on %d windows", spec.name, mcfg.heads, mcfg.pooling,
             mcfg.width, it.epochs, len(view))
    backbone = build()
    with strategy.scope():  # variables (model, prototypes, optimizer) under the strategy
        if init is not None:
            copied = copy_matching_weights(init.model(), backbone)
            log.info("%s: initialised %d layers from runs/%s", spec.name, len(copied), spec.init_from)
        trainer = attach_hierarchical_losses(backbone, mcfg, optimizer=keras.optimizers.Adam(it.lr),
                                             jit_compile=jit_compile_arg(t.jit_compile))
        # A fresh trainer is not "built" until first called; Keras refuses to load the resume checkpoint
        # into an unbuilt model (its backbone is built and its prototypes exist: build() only marks it).
        trainer.build((None, mcfg.window_samples))
    steps = t.steps_per_epoch or epoch_steps(len(view), t.batch_size)
    if steps < 1:
        from tf_scenes.errors import ConfigError

        raise ConfigError(f"{spec.name}: {len(view)} training windows give no batch of {t.batch_size}")
    transforms = window_transforms(cfg.augment, feature_config().sample_rate) if cfg.augment.enabled else []

    def make_ds(initial_epoch: int):
        return make_train_dataset(view, labels, batch_size=t.batch_size, seed=spec.seed, epochs=it.epochs,
                                  initial_epoch=initial_epoch, transforms=transforms, steps_per_epoch=steps)

    heads = mcfg.head_names
    key = "fine" if "fine" in heads else "coarse"
    val_fn = None
    vsplit, vview = data.splits[it.val_split], data.views[it.val_split]
    if len(vsplit):
        x_val = vview.array()
        derive = it.train_split == "main_train"

        def val_fn(model):
            scores = clip_scores(predict_windows(model, x_val, t.eval_batch_size), vview, data.classes, heads,
                                 derive_coarse=derive)
            return {f"val_{k}": v for k, v in clip_metrics(scores, vsplit).items()}

    select = t.select if val_fn is not None else "last"
    with warnings.catch_warnings():
        if mcfg.prototype_weight == 0:  # the trainer always owns prototypes; unused without the prototype loss
            warnings.filterwarnings("ignore", message=r"Gradients do not exist for variables \['prototypes")
        result = fit(trainer, make_ds, epochs=it.epochs, steps_per_epoch=steps, run_dir=run_dir, val_data=val_fn,
                     monitor=f"val_{key}_top1", mode="max", select=select, verbose=t.verbose,
                     tensorboard="auto" if t.tensorboard else False)
    return study.Trained(backbone, card={"selected_epoch": result["best_epoch"] if select == "best"
                                         else result["last_epoch"], "selection": select})


EMBEDDINGS = "test_window_embeddings.npy"


def score_outputs(spec) -> tuple[str, ...]:
    """The clip-score outputs a run writes: its heads, and coarse derived from fine in the main task."""
    it: Item = spec.item
    heads = spec.model_config.head_names
    main = it.train_split == "main_train"
    return tuple(k for k in ("coarse", "fine") if k in heads or (k == "coarse" and main and "fine" in heads))


def required_files(spec) -> tuple[str, ...]:
    return (*(study.score_file("evaluate", k) for k in score_outputs(spec)), EMBEDDINGS)


def evaluate(spec, model, data: Data, run_dir: Path) -> dict:
    """Clip scores of the test split (mean of window scores; one file per output, keyed by file
    name), the test windows' embeddings (Table VII) and Top-1 / Top-3 of the scores."""
    from tf_scenes.io_utils import atomic_save_npy
    from tf_scenes.raw_waveform.windows import predict_windows
    from tf_scenes.scores import ScoreTable, write_scores

    it: Item = spec.item
    split, view = data.splits[it.test_split], data.views[it.test_split]
    out_w = predict_windows(model, view.array(), spec.train.eval_batch_size)
    scores = clip_scores(out_w, view, data.classes, spec.model_config.head_names,
                         derive_coarse=it.train_split == "main_train")
    files = [Path(r.path).name for r in split.records]
    names = {"coarse": data.classes.coarse, "fine": it.fine_names}
    for k in score_outputs(spec):
        write_scores(run_dir / study.score_file("evaluate", k), ScoreTable(files, scores[k], names[k]))
    atomic_save_npy(run_dir / EMBEDDINGS, out_w["embedding"].astype(np.float32))
    return {**clip_metrics(scores, split), "split": it.test_split, "clips": len(split)}
