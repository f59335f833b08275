"""Tables II, V, VI, VII, the figures and the export of the raw-waveform study (Abrol & Sharma 2020).

Each table is written as ``tableN.json`` and ``tableN.md`` (tf_scenes.experiments.tables) with the
paper's numbers beside ours where the paper gives them (tf_scenes.raw_waveform.paper); every other
paper cell stays empty.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..tables import Column, write_table
from .plan import FLAT, HIERARCHICAL, RUNS, TABLE2, TABLE6

log = logging.getLogger(__name__)

ACC_COLUMNS = ("coarse_top1", "coarse_top3", "fine_top1", "fine_top3")
CLUSTER_COLUMNS = ("coarse_intra", "coarse_inter", "coarse_ratio", "fine_intra", "fine_inter", "fine_ratio")
TRANSFER_COLUMNS = ("fine_top1", "fine_top3")
COLUMN_NAMES = {"coarse_top1": "Coarse Top-1", "coarse_top3": "Coarse Top-3", "fine_top1": "Fine Top-1",
                "fine_top3": "Fine Top-3", "coarse_intra": "Coarse intra", "coarse_inter": "Coarse inter",
                "coarse_ratio": "Coarse inter/intra", "fine_intra": "Fine intra", "fine_inter": "Fine inter",
                "fine_ratio": "Fine inter/intra"}
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
    if aug.stretch > 0 and aug.stretch_prob > 0:
        parts.append(f"time stretch +/-{100 * aug.stretch:g} % (p={aug.stretch_prob:g})")
    if aug.pitch_semitones > 0 and aug.pitch_prob > 0:
        parts.append(f"pitch shift +/-{aug.pitch_semitones:g} semitones (p={aug.pitch_prob:g})")
    if aug.drc_prob > 0:
        parts.append(f"dynamic range compression, {'/'.join(aug.drc_curves)} compander curves (p={aug.drc_prob:g})")
    if aug.noise_prob > 0:
        parts.append(f"Gaussian noise at {aug.noise_snr_db[0]:g}-{aug.noise_snr_db[1]:g} dB SNR (p={aug.noise_prob:g})")
    if aug.gain_db > 0:
        parts.append(f"gain +/-{aug.gain_db:g} dB")
    return "; ".join(parts) or "none"


def _pct(v):
    return None if v is None else round(100.0 * float(v), 2)


def _acc_row(key: str, label: str, metrics: dict, table: str, note: str = "") -> dict:
    from tf_scenes.raw_waveform.paper import TABLES

    paper = TABLES[table].get(key)
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


def build_tables(cfg, metrics: dict, window_emb: dict, test, tview, transfer: dict) -> dict:
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


def _classifier_scores(clf, x: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n_classes) scores of a fitted sklearn classifier; classes unseen in training score -1e9."""
    if hasattr(clf, "predict_proba") and getattr(clf, "probability", True) is not False:
        try:
            raw = clf.predict_proba(x)
        except AttributeError:
            raw = clf.decision_function(x)
    else:
        raw = clf.decision_function(x)
    raw = np.asarray(raw, np.float64)
    known = np.asarray(clf.classes_)
    if raw.ndim == 1:  # binary decision function: positive = classes_[1]
        raw = np.stack([-raw, raw], axis=1)
    full = np.full((len(x), n_classes), -1e9)
    full[:, known.astype(np.int64)] = raw
    return full


def transfer_results(cfg, data, results: dict) -> dict:
    """Table V on the held-out classes: the retrained and fine-tuned runs, and frozen embeddings of
    the hierarchical model + SVM (polynomial, degree 3) / + logistic regression (window-level
    classifiers, clip decision = mean of the window scores)."""
    from tf_scenes.metrics.clustering import clip_decision, fit_logreg, fit_svm_poly3, topk_report
    from tf_scenes.raw_waveform.windows import predict_windows

    tr, te = data.splits["transfer_train"], data.splits["transfer_test"]
    vtr, vte = data.views["transfer_train"], data.views["transfer_test"]
    n = len(data.classes.transfer)
    res: dict = {"metrics": {}, "train_clips": len(tr), "test_clips": len(te)}
    base = results[HIERARCHICAL].model()
    bs = cfg.train.eval_batch_size
    emb_tr = predict_windows(base, vtr.array(), bs)["embedding"]
    emb_te = predict_windows(base, vte.array(), bs)["embedding"]
    y_tr = vtr.repeat(tr.fine)
    for key, clf in (("frozen_svm", fit_svm_poly3(emb_tr, y_tr, C=cfg.transfer.svm_C, seed=cfg.seed)),
                     ("frozen_logreg", fit_logreg(emb_tr, y_tr, C=cfg.transfer.logreg_C, seed=cfg.seed))):
        s = clip_decision(_classifier_scores(clf, emb_te, n), vte.clip_ids())[1]
        res["metrics"][key] = topk_report(te.fine, s, prefix="fine_")
    for name in ("transfer_retrain", "transfer_finetune"):
        res["metrics"][name.replace("transfer_", "")] = {k: v for k, v in results[name].metrics.items()
                                                          if k.startswith("fine_")}
    return res


def _selection_text(select: str, folds, val) -> str:
    if not len(val) or select == "last":
        return "last epoch" + ("" if len(val) else " (no validation clips)")
    return f"best epoch by clip-level validation Top-1 on folds {list(folds)}"


def report(cfg, data, results: dict, env) -> dict:
    """Tables II, V, VI, VII; Figure 3 and the embedding projection; the exported hierarchical model."""
    from tf_scenes.io_utils import atomic_write_json
    from tf_scenes.raw_waveform.paper import NOTES

    from .plan import EMBEDDINGS

    out = env.out
    test, tview = data.splits["main_test"], data.views["main_test"]
    metrics = {name: {k: v for k, v in results[name].metrics.items() if k not in ("split", "clips")} for name in RUNS}
    window_emb = {name: np.load(results[name].run_dir / EMBEDDINGS, allow_pickle=False) for name in RUNS}
    transfer = transfer_results(cfg, data, results)
    built = build_tables(cfg, metrics, window_emb, test, tview, transfer)
    cls = data.classes
    class_text = (f"{len(cls.coarse)} coarse / {len(cls.fine)} fine classes in the main task "
                  f"(the paper: 8 / 70); {len(cls.transfer)} fine classes held out for transfer")
    selection = _selection_text(cfg.train.select, cfg.data.val_folds, data.splits["main_val"])
    transfer_selection = _selection_text(cfg.train.select, cfg.transfer.val_folds, data.splits["transfer_val"])
    splits = {"table2": "main-task test folds", "table6": "main-task test folds",
              "table7": f"{len(test)} main-task test clips x {tview.per_clip} windows",
              "table5": (f"held-out classes {', '.join(cls.transfer)}: {transfer['train_clips']} training clips "
                         f"(folds {list(cfg.transfer.train_folds)}), {transfer['test_clips']} test clips "
                         f"(folds {list(cfg.transfer.test_folds)})")}
    augmentation = augment_summary(cfg.augment)
    for key, rows in built.items():
        cols = [Column("system", "system", text=True),
                *(Column(COLUMN_NAMES[c], c, paper=f"paper.{c}", fmt="{:g}") for c in _columns(key)),
                Column("note", "note", text=True)]
        sel = transfer_selection if key == "table5" else selection
        write_table(out, key, TITLES[key], cols, rows, data=data.label, profile=cfg.profile,
                    description=cfg.description, notes=[NOTES[key], f"Classes: {class_text}", f"Selection: {sel}",
                                                        f"Augmentation: {augmentation}", f"Split: {splits[key]}"],
                    selection=sel, classes=class_text, augmentation=augmentation, split=splits[key])
    atomic_write_json(out / "metrics_all.json", {"main_test": metrics, "transfer_test": transfer["metrics"]})
    doc = {"tables": sorted(built), "binaural": data.binaural, "windows_per_clip": data.windows_per_clip,
           "classes": {"coarse": list(cls.coarse), "fine": list(cls.fine), "transfer": list(cls.transfer)},
           "clips": {k: len(s) for k, s in data.splits.items()}, "selection": selection,
           "transfer_selection": transfer_selection, "augmentation": augmentation,
           "summary": {"hierarchical_" + k: v for k, v in metrics[HIERARCHICAL].items()}}
    if cfg.figures:
        from tf_scenes.raw_waveform.figures import filter_figure

        tag = f"{data.label.kind} data"
        figs = [filter_figure(results[HIERARCHICAL].model(), out / "figures" / "figure3_filters.png",
                              f"Figure 3: first-layer filter responses ({cfg.profile} profile, {tag})"),
                projection(window_emb, tview.repeat(test.coarse), cls, out / "figures", cfg.profile, tag,
                           cfg.projection, seed=cfg.seed)]
        doc["figures"] = [str(p.relative_to(out)) for p in figs]
    if cfg.export:
        from tf_scenes.export_cli import export_run

        path, _ = export_run(results[HIERARCHICAL].run_dir, out / "export" / "raw_waveform_hierarchical",
                             metadata={"profile": cfg.profile, "data": data.label.text, "run": f"runs/{HIERARCHICAL}"})
        doc["export"] = str(path.relative_to(out))
    return doc


# ----------------------------------------------------------------------------------------------
# figures


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


def projection(window_emb: dict, coarse: np.ndarray, classes, fig_dir: Path, profile: str, tag: str,
               method: str = "pca", seed: int = 0) -> Path:
    """2-D projection of test window embeddings, hierarchical vs not, coloured by coarse class; PCA
    axes give the share of the variance each component explains."""
    from tf_scenes import plots

    panels = []
    for key, title in ((HIERARCHICAL, "Hierarchical (coarse + fine + prototype)"), (FLAT, "Not hierarchical (fine only)")):
        if method == "pca":
            xy, explained = plots.pca_2d(window_emb[key], seed)
        else:
            xy, explained = project_2d(window_emb[key], method, seed), None
        panels.append((title, xy, explained))
    fig = plots.draw_projection(panels, coarse, classes.coarse, method=method,
                                title=f"{method.upper()} of test window embeddings, coloured by coarse class "
                                      f"({profile} profile, {tag})")
    return plots.save(fig, Path(fig_dir) / f"projection_{method}.png")
