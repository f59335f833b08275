"""Learning-rate schedules.

:class:`CosineWarmRestarts` is SGDR (Loshchilov & Hutter, ICLR 2017, Eq. 5) stepped per batch:

    lr(step) = min_lr + (max_lr - min_lr) / 2 * (1 + cos(pi * T_cur / T_i))

where ``T_cur`` is the number of epochs (fractional, ``step / steps_per_epoch``) since the last
restart and ``T_i = first_cycle_epochs * t_mul**i`` the length of cycle ``i``.  Cycle ``i`` starts at
epoch ``first_cycle_epochs * (t_mul**i - 1) / (t_mul - 1)`` (``first_cycle_epochs * i`` when
``t_mul == 1``).

- Two-stage ASC reference (Hu et al. 2021, Sec. 3.1; McDonnell & Gao's ``LR_WarmRestart``): SGD,
  ``max_lr=0.1, min_lr=1e-5, first_cycle_epochs=2, t_mul=2`` -> restarts at epochs 2, 6, 14, 30, 62,
  126 (0-based).  The reference's Keras 2 ``SGD(decay=1e-6)`` also divides the rate by
  ``1 + 1e-6 * step``: ``legacy_decay=1e-6`` reproduces it.
- DcaseNet (Jung et al. 2021, Sec. 3.3): Adam, ``max_lr=1e-3, min_lr=1e-6, first_cycle_epochs=80,
  t_mul=1`` with 500 iterations per epoch (PyTorch ``CosineAnnealingWarmRestarts`` stepped per
  iteration).

The schedule is a pure function of the optimizer's step counter, so restoring the optimizer's
``iterations`` on resume continues it exactly.
"""

from __future__ import annotations

import math

import keras
from keras import ops


def sgdr_lr(step: float, *, max_lr: float, min_lr: float, first_cycle_epochs: float, steps_per_epoch: float,
            t_mul: float = 2.0, legacy_decay: float = 0.0) -> float:
    """Plain-Python SGDR learning rate at ``step`` (reference implementation for tests and plots)."""
    epoch = step / steps_per_epoch
    if t_mul == 1.0:
        i = math.floor(epoch / first_cycle_epochs)
        start, length = i * first_cycle_epochs, first_cycle_epochs
    else:
        i = math.floor(math.log(1 + epoch * (t_mul - 1) / first_cycle_epochs, t_mul))
        # Guard the floor against rounding at exact restart points.
        while first_cycle_epochs * (t_mul ** (i + 1) - 1) / (t_mul - 1) <= epoch:
            i += 1
        while i > 0 and first_cycle_epochs * (t_mul ** i - 1) / (t_mul - 1) > epoch:
            i -= 1
        start = first_cycle_epochs * (t_mul ** i - 1) / (t_mul - 1)
        length = first_cycle_epochs * t_mul ** i
    lr = min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * (epoch - start) / length))
    return lr / (1 + legacy_decay * step)


@keras.saving.register_keras_serializable(package="tf_scenes")
class CosineWarmRestarts(keras.optimizers.schedules.LearningRateSchedule):
    """Cosine annealing with warm restarts (SGDR), evaluated per optimizer step.

    Args:
        max_lr: rate at the start of every cycle.
        min_lr: rate approached at the end of every cycle.
        first_cycle_epochs: length of the first cycle in epochs (may be fractional).
        steps_per_epoch: optimizer steps per epoch (batches per epoch).
        t_mul: cycle length multiplier (2: cycles 2, 4, 8, ... epochs; 1: constant cycles).
        legacy_decay: Keras 2 ``SGD(decay=...)`` factor applied on top: ``lr / (1 + decay * step)``.
    """

    def __init__(self, max_lr: float, min_lr: float, first_cycle_epochs: float, steps_per_epoch: int,
                 t_mul: float = 2.0, legacy_decay: float = 0.0, name: str | None = None):
        super().__init__()
        if not max_lr >= min_lr >= 0:
            raise ValueError(f"CosineWarmRestarts needs max_lr >= min_lr >= 0, got {max_lr}, {min_lr}")
        if first_cycle_epochs <= 0 or steps_per_epoch <= 0:
            raise ValueError("CosineWarmRestarts needs first_cycle_epochs > 0 and steps_per_epoch > 0, got "
                             f"{first_cycle_epochs}, {steps_per_epoch}")
        if t_mul < 1:
            raise ValueError(f"CosineWarmRestarts needs t_mul >= 1, got {t_mul}")
        self.max_lr = float(max_lr)
        self.min_lr = float(min_lr)
        self.first_cycle_epochs = float(first_cycle_epochs)
        self.steps_per_epoch = int(steps_per_epoch)
        self.t_mul = float(t_mul)
        self.legacy_decay = float(legacy_decay)
        self.name = name or "CosineWarmRestarts"

    def __call__(self, step):
        # float32 is exact for integer step counts below 2**24 (16.7 M steps); the cycle index is
        # corrected below so that restarts fall exactly on their step.
        step = ops.cast(step, "float32")
        t0 = self.first_cycle_epochs * self.steps_per_epoch  # first cycle in steps
        if self.t_mul == 1.0:
            i = ops.floor(step / t0)
            i = ops.where(i * t0 > step, i - 1, i)
            i = ops.where((i + 1) * t0 <= step, i + 1, i)
            start = i * t0
            length = ops.convert_to_tensor(t0, "float32")
        else:
            m = self.t_mul

            def cycle_start(k):
                return t0 * (ops.power(m, k) - 1.0) / (m - 1.0)

            i = ops.floor(ops.log(1.0 + step * (m - 1.0) / t0) / math.log(m))
            i = ops.maximum(i, 0.0)
            i = ops.where(cycle_start(i) > step, ops.maximum(i - 1.0, 0.0), i)
            i = ops.where(cycle_start(i + 1.0) <= step, i + 1.0, i)
            start = cycle_start(i)
            length = t0 * ops.power(m, i)
        frac = (step - start) / length
        lr = self.min_lr + 0.5 * (self.max_lr - self.min_lr) * (1.0 + ops.cos(math.pi * frac))
        if self.legacy_decay:
            lr = lr / (1.0 + self.legacy_decay * step)
        return lr

    def restart_epochs(self, n: int) -> list[float]:
        """Epochs (0-based, possibly fractional) at which the first ``n`` restarts happen."""
        out, start, length = [], 0.0, self.first_cycle_epochs
        for _ in range(n):
            start += length
            length *= self.t_mul
            out.append(start)
        return out

    def get_config(self):
        return {"max_lr": self.max_lr, "min_lr": self.min_lr, "first_cycle_epochs": self.first_cycle_epochs,
                "steps_per_epoch": self.steps_per_epoch, "t_mul": self.t_mul,
                "legacy_decay": self.legacy_decay, "name": self.name}
