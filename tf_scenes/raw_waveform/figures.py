"""Figure 3 of Abrol & Sharma 2020: the magnitude responses of the first-layer filters of both
pipelines, sorted by peak frequency (what the model listens with)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    from tf_scenes.io_utils import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    _plt().close(fig)
    return path


def filter_responses(kernel: np.ndarray, sample_rate: int, n_fft: int = 512):
    """Magnitude responses of 1-D conv filters, sorted by peak frequency (Figure 3).

    kernel: (taps, 1, filters) Conv1D kernel.  Returns (freqs (n_fft // 2 + 1,) Hz,
    responses (filters, bins) in dB re each filter's peak, peak frequencies (filters,) Hz and the
    sort order (filter ids by increasing peak frequency); responses and peaks are in sorted order.
    """
    k = np.asarray(kernel, np.float64)
    if k.ndim != 3 or k.shape[1] != 1:
        raise ValueError(f"expected a (taps, 1, filters) Conv1D kernel, got shape {k.shape}")
    taps = k[:, 0, :].T  # (filters, taps)
    n = max(n_fft, taps.shape[1])
    mag = np.abs(np.fft.rfft(taps, n=n, axis=1))  # (filters, n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    peak = freqs[mag.argmax(axis=1)]
    order = np.argsort(peak, kind="stable")
    db = 20 * np.log10(np.maximum(mag, 1e-12) / np.maximum(mag.max(axis=1, keepdims=True), 1e-12))
    return freqs, db[order], peak[order], order


def filter_figure(model, path: Path, title: str, sample_rate: int = 16000) -> Path:
    """Draw the first-layer filter responses to `path` (.png) and save the arrays beside it (.npz)."""
    from tf_scenes.io_utils import atomic_path

    path = Path(path)
    backbone = getattr(model, "backbone", model)
    plt = _plt()
    panels = []
    for name, layer in (("short kernel (Conv1 20/5)", "short_conv1"), ("long kernel (Conv1 300/100)", "long_conv1")):
        try:
            kernel = backbone.get_layer(layer).get_weights()[0]
        except ValueError:
            continue  # merge="short" / "long" builds one pipeline
        panels.append((name, layer, *filter_responses(kernel, sample_rate)))
    if not panels:
        raise ValueError("the model has no first-layer filters named short_conv1 / long_conv1")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    arrays = {}
    for ax, (name, layer, freqs, db, peak, order) in zip(axes[0], panels):
        im = ax.imshow(db, aspect="auto", origin="lower", cmap="magma", vmin=-40, vmax=0, interpolation="nearest",
                       extent=[0, freqs[-1] / 1000, 0, db.shape[0]])
        ax.plot(peak / 1000, np.arange(len(peak)) + 0.5, ".", color="cyan", ms=3, label="peak")
        ax.set_xlabel("frequency (kHz)")
        ax.set_ylabel("filter (sorted by peak frequency)")
        ax.set_title(name)
        arrays.update({f"{layer}_db": db, f"{layer}_peak_hz": peak, f"{layer}_order": order, "freqs_hz": freqs})
    fig.colorbar(im, ax=axes[0].tolist(), fraction=0.03, label="dB re peak")
    fig.suptitle(title)
    path = _save(fig, path)
    with atomic_path(path.with_suffix(".npz"), suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return path
