"""Figures shared by the studies: confusion matrices, per-device accuracy bars, saliency panels,
SED activity plots. Every function writes a PNG (atomically) and returns its path."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    from .io_utils import atomic_path

    path = Path(path)
    if path.is_dir():  # atomic_path's final rename would fail with a bare IsADirectoryError
        from .errors import OutputDirError

        _plt().close(fig)
        raise OutputDirError(f"{path}: is a directory; a figure needs a file name (e.g. fig.png)")
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    _plt().close(fig)
    return path


def confusion_matrix(cm: np.ndarray, class_names, path, title: str = "") -> Path:
    """Row-normalised confusion matrix (rows: true class) with counts in the cells."""
    plt = _plt()
    cm = np.asarray(cm, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.55 * n))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="recall")
    ax.set_title(title)
    return _save(fig, path)


def device_bars(acc_by_model: dict[str, dict[str, float]], path, title: str = "") -> Path:
    """Grouped bars: accuracy per device (x) for each model (colour)."""
    plt = _plt()
    devices = sorted({d for accs in acc_by_model.values() for d in accs},
                     key=lambda d: (d[0] == "s", int(d[1:]) if d[1:].isdigit() else 0, d))
    n_models = len(acc_by_model)
    width = 0.8 / max(n_models, 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(devices) + 2), 3.6))
    for k, (model, accs) in enumerate(acc_by_model.items()):
        xs = np.arange(len(devices)) + (k - (n_models - 1) / 2) * width
        ax.bar(xs, [100 * accs.get(d, np.nan) for d in devices], width, label=model)
    ax.set_xticks(range(len(devices)), devices)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(n_models, 4))
    ax.set_title(title)
    return _save(fig, path)


def saliency_panels(spectrogram: np.ndarray, maps: list[tuple[str, np.ndarray]], path, title: str = "",
                    hop_seconds: float | None = None) -> Path:
    """Spectrogram (time, freq) above one panel per saliency map (time, freq) or (time,).

    Maps are drawn over the spectrogram (as in the two-stage paper's Figures 2-3)."""
    plt = _plt()
    spec = np.asarray(spectrogram, dtype=float)
    n = 1 + len(maps)
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.1 * n), sharex=True)
    axes = np.atleast_1d(axes)
    extent = None
    if hop_seconds:
        extent = (0, spec.shape[0] * hop_seconds, 0, spec.shape[1])
    kw = dict(origin="lower", aspect="auto", extent=extent)
    axes[0].imshow(spec.T, cmap="magma", **kw)
    axes[0].set_title(title or "log-mel spectrogram", fontsize=9)
    axes[0].set_ylabel("mel band")
    for ax, (name, m) in zip(axes[1:], maps):
        m = np.asarray(m, dtype=float)
        ax.imshow(spec.T, cmap="gray", **kw)
        if m.ndim == 1:
            m = np.repeat(m[:, None], spec.shape[1], axis=1)
        im = ax.imshow(m.T, cmap="jet", alpha=0.5, vmin=0, vmax=1, **kw)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("mel band")
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    axes[-1].set_xlabel("time (s)" if hop_seconds else "frame")
    return _save(fig, path)


def activity_plot(reference: np.ndarray, prediction: np.ndarray, class_names, path, hop_seconds: float = 0.1,
                  threshold: float | None = None, title: str = "") -> Path:
    """SED reference vs predicted activity (frames x classes) over time, classes on the y axis."""
    plt = _plt()
    ref, pred = np.asarray(reference, float), np.asarray(prediction, float)
    n = min(len(ref), len(pred))
    fig, axes = plt.subplots(2, 1, figsize=(9, 1.2 + 0.22 * len(class_names) * 2), sharex=True)
    extent = (0, n * hop_seconds, -0.5, len(class_names) - 0.5)
    for ax, m, name in ((axes[0], ref[:n], "reference"), (axes[1], pred[:n], "prediction")):
        ax.imshow(m.T, origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1, extent=extent,
                  interpolation="nearest")
        ax.set_yticks(range(len(class_names)), class_names, fontsize=6)
        ax.set_title(name + (f" (threshold {threshold})" if threshold is not None and name == "prediction" else ""),
                     fontsize=9)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
