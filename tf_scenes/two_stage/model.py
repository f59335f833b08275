"""Two-stage device-robust ASC models: two-path ResNet, FCNN and fsFCNN (Hu et al., ICASSP 2021, Sec. 2.2).

All three are fully convolutional (global average pooling, softmax), so the time axis may be left
open (``input_frames=None``): training crops 400 frames, evaluation feeds all 423.

Input layout: ``(batch, time, freq, channels)`` = ``(batch, 423, 128, 3)`` for the paper features
(static, delta, delta-delta log-mel).  The reference code stores ``(batch, freq, time, channels)``;
we put time first so that every family in tf-scenes shares one layout.  Consequently the reference's
stride ``[1, 2]`` (time) is ``(2, 1)`` here and its frequency split ``x[:, 0:64]`` is ``x[:, :, 0:64]``.

Layer names are stable so that saliency and feature extraction can pick layers by name:

* ``CLASS_CONV`` ("class_conv"): the last 1x1 convolution to the classes (the ResNet's CAM layer).
* ``CLASS_MAP`` ("class_map"): the (batch, time', freq', classes) map that global average pooling
  turns into logits.
* ``OUTPUT`` ("probs"): the softmax output.
* ResNet path layers: ``path1_stem_conv``, ``path2_stack3_block1_conv2``...; FCNN/fsFCNN convs:
  ``block1_conv1`` ... ``block3_conv4`` (fsFCNN also ``block4_conv2``), each followed by
  ``..._bn`` and ``..._relu``.

Parameter totals at width 1 (Keras ``count_params()``, trainable plus BatchNorm moving statistics)
equal the reference code built under TF 2.21: ResNet 12,980,492 (10 classes) / 3,247,758 (3),
FCNN 11,786,711 / 11,782,546, fsFCNN 16,539,703.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Literal

import keras
from keras import layers

from ..config import from_dict as _from_dict
from ..config import to_dict as _to_dict
from ..errors import ConfigError
from ..registry import register

CLASS_CONV = "class_conv"
CLASS_MAP = "class_map"
OUTPUT = "probs"

# Defaults of the authors' code (https://github.com/MihawkHu/DCASE2020_task1, task1a/*/{resnet,fcnn,fsfcnn}/):
# (dropout, L2 weight decay) per architecture.
# The reference trains the FCNNs with wd=0 ("nowd" experiments) and the ResNet with wd=1e-3.
_ARCH_DEFAULTS = MappingProxyType({"resnet": (0.0, 1e-3), "fcnn": (0.3, 0.0), "fsfcnn": (0.5, 0.0)})
# ResNet base widths: 48 for the 10-class model, 24 for the 3-class model (num_filters in the
# authors' task1a/10class/resnet/train_resnet.py and task1a/3class/resnet/train_resnet.py).
_RESNET_BASE = MappingProxyType({10: 48, 3: 24})
# FCNN widths before the x channels multiplier; fsFCNN widths (no multiplier).
_FCNN_WIDTHS = (48, 96, 192)
_FSFCNN_WIDTHS = (48, 96, 512, 768)


@dataclasses.dataclass(frozen=True)
class TwoStageModelConfig:
    """Configuration of one two-stage ASC model.

    arch: "resnet" (two frequency paths), "fcnn" (VGG-like + channel attention) or "fsfcnn"
        (frequency sub-sampling FCNN; used for 10 classes in the paper).
    num_classes: 10 (scenes) or 3 (indoor / outdoor / transportation).
    width: multiplier on every convolution width (1.0 = the paper's models).
    n_mels, channels: input frequency bands and feature channels (static, delta, delta-delta).
    input_frames: fixed time length, or None for a fully convolutional model (any length).
    dropout: None = the reference value (ResNet none, FCNN 0.3, fsFCNN 0.5).
    weight_decay: L2 factor on conv kernels; None = the reference value (ResNet 1e-3, FCNNs 0).
    bn_momentum: moving-statistics momentum of every BatchNormalization (0.99: the reference's
      Keras default). Short runs (a few hundred steps) need a lower value (e.g. 0.9) or the
      moving statistics used at inference still lag the trained weights.
    """

    arch: Literal["resnet", "fcnn", "fsfcnn"] = "resnet"
    num_classes: Literal[10, 3] = 10
    width: float = 1.0
    n_mels: int = 128
    channels: int = 3
    input_frames: int | None = None
    dropout: float | None = None
    weight_decay: float | None = None
    bn_momentum: float = 0.99

    def __post_init__(self):
        if self.arch not in _ARCH_DEFAULTS:
            raise ConfigError(f"arch: {self.arch!r} is not one of {sorted(_ARCH_DEFAULTS)}")
        if self.num_classes not in (10, 3):
            raise ConfigError(f"num_classes: {self.num_classes!r} must be 10 or 3")
        if not self.width > 0:
            raise ConfigError(f"width: {self.width!r} must be > 0")
        if self.channels < 1:
            raise ConfigError(f"channels: {self.channels!r} must be >= 1")
        if self.n_mels < 8 or (self.arch == "resnet" and self.n_mels % 2):
            raise ConfigError(f"n_mels: {self.n_mels!r} must be >= 8 (and even for the two-path ResNet)")
        if self.input_frames is not None and self.input_frames < 16:
            raise ConfigError(f"input_frames: {self.input_frames!r} must be >= 16 or null")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout: {self.dropout!r} must be in [0, 1)")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise ConfigError(f"weight_decay: {self.weight_decay!r} must be >= 0")

    @property
    def resolved_dropout(self) -> float:
        return _ARCH_DEFAULTS[self.arch][0] if self.dropout is None else self.dropout

    @property
    def resolved_weight_decay(self) -> float:
        return _ARCH_DEFAULTS[self.arch][1] if self.weight_decay is None else self.weight_decay

    def to_dict(self) -> dict:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TwoStageModelConfig":
        return _from_dict(cls, data)


def _scaled(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _regularizer(cfg: TwoStageModelConfig):
    wd = cfg.resolved_weight_decay
    return keras.regularizers.L2(wd) if wd > 0 else None


def _conv(x, filters, kernel, name, cfg, strides=1, padding="same"):
    """Conv2D without bias, he_normal, L2 as configured (every conv of the three models)."""
    return layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False,
                         kernel_initializer="he_normal", kernel_regularizer=_regularizer(cfg),
                         name=name)(x)


def _bn(x, name, cfg, affine=True):
    return layers.BatchNormalization(momentum=cfg.bn_momentum, center=affine, scale=affine, name=name)(x)


def _inputs(cfg: TwoStageModelConfig):
    return keras.Input(shape=(cfg.input_frames, cfg.n_mels, cfg.channels), name="features")


def _check_arch(cfg, arch):
    cfg = cfg if cfg is not None else TwoStageModelConfig(arch=arch)
    if not isinstance(cfg, TwoStageModelConfig):
        raise ConfigError(f"expected a TwoStageModelConfig, got {type(cfg).__name__}")
    if cfg.arch != arch:
        raise ConfigError(f"build_{arch} got a config with arch={cfg.arch!r}")
    return cfg


@keras.saving.register_keras_serializable(package="tf_scenes")
class ZeroChannelPad(layers.Layer):
    """Concatenate zeros along channels: (b, t, f, c) -> (b, t, f, c + pad).

    The ResNet's downsampling shortcut widens the identity path this way (McDonnell & Gao 2020);
    the reference does it with a Lambda, which does not save safely in Keras 3.
    """

    def __init__(self, pad: int, **kwargs):
        super().__init__(**kwargs)
        self.pad = int(pad)

    def call(self, x):
        zeros = keras.ops.zeros_like(x[..., :1])
        zeros = keras.ops.repeat(zeros, self.pad, axis=-1)  # (b, t, f, pad)
        return keras.ops.concatenate([x, zeros], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + self.pad)

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


# --------------------------------------------------------------------------------------------
# ResNet with two frequency paths (after McDonnell & Gao, ICASSP 2020; the authors' resnet/resnet.py)
# --------------------------------------------------------------------------------------------

def preact_unit(x, filters, name, cfg, kernel=3, strides=1, affine=False, relu=True):
    """Pre-activation unit: BN -> (ReLU) -> conv, no bias."""
    x = _bn(x, f"{name}_bn", cfg, affine=affine)
    if relu:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return _conv(x, filters, kernel, f"{name}_conv", cfg, strides=strides)


def resnet_block(x, filters, name, cfg, downsample=False):
    """Residual block of two pre-activation units (BN without affine parameters).

    When downsampling, time is halved (frequency never) and the shortcut is AvgPool 3x3 stride
    (2, 1) 'same' plus zero channels up to `filters`.
    """
    strides = (2, 1) if downsample else 1
    y = preact_unit(x, filters, f"{name}_unit1", cfg, strides=strides)
    y = preact_unit(y, filters, f"{name}_unit2", cfg)
    if downsample:
        x = layers.AveragePooling2D(3, strides=(2, 1), padding="same", name=f"{name}_pool")(x)
        x = ZeroChannelPad(filters - x.shape[-1], name=f"{name}_zeropad")(x)
    return layers.Add(name=f"{name}_add")([y, x])


def resnet_path(x, base, name, cfg):
    """One frequency path: stem (BN -> conv stride 2 on time, no ReLU), 4 stacks x 2 blocks."""
    x = preact_unit(x, base, f"{name}_stem", cfg, strides=(2, 1), affine=True, relu=False)
    filters = base
    for stack in range(1, 5):
        for block in range(1, 3):
            x = resnet_block(x, filters, f"{name}_stack{stack}_block{block}", cfg,
                             downsample=stack > 1 and block == 1)
        filters *= 2
    return x  # (batch, time / 16, freq / 2, 8 * base)


@register("two_stage_resnet", config=TwoStageModelConfig)
def build_resnet(cfg: TwoStageModelConfig | None = None) -> keras.Model:
    """Two-path ResNet (paper Sec. 2.2, after McDonnell & Gao 2020); 10-class base 48, 3-class 24."""
    cfg = _check_arch(cfg, "resnet")
    base = _scaled(_RESNET_BASE[cfg.num_classes], cfg.width)
    inputs = _inputs(cfg)
    half = cfg.n_mels // 2
    low = layers.Cropping2D(((0, 0), (0, cfg.n_mels - half)), name="freq_low")(inputs)  # (b, t, 0:64, c)
    high = layers.Cropping2D(((0, 0), (half, 0)), name="freq_high")(inputs)  # (b, t, 64:128, c)
    low = resnet_path(low, base, "path1", cfg)
    high = resnet_path(high, base, "path2", cfg)
    x = layers.Concatenate(axis=2, name="freq_concat")([low, high])  # (b, t / 16, freq, 8 * base)
    x = preact_unit(x, 32 * base, "head", cfg, kernel=1)
    x = preact_unit(x, cfg.num_classes, "class", cfg, kernel=1, relu=False)  # -> CLASS_CONV
    x = _bn(x, CLASS_MAP, cfg, affine=False)  # (b, t / 16, freq, classes)
    x = layers.GlobalAveragePooling2D(name="gap")(x)  # (b, classes)
    outputs = layers.Activation("softmax", name=OUTPUT)(x)
    return keras.Model(inputs, outputs, name=f"two_stage_resnet_{cfg.num_classes}class")


# --------------------------------------------------------------------------------------------
# FCNN and fsFCNN (the authors' task1a/10class/fcnn/fcnn_att.py and fsfcnn/fsfcnn_att.py)
# --------------------------------------------------------------------------------------------

def conv_bn_relu(x, filters, name, cfg, kernel=3, strides=1, padding="same"):
    """Conv (no bias) -> BN -> ReLU, named {name}_conv/_bn/_relu."""
    x = _conv(x, filters, kernel, name, cfg, strides=strides, padding=padding)
    x = _bn(x, f"{name}_bn", cfg)
    return layers.ReLU(name=f"{name}_relu")(x)


def channel_attention(x, name, ratio=2):
    """CBAM channel attention (Woo et al. 2018): shared MLP on GAP and GMP, sum, sigmoid, scale."""
    c = x.shape[-1]
    dense1 = layers.Dense(max(1, c // ratio), activation="relu", kernel_initializer="he_normal",
                          name=f"{name}_dense1")
    dense2 = layers.Dense(c, kernel_initializer="he_normal", name=f"{name}_dense2")
    avg = dense2(dense1(layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_gap")(x)))  # (b, 1, 1, c)
    mx = dense2(dense1(layers.GlobalMaxPooling2D(keepdims=True, name=f"{name}_gmp")(x)))  # (b, 1, 1, c)
    w = layers.Activation("sigmoid", name=f"{name}_sigmoid")(layers.Add(name=f"{name}_add")([avg, mx]))
    return layers.Multiply(name=CLASS_MAP)([x, w])  # (b, t', f', classes)


def fcnn_head(x, cfg):
    """1x1 conv to classes -> BN(no affine) -> ReLU -> BN(no affine) -> channel attention -> GAP."""
    x = _conv(x, cfg.num_classes, 1, CLASS_CONV, cfg)
    x = _bn(x, "class_bn", cfg, affine=False)
    x = layers.ReLU(name="class_relu")(x)
    x = _bn(x, "class_bn2", cfg, affine=False)
    x = channel_attention(x, "attention", ratio=2)
    x = layers.GlobalAveragePooling2D(name="gap")(x)  # (b, classes)
    return layers.Activation("softmax", name=OUTPUT)(x)


def _dropout(x, cfg, name):
    rate = cfg.resolved_dropout
    return layers.Dropout(rate, name=name)(x) if rate > 0 else x


@register("two_stage_fcnn", config=TwoStageModelConfig)
def build_fcnn(cfg: TwoStageModelConfig | None = None) -> keras.Model:
    """FCNN with channel attention (paper Sec. 2.2): 9 convs, widths [48, 96, 192] x channels."""
    cfg = _check_arch(cfg, "fcnn")
    w1, w2, w3 = (_scaled(n * cfg.channels, cfg.width) for n in _FCNN_WIDTHS)
    inputs = _inputs(cfg)
    x = _bn(inputs, "input_bn", cfg)
    x = layers.ZeroPadding2D(2, name="block1_pad")(x)
    x = conv_bn_relu(x, w1, "block1_conv1", cfg, kernel=5, strides=2, padding="valid")
    x = conv_bn_relu(x, w1, "block1_conv2", cfg)
    x = layers.MaxPooling2D(2, name="block1_pool")(x)  # (b, t / 4, f / 4, w1)
    for i in (1, 2):
        x = conv_bn_relu(x, w2, f"block2_conv{i}", cfg)
    x = layers.MaxPooling2D(2, name="block2_pool")(x)  # (b, t / 8, f / 8, w2)
    for i in (1, 2, 3, 4):
        x = conv_bn_relu(x, w3, f"block3_conv{i}", cfg)
        if i < 4:
            x = _dropout(x, cfg, f"block3_dropout{i}")
    x = layers.MaxPooling2D(2, name="block3_pool")(x)  # (b, t / 16, f / 16, w3)
    outputs = fcnn_head(x, cfg)
    return keras.Model(inputs, outputs, name=f"two_stage_fcnn_{cfg.num_classes}class")


@register("two_stage_fsfcnn", config=TwoStageModelConfig)
def build_fsfcnn(cfg: TwoStageModelConfig | None = None) -> keras.Model:
    """Frequency sub-sampling FCNN (paper Sec. 2.2): widths 48, 96, 512, 768, frequency pooled
    only in blocks 1-2 (later pools stride time only)."""
    cfg = _check_arch(cfg, "fsfcnn")
    w1, w2, w3, w4 = (_scaled(n, cfg.width) for n in _FSFCNN_WIDTHS)
    inputs = _inputs(cfg)
    x = _bn(inputs, "input_bn", cfg)
    x = conv_bn_relu(x, w1, "block1_conv1", cfg, kernel=5, strides=(2, 1))
    x = conv_bn_relu(x, w1, "block1_conv2", cfg)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="block1_pool")(x)  # (b, t / 4, f / 2, w1)
    for i in (1, 2):
        x = conv_bn_relu(x, w2, f"block2_conv{i}", cfg)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="block2_pool")(x)  # (b, t / 8, f / 4, w2)
    for i in (1, 2):
        x = conv_bn_relu(x, w3, f"block3_conv{i}", cfg)
    x = layers.MaxPooling2D(3, strides=(2, 1), padding="same", name="block3_pool1")(x)  # (b, t / 16, f / 4, w3)
    for i in (3, 4):
        x = conv_bn_relu(x, w3, f"block3_conv{i}", cfg)
    x = layers.MaxPooling2D(3, strides=(2, 1), padding="same", name="block3_pool2")(x)  # (b, t / 32, f / 4, w3)
    for i in (1, 2):
        x = conv_bn_relu(x, w4, f"block4_conv{i}", cfg)
        x = _dropout(x, cfg, f"block4_dropout{i}")
    outputs = fcnn_head(x, cfg)
    return keras.Model(inputs, outputs, name=f"two_stage_fsfcnn_{cfg.num_classes}class")


_BUILDERS = MappingProxyType({"resnet": build_resnet, "fcnn": build_fcnn, "fsfcnn": build_fsfcnn})


def build_two_stage_model(cfg: TwoStageModelConfig) -> keras.Model:
    """Build the model named by ``cfg.arch``."""
    return _BUILDERS[cfg.arch](cfg)
