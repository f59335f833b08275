"""Figures of the weak-SED study: the paper's Figure 2 (what 2APAE computes on one clip) and
per-class average precision bars. Each ``draw_*`` function returns the matplotlib Figure; the others
write it as PNG and PDF (:func:`tf_scenes.plots.save`) and return the PNG's path.

Figure 2 (Deshmukh et al. 2021, Fig. 2) is drawn from the model's own dict outputs
(:func:`tf_scenes.weak_sed.model.build_2apae`): the standardised log-mel input, the decoder's
reconstruction, the frequency-attention maps of the 3 top-scoring classes, the first (frequency)
step's output, the second (time) step's attention, and the clip-level output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..plots import save

FIGURE2_OUTPUTS = ("clip", "reconstruction", "freq_attention", "first_step", "time_attention")


def top_classes(clip: np.ndarray, k: int = 3) -> list[int]:
    """Indices of the k highest clip probabilities, best first (ties: lower index first)."""
    clip = np.asarray(clip, dtype=float)
    return [int(i) for i in np.argsort(-clip, kind="stable")[:k]]


def draw_figure2(logmel: np.ndarray, outputs: Mapping[str, np.ndarray], class_names: Sequence[str], *,
                 events: Sequence[tuple[str, float, float]] = (), fcfg=None, top_k: int = 3, title: str = ""):
    """The paper's Figure 2 for one clip, as a matplotlib Figure (two columns wide).

    Args:
      logmel: (frames, mels) the model's (standardised) input.
      outputs: one clip's 2APAE outputs without the batch axis: clip (classes,), reconstruction
        (frames, mels), freq_attention (classes, frames, mels), first_step (classes, frames),
        time_attention (classes, frames).
      class_names: names of the classes, in output order.
      events: the clip's reference events (label, onset s, offset s), shaded on the time axes.
      fcfg: the feature config of `logmel` (default: the weak-SED features, 1024 / 32000 s hop,
        64 Slaney mel bands 50 Hz - 16 kHz), which places frames in seconds and bands in Hz.
      top_k: classes whose frequency attention is drawn (the paper: 3).
    """
    from .. import plots

    missing = [k for k in FIGURE2_OUTPUTS if k not in outputs]
    if missing:
        raise ValueError(f"figure2 needs the 2APAE outputs {list(FIGURE2_OUTPUTS)}; missing {missing}")
    if fcfg is None:
        from .features import FEATURES as fcfg
    logmel = np.asarray(logmel, float)
    clip = np.asarray(outputs["clip"], float)
    n_classes = clip.shape[0]
    if len(class_names) != n_classes:
        raise ValueError(f"{len(class_names)} class names for {n_classes} outputs")
    frames, mels = logmel.shape
    grid = plots.feature_grid(fcfg, frames)
    top = top_classes(clip, top_k)
    true = {lab for lab, _, _ in events}
    width = 2 * plots.COLUMN_WIDTH + 0.3
    n_time = 2 + len(top) + 2  # panels on the time axis; the clip-level bars follow
    heights = [0.95] * (2 + len(top)) + [1.1, 0.9, 1.25]
    letters = iter("abcdefghijklmnop")

    def label(ax, text):
        ax.set_title(f"({next(letters)}) {text}", loc="left")

    def shade(ax):
        for lab, on, off in events:
            ax.axvspan(on, off, color="tab:green", alpha=0.15, lw=0)

    with plots.style():
        fig, axes, caxes = plots.stacked(heights, width=width, share=n_time, title=title)
        spec_label = plots.spectrogram_label(fcfg, standardised=True)
        lo, hi = np.percentile(logmel, [1, 99.5])  # the reconstruction on the input's colour scale
        plots.tf_image(fig, axes[0], caxes[0], logmel, grid, spec_label, cmap=plots.SPECTROGRAM_CMAP, vmin=lo, vmax=hi)
        label(axes[0], "Log-mel input (standardised)")
        plots.tf_image(fig, axes[1], caxes[1], np.asarray(outputs["reconstruction"], float), grid, spec_label,
                       cmap=plots.SPECTROGRAM_CMAP, vmin=lo, vmax=hi)
        label(axes[1], "Reconstruction (auxiliary decoder)")
        fatt = np.asarray(outputs["freq_attention"], float)
        for ax, cax, c in zip(axes[2:2 + len(top)], caxes[2:2 + len(top)], top):
            plots.tf_image(fig, ax, cax, fatt[c], grid, "Attention weight", cmap=plots.MAP_CMAP)
            mark = "in the clip" if class_names[c] in true else "not in the clip"
            label(ax, f"Frequency attention: {class_names[c]} (p = {clip[c]:.2f}, {mark})")

        k = 2 + len(top)
        first = np.asarray(outputs["first_step"], float)  # (classes, frames)
        # Only the rows of the classes shown above and of the clip's classes, each labelled: with all
        # 41 rows, the names of neighbouring classes (Cello, Chime) overprinted each other.
        rows = sorted(set(top) | {class_names.index(t) for t in true if t in class_names})
        im = axes[k].imshow(first[rows], origin="lower", aspect="auto", cmap=plots.MAP_CMAP,
                            interpolation="nearest", extent=(*grid.time_extent, -0.5, len(rows) - 0.5))
        axes[k].set_yticks(range(len(rows)), [class_names[i] + (" *" if class_names[i] in true else "")
                                              for i in rows], fontsize=6)
        plots.colorbar(fig, im, caxes[k], "Score")
        label(axes[k], "First-step output (frequency pooling) of these classes; * in the clip")

        tatt = np.asarray(outputs["time_attention"], float)  # (classes, frames)
        t = np.asarray(grid.times_s)
        for c in top:
            axes[k + 1].plot(t, tatt[c], lw=0.9, label=class_names[c])
        shade(axes[k + 1])
        axes[k + 1].set_xlim(*grid.time_extent)
        axes[k + 1].legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.1, ncol=len(top),
                           frameon=False)
        axes[k + 1].set_ylabel("Attention weight")
        label(axes[k + 1], "Second-step (time) attention; reference events shaded")
        plots.time_axis(axes[k + 1])

        colors = ["tab:green" if n in true else "0.55" for n in class_names]
        axes[k + 2].bar(np.arange(n_classes), clip, color=colors)
        axes[k + 2].set_xticks(np.arange(n_classes), class_names, rotation=90, fontsize=5)
        axes[k + 2].set_xlim(-0.6, n_classes - 0.4)
        axes[k + 2].set_ylim(0, 1)
        axes[k + 2].set_ylabel("Probability")
        label(axes[k + 2], "Clip-level output (green: classes in the clip)")
    return fig


def figure2(logmel: np.ndarray, outputs: Mapping[str, np.ndarray], class_names: Sequence[str], path, *,
            events: Sequence[tuple[str, float, float]] = (), fcfg=None, top_k: int = 3, title: str = "",
            vector: str | None = "pdf") -> Path:
    """Draw :func:`draw_figure2` to `path` (and its PDF beside it); returns `path`."""
    fig = draw_figure2(logmel, outputs, class_names, events=events, fcfg=fcfg, top_k=top_k, title=title)
    return save(fig, path, vector)


def draw_per_class_ap_bars(ap_by_model: Mapping[str, Mapping[str, float]], class_names: Sequence[str],
                           title: str = ""):
    """Grouped bars: average precision per class (x) for each model (colour); classes without a
    defined AP (no positive clip) are left blank. Two columns wide."""
    from .. import plots

    plt = plots._plt()
    n_models = max(len(ap_by_model), 1)
    width = 0.8 / n_models
    with plots.style():
        fig, ax = plt.subplots(figsize=(2 * plots.COLUMN_WIDTH + 0.3, 2.6), layout="constrained")
        for k, (model, aps) in enumerate(ap_by_model.items()):
            xs = np.arange(len(class_names)) + (k - (n_models - 1) / 2) * width
            ax.bar(xs, [aps.get(c, np.nan) for c in class_names], width, label=model)
        ax.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=5)
        ax.set_xlim(-0.6, len(class_names) - 0.4)
        ax.set_ylabel("Average precision")
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3, lw=0.5)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), borderaxespad=0.2, ncol=min(n_models, 5),
                  frameon=False)
        if title:
            fig.suptitle(plots.wrap(title, 7.0), fontsize=plots.RC["figure.titlesize"])
    return fig


def per_class_ap_bars(ap_by_model: Mapping[str, Mapping[str, float]], class_names: Sequence[str], path,
                      title: str = "", vector: str | None = "pdf") -> Path:
    """Draw :func:`draw_per_class_ap_bars` to `path` (and its PDF); returns `path`."""
    return save(draw_per_class_ap_bars(ap_by_model, class_names, title), path, vector)
