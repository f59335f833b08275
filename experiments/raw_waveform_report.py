"""Tables II, V, VI, VII and the figures of the raw-waveform study (Abrol & Sharma 2020).

Each table is written as ``tableN.json`` and ``tableN.md`` with the paper's numbers beside ours.
Only the numbers the spec (docs/raw_waveform.md) gives are filled in; every other paper cell is
empty (None) and the table says so -- none is invented.  The paper's data (8 coarse / 70 fine
classes from LITIS Rouen, DCASE 2017, DARES-G1 and ESC-50) differ from ours, so the numbers are
beside each other for orientation only.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Paper numbers given in the spec (percent).  Table II: coarse + fine with attention; Table VI: GRU.
# The spec lists Table VI's GRU row as "87.1 / 93.8, 87.7 / 93.5"; we read it in Table II's order
# (coarse Top-1 / Top-3, fine Top-1 / Top-3).
PAPER = {
    "table2": {"both_attention": {"coarse_top1": 85.7, "coarse_top3": 92.1, "fine_top1": 86.2, "fine_top3": 92.6}},
    "table6": {"both_gru": {"coarse_top1": 87.1, "coarse_top3": 93.8, "fine_top1": 87.7, "fine_top3": 93.5},
               "both_attention": {"coarse_top1": 85.7, "coarse_top3": 92.1, "fine_top1": 86.2, "fine_top3": 92.6}},
    "table5": {},
    "table7": {},
}
ACC_COLUMNS = ("coarse_top1", "coarse_top3", "fine_top1", "fine_top3")
CLUSTER_COLUMNS = ("coarse_intra", "coarse_inter", "coarse_ratio", "fine_intra", "fine_inter", "fine_ratio")
TRANSFER_COLUMNS = ("fine_top1", "fine_top3")
COLUMN_NAMES = {"coarse_top1": "Coarse Top-1", "coarse_top3": "Coarse Top-3", "fine_top1": "Fine Top-1",
                "fine_top3": "Fine Top-3", "coarse_intra": "Coarse intra", "coarse_inter": "Coarse inter",
                "coarse_ratio": "Coarse inter/intra", "fine_intra": "Fine intra", "fine_inter": "Fine inter",
                "fine_ratio": "Fine inter/intra"}
PAPER_NOTES = {
    "table2": "Paper numbers given in the spec: coarse + fine with attention only (85.7 / 92.1 coarse, "
              "86.2 / 92.6 fine); the other paper cells are not given there and are left empty.",
    "table6": "Paper numbers given in the spec: CNN + GRU (87.1 / 93.8, 87.7 / 93.5, read as coarse Top-1 / Top-3, "
              "fine Top-1 / Top-3) and the attention model of Table II; CNN + LSTM is not given there and is "
              "left empty.",
    "table7": "The spec gives no paper numbers for Table VII: the paper columns are empty.",
    "table5": "The spec gives no paper numbers for Table V: the paper columns are empty.",
}
TITLES = {
    "table2": "Table II: Top-1 / Top-3 accuracy (%) at coarse and fine level, clip decisions",
    "table6": "Table VI: CNN + 2 recurrent layers (30 units) on the frame embeddings instead of attention (%)",
    "table7": ("Table VII: clustering of test window embeddings (Euclidean; intra lower is better, "
               "inter higher is better)"),
    "table5": "Table V: transfer to the held-out labelled set (fine Top-1 / Top-3 %, clip decisions)",
}
TRANSFER_LABELS = {
    "retrain": "retrain from scratch",
    "finetune": "fine-tune the hierarchical model",
    "frozen_svm": "frozen embedding + SVM (polynomial kernel, degree 3)",
    "frozen_logreg": "frozen embedding + logistic regression",
}


def augment_summary(aug) -> str:
    if not aug.enabled:
        return "none"
    parts = []
    if aug.speed > 0 and aug.speed_prob > 0:
        parts.append(f"speed change +/-{100 * aug.speed:g} % (p={aug.speed_prob:g}; tempo + pitch)")
    if aug.drc_prob > 0:
        parts.append(f"dynamic range compression ratio {aug.drc_ratio[0]:g}-{aug.drc_ratio[1]:g} (p={aug.drc_prob:g})")
    if aug.noise_prob > 0:
        parts.append(f"Gaussian noise at {aug.noise_snr_db[0]:g}-{aug.noise_snr_db[1]:g} dB SNR (p={aug.noise_prob:g})")
    if aug.gain_db > 0:
        parts.append(f"gain +/-{aug.gain_db:g} dB")
    return "; ".join(parts) or "none"


def _pct(v):
    return None if v is None else round(100.0 * float(v), 2)


def _acc_row(key: str, label: str, metrics: dict, table: str, note: str = "") -> dict:
    paper = PAPER[table].get(key)
    row = {"system": label, "key": key}
    row.update({c: _pct(metrics.get(c)) for c in ACC_COLUMNS})
    row["paper"] = dict(paper) if paper else None
    row["note"] = note
    return row


def _sig(v, digits: int = 6):
    return None if v is None else float(f"{float(v):.{digits}g}")


def cluster_row(key: str, label: str, emb: np.ndarray, coarse: np.ndarray, fine: np.ndarray) -> dict:
    """Table VII row: intra / inter / inter-over-intra at coarse and fine level (None when undefined)."""
    from tf_scenes.metrics.clustering import inter_cluster_centroid_distance, intra_cluster_distance

    row = {"system": label, "key": key}
    for level, labels in (("coarse", coarse), ("fine", fine)):
        try:
            intra = intra_cluster_distance(emb, labels)
        except ValueError:
            intra = None
        try:
            inter = inter_cluster_centroid_distance(emb, labels)
        except ValueError:
            inter = None
        row[f"{level}_intra"] = _sig(intra)
        row[f"{level}_inter"] = _sig(inter)
        row[f"{level}_ratio"] = _sig(inter / intra) if intra and inter is not None else None
    row["paper"] = None
    row["note"] = ""
    return row


def build_tables(cfg, meta: dict, metrics: dict, window_emb: dict, test, tview, transfer: dict) -> dict:
    from tf_scenes.experiments.raw_waveform import FLAT, HIERARCHICAL, RUNS, TABLE2, TABLE6

    def note(key):
        spec = RUNS[key]
        if spec.heads == "coarse":
            return "coarse head only: no fine scores"
        if spec.heads == "fine":
            return "coarse scores = fine probabilities summed per coarse class"
        return "both heads + prototype loss on coarse classes" if spec.prototype else "both heads"

    t2 = [_acc_row(k, RUNS[k].label, metrics[k], "table2", note(k)) for k in TABLE2]
    t6 = [_acc_row(k, RUNS[k].label, metrics[k], "table6", note(k)) for k in TABLE6]
    t6.append(_acc_row(HIERARCHICAL, "CNN + attention (the Table II model, for reference)", metrics[HIERARCHICAL],
                       "table6", "same run as Table II"))
    coarse_w, fine_w = tview.repeat(test.coarse), tview.repeat(test.fine)
    t7 = [cluster_row(HIERARCHICAL, "hierarchical: coarse + fine heads + prototype loss (attention)",
                      window_emb[HIERARCHICAL], coarse_w, fine_w),
          cluster_row(FLAT, "not hierarchical: fine head only (attention)", window_emb[FLAT], coarse_w, fine_w)]
    t5 = []
    for key in ("retrain", "finetune", "frozen_svm", "frozen_logreg"):
        m = transfer["metrics"][key]
        row = {"system": TRANSFER_LABELS[key], "key": key}
        row.update({c: _pct(m.get(c)) for c in TRANSFER_COLUMNS})
        row["paper"] = None
        row["note"] = "" if key == "retrain" else f"base: runs/{HIERARCHICAL}"
        t5.append(row)
    return {"table2": t2, "table6": t6, "table7": t7, "table5": t5}


def _columns(key: str) -> tuple[str, ...]:
    return {"table2": ACC_COLUMNS, "table6": ACC_COLUMNS, "table7": CLUSTER_COLUMNS, "table5": TRANSFER_COLUMNS}[key]


def _fmt(v) -> str:
    return "" if v is None else f"{v:g}"


def render_markdown(doc: dict) -> str:
    """Markdown of a table document: our columns, then the paper's (empty where not given)."""
    cols = doc["columns"]
    lines = [f"# {doc['title']}", ""]
    lines.append(f"Data: {doc['data']}  ")
    lines.append(f"Profile: {doc['profile']} -- {doc.get('description', '')}".rstrip(" -"))
    lines.append("")
    if doc.get("synthetic"):
        lines += ["**SYNTHETIC data: these are our numbers on synthetic data, not the paper's results.**", ""]
    head = ["System", *(COLUMN_NAMES[c] for c in cols), *(f"Paper {COLUMN_NAMES[c]}" for c in cols), "Note"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in doc["rows"]:
        paper = r.get("paper") or {}
        cells = [r["system"], *(_fmt(r.get(c)) for c in cols), *(_fmt(paper.get(c)) for c in cols), r.get("note", "")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", doc["paper_note"]]
    for extra in ("classes", "selection", "augmentation", "split"):
        if doc.get(extra):
            lines.append(f"{extra.capitalize()}: {doc[extra]}.")
    return "\n".join(lines) + "\n"


def write_all(cfg, out: Path, meta: dict, metrics: dict, window_emb: dict, test, tview, transfer: dict) -> dict:
    from tf_scenes.io_utils import atomic_write_json, atomic_write_text

    built = build_tables(cfg, meta, metrics, window_emb, test, tview, transfer)
    cls = meta["classes"]
    class_text = (f"{len(cls['coarse'])} coarse / {len(cls['fine'])} fine classes in the main task "
                  f"(the paper: 8 / 70); {len(cls['transfer'])} fine classes held out for transfer")
    splits = {"table2": "main-task test folds", "table6": "main-task test folds",
              "table7": f"{len(test)} main-task test clips x {tview.per_clip} windows",
              "table5": (f"held-out classes {', '.join(cls['transfer'])}: {transfer['train_clips']} training clips "
                         f"(folds {list(cfg.transfer.train_folds)}), {transfer['test_clips']} test clips "
                         f"(folds {list(cfg.transfer.test_folds)})")}
    written = {}
    for key, rows in built.items():
        doc = {"title": TITLES[key], "profile": cfg.profile, "description": cfg.description, "data": meta["data"],
               "synthetic": meta["synthetic"], "columns": list(_columns(key)), "paper_note": PAPER_NOTES[key],
               "classes": class_text, "augmentation": meta["augmentation"],
               "selection": meta["transfer_selection"] if key == "table5" else meta["selection"],
               "split": splits[key], "rows": rows}
        atomic_write_json(out / f"{key}.json", doc)
        atomic_write_text(out / f"{key}.md", render_markdown(doc))
        written[key] = doc
    return written


# ----------------------------------------------------------------------------------------------
# figures


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


def figure3(model, fig_dir: Path, meta: dict, sample_rate: int = 16000) -> Path:
    """First-layer filter magnitude responses of both pipelines, sorted by peak frequency."""
    tag = "synthetic data" if meta["synthetic"] else "real data"
    return filter_figure(model, Path(fig_dir) / "figure3_filters.png",
                         f"Figure 3: first-layer filter responses ({meta['profile']} profile, {tag})", sample_rate)


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


def project_2d(x: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(n, dim) -> (n, 2) with sklearn PCA or t-SNE."""
    x = np.asarray(x, np.float64)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(max(2.0, min(30.0, (len(x) - 1) / 3.0)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    raise ValueError(f"unknown projection {method!r}: use pca or tsne")


def projection(window_emb: dict, coarse: np.ndarray, classes, fig_dir: Path, meta: dict, method: str = "pca",
               seed: int = 0) -> Path:
    """2-D projection of test window embeddings, hierarchical vs not, coloured by coarse class."""
    from tf_scenes.experiments.raw_waveform import FLAT, HIERARCHICAL

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    cmap = plt.get_cmap("tab10")
    for ax, (key, title) in zip(axes, ((HIERARCHICAL, "hierarchical (coarse + fine + prototype)"),
                                       (FLAT, "not hierarchical (fine only)"))):
        xy = project_2d(window_emb[key], method, seed)
        for c, name in enumerate(classes.coarse):
            sel = coarse == c
            ax.scatter(xy[sel, 0], xy[sel, 1], s=9, color=cmap(c % 10), label=name, alpha=0.8)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].legend(fontsize=7, markerscale=1.5, loc="best")
    tag = "synthetic data" if meta["synthetic"] else "real data"
    fig.suptitle(f"{method.upper()} of test window embeddings, coloured by coarse class "
                 f"({meta['profile']} profile, {tag})")
    return _save(fig, Path(fig_dir) / f"projection_{method}.png")
