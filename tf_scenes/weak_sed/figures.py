"""Figures of the weak-SED study: the paper's Figure 2 (what 2APAE computes on one clip) and
per-class average precision bars.  Every function writes a PNG atomically and returns its path.

Figure 2 (Deshmukh et al. 2021, Fig. 2) is drawn from the model's own dict outputs
(:func:`tf_scenes.weak_sed.model.build_2apae`): the standardised log-mel input, the decoder's
reconstruction, the frequency-attention maps of the 3 top-scoring classes, the first (frequency)
step's output, the second (time) step's attention, and the clip-level output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..plots import _plt, _save

FIGURE2_OUTPUTS = ("clip", "reconstruction", "freq_attention", "first_step", "time_attention")


def top_classes(clip: np.ndarray, k: int = 3) -> list[int]:
    """Indices of the k highest clip probabilities, best first (ties: lower index first)."""
    clip = np.asarray(clip, dtype=float)
    return [int(i) for i in np.argsort(-clip, kind="stable")[:k]]


def figure2(logmel: np.ndarray, outputs: Mapping[str, np.ndarray], class_names: Sequence[str], path, *,
            events: Sequence[tuple[str, float, float]] = (), hop_seconds: float = 1024 / 32000,
            top_k: int = 3, title: str = "") -> Path:
    """The paper's Figure 2 for one clip.

    Args:
      logmel: (frames, mels) the model's (standardised) input.
      outputs: one clip's 2APAE outputs without the batch axis: clip (classes,), reconstruction
        (frames, mels), freq_attention (classes, frames, mels), first_step (classes, frames),
        time_attention (classes, frames).
      class_names: names of the classes, in output order.
      events: the clip's reference events (label, onset s, offset s), shaded on the time axes.
      hop_seconds: frame hop (1024 / 32000 s).
      top_k: classes whose frequency attention is drawn (the paper: 3).
    """
    missing = [k for k in FIGURE2_OUTPUTS if k not in outputs]
    if missing:
        raise ValueError(f"figure2 needs the 2APAE outputs {list(FIGURE2_OUTPUTS)}; missing {missing}")
    plt = _plt()
    logmel = np.asarray(logmel, float)
    clip = np.asarray(outputs["clip"], float)
    n_classes = clip.shape[0]
    if len(class_names) != n_classes:
        raise ValueError(f"{len(class_names)} class names for {n_classes} outputs")
    frames, mels = logmel.shape
    top = top_classes(clip, top_k)
    true = {lab for lab, _, _ in events}
    seconds = frames * hop_seconds
    img = dict(origin="lower", aspect="auto", extent=(0, seconds, 0, mels))

    n_panels = 5 + len(top)
    ratios = [1.0] * (2 + len(top)) + [1.6, 1.0, 1.3]
    fig, axes = plt.subplots(n_panels, 1, figsize=(9, 1.75 * n_panels), gridspec_kw={"height_ratios": ratios})
    letters = iter("abcdefghijklmnop")

    def label(ax, text):
        ax.set_title(f"({next(letters)}) {text}", fontsize=9, loc="left")

    def shade(ax):
        for lab, on, off in events:
            ax.axvspan(on, off, color="tab:green", alpha=0.12, lw=0)

    axes[0].imshow(logmel.T, cmap="magma", **img)
    label(axes[0], "log-mel input (standardised)")
    axes[1].imshow(np.asarray(outputs["reconstruction"], float).T, cmap="magma", **img)
    label(axes[1], "reconstruction (auxiliary decoder)")
    fatt = np.asarray(outputs["freq_attention"], float)
    for ax, c in zip(axes[2:2 + len(top)], top):
        im = ax.imshow(fatt[c].T, cmap="viridis", **img)
        mark = "true" if class_names[c] in true else "not in clip"
        label(ax, f"frequency attention: {class_names[c]} (p = {clip[c]:.2f}, {mark})")
        fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01)
    for ax in axes[:2 + len(top)]:
        ax.set_ylabel("mel band", fontsize=8)

    k = 2 + len(top)
    first = np.asarray(outputs["first_step"], float)  # (classes, frames)
    im = axes[k].imshow(first, origin="lower", aspect="auto", cmap="viridis",
                        extent=(0, seconds, -0.5, n_classes - 0.5))
    ticks = sorted(set(top) | {class_names.index(t) for t in true if t in class_names})
    axes[k].set_yticks(ticks, [class_names[i] for i in ticks], fontsize=6)
    label(axes[k], "first-step output (frequency pooling), classes x time")
    fig.colorbar(im, ax=axes[k], fraction=0.025, pad=0.01)

    tatt = np.asarray(outputs["time_attention"], float)  # (classes, frames)
    t = (np.arange(frames) + 0.5) * hop_seconds
    for c in top:
        axes[k + 1].plot(t, tatt[c], lw=1, label=class_names[c])
    shade(axes[k + 1])
    axes[k + 1].set_xlim(0, seconds)
    axes[k + 1].legend(fontsize=6, loc="upper right")
    axes[k + 1].set_ylabel("attention", fontsize=8)
    label(axes[k + 1], "second-step (time) attention of the top classes; reference events shaded")
    for ax in axes[:k + 2]:
        ax.set_xlabel("time (s)", fontsize=8)

    colors = ["tab:green" if n in true else "tab:gray" for n in class_names]
    axes[k + 2].bar(np.arange(n_classes), clip, color=colors)
    axes[k + 2].set_xticks(np.arange(n_classes), class_names, rotation=90, fontsize=5)
    axes[k + 2].set_ylim(0, 1)
    axes[k + 2].set_ylabel("probability", fontsize=8)
    label(axes[k + 2], "clip-level output (green: classes in the clip)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def per_class_ap_bars(ap_by_model: Mapping[str, Mapping[str, float]], class_names: Sequence[str], path,
                      title: str = "") -> Path:
    """Grouped bars: average precision per class (x) for each model (colour); classes without a
    defined AP (no positive clip) are left blank."""
    plt = _plt()
    n_models = max(len(ap_by_model), 1)
    width = 0.8 / n_models
    fig, ax = plt.subplots(figsize=(max(8, 0.32 * len(class_names) * max(1, n_models / 2.5)), 3.8))
    for k, (model, aps) in enumerate(ap_by_model.items()):
        xs = np.arange(len(class_names)) + (k - (n_models - 1) / 2) * width
        ax.bar(xs, [aps.get(c, np.nan) for c in class_names], width, label=model)
    ax.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=6)
    ax.set_ylabel("average precision")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(n_models, 5))
    ax.set_title(title, fontsize=9)
    return _save(fig, path)
