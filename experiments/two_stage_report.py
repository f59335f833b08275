"""Tables 1-3 and figures of the two-stage study, from per-model evaluation scores.

All scores are (clips, classes) arrays aligned with the evaluation records; ensembles and fusion go
through tf_scenes.two_stage.fusion, which joins score tables by clip filename.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

GROUPS = ("A", "B&C", "s1-s3", "s4-s6", "average")
CAM_LAYER = "class_conv"  # the ResNet's last 1x1 class conv (tf_scenes.models.two_stage)


def _score_table(records, probs, class_names):
    from tf_scenes.two_stage.fusion import ScoreTable

    return ScoreTable([r.filename for r in records], np.asarray(probs, np.float64), list(class_names))


def system_scores(cfg, test, scores: dict) -> dict[str, tuple[np.ndarray, int]]:
    """Every system of the tables: single models, ensembles and two-stage fusions -> (probs, n_classes)."""
    from tf_scenes.datasets.tau2020 import BROAD_CLASSES, SCENES
    from tf_scenes.two_stage.fusion import ensemble, fuse_tables

    out = {name: (p, cfg.models[name].num_classes) for name, p in scores.items()}
    ens10 = ensemble([scores[m] for m in cfg.ensemble10])
    ens3 = ensemble([scores[m] for m in cfg.ensemble3])
    out["ensemble10"] = (ens10, 10)
    out["ensemble3"] = (ens3, 3)
    t3 = _score_table(test.records, ens3, BROAD_CLASSES)
    for name in [*cfg.ensemble10, "ensemble10"]:
        t10 = _score_table(test.records, out[name][0], SCENES)
        fused = fuse_tables(t10, t3)
        # Back to the evaluation records' order (fusion joined by filename).
        row = {f: i for i, f in enumerate(fused.clip_ids)}
        out[f"2stage_{name}"] = (fused.scores[[row[r.filename] for r in test.records]], 10)
    return out


def build_tables(cfg, test, scores: dict, meta: dict) -> dict:
    from tf_scenes.two_stage import tables as paper
    from tf_scenes.experiments.two_stage import report

    systems = system_scores(cfg, test, scores)
    metrics = {name: report(p, test, n) for name, (p, n) in systems.items()}

    def row(name, label, paper_key=None, table=None):
        m = metrics[name]
        r = {"system": label, "key": name}
        for g in GROUPS:
            v = m.get(f"acc/group_{g}")
            r[g] = None if v is None else round(100 * v, 2)
        r["acc"] = round(100 * m["acc"], 2)
        r["logloss"] = round(m["logloss"], 4)
        prow = paper.paper_row(table, paper_key) if paper_key else None
        r["paper"] = prow.average if prow else None
        r["note"] = prow.note if prow else ""
        return r

    t1 = [row(n, f"{cfg.models[n].arch} (3-class)", cfg.models[n].arch, "table1") for n in cfg.table1]
    t1.append(row("ensemble3", "ensemble (3-class)", "ensemble", "table1"))
    t2 = [row(n, f"{cfg.models[n].arch} (10-class)", cfg.models[n].arch, "table2") for n in cfg.table2]
    t2.append(row("ensemble10", "ensemble (10-class)", "ensemble", "table2"))
    for n in [*cfg.ensemble10, "ensemble10"]:
        member = "ensemble" if n == "ensemble10" else cfg.models[n].arch
        t2.append(row(f"2stage_{n}", f"2-stage: {member} x 3-class ensemble", f"2stage_{member}", "table2"))
    same_rows = len(cfg.table3) == len(paper.TABLE3)  # paper rows match ours by position only then
    t3 = [row(n, _ablation_label(cfg, i, n), f"row{i}" if same_rows else None, "table3")
          for i, n in enumerate(cfg.table3)]
    return {"table1": t1, "table2": t2, "table3": t3, "_metrics": metrics}


def _ablation_label(cfg, i, name):
    m = cfg.models[name]
    parts = ["mixup" if m.mixup else "no mixup"]
    if m.spec_augment:
        parts.append("SpecAugment")
    parts += [k.replace("_", " ") for k in m.offline]
    return f"ResNet: {', '.join(parts)}"


def write_all(cfg, out: Path, test, scores: dict, meta: dict) -> dict:
    from tf_scenes.io_utils import atomic_write_json, atomic_write_text
    from tf_scenes.two_stage import tables as paper

    built = build_tables(cfg, test, scores, meta)
    titles = {"table1": "Table 1: 3-class accuracy (%)",
              "table2": "Table 2: 10-class accuracy (%) per device group, single models, ensemble, two-stage",
              "table3": "Table 3: augmentation ablation on the 10-class ResNet (%)"}
    written = {}
    for key in ("table1", "table2", "table3"):
        rows = built[key]
        doc = {"title": titles[key], "profile": cfg.profile, "data": meta["data"], "synthetic": meta["synthetic"],
               "selection": meta["selection"], "columns": list(GROUPS), "rows": rows}
        atomic_write_json(out / f"{key}.json", doc)
        atomic_write_text(out / f"{key}.md", paper.render_markdown(doc))
        written[key] = doc
    ens = built["_metrics"]["ensemble10"]
    two = built["_metrics"]["2stage_ensemble10"]
    written["summary"] = {"ensemble10_acc": ens["acc"], "two_stage_acc": two["acc"],
                          "two_stage_gain": two["acc"] - ens["acc"],
                          "ensemble10_acc_A": ens.get("acc/group_A"), "ensemble10_acc_s4-s6": ens.get("acc/group_s4-s6")}
    atomic_write_json(out / "metrics_all.json", built["_metrics"])
    return written


def figures(cfg, out: Path, test, scores: dict, models: dict, meta: dict) -> list[Path]:
    from tf_scenes import plots, saliency
    from tf_scenes.datasets.tau2020 import BROAD_CLASSES, SCENES
    from tf_scenes.metrics.classification import confusion_matrix, per_device_accuracy

    fig_dir = out / "figures"
    systems = system_scores(cfg, test, scores)
    y10 = test.labels(10)
    tag = "synthetic data" if meta["synthetic"] else "real data"
    paths = []
    for name in ("ensemble10", "2stage_ensemble10"):
        cm = confusion_matrix(y10, systems[name][0].argmax(1), 10)
        paths.append(plots.confusion_matrix(cm, SCENES, fig_dir / f"confusion_{name}.png",
                                            f"{name} ({cfg.profile} profile, {tag})"))
    devices = [r.device for r in test.records]
    bars = {n: per_device_accuracy(y10, systems[n][0].argmax(1), devices)
            for n in [*cfg.table2, "ensemble10", "2stage_ensemble10"]}
    paths.append(plots.device_bars(bars, fig_dir / "per_device_accuracy.png",
                                   f"10-class accuracy per device ({cfg.profile} profile, {tag})"))

    # CAM panels: spectrogram / CAM 3-class / CAM 10-class (the paper's Figures 2-3), for clips the
    # 10-class ResNet classifies correctly, spread over scenes.
    m10, m3 = models.get("resnet10"), models.get("resnet3")
    if m10 is not None and m3 is not None:
        pred = scores["resnet10"].argmax(1)
        rng = np.random.default_rng(cfg.seed)
        order = rng.permutation(len(test.records))
        # Prefer clips the model gets right (as the paper's example); fall back to any clip.
        picks = ([i for i in order if pred[i] == y10[i]] + [i for i in order if pred[i] != y10[i]])[: cfg.cam_clips]
        y3 = test.labels(3)
        for i in picks:
            x = np.asarray(test.features[i:i + 1])
            c3 = saliency.cam(m3, x, CAM_LAYER, class_index=int(y3[i]))[0]
            c10 = saliency.cam(m10, x, CAM_LAYER, class_index=int(y10[i]))[0]
            r = test.records[i]
            paths.append(plots.saliency_panels(
                x[0, :, :, 0], [(f"CAM 3-class: {BROAD_CLASSES[y3[i]]}", c3), (f"CAM 10-class: {SCENES[y10[i]]}", c10)],
                fig_dir / f"cam_{Path(r.filename).stem}.png", f"{r.filename} (device {r.device}, {tag})",
                hop_seconds=1024 / 44100))
    return paths
