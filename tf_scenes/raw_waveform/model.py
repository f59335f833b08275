"""Raw-waveform 1D-CNN with hierarchy-aware embeddings (Abrol & Sharma, IEEE/ACM TASLP 2020).

Two parallel 1-D convolution pipelines read the same waveform window (Table I): a short-kernel
("sub-segmental", Conv1 20/5) and a long-kernel ("segmental", Conv1 300/100) one.  Each ends with
ELU + statistics pooling (mean and standard deviation of its 500 channels over a sliding window of
frames -> 1000-D per pipeline).  The frame-level features go through FC 512 ReLU -> FC 128 ReLU
(frame embeddings), are pooled over frames by attention (a_i = softmax(v^T tanh(W h_i + b)))
or by 2 LSTM / GRU layers of 30 units (Table VI), and the 128-D audio embedding feeds an
L2-constrained softmax head for the coarse (8) and/or the fine (70) classes.

    cfg = RawWaveformConfig()                    # Table I, attention, coarse + fine heads
    model = build_raw_waveform(cfg)              # input (batch, 32000) float32
    out = model(x)                               # {"coarse", "fine", "embedding", "frame_embedding", "attention"}

Choices the paper leaves open (all configurable):

* Padding: every convolution / max-pooling is "valid" (Torch kW/dW notation of Table I).  A 2 s
  window at 16 kHz gives 223 short-kernel frames (hop 135 samples) and 22 long-kernel frames
  (hop 900 samples); see `pipeline_geometry`.
* Statistics pooling window (`stats_window`, `stats_hop`): counted in long-kernel frames; the
  short-kernel pipeline uses a window and hop of the same duration in its own frames
  (round(n * 900 / 135)).  Default 5 frames (~0.28 s), hop 1 frame (56.25 ms): 18 frames per 2 s.
* How the pipelines meet (`merge`, `align_to`): the two pipelines' statistics run at different
  frame rates, so the builder computes, from Table I, the centre sample of every output frame of
  each pipeline and linearly interpolates one pipeline's statistics at the other's frame centres
  (`FrameAlign`; centres outside the source span hold the edge value).  By default the short-kernel
  statistics are resampled onto the long-kernel (coarser) grid and the two 1000-D vectors are
  concatenated (merge="concat" -> 2000-D).  merge="sum" adds them (1000-D); merge="short" /
  "long" keep a single pipeline (ablation; the other pipeline is not built).
* Dropout (rate 0.2) is applied to the inputs of the two FC layers (frame statistics and FC 512
  output); the embeddings themselves are not dropped out.
* L2-constrained softmax (Ranjan et al. 2017): the embedding is L2-normalised and scaled by alpha;
  with `l2_alpha=None` each head uses the lower bound alpha = log(p (C - 2) / (1 - p)), p = 0.9
  (C = 8: log 54 = 3.989; C = 70: log 612 = 6.417).
* Orthogonal regularisation (`ortho_reg`, default 1e-4; the paper gives no weight):
  `OrthogonalWeightRegularizer`, ||G - I||_F^2 on the smaller Gram matrix of the kernel reshaped
  to (kW * C_in, C_out).  All kernels use keras.initializers.Orthogonal.
* Recurrent pooling (Table VI): 2 stacked LSTM / GRU layers of `rnn_units` on the frame embeddings;
  the last layer's final state is projected to 128-D by Dense ReLU ("rnn_proj", `rnn_projection`)
  so that every variant has the same embedding size (with rnn_projection=False the embedding is
  rnn_units-D).
* Pre-emphasis and per-window mean normalisation belong to the input pipeline; `preprocess=True`
  adds them in the graph (`WaveformNormalization`, y[n] = x[n] - c x[n-1] with x[-1] = 0, then
  y - mean(y)) so an exported model can take the raw waveform.

Parameter count of the default model (Table I, concat, attention, both heads): 4,302,846; this is
our count, the paper publishes none.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import keras
from keras import layers, ops

from ..errors import ConfigError
from ..registry import register

_PKG = "tf_scenes.raw_waveform"

# Table I as data: (kind, kernel, stride, filters); "conv" layers carry their Table I number in the name.
SHORT_KERNEL_PIPELINE = (
    ("conv1", 20, 5, 100), ("pool1", 3, 3, None),
    ("conv2", 10, 1, 300), ("pool2", 3, 3, None),
    ("conv3", 3, 1, 300), ("pool3", 3, 3, None),
    ("conv4", 3, 1, 512), ("pool4", 5, 1, None),
    ("conv5", 3, 1, 512), ("pool5", 5, 1, None),
    ("conv6", 1, 1, 500),
)
LONG_KERNEL_PIPELINE = (
    ("conv1", 300, 100, 100), ("pool1", 3, 3, None),
    ("conv2", 3, 1, 300), ("pool2", 3, 3, None),
    ("conv3", 3, 1, 300), ("pool3", 5, 1, None),
    ("conv4", 3, 1, 512), ("pool4", 5, 1, None),
    ("conv6", 1, 1, 500),
)
PIPELINES = MappingProxyType({"short": SHORT_KERNEL_PIPELINE, "long": LONG_KERNEL_PIPELINE})


@dataclass(frozen=True)
class RawWaveformConfig:
    """Configuration of the raw-waveform hierarchy-aware model (defaults: Table I and the paper's training setup)."""

    sample_rate: int = 16000
    window_samples: int = 32000  # 2 s windows chunked from 5 s clips
    n_coarse: int = 8
    n_fine: int = 70
    pooling: Literal["attention", "mean", "lstm", "gru"] = "attention"
    heads: Literal["coarse", "fine", "both"] = "both"
    rnn_units: int = 30  # Table VI
    rnn_projection: bool = True  # Dense(embedding_dim, relu) after the recurrent layers
    dropout: float = 0.2
    width: float = 1.0  # multiplier on every conv filter count; 1.0 = Table I
    stats_window: int = 5  # in long-kernel frames (same duration in short-kernel frames)
    stats_hop: int = 1
    merge: Literal["concat", "sum", "short", "long"] = "concat"
    align_to: Literal["long", "short"] = "long"  # the common frame grid of the two pipelines
    fc_units: tuple[int, int] = (512, 128)
    attention_units: int = 128
    l2_alpha: float | None = None  # None: Ranjan et al. lower bound per head
    l2_p: float = 0.9
    ortho_reg: float = 1e-4  # 0 disables the orthogonal regulariser
    preprocess: bool = False  # pre-emphasis + mean normalisation inside the model
    preemphasis: float = 0.97
    prototype_weight: float = 1.0  # weight of the prototype loss on coarse classes (0: off)
    prototype_margin: float = 1.0
    coarse_loss_weight: float = 1.0
    fine_loss_weight: float = 1.0

    def __post_init__(self):
        def bad(key, problem):
            raise ConfigError(f"raw_waveform.{key}: {problem}")

        for key in ("sample_rate", "window_samples", "n_coarse", "n_fine", "rnn_units", "stats_window",
                    "stats_hop", "attention_units"):
            if getattr(self, key) < 1:
                bad(key, f"must be >= 1, got {getattr(self, key)!r}")
        if self.n_coarse < 3 or self.n_fine < 3:
            bad("n_coarse" if self.n_coarse < 3 else "n_fine",
                "needs at least 3 classes (the L2-softmax alpha bound uses log(p (C - 2) / (1 - p)))")
        if not 0.0 <= self.dropout < 1.0:
            bad("dropout", f"must be in [0, 1), got {self.dropout!r}")
        if self.width <= 0:
            bad("width", f"must be > 0, got {self.width!r}")
        if len(self.fc_units) != 2 or min(self.fc_units) < 1:
            bad("fc_units", f"expected two positive sizes, got {self.fc_units!r}")
        if not 0.0 < self.l2_p < 1.0:
            bad("l2_p", f"must be in (0, 1), got {self.l2_p!r}")
        if self.l2_alpha is not None and self.l2_alpha <= 0:
            bad("l2_alpha", f"must be > 0 or null, got {self.l2_alpha!r}")
        if self.ortho_reg < 0 or self.prototype_weight < 0 or self.prototype_margin < 0:
            bad("ortho_reg/prototype_weight/prototype_margin", "must be >= 0")
        if self.pooling not in ("attention", "mean", "lstm", "gru"):
            bad("pooling", f"{self.pooling!r} is not one of attention, mean, lstm, gru")
        if self.heads not in ("coarse", "fine", "both"):
            bad("heads", f"{self.heads!r} is not one of coarse, fine, both")
        if self.merge not in ("concat", "sum", "short", "long"):
            bad("merge", f"{self.merge!r} is not one of concat, sum, short, long")
        if self.align_to not in ("long", "short"):
            bad("align_to", f"{self.align_to!r} is not one of long, short")

    @property
    def embedding_dim(self) -> int:
        if self.pooling in ("lstm", "gru") and not self.rnn_projection:
            return self.rnn_units
        return self.fc_units[-1]

    @property
    def head_names(self) -> tuple[str, ...]:
        return ("coarse", "fine") if self.heads == "both" else (self.heads,)

    def n_classes(self, head: str) -> int:
        return {"coarse": self.n_coarse, "fine": self.n_fine}[head]

    def alpha(self, head: str) -> float:
        """Scale of the L2-constrained softmax of `head` ("coarse" or "fine")."""
        if self.l2_alpha is not None:
            return float(self.l2_alpha)
        return l2_softmax_alpha(self.n_classes(head), self.l2_p)


VARIANTS = MappingProxyType({  # read-only: variants are data
    "attention": RawWaveformConfig(),
    "mean": RawWaveformConfig(pooling="mean"),
    "lstm": RawWaveformConfig(pooling="lstm"),
    "gru": RawWaveformConfig(pooling="gru"),
})


def l2_softmax_alpha(n_classes: int, p: float = 0.9) -> float:
    """Lower bound of the L2-softmax scale (Ranjan et al. 2017): log(p (C - 2) / (1 - p))."""
    if n_classes < 3:
        raise ValueError(f"the alpha bound needs at least 3 classes, got {n_classes}")
    return math.log(p * (n_classes - 2) / (1.0 - p))


# --------------------------------------------------------------------------------------------------
# Frame geometry (Table I arithmetic, valid padding)


@dataclass(frozen=True)
class FrameGrid:
    """Frames of a layer output: n frames, frame k centred on sample `offset + k * hop`."""

    n_frames: int
    offset: float
    hop: int

    def after(self, kernel: int, stride: int) -> FrameGrid:
        n = (self.n_frames - kernel) // stride + 1
        return FrameGrid(n, self.offset + (kernel - 1) / 2 * self.hop, self.hop * stride)


def _stats_frames(cfg: RawWaveformConfig, conv_hop: int, long_hop: int) -> tuple[int, int]:
    """Stats-pooling window and hop of a pipeline with frame hop `conv_hop`, in its own frames
    (same duration as stats_window / stats_hop frames of the long-kernel grid)."""
    ratio = long_hop / conv_hop
    return max(1, round(cfg.stats_window * ratio)), max(1, round(cfg.stats_hop * ratio))


def pipeline_geometry(cfg: RawWaveformConfig) -> dict[str, dict[str, FrameGrid | int]]:
    """Frame grids of both pipelines for `cfg.window_samples`.

    Returns {"short": {"conv": FrameGrid, "stats": FrameGrid, "stats_window": int, "stats_hop": int},
    "long": {...}}.  For the default 2 s window: short conv6 223 frames (hop 135), long conv6 22 frames
    (hop 900), 18 statistics frames on the long grid.
    """
    conv = {}
    for name, table in PIPELINES.items():
        grid = FrameGrid(cfg.window_samples, 0.0, 1)
        for _, k, s, _ in table:
            grid = grid.after(k, s)
        conv[name] = grid
    out = {}
    for name, grid in conv.items():
        w, h = _stats_frames(cfg, grid.hop, conv["long"].hop)
        out[name] = {"conv": grid, "stats": grid.after(w, h), "stats_window": w, "stats_hop": h}
    return out


# --------------------------------------------------------------------------------------------------
# Layers for the genuinely new operations


@keras.saving.register_keras_serializable(package=_PKG)
class OrthogonalWeightRegularizer(keras.regularizers.Regularizer):
    """factor * ||G - I||_F^2 with G the smaller Gram matrix of the kernel reshaped to 2-D.

    A conv kernel (kW, C_in, C_out) is reshaped to W (kW * C_in, C_out); G = W^T W when
    kW * C_in >= C_out, else W W^T, so the target is reachable (keras.initializers.Orthogonal makes
    the columns, or the rows when there are fewer of them, orthonormal, so the penalty is ~0 at
    initialisation).  Soft orthogonality of Bansal et al. 2018, used in the conv layers as in the paper.
    """

    def __init__(self, factor: float = 1e-4):
        self.factor = float(factor)

    def __call__(self, x):
        w = ops.reshape(x, (-1, x.shape[-1]))  # (kW * C_in, C_out)
        rows, cols = w.shape
        gram = ops.matmul(ops.transpose(w), w) if rows >= cols else ops.matmul(w, ops.transpose(w))
        eye = ops.eye(gram.shape[0], dtype=gram.dtype)
        return self.factor * ops.sum(ops.square(gram - eye))

    def get_config(self):
        return {"factor": self.factor}


@keras.saving.register_keras_serializable(package=_PKG)
class WaveformNormalization(layers.Layer):
    """Pre-emphasis y[n] = x[n] - c x[n-1] (x[-1] = 0), then subtract the window mean (paper's input processing)."""

    def __init__(self, coef: float = 0.97, **kwargs):
        super().__init__(**kwargs)
        self.coef = float(coef)

    def call(self, x):  # (batch, samples)
        prev = ops.pad(x[:, :-1], ((0, 0), (1, 0)))
        y = x - self.coef * prev
        return y - ops.mean(y, axis=1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "coef": self.coef}


@keras.saving.register_keras_serializable(package=_PKG)
class StatsPooling(layers.Layer):
    """Mean and standard deviation over a sliding window of frames: (b, T, C) -> (b, T', 2C).

    T' = (T - window) // hop + 1; std = sqrt(max(E[x^2] - E[x]^2, 0) + eps).
    """

    def __init__(self, window: int, hop: int = 1, eps: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.window, self.hop, self.eps = int(window), int(hop), float(eps)

    def call(self, x):  # (batch, frames, channels)
        mean = ops.average_pool(x, self.window, self.hop, padding="valid", data_format="channels_last")
        mean_sq = ops.average_pool(ops.square(x), self.window, self.hop, padding="valid",
                                   data_format="channels_last")
        std = ops.sqrt(ops.maximum(mean_sq - ops.square(mean), 0.0) + self.eps)
        return ops.concatenate([mean, std], axis=-1)  # (batch, frames', 2 * channels)

    def compute_output_shape(self, input_shape):
        b, t, c = input_shape
        t_out = None if t is None else (t - self.window) // self.hop + 1
        return (b, t_out, None if c is None else 2 * c)

    def get_config(self):
        return {**super().get_config(), "window": self.window, "hop": self.hop, "eps": self.eps}


@keras.saving.register_keras_serializable(package=_PKG)
class FrameAlign(layers.Layer):
    """Resample `source` frames onto the frame centres of `reference` by linear interpolation.

    Frame k of a sequence is centred on sample offset + k * hop.  The output has reference's frame
    count; output frame k is source interpolated at position
    (ref_offset + k * ref_hop - src_offset) / src_hop, clamped to the source span (edge hold).
    Inputs [source (b, T_s, C), reference (b, T_r, ...)] -> (b, T_r, C).
    """

    def __init__(self, src_offset: float, src_hop: float, ref_offset: float, ref_hop: float, **kwargs):
        super().__init__(**kwargs)
        self.src_offset, self.src_hop = float(src_offset), float(src_hop)
        self.ref_offset, self.ref_hop = float(ref_offset), float(ref_hop)

    def call(self, inputs):
        src, ref = inputs
        t_src = ops.shape(src)[1]
        t_ref = ops.shape(ref)[1]
        k = ops.cast(ops.arange(t_ref), "float32")
        pos = (self.ref_offset + k * self.ref_hop - self.src_offset) / self.src_hop
        pos = ops.clip(pos, 0.0, ops.cast(t_src - 1, "float32"))
        i0 = ops.cast(ops.floor(pos), "int32")
        i1 = ops.minimum(i0 + 1, t_src - 1)
        w = ops.cast(pos - ops.cast(i0, "float32"), src.dtype)[None, :, None]  # (1, T_r, 1)
        return ops.take(src, i0, axis=1) * (1.0 - w) + ops.take(src, i1, axis=1) * w  # (b, T_r, C)

    def compute_output_shape(self, input_shapes):
        src, ref = input_shapes
        return (src[0], ref[1], src[2])

    def get_config(self):
        return {**super().get_config(), "src_offset": self.src_offset, "src_hop": self.src_hop,
                "ref_offset": self.ref_offset, "ref_hop": self.ref_hop}


@keras.saving.register_keras_serializable(package=_PKG)
class AttentionPooling(layers.Layer):
    """Attention pooling over frames: a_i = softmax_i(v^T tanh(W h_i + b)), e = sum_i a_i h_i.

    (b, T, D) -> [(b, D) pooled embedding, (b, T) attention weights].
    """

    def __init__(self, units: int = 128, kernel_initializer="orthogonal", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        d = input_shape[-1]
        self.w = self.add_weight(name="w", shape=(d, self.units), initializer=self.kernel_initializer)
        self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros")
        self.v = self.add_weight(name="v", shape=(self.units, 1), initializer=self.kernel_initializer)

    def call(self, h):  # (batch, frames, dim)
        scores = ops.matmul(ops.tanh(ops.matmul(h, self.w) + self.b), self.v)[..., 0]  # (batch, frames)
        att = ops.softmax(scores, axis=-1)
        pooled = ops.sum(h * att[..., None], axis=1)  # (batch, dim)
        return pooled, att

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1]), (input_shape[0], input_shape[1])

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


# --------------------------------------------------------------------------------------------------
# Blocks


def _filters(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def conv_pipeline(x, table, cfg: RawWaveformConfig, prefix: str):
    """One Table I pipeline: Conv1D (ELU, valid) / MaxPool1D (valid) layers named f"{prefix}_conv1"..."""
    for name, k, s, filters in table:
        if filters is None:
            x = layers.MaxPooling1D(k, s, padding="valid", name=f"{prefix}_{name}")(x)
        else:
            x = layers.Conv1D(
                _filters(filters, cfg.width), k, strides=s, padding="valid", activation="elu",
                kernel_initializer="orthogonal",
                kernel_regularizer=OrthogonalWeightRegularizer(cfg.ortho_reg) if cfg.ortho_reg > 0 else None,
                name=f"{prefix}_{name}",
            )(x)
    return x  # (batch, frames, channels)


def frame_features(wave, cfg: RawWaveformConfig):
    """Both pipelines -> statistics pooling -> merged frame-level features (batch, frames, 1000 or 2000)."""
    geo = pipeline_geometry(cfg)
    for name, g in geo.items():
        if g["stats"].n_frames < 1 and (cfg.merge in ("concat", "sum") or cfg.merge == name):
            raise ConfigError(
                f"raw_waveform.window_samples: {cfg.window_samples} samples leave no statistics frame in the "
                f"{name}-kernel pipeline ({g['conv'].n_frames} conv frames, stats window {g['stats_window']})"
            )
    x = layers.Reshape((-1, 1), name="waveform_channel")(wave)  # (batch, samples, 1)
    names = ("short", "long") if cfg.merge in ("concat", "sum") else (cfg.merge,)
    stats = {}
    for name in names:
        h = conv_pipeline(x, PIPELINES[name], cfg, name)
        stats[name] = StatsPooling(geo[name]["stats_window"], geo[name]["stats_hop"],
                                   name=f"{name}_stats")(h)  # (batch, frames', 2 * channels)
    if len(names) == 1:
        return stats[names[0]]
    target = cfg.align_to
    other = "short" if target == "long" else "long"
    src, ref = geo[other]["stats"], geo[target]["stats"]
    aligned = FrameAlign(src.offset, src.hop, ref.offset, ref.hop, name=f"{other}_align")(
        [stats[other], stats[target]])  # (batch, frames of target, 2 * channels)
    pair = [aligned, stats["long"]] if target == "long" else [stats["short"], aligned]  # [short, long]
    if cfg.merge == "concat":
        return layers.Concatenate(axis=-1, name="merge")(pair)  # (batch, frames, 4 * conv6 channels)
    return layers.Add(name="merge")(pair)  # (batch, frames, 2 * conv6 channels); both have 500 * width


def embedding_block(feats, cfg: RawWaveformConfig):
    """FC 512 ReLU -> FC 128 ReLU on every frame (dropout on each FC input): frame embeddings."""
    x = feats
    for i, units in enumerate(cfg.fc_units, start=1):
        if cfg.dropout > 0:
            x = layers.Dropout(cfg.dropout, name=f"fc{i}_dropout")(x)
        x = layers.Dense(units, activation="relu", kernel_initializer="orthogonal", name=f"fc{i}")(x)
    return x  # (batch, frames, fc_units[-1])


def pooling_block(frames, cfg: RawWaveformConfig) -> tuple:
    """Frame embeddings -> (audio embedding, attention weights or None)."""
    if cfg.pooling == "attention":
        emb, att = AttentionPooling(cfg.attention_units, name="attention_pool")(frames)
        return emb, att
    if cfg.pooling == "mean":
        return layers.GlobalAveragePooling1D(name="mean_pool")(frames), None
    rnn = layers.LSTM if cfg.pooling == "lstm" else layers.GRU
    x = rnn(cfg.rnn_units, return_sequences=True, kernel_initializer="orthogonal", name="rnn1")(frames)
    x = rnn(cfg.rnn_units, kernel_initializer="orthogonal", name="rnn2")(x)  # (batch, rnn_units)
    if cfg.rnn_projection:
        x = layers.Dense(cfg.fc_units[-1], activation="relu", kernel_initializer="orthogonal", name="rnn_proj")(x)
    return x, None


def l2_softmax_head(emb, n_classes: int, alpha: float, name: str):
    """L2-constrained softmax (Ranjan et al. 2017): alpha * e / ||e|| -> Dense softmax."""
    x = layers.UnitNormalization(axis=-1, name=f"{name}_l2norm")(emb)
    x = layers.Rescaling(alpha, name=f"{name}_scale")(x)
    return layers.Dense(n_classes, activation="softmax", kernel_initializer="orthogonal", name=f"{name}_head")(x)


def build_raw_waveform(cfg: RawWaveformConfig | None = None) -> keras.Model:
    """Build the Table I model; input (batch, window_samples) float32 waveform.

    Returns a Model whose output is a dict: "coarse" (batch, n_coarse) and/or "fine" (batch, n_fine)
    probabilities (per `cfg.heads`), "embedding" (batch, 128), "frame_embedding" (batch, frames, 128)
    and, with attention pooling, "attention" (batch, frames).
    """
    cfg = cfg if cfg is not None else RawWaveformConfig()
    wave = keras.Input((cfg.window_samples,), dtype="float32", name="waveform")
    x = WaveformNormalization(cfg.preemphasis, name="preprocess")(wave) if cfg.preprocess else wave
    feats = frame_features(x, cfg)
    frames = embedding_block(feats, cfg)
    emb, att = pooling_block(frames, cfg)
    outputs = {}
    for head in cfg.head_names:
        outputs[head] = l2_softmax_head(emb, cfg.n_classes(head), cfg.alpha(head), head)
    outputs["embedding"] = emb
    outputs["frame_embedding"] = frames
    if att is not None:
        outputs["attention"] = att
    return keras.Model(wave, outputs, name="raw_waveform")


def _variant_builder(variant: str):
    def build(cfg: RawWaveformConfig | None = None) -> keras.Model:
        base = VARIANTS[variant]
        return build_raw_waveform(base if cfg is None else dataclasses.replace(cfg, pooling=base.pooling))

    build.__doc__ = f"build_raw_waveform with pooling={VARIANTS[variant].pooling!r} (other fields from cfg)."
    return build


register("raw_waveform", config=RawWaveformConfig)(build_raw_waveform)
for _variant in ("mean", "lstm", "gru"):
    register(f"raw_waveform_{_variant}", config=RawWaveformConfig)(_variant_builder(_variant))
del _variant
