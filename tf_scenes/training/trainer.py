"""A resumable ``fit``: per-epoch checkpoints that restore the model, the optimizer and the random
state exactly, best-epoch selection, history and TensorBoard logs in the run folder.

    set_determinism(cfg.seed)
    model = build(...); model.compile(optimizer=keras.optimizers.SGD(CosineWarmRestarts(...), 0.9), ...)
    result = fit(model, lambda k: make_train_dataset(..., epochs=E, initial_epoch=k),
                 epochs=E, steps_per_epoch=S, run_dir=run, val_data=val_ds, monitor="val_acc")

Run folder layout written here (see also :mod:`tf_scenes.runs`):

    checkpoints/last.weights.h5   model weights + optimizer variables (Keras ``save_weights`` of a
                                  compiled model) + a ``tf_scenes_trainer`` group holding the
                                  trainer state and the layers' random-seed states: the checkpoint
                                  describes itself
    checkpoints/state.json        the same trainer state, readable (epoch, best value, step, history)
    checkpoints/best.weights.h5   model weights (no optimizer) of the best epoch on ``monitor``
    history.csv                   one row per finished epoch (rewritten atomically each epoch)
    tb/                           TensorBoard logs

Every file is written under a temporary name and renamed into place.  ``last.weights.h5`` is the
authority on resume (its embedded state says which epoch it holds), so a crash between two renames
never pairs weights with the state of another epoch.  Resuming at epoch ``k`` reproduces an
uninterrupted run exactly when the training dataset is epoch-indexed
(:func:`tf_scenes.pipelines.train_data.make_train_dataset`) and ops are deterministic
(:func:`set_determinism`): tests/test_training.py checks bitwise-equal weights after a SIGKILL.

Not restored on resume: the internal state of ``extra_callbacks`` (e.g. EarlyStopping patience).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import h5py
import keras
import numpy as np
import tensorflow as tf

from ..errors import ConfigError, OutputDirError
from ..io_utils import atomic_path, atomic_write_json, atomic_write_text, dumps_json, ensure_writable_dir, loads_json
from .distribute import shard_by_data

log = logging.getLogger(__name__)

STATE_GROUP = "tf_scenes_trainer"
CHECKPOINT_DIR = "checkpoints"
LAST = "last.weights.h5"
BEST = "best.weights.h5"
STATE = "state.json"
HISTORY = "history.csv"


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras (``keras.utils.set_random_seed``) and make TF ops
    deterministic (``tf.config.experimental.enable_op_determinism``; slower on GPU).

    Call before building the model: layers draw their initial weights and dropout seeds from it.
    """
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()
    serial_inter_op()


def serial_inter_op() -> bool:
    """One inter-op thread on CPU-only machines, so that training is bit-reproducible there.

    Op determinism does not cover the CPU's op scheduling: when independent branches of a model
    (the two frequency paths of the two-stage ResNet, the raw-waveform pipelines, ...) run
    concurrently, their weight-gradient kernels share the intra-op thread pool and their sums come
    out in a schedule-dependent order (gradients differ by ~1e-7 and the runs drift apart).  With one
    inter-op thread the branches run one after the other: repeated runs are bit-identical; the
    quick-width ResNet step is ~10 % slower on 2 cores (each op still uses every core).

    Must run before TensorFlow's runtime starts (the CLI calls it first thing for its training
    commands).  Skipped, returning False, when a GPU or TPU is visible, when the user set
    ``TF_NUM_INTEROP_THREADS`` (their choice wins; ``0`` is TensorFlow's default pool), or when the
    runtime has already started with another setting (logged once).
    """
    if os.environ.get("TF_NUM_INTEROP_THREADS"):
        return False
    if tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"):
        return False
    if tf.config.threading.get_inter_op_parallelism_threads() == 1:
        return True
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        global _WARNED_INTER_OP
        if not _WARNED_INTER_OP:
            _WARNED_INTER_OP = True
            log.warning("TensorFlow started before serial_inter_op(): parallel model branches may make CPU "
                        "training differ in the last bits from run to run")
        return False
    return True


_WARNED_INTER_OP = False


# ----------------------------------------------------------------------------- checkpoint files


def _random_state_variables(model) -> list:
    """Variables that are model state but not weights: the layers' SeedGenerator states (dropout,
    noise).  Keras' ``save_weights`` leaves them out; without them a resumed run would replay the
    dropout masks of epoch 0."""
    weight_ids = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weight_ids]


def _optimizer_step(model) -> int:
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _build_optimizer(model) -> None:
    opt = model.optimizer
    if opt is None:
        raise ConfigError("fit() needs a compiled model (model.compile(optimizer=..., loss=...))")
    if not getattr(opt, "built", False):
        with model.distribute_strategy.scope():
            opt.build(model.trainable_variables)


def _save_weights(model, path: Path, include_optimizer: bool) -> None:
    if include_optimizer or model.optimizer is None:
        model.save_weights(str(path))
    else:
        # Keras' public save_weights always includes a built optimizer; best.weights.h5 is for
        # inference and fine-tuning, so leave the optimizer out (saving_lib is pinned with keras).
        from keras.src.saving import saving_lib

        saving_lib.save_weights_only(model, str(path), objects_to_skip=[model.optimizer])


def load_model_weights(model, path) -> None:
    """Load model weights from a trainer checkpoint (``last``/``best.weights.h5``) into ``model``,
    leaving its optimizer untouched."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if getattr(model, "optimizer", None) is None:
        model.load_weights(str(path))
        return
    from keras.src.saving import saving_lib

    saving_lib.load_weights_only(model, str(path), objects_to_skip=[model.optimizer])


def _write_checkpoint(model, path: Path, state: dict) -> None:
    """Atomically write last.weights.h5: weights + optimizer + embedded state + seed states."""
    with atomic_path(path, suffix=".weights.h5") as tmp:
        _save_weights(model, tmp, include_optimizer=True)
        with h5py.File(tmp, "a") as f:
            g = f.create_group(STATE_GROUP)
            g.attrs["state"] = dumps_json(state, default=_json_default)  # strict JSON; NaN noted under "nulls"
            seeds = g.create_group("seed_states")
            for i, v in enumerate(_random_state_variables(model)):
                d = seeds.create_dataset(str(i), data=keras.ops.convert_to_numpy(v))
                d.attrs["path"] = v.path


def read_checkpoint_state(path) -> dict | None:
    """The trainer state embedded in a ``last.weights.h5`` (None if the file has none)."""
    with h5py.File(path, "r") as f:
        if STATE_GROUP not in f:
            return None
        return loads_json(f[STATE_GROUP].attrs["state"])


def _restore_checkpoint(model, path: Path) -> dict:
    state = read_checkpoint_state(path)
    if state is None:
        raise ConfigError(f"{path}: not a tf-scenes trainer checkpoint (no {STATE_GROUP} group); "
                          f"delete it or use another run folder")
    _build_optimizer(model)
    try:
        model.load_weights(str(path))
    except ValueError as e:
        raise ConfigError(f"{path}: the checkpoint does not match this model: {e}") from e
    step = _optimizer_step(model)
    if step != state["optimizer_step"]:
        raise ConfigError(f"{path}: optimizer state not restored (step {step}, checkpoint has "
                          f"{state['optimizer_step']}); the optimizer differs from the one that was saved")
    seed_vars = _random_state_variables(model)
    with h5py.File(path, "r") as f:
        saved = f[STATE_GROUP]["seed_states"]
        if len(saved) != len(seed_vars):
            raise ConfigError(f"{path}: checkpoint has {len(saved)} random-seed states, the model has "
                              f"{len(seed_vars)}")
        for i, v in enumerate(seed_vars):
            v.assign(saved[str(i)][()])
    return state


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _history_csv(rows: list[dict]) -> str:
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


# ----------------------------------------------------------------------------- callbacks


class _CallableValidation(keras.callbacks.Callback):
    """Adds the metrics returned by ``fn(model)`` to the epoch logs."""

    def __init__(self, fn: Callable):
        super().__init__()
        self.fn = fn

    def on_epoch_end(self, epoch, logs=None):
        metrics = self.fn(self.model)
        if not isinstance(metrics, dict):
            raise TypeError(f"val_data callable must return a dict of metrics, got {type(metrics).__name__}")
        if logs is not None:
            logs.update({k: float(v) for k, v in metrics.items()})


class _Checkpointer(keras.callbacks.Callback):
    """Writes best/last checkpoints, state.json and history.csv at every epoch end."""

    def __init__(self, run_dir: Path, state: dict, monitor: str, mode: str, select: str):
        super().__init__()
        self.run_dir = run_dir
        self.ckpt_dir = run_dir / CHECKPOINT_DIR
        self.state = state
        self.monitor, self.mode, self.select = monitor, mode, select
        self._t0 = None
        self._lr = None

    def _better(self, value: float) -> bool:
        best = self.state["best_value"]
        if value is None or math.isnan(value):
            return False
        if best is None:
            return True
        return value > best if self.mode == "max" else value < best

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.monotonic()
        try:  # the rate of the epoch's first step
            self._lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        except (AttributeError, TypeError, ValueError):
            self._lr = None

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        row = {"epoch": int(epoch)}
        row.update({k: float(v) for k, v in logs.items()})
        if self._lr is not None:
            row["lr"] = self._lr
        row["time_s"] = round(time.monotonic() - self._t0, 3) if self._t0 is not None else None
        value = logs.get(self.monitor)
        if self.select == "best" and value is None:
            raise ConfigError(f"monitor {self.monitor!r} is not among the epoch metrics "
                              f"({', '.join(sorted(logs)) or 'none'}); pass val_data or another monitor")
        if value is not None and self._better(float(value)):
            # Saved whatever `select` says, so that best_epoch always names the weights in BEST.
            with atomic_path(self.ckpt_dir / BEST, suffix=".weights.h5") as tmp:
                _save_weights(self.model, tmp, include_optimizer=False)
            self.state["best_value"], self.state["best_epoch"] = float(value), int(epoch)
        self.state["epoch"] = int(epoch)
        self.state["optimizer_step"] = _optimizer_step(self.model)
        self.state["history"].append(row)
        self.state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        # Order: last.weights.h5 (the authority) first, then the readable mirrors.
        _write_checkpoint(self.model, self.ckpt_dir / LAST, self.state)
        atomic_write_json(self.ckpt_dir / STATE, self.state)
        atomic_write_text(self.run_dir / HISTORY, _history_csv(self.state["history"]))


class _EpochLog(keras.callbacks.Callback):
    """One log line per finished epoch (the row _Checkpointer just saved): the plain, timestamped
    progress report used instead of Keras' progress bar when the output is not a terminal."""

    def __init__(self, state: dict, epochs: int, level: int):
        super().__init__()
        self.state, self.epochs, self.level = state, int(epochs), level

    def on_epoch_end(self, epoch, logs=None):
        if not log.isEnabledFor(self.level) or not self.state["history"]:
            return
        row = self.state["history"][-1]
        values = " ".join(f"{k}={v:.4g}" for k, v in row.items()
                          if k not in ("epoch", "time_s") and isinstance(v, float))
        seconds = f" ({row['time_s']:.1f} s)" if row.get("time_s") is not None else ""
        log.log(self.level, "epoch %d/%d: %s%s", int(epoch) + 1, self.epochs, values, seconds)


def progress_mode(verbose) -> tuple[int, int | None]:
    """(Keras ``verbose``, logging level of the per-epoch line or None) for fit's ``verbose``.

    "auto" and 1: Keras' progress bar when stdout is a terminal; otherwise (a log file, a pipe) no
    bar, whose carriage returns and colour codes would fill the file, but one INFO line per epoch.
    2: the INFO line per epoch. 0: nothing at INFO (the line at DEBUG, shown by `tf-scenes -v`).
    """
    if verbose in ("auto", 1):
        interactive = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
        return (1, None) if interactive else (0, logging.INFO)
    if verbose == 2:
        return 0, logging.INFO
    if verbose == 0:
        return 0, logging.DEBUG
    raise ConfigError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")


# ----------------------------------------------------------------------------- fit


def _tensorboard_available(optional: bool) -> bool:
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        return True
    if not optional:
        raise ConfigError("tensorboard=True but the tensorboard package is not installed "
                          "(pip install tensorboard, or pass tensorboard=False)")
    log.warning("the tensorboard package is not installed: no TensorBoard logs (history.csv is written)")
    return False


def _check_cardinality(ds, expected: int, initial_epoch, epochs, steps_per_epoch) -> None:
    """A dataset of known length must hold exactly the batches fit() will draw: otherwise epochs
    would not line up with the dataset's epochs and a resumed run would see other batches."""
    card = int(ds.cardinality()) if isinstance(ds, tf.data.Dataset) else -1
    if card >= 0 and card != expected:
        raise ConfigError(f"the training dataset for epochs {initial_epoch}..{int(epochs) - 1} has {card} batches, "
                          f"but fit() expects {expected} (steps_per_epoch={steps_per_epoch}); give the dataset "
                          f"the same epochs and steps per epoch (make_train_dataset(..., steps_per_epoch=...))")


def without_autotune_model(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` with tf.data's autotuning model switched off (``Options.autotune.enabled = False``).

    Why: destroying a tf.data iterator waits for its autotuning thread, and in TensorFlow 2.21 that
    thread sometimes sleeps out its whole optimisation period (doubling up to 60 s) instead of
    waking on cancellation.  Keras destroys the training iterator when ``fit`` returns, so runs
    stalled there: on 2 cores of an Intel Xeon, 9-55 s after the last epoch in 5 of the 12 weak-SED
    quick runs (2.4 min), 4-58 s in 6 of the 9 two-stage runs (2.6 min), 9-16 s in 6 of the 10
    raw-waveform runs; ``gdb`` showed the main thread in ``RootDataset::Iterator::~Iterator``
    waiting for the thread parked in ``Model::OptimizeLoop``.  With the model off, the 8-epoch
    raw-waveform study (``--set train.epochs=8 --set transfer.epochs=4``) went from 12-16 s to
    0-1 s between runs, with the same validation numbers at every epoch and the same epoch times
    (3.2-3.4 s).  ``num_parallel_calls=AUTOTUNE`` then falls back to TensorFlow's fixed default
    parallelism and ``prefetch(AUTOTUNE)`` to its own buffer tuning; element order and values never
    depend on either (the pipelines are deterministic).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def _remove_stale_temporaries(ckpt_dir: Path) -> None:
    """Delete temporary files left by a process killed while writing (atomic_path names them
    ``.<final name>.<random><suffix>``)."""
    stale = [t for name in (LAST, BEST, STATE) for t in ckpt_dir.glob(f".{name}.*")]
    stale += list(ckpt_dir.parent.glob(f".{HISTORY}.*"))
    for tmp in stale:
        log.info("removing %s left by an interrupted write", tmp)
        tmp.unlink(missing_ok=True)


def _initial_state(epochs, monitor, mode, select) -> dict:
    return {"format": 1, "epoch": -1, "epochs": int(epochs), "optimizer_step": 0, "monitor": monitor,
            "mode": mode, "select": select, "best_value": None, "best_epoch": None, "history": []}


def fit(model, make_train_ds: Callable[[int], tf.data.Dataset], *, epochs: int, steps_per_epoch: int, run_dir,
        val_data=None, monitor: str = "val_acc", mode: str = "max", select: str = "best",
        extra_callbacks: Iterable[keras.callbacks.Callback] = (), verbose="auto",
        tensorboard: bool | str = "auto") -> dict:
    """Train ``model`` (already compiled) for ``epochs`` epochs, resuming from ``run_dir`` if it holds
    a checkpoint.

    Args:
        model: a compiled Keras model (built under the strategy scope when distributing).
        make_train_ds: ``initial_epoch -> tf.data.Dataset`` yielding the batches of epochs
            ``initial_epoch .. epochs-1`` in order (``steps_per_epoch`` batches each).
        epochs: total number of epochs (not the number still to run).
        steps_per_epoch: batches per epoch.
        run_dir: run folder; checkpoints under ``run_dir/checkpoints``.
        val_data: None, a ``tf.data.Dataset`` evaluated by Keras after each epoch (metrics get the
            ``val_`` prefix), or a callable ``model -> dict`` whose entries are added to the epoch
            logs as given (name them ``val_...``).
        monitor, mode: metric and direction ("max"/"min") for best-epoch selection.
        select: "best" (load ``best.weights.h5`` into the model at the end; ``monitor`` must be
            logged every epoch) or "last" (keep the last epoch's weights; ``best.weights.h5`` is
            still written when ``monitor`` is logged).
        extra_callbacks: more Keras callbacks; they run after validation and before checkpointing,
            so metrics they add to the logs are saved in the history.
        verbose: "auto" or 1: Keras' progress bar on a terminal, one log line per epoch when stdout
            is redirected; 2: one log line per epoch; 0: silent (the line at DEBUG level). See
            :func:`progress_mode`.
        tensorboard: write TensorBoard logs to ``run_dir/tb``: True, False, or "auto" (when the
            tensorboard package is installed; TensorFlow 2.21 does not install it).

    Returns:
        dict with ``initial_epoch``, ``resumed``, ``epochs``, ``last_epoch``, ``best_epoch``,
        ``best_value``, ``monitor``, ``select``, ``weights`` (path of the selected weights, now
        loaded in ``model``), ``history`` (list of per-epoch dicts over all attempts) and ``final``
        (the last epoch's metrics).
    """
    if select not in ("best", "last"):
        raise ConfigError(f"select must be 'best' or 'last', got {select!r}")
    if mode not in ("max", "min"):
        raise ConfigError(f"mode must be 'max' or 'min', got {mode!r}")
    if int(epochs) < 1 or int(steps_per_epoch) < 1:
        raise ConfigError(f"epochs and steps_per_epoch must be >= 1, got {epochs}, {steps_per_epoch}")
    keras_verbose, epoch_log_level = progress_mode(verbose)
    run_dir = Path(run_dir)
    ckpt_dir = ensure_writable_dir(run_dir / CHECKPOINT_DIR)
    last, state_file = ckpt_dir / LAST, ckpt_dir / STATE
    _remove_stale_temporaries(ckpt_dir)

    state = _initial_state(epochs, monitor, mode, select)
    resumed = False
    if last.exists():
        saved = _restore_checkpoint(model, last)
        if state_file.exists():
            mirror = json.loads(state_file.read_text())
            if mirror.get("epoch") != saved["epoch"]:
                log.warning("%s says epoch %s but %s holds epoch %s (interrupted while saving); using the latter",
                            state_file, mirror.get("epoch"), last, saved["epoch"])
        for key in ("monitor", "mode"):
            if saved.get(key) != state[key]:
                raise ConfigError(f"{last}: the run was started with {key}={saved.get(key)!r}, now {state[key]!r}; "
                                  f"use a new run folder")
        saved["epochs"] = int(epochs)
        saved["select"] = select
        state = saved
        resumed = True
        log.info("resuming from epoch %d (%s)", state["epoch"] + 1, run_dir)
    elif state_file.exists():
        raise OutputDirError(f"{state_file} exists but {last} is missing: the checkpoint folder is "
                             f"incomplete; delete {ckpt_dir} to start over")
    else:
        _build_optimizer(model)
    initial_epoch = state["epoch"] + 1

    if initial_epoch < epochs:
        callbacks: list = []
        if callable(val_data) and not isinstance(val_data, tf.data.Dataset):
            callbacks.append(_CallableValidation(val_data))
            validation_data = None
        else:
            validation_data = shard_by_data(val_data) if isinstance(val_data, tf.data.Dataset) else val_data
        callbacks.extend(extra_callbacks)
        callbacks.append(_Checkpointer(run_dir, state, monitor, mode, select))
        if epoch_log_level is not None:
            callbacks.append(_EpochLog(state, epochs, epoch_log_level))
        if tensorboard and _tensorboard_available(tensorboard == "auto"):
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tb"), write_graph=False))
        train_ds = make_train_ds(initial_epoch)
        if isinstance(train_ds, tf.data.Dataset):
            # several workers: each keeps its slice of every global batch (see shard_by_data)
            train_ds = without_autotune_model(shard_by_data(train_ds))
        _check_cardinality(train_ds, (int(epochs) - initial_epoch) * int(steps_per_epoch), initial_epoch,
                           epochs, steps_per_epoch)
        model.fit(train_ds, epochs=int(epochs), initial_epoch=initial_epoch,
                  steps_per_epoch=int(steps_per_epoch), validation_data=validation_data,
                  callbacks=callbacks, verbose=keras_verbose, shuffle=False)
    else:
        log.info("%s already holds %d finished epochs; nothing to train", run_dir, state["epoch"] + 1)

    weights = last
    if select == "best" and state["best_epoch"] is not None and (ckpt_dir / BEST).exists():
        weights = ckpt_dir / BEST
        if state["best_epoch"] != state["epoch"]:
            load_model_weights(model, weights)
    return {"initial_epoch": initial_epoch, "resumed": resumed, "epochs": int(epochs),
            "last_epoch": state["epoch"], "best_epoch": state["best_epoch"], "best_value": state["best_value"],
            "monitor": monitor, "select": select, "weights": str(weights), "history": state["history"],
            "final": state["history"][-1] if state["history"] else {}}
