"""Weakly supervised sound event detection: 2APAE and its baselines (Deshmukh, Raj & Singh,
Interspeech 2021, "Improving weakly supervised sound event detection with self-supervised auxiliary
tasks").  "The reference" below is the authors' PyTorch code,
https://github.com/soham97/MTL_Weakly_labelled_audio_data (models.py, models_extension.py,
train_helper.py).

Every model takes standardised log-mel features ``(batch, frames, n_mels)`` = ``(batch, 311, 64)``
(time-major, as the reference) and returns a dict with at least ``"clip"``: ``(batch, classes)``
clip-level probabilities.

* ``build_2apae``: encoder (4 Blocks) -> 1x1 class map -> two-step attention pooling (frequency,
  then time), plus an auxiliary decoder that reconstructs the input (the reference's
  ``MTL_SEDNetwork``).
* ``build_vggish_pooling``: the VGG-ish baselines of Kong et al. (GMP, GAP, GWRP)
  (the reference's ``VggishGMP`` / ``VggishGAP`` / ``VggishGWRP``).
* ``build_dilated_attention``: dilated 5x5 CNN with clamped attention pooling
  (the reference's ``AttrousCNN_2DAttention``).

Layout.  Convolutions run channels-last ``(batch, time, freq, channels)``.  The class map and the
attention maps are returned channels-first ``(batch, classes, time, freq)`` like the reference, so
that ``out["freq_attention"][b, c]`` is the (time, freq) image of class ``c`` (paper Fig. 2).

Parameter counts.  The paper's 1,967,366 is the reference PyTorch model's ``parameters()``, which
holds BatchNorm's gamma and beta but not its running mean and variance.  That is exactly the Keras
*trainable* count (``count_trainable_params``); Keras ``count_params()`` also counts the moving
statistics (2 per BN channel).  At width 1:

================  ==========  ==============================
model             trainable   count_params() (+ BN moving)
================  ==========  ==============================
2APAE             1,967,366   1,970,186
  encoder         1,172,640   1,174,560
  class conv         10,537      10,537
  decoder           581,805     582,705
  attention         202,384     202,384
VGG-ish GMP/GAP/    587,593     589,001
GWRP
dilated attention 1,047,570   1,048,466
================  ==========  ==============================

Reference details reproduced: BatchNorm momentum 0.1 / eps 1e-5 (PyTorch defaults, Keras
momentum 0.9); He-uniform convolution kernels with zero biases; PyTorch's default initialisation
for the attention Dense layers; the decoder's last Block ends in BN -> ReLU -> average pool, so the
reconstruction is non-negative although the target (standardised input) is not; the dilated model's
classification branch is log-softmax over classes and its pooled output goes through a sigmoid
(so its clip outputs lie in (0, 0.5]).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import keras
import numpy as np
from keras import layers

from ..config import from_dict as _from_dict
from ..config import to_dict as _to_dict
from ..errors import ConfigError
from ..registry import register

MODELS = ("2apae", "gap", "gmp", "gwrp", "dilated_attention")

# Layer-name prefixes of the 2APAE's four parts (see ``parameter_split``).
PARTS = {"encoder": "enc", "class_conv": "class_conv", "decoder": "dec", "attention": "att_"}

# PyTorch BatchNorm2d defaults (momentum 0.1 on the new statistic = Keras momentum 0.9).
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5


@dataclasses.dataclass(frozen=True)
class WeakSedConfig:
    """Configuration of one weak-SED model.

    model: "2apae" (the paper's model), "gap" / "gmp" / "gwrp" (VGG-ish baselines) or
        "dilated_attention" (dilated CNN baseline).
    n_classes: event classes (41 for FSDKaggle2018).
    frames, n_mels: input size; 311 x 64 for 10 s at 32 kHz, window 2048, hop 1024, no padding,
        64 mel bands (the paper's features, from Kong et al.'s sed_time_freq_segmentation).  The
        2APAE's time attention is Dense(frames -> frames), so frames is fixed.
    alpha: weight of the reconstruction loss (used by the trainer; paper Table 2: 0, 0.001, 0.1).
    width: multiplier on every convolution width (1.0 = the paper's models); the decoder's last
        Block always has one channel.
    gwrp_decay: decay of global weighted rank pooling (Kong et al.: 0.9998).
    attention_clamp: the dilated model's attention is clamped to [clamp, 1 - clamp] (0.1).
    """

    model: Literal["2apae", "gap", "gmp", "gwrp", "dilated_attention"] = "2apae"
    n_classes: int = 41
    frames: int = 311
    n_mels: int = 64
    alpha: float = 0.001
    width: float = 1.0
    gwrp_decay: float = 0.9998
    attention_clamp: float = 0.1

    def __post_init__(self):
        if self.model not in MODELS:
            raise ConfigError(f"model: {self.model!r} is not one of {list(MODELS)}")
        if self.n_classes < 1:
            raise ConfigError(f"n_classes: {self.n_classes!r} must be >= 1")
        if self.frames < 1 or self.n_mels < 1:
            raise ConfigError(f"frames, n_mels: ({self.frames}, {self.n_mels}) must be >= 1")
        if not self.alpha >= 0:
            raise ConfigError(f"alpha: {self.alpha!r} must be >= 0")
        if not self.width > 0:
            raise ConfigError(f"width: {self.width!r} must be > 0")
        if not 0 < self.gwrp_decay <= 1:
            raise ConfigError(f"gwrp_decay: {self.gwrp_decay!r} must be in (0, 1]")
        if not 0 <= self.attention_clamp < 0.5:
            raise ConfigError(f"attention_clamp: {self.attention_clamp!r} must be in [0, 0.5)")

    def to_dict(self) -> dict:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "WeakSedConfig":
        return _from_dict(cls, data)


# --------------------------------------------------------------------------------------------
# Layers for the new operations (attention / rank pooling)
# --------------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="tf_scenes")
class WeightedSum(layers.Layer):
    """Attention pooling step: ``sum(presence * weights, axis)``, optionally clipped.

    Inputs: [presence, weights] of equal shape (weights sum to 1 along ``axis``).
    """

    def __init__(self, axis: int = -1, clip_min: float | None = None, clip_max: float | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)
        self.clip_min = clip_min
        self.clip_max = clip_max

    def call(self, inputs):
        presence, weights = inputs
        out = keras.ops.sum(presence * weights, axis=self.axis)
        if self.clip_min is not None or self.clip_max is not None:
            lo = -np.inf if self.clip_min is None else self.clip_min
            hi = np.inf if self.clip_max is None else self.clip_max
            out = keras.ops.clip(out, lo, hi)
        return out

    def compute_output_shape(self, input_shape):
        shape = list(input_shape[0])
        del shape[self.axis]
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "clip_min": self.clip_min,
                "clip_max": self.clip_max}


@keras.saving.register_keras_serializable(package="tf_scenes")
class GlobalWeightedRankPooling2D(layers.Layer):
    """Global weighted rank pooling (Kolesnikov & Lampert 2016; Kong et al. 2018).

    ``(batch, time, freq, channels) -> (batch, channels)``: the values of each map sorted in
    descending order, weighted by ``decay ** rank`` and divided by the sum of the weights.
    ``decay=1`` is average pooling, ``decay=0`` max pooling.
    """

    def __init__(self, decay: float = 0.9998, **kwargs):
        super().__init__(**kwargs)
        self.decay = float(decay)

    def call(self, x):
        n = x.shape[1] * x.shape[2]
        x = keras.ops.transpose(x, (0, 3, 1, 2))  # (batch, channels, time, freq)
        x = keras.ops.reshape(x, (-1, x.shape[1], n))  # (batch, channels, time * freq)
        x = keras.ops.sort(x, axis=-1)  # ascending: index i has descending rank n - 1 - i
        w = self.decay ** np.arange(n - 1, -1, -1, dtype=np.float64)
        w = keras.ops.convert_to_tensor((w / w.sum()).astype("float32"), dtype=x.dtype)
        return keras.ops.sum(x * w, axis=-1)  # (batch, channels)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[3])

    def get_config(self):
        return {**super().get_config(), "decay": self.decay}


@keras.saving.register_keras_serializable(package="tf_scenes")
class ClampedAttentionPooling2D(layers.Layer):
    """Attention pooling over time and frequency with the attention clamped (Kong et al. 2018).

    Inputs: [attention in (0, 1), values], both ``(batch, time, freq, classes)``.  The attention is
    clamped to ``[epsilon, 1 - epsilon]``, normalised to sum 1 over (time, freq) per class, and
    the values are averaged with it -> ``(batch, classes)``.
    """

    def __init__(self, epsilon: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        att, values = inputs
        att = keras.ops.clip(att, self.epsilon, 1.0 - self.epsilon)
        att = att / keras.ops.sum(att, axis=(1, 2), keepdims=True)
        return keras.ops.sum(att * values, axis=(1, 2))  # (batch, classes)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][3])

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


# --------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------

def _scaled(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _conv(x, filters, kernel, name, dilation=1, use_bias=False):
    """Conv2D 'same' with the reference initialisation (He uniform, zero bias)."""
    return layers.Conv2D(filters, kernel, padding="same", dilation_rate=dilation, use_bias=use_bias,
                         kernel_initializer="he_uniform", bias_initializer="zeros", name=name)(x)


def _bn(x, name):
    return layers.BatchNormalization(momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=name)(x)


def conv_bn_relu(x, filters, name, kernel=3, dilation=1):
    """Conv (no bias) -> BN -> ReLU, named {name}_conv/_bn/_relu."""
    x = _conv(x, filters, kernel, f"{name}_conv", dilation=dilation)
    x = _bn(x, f"{name}_bn")
    return layers.ReLU(name=f"{name}_relu")(x)


def block(x, filters, name, pool=True):
    """2 x [Conv 3x3 'same' no bias -> BN -> ReLU], then AvgPool 3x3 stride 1 counting the zero
    padding (PyTorch ``AvgPool2d(3, 1, padding=1)``): the resolution never shrinks.

    Layers: {name}_conv1/_bn1/_relu1, {name}_conv2/..., {name}_pad, {name}_pool.
    """
    for i in (1, 2):
        x = _conv(x, filters, 3, f"{name}_conv{i}")
        x = _bn(x, f"{name}_bn{i}")
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    if pool:
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)  # (b, t + 2, f + 2, c)
        x = layers.AveragePooling2D(3, strides=1, padding="valid", name=f"{name}_pool")(x)  # (b, t, f, c)
    return x


def _torch_dense(units, name, fan_in):
    """Dense with PyTorch nn.Linear's default initialisation: U(+-1/sqrt(fan_in)) for both."""
    limit = 1.0 / math.sqrt(fan_in)
    return layers.Dense(units, name=name,
                        kernel_initializer=keras.initializers.RandomUniform(-limit, limit),
                        bias_initializer=keras.initializers.RandomUniform(-limit, limit))


def attention_step(x, name, clip=False):
    """One attention pooling step over the last axis (size n): p = sigmoid(Dense_c(x)),
    a = softmax(Dense_a(x)) over that axis, out = sum(p * a) (one step of the two-step attention
    pooling, the reference's ``DualStageAttention``).

    Returns (out, p, a); out has the last axis removed.
    """
    n = x.shape[-1]
    p = _torch_dense(n, f"{name}_presence_dense", n)(x)
    p = layers.Activation("sigmoid", name=f"{name}_presence")(p)
    a = _torch_dense(n, f"{name}_attention_dense", n)(x)
    a = layers.Softmax(axis=-1, name=f"{name}_attention")(a)
    out = WeightedSum(axis=-1, clip_min=0.0 if clip else None, clip_max=1.0 if clip else None,
                      name=f"{name}_pool")([p, a])
    return out, p, a


def _inputs(cfg: WeakSedConfig):
    inputs = keras.Input(shape=(cfg.frames, cfg.n_mels), name="logmel")
    x = layers.Reshape((cfg.frames, cfg.n_mels, 1), name="add_channel")(inputs)  # (b, t, f, 1)
    return inputs, x


def _check_model(cfg, model):
    cfg = cfg if cfg is not None else WeakSedConfig(model=model)
    if not isinstance(cfg, WeakSedConfig):
        raise ConfigError(f"expected a WeakSedConfig, got {type(cfg).__name__}")
    if cfg.model != model:
        raise ConfigError(f"the {model!r} builder got a config with model={cfg.model!r}")
    return cfg


# --------------------------------------------------------------------------------------------
# 2APAE
# --------------------------------------------------------------------------------------------

@register("weak_sed_2apae", config=WeakSedConfig)
def build_2apae(cfg: WeakSedConfig | None = None) -> keras.Model:
    """2APAE: CNN encoder, two-step attention pooling, auxiliary decoder (``MTL_SEDNetwork``).

    Outputs (dict):
      clip: (batch, classes) clip probabilities in [0, 1].
      reconstruction: (batch, frames, n_mels) decoder output (target: the input).
      class_map: (batch, classes, frames, n_mels) linear 1x1-conv class map.
      freq_presence: (batch, classes, frames, n_mels) sigmoid presence p of the frequency step.
      freq_attention: (batch, classes, frames, n_mels) attention, softmax over n_mels.
      first_step: (batch, classes, frames) output of the frequency step.
      time_presence: (batch, classes, frames) sigmoid presence p of the time step.
      time_attention: (batch, classes, frames) attention, softmax over frames.
    """
    cfg = _check_model(cfg, "2apae")
    inputs, x = _inputs(cfg)
    for i, ch in enumerate((32, 64, 128, 256), start=1):
        x = block(x, _scaled(ch, cfg.width), f"enc{i}")
    encoded = x  # (b, t, f, 256)

    class_map = layers.Conv2D(cfg.n_classes, 1, use_bias=True, kernel_initializer="he_uniform",
                              bias_initializer="zeros", name="class_conv")(encoded)  # (b, t, f, classes)
    class_map = layers.Permute((3, 1, 2), name="class_map")(class_map)  # (b, classes, t, f)
    first, freq_p, freq_a = attention_step(class_map, "att_freq")  # first: (b, classes, t)
    clip, time_p, time_a = attention_step(first, "att_time", clip=True)  # clip: (b, classes)

    x = encoded
    for i, ch in enumerate((128, 64, 32), start=1):
        x = block(x, _scaled(ch, cfg.width), f"dec{i}")
    x = block(x, 1, "dec4")  # (b, t, f, 1)
    recon = layers.Reshape((cfg.frames, cfg.n_mels), name="reconstruction")(x)  # (b, t, f)

    outputs = {"clip": clip, "reconstruction": recon, "class_map": class_map,
               "freq_presence": freq_p, "freq_attention": freq_a, "first_step": first,
               "time_presence": time_p, "time_attention": time_a}
    return keras.Model(inputs, outputs, name="weak_sed_2apae")


# --------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------

def vggish_bottleneck(x, cfg: WeakSedConfig):
    """Kong et al.'s VGG-ish trunk: 4 x [2 x conv3x3-BN-ReLU] (32/64/128/128, no pooling), then a
    sigmoid 1x1 conv to the classes -> (b, t, f, classes)."""
    for i, ch in enumerate((32, 64, 128, 128), start=1):
        x = block(x, _scaled(ch, cfg.width), f"block{i}", pool=False)
    return layers.Conv2D(cfg.n_classes, 1, use_bias=True, activation="sigmoid",
                         kernel_initializer="he_uniform", bias_initializer="zeros",
                         name="class_conv")(x)


def build_vggish_pooling(cfg: WeakSedConfig) -> keras.Model:
    """VGG-ish baseline with global max / average / weighted rank pooling of the sigmoid class
    map (the reference's ``Vggish*`` baselines, after Kong et al. 2018).  Outputs: clip (b, classes),
    class_map (b, classes, t, f)."""
    if cfg.model not in ("gap", "gmp", "gwrp"):
        raise ConfigError(f"build_vggish_pooling got model={cfg.model!r}")
    inputs, x = _inputs(cfg)
    cmap = vggish_bottleneck(x, cfg)  # (b, t, f, classes)
    if cfg.model == "gmp":
        clip = layers.GlobalMaxPooling2D(name="clip")(cmap)
    elif cfg.model == "gap":
        clip = layers.GlobalAveragePooling2D(name="clip")(cmap)
    else:
        clip = GlobalWeightedRankPooling2D(cfg.gwrp_decay, name="clip")(cmap)
    cmap = layers.Permute((3, 1, 2), name="class_map")(cmap)  # (b, classes, t, f)
    return keras.Model(inputs, {"clip": clip, "class_map": cmap}, name=f"weak_sed_{cfg.model}")


@register("weak_sed_gap", config=WeakSedConfig)
def build_gap(cfg: WeakSedConfig | None = None) -> keras.Model:
    return build_vggish_pooling(_check_model(cfg, "gap"))


@register("weak_sed_gmp", config=WeakSedConfig)
def build_gmp(cfg: WeakSedConfig | None = None) -> keras.Model:
    return build_vggish_pooling(_check_model(cfg, "gmp"))


@register("weak_sed_gwrp", config=WeakSedConfig)
def build_gwrp(cfg: WeakSedConfig | None = None) -> keras.Model:
    return build_vggish_pooling(_check_model(cfg, "gwrp"))


@register("weak_sed_dilated_attention", config=WeakSedConfig)
def build_dilated_attention(cfg: WeakSedConfig | None = None) -> keras.Model:
    """Dilated CNN (5x5 convs, dilation 1/2/4, widths 64/128/256) with attention pooling clamped
    to [0.1, 0.9] (the reference's ``AttrousCNN_2DAttention``).

    Attention: sigmoid 1x1 conv (kernel initialised to zero, so it starts uniform); values:
    log-softmax over classes of a 1x1 conv; clip = sigmoid(pooled values).
    Outputs: clip (b, classes), attention and class_map (b, classes, t, f).
    """
    cfg = _check_model(cfg, "dilated_attention")
    inputs, x = _inputs(cfg)
    for i, (ch, d) in enumerate(((64, 1), (128, 2), (256, 4)), start=1):
        x = conv_bn_relu(x, _scaled(ch, cfg.width), f"block{i}", kernel=5, dilation=d)
    att = layers.Conv2D(cfg.n_classes, 1, activation="sigmoid", kernel_initializer="zeros",
                        bias_initializer="zeros", name="att_conv")(x)  # (b, t, f, classes)
    cla = layers.Conv2D(cfg.n_classes, 1, kernel_initializer="he_uniform", bias_initializer="zeros",
                        name="cla_conv")(x)
    cla = layers.Activation("log_softmax", name="cla_log_softmax")(cla)  # over classes
    pooled = ClampedAttentionPooling2D(cfg.attention_clamp, name="att_pool")([att, cla])
    clip = layers.Activation("sigmoid", name="clip")(pooled)  # (b, classes)
    outputs = {"clip": clip,
               "attention": layers.Permute((3, 1, 2), name="attention")(att),
               "class_map": layers.Permute((3, 1, 2), name="class_map")(cla)}
    return keras.Model(inputs, outputs, name="weak_sed_dilated_attention")


_BUILDERS = {"2apae": build_2apae, "gap": build_gap, "gmp": build_gmp, "gwrp": build_gwrp,
             "dilated_attention": build_dilated_attention}


def build_weak_sed(cfg: WeakSedConfig) -> keras.Model:
    """Build the model named by ``cfg.model``."""
    return _BUILDERS[cfg.model](cfg)


# --------------------------------------------------------------------------------------------
# Loss and parameter bookkeeping
# --------------------------------------------------------------------------------------------

def weak_sed_loss(alpha: float = 0.001, reconstruction: bool = True) -> dict:
    """Loss of the paper (and of the reference's ``train_epoch`` in train_helper.py):
    BCE(clip, weak labels) + alpha * MSE(reconstruction, input).

    Returns keyword arguments for ``model.compile``::

        model.compile(optimizer="adam", **weak_sed_loss(cfg.alpha))
        model.fit(x, {"clip": labels, "reconstruction": x})

    With ``reconstruction=False`` (baselines) only the clip loss is returned.  Other outputs of the
    model dict (attention maps) carry no loss.
    """
    if not alpha >= 0:
        raise ConfigError(f"alpha: {alpha!r} must be >= 0")
    loss = {"clip": keras.losses.BinaryCrossentropy(name="clip_bce")}
    weights = {"clip": 1.0}
    if reconstruction:
        loss["reconstruction"] = keras.losses.MeanSquaredError(name="reconstruction_mse")
        weights["reconstruction"] = float(alpha)
    return {"loss": loss, "loss_weights": weights}


def count_trainable_params(layers_or_model) -> int:
    """Trainable parameters (= PyTorch ``parameters()`` of the reference: BN gamma/beta only)."""
    weights = getattr(layers_or_model, "trainable_weights", None)
    if weights is None:
        weights = [w for layer in layers_or_model for w in layer.trainable_weights]
    return int(sum(int(np.prod(w.shape)) for w in weights))


def parameter_split(model: keras.Model) -> dict[str, int]:
    """Trainable parameters of the 2APAE's parts (at width 1, as the reference's
    ``MTL_SEDNetwork``: encoder 1,172,640; class conv 10,537; decoder 581,805; attention 202,384),
    grouped by layer-name prefix (``PARTS``)."""
    out = {}
    for part, prefix in PARTS.items():
        out[part] = count_trainable_params([lay for lay in model.layers if lay.name.startswith(prefix)])
    out["total"] = count_trainable_params(model)
    return out
