"""DcaseNet v1 / v2 / v3: one network for acoustic scene classification (ASC), audio tagging (TAG)
and sound event detection (SED) (Jung et al., "DcaseNet: an integrated pretrained deep neural
network for detecting and classifying acoustic scenes and events", ICASSP 2021, Fig. 1).

Input: log-mel features ``(batch, frames, n_mels, 1)``, time-major (the front-end's layout; the
authors' PyTorch code uses ``(batch, 1, mel, time)``, so every (mel, time) size of the paper and
code appears here as (time, mel)).  Output: a dict

* ``"scene"``: ASC logits ``(batch, n_scenes)``,
* ``"tags"``: TAG logits ``(batch, n_tags)``,
* ``"frames"``: SED activity probabilities (sigmoid) ``(batch, frames_out, n_events)``.

Frame relation (all versions).  The trunk pools time by 2 * 2 * 2 * 5 = 40 with floor ("valid")
pooling, so one trunk step covers 40 feature frames = 0.8 s at the 20 ms hop, and
``steps = frames // 40`` (floor of nested floors is the floor of the product).  Each step is
repeated 8 times (``UpSampling1D(8)``, the code's ``repeat_interleave``) to give 100 ms SED frames:
``frames_out = (frames // 40) * 8``.  A 5 s crop has 251 feature frames (1 + 120000 // 480, centred
STFT) -> 6 steps covering the first 240 frames (4.8 s) -> 48 output frames, while its 100 ms
labels have 50: :func:`sed_loss` trims both to the shorter length, as the reference code's loss
does.  A 60 s clip (3000 frames) gives 75 steps -> 600 frames, exactly its 600 label frames.
Inputs need at least 40 frames (the TAG evaluation tiles short clips to >= 40 frames).

DcaseNet-v3 (the released model; reproduced layer for layer from the authors' code):

1. ConvBlock = 2 x [Conv 3x3 'same', no bias -> BN -> ReLU] -> AvgPool.  Trunk: ConvBlocks
   1->64, 64->128, 128->256, each with AvgPool 2x2.
2. Two parallel ConvBlocks 256->256 (``block4_1`` common, ``block4_2`` ASC-specific) with AvgPool
   (time 5, mel 2): x1, x2.
3. ASC head on x2: 3 SE-ResNet basic blocks of 384 channels (the first with stride 2, a 1x1
   conv + BN shortcut and symmetric 1-pixel zero padding as PyTorch's ``padding=1``; SE: GAP ->
   Dense 24 no bias -> ReLU -> Dense 384 no bias -> sigmoid), GAP -> Dense 128 (linear) -> Dense 10.
4. concat [x1, x2] (512 ch) -> mean over mel -> ``(batch, steps, 512)`` -> two parallel BiGRUs of
   128 units per direction: ``gru_1`` (common), ``gru_2`` (SED-specific).
5. SED head: gru_2 -> Dense 14 -> sigmoid -> repeat x8 along time.
6. TAG head: concat [gru_1, gru_2] -> mean over time -> Dense 1024 -> ReLU -> Dropout 0.2 ->
   Dense 1024 -> ReLU -> Dropout 0.1 -> Dense 80.

Parameters of v3 (measured, see tests/test_dcasenet_models.py): 13,882,920 counting weights, GRU
biases and BN gamma/beta, i.e. the PyTorch count of the paper and code (Keras GRU with
``reset_after=True`` has the same two bias vectors as PyTorch's GRU); Keras's own total
(``model.count_params()``), which adds BN moving mean/variance, is 13,892,136.

DcaseNet-v1 and v2 are not released; they are built from the paper's Fig. 1 description with the
choices below (our counts next to the paper's):

* v1 ("adult perception": events first, then scenes and tags), 8,833,064 parameters
  (paper 8.7 M): the CRNN of Cao et al. -- ConvBlocks 64, 128, 256, 512 -- the first three with
  AvgPool 2x2, the fourth with AvgPool (time 5, mel 2) so the SED frame relation above holds
  (pure 2x2 pooling would give 320 ms steps, not an integer number of 100 ms frames; the count is
  unaffected) -- mean over mel -> one BiGRU of 256 units per direction ("256x2") -> SED head
  (Dense 14 -> sigmoid -> x8) on the GRU output.  ASC and TAG sit on top of that SED path: ASC is
  one 1-D SE-ResNet basic block over time (512 -> 384 channels, kernel 3, stride 2, 1x1 conv + BN
  shortcut, SE reduction 16) -> GAP -> Dense 128 -> Dense 10; TAG is mean over time -> the
  Dense block (1024, 1024, 80).
  Breakdown: trunk 4,686,144; BiGRU 1,182,720; SED dense 7,182; ASC 1,300,106; TAG 1,656,912.
* v2 ("baby learning"), 8,862,504 parameters
  (paper 8.9 M): ASC branches off after ConvBlock 2 (128 channels, time/4, mel/4): one 2-D
  SE-ResNet basic block 128 -> 256 (stride 2, 1x1 conv + BN shortcut) -> GAP -> Dense 128 ->
  Dense 10.  The main path continues with ConvBlocks 256 (AvgPool 2x2) and 512 (AvgPool time 5,
  mel 2) -> mean over mel -> one BiGRU of 128 units per direction, which feeds SED and TAG in
  parallel, each through the same kind of Dense block (FC 1024 -> ReLU -> Dropout 0.2 -> FC 1024
  -> ReLU -> Dropout 0.1 -> output): SED per step (-> 14 -> sigmoid -> x8), TAG after the mean
  over time (-> 80).
  Breakdown: ConvBlocks 37,696 / 221,696 / 885,760 / 3,540,992; ASC 961,418; BiGRU 493,056;
  SED block 1,327,118; TAG block 1,394,768.

Initialisation (models/DcaseNet.py of the authors' code, https://github.com/Jungjee/DcaseNet):
he_uniform for conv and dense kernels, zero biases, BN gamma ~ N(1, 0.02), beta 0 (applied to every
BN here); GRUs keep Keras defaults (glorot-uniform input kernel, orthogonal recurrent kernel, zero
biases).  BN momentum 0.9 / epsilon 1e-5 are PyTorch's 0.1 / 1e-5.

Multi-task training: :func:`build_task_models` returns per-task models sharing one set of layers,
so each task's batch runs only the layers its outputs depend on (the code's
``forward(x, mode=[task])``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import keras
import numpy as np
from keras import layers, ops

from tf_scenes.errors import ConfigError
from tf_scenes.registry import register

TIME_POOL = 40  # feature frames per trunk step (2 * 2 * 2 * 5)
OUTPUT_KEYS = {"asc": "scene", "tag": "tags", "sed": "frames"}


@dataclass(frozen=True)
class DcaseNetConfig:
    """DcaseNet hyper-parameters; ``VARIANTS`` holds the three published versions.

    ``width`` scales every hidden width (conv channels, ASC channels and code, GRU units, Dense
    block units) for cheap CPU runs; 1.0 is the paper.  Output sizes never scale.
    """

    version: Literal["v1", "v2", "v3"] = "v3"
    n_mels: int = 128
    n_scenes: int = 10
    n_tags: int = 80
    n_events: int = 14
    gru_units: int = 128          # per direction
    asc_channels: int = 384       # SE-ResNet blocks of the ASC head
    asc_blocks: int = 3
    asc_code: int = 128           # linear embedding before the scene logits
    se_reduction: int = 16
    dense_units: int = 1024       # hidden units of the Dense block (TAG; v2 also SED)
    dropout: tuple[float, float] = (0.2, 0.1)
    sed_repeat: int = 8           # 0.8 s steps -> 100 ms frames
    width: float = 1.0
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5

    def __post_init__(self):
        if self.version not in ("v1", "v2", "v3"):
            raise ConfigError(f"DcaseNetConfig.version: {self.version!r} is not one of ['v1', 'v2', 'v3']")
        for name in ("n_mels", "n_scenes", "n_tags", "n_events", "gru_units", "asc_channels",
                     "asc_blocks", "asc_code", "se_reduction", "dense_units", "sed_repeat"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"DcaseNetConfig.{name}: expected a positive integer, got {value!r}")
        if self.n_mels % 16:
            raise ConfigError(f"DcaseNetConfig.n_mels: {self.n_mels} is not divisible by 16 "
                              f"(four 2x mel poolings)")
        if not self.width > 0:
            raise ConfigError(f"DcaseNetConfig.width: expected > 0, got {self.width!r}")
        if len(self.dropout) != 2 or not all(0.0 <= p < 1.0 for p in self.dropout):
            raise ConfigError(f"DcaseNetConfig.dropout: expected two rates in [0, 1), got {self.dropout!r}")


VARIANTS = {
    "v1": DcaseNetConfig(version="v1", gru_units=256, asc_channels=384, asc_blocks=1),
    "v2": DcaseNetConfig(version="v2", gru_units=128, asc_channels=256, asc_blocks=1),
    "v3": DcaseNetConfig(version="v3"),
}


# ----------------------------------------------------------------------------------------------
# Blocks (tensor -> tensor, with a name prefix)
# ----------------------------------------------------------------------------------------------

def _scaled(cfg: DcaseNetConfig, units: int) -> int:
    return max(1, int(round(units * cfg.width)))


def _bn(cfg: DcaseNetConfig, name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(
        momentum=cfg.bn_momentum, epsilon=cfg.bn_epsilon,
        gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02), name=name)


def _dense(units: int, name: str, activation=None, use_bias: bool = True) -> layers.Dense:
    return layers.Dense(units, activation=activation, use_bias=use_bias,
                        kernel_initializer="he_uniform", name=name)


def conv_block(x, channels: int, pool: tuple[int, int], cfg: DcaseNetConfig, name: str):
    """2 x [Conv 3x3 no bias -> BN -> ReLU] -> AvgPool(pool); ``pool`` is (time, mel)."""
    for i in (1, 2):
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False, kernel_initializer="he_uniform",
                          name=f"{name}_conv{i}")(x)
        x = _bn(cfg, f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return layers.AveragePooling2D(pool, name=f"{name}_pool")(x)  # (batch, time/pt, mel/pm, channels)


def se_basic_block(x, channels: int, stride: int, cfg: DcaseNetConfig, name: str, rank: int = 2):
    """SE-ResNet basic block (Hu et al. 2018) as in the DcaseNet code, 2-D or 1-D (``rank``).

    conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN -> SE -> + shortcut -> ReLU.  The shortcut is a
    1x1 conv (stride) + BN when the stride or the channel count changes, else the identity.
    """
    conv = layers.Conv2D if rank == 2 else layers.Conv1D
    pad = layers.ZeroPadding2D if rank == 2 else layers.ZeroPadding1D
    gap = layers.GlobalAveragePooling2D if rank == 2 else layers.GlobalAveragePooling1D
    conv_kw = dict(use_bias=False, kernel_initializer="he_uniform")

    if stride != 1 or x.shape[-1] != channels:
        shortcut = conv(channels, 1, strides=stride, padding="valid", name=f"{name}_short_conv", **conv_kw)(x)
        shortcut = _bn(cfg, f"{name}_short_bn")(shortcut)
    else:
        shortcut = x
    if stride == 1:
        y = conv(channels, 3, padding="same", name=f"{name}_conv1", **conv_kw)(x)
    else:
        # PyTorch's padding=1 pads both sides; Keras 'same' with stride 2 would pad only the end.
        y = pad(1, name=f"{name}_pad")(x)
        y = conv(channels, 3, strides=stride, padding="valid", name=f"{name}_conv1", **conv_kw)(y)
    y = _bn(cfg, f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = conv(channels, 3, padding="same", name=f"{name}_conv2", **conv_kw)(y)
    y = _bn(cfg, f"{name}_bn2")(y)

    s = gap(keepdims=True, name=f"{name}_se_pool")(y)  # (batch, 1, [1,] channels)
    s = _dense(max(1, channels // cfg.se_reduction), f"{name}_se_fc1", "relu", use_bias=False)(s)
    s = _dense(channels, f"{name}_se_fc2", "sigmoid", use_bias=False)(s)
    y = layers.Multiply(name=f"{name}_se_scale")([y, s])

    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def asc_head(x, cfg: DcaseNetConfig, rank: int = 2):
    """SE-ResNet blocks (first stride 2) -> GAP -> Dense code (linear) -> scene logits."""
    channels = _scaled(cfg, cfg.asc_channels)
    for i in range(cfg.asc_blocks):
        x = se_basic_block(x, channels, 2 if i == 0 else 1, cfg, f"asc_res{i + 1}", rank=rank)
    gap = layers.GlobalAveragePooling2D if rank == 2 else layers.GlobalAveragePooling1D
    x = gap(name="asc_pool")(x)  # (batch, channels)
    x = _dense(_scaled(cfg, cfg.asc_code), "asc_code")(x)
    return _dense(cfg.n_scenes, "asc_fc")(x)  # (batch, n_scenes) logits


def dense_block(x, n_out: int, cfg: DcaseNetConfig, name: str):
    """Dense block of the DCASE 2019 Task 2 winner: FC -> ReLU -> Drop -> FC -> ReLU -> Drop -> FC.

    Works on (batch, features) or per step on (batch, steps, features).
    """
    units = _scaled(cfg, cfg.dense_units)
    x = _dense(units, f"{name}_fc1", "relu")(x)
    x = layers.Dropout(cfg.dropout[0], name=f"{name}_drop1")(x)
    x = _dense(units, f"{name}_fc2", "relu")(x)
    x = layers.Dropout(cfg.dropout[1], name=f"{name}_drop2")(x)
    return _dense(n_out, f"{name}_fc3")(x)


def mel_mean(x, name: str):
    """(batch, steps, mel, channels) -> (batch, steps, channels): exact mean over mel."""
    x = layers.AveragePooling2D((1, x.shape[2]), name=f"{name}_pool")(x)  # (batch, steps, 1, channels)
    return layers.Reshape((-1, x.shape[-1]), name=name)(x)  # (batch, steps, channels)


def bigru(x, units: int, name: str):
    """Bidirectional GRU, outputs concatenated [forward, backward]: (batch, steps, 2 * units)."""
    return layers.Bidirectional(layers.GRU(units, return_sequences=True, reset_after=True),
                                merge_mode="concat", name=name)(x)


def frames_head(probs, cfg: DcaseNetConfig):
    """(batch, steps, events) -> (batch, steps * sed_repeat, events), each step repeated."""
    return layers.UpSampling1D(cfg.sed_repeat, name="sed_repeat")(probs)


# ----------------------------------------------------------------------------------------------
# Graphs
# ----------------------------------------------------------------------------------------------

def _v3(x, cfg):
    c = lambda n: _scaled(cfg, n)  # noqa: E731
    x = conv_block(x, c(64), (2, 2), cfg, "block1")    # (batch, F/2, M/2, 64)
    x = conv_block(x, c(128), (2, 2), cfg, "block2")   # (batch, F/4, M/4, 128)
    x = conv_block(x, c(256), (2, 2), cfg, "block3")   # (batch, F/8, M/8, 256)
    x1 = conv_block(x, c(256), (5, 2), cfg, "block4_1")  # common: (batch, F/40, M/16, 256)
    x2 = conv_block(x, c(256), (5, 2), cfg, "block4_2")  # ASC-specific: same shape
    scene = asc_head(x2, cfg)
    h = layers.Concatenate(axis=-1, name="block4_concat")([x1, x2])  # (batch, F/40, M/16, 512)
    h = mel_mean(h, "mel_mean")                                      # (batch, F/40, 512)
    g1 = bigru(h, c(cfg.gru_units), "gru_1")                         # (batch, F/40, 256)
    g2 = bigru(h, c(cfg.gru_units), "gru_2")
    probs = _dense(cfg.n_events, "sed_fc", "sigmoid")(g2)            # (batch, F/40, 14)
    frames = frames_head(probs, cfg)                                 # (batch, F/40 * 8, 14)
    t = layers.Concatenate(axis=-1, name="gru_concat")([g1, g2])     # (batch, F/40, 512)
    t = layers.GlobalAveragePooling1D(name="time_mean")(t)           # (batch, 512)
    tags = dense_block(t, cfg.n_tags, cfg, "tag")
    return {"scene": scene, "tags": tags, "frames": frames}


def _cao_trunk(x, cfg, start: int = 1):
    c = lambda n: _scaled(cfg, n)  # noqa: E731
    plan = {1: (64, (2, 2)), 2: (128, (2, 2)), 3: (256, (2, 2)), 4: (512, (5, 2))}
    for i in range(start, 5):
        ch, pool = plan[i]
        x = conv_block(x, c(ch), pool, cfg, f"block{i}")
    return x  # after block 4: (batch, F/40, M/16, 512)


def _v1(x, cfg):
    x = _cao_trunk(x, cfg)
    h = mel_mean(x, "mel_mean")                                      # (batch, F/40, 512)
    g = bigru(h, _scaled(cfg, cfg.gru_units), "gru")                 # (batch, F/40, 512)
    probs = _dense(cfg.n_events, "sed_fc", "sigmoid")(g)             # (batch, F/40, 14)
    frames = frames_head(probs, cfg)                                 # (batch, F/40 * 8, 14)
    scene = asc_head(g, cfg, rank=1)                                 # 1-D blocks over time
    t = layers.GlobalAveragePooling1D(name="time_mean")(g)           # (batch, 512)
    tags = dense_block(t, cfg.n_tags, cfg, "tag")
    return {"scene": scene, "tags": tags, "frames": frames}


def _v2(x, cfg):
    c = lambda n: _scaled(cfg, n)  # noqa: E731
    x = conv_block(x, c(64), (2, 2), cfg, "block1")
    x = conv_block(x, c(128), (2, 2), cfg, "block2")                 # (batch, F/4, M/4, 128)
    scene = asc_head(x, cfg)                                         # ASC branches off here
    x = _cao_trunk(x, cfg, start=3)                                  # (batch, F/40, M/16, 512)
    h = mel_mean(x, "mel_mean")                                      # (batch, F/40, 512)
    g = bigru(h, c(cfg.gru_units), "gru")                            # (batch, F/40, 256)
    logits = dense_block(g, cfg.n_events, cfg, "sed")                # (batch, F/40, 14)
    probs = layers.Activation("sigmoid", name="sed_sigmoid")(logits)
    frames = frames_head(probs, cfg)                                 # (batch, F/40 * 8, 14)
    t = layers.GlobalAveragePooling1D(name="time_mean")(g)           # (batch, 256)
    tags = dense_block(t, cfg.n_tags, cfg, "tag")
    return {"scene": scene, "tags": tags, "frames": frames}


_GRAPHS = {"v1": _v1, "v2": _v2, "v3": _v3}


def _graph(cfg: DcaseNetConfig):
    if not isinstance(cfg, DcaseNetConfig):
        raise ConfigError(f"DcaseNet builders need a DcaseNetConfig, got {type(cfg).__name__}")
    inputs = keras.Input((None, cfg.n_mels, 1), name="features")  # (batch, frames, mels, 1)
    return inputs, _GRAPHS[cfg.version](inputs, cfg)


def build_dcasenet(cfg: DcaseNetConfig) -> keras.Model:
    """Joint DcaseNet model: features -> {"scene", "tags", "frames"} (module docstring)."""
    inputs, outputs = _graph(cfg)
    return keras.Model(inputs, outputs, name=f"dcasenet_{cfg.version}")


def build_task_models(cfg: DcaseNetConfig) -> dict[str, keras.Model]:
    """Per-task models sharing ONE set of layers and weights (the code's ``mode=[task]``).

    Returns ``{"asc": .., "tag": .., "sed": .., "joint": ..}``; the task models output a dict
    with their one key (``"scene"``, ``"tags"``, ``"frames"``) and contain only the layers that
    output depends on (e.g. v3's ASC model runs the trunk, ``block4_2`` and the ASC head; its SED
    model skips ``gru_1``), so each task's batch runs only its own forward pass.  Training any of
    them updates the weights of all.
    """
    inputs, outputs = _graph(cfg)
    models = {task: keras.Model(inputs, {key: outputs[key]}, name=f"dcasenet_{cfg.version}_{task}")
              for task, key in OUTPUT_KEYS.items()}
    models["joint"] = keras.Model(inputs, outputs, name=f"dcasenet_{cfg.version}")
    return models


def task_models(net: keras.Model) -> dict[str, keras.Model]:
    """The per-task models of a built joint network (:func:`build_dcasenet`), sharing its layers:
    as :func:`build_task_models`, for a network the registry built."""
    models = {task: keras.Model(net.inputs, {key: net.output[key]}, name=f"{net.name}_{task}")
              for task, key in OUTPUT_KEYS.items()}
    models["joint"] = net
    return models


def _variant(version: str, cfg: DcaseNetConfig | None, overrides: dict) -> DcaseNetConfig:
    cfg = VARIANTS[version] if cfg is None else cfg
    if cfg.version != version:
        raise ConfigError(f"dcasenet_{version} was given a config with version={cfg.version!r}")
    return dataclasses.replace(cfg, **overrides) if overrides else cfg


@register("dcasenet_v1", config=DcaseNetConfig)
def build_dcasenet_v1(cfg: DcaseNetConfig | None = None, **overrides) -> keras.Model:
    """DcaseNet-v1 (``VARIANTS["v1"]`` unless a config is given; keyword overrides replace fields)."""
    return build_dcasenet(_variant("v1", cfg, overrides))


@register("dcasenet_v2", config=DcaseNetConfig)
def build_dcasenet_v2(cfg: DcaseNetConfig | None = None, **overrides) -> keras.Model:
    """DcaseNet-v2 (``VARIANTS["v2"]`` unless a config is given)."""
    return build_dcasenet(_variant("v2", cfg, overrides))


@register("dcasenet_v3", config=DcaseNetConfig)
def build_dcasenet_v3(cfg: DcaseNetConfig | None = None, **overrides) -> keras.Model:
    """DcaseNet-v3, the released model (``VARIANTS["v3"]`` unless a config is given)."""
    return build_dcasenet(_variant("v3", cfg, overrides))


# ----------------------------------------------------------------------------------------------
# Utilities
# ----------------------------------------------------------------------------------------------

def output_frames(frames: int, sed_repeat: int = 8) -> int:
    """SED output frames for ``frames`` feature frames: ``(frames // 40) * sed_repeat``."""
    return (frames // TIME_POOL) * sed_repeat


def trim_to_shorter(y_true, y_pred):
    """Trim (batch, frames, events) label and prediction to the shorter number of frames."""
    a, b = ops.shape(y_true)[1], ops.shape(y_pred)[1]
    n = min(a, b) if isinstance(a, int) and isinstance(b, int) else ops.minimum(a, b)
    return y_true[:, :n], y_pred[:, :n]


def sed_loss(y_true, y_pred):
    """Mean binary cross-entropy between 100 ms labels and SED probabilities, both trimmed to the
    shorter length first (a 5 s crop: 50 label frames, 48 output frames)."""
    y_true, y_pred = trim_to_shorter(y_true, y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    return ops.mean(keras.losses.binary_crossentropy(y_true, y_pred, from_logits=False))


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def count_parameters(model: keras.Model, include_bn_moving: bool = False, prefix: str | None = None) -> int:
    """Number of parameters, each shared variable counted once.

    By default BN moving mean/variance are NOT counted (the PyTorch / paper convention: weights,
    biases, GRU biases and BN gamma/beta); ``include_bn_moving=True`` gives Keras's
    ``count_params()``.  ``prefix`` restricts the count to layers whose name starts with it
    (e.g. ``"block1_"``, ``"asc_res"``).
    """
    seen, total = set(), 0
    for layer in _layers(model):
        if prefix is not None and not layer.name.startswith(prefix):
            continue
        skip = set()
        if isinstance(layer, layers.BatchNormalization) and not include_bn_moving:
            skip = {id(layer.moving_mean), id(layer.moving_variance)}
        for w in layer.weights:
            if id(w) in seen or id(w) in skip:
                continue
            seen.add(id(w))
            total += int(np.prod(w.shape))
    return total
