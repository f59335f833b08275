"""The toy family's one model: a small CNN over log-mel frames."""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from tf_scenes.registry import register


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    n_mels: int = 32
    n_classes: int = 2
    width: float = 1.0


@register("toy_cnn", config=ToyConfig)
def build_toy_cnn(cfg: ToyConfig | None = None) -> keras.Model:
    cfg = cfg or ToyConfig()
    inputs = keras.Input((None, cfg.n_mels, 1), name="features")
    x = layers.Conv2D(max(1, int(8 * cfg.width)), 3, padding="same", activation="relu", name="toy_conv")(inputs)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(cfg.n_classes, activation="softmax", name="probs")(x), name="toy_cnn")
