"""The feature front-end in TensorFlow (tf.signal): one implementation used by models and tf.data.

    feats = tf_features(get_feature_config(name), waveform)   # (batch, frames, mel_bands, channels)

Layout: input (batch, samples) or (samples,) float32; output (batch, frames, mel_bands, channels)
(or without the batch axis), time-major. Every reduction (min-max, standardisation) is taken per
example, so an example's features never depend on what else is in the batch.

Bad input: a waveform of known length too short for one frame raises ConfigError (configs with
``clip_samples`` zero-pad instead). :func:`extract` also rejects empty and non-finite waveforms and
samples beyond ``MAX_ABS_SAMPLE`` (1e12; the power spectrum overflows float32 from about 1.8e16,
see :mod:`tf_scenes.features.config`) with a ValueError naming the sample: for the waveforms it
accepts, the features are always finite. The graph ops do not test values (no CheckNumerics, so
models stay TFLite-convertible): NaN / Inf propagate to the frames whose window holds them, and to
the whole clip under per-clip scaling; so do the Inf of an overflowing power spectrum. Audio read
by :mod:`tf_scenes.audio` never holds such values, and the exported serving signature
(:mod:`tf_scenes.export`) rejects NaN / Inf samples.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import keras

from .config import MAX_ABS_SAMPLE, FeatureConfig, get_feature_config, n_frames, output_shape
from .filters import mel_filterbank, window


def mel_matrix(cfg: FeatureConfig) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) float32 mel weights of `cfg` (transposed librosa layout)."""
    fb = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.mel_fmax,
                        htk=cfg.mel_scale == "htk", norm=cfg.mel_norm)
    return np.ascontiguousarray(fb.T, dtype=np.float32)


# Each FFT bin lies in at most two mel triangles, so the mel matrix is > 95 % zeros: the
# (frames, bins) @ (bins, mels) product is computed per group of consecutive mel bands over only
# the bins that group covers (the same non-zero products summed; ~8x fewer multiplications).
MEL_GROUPS = 8


def mel_blocks(cfg: FeatureConfig, groups: int = MEL_GROUPS) -> list[tuple[int, int, np.ndarray]]:
    """The mel matrix of `cfg` cut into `groups` bands of consecutive mels.

    Returns [(first_bin, end_bin, weights)], weights of shape (end_bin - first_bin, mels in the
    group) float32: the rows of :func:`mel_matrix` outside first_bin..end_bin-1 are all zero for
    those mels. Concatenating ``spec[..., first:end] @ weights`` over the groups gives
    ``spec @ mel_matrix(cfg)``.
    """
    m = mel_matrix(cfg)
    n_mels = m.shape[1]
    edges = np.linspace(0, n_mels, min(groups, n_mels) + 1).round().astype(int)
    blocks = []
    for a, b in zip(edges[:-1], edges[1:]):
        rows = np.flatnonzero(np.any(m[:, a:b] != 0, axis=1))
        lo, hi = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 1)
        blocks.append((lo, hi, np.ascontiguousarray(m[lo:hi, a:b])))
    return blocks


def mel_spectrogram(cfg: FeatureConfig, spec: tf.Tensor) -> tf.Tensor:
    """(batch, frames, n_fft // 2 + 1) -> (batch, frames, n_mels): ``spec @ mel_matrix(cfg)``."""
    parts = [tf.matmul(spec[..., lo:hi], tf.constant(w)) for lo, hi, w in mel_blocks(cfg)]
    return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)  # (batch, frames, n_mels)


def fix_length(x: tf.Tensor, num_samples: int) -> tf.Tensor:
    """Trim (keep the first `num_samples`) or zero-pad at the end along the last axis."""
    x = x[..., :num_samples]
    pad = num_samples - tf.shape(x)[-1]
    paddings = [[0, 0]] * (x.shape.rank - 1) + [[0, pad]]
    x = tf.pad(x, paddings)
    # The op's name lets `tf-scenes predict` find a SavedModel's fixed clip length in its graph.
    return tf.ensure_shape(x, x.shape[:-1].concatenate([num_samples]), name="clip_samples")


def pre_emphasis(x: tf.Tensor, coef: float, mode: str = "valid") -> tf.Tensor:
    """"valid": y[n] = x[n+1] - coef x[n] (length N-1); "same": y[0] = x[0], y[n] = x[n] - coef x[n-1]."""
    y = x[..., 1:] - coef * x[..., :-1]
    if mode == "same":
        y = tf.concat([x[..., :1], y], axis=-1)
    return y


def stft_spectrogram(cfg: FeatureConfig, x: tf.Tensor) -> tf.Tensor:
    """|STFT|^power of (batch, samples) -> (batch, frames, n_fft // 2 + 1), librosa framing."""
    n_fft, hop, win = cfg.n_fft, cfg.hop_length, cfg.window_length
    if cfg.center:
        mode = "REFLECT" if cfg.pad_mode == "reflect" else "CONSTANT"
        x = tf.pad(x, [[0, 0], [n_fft // 2, n_fft // 2]], mode=mode)  # (batch, samples + n_fft)
    length = x.shape[-1]  # static length when known: static frame count
    n_out = (1 + (length - n_fft) // hop) if length is not None else 1 + (tf.shape(x)[-1] - n_fft) // hop
    # A window shorter than n_fft sits centred in the n_fft frame (left pad lpad). Framing only its
    # win_length samples and zero-padding at the end of the FFT input is a circular shift of that
    # frame: same magnitude, fewer multiplications.
    lpad = (n_fft - win) // 2
    frames = tf.signal.frame(x[:, lpad:], win, hop, pad_end=False)[:, :n_out]  # (batch, frames, win)
    w = window(cfg.window, win, cfg.window_periodic)
    if cfg.stft_scale == "window_energy":
        w = w / np.sqrt(np.sum(w * w))
    frames = frames * tf.constant(w.astype(np.float32))
    spec = tf.signal.rfft(frames, fft_length=[n_fft])  # (batch, frames, n_fft // 2 + 1) complex64
    re, im = tf.math.real(spec), tf.math.imag(spec)
    power = re * re + im * im
    return power if cfg.power == 2 else tf.sqrt(power)


def deltas(x: tf.Tensor, width: int = 2, padding: bool = False) -> tf.Tensor:
    """Regression deltas along axis 1 (time) of (batch, frames, bands).

    d[t] = sum_{n=1..N} n (x[t+n] - x[t-n]) / (2 sum n^2). padding=False keeps valid frames only
    (T -> T - 2N); padding=True replicates the edge frames first (length kept).
    """
    if padding:
        first = tf.repeat(x[:, :1], width, axis=1)
        last = tf.repeat(x[:, -1:], width, axis=1)
        x = tf.concat([first, x, last], axis=1)  # (batch, frames + 2N, bands)
    t = tf.shape(x)[1]
    denom = 2.0 * sum(n * n for n in range(1, width + 1))
    out = None
    for n in range(1, width + 1):
        # Terms summed in the two-stage code's order: (x[t+1]-x[t-1])/10 + (x[t+2]-x[t-2])/5.
        term = (x[:, width + n:t - width + n] - x[:, width - n:t - width - n]) / (denom / n)
        out = term if out is None else out + term
    return out  # (batch, frames - 2N, bands)


def _log(cfg: FeatureConfig, s: tf.Tensor) -> tf.Tensor:
    if cfg.log == "none":
        return s
    if cfg.log_offset > 0:
        s = s + cfg.log_offset
    if cfg.log_floor > 0:
        s = tf.maximum(s, cfg.log_floor)
    return tf.math.log(s)


def _scale(cfg: FeatureConfig, x: tf.Tensor) -> tf.Tensor:
    """Per-example scaling of (batch, frames, bands)."""
    if cfg.scaling == "minmax_clip":
        lo = tf.reduce_min(x, axis=[1, 2], keepdims=True)
        hi = tf.reduce_max(x, axis=[1, 2], keepdims=True)
        return tf.math.divide_no_nan(x - lo, hi - lo)
    if cfg.scaling == "per_band_standardise":
        mean = tf.reduce_mean(x, axis=1, keepdims=True)  # (batch, 1, bands)
        n = tf.cast(tf.shape(x)[1], x.dtype)
        var = tf.reduce_sum(tf.square(x - mean), axis=1, keepdims=True) / tf.maximum(n - cfg.std_ddof, 1.0)
        std = tf.maximum(tf.sqrt(var), cfg.std_floor)
        return (x - mean) / std
    return x


def _raw_windows(cfg: FeatureConfig, x: tf.Tensor) -> tf.Tensor:
    w = tf.signal.frame(x, cfg.raw_window_samples, cfg.raw_hop_samples, pad_end=False)  # (batch, windows, samples)
    if cfg.mean_normalise:
        w = w - tf.reduce_mean(w, axis=-1, keepdims=True)
    return w[..., None]  # (batch, windows, window_samples, 1)


@tf.autograph.experimental.do_not_convert  # static Python control flow only: no AutoGraph needed
def tf_features(cfg, waveform) -> tf.Tensor:
    """Features of `waveform` ((batch, samples) or (samples,), float32) under `cfg`.

    Returns (batch, frames, mel_bands, channels) float32, or (frames, mel_bands, channels) for a
    1-D waveform. Pure TF ops: usable in tf.data map functions, tf.function and Keras layers.
    """
    cfg = get_feature_config(cfg)
    x = tf.convert_to_tensor(waveform)
    if x.dtype != tf.float32:
        x = tf.cast(x, tf.float32)
    rank = x.shape.rank
    if rank not in (1, 2):
        raise ValueError(f"waveform must be (samples,) or (batch, samples), got shape {x.shape}")
    if rank == 1:
        x = x[None]  # (1, samples)
    if cfg.clip_samples is not None:
        x = fix_length(x, cfg.clip_samples)
    n_in = x.shape[-1]
    if n_in is not None:
        output_shape(cfg, n_in)  # a known length too short for one frame: ConfigError, not a TF op error
    if cfg.pre_emphasis is not None:
        x = pre_emphasis(x, cfg.pre_emphasis, cfg.pre_emphasis_mode)
    if cfg.kind == "raw":
        out = _raw_windows(cfg, x)
    else:
        s = stft_spectrogram(cfg, x)  # (batch, frames, n_freq)
        s = mel_spectrogram(cfg, s)  # (batch, frames, n_mels)
        s = _scale(cfg, _log(cfg, s))
        if cfg.deltas:
            d1 = deltas(s, cfg.delta_width, cfg.delta_padding)
            d2 = deltas(d1, cfg.delta_width, cfg.delta_padding)
            if not cfg.delta_padding:
                k = cfg.delta_width
                t = tf.shape(s)[1]
                s, d1 = s[:, 2 * k:t - 2 * k], d1[:, k:tf.shape(d1)[1] - k]  # align to d2's frames
            out = tf.stack([s, d1, d2], axis=-1)  # (batch, frames, n_mels, 3)
        else:
            out = s[..., None]  # (batch, frames, n_mels, 1)
    if n_in is not None:
        out = tf.ensure_shape(out, [x.shape[0], *output_shape(cfg, n_in)])
    return out[0] if rank == 1 else out


def extract(cfg, waveform: np.ndarray) -> np.ndarray:
    """numpy in, numpy out: features of (samples,) or (batch, samples) audio under a named config."""
    cfg = get_feature_config(cfg)
    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim not in (1, 2):
        raise ValueError(f"waveform must be (samples,) or (batch, samples), got shape {x.shape}")
    if x.shape[-1] == 0:
        raise ValueError(f"waveform is empty (shape {x.shape}): no samples to compute features of")
    finite = np.isfinite(x)
    if not finite.all():
        where = np.argwhere(~finite)[0]
        at = f"sample {where[-1]}" + (f" of example {where[0]}" if x.ndim == 2 else "")
        raise ValueError(f"waveform has a non-finite value (NaN or Inf) at {at}: features would be NaN")
    big = np.abs(x) > MAX_ABS_SAMPLE
    if big.any():
        where = np.argwhere(big)[0]
        at = f"sample {where[-1]}" + (f" of example {where[0]}" if x.ndim == 2 else "")
        raise ValueError(f"waveform has the value {float(x[tuple(where)]):.3g} at {at}, beyond the front-end's "
                         f"limit of {MAX_ABS_SAMPLE:.0e} (full scale is 1): its power spectrum could overflow "
                         "to Inf and the features be NaN")
    n_frames(cfg, x.shape[-1])  # clear error for too-short input
    return tf_features(cfg, tf.constant(x)).numpy()


@keras.saving.register_keras_serializable(package="tf_scenes")
class FeatureExtractor(keras.layers.Layer):
    """Keras layer: waveform (batch, samples) float32 -> features (batch, frames, mel_bands, channels).

    The config is stored in get_config, so a model containing this layer saves to .keras and
    reloads with identical output. Always computes in float32 (even under mixed precision).
    """

    def __init__(self, feature_config, **kwargs):
        kwargs.setdefault("dtype", "float32")
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.feature_config = get_feature_config(feature_config)

    def call(self, waveform):
        return tf_features(self.feature_config, waveform)

    def compute_output_shape(self, input_shape):
        n = input_shape[-1]
        if n is None and self.feature_config.clip_samples is None:
            width = (self.feature_config.raw_window_samples if self.feature_config.kind == "raw"
                     else self.feature_config.n_mels)
            return (input_shape[0], None, width, self.feature_config.channels)
        return (input_shape[0],) + output_shape(self.feature_config, n or self.feature_config.clip_samples)

    def get_config(self):
        from .config import config_to_dict

        base = super().get_config()
        base["feature_config"] = config_to_dict(self.feature_config)
        return base
