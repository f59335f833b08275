"""Whole clips and 2 s windows of the raw-waveform model (Abrol & Sharma 2020, Sec. III).

The model embeds 2 s windows (the "raw" feature config: 16 kHz, pre-emphasis over the clip,
windows with a 1.5 s hop, mean removed per window); a clip's decision is the mean of its window
scores. Here: a lazy view of cached windows as training examples, batched prediction over
windows, and the whole-clip model that exports (windowing and averaging inside the graph).
"""

from __future__ import annotations

import numpy as np

BASE_FEATURES = "raw"  # tf_scenes.features: 16 kHz, 5 s, pre-emphasis, 2 s / 1.5 s windows, mean removal


def feature_config():
    from ..features import get_feature_config

    return get_feature_config(BASE_FEATURES)


class WindowView:
    """The windows of a split's clips as one (clips * windows, samples) array, read lazily.

    Row i is window i % W of clip rows[i // W]; memory-mapped caches are read a window at a time.
    """

    def __init__(self, windows: np.ndarray, rows: np.ndarray):
        self.windows, self.rows = windows, np.asarray(rows, np.int64)
        self.per_clip = int(windows.shape[1])
        self.shape = (len(self.rows) * self.per_clip, int(windows.shape[2]))
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i):
        i = int(i)
        return self.windows[self.rows[i // self.per_clip], i % self.per_clip, :, 0]

    def array(self) -> np.ndarray:
        """All windows in memory: (clips * windows, samples) float32."""
        return np.ascontiguousarray(np.asarray(self.windows[self.rows], np.float32).reshape(self.shape))

    def clip_ids(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.rows)), self.per_clip)

    def repeat(self, labels) -> np.ndarray:
        return np.repeat(np.asarray(labels), self.per_clip)


def predict_windows(model, x: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """model.predict on (n, samples) windows in batches of exactly `batch_size`: the last partial
    batch is zero-padded (and its padding dropped), so every call of a model reuses one trace."""
    n = len(x)
    full = n - n % batch_size
    parts = []
    if full:
        parts.append(model.predict(x[:full], batch_size=batch_size, verbose=0))
    if n > full:
        rest = np.zeros((batch_size, *x.shape[1:]), np.float32)
        rest[: n - full] = x[full:]
        parts.append({k: np.asarray(v)[: n - full] for k, v in
                      model.predict(rest, batch_size=batch_size, verbose=0).items()})
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


def copy_matching_weights(src, dst) -> list[str]:
    """Copy the weights of every layer of `dst` that `src` has under the same name and shapes
    (the heads of another size are left as initialised); returns the copied layer names."""
    copied = []
    for layer in dst.layers:
        if not layer.weights:
            continue
        try:
            other = src.get_layer(layer.name)
        except ValueError:
            continue
        w = other.get_weights()
        if [a.shape for a in w] == [b.shape for b in layer.get_weights()]:
            layer.set_weights(w)
            copied.append(layer.name)
    return copied


def clip_model(backbone):
    """keras.Model: 16 kHz waveform (batch, samples >= 2 s) -> {"coarse", "fine", "embedding"} per clip.

    In the graph: pre-emphasis over the whole waveform, 2 s windows with a 1.5 s hop, mean removed
    per window (the "raw" feature config, without the 5 s cut), the backbone on every window, and
    the mean of the window scores / embeddings.
    """
    import keras

    from ..features import FeatureExtractor
    from .layers import FoldWindows, WindowMean

    backbone = getattr(backbone, "backbone", backbone)
    fcfg = feature_config().replace(clip_samples=None)
    wav = keras.Input((None,), dtype="float32", name="waveform")
    win = FeatureExtractor(fcfg, name="windows")(wav)  # (batch, windows, window_samples, 1)
    flat = FoldWindows(name="fold_windows")(win)  # (batch * windows, window_samples)
    out = backbone(flat)
    keys = [k for k in ("coarse", "fine") if k in out] + ["embedding"]
    res = {k: WindowMean(name=f"clip_{k}")([out[k], win]) for k in keys}  # (batch, dim) each
    return keras.Model(wav, res, name="raw_waveform_clip")


def clip_export_settings() -> tuple[int, dict]:
    """(min_samples, metadata) of a whole-clip export."""
    fcfg = feature_config()
    return fcfg.raw_window_samples, {
        "family": "raw_waveform", "window_seconds": fcfg.window_seconds, "hop_seconds": fcfg.hop_seconds,
        "pre_emphasis": fcfg.pre_emphasis, "clip_decision": "mean of the window scores",
        "embedding": "mean of the 128-D window embeddings"}
