"""Figure 3 of Abrol & Sharma 2020: the magnitude responses of the first-layer filters of both
pipelines, sorted by peak frequency (what the model listens with)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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


def draw_filter_figure(panels, title: str = ""):
    """Figure 3 from :func:`filter_responses` results: panels [(title, freqs, db, peak)], each the
    sorted responses (filters x frequency) with the peak frequencies marked; two columns wide."""
    from tf_scenes import plots

    plt = plots._plt()
    width = 2 * plots.COLUMN_WIDTH + 0.3 if len(panels) > 1 else plots.COLUMN_WIDTH
    with plots.style():
        fig, axes = plt.subplots(1, len(panels), figsize=(width, 2.6), layout="constrained", squeeze=False)
        for ax, (name, freqs, db, peak) in zip(axes[0], panels):
            df = float(freqs[1] - freqs[0])
            im = ax.imshow(db, aspect="auto", origin="lower", cmap=plots.SPECTROGRAM_CMAP, vmin=-40, vmax=0,
                           interpolation="nearest", extent=[-df / 2, freqs[-1] + df / 2, 0.5, db.shape[0] + 0.5])
            # Row k (1-based rank by peak frequency) centred on the integer k, so the ticks name rows.
            ax.plot(peak, np.arange(1, len(peak) + 1), ".", color="cyan", ms=1.5, label="peak frequency")
            ax.yaxis.set_major_locator(plt.MaxNLocator(nbins=8, integer=True, min_n_ticks=2))
            ax.set_xlabel(plots.FREQ_LABEL)
            ax.xaxis.set_major_formatter(plots.hz_formatter())
            ax.set_ylabel("Filter rank by peak frequency")
            ax.set_title(name, loc="left")
            ax.legend(loc="lower right", markerscale=3, framealpha=0.85, edgecolor="none")
            fig.colorbar(im, ax=ax, label="Gain (dB re filter peak)", fraction=0.05, pad=0.02)
        if title:
            fig.suptitle(plots.wrap(title, width), fontsize=plots.RC["figure.titlesize"])
    return fig


def filter_figure(model, path: Path, title: str, sample_rate: int = 16000, vector: str | None = "pdf") -> Path:
    """Draw the first-layer filter responses to `path` (.png, and its PDF) and save the arrays
    beside it (.npz)."""
    from tf_scenes.io_utils import atomic_path
    from tf_scenes.plots import save

    path = Path(path)
    backbone = getattr(model, "backbone", model)
    panels = []
    for name, layer in (("short kernel (Conv1 20/5)", "short_conv1"), ("long kernel (Conv1 300/100)", "long_conv1")):
        try:
            kernel = backbone.get_layer(layer).get_weights()[0]
        except ValueError:
            continue  # merge="short" / "long" builds one pipeline
        panels.append((name, layer, *filter_responses(kernel, sample_rate)))
    if not panels:
        raise ValueError("the model has no first-layer filters named short_conv1 / long_conv1")
    arrays = {}
    for name, layer, freqs, db, peak, order in panels:
        arrays.update({f"{layer}_db": db, f"{layer}_peak_hz": peak, f"{layer}_order": order, "freqs_hz": freqs})
    fig = draw_filter_figure([(name, freqs, db, peak) for name, _, freqs, db, peak, _ in panels], title)
    path = save(fig, path, vector)
    with atomic_path(path.with_suffix(".npz"), suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return path
