"""Tables 1-2, per-class AP, the paper's Figure 2 and the export of the weak-SED study, from the
evaluation metrics of every model run.

``nested(results)[name][snr][fold] = {"metrics": clip_metrics dict, "run_dir": Path}``.
Table values are the mean over the held-out folds of each fold's metrics (cross-validation style);
the per-fold values are kept in the JSON.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..tables import Column, write_table

log = logging.getLogger(__name__)


def _mean(values):
    vals = [float(v) for v in values if v is not None and v == v]  # v == v: not NaN
    return float(np.mean(vals)) if vals else None


def fold_mean(per_fold: dict, key: str):
    """Mean over folds of one metric (NaN folds left out; None if no fold has it)."""
    return _mean(entry["metrics"].get(key) for entry in per_fold.values())


def per_class_ap(per_fold: dict, class_names) -> dict[str, float]:
    """Per-class AP, mean over the folds where the class has a positive clip."""
    out = {}
    for c in class_names:
        v = _mean(entry["metrics"].get(f"ap/{c}") for entry in per_fold.values())
        if v is not None:
            out[c] = v
    return out


def _label(cfg, name: str) -> str:
    from tf_scenes.weak_sed.paper import MODEL_NAMES

    run = cfg.models[name]
    label = MODEL_NAMES[run.model]
    if run.model == "2apae":
        label += f" (alpha {run.alpha:g})"
    return label


def build_table1(cfg, results: dict) -> tuple[list[dict], list[str]]:
    from tf_scenes.weak_sed.paper import BASELINE_NOTE, METRICS, PAPER_ALPHA, paper_table1

    rows = []
    for name in cfg.table1:
        run = cfg.models[name]
        for s in cfg.data.snrs:
            per_fold = results[name][s]
            paper = paper_table1(run.model, s, run.alpha)
            note = ""
            if run.model != "2apae":
                note = BASELINE_NOTE
            elif paper is None and run.alpha != PAPER_ALPHA:
                note = f"paper numbers are for alpha {PAPER_ALPHA:g}"
            rows.append({"key": name, "model": _label(cfg, name), "arch": run.model, "width": run.width,
                         "epochs": run.epochs, "alpha": run.alpha if run.model == "2apae" else None,
                         "snr": float(s), "ours": {m: fold_mean(per_fold, m) for m in METRICS},
                         "paper": paper,
                         "folds": {str(k): {m: e["metrics"].get(m) for m in METRICS} for k, e in per_fold.items()},
                         "note": note})
    return rows, ["Baseline rows: the paper's tables give no numbers for GAP, GMP, GWRP and the dilated CNN on "
                  "this remix; their paper cells are left empty, not filled in from elsewhere."]


def build_table2(cfg, results: dict) -> tuple[list[dict], list[str]]:
    from tf_scenes.weak_sed.paper import METRICS, paper_table2, snr_key

    from .plan import ablation_snrs

    snrs = ablation_snrs(cfg)
    rows = []
    for name in cfg.table2:
        run = cfg.models[name]
        paper = {snr_key(s): paper_table2(run.alpha, s) for s in snrs}
        paper = {k: v for k, v in paper.items() if v is not None} or None
        rows.append({"key": name, "alpha": run.alpha, "width": run.width, "epochs": run.epochs,
                     "ours": {snr_key(s): fold_mean(results[name][s], "micro_ap") for s in snrs},
                     "paper": paper,
                     "ours_all": {snr_key(s): {m: fold_mean(results[name][s], m) for m in METRICS}
                                  for s in snrs},
                     "note": "" if paper else "the paper reports alpha 0, 0.001, 0.1 only"})
    notes = ["Micro-AP of 2APAE for each reconstruction weight alpha (paper Table 2)."]
    if snrs != tuple(cfg.data.snrs):
        notes.append(f"Profile {cfg.profile}: the ablation is run at {', '.join(f'{s:g}' for s in snrs)} dB only "
                     f"(table2_snrs); the paper's other SNR columns are left out.")
    return rows, notes


def _footer(cfg, data) -> list[str]:
    widths = sorted({cfg.models[n].width for n in [*cfg.table1, *cfg.table2]})
    epochs = sorted({cfg.models[n].epochs for n in [*cfg.table1, *cfg.table2]})
    return [f"Protocol: {data.protocol}", f"Model selection: {data.selection}",
            f"Profile {cfg.profile}: model widths {', '.join(f'{w:g}' for w in widths)} (1 = the paper's), "
            f"epochs {', '.join(str(e) for e in epochs)} (paper: 50)",
            "Values are fractions (micro-AP, macro-AP, AUC), 4 decimals as the paper"]


def nested(results: dict) -> dict:
    """{model run: {snr: {fold: {"metrics", "run_dir"}}}} from the runner's results."""
    out: dict = {}
    for r in results.values():
        it = r.spec.item
        out.setdefault(it.name, {}).setdefault(it.snr, {})[it.fold] = {"metrics": r.metrics, "run_dir": r.run_dir}
    return out


def report(cfg, data, results: dict, env) -> dict:
    """Tables 1-2 (.json + .md), per_class_ap.json and its bar plots, metrics_all.json, Figure 2
    and the exported 2APAE; returns the fields study.json records."""
    from tf_scenes.datasets.fsd2018 import CLASSES
    from tf_scenes.io_utils import atomic_write_json
    from tf_scenes.weak_sed.figures import per_class_ap_bars
    from tf_scenes.weak_sed.paper import METRIC_NAMES, METRICS, snr_key

    from .plan import ablation_snrs

    out = env.out
    res = nested(results)
    common = dict(data=data.label, profile=cfg.profile, description=cfg.description,
                  snrs=[float(s) for s in cfg.data.snrs], protocol=data.protocol, selection=data.selection)
    rows1, notes1 = build_table1(cfg, res)
    cols1 = [Column("model", "model", text=True), Column("SNR (dB)", "snr", fmt="{:g}"),
             *(Column(METRIC_NAMES[m], f"ours.{m}", paper=f"paper.{m}", fmt="{:.4f}") for m in METRICS),
             Column("note", "note", text=True)]
    write_table(out, "table1", "Table 1: clip-level micro-AP, macro-AP and AUC per model and SNR", cols1, rows1,
                notes=[*notes1, *_footer(cfg, data)], **common)
    rows2, notes2 = build_table2(cfg, res)
    cols2 = [Column("alpha", "alpha", fmt="{:g}"),
             *(Column(f"{snr_key(s)} dB", f"ours.{snr_key(s)}", paper=f"paper.{snr_key(s)}", fmt="{:.4f}")
               for s in ablation_snrs(cfg)), Column("note", "note", text=True)]
    write_table(out, "table2", "Table 2: alpha ablation (2APAE micro-AP per SNR)", cols2, rows2,
                notes=[*notes2, *_footer(cfg, data)], **common)

    names = list(dict.fromkeys([*cfg.table1, *cfg.table2]))
    pcap = {snr_key(s): {n: per_class_ap(res[n][s], CLASSES) for n in names if s in res[n]} for s in cfg.data.snrs}
    atomic_write_json(out / "per_class_ap.json", {**data.label.as_dict(), "profile": cfg.profile,
                                                  "classes": list(CLASSES),
                                                  "note": "mean over held-out folds of each class's AP; classes "
                                                          "without a positive evaluation clip are absent",
                                                  "per_class_ap": pcap})
    figs = []
    for s in cfg.data.snrs:
        figs.append(per_class_ap_bars({_short(cfg, n): pcap[snr_key(s)][n] for n in cfg.table1}, CLASSES,
                                      out / "figures" / f"per_class_ap_snr{s:g}.png",
                                      f"Per-class AP at {s:g} dB ({cfg.profile} profile, {data.label.kind} data)"))
    atomic_write_json(out / "metrics_all.json",
                      {n: {snr_key(s): {str(k): e["metrics"] for k, e in res[n][s].items()}
                           for s in cfg.data.snrs if s in res[n]} for n in names})
    summary = {f"{n}/snr{s:g}/micro_ap": fold_mean(res[n][s], "micro_ap") for s in cfg.data.snrs for n in cfg.table1}
    doc = {"tables": ["table1", "table2"], "summary": summary, "mixtures": len(next(iter(data.snr.values())).records),
           "folds": data.folds, "eval_folds": list(cfg.eval_folds), "protocol": data.protocol,
           "selection": data.selection, "remix": {f"{s:g}": str(f) for s, f in data.folders.items()},
           "remix_mixtures": "made in the input pipeline from mixture.yaml" if cfg.data.remix == "online"
           else "read from the written wav files",
           "splits": {str(k): {"fit": len(sp.fit), "validation": len(sp.val), "evaluation": len(sp.evaluate)}
                      for k, sp in data.splits.items()}}
    apae = next((m for m in cfg.table1 if cfg.models[m].model == "2apae"), None)
    k = cfg.eval_folds[0]
    if cfg.figures and apae is not None:
        for s in cfg.data.snrs:
            model = results[f"{apae}/snr{s:g}/fold{k}"].model()
            figs += figure2(cfg, out, model, data.snr[s], data.splits[k], *data.stats[(s, k)], data.label)
    doc["figures"] = [str(p.relative_to(out)) for p in figs]
    if cfg.export and apae is not None:
        from tf_scenes.export_cli import export_run

        doc["exports"] = []
        for s in (cfg.export_snrs if cfg.export_snrs is not None else cfg.data.snrs):
            path, _ = export_run(results[f"{apae}/snr{s:g}/fold{k}"].run_dir, out / "export" / f"2apae_snr{s:g}",
                                 metadata={"snr": float(s), "eval_fold": k, "data": data.label.text,
                                           "profile": cfg.profile})
            doc["exports"].append(str(path.relative_to(out)))
    return doc


def _short(cfg, name: str) -> str:
    run = cfg.models[name]
    return {"gap": "GAP", "gmp": "GMP", "gwrp": "GWRP", "dilated_attention": "dilated+att",
            "2apae": f"2APAE a={run.alpha:g}"}[run.model]


def pick_figure_clips(split, n: int, seed: int) -> list[int]:
    """Rows (into the SNR's records) of the example clips: a seeded choice from the evaluation fold,
    the same mixtures at every SNR."""
    rng = np.random.default_rng([seed, 2])
    rows = np.asarray(split.evaluate)
    return sorted(int(r) for r in rows[rng.permutation(len(rows))[:n]])


def figure2(cfg, out: Path, model, data, split, mean, std, label) -> list[Path]:
    """The paper's Figure 2 for the example clips at one SNR, from the 2APAE's dict outputs."""
    from tf_scenes.datasets.fsd2018 import CLASSES
    from tf_scenes.weak_sed.figures import FIGURE2_OUTPUTS
    from tf_scenes.weak_sed.figures import figure2 as draw
    from tf_scenes.weak_sed.training import standardize_array

    rows = pick_figure_clips(split, cfg.figure_clips, cfg.seed)
    if not rows:
        return []
    x = standardize_array(data.features[rows], mean, std)  # (n, 311, 64)
    outs = model(x, training=False)
    outs = {k: np.asarray(outs[k]) for k in FIGURE2_OUTPUTS}
    tag = f"{label.kind} data"
    paths = []
    for j, i in enumerate(rows):
        r = data.records[i]
        events = [(e.label, e.onset, e.offset) for e in r.events]
        title = (f"mixture {r.name} (fold {r.fold}) at {data.snr:g} dB; events: "
                 f"{', '.join(e[0] for e in events)} ({cfg.profile} profile, {tag})")
        paths.append(draw(x[j], {k: v[j] for k, v in outs.items()}, CLASSES,
                          out / "figures" / f"figure2_snr{data.snr:g}_{r.name}.png", events=events, title=title))
    return paths
