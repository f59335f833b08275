"""Training pieces of the weak-SED study (Deshmukh et al., Interspeech 2021; the authors' main.py
and train_helper.py, https://github.com/soham97/MTL_Weakly_labelled_audio_data).

* :func:`standardize` (TensorFlow) / :func:`standardize_array` (numpy): per-band z-score with
  training statistics, dropping the channel axis: ``(..., frames, mels, 1) -> (..., frames, mels)``,
  the models' input.
* :func:`inputs_and_targets`: ``(x, y) -> (x_std, {"clip": y, "reconstruction": x_std})``, the
  targets of ``weak_sed_loss`` (the reconstruction target is the standardised input).
* :func:`plateau_replay` / :class:`ResumablePlateau`: ReduceLROnPlateau with PyTorch's semantics
  (the authors' code is PyTorch: mode "max", factor 0.1, patience 3, relative threshold 1e-4; the
  rate drops once *more than* ``patience`` epochs in a row fail to improve the best value).  Its
  state (best value, bad-epoch count) is a pure function of the monitored values so far, so a
  resumed run recomputes it from the checkpoint's history (the trainer restores the optimizer,
  and with it the current rate): the schedule of a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import keras
import numpy as np


log = logging.getLogger(__name__)


def standardize(x, mean, std, std_floor: float = 1e-8):
    """``(x - mean) / max(std, floor)`` per mel band, channel axis dropped (TensorFlow ops).

    x: ``(..., frames, mels, 1)``; mean, std: ``(mels, 1)`` (``band_statistics``).
    Returns ``(..., frames, mels)`` float32, the same values as ``band_normalization(mean, std)``.
    """
    import tensorflow as tf

    mean = tf.constant(np.asarray(mean, np.float32))
    std = tf.constant(np.maximum(np.asarray(std, np.float32), std_floor))
    z = (tf.cast(x, tf.float32) - mean) / std  # (..., frames, mels, 1)
    return tf.squeeze(z, axis=-1)  # (..., frames, mels)


def standardize_array(x, mean, std, std_floor: float = 1e-8) -> np.ndarray:
    """numpy twin of :func:`standardize` (the same float32 operations, the same values)."""
    mean = np.asarray(mean, np.float32)
    std = np.maximum(np.asarray(std, np.float32), np.float32(std_floor))
    z = (np.asarray(x, np.float32) - mean) / std  # (..., frames, mels, 1)
    return z[..., 0]  # (..., frames, mels)


def inputs_and_targets(mean, std, reconstruction: bool):
    """A tf.data map ``(x, y) -> (x_std, targets)`` for ``weak_sed_loss``.

    targets: ``{"clip": y}``, plus ``"reconstruction": x_std`` (the standardised input, the
    reconstruction target of the paper's loss) when the model has a decoder.
    """

    def fn(x, y):
        z = standardize(x, mean, std)
        targets = {"clip": y}
        if reconstruction:
            targets["reconstruction"] = z
        return z, targets

    return fn


# ----------------------------------------------------------------------------------------------
# ReduceLROnPlateau (PyTorch semantics), resumable


@dataclass
class PlateauState:
    """State of the plateau schedule after some epochs: the current rate, the best monitored
    value, the number of bad epochs in a row, and the epochs whose end lowered the rate."""

    lr: float
    best: float = -math.inf
    bad_epochs: int = 0
    epochs_seen: int = 0
    reductions: tuple[int, ...] = ()


def plateau_step(state: PlateauState, value: float, *, factor: float = 0.1, patience: int = 3,
                 threshold: float = 1e-4, min_lr: float = 0.0, eps: float = 1e-8) -> PlateauState:
    """One epoch of ``torch.optim.lr_scheduler.ReduceLROnPlateau(mode="max", threshold_mode="rel",
    cooldown=0)``: better means ``value > best * (1 + threshold)`` (NaN is never better); after
    more than ``patience`` bad epochs in a row the rate is multiplied by ``factor`` (not below
    ``min_lr``, and only if it changes by more than ``eps``) and the count restarts."""
    value = float(value)
    better = not math.isnan(value) and value > state.best * (1.0 + threshold)  # best -inf: any number
    best, bad = (value, 0) if better else (state.best, state.bad_epochs + 1)
    lr, reductions = state.lr, state.reductions
    if bad > patience:
        new_lr = max(lr * factor, min_lr)
        if lr - new_lr > eps:
            lr, reductions = new_lr, reductions + (state.epochs_seen,)
        bad = 0
    return PlateauState(lr=lr, best=best, bad_epochs=bad, epochs_seen=state.epochs_seen + 1,
                        reductions=reductions)


def plateau_replay(values: Iterable[float], lr: float, **kwargs) -> PlateauState:
    """The plateau state after the monitored values of the epochs so far, from initial rate ``lr``."""
    state = PlateauState(lr=float(lr))
    for v in values:
        state = plateau_step(state, v, **kwargs)
    return state


class ResumablePlateau(keras.callbacks.Callback):
    """Keras callback: ReduceLROnPlateau (PyTorch semantics, see :func:`plateau_step`) on a metric
    that the trainer's validation callable puts in the epoch logs (``val_micro_ap``).

    ``history``: the per-epoch rows of a run being resumed (``fit``'s checkpoint state); the
    schedule's state is recomputed from their ``monitor`` values, and the optimizer's rate is set
    to the replayed one.  At each epoch end the callback adds ``lr_next`` (the rate of the next
    epoch), ``plateau_best`` and ``plateau_bad_epochs`` to the logs, so history.csv shows the
    schedule.  Put it in ``fit(..., extra_callbacks=[...])``: it runs after validation.
    """

    def __init__(self, monitor: str, lr: float, *, factor: float = 0.1, patience: int = 3,
                 threshold: float = 1e-4, min_lr: float = 0.0, history: Sequence[Mapping] = ()):
        super().__init__()
        self.monitor = monitor
        self.kwargs = dict(factor=float(factor), patience=int(patience), threshold=float(threshold),
                           min_lr=float(min_lr))
        values = []
        for i, row in enumerate(history):
            if monitor not in row:
                raise ValueError(f"history row {i} has no {monitor!r}: cannot replay the plateau schedule")
            values.append(float(row[monitor]))
        self.state = plateau_replay(values, lr, **self.kwargs)
        self.resumed = bool(values)

    def on_train_begin(self, logs=None):
        if self.resumed:
            current = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            if not math.isclose(current, self.state.lr, rel_tol=1e-5):
                log.warning("optimizer learning rate %.3g differs from the replayed plateau schedule's %.3g; "
                            "using the latter", current, self.state.lr)
        self.model.optimizer.learning_rate = self.state.lr

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        value = logs.get(self.monitor)
        if value is None:
            raise ValueError(f"ResumablePlateau: {self.monitor!r} is not in the epoch logs ({', '.join(sorted(logs))})")
        old = self.state.lr
        self.state = plateau_step(self.state, float(value), **self.kwargs)
        if self.state.lr != old:
            log.info("epoch %d: %s did not improve for %d epochs: learning rate %.3g -> %.3g", epoch,
                     self.monitor, self.kwargs["patience"] + 1, old, self.state.lr)
            self.model.optimizer.learning_rate = self.state.lr
        logs["lr_next"] = self.state.lr
        logs["plateau_best"] = self.state.best
        logs["plateau_bad_epochs"] = float(self.state.bad_epochs)
