"""Figures of the suite, drawn to go into a paper as they are.

Conventions every figure follows (tests/test_plots.py checks them on the Figure objects):

* One journal column wide (:data:`COLUMN_WIDTH`, 3.4 in) with 6-8 pt text, so nothing is scaled
  down in print; stacked panels grow downwards.
* Time-frequency images: time in seconds (frame centres) on x, frequency in Hz on y. A mel
  spectrogram keeps one row per mel band, so its y axis is the mel scale; its ticks (100, 500, 1k,
  2k, 5k, 10k Hz) sit at the bands holding those frequencies.
* Every image has a labelled colour bar in a column of its own, so stacked panels keep one time
  axis of exactly the same width and limits.
* Perceptually uniform colour maps only: magma (spectrograms), viridis (saliency, attention,
  scores), cividis (confusion matrices), grey (binary reference activity).
* Written as PNG (300 dpi) and, beside it, as PDF (vector, text kept as text): the format of the
  path given is the first, ``vector`` names the second (None: the given path only).

Each figure has a ``draw_*`` function returning the matplotlib Figure (to adjust or save in another
format) and a function that draws and saves it and returns the path.
"""

from __future__ import annotations

import dataclasses
import textwrap
from contextlib import contextmanager
from pathlib import Path

import numpy as np

COLUMN_WIDTH = 3.4  # inches: one column of a two-column paper (IEEE 3.5 in, ACM / Elsevier 3.3 in)
FORMATS = (".png", ".pdf", ".svg")
DPI = 300
SPECTROGRAM_CMAP = "magma"
MAP_CMAP = "viridis"
MATRIX_CMAP = "cividis"
SALIENCY_LABEL = "Normalised saliency"
THRESHOLD_COLOR = "tab:red"
DB_LABEL = "Log-mel power (dB)"
TIME_LABEL = "Time (s)"
FREQ_LABEL = "Frequency (Hz)"
# Ticks of mel axes: round frequencies a reader finds on the page (Hz).
MEL_TICKS_HZ = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
# The order in which they are placed when not all fit: decades, then halves, then the rest.
MEL_TICKS_PRIORITY = (1000, 100, 10000, 500, 5000, 2000, 200, 20000, 50)
# Text sizes for a figure printed at COLUMN_WIDTH (journals ask for >= 6 pt).
RC = {
    "font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6.5, "ytick.labelsize": 6.5,
    "legend.fontsize": 6, "figure.titlesize": 7.5, "axes.titlepad": 3.0, "axes.linewidth": 0.6,
    "xtick.major.width": 0.6, "ytick.major.width": 0.6, "xtick.major.size": 2.5, "ytick.major.size": 2.5,
    "xtick.minor.size": 1.5, "ytick.minor.size": 1.5, "lines.linewidth": 1.0, "patch.linewidth": 0.5,
    "legend.handlelength": 1.5, "legend.borderpad": 0.3, "image.cmap": MAP_CMAP,
    # Vector output: TrueType fonts (editable, accepted by publishers), SVG text as text, and
    # reproducible ids so that the same figure gives the same file.
    "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none", "svg.hashsalt": "tf-scenes",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def style():
    """The rc settings of the suite's figures (fonts, line widths, vector output)."""
    import matplotlib

    with matplotlib.rc_context(RC):
        yield


# ----------------------------------------------------------------------------------------------
# time-frequency grids


@dataclasses.dataclass(frozen=True, eq=False)
class TimeFrequencyGrid:
    """Where each cell of a (frames, bins) image lies: frame centre times (s) and bin centre
    frequencies (Hz). ``mel_scale`` ("htk" / "slaney") when the bins are mel bands (drawn one row
    per band, so the axis is the mel scale), None for linear frequency bins."""

    times_s: np.ndarray
    freqs_hz: np.ndarray
    mel_scale: str | None = None

    @property
    def hop_s(self) -> float:
        t = np.asarray(self.times_s, float)
        return float(t[1] - t[0]) if len(t) > 1 else 1.0

    @property
    def time_extent(self) -> tuple[float, float]:
        """(start, end) s of the frames, each frame one hop wide around its centre."""
        t = np.asarray(self.times_s, float)
        return float(t[0] - self.hop_s / 2), float(t[-1] + self.hop_s / 2)

    def freq_extent(self) -> tuple[float, float]:
        """y limits of an image: band index 0..n (mel) or the bins' frequency span in Hz (linear)."""
        f = np.asarray(self.freqs_hz, float)
        if self.mel_scale:
            return 0.0, float(len(f))
        df = float(f[1] - f[0]) if len(f) > 1 else 1.0
        return float(f[0] - df / 2), float(f[-1] + df / 2)

    def band_position(self, hz) -> np.ndarray:
        """y coordinate of frequencies (Hz) on this grid's frequency axis."""
        hz = np.asarray(hz, float)
        if not self.mel_scale:
            return hz
        from .features.filters import hz_to_mel

        htk = self.mel_scale == "htk"
        centres = hz_to_mel(np.asarray(self.freqs_hz, float), htk)
        return np.interp(hz_to_mel(hz, htk), centres, np.arange(len(centres))) + 0.5


def mel_band_frequencies(fcfg) -> np.ndarray:
    """(n_mels,) centre frequency (Hz) of each mel band of a log-mel feature config (the peaks of
    its triangles: n_mels + 2 edges equally spaced on the config's mel scale)."""
    from .features.filters import hz_to_mel, mel_to_hz

    htk = fcfg.mel_scale == "htk"
    edges = mel_to_hz(np.linspace(hz_to_mel(fcfg.fmin, htk), hz_to_mel(fcfg.mel_fmax, htk), fcfg.n_mels + 2), htk)
    return edges[1:-1]


def frame_times(fcfg, n_frames: int) -> np.ndarray:
    """(n_frames,) centre time (s) of each output frame of a log-mel feature config: frame t is
    centred on t * hop (``center``) or t * hop + n_fft / 2; frames dropped by valid deltas (2N at the
    start) and the sample lost to "valid" pre-emphasis shift the first one."""
    sr = float(fcfg.sample_rate)
    first = 0.0 if fcfg.center else fcfg.n_fft / 2
    if fcfg.deltas and not fcfg.delta_padding:
        first += 2 * fcfg.delta_width * fcfg.hop_length
    if fcfg.pre_emphasis is not None and fcfg.pre_emphasis_mode == "valid":
        first += 1
    return (first + np.arange(n_frames) * fcfg.hop_length) / sr


def feature_grid(fcfg, n_frames: int) -> TimeFrequencyGrid:
    """The grid of a log-mel feature config's output (frames, mel bands)."""
    return TimeFrequencyGrid(frame_times(fcfg, n_frames), mel_band_frequencies(fcfg), fcfg.mel_scale)


def frame_grid(hop_s: float, n_frames: int, freqs_hz=(), mel_scale: str | None = None) -> TimeFrequencyGrid:
    """Frames that each cover [i hop, (i + 1) hop) s (SED activity, class x time outputs)."""
    return TimeFrequencyGrid((np.arange(n_frames) + 0.5) * float(hop_s), np.asarray(freqs_hz, float), mel_scale)


def log_mel_db(fcfg, wav: np.ndarray, n_frames: int) -> np.ndarray:
    """The log-mel of a feature config before any scaling, standardisation or deltas, in dB, on the
    frames of that config's output: ``(n_frames, n_mels)`` for a display panel.

    A model's input is often min-max scaled or standardised per clip, which has no unit; this
    recomputes the same mel power from the waveform (``wav`` at ``fcfg``'s sample rate) and
    drops the frames that valid (unpadded) deltas lose, so it lines up with maps on the output's grid.
    """
    from .features import extract

    raw = extract(fcfg.replace(scaling="none", deltas=0), wav)[:, :, 0].astype(np.float64)
    skip = 2 * fcfg.delta_width if fcfg.deltas and not fcfg.delta_padding else 0
    raw = raw[skip:skip + n_frames]
    if fcfg.log == "ln":  # ln of power (power 2) or of magnitude (power 1)
        return raw * (10.0 / np.log(10.0)) * (1.0 if fcfg.power == 2 else 2.0)
    return 10.0 * np.log10(np.maximum(raw, 1e-10) ** (1.0 if fcfg.power == 2 else 2.0))


def spectrogram_label(fcfg, standardised: bool = False) -> str:
    """Colour-bar label of a log-mel feature config's output (what its values are)."""
    what = "Log-mel" if fcfg.log == "ln" else "Mel power"
    if standardised:
        return f"{what} (standardised)"
    return {"minmax_clip": f"{what} (min-max scaled)", "per_band_standardise": f"{what} (standardised per band)",
            }.get(fcfg.scaling, f"{what} (ln {'power' if fcfg.power == 2 else 'magnitude'})"
                  if fcfg.log == "ln" else what)


def frequency_paths_note(edges, grid: TimeFrequencyGrid, n_bands: int, what: str = "CAM") -> str:
    """Caption note for a model that processes frequency bands in separate paths (the two-stage
    ResNet: mel bands 0-63 and 64-127), whose maps therefore change abruptly at each path edge."""
    edges = [int(e) for e in edges]
    ranges = list(zip([0, *edges], [*edges, n_bands]))
    bands = " and ".join(f"{lo}-{hi - 1}" for lo, hi in ranges)
    hz = ", ".join(_hz_text(_edge_hz(grid, e)) for e in edges)
    return (f"The model processes mel bands {bands} in separate paths (each with its own weights and batch "
            f"normalisation), joined along frequency only before its 1x1 class layer: each band range of the "
            f"{what} comes from one path, on that path's own scale, so the {what} can jump at band "
            f"{', '.join(map(str, edges))} ({hz}, dashed line), a property of the model, not of the sound.")


def _edge_hz(grid: TimeFrequencyGrid, edge: int) -> float:
    f = np.asarray(grid.freqs_hz, float)
    return float(np.sqrt(f[edge - 1] * f[edge])) if 0 < edge < len(f) else float(f[min(edge, len(f) - 1)])


def _hz_text(hz: float) -> str:
    return f"{hz / 1000:.1f} kHz" if hz >= 1000 else f"{hz:.0f} Hz"


def hz_formatter():
    """Tick formatter of a linear frequency axis in Hz: 500, 1k, 2.5k."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: _tick_text(v))


def _tick_text(hz: float) -> str:
    """Tick label of a frequency in Hz: 100, 500, 1k, 2.5k."""
    return f"{hz / 1000:g}k" if hz >= 1000 else f"{hz:g}"


# ----------------------------------------------------------------------------------------------
# layout and axes


def stacked(heights, *, width: float = COLUMN_WIDTH, colorbars: bool = True, share: int | None = None,
            title: str = ""):
    """A column of panels (heights in inches) with a colour-bar column beside it.

    Returns (fig, axes, caxes): the first ``share`` panels (default all) share one x axis; caxes[i]
    is hidden until :func:`colorbar` uses it, so the panels keep the same width whether or not they
    have a colour bar."""
    plt = _plt()
    n = len(heights)
    share = n if share is None else share
    fig = plt.figure(figsize=(width, sum(heights) + (0.25 if title else 0.0)), layout="constrained")
    fig.get_layout_engine().set(h_pad=0.02, w_pad=0.02, hspace=0.03, wspace=0.02)
    gs = fig.add_gridspec(n, 2 if colorbars else 1, height_ratios=list(heights),
                          width_ratios=[1.0, 0.035] if colorbars else [1.0])
    axes, caxes = [], []
    for i in range(n):
        ax = fig.add_subplot(gs[i, 0], sharex=axes[0] if 0 < i < share else None)
        axes.append(ax)
        if colorbars:
            cax = fig.add_subplot(gs[i, 1])
            cax.set_visible(False)
            caxes.append(cax)
        else:
            caxes.append(None)
    for ax in axes[:max(share - 1, 0)]:
        ax.tick_params(labelbottom=False)
    if title:
        fig.suptitle(wrap(title, width), fontsize=RC["figure.titlesize"])
    return fig, axes, caxes


def wrap(text: str, width: float = COLUMN_WIDTH, size: float = 7.0) -> str:
    """`text` wrapped to the width of a figure `width` inches wide at `size` pt."""
    chars = max(20, int(width * 72 / (0.52 * size)))
    return "\n".join(textwrap.wrap(text, chars)) if text else ""


def colorbar(fig, mappable, cax, label: str, ticks=None):
    """A colour bar in its own axes (from :func:`stacked`), labelled."""
    cax.set_visible(True)
    if len(label) > 16 and " (" in label:  # a long label on a short panel: unit on a second line
        label = label.replace(" (", "\n(", 1)
    cb = fig.colorbar(mappable, cax=cax, label=label, ticks=ticks)
    cb.outline.set_linewidth(0.5)
    cb.ax.tick_params(labelsize=6, width=0.5, length=2)
    return cb


def frequency_axis(ax, grid: TimeFrequencyGrid) -> None:
    """y axis in Hz: on a mel grid, ticks at round frequencies placed at their mel band."""
    ax.set_ylabel(FREQ_LABEL)
    f = np.asarray(grid.freqs_hz, float)
    if grid.mel_scale:
        cands = [t for t in MEL_TICKS_HZ if f[0] <= t <= f[-1]]
        pos = dict(zip(cands, grid.band_position(cands))) if cands else {}
        # Tick labels closer than ~9 pt on the page would collide (6.5 pt text); the gridspec
        # position is close to the final one. Decades first, then the others where they fit.
        height_pt = max(ax.get_position().height * ax.figure.get_figheight() * 72.0, 1.0)
        min_gap = max(0.07, 9.0 / height_pt) * len(f)
        keep = []
        for t in sorted(cands, key=MEL_TICKS_PRIORITY.index):
            if all(abs(pos[t] - p) >= min_gap for _, p in keep):
                keep.append((t, pos[t]))
        keep.sort()
        ax.set_yticks([p for _, p in keep], [_tick_text(t) for t, _ in keep])
        ax.set_ylim(*grid.freq_extent())
    else:
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(5, steps=[1, 2, 2.5, 5, 10]))
        ax.yaxis.set_major_formatter(hz_formatter())
        ax.set_ylim(*grid.freq_extent())


def tf_image(fig, ax, cax, data, grid: TimeFrequencyGrid, label: str, *, cmap: str = MAP_CMAP,
             vmin=None, vmax=None):
    """A (frames, bins) image on its grid: time (s) on x, frequency (Hz) on y, colour bar `label`."""
    data = np.asarray(data, float)
    im = ax.imshow(data.T, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                   extent=(*grid.time_extent, *grid.freq_extent()), interpolation="nearest")
    frequency_axis(ax, grid)
    ax.set_xlim(*grid.time_extent)
    colorbar(fig, im, cax, label)
    return im


def time_axis(ax) -> None:
    ax.set_xlabel(TIME_LABEL)


def caption(fig, text: str, width: float = COLUMN_WIDTH) -> None:
    """A note under the figure (kept inside the saved file by the tight bounding box)."""
    if text:
        fig.text(0.0, 0.0, wrap(text, width, 6.5), ha="left", va="top", fontsize=6.5, style="italic",
                 transform=fig.transFigure)


# ----------------------------------------------------------------------------------------------
# saving


@contextmanager
def _quiet_font_subsetting():
    """fontTools logs every table it prunes at INFO while embedding fonts in a PDF; that is noise in
    the suite's logs."""
    import logging

    logger = logging.getLogger("fontTools")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def check_format(path) -> Path:
    """`path` if its extension is a figure format the suite writes (.png, .pdf, .svg)."""
    from .errors import ConfigError

    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ConfigError(f"{path}: figure format {path.suffix or '(none)'!r} is not supported; "
                          f"name the file .png, .pdf or .svg")
    return path


def save(fig, path, vector: str | None = "pdf") -> Path:
    """Write `fig` to `path` (its extension gives the format) and, when `vector` is given and differs,
    to the same name with that extension; atomically. Returns `path`."""
    from .io_utils import atomic_path

    path = Path(path)
    try:
        if path.is_dir():  # atomic_path's final rename would fail with a bare IsADirectoryError
            from .errors import OutputDirError

            raise OutputDirError(f"{path}: is a directory; a figure needs a file name (e.g. fig.png)")
        check_format(path)
        if vector:
            check_format(path.with_suffix(f".{vector}"))
        targets = [path]
        if vector and path.suffix.lower() != f".{vector}":
            targets.append(path.with_suffix(f".{vector}"))
        with style(), _quiet_font_subsetting():
            for target in targets:
                fmt = target.suffix.lower()[1:]
                # No creation date in vector files: the same figure gives the same bytes.
                meta = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt)
                with atomic_path(target, suffix=target.suffix) as tmp:
                    fig.savefig(tmp, dpi=DPI, bbox_inches="tight", pad_inches=0.03, format=fmt, metadata=meta)
    finally:
        _plt().close(fig)
    return path


# ----------------------------------------------------------------------------------------------
# figures


def draw_confusion_matrix(cm: np.ndarray, class_names, title: str = ""):
    """Row-normalised confusion matrix (rows: true class) with counts in the cells."""
    cm = np.asarray(cm, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    with style():
        # No layout engine: the colour bar is cut from the square image's own axes
        # (make_axes_locatable), so it is exactly as tall as the matrix; the tight bounding box of
        # save() trims the margins.
        fig = _plt().figure(figsize=(COLUMN_WIDTH, COLUMN_WIDTH))
        ax = fig.add_axes((0.25, 0.22, 0.54, 0.62))
        from mpl_toolkits.axes_grid1 import make_axes_locatable

        cax = make_axes_locatable(ax).append_axes("right", size="5%", pad=0.06)
        if title:
            ax.set_title(wrap(title, COLUMN_WIDTH), fontsize=RC["figure.titlesize"])
        im = ax.imshow(norm, cmap=MATRIX_CMAP, vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks(range(n), class_names, rotation=45, ha="right", rotation_mode="anchor", fontsize=6)
        ax.set_yticks(range(n), class_names, fontsize=6)
        ax.set_xlabel("Predicted class")
        ax.set_ylabel("True class")
        size = 6 if n <= 10 else 5
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=size,
                        color="black" if norm[i, j] > 0.55 else "white")
        colorbar(fig, im, cax, "Recall (row-normalised)")
    return fig


def confusion_matrix(cm: np.ndarray, class_names, path, title: str = "", vector: str | None = "pdf") -> Path:
    """Draw :func:`draw_confusion_matrix` to `path` (and its PDF)."""
    return save(draw_confusion_matrix(cm, class_names, title), path, vector)


def _device_order(d: str):
    return d[0] == "s", int(d[1:]) if d[1:].isdigit() else 0, d


def draw_device_bars(acc_by_model: dict[str, dict[str, float]], title: str = ""):
    """Grouped bars: accuracy per device (x) for each model (colour)."""
    devices = sorted({d for accs in acc_by_model.values() for d in accs}, key=_device_order)
    n_models = len(acc_by_model)
    width = 0.8 / max(n_models, 1)
    with style():
        fig, (ax,), _ = stacked([2.3], colorbars=False, title=title)
        for k, (model, accs) in enumerate(acc_by_model.items()):
            xs = np.arange(len(devices)) + (k - (n_models - 1) / 2) * width
            ax.bar(xs, [100 * accs.get(d, np.nan) for d in devices], width, label=model)
        ax.set_xticks(range(len(devices)), devices)
        ax.set_xlabel("Device")
        ax.set_ylabel("Accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3, lw=0.5)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), borderaxespad=0.2, ncol=min(n_models, 3),
                  frameon=False)
    return fig


def device_bars(acc_by_model: dict[str, dict[str, float]], path, title: str = "",
                vector: str | None = "pdf") -> Path:
    """Draw :func:`draw_device_bars` to `path` (and its PDF)."""
    return save(draw_device_bars(acc_by_model, title), path, vector)


def draw_saliency(spectrogram: np.ndarray, maps, grid: TimeFrequencyGrid, *, title: str = "",
                  spectrogram_label: str = "Log-mel", map_label: str = SALIENCY_LABEL, note: str = "",
                  band_edges=()):
    """Spectrogram (frames, bins) above one panel per map, all on one time axis.

    maps: [(title, map)], a map (frames, bins) drawn as an image on the spectrogram's grid (colour
    bar `map_label`, 0-1), or (frames,) drawn as a curve over time. band_edges: mel bands where the
    model's separate frequency paths meet (dashed lines on the maps); note: a caption under the
    figure (e.g. :func:`frequency_paths_note`)."""
    spec = np.asarray(spectrogram, dtype=float)
    heights = [1.25] + [1.25 if np.ndim(m) == 2 else 0.8 for _, m in maps]
    with style():
        fig, axes, caxes = stacked(heights, title=title)
        tf_image(fig, axes[0], caxes[0], spec, grid, spectrogram_label, cmap=SPECTROGRAM_CMAP)
        axes[0].set_title("Spectrogram", loc="left")
        for ax, cax, (name, m) in zip(axes[1:], caxes[1:], maps):
            m = np.asarray(m, dtype=float)
            if m.ndim == 2:
                tf_image(fig, ax, cax, m, grid, map_label, vmin=0, vmax=1)
                for e in band_edges:  # band e starts at y = e on a mel grid
                    ax.axhline(e if grid.mel_scale else _edge_hz(grid, e), color="white", lw=0.8, ls=(0, (4, 2)))
            else:
                t = np.asarray(grid.times_s, float)[: len(m)]
                ax.plot(t, m, color="tab:blue")
                ax.fill_between(t, 0, m, color="tab:blue", alpha=0.25, lw=0)
                ax.set_ylim(0, 1.05)
                ax.set_xlim(*grid.time_extent)
                ax.set_ylabel(map_label.replace(" ", "\n", 1) if len(map_label) > 12 else map_label)
            ax.set_title(name, loc="left")
        time_axis(axes[-1])
        caption(fig, note)
    return fig


def saliency_panels(spectrogram: np.ndarray, maps, path, title: str = "", *, grid: TimeFrequencyGrid,
                    spectrogram_label: str = "Log-mel", map_label: str = SALIENCY_LABEL, note: str = "",
                    band_edges=(), vector: str | None = "pdf") -> Path:
    """Draw :func:`draw_saliency` to `path` (and its PDF)."""
    fig = draw_saliency(spectrogram, maps, grid, title=title, spectrogram_label=spectrogram_label,
                        map_label=map_label, note=note, band_edges=band_edges)
    return save(fig, path, vector)


def _runs_above(x: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """[start, end) frame runs where x > threshold."""
    on = np.concatenate([[False], np.asarray(x) > threshold, [False]])
    d = np.flatnonzero(np.diff(on.astype(np.int8)))
    return list(zip(d[::2], d[1::2]))


def draw_activity(reference: np.ndarray, prediction: np.ndarray, class_names, hop_seconds: float = 0.1,
                  threshold: float | None = None, title: str = ""):
    """SED reference (on / off) above the predicted probabilities (frames x classes) on one time
    axis. With a threshold, the runs of frames above it (the detected events) are outlined in red,
    the threshold is a red line on the probability colour bar, and the legend names it
    ("threshold T")."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Rectangle

    ref, pred = np.asarray(reference, float), np.asarray(prediction, float)
    n = min(len(ref), len(pred))
    c = len(class_names)
    grid = frame_grid(hop_seconds, n)
    extent = (*grid.time_extent, -0.5, c - 0.5)
    h = 0.35 + 0.1 * c
    with style():
        fig, axes, caxes = stacked([h, h], title=title)
        # Two colours, not a grey ramp: the reference is binary.
        im = axes[0].imshow(ref[:n].T > 0.5, origin="lower", aspect="auto", extent=extent, interpolation="nearest",
                            cmap=ListedColormap(["white", "0.15"]), norm=BoundaryNorm([-0.5, 0.5, 1.5], 2))
        cb = colorbar(fig, im, caxes[0], "Reference", ticks=[0, 1])
        cb.ax.set_yticklabels(["off", "on"])
        axes[0].set_title("Reference events", loc="left")
        im = axes[1].imshow(pred[:n].T, origin="lower", aspect="auto", cmap=MAP_CMAP, vmin=0, vmax=1,
                            extent=extent, interpolation="nearest")
        cb = colorbar(fig, im, caxes[1], "Probability")
        axes[1].set_title("Predicted probability", loc="left")
        if threshold is not None:
            t0, hop = grid.time_extent[0], grid.hop_s
            for k in range(c):
                for a, b in _runs_above(pred[:n, k], threshold):
                    axes[1].add_patch(Rectangle((t0 + a * hop, k - 0.5), (b - a) * hop, 1.0, fill=False,
                                                edgecolor=THRESHOLD_COLOR, lw=0.7))
            cb.ax.axhline(threshold, color=THRESHOLD_COLOR, lw=1.2)
            # The frames above the threshold are drawn outlined, so the legend shows an outline.
            handle = Rectangle((0, 0), 1, 1, fill=False, edgecolor=THRESHOLD_COLOR, lw=0.9)
            axes[1].legend([handle], [f"threshold {threshold:g}"], loc="lower right", bbox_to_anchor=(1.0, 1.0),
                           borderaxespad=0.1, frameon=False, handlelength=1.2, handleheight=0.8)
        for ax in axes:
            ax.set_yticks(range(c), class_names, fontsize=5.5 if c > 8 else 6.5)
            ax.set_xlim(*grid.time_extent)
        time_axis(axes[-1])
    return fig


def activity_plot(reference: np.ndarray, prediction: np.ndarray, class_names, path, hop_seconds: float = 0.1,
                  threshold: float | None = None, title: str = "", vector: str | None = "pdf") -> Path:
    """Draw :func:`draw_activity` to `path` (and its PDF)."""
    return save(draw_activity(reference, prediction, class_names, hop_seconds, threshold, title), path, vector)


def pca_2d(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) -> ((n, 2) sklearn PCA scores, (2,) fraction of the variance each component explains)."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed)
    xy = pca.fit_transform(np.asarray(x, np.float64))
    return xy, np.asarray(pca.explained_variance_ratio_, float)


def component_labels(method: str, explained=None) -> tuple[str, str]:
    """Axis labels of a 2-D projection: "PC1 (42.0 % of variance)" for PCA, "t-SNE 1" otherwise."""
    if explained is not None:
        return tuple(f"PC{i + 1} ({100 * float(v):.1f} % of variance)" for i, v in enumerate(explained[:2]))
    name = {"tsne": "t-SNE"}.get(method, method.upper())
    return f"{name} 1", f"{name} 2"


def draw_projection(panels, labels: np.ndarray, class_names, *, method: str = "pca", title: str = "",
                    width: float = 2 * COLUMN_WIDTH + 0.3):
    """Scatter plots of 2-D projections side by side, one colour per class.

    panels: [(title, (n, 2) points, explained)] with `explained` the (2,) variance fractions of
    PCA's components (None for t-SNE); labels: (n,) class index of each point."""
    plt = _plt()
    labels = np.asarray(labels)
    colours = plt.get_cmap("tab10")
    with style():
        fig, axes = plt.subplots(1, len(panels), figsize=(width, 2.6), layout="constrained", squeeze=False)
        for ax, (name, xy, explained) in zip(axes[0], panels):
            xy = np.asarray(xy, float)
            for c, cname in enumerate(class_names):
                sel = labels == c
                ax.scatter(xy[sel, 0], xy[sel, 1], s=5, color=colours(c % 10), label=cname, alpha=0.8, lw=0)
            xl, yl = component_labels(method, explained)
            ax.set_xlabel(xl)
            ax.set_ylabel(yl)
            ax.set_title(name, loc="left")
            ax.tick_params(labelsize=6)
        fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right center", frameon=False,
                   markerscale=2.0, title="Class")
        if title:
            fig.suptitle(wrap(title, width), fontsize=RC["figure.titlesize"])
    return fig
