"""Weakly supervised SED with a self-supervised auxiliary task and two-step attention pooling
(Deshmukh, Raj & Singh, Interspeech 2021), end to end.

`make reproduce-weak-sed` (or `tf-scenes reproduce weak_sed --profile quick`) runs:

1. data: FSDKaggle2018 verified event clips mixed into 10 s acoustic scenes at each SNR
   (weak_sed.md "Data"; tf_scenes.weak_sed.remix).  By default the synthetic stand-ins
   (tf_scenes.synth.generate("remix")); with data.events_root + data.scenes_root the remix of the
   real datasets is built once into a cache folder; data.root (``--data``) names a remix built
   earlier (a folder of snr{S}/ subfolders);
2. log-mel features (32 kHz, 311 x 64), cached once per SNR and file list; per-band z-score with
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

Every model run is skipped when its run folder already holds finished results for the same
config, and an interrupted training resumes from its last epoch, so a study resumes where it
stopped.
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

log = logging.getLogger(__name__)

MODEL_KINDS = ("2apae", "gap", "gmp", "gwrp", "dilated_attention")
MONITOR = "val_micro_ap"
HOP_SECONDS = 1024 / 32000


@dataclass(frozen=True)
class DataConfig:
    root: Optional[str] = None  # a remix built earlier (snr{S}/ subfolders); set by --data
    events_root: Optional[str] = None  # FSDKaggle2018 root (train.csv, audio_train/)
    scenes_root: Optional[str] = None  # TAU-format scene root (audio/*.wav); DCASE 2019 Task 1 in the paper
    remix_dir: Optional[str] = None  # where the remix of real data is built; None: {cache_dir}/weak_sed_remix/{key}
    mixtures_per_fold: Optional[int] = None  # real data; None: min(2000, smallest fold's clips // 3)
    n_folds: int = 4
    remix_seed: int = 0
    snrs: tuple[float, ...] = (20.0, 10.0, 0.0)
    synthetic_dir: str = "data"  # where the synthetic default lives (generated if absent)
    synthetic_size: Literal["tiny", "small", "full"] = "small"
    synthetic_seed: int = 0
    val_fraction: float = 0.1  # of the training folds' mixtures, held out for validation
    cache_dir: str = ".cache"  # feature caches (and the default remix folder of real data)


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 24
    lr: float = 1e-3  # Adam
    plateau_factor: float = 0.1  # ReduceLROnPlateau on validation micro-AP (max)
    plateau_patience: int = 3
    plateau_threshold: float = 1e-4  # relative, as PyTorch's default
    select: Literal["best", "last"] = "best"
    eval_batch_size: int = 16
    steps_per_epoch: Optional[int] = None  # None: ceil(training mixtures / batch_size), one pass
    run_eagerly: bool = False  # Keras eager steps (no tf.function tracing): for smoke tests of many tiny runs
    strategy: Literal["default", "one_device", "mirrored", "multi_worker", "tpu"] = "default"  # tf.distribute
    precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    jit_compile: Literal["auto", "on", "off"] = "auto"  # XLA; "auto": Keras' rule (see training.distribute)


@dataclass(frozen=True)
class ModelRun:
    model: Literal["2apae", "gap", "gmp", "gwrp", "dilated_attention"]
    alpha: float = 0.001  # weight of the reconstruction loss (2APAE only)
    width: float = 1.0  # multiplier on every convolution width (1.0: the paper's models)
    epochs: int = 50


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
    figure_clips: int = 2  # example clips of Figure 2 (the same mixtures at every SNR)
    export: bool = True
    export_snrs: Optional[tuple[float, ...]] = None  # SNRs whose 2APAE is exported; None: all

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
            raise ConfigError(f"data.snrs must be non-empty and distinct, got {list(self.data.snrs)}")
        if self.data.n_folds < 2:
            raise ConfigError(f"data.n_folds must be >= 2, got {self.data.n_folds}")
        bad = [k for k in self.eval_folds if not 1 <= k <= self.data.n_folds]
        if not self.eval_folds or bad or len(set(self.eval_folds)) != len(self.eval_folds):
            raise ConfigError(f"eval_folds must be distinct folds in 1..{self.data.n_folds}, "
                              f"got {list(self.eval_folds)}")
        if not 0 <= self.data.val_fraction < 1:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {self.data.val_fraction}")
        if bool(self.data.events_root) != bool(self.data.scenes_root):
            raise ConfigError("set both data.events_root and data.scenes_root (real data), or neither")
        if self.data.root and self.data.events_root:
            raise ConfigError("data.root (a built remix) and data.events_root / data.scenes_root exclude each other")
        if self.export_snrs is not None:
            extra = [s for s in self.export_snrs if s not in self.data.snrs]
            if extra:
                raise ConfigError(f"export_snrs {extra} are not among data.snrs {list(self.data.snrs)}")


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


def resolve_remix(cfg: Config) -> tuple[dict[float, Path], bool, str]:
    """({snr: remix folder}, synthetic?, data description); builds the remix when needed."""
    from tf_scenes.errors import ConfigError
    from tf_scenes.weak_sed import remix

    d = cfg.data
    if d.root:
        folders = {s: Path(d.root) / remix.snr_dirname(s) for s in d.snrs}
        missing = [str(f) for f in folders.values() if not (f / "mixture.yaml").is_file()]
        if missing:
            raise ConfigError(f"data.root={d.root}: no remix at {', '.join(missing)}; build one with "
                              f"`tf-scenes remix` or set data.events_root / data.scenes_root")
        synthetic = _is_synthetic_remix(folders)
        return folders, synthetic, ("SYNTHETIC (or unverifiable) sources: " if synthetic else "") + f"remix at {d.root}"
    if d.events_root:
        out = Path(d.remix_dir) if d.remix_dir else Path(d.cache_dir) / "weak_sed_remix" / _remix_key(cfg)
        log.info("building (or reusing) the remix of %s and %s in %s", d.events_root, d.scenes_root, out)
        folders = remix.build_remix(d.events_root, d.scenes_root, out, snrs=d.snrs, seed=d.remix_seed,
                                    mixtures_per_fold=d.mixtures_per_fold, n_folds=d.n_folds)
        synthetic = any(_is_synthetic_root(r) for r in (d.events_root, d.scenes_root))
        label = (f"FSDKaggle2018 verified clips at {d.events_root} in scenes at {d.scenes_root}, remixed into {out}")
        if synthetic:
            label = "SYNTHETIC sources: " + label
        return folders, synthetic, label
    from tf_scenes.synth import REMIX_DIR, REMIX_PER_FOLD, generate

    if d.n_folds != 4:
        raise ConfigError("the synthetic default remix has 4 folds; data.n_folds must be 4")
    roots = generate("remix", Path(d.synthetic_dir), size=d.synthetic_size, seed=d.synthetic_seed)
    folders = {s: Path(roots["remix"]) / remix.snr_dirname(s) for s in d.snrs}
    if any(not (f / "manifest.json").is_file() for f in folders.values()):
        # The synthetic remix holds 0, 10 and 20 dB; other SNRs are added beside them (same plan).
        folders = remix.build_remix(roots["events"], roots["asc"], Path(d.synthetic_dir) / REMIX_DIR,
                                    snrs=d.snrs, seed=d.synthetic_seed,
                                    mixtures_per_fold=REMIX_PER_FOLD[d.synthetic_size], progress=False)
    label = (f"SYNTHETIC FSDKaggle2018-format events + TAU-format scenes ({d.synthetic_size}, seed "
             f"{d.synthetic_seed}), remixed; not the paper's data")
    return folders, True, label


def _is_synthetic_root(root) -> bool:
    """A dataset folder written by tf_scenes.synth (it carries SYNTHETIC_DATASET.json)."""
    return bool(root) and (Path(root) / "SYNTHETIC_DATASET.json").is_file()


def _is_synthetic_remix(folders: dict) -> bool:
    """Whether a remix built earlier mixed synthetic sources (as its manifests record them); a
    remix whose sources cannot be found any more counts as synthetic (not labelled real data)."""
    import json

    for f in folders.values():
        try:
            man = json.loads((f / "manifest.json").read_text())
        except (OSError, ValueError):
            return True
        roots = [man.get("events_root"), man.get("scenes_root")]
        if any(_is_synthetic_root(r) for r in roots) or not all(r and Path(r).is_dir() for r in roots):
            return True
    return False


def _remix_key(cfg: Config) -> str:
    d = cfg.data
    text = "|".join([str(Path(d.events_root).resolve()), str(Path(d.scenes_root).resolve()), str(d.remix_seed),
                     str(d.mixtures_per_fold), str(d.n_folds)])
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def load_snr(snr: float, folder: Path, cache: Path) -> SnrData:
    """Read one SNR's remix and its (cached) features."""
    import json

    from tf_scenes.pipelines.cache import cached_features
    from tf_scenes.features import get_feature_config
    from tf_scenes.weak_sed.remix import multi_hot, read_remix

    records = read_remix(folder)
    feats = cached_features([r.path for r in records], get_feature_config("weak_sed"), cache / "features",
                            progress=False)
    manifest = json.loads((folder / "manifest.json").read_text())
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
    from tf_scenes.weak_sed.training import RowView

    return band_statistics(RowView(features, rows))


# ----------------------------------------------------------------------------------------------
# one model run


def model_config(run: ModelRun):
    from tf_scenes.datasets.fsd2018 import CLASSES
    from tf_scenes.models.weak_sed import WeakSedConfig

    return WeakSedConfig(model=run.model, n_classes=len(CLASSES), alpha=run.alpha, width=run.width)


def uses_reconstruction(run: ModelRun) -> bool:
    return run.model == "2apae" and run.alpha > 0


def run_seed(cfg: Config, name: str, eval_fold: int) -> int:
    """Seed of one model run: the same at every SNR, independent of the order runs are made in."""
    digest = hashlib.sha1(f"{name}|{eval_fold}".encode()).hexdigest()
    return (cfg.seed * 1_000_003 + int(digest[:8], 16)) % (2 ** 31 - 1)


def clip_model(model):
    """The clip-probability head of a weak-SED model (the decoder and the maps are not computed)."""
    import keras

    return keras.Model(model.inputs[0], model.output["clip"], name=f"{model.name}_clip")


def predict_clip(model, features, rows, mean, std, batch_size: int, head=None) -> np.ndarray:
    """(len(rows), classes) clip probabilities of the standardised features of `rows`.

    head: ``clip_model(model)`` made once by the caller.  Batches are read from the (memory-mapped)
    features, standardised with numpy and run through the head directly: no tf.data pipeline or
    predict function is traced per call (validation runs every epoch)."""
    from tf_scenes.weak_sed.training import RowView, standardize_array

    head = head if head is not None else clip_model(model)
    view = RowView(features, rows)
    out = []
    for lo in range(0, len(view), batch_size):
        x = standardize_array(view[lo:lo + batch_size], mean, std)  # (b, frames, mels)
        out.append(np.asarray(head(x, training=False), np.float64))
    return np.concatenate(out, axis=0) if out else np.zeros((0, model.output["clip"].shape[-1]))


def compile_model(model, run: ModelRun, train: TrainConfig):
    """Adam(lr) and the paper's loss BCE(clip) + alpha * MSE(reconstruction, standardised input)
    (weak_sed.md "Training"); the baselines and alpha = 0 have the BCE term only."""
    import keras

    from tf_scenes.models.weak_sed import weak_sed_loss

    from tf_scenes.training.distribute import jit_compile_arg

    model.compile(optimizer=keras.optimizers.Adam(train.lr), run_eagerly=train.run_eagerly,
                  jit_compile=jit_compile_arg(train.jit_compile),
                  **weak_sed_loss(run.alpha, reconstruction=uses_reconstruction(run)))
    return model


def train_one(name: str, run: ModelRun, cfg: Config, data: SnrData, split: Split, mean, std, run_dir: Path):
    """Train one model run in its resumable run folder; returns (selected model, its clip head,
    fit result)."""
    import keras
    import tensorflow as tf

    from tf_scenes.pipelines.train_data import make_train_dataset
    from tf_scenes.metrics.weak_sed import clip_metrics
    from tf_scenes.models.weak_sed import build_weak_sed
    from tf_scenes.training.trainer import CHECKPOINT_DIR, LAST, fit, read_checkpoint_state
    from tf_scenes.weak_sed.training import ResumablePlateau, RowView, inputs_and_targets

    t = cfg.train
    seed = run_seed(cfg, name, split.eval_fold)
    keras.backend.clear_session()  # drop the graphs of earlier runs (many runs in one process)
    keras.utils.set_random_seed(seed)
    from tf_scenes.training.distribute import configure_precision, get_strategy

    configure_precision(t.precision)
    with get_strategy(t.strategy).scope():  # variables (model, optimizer) live under the strategy
        model = compile_model(build_weak_sed(model_config(run)), run, t)
    recon = uses_reconstruction(run)

    steps = t.steps_per_epoch or max(1, -(-len(split.fit) // t.batch_size))
    train_x = RowView(data.features, split.fit)
    train_y = data.labels[split.fit]
    to_model = inputs_and_targets(mean, std, recon)

    def make_ds(initial_epoch: int):
        ds = make_train_dataset(train_x, train_y, batch_size=t.batch_size, seed=seed, epochs=run.epochs,
                                initial_epoch=initial_epoch, steps_per_epoch=steps)
        return ds.map(to_model, num_parallel_calls=tf.data.AUTOTUNE)

    head = clip_model(model)
    val_fn, select = None, "last"
    if len(split.val):
        y_val = data.labels[split.val]

        def val_fn(m):
            probs = predict_clip(m, data.features, split.val, mean, std, t.eval_batch_size,
                                 head=head if m is model else None)
            # A small validation split lacks many classes: clip_metrics' per-call warnings about
            # them are expected here (they are logged once for the evaluation fold).
            with _quiet("tf_scenes.metrics.weak_sed"):
                met = clip_metrics(y_val, probs)
            return {"val_micro_ap": met["micro_ap"], "val_macro_ap": met["macro_ap"], "val_auc": met["auc"]}

        select = t.select
    callbacks = []
    if val_fn is not None:
        last = run_dir / CHECKPOINT_DIR / LAST
        history = (read_checkpoint_state(last) or {}).get("history", []) if last.exists() else []
        callbacks.append(ResumablePlateau(MONITOR, t.lr, factor=t.plateau_factor, patience=t.plateau_patience,
                                          threshold=t.plateau_threshold, history=history))
    with warnings.catch_warnings():
        if run.model == "2apae" and not recon:  # alpha 0: the decoder is left untrained, as meant
            warnings.filterwarnings("ignore", message="Gradients do not exist for variables")
        result = fit(model, make_ds, epochs=run.epochs, steps_per_epoch=steps, run_dir=run_dir, val_data=val_fn,
                     monitor=MONITOR, mode="max", select=select, extra_callbacks=callbacks, verbose=0)
    write_card(run_dir, run, Path(result["weights"]).relative_to(run_dir), mean, std)
    return model, head, result


@contextlib.contextmanager
def _quiet(logger_name: str, level: int = logging.ERROR):
    logger = logging.getLogger(logger_name)
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


def saliency_defaults(run: ModelRun) -> dict:
    """Saliency defaults of the model card: for 2APAE its own attention maps (the outputs named
    under "attention", drawn by `tf-scenes saliency` beside) Grad-CAM at the last encoder conv;
    CAM of the baselines' sigmoid class map; Grad-CAM of the dilated CNN's last conv."""
    if run.model == "2apae":
        return {"method": "gradcam", "layer": "enc4_conv2", "output": "clip",
                "attention": ["freq_attention", "time_attention"]}
    if run.model == "dilated_attention":
        return {"method": "gradcam", "layer": "block3_conv", "output": "clip", "attention": ["attention"]}
    return {"method": "cam", "layer": "class_conv", "output": "clip"}


def write_card(run_dir: Path, run: ModelRun, weights: Path, mean, std) -> None:
    from tf_scenes.datasets.fsd2018 import CLASSES
    from tf_scenes.model_io import write_model_card

    class_outputs = {"2apae": ("clip", "time_attention", "time_presence", "first_step", "freq_attention",
                               "freq_presence", "class_map"),
                     "dilated_attention": ("clip", "attention", "class_map")}.get(run.model, ("clip", "class_map"))
    write_model_card(run_dir, family="weak_sed", builder=f"weak_sed_{run.model}", config=model_config(run),
                     feature_config="weak_sed", weights=str(weights),
                     outputs={k: list(CLASSES) for k in class_outputs}, saliency=saliency_defaults(run),
                     normalization={"mean": np.asarray(mean).tolist(), "std": np.asarray(std).tolist()},
                     extra={"squeeze_channel": True})


def _finished(run_dir: Path, run_cfg: dict) -> bool:
    from tf_scenes.runs import is_finished

    return is_finished(run_dir, run_cfg, required=("model.json", "scores_evaluate.tsv"))


def save_scores(path: Path, records, rows, probs: np.ndarray) -> None:
    """Clip scores of the evaluation mixtures, keyed by mixture name."""
    from tf_scenes.datasets.fsd2018 import CLASSES
    from tf_scenes.io_utils import atomic_write_text

    lines = ["\t".join(["name", "fold", *CLASSES])]
    lines += ["\t".join([records[i].name, str(records[i].fold), *(f"{p:.9g}" for p in row)])
              for i, row in zip(rows, probs)]
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_scores(path: Path) -> tuple[list[str], np.ndarray]:
    lines = Path(path).read_text().splitlines()
    names = [ln.split("\t")[0] for ln in lines[1:]]
    probs = np.array([[float(v) for v in ln.split("\t")[2:]] for ln in lines[1:]], np.float64)
    return names, probs


# ----------------------------------------------------------------------------------------------
# the study


def run_model(name: str, cfg: Config, d: SnrData, sp: Split, mean, std, run_dir: Path, data_label: str) -> dict:
    """Train (or reuse, when finished earlier with the same config) one model run at one SNR and
    split, and score the held-out fold; returns {"metrics", "probs", "run_dir"}."""
    from tf_scenes import runs
    from tf_scenes.config import to_dict
    from tf_scenes.datasets.fsd2018 import CLASSES
    from tf_scenes.metrics.weak_sed import clip_metrics

    run = cfg.models[name]
    k, s = sp.eval_fold, d.snr
    run_cfg = {"model_run": to_dict(run), "train": to_dict(cfg.train), "seed": cfg.seed, "data": data_label,
               "snr": float(s), "eval_fold": k, "plan_sha256": d.plan_sha256, "val_fraction": cfg.data.val_fraction,
               "fit_mixtures": len(sp.fit), "val_mixtures": len(sp.val)}
    scores = run_dir / "scores_evaluate.tsv"
    expected = [d.records[i].name for i in sp.evaluate]
    if _finished(run_dir, run_cfg):
        log.info("%s snr %g fold %d: finished earlier, reusing %s", name, s, k, run_dir)
        names, probs = read_scores(scores)
        if names != expected:
            raise ValueError(f"{scores} does not list the evaluation mixtures of fold {k}")
        return {"metrics": clip_metrics(d.labels[sp.evaluate], probs, CLASSES), "probs": probs, "run_dir": run_dir}
    log.info("%s snr %g fold %d: training %s (width %g, alpha %g, %d epochs) on %d mixtures", name, s, k,
             run.model, run.width, run.alpha, run.epochs, len(sp.fit))
    runs.create_run_dir(run_dir, run_cfg, seed=run_seed(cfg, name, k), name=f"{name}_snr{s:g}_fold{k}")
    model, head, fitted = train_one(name, run, cfg, d, sp, mean, std, run_dir)
    probs = predict_clip(model, d.features, sp.evaluate, mean, std, cfg.train.eval_batch_size, head=head)
    save_scores(scores, d.records, sp.evaluate, probs)
    probs = read_scores(scores)[1]  # the metrics of the saved scores, as when the run is reused later
    metrics = clip_metrics(d.labels[sp.evaluate], probs, CLASSES)
    runs.finish_run(run_dir, {**metrics, "best_epoch": fitted["best_epoch"], "epochs": run.epochs,
                              "selected_weights": Path(fitted["weights"]).name})
    return {"metrics": metrics, "probs": probs, "run_dir": run_dir}


def run_study(cfg: Config, out: Path) -> dict:
    """Run the whole study; returns the tables as dicts."""
    import json

    from tf_scenes import runs
    from tf_scenes.io_utils import atomic_write_json, ensure_writable_dir
    from tf_scenes.model_io import load_run_model
    from tf_scenes.training.trainer import set_determinism

    out = ensure_writable_dir(out)
    set_determinism(cfg.seed)
    folders, synthetic, data_label = resolve_remix(cfg)
    log.info("data: %s", data_label)
    cache = Path(cfg.data.cache_dir)
    runs.create_run_dir(out, cfg, seed=cfg.seed, name="weak_sed")

    snr_data = {s: load_snr(s, folders[s], cache) for s in cfg.data.snrs}
    first = snr_data[cfg.data.snrs[0]]
    for s, d in snr_data.items():  # the same mixtures (names, folds, events) at every SNR
        if [r.name for r in d.records] != [r.name for r in first.records] or d.plan_sha256 != first.plan_sha256:
            raise ValueError(f"{d.folder} holds another remix plan than {first.folder}")
    folds = np.array([r.fold for r in first.records])
    splits = {k: fold_split(folds, k, cfg.data.val_fraction, cfg.seed) for k in cfg.eval_folds}
    for k, sp in splits.items():
        log.info("fold %d held out: %d training, %d validation, %d evaluation mixtures", k, len(sp.fit),
                 len(sp.val), len(sp.evaluate))

    used = list(dict.fromkeys([*cfg.table1, *cfg.table2]))
    meta = {"profile": cfg.profile, "data": data_label, "synthetic": synthetic,
            "remix": {f"{s:g}": str(f) for s, f in folders.items()},
            "mixtures": len(first.records), "folds": sorted(set(folds.tolist())),
            "eval_folds": list(cfg.eval_folds),
            "splits": {str(k): {"fit": len(sp.fit), "validation": len(sp.val), "evaluation": len(sp.evaluate)}
                       for k, sp in splits.items()},
            "protocol": _protocol_text(cfg),
            "selection": (f"{cfg.train.select} epoch on validation micro-AP (a seeded {cfg.data.val_fraction:g} "
                          "of the training folds' mixtures)" if cfg.data.val_fraction > 0
                          else "last epoch (no validation split)")}

    results: dict = {}  # name -> snr -> fold -> {"metrics", "probs", "run_dir"}
    stats: dict = {}
    for s in cfg.data.snrs:
        d = snr_data[s]
        for k, sp in splits.items():
            mean, std = training_statistics(d.features, sp.fit)
            stats[(s, k)] = (mean, std)
            for name in used:
                results.setdefault(name, {}).setdefault(s, {})[k] = run_model(
                    name, cfg, d, sp, mean, std, out / "runs" / name / f"snr{s:g}" / f"fold{k}", data_label)

    from tf_scenes.experiments import weak_sed_report

    tables = weak_sed_report.write_all(cfg, out, results, meta)
    if cfg.figures:
        apae = next((m for m in cfg.table1 if cfg.models[m].model == "2apae"), None)
        if apae is not None:
            k = cfg.eval_folds[0]
            for s in cfg.data.snrs:
                model = load_run_model(results[apae][s][k]["run_dir"])[0]
                weak_sed_report.figure2(cfg, out, model, snr_data[s], splits[k], *stats[(s, k)], meta)
    if cfg.export:
        apae = next((m for m in cfg.table1 if cfg.models[m].model == "2apae"), None)
        if apae is not None:
            k = cfg.eval_folds[0]
            for s in (cfg.export_snrs if cfg.export_snrs is not None else cfg.data.snrs):
                export_2apae(results[apae][s][k]["run_dir"], out / "export" / f"2apae_snr{s:g}",
                             {"snr": float(s), "eval_fold": k, "data": data_label, "profile": cfg.profile})
    atomic_write_json(out / "study.json", {**meta, "models": used, "tables": sorted(tables)})
    runs.finish_run(out, tables.get("summary", {}))
    log.info("done: %s", json.dumps(tables.get("summary", {})))
    return tables


def _protocol_text(cfg: Config) -> str:
    n = cfg.data.n_folds
    if len(cfg.eval_folds) == n:
        return (f"{n}-fold: each fold held out once, trained on the other {n - 1}; table values are the mean "
                f"over the {n} held-out folds")
    held = ", ".join(str(k) for k in cfg.eval_folds)
    return (f"reduced: held-out fold(s) {held} only (of {n}), each model trained on the other {n - 1} folds; "
            "table values are the mean over these held-out folds")


# What a weak-SED export serves (the outputs a model has of these; not the reconstruction or the raw
# class map), its attention hop and the note recorded in the export's metadata.
EXPORT_OUTPUTS = ("clip", "time_attention", "attention")
FRAME_SECONDS = 0.032
EXPORT_NOTE = ("clips are cut or zero-padded to 10 s (320,000 samples at 32 kHz) by the front-end; per-band "
               "standardisation with the training mixtures' statistics is inside; attention maps are "
               "(batch, classes, 311 frames), hop 32 ms")


def export_waveform_model(run_dir: Path):
    """Keras model: 32 kHz waveform [batch, samples] -> the run's EXPORT_OUTPUTS (2APAE: "clip" and
    "time_attention"; dilated CNN: "clip" and "attention"), with features, training-set
    standardisation and channel drop in the graph; from the run's model card."""
    import keras

    from tf_scenes.model_io import waveform_model

    wm, card = waveform_model(run_dir)
    keep = [k for k in EXPORT_OUTPUTS if k in wm.output]
    return keras.Model(wm.inputs[0], {k: wm.output[k] for k in keep}, name=f"{card['builder']}_waveform"), card


def export_2apae(run_dir: Path, out_dir: Path, metadata: dict) -> Path:
    """Export a 2APAE run as a SavedModel: waveform (32 kHz, float32 [batch, samples]; cut or
    zero-padded to 10 s) -> clip probabilities (batch, 41) and time attention (batch, 41, 311)."""
    from tf_scenes.datasets.fsd2018 import CLASSES
    from tf_scenes.export import export_saved_model

    model, card = export_waveform_model(run_dir)
    return export_saved_model(
        model, out_dir, sample_rate=card["sample_rate"],
        labels={"clip": list(CLASSES), "time_attention": list(CLASSES)},
        metadata={"family": "weak_sed", "model": "2apae", "run": str(run_dir), "frame_seconds": FRAME_SECONDS,
                  **metadata, "note": EXPORT_NOTE})
