"""`tf-scenes saliency RUN_OR_EXPORT_DIR AUDIO.wav --out fig.png`: saliency drawn over the spectrogram.

Accepted folders: a model run folder (model.json), a folder of a system of runs (the two-stage
study folder: the 3-class and 10-class ResNet CAMs side by side, as in the paper's Figures 2-3), or
an export folder written by `tf-scenes export` (it records the run folders it came from).

Defaults (method, layer, output head) come from the run's model card: CAM from the ResNet's class
conv, Grad-CAM at a mid conv layer for the FCNNs, DcaseNet per task head (--output scene|tags|frames),
the weak-SED model's own attention maps beside Grad-CAM, Grad-CAM over time for the raw-waveform model
(with a second figure, OUT_filters.png, of its first-layer filter responses sorted by peak frequency).

The figure (docs/figures.md): the card's log-mel in dB (a linear-frequency spectrogram for waveform
models) above the maps, on one time axis in seconds, frequency in Hz, a labelled colour bar beside
each image; edges between a model's separate frequency paths (the two-stage ResNet: band 64) are
marked and explained in the caption. Written in the format of --out's extension (.png, .pdf, .svg)
and, beside it, as PDF (--vector svg: SVG; --vector none: nothing more).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .errors import TFScenesError

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path, help="model run folder, two-stage study folder or export folder")
    parser.add_argument("audio", type=Path, help="audio file")
    parser.add_argument("--method", choices=("cam", "gradcam"), help="default: the model card's")
    parser.add_argument("--layer", help="layer name (default: the model card's)")
    parser.add_argument("--class", dest="class_", help="class name or index (default: the top class)")
    parser.add_argument("--output", help="output head for multi-output models (e.g. scene, tags, frames, clip)")
    parser.add_argument("--out", type=Path, required=True,
                        help="figure file: .png, .pdf or .svg (its extension gives the format)")
    parser.add_argument("--vector", choices=("pdf", "svg", "none"), default="pdf",
                        help="also write the figure in this vector format beside --out (same name)")


def resolve_runs(path: Path) -> list[Path]:
    """Run folders to explain: one model, or the runs a family explains side by side for a
    system folder or its export (two-stage: [3-class, 10-class])."""
    from .families import all_families

    path = Path(path)
    if (path / "model.json").exists():
        return [path]
    for family in all_families():
        runs = family.saliency_runs(path) if family.saliency_runs else None
        if runs:
            return list(runs)
    if (path / "assets.extra" / "metadata.json").exists():
        from .export import read_export_metadata

        meta, _ = read_export_metadata(path)
        runs = [Path(r) for r in meta.get("runs") or ([meta["run"]] if isinstance(meta.get("run"), str) else [])]
        missing = [str(r) for r in runs if not (r / "model.json").exists()]
        if not runs or missing:
            raise TFScenesError(f"{path}: the export does not point at readable run folders "
                                f"({', '.join(missing) or 'none recorded'}); pass a run folder instead")
        return runs[:1]
    raise TFScenesError(f"{path}: not a model run folder, a system folder or a tf-scenes export")


def check_out(out: Path) -> Path:
    """Fail before any work when the figure cannot be written at `out` (OutputDirError)."""
    from .errors import OutputDirError
    from .io_utils import ensure_writable_dir

    out = Path(out)
    if out.is_dir():
        raise OutputDirError(f"{out}: is a directory; --out takes the figure's file name (e.g. fig.png)")
    from .plots import check_format

    check_format(out)
    ensure_writable_dir(out.parent if str(out.parent) else Path("."), min_free_bytes=16 * 2**20)
    return out


def _brief(names: list[str], n: int = 8) -> str:
    """The layer names, or the last `n` of them (nearest the output, where saliency is usually taken)."""
    if len(names) <= n:
        return ", ".join(names) or "none"
    return f"({len(names)}, the last {n}) {', '.join(names[-n:])}"


def check_layer(model, run_dir: Path, layer: str, method: str, n_classes: int | None) -> None:
    """TFScenesError naming the run unless `layer` exists in `model` and suits `method`."""
    from . import saliency

    if layer not in [lay.name for lay in model.layers]:
        raise TFScenesError(f"{run_dir}: the model has no layer {layer!r}; conv layers to explain: "
                            f"{_brief(saliency.layer_names(model))}")
    try:
        channels = model.get_layer(layer).output.shape[-1]
    except (AttributeError, ValueError):  # a layer without a single output tensor
        raise TFScenesError(f"{run_dir}: layer {layer!r} has no single output to explain; conv layers: "
                            f"{_brief(saliency.layer_names(model))}") from None
    if method == "cam" and n_classes is not None and channels != n_classes:
        raise TFScenesError(f"{run_dir}: CAM needs a class-map layer with one channel per class ({n_classes}); "
                            f"{layer!r} has {channels}: use --method gradcam, or --layer a class-map layer")


def model_input(card: dict, wav: np.ndarray) -> np.ndarray:
    """Waveform -> the Keras model's input batch (features, standardised / squeezed per the card)."""
    from .features import extract
    from .model_io import feature_config_of

    x = extract(feature_config_of(card), wav)  # (frames, mels, ch) or (windows, samples, 1)
    if card["input"] == "waveform":
        return x[..., 0] if x.ndim == 3 else x[None, :]
    norm = card.get("normalization")
    if norm:
        x = (x - np.asarray(norm["mean"], np.float32)) / np.maximum(np.asarray(norm["std"], np.float32), 1e-8)
    if card.get("squeeze_channel"):
        x = x[..., 0]
    return x[None]


def _class_index(card: dict, output: str | None, class_arg, scores) -> tuple[int, str]:
    names = card["outputs"].get(output) if output else next(iter(card["outputs"].values()))
    if class_arg is None:
        s = np.asarray(scores)
        s = s.reshape(s.shape[0], -1, s.shape[-1]).max(axis=1)[0]
        c = int(np.argmax(s))
    elif str(class_arg).isdigit():
        c = int(class_arg)
    else:
        if not names or class_arg not in names:
            raise TFScenesError(f"unknown class {class_arg!r}; classes: {', '.join(names or [])}")
        c = names.index(class_arg)
    if names and not 0 <= c < len(names):
        raise TFScenesError(f"class index {c} out of range (0..{len(names) - 1})")
    return c, (names[c] if names else str(c))


def explain(run_dir: Path, wav: np.ndarray, method=None, layer=None, class_arg=None, output=None):
    """Saliency of one run on one waveform: (display spectrogram (T, F), [(title, map)], card)."""
    spec, panels, card, _ = _explain(run_dir, wav, method, layer, class_arg, output)
    return spec, panels, card


def _explain(run_dir: Path, wav: np.ndarray, method=None, layer=None, class_arg=None, output=None):
    """:func:`explain` plus the Keras model."""
    from . import saliency
    from .model_io import load_run_model

    model, card = load_run_model(run_dir)
    defaults = card.get("saliency") or {}
    method = method or defaults.get("method", "gradcam")
    layer = layer or defaults.get("layer")
    outputs = card["outputs"]
    if isinstance(model.output, dict):
        output = output or defaults.get("output") or next(iter(outputs))
        if output not in model.output:
            raise TFScenesError(f"{run_dir}: the model has no output {output!r}; outputs: {', '.join(model.output)}")
    else:
        output = None
    if not layer:
        convs = saliency.layer_names(model)
        if not convs:
            raise TFScenesError(f"{run_dir}: no conv layer to explain; pass --layer")
        layer = convs[-1]
    names = outputs.get(output) if output else next(iter(outputs.values()))
    check_layer(model, run_dir, layer, method, len(names) if names else None)
    x = model_input(card, wav)
    pred = model(x, training=False)
    scores = pred[output] if isinstance(pred, dict) else pred
    c, cname = _class_index(card, output, class_arg, scores)
    saliency_fn = saliency.cam if method == "cam" else saliency.grad_cam

    def fn(*a, **kw):
        try:
            return saliency_fn(*a, **kw)
        except ValueError as e:  # e.g. the chosen output does not depend on the layer
            raise TFScenesError(f"{run_dir}: {e}") from None

    if card["input"] == "waveform":  # windows of raw audio: stitch the per-window time maps
        maps = fn(model, x, layer, class_index=c, output=output)  # (windows, samples)
        m = _stitch(maps, card, len(wav))
        spec = _display_spectrogram(wav, card["sample_rate"])
        frames = spec.shape[0]
        m = np.interp(np.linspace(0, len(m) - 1, frames), np.arange(len(m)), m)
        panels = [(f"{method} at {layer}: {cname}", m)]
    else:
        m = fn(model, x, layer, class_index=c, output=output)[0]
        spec = x[0] if x.ndim == 3 else x[0, :, :, 0]
        panels = [(f"{card['family']} {method} at {layer}" + (f" [{output}]" if output else "") + f": {cname}", m)]
        if isinstance(pred, dict):  # models with their own attention maps (weak-SED 2APAE, dilated CNN)
            for key in defaults.get("attention") or ("freq_attention", "time_attention"):
                if key in pred:
                    a = np.asarray(pred[key])[0, c]  # (frames, mels) or (frames,)
                    a = (a - a.min()) / max(float(a.max() - a.min()), 1e-12)
                    panels.append((f"model {key.replace('_', ' ')}: {cname}", a))
    return spec, panels, card, model


def _stitch(maps: np.ndarray, card: dict, n: int) -> np.ndarray:
    from .model_io import feature_config_of

    fcfg = feature_config_of(card)
    win = maps.shape[1]
    hop = int(round(fcfg.hop_seconds * fcfg.sample_rate))
    acc, cnt = np.zeros(max(n, win)), np.zeros(max(n, win))
    for i, m in enumerate(maps):
        s = i * hop
        e = min(s + win, len(acc))
        acc[s:e] += m[: e - s]
        cnt[s:e] += 1
    return acc / np.maximum(cnt, 1)


_DISPLAY_NPERSEG = 512


def _display_spectrogram(wav: np.ndarray, sr: int) -> np.ndarray:
    """log power spectrogram (frames, bins) for display only."""
    from scipy.signal import spectrogram

    _, _, s = spectrogram(wav, fs=sr, nperseg=_DISPLAY_NPERSEG, noverlap=_DISPLAY_NPERSEG // 2)
    return np.log(s.T + 1e-10)


def figure_spectrogram(card: dict, wav: np.ndarray, n_frames: int):
    """The spectrogram panel of the saliency figure on the maps' grid: (spectrogram (n_frames, bins)
    in dB, its :class:`tf_scenes.plots.TimeFrequencyGrid`, colour-bar label).

    Log-mel models: the card's log-mel before any scaling, standardisation or deltas (the model's
    input is min-max scaled or standardised, which has no unit), cut to the model's frames (frames
    lost to valid deltas dropped), in dB. Waveform models: the display spectrogram (512-sample
    frames, half overlap; linear frequency) in dB."""
    from . import plots
    from .model_io import feature_config_of

    fcfg = feature_config_of(card)
    sr = card["sample_rate"]
    ln_to_db = 10.0 / np.log(10.0)
    if card["input"] == "waveform":
        spec = _display_spectrogram(wav, sr) * ln_to_db
        hop = _DISPLAY_NPERSEG // 2
        times = (_DISPLAY_NPERSEG / 2 + hop * np.arange(len(spec))) / sr
        grid = plots.TimeFrequencyGrid(times, np.fft.rfftfreq(_DISPLAY_NPERSEG, 1.0 / sr))
        return spec, grid, "Power (dB)"
    spec = plots.log_mel_db(fcfg, wav, n_frames)
    return spec, plots.feature_grid(fcfg, n_frames), plots.DB_LABEL


def run(args) -> int:
    from . import plots, saliency
    from .audio import read_audio
    from .families import get
    from .io_utils import dumps_json
    from .model_io import read_model_card

    check_out(args.out)
    runs = resolve_runs(args.run_dir)
    sr = read_model_card(runs[0])["sample_rate"]
    wav, _ = read_audio(args.audio, sr=sr, mono=True)
    spec, panels, edges = None, [], set()
    for r in runs:
        card = read_model_card(r)
        family = get(card["family"])
        class_arg = args.class_
        if len(runs) > 1 and family.saliency_class is not None:
            class_arg = family.saliency_class(card, class_arg)
        s, p, card, model = _explain(r, wav, args.method, args.layer, class_arg, args.output)
        if spec is None:
            spec, grid, spec_label = figure_spectrogram(card, wav, len(s))
        if card["input"] != "waveform":
            edges.update(saliency.frequency_path_edges(model))
        if len(runs) > 1:
            n_classes = len(next(iter(card["outputs"].values())))
            p = [(f"{n_classes}-class {t}", m) for t, m in p]
        panels += p
    edges = sorted(edges)
    note = plots.frequency_paths_note(edges, grid, spec.shape[1], "saliency") if edges else ""
    vector = None if args.vector == "none" else args.vector
    path = plots.saliency_panels(spec, panels, args.out, f"{args.audio.name}", grid=grid,
                                 spectrogram_label=spec_label, note=note, band_edges=edges, vector=vector)
    result = {"figure": str(path), "runs": [str(r) for r in runs], "panels": [t for t, _ in panels]}
    if vector and path.suffix.lower() != f".{vector}":
        result["figure_vector"] = str(path.with_suffix(f".{vector}"))
    family = get(card["family"])
    if family.saliency_extra is not None:  # more figures of the run (raw waveform: its first-layer filters)
        from .model_io import load_run_model

        result.update({k: str(v) for k, v in family.saliency_extra(runs[0], load_run_model(runs[0])[0],
                                                                    Path(args.out)).items()})
    print(dumps_json(result))
    return 0
