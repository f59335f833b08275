"""Shared training machinery: resumable fit, learning-rate schedules, distribution helpers.

    from tf_scenes.training import fit, set_determinism, CosineWarmRestarts, get_strategy

Submodules: :mod:`.trainer` (fit, set_determinism, checkpoints), :mod:`.schedules`
(CosineWarmRestarts, sgdr_lr), :mod:`.distribute` (get_strategy, configure_precision, split_cpu),
:mod:`.init` (set_prior_bias: output bias at the label prior).
Names are imported lazily so that ``import tf_scenes.training`` does not import TensorFlow.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "fit": "trainer",
    "set_determinism": "trainer",
    "load_model_weights": "trainer",
    "read_checkpoint_state": "trainer",
    "CosineWarmRestarts": "schedules",
    "sgdr_lr": "schedules",
    "get_strategy": "distribute",
    "configure_precision": "distribute",
    "split_cpu": "distribute",
    "prior_logits": "init",
    "set_prior_bias": "init",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
