"""Hierarchy-aware embeddings from raw audio (Abrol & Sharma, IEEE/ACM TASLP 2020), end to end.

`make reproduce-raw-waveform` (or `tf-scenes reproduce raw_waveform --profile quick`) runs:

1. data: ESC-50 (meta/esc50.csv) or a folder-per-class tree with a ``fine,coarse`` class map
   (``--data``); by default the synthetic hierarchical ESC-50 (5 coarse groups x 10 fine classes);
2. the held-out labelled set for transfer (Table V): a few fine classes of every coarse group are
   removed from the main task (seeded choice, or `transfer.classes`); their clips form the
   transfer set, split by fold like the main task;
3. input: 16 kHz, clips cut / zero-padded to 5 s, pre-emphasis (0.97) over the whole clip, 2 s
   windows with a 1.5 s hop (3 per clip), mean removed per window -- the "raw" feature config,
   cached once; stereo clips become 4 waveforms (left, right, sum, difference), 12 windows;
4. training every model run (Table II: coarse only / fine only / coarse + fine, each with
   attention and with mean pooling; Table VI: CNN + 2 LSTM / 2 GRU layers) on windows with cheap
   seeded augmentation, multi-task cross-entropy + prototype loss, Adam 1e-3, in resumable run
   folders (checkpoints every epoch; `fit` resumes the HierarchicalTrainer);
5. clip decisions by averaging window scores; Top-1 / Top-3 at coarse and fine level;
6. Table VII: clustering of test window embeddings, hierarchical vs not;
7. Table V: transfer to the held-out classes: retrain from scratch, fine-tune the hierarchical
   model, frozen embeddings + SVM (polynomial, degree 3) and + logistic regression;
8. Figure 3 (first-layer filter responses), a 2-D projection of test embeddings, and the exported
   SavedModel of the hierarchical model (whole clip in, clip probabilities and embedding out).

Choices (documented in docs/raw_waveform.md):

* "coarse only" / "fine only": cross-entropy on that head alone (no prototype loss);
  "coarse + fine": both heads and the prototype loss on coarse classes (the hierarchy-aware
  model).  "Without attention" = mean pooling over frames.  A fine-only model's coarse scores are
  the sums of its fine probabilities per coarse class; a coarse-only model has no fine scores.
* Table VII "hierarchical" = the coarse + fine + prototype model with attention, "not
  hierarchical" = the fine-only model with attention; embeddings are the 128-D embeddings of
  the test windows (the model embeds 2 s windows).
* Model selection: the epoch with the best clip-level validation Top-1 (fine, or coarse for
  coarse-only models) on the validation folds, or the last epoch (`train.select`).

Every model run is skipped when its run folder already holds finished results for the same
config, so an interrupted study resumes where it stopped.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Optional

import numpy as np

log = logging.getLogger(__name__)

FAMILY = "raw_waveform"
SALIENCY_LAYER = "short_conv4"  # Grad-CAM over time at the short-kernel pipeline's Conv4 (Table I)
BASE_FEATURES = "raw"  # tf_scenes.features: 16 kHz, 5 s, pre-emphasis, 2 s / 1.5 s windows, mean removal


# ----------------------------------------------------------------------------------------------
# config


@dataclass(frozen=True)
class DataConfig:
    root: Optional[str] = None  # ESC-50 root (meta/esc50.csv) or folder-per-class root; None: synthetic
    class_map: Optional[str] = None  # fine,coarse csv; default: root/meta/class_map.csv or root/class_map.csv
    synthetic_dir: str = "data"  # where the synthetic default lives (generated if absent)
    synthetic_size: Literal["tiny", "small", "full"] = "small"
    synthetic_seed: int = 0
    cache_dir: str = ".cache"
    train_folds: tuple[int, ...] = (1, 2, 3)
    val_folds: tuple[int, ...] = (4,)
    test_folds: tuple[int, ...] = (5,)
    fold_seed: int = 0  # folds of a folder-per-class tree (seeded, class-balanced)
    binaural: Literal["auto", "on", "off"] = "auto"  # stereo -> 4 waveforms (auto: when files are stereo)


@dataclass(frozen=True)
class AugmentConfig:
    """Cheap per-window augmentations (seeded, stateless), applied to the pre-emphasised windows.

    speed: resampling by a factor in [1 - speed, 1 + speed] (tempo and pitch change together: the
    cheap stand-in for the paper's time stretch and pitch shift); drc: a feed-forward compressor
    on a 10 ms RMS envelope; noise: Gaussian noise at a random SNR (background noise); gain.
    """

    enabled: bool = True
    gain_db: float = 6.0
    speed: float = 0.05
    speed_prob: float = 0.5
    drc_prob: float = 0.3
    drc_ratio: tuple[float, float] = (2.0, 4.0)
    drc_threshold_db: tuple[float, float] = (-20.0, -10.0)  # relative to the window's RMS
    drc_window: int = 160  # envelope window in samples (10 ms at 16 kHz)
    noise_prob: float = 0.5
    noise_snr_db: tuple[float, float] = (10.0, 30.0)


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
class TrainConfig:
    batch_size: int = 32  # windows per batch
    lr: float = 1e-3  # Adam
    epochs: int = 50
    prototype_weight: float = 1.0  # for the coarse + fine runs
    select: Literal["best", "last"] = "best"
    eval_batch_size: int = 64
    steps_per_epoch: Optional[int] = None  # None: one pass over the training windows
    verbose: int = 2  # Keras fit verbosity (0 silent, 1 progress bar, 2 one line per epoch)
    tensorboard: bool = True  # TensorBoard logs in each run folder when the package is installed
    strategy: Literal["default", "one_device", "mirrored", "multi_worker", "tpu"] = "default"  # tf.distribute
    precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    jit_compile: Literal["auto", "on", "off"] = "auto"  # XLA; "auto": Keras' rule (see training.distribute)


@dataclass(frozen=True)
class TransferConfig:
    classes: tuple[str, ...] = ()  # held-out fine classes; empty: holdout_per_coarse per group (seeded)
    holdout_per_coarse: int = 2
    seed: int = 0
    train_folds: tuple[int, ...] = (1, 2, 3)
    val_folds: tuple[int, ...] = (4,)
    test_folds: tuple[int, ...] = (5,)
    epochs: int = 30  # retrain and fine-tune
    fine_tune_lr: float = 1e-4
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
        if self.transfer.holdout_per_coarse < 0:
            raise ConfigError("transfer.holdout_per_coarse must be >= 0")
        if self.train.epochs < 1 or self.transfer.epochs < 1 or self.train.batch_size < 1:
            raise ConfigError("train.epochs, transfer.epochs and train.batch_size must be >= 1")


@dataclass(frozen=True)
class RunSpec:
    """One trained model of the tables: which heads, which pooling, prototype loss or not."""

    heads: Literal["coarse", "fine", "both"]
    pooling: Literal["attention", "mean", "lstm", "gru"]
    prototype: bool
    label: str


RUNS = MappingProxyType({
    "coarse_attention": RunSpec("coarse", "attention", False, "coarse only, attention"),
    "fine_attention": RunSpec("fine", "attention", False, "fine only, attention"),
    "both_attention": RunSpec("both", "attention", True, "coarse + fine, attention"),
    "coarse_mean": RunSpec("coarse", "mean", False, "coarse only, no attention (mean pooling)"),
    "fine_mean": RunSpec("fine", "mean", False, "fine only, no attention (mean pooling)"),
    "both_mean": RunSpec("both", "mean", True, "coarse + fine, no attention (mean pooling)"),
    "both_lstm": RunSpec("both", "lstm", True, "CNN + 2 LSTM (30 units)"),
    "both_gru": RunSpec("both", "gru", True, "CNN + 2 GRU (30 units)"),
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


def resolve_data_root(cfg: Config) -> tuple[Path, bool]:
    """The dataset root and whether it is the synthetic default (generated if absent)."""
    if cfg.data.root:
        root = Path(cfg.data.root)
        return root, (root / "SYNTHETIC_DATASET.json").exists()  # a synthetic set passed with --data
    from tf_scenes.synth import generate

    roots = generate("esc50", Path(cfg.data.synthetic_dir), size=cfg.data.synthetic_size,
                     seed=cfg.data.synthetic_seed, progress=False)
    return Path(roots["esc50"]), True


def load_records(cfg: Config, root: Path) -> tuple[list, list[str]]:
    """HierRecords of the dataset and the fine classes in class-map (or ESC-50 target) order."""
    from tf_scenes.datasets import esc50
    from tf_scenes.errors import DataFormatError

    root = Path(root)
    if (root / "meta" / "esc50.csv").exists():
        cmap_path = Path(cfg.data.class_map) if cfg.data.class_map else root / "meta" / "class_map.csv"
        if cfg.data.class_map or cmap_path.exists():
            cmap = esc50.load_class_map(cmap_path)
            records = esc50.to_hier(esc50.load(root), cmap)
            order = list(cmap)
        else:  # the real ESC-50 without a class map: its 5 groups of 10 classes
            records = esc50.load_hier(root)
            order = list(esc50.CATEGORIES)
    else:
        cmap_path = Path(cfg.data.class_map) if cfg.data.class_map else root / "class_map.csv"
        if not cmap_path.exists():
            raise DataFormatError(root, "neither ESC-50 (meta/esc50.csv) nor a folder-per-class tree with a "
                                  "class map",
                                  hint=f"pass --set data.class_map=FINE_COARSE.csv (looked for {cmap_path})")
        cmap = esc50.load_class_map(cmap_path)
        records = esc50.load_folder_per_class(root, cmap, seed=cfg.data.fold_seed)
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


def feature_config():
    from tf_scenes.features import get_feature_config

    return get_feature_config(BASE_FEATURES)


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

    Mono: the "raw" feature config through tf_scenes.pipelines.cache (resampled to 16 kHz once, 3 windows).
    Binaural: each stereo clip becomes left, right, left + right, left - right
    (tf_scenes.metrics.clustering.binaural_expand), each windowed the same way: 4 x 3 = 12
    windows, waveform-major.
    """
    from tf_scenes.pipelines.cache import cached_features

    cfg = feature_config()
    if not binaural:
        return cached_features([str(p) for p in paths], cfg, Path(cache_dir) / "features", progress=False)
    return _binaural_windows([Path(p) for p in paths], cfg, Path(cache_dir) / "features")


def _binaural_windows(paths, cfg, cache_dir: Path) -> np.ndarray:
    import hashlib
    import json

    from tf_scenes.pipelines.cache import _file_records
    from tf_scenes.audio import read_audio
    from tf_scenes.features import extract, output_shape
    from tf_scenes.features.config import config_to_dict
    from tf_scenes.io_utils import atomic_path, atomic_write_json, ensure_writable_dir
    from tf_scenes.metrics.clustering import binaural_expand

    records = _file_records(paths)
    key = hashlib.sha256(json.dumps({"binaural": 1, "config": config_to_dict(cfg), "files": records},
                                    sort_keys=True).encode()).hexdigest()[:24]
    npy, meta = cache_dir / f"{cfg.name}-binaural-{key}.npy", cache_dir / f"{cfg.name}-binaural-{key}.json"
    w, s, c = output_shape(cfg, cfg.clip_samples)
    shape = (len(paths), 4 * w, s, c)
    if npy.exists() and meta.exists():
        arr = np.load(npy, mmap_mode="r", allow_pickle=False)
        if arr.shape == shape:
            return arr
    ensure_writable_dir(cache_dir)
    log.info("binaural windows of %d clips -> %s %s", len(paths), npy, shape)
    with atomic_path(npy, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        for i, p in enumerate(paths):
            x, _ = read_audio(p, sr=cfg.sample_rate, mono=False, channels=2)
            out[i] = extract(cfg, binaural_expand(x)).reshape(shape[1:])  # (4 * windows, samples, 1)
        out.flush()
        del out
    atomic_write_json(meta, {"shape": list(shape), "config": config_to_dict(cfg), "binaural": True,
                             "files": [r[0] for r in records]})
    return np.load(npy, mmap_mode="r", allow_pickle=False)


class WindowView:
    """The windows of a split's clips as one (clips * windows, samples) array, read lazily.

    Row i is window i % W of clip rows[i // W]; memory-mapped caches are read a window at a time.
    """

    def __init__(self, windows: np.ndarray, rows: np.ndarray):
        self.windows, self.rows = windows, np.asarray(rows, np.int64)
        self.per_clip = int(windows.shape[1])
        self.shape = (len(self.rows) * self.per_clip, int(windows.shape[2]))
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i):
        i = int(i)
        return self.windows[self.rows[i // self.per_clip], i % self.per_clip, :, 0]

    def array(self) -> np.ndarray:
        """All windows in memory: (clips * windows, samples) float32."""
        return np.ascontiguousarray(np.asarray(self.windows[self.rows], np.float32).reshape(self.shape))

    def clip_ids(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.rows)), self.per_clip)

    def repeat(self, labels) -> np.ndarray:
        return np.repeat(np.asarray(labels), self.per_clip)


# ----------------------------------------------------------------------------------------------
# augmentation


def augment_window(x, seed, aug: AugmentConfig):
    """Seeded augmentation of one pre-emphasised window (samples,) -> (samples,), mean removed again."""
    import tensorflow as tf

    from tf_scenes.pipelines.augment import fold_seed

    def u(k, lo, hi):
        return tf.random.stateless_uniform([], seed=fold_seed(seed, k), minval=lo, maxval=hi)

    n = x.shape[0]
    rms = tf.sqrt(tf.reduce_mean(tf.square(x)) + 1e-12)
    if aug.speed > 0 and aug.speed_prob > 0:
        r = u(0, 1.0 - aug.speed, 1.0 + aug.speed)
        c = (n - 1) / 2.0
        pos = c + (tf.range(n, dtype=tf.float32) - c) * r
        period = 2.0 * (n - 1)  # mirror at the window edges
        pos = tf.math.floormod(pos, period)
        pos = tf.where(pos > n - 1, period - pos, pos)
        i0 = tf.cast(tf.floor(pos), tf.int32)
        i1 = tf.minimum(i0 + 1, n - 1)
        frac = pos - tf.cast(i0, tf.float32)
        y = tf.gather(x, i0) * (1.0 - frac) + tf.gather(x, i1) * frac
        x = tf.where(u(1, 0.0, 1.0) < aug.speed_prob, y, x)
    if aug.drc_prob > 0:
        ratio = u(2, *aug.drc_ratio)
        thr = rms * 10.0 ** (u(3, *aug.drc_threshold_db) / 20.0)
        env = tf.sqrt(tf.nn.avg_pool1d(tf.square(x)[None, :, None], aug.drc_window, 1, "SAME")[0, :, 0] + 1e-12)
        gain = tf.minimum(1.0, tf.pow(env / thr, 1.0 / ratio - 1.0))  # (samples,): above thr, slope 1 / ratio
        y = x * gain
        y = y * rms / tf.sqrt(tf.reduce_mean(tf.square(y)) + 1e-12)  # keep the loudness
        x = tf.where(u(4, 0.0, 1.0) < aug.drc_prob, y, x)
    if aug.noise_prob > 0:
        snr = u(5, *aug.noise_snr_db)
        noise = tf.random.stateless_normal([n], seed=fold_seed(seed, 6))
        y = x + noise * rms * 10.0 ** (-snr / 20.0)
        x = tf.where(u(7, 0.0, 1.0) < aug.noise_prob, y, x)
    if aug.gain_db > 0:
        x = x * 10.0 ** (u(8, -aug.gain_db, aug.gain_db) / 20.0)
    return x - tf.reduce_mean(x)


# ----------------------------------------------------------------------------------------------
# models


def model_config(cfg: Config, spec: RunSpec, classes: Classes, *, n_fine: int | None = None):
    """The RawWaveformConfig of one run."""
    from tf_scenes.models.raw_waveform import RawWaveformConfig

    m = cfg.model
    return RawWaveformConfig(
        window_samples=feature_config().raw_window_samples, n_coarse=len(classes.coarse),
        n_fine=n_fine if n_fine is not None else len(classes.fine), pooling=spec.pooling, heads=spec.heads,
        rnn_units=m.rnn_units, dropout=m.dropout, width=m.width, stats_window=m.stats_window,
        stats_hop=m.stats_hop, merge=m.merge, align_to=m.align_to, fc_units=tuple(m.fc_units),
        attention_units=m.attention_units, ortho_reg=m.ortho_reg,
        prototype_weight=cfg.train.prototype_weight if spec.prototype and spec.heads != "fine" else 0.0,
        prototype_margin=m.prototype_margin)


def builder_name(pooling: str) -> str:
    return "raw_waveform" if pooling == "attention" else f"raw_waveform_{pooling}"


def run_seed(cfg: Config, name: str) -> int:
    import hashlib

    return cfg.seed + int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 10_000


def predict_windows(model, x: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """model.predict on (n, samples) windows in batches of exactly `batch_size`: the last partial
    batch is zero-padded (and its padding dropped), so every call of a model reuses one trace."""
    n = len(x)
    full = n - n % batch_size
    parts = []
    if full:
        parts.append(model.predict(x[:full], batch_size=batch_size, verbose=0))
    if n > full:
        rest = np.zeros((batch_size, *x.shape[1:]), np.float32)
        rest[: n - full] = x[full:]
        parts.append({k: np.asarray(v)[: n - full] for k, v in
                      model.predict(rest, batch_size=batch_size, verbose=0).items()})
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


def clip_scores(out: dict, view: WindowView, classes: Classes, heads: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Clip-level coarse / fine scores (mean of window scores) and clip embeddings.

    A model without a coarse head gets coarse scores = fine probabilities summed per coarse class.
    """
    from tf_scenes.metrics.clustering import clip_decision

    ids = view.clip_ids()
    res = {}
    if "fine" in heads:
        res["fine"] = clip_decision(out["fine"], ids)[1]
    if "coarse" in heads:
        res["coarse"] = clip_decision(out["coarse"], ids)[1]
    elif "fine" in res and res["fine"].shape[1] == len(classes.fine):
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


def copy_matching_weights(src, dst) -> list[str]:
    """Copy the weights of every layer of `dst` that `src` has under the same name and shapes
    (the heads of another size are left as initialised); returns the copied layer names."""
    copied = []
    for layer in dst.layers:
        if not layer.weights:
            continue
        try:
            other = src.get_layer(layer.name)
        except ValueError:
            continue
        w = other.get_weights()
        if [a.shape for a in w] == [b.shape for b in layer.get_weights()]:
            layer.set_weights(w)
            copied.append(layer.name)
    return copied


def train_run(name: str, mcfg, cfg: Config, train: WindowView, train_labels: dict, val: tuple | None,
              run_dir: Path, *, epochs: int, lr: float, init_from=None):
    """Train one model in its resumable run folder; returns (trainer, backbone, fit result).

    `val` = (WindowView, Split, Classes) of the validation clips (clip-level Top-1 / Top-3 logged as
    val_fine_top1, ... after every epoch; the monitor is val_fine_top1, or val_coarse_top1 without
    a fine head), or None / an empty split: the last epoch is kept.
    """
    import keras

    from tf_scenes.pipelines.train_data import epoch_steps, make_train_dataset
    from tf_scenes.models.raw_waveform import build_raw_waveform
    from tf_scenes.training.distribute import configure_precision, get_strategy, jit_compile_arg
    from tf_scenes.training.prototype import attach_hierarchical_losses
    from tf_scenes.training.trainer import fit

    t = cfg.train
    seed = run_seed(cfg, name)
    keras.utils.set_random_seed(seed)
    configure_precision(t.precision)
    with get_strategy(t.strategy).scope():  # variables (model, prototypes, optimizer) under the strategy
        backbone = build_raw_waveform(mcfg)
        if init_from is not None:
            copied = copy_matching_weights(init_from, backbone)
            log.info("%s: initialised %d layers from the base model", name, len(copied))
        trainer = attach_hierarchical_losses(backbone, mcfg, optimizer=keras.optimizers.Adam(lr),
                                             jit_compile=jit_compile_arg(t.jit_compile))
        # A fresh trainer is not "built" until first called; Keras refuses to load the resume checkpoint
        # into an unbuilt model (its backbone is built and its prototypes exist: build() only marks it).
        trainer.build((None, mcfg.window_samples))
    steps = t.steps_per_epoch or epoch_steps(len(train), t.batch_size)
    if steps < 1:
        from tf_scenes.errors import ConfigError

        raise ConfigError(f"{name}: {len(train)} training windows give no batch of {t.batch_size}")
    aug = cfg.augment
    extra = (lambda x, y, s: (augment_window(x, s, aug), y)) if aug.enabled else None

    def make_ds(initial_epoch: int):
        return make_train_dataset(train, train_labels, batch_size=t.batch_size, seed=seed, epochs=epochs,
                                  initial_epoch=initial_epoch, extra_map=extra, steps_per_epoch=steps)

    heads = mcfg.head_names
    key = "fine" if "fine" in heads else "coarse"
    val_fn = None
    if val is not None and len(val[1]):
        view, split, classes = val
        x_val = view.array()

        def val_fn(model):
            scores = clip_scores(predict_windows(model, x_val, t.eval_batch_size), view, classes, heads)
            return {f"val_{k}": v for k, v in clip_metrics(scores, split).items()}

    select = t.select if val_fn is not None else "last"
    with warnings.catch_warnings():
        if mcfg.prototype_weight == 0:  # the trainer always owns prototypes; unused without the prototype loss
            warnings.filterwarnings("ignore", message=r"Gradients do not exist for variables \['prototypes")
        result = fit(trainer, make_ds, epochs=epochs, steps_per_epoch=steps, run_dir=run_dir, val_data=val_fn,
                     monitor=f"val_{key}_top1", mode="max", select=select, verbose=t.verbose,
                     tensorboard="auto" if t.tensorboard else False)
    return trainer, backbone, result


def save_backbone(backbone, run_dir: Path) -> str:
    """Inference weights of the backbone (no prototypes, no optimizer): what model.json points to."""
    from tf_scenes.io_utils import atomic_path

    with atomic_path(run_dir / "model.weights.h5", suffix=".weights.h5") as tmp:
        backbone.save_weights(str(tmp))
    return "model.weights.h5"


def write_card(run_dir: Path, mcfg, outputs: dict, weights: str, extra: dict | None = None) -> None:
    from tf_scenes.model_io import write_model_card

    output = "fine" if "fine" in outputs else "coarse"
    fcfg = feature_config()
    write_model_card(
        run_dir, family=FAMILY, builder=builder_name(mcfg.pooling), config=mcfg, feature_config=BASE_FEATURES,
        outputs=outputs, weights=weights, input_kind="waveform",
        saliency={"method": "gradcam", "layer": SALIENCY_LAYER, "output": output},
        extra={"window_samples": fcfg.raw_window_samples, "hop_samples": fcfg.raw_hop_samples,
               "input_note": "the model takes 2 s windows after the 'raw' feature config (pre-emphasis over the "
                             "clip, mean removed per window); clip decision = mean of window scores",
               **(extra or {})})


def _finished(run_dir: Path, run_cfg: dict) -> bool:
    from tf_scenes.runs import is_finished

    return is_finished(run_dir, run_cfg, required=("model.json",))


# ----------------------------------------------------------------------------------------------
# the study


@dataclass
class Context:
    cfg: Config
    out: Path
    classes: Classes
    splits: dict
    views: dict
    data_label: str
    synthetic: bool


def _run_config(ctx: Context, name: str, mcfg, epochs: int, lr: float, train_split: str, **more) -> dict:
    from tf_scenes.config import to_dict

    return {"run": name, "model": to_dict(mcfg), "train": to_dict(ctx.cfg.train), "epochs": epochs, "lr": lr,
            "augment": to_dict(ctx.cfg.augment), "seed": run_seed(ctx.cfg, name), "data": ctx.data_label,
            "train_split": train_split, "train_clips": len(ctx.splits[train_split]), **more}


def train_or_load(ctx: Context, name: str, mcfg, *, train_split: str, val_split: str, fine_names,
                  epochs: int, lr: float, init_from=None, init_note: str | None = None):
    """Train (or reuse a finished) run; returns (model with .predict, run_dir)."""
    from tf_scenes import runs
    from tf_scenes.model_io import load_run_model

    run_dir = ctx.out / "runs" / name
    run_cfg = _run_config(ctx, name, mcfg, epochs, lr, train_split, **({"init_from": init_note} if init_note else {}))
    if _finished(run_dir, run_cfg):
        log.info("%s: finished earlier, reusing %s", name, run_dir)
        return load_run_model(run_dir)[0], run_dir
    runs.create_run_dir(run_dir, run_cfg, seed=run_seed(ctx.cfg, name), name=name)
    split = ctx.splits[train_split]
    view = ctx.views[train_split]
    labels = {"coarse": view.repeat(split.coarse), "fine": view.repeat(split.fine)}
    val = (ctx.views[val_split], ctx.splits[val_split], ctx.classes)
    log.info("%s: training %s/%s (width %s) for %d epochs on %d windows", name, mcfg.heads, mcfg.pooling,
             mcfg.width, epochs, len(view))
    trainer, backbone, result = train_run(name, mcfg, ctx.cfg, view, labels, val, run_dir, epochs=epochs, lr=lr,
                                          init_from=init_from)
    weights = save_backbone(backbone, run_dir)
    outputs = {}
    if "coarse" in mcfg.head_names:
        outputs["coarse"] = list(ctx.classes.coarse)
    if "fine" in mcfg.head_names:
        outputs["fine"] = list(fine_names)
    write_card(run_dir, mcfg, outputs, weights,
               extra={"selected_epoch": result["best_epoch"] if result["select"] == "best" else result["last_epoch"],
                      "selection": result["select"]})
    return trainer, run_dir


def run_study(cfg: Config, out: Path) -> dict:
    """Run the whole study; returns the tables as dicts."""
    import json

    from tf_scenes import runs
    from tf_scenes.io_utils import atomic_save_npy, atomic_write_json, ensure_writable_dir
    from tf_scenes.training.trainer import set_determinism

    from tf_scenes.experiments import raw_waveform_report as report

    out = ensure_writable_dir(out)
    set_determinism(cfg.seed)
    root, synthetic = resolve_data_root(cfg)
    records, fine_order = load_records(cfg, root)
    classes = choose_classes(records, fine_order, cfg.transfer)
    splits = make_splits(records, classes, cfg)
    binaural = is_binaural(records, cfg.data.binaural)
    if synthetic and not cfg.data.root:
        data_label = (f"SYNTHETIC data: synthetic hierarchical ESC-50 ({cfg.data.synthetic_size}, seed "
                      f"{cfg.data.synthetic_seed}); not the paper's datasets")
    elif synthetic:
        data_label = f"SYNTHETIC data at {root}; not the paper's datasets"
    else:
        data_label = f"{root}"
    log.info("data: %s; %d coarse, %d main fine, %d transfer classes; binaural: %s", data_label, len(classes.coarse),
             len(classes.fine), len(classes.transfer), binaural)
    runs.create_run_dir(out, cfg, seed=cfg.seed, name="raw_waveform")

    windows = clip_windows([r.path for r in records], cfg.data.cache_dir, binaural=binaural)
    views = {k: WindowView(windows, s.rows) for k, s in splits.items()}
    ctx = Context(cfg, out, classes, splits, views, data_label, synthetic)
    write_splits(ctx, root)

    # ---- main task: Tables II, VI (and the models of VII)
    test, tview = splits["main_test"], views["main_test"]
    x_test = tview.array()
    scores, metrics, window_emb, models = {}, {}, {}, {}
    for name, spec in RUNS.items():
        mcfg = model_config(cfg, spec, classes)
        model, run_dir = train_or_load(ctx, name, mcfg, train_split="main_train", val_split="main_val",
                                       fine_names=classes.fine, epochs=cfg.train.epochs, lr=cfg.train.lr)
        out_w = predict_windows(model, x_test, cfg.train.eval_batch_size)
        s = clip_scores(out_w, tview, classes, mcfg.head_names)
        m = clip_metrics(s, test)
        runs.finish_run(run_dir, {**m, "split": "main_test", "clips": len(test)})
        atomic_save_npy(run_dir / "test_window_embeddings.npy", out_w["embedding"].astype(np.float32))
        save_scores(run_dir / "test_scores.npz", s, test)
        scores[name], metrics[name], window_emb[name] = s, m, out_w["embedding"]
        models[name] = model

    # ---- transfer (Table V)
    transfer = run_transfer(ctx, models[HIERARCHICAL])

    meta = {"profile": cfg.profile, "description": cfg.description, "data": data_label, "synthetic": synthetic,
            "data_root": str(root), "binaural": binaural,
            "classes": {"coarse": list(classes.coarse), "fine": list(classes.fine),
                        "transfer": list(classes.transfer)},
            "clips": {k: len(s) for k, s in splits.items()}, "windows_per_clip": int(windows.shape[1]),
            "selection": _selection_text(cfg.train.select, cfg.data.val_folds, splits["main_val"]),
            "transfer_selection": _selection_text(cfg.train.select, cfg.transfer.val_folds, splits["transfer_val"]),
            "augmentation": report.augment_summary(cfg.augment)}
    tables = report.write_all(cfg, out, meta, metrics, window_emb, test, tview, transfer)
    if cfg.figures:
        base = models[HIERARCHICAL]
        report.figure3(base, out / "figures", meta)
        report.projection(window_emb, tview.repeat(test.coarse), classes, out / "figures", meta, cfg.projection,
                          seed=cfg.seed)
    if cfg.export:
        export_clip_model(models[HIERARCHICAL], classes, out / "export" / "raw_waveform_hierarchical",
                          metadata={"profile": cfg.profile, "data": data_label, "run": f"runs/{HIERARCHICAL}"})
    summary = {"hierarchical_" + k: v for k, v in metrics[HIERARCHICAL].items()}
    atomic_write_json(out / "study.json", {**meta, "runs": [*RUNS, *TRANSFER_RUNS], "tables": sorted(tables)})
    atomic_write_json(out / "metrics_all.json", {"main_test": metrics, "transfer_test": transfer["metrics"]})
    runs.finish_run(out, summary)
    log.info("done: %s", json.dumps(summary))
    return tables


def save_scores(path: Path, scores: dict, split: Split) -> Path:
    """Clip scores of a split with its labels and files (row order = the split's clips in splits.json)."""
    from tf_scenes.io_utils import atomic_path

    arrays = {k: np.asarray(v, np.float32) for k, v in scores.items() if k in ("coarse", "fine")}
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays, coarse_labels=split.coarse, fine_labels=split.fine,
                 files=np.asarray([Path(r.path).name for r in split.records]))
    return path


def _selection_text(select: str, folds, val: Split) -> str:
    if not len(val) or select == "last":
        return "last epoch" + ("" if len(val) else " (no validation clips)")
    return f"best epoch by clip-level validation Top-1 on folds {list(folds)}"


def write_splits(ctx: Context, root: Path) -> Path:
    """splits.json: the files of every split (the transfer classes never appear in the main splits)."""
    from tf_scenes.io_utils import atomic_write_json

    def rel(p):
        try:
            return str(Path(p).relative_to(root))
        except ValueError:
            return str(p)

    doc = {"root": str(root), "coarse": list(ctx.classes.coarse), "main_fine": list(ctx.classes.fine),
           "transfer_fine": list(ctx.classes.transfer),
           "splits": {k: [{"file": rel(r.path), "fine": r.fine, "coarse": r.coarse, "fold": r.fold}
                          for r in s.records] for k, s in ctx.splits.items()}}
    return atomic_write_json(ctx.out / "splits.json", doc)


# ----------------------------------------------------------------------------------------------
# transfer (Table V)


def _classifier_scores(clf, x: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n_classes) scores of a fitted sklearn classifier; classes unseen in training score -1e9."""
    if hasattr(clf, "predict_proba") and getattr(clf, "probability", True) is not False:
        try:
            raw = clf.predict_proba(x)
        except AttributeError:
            raw = clf.decision_function(x)
    else:
        raw = clf.decision_function(x)
    raw = np.asarray(raw, np.float64)
    known = np.asarray(clf.classes_)
    if raw.ndim == 1:  # binary decision function: positive = classes_[1]
        raw = np.stack([-raw, raw], axis=1)
    full = np.full((len(x), n_classes), -1e9)
    full[:, known.astype(np.int64)] = raw
    return full


def run_transfer(ctx: Context, base_model) -> dict:
    """Table V on the held-out classes: retrain, fine-tune, frozen embedding + SVM / + logistic regression."""
    from tf_scenes import runs
    from tf_scenes.metrics.clustering import clip_decision, fit_logreg, fit_svm_poly3, topk_report

    cfg, classes = ctx.cfg, ctx.classes
    tr, te = ctx.splits["transfer_train"], ctx.splits["transfer_test"]
    vtr, vte = ctx.views["transfer_train"], ctx.views["transfer_test"]
    x_te = vte.array()
    n = len(classes.transfer)
    res: dict = {"metrics": {}, "train_clips": len(tr), "test_clips": len(te)}

    # frozen embeddings of the hierarchical model (window level), classifiers on windows, clip = mean of scores
    bs = cfg.train.eval_batch_size
    emb_tr = predict_windows(base_model, vtr.array(), bs)["embedding"]
    emb_te = predict_windows(base_model, x_te, bs)["embedding"]
    y_tr = vtr.repeat(tr.fine)
    for key, clf in (("frozen_svm", fit_svm_poly3(emb_tr, y_tr, C=cfg.transfer.svm_C, seed=cfg.seed)),
                     ("frozen_logreg", fit_logreg(emb_tr, y_tr, C=cfg.transfer.logreg_C, seed=cfg.seed))):
        s = clip_decision(_classifier_scores(clf, emb_te, n), vte.clip_ids())[1]
        res["metrics"][key] = topk_report(te.fine, s, prefix="fine_")

    spec = RunSpec("fine", "attention", False, "transfer")
    mcfg = model_config(cfg, spec, classes, n_fine=n)
    base_backbone = getattr(base_model, "backbone", base_model)
    for name, init, lr in (("transfer_retrain", None, cfg.train.lr),
                           ("transfer_finetune", base_backbone, cfg.transfer.fine_tune_lr)):
        model, run_dir = train_or_load(ctx, name, mcfg, train_split="transfer_train", val_split="transfer_val",
                                       fine_names=classes.transfer, epochs=cfg.transfer.epochs, lr=lr,
                                       init_from=init, init_note=f"runs/{HIERARCHICAL}" if init is not None else None)
        out_w = predict_windows(model, x_te, bs)
        s = clip_decision(out_w["fine"], vte.clip_ids())[1]
        m = topk_report(te.fine, s, prefix="fine_")
        save_scores(run_dir / "test_scores.npz", {"fine": s}, te)
        runs.finish_run(run_dir, {**m, "split": "transfer_test", "clips": len(te)})
        res["metrics"][name.replace("transfer_", "")] = m
    return res


# ----------------------------------------------------------------------------------------------
# export: whole clip in, clip probabilities and embedding out


def _layers():
    """The two small layers of the exported clip model (defined lazily: no Keras import at module load)."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="tf_scenes.raw_waveform_study")
    class FoldWindows(keras.layers.Layer):
        """(batch, windows, samples, 1) -> (batch * windows, samples): windows become examples."""

        def call(self, x):
            return ops.reshape(x, (-1, x.shape[2]))  # (batch * windows, samples)

        def compute_output_shape(self, input_shape):
            return (None, input_shape[2])

    @keras.saving.register_keras_serializable(package="tf_scenes.raw_waveform_study")
    class WindowMean(keras.layers.Layer):
        """[(batch * windows, dim), (batch, windows, ...)] -> (batch, dim): mean over a clip's windows."""

        def call(self, inputs):
            values, windows = inputs
            shape = ops.shape(windows)
            v = ops.reshape(values, (shape[0], shape[1], values.shape[-1]))  # (batch, windows, dim)
            return ops.mean(v, axis=1)

        def compute_output_shape(self, input_shapes):
            return (input_shapes[1][0], input_shapes[0][-1])

    return FoldWindows, WindowMean


def clip_model(backbone):
    """keras.Model: 16 kHz waveform (batch, samples >= 2 s) -> {"coarse", "fine", "embedding"} per clip.

    In the graph: pre-emphasis over the whole waveform, 2 s windows with a 1.5 s hop, mean removed
    per window (the "raw" feature config, without the 5 s cut), the backbone on every window, and
    the mean of the window scores / embeddings.
    """
    import keras

    from tf_scenes.features import FeatureExtractor

    FoldWindows, WindowMean = _layers()
    backbone = getattr(backbone, "backbone", backbone)
    fcfg = feature_config().replace(clip_samples=None)
    wav = keras.Input((None,), dtype="float32", name="waveform")
    win = FeatureExtractor(fcfg, name="windows")(wav)  # (batch, windows, window_samples, 1)
    flat = FoldWindows(name="fold_windows")(win)  # (batch * windows, window_samples)
    out = backbone(flat)
    keys = [k for k in ("coarse", "fine") if k in out] + ["embedding"]
    res = {k: WindowMean(name=f"clip_{k}")([out[k], win]) for k in keys}  # (batch, dim) each
    return keras.Model(wav, res, name="raw_waveform_clip")


def clip_export_settings() -> tuple[int, dict]:
    """(min_samples, metadata) of a whole-clip export (the study's and `tf-scenes export`'s)."""
    fcfg = feature_config()
    return fcfg.raw_window_samples, {
        "family": FAMILY, "window_seconds": fcfg.window_seconds, "hop_seconds": fcfg.hop_seconds,
        "pre_emphasis": fcfg.pre_emphasis, "clip_decision": "mean of the window scores",
        "embedding": "mean of the 128-D window embeddings"}


def export_clip_model(backbone, classes: Classes, out_dir: Path, metadata: dict | None = None) -> Path:
    from tf_scenes.export import export_saved_model

    min_samples, meta = clip_export_settings()
    return export_saved_model(
        clip_model(backbone), out_dir, sample_rate=feature_config().sample_rate, min_samples=min_samples,
        labels={"coarse": list(classes.coarse), "fine": list(classes.fine)}, metadata={**meta, **(metadata or {})})
