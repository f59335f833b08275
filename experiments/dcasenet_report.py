"""Tables 2-3 and figures of the DcaseNet study, from the runs' metrics and saved predictions.

Units in the tables: ASC accuracy and TAG lwlrap in %, SED F1 in %, SED error rate as a fraction
(as the paper).  SED is reported twice: segment-based over 1 s segments (the standard, as
sed_eval) and the reference code's variant (5 s blocks, last frame of each skipped); the paper's
numbers come from the reference code, so they sit beside the 5 s variant.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Jung et al. 2021, Table 2 (single-task training), as the spec records them:
# ASC accuracy %, TAG lwlrap %, SED F1 %, SED ER.
PAPER_TABLE2 = {
    "v1-nomixup": {"asc_acc": 67.68, "tag_lwlrap": 68.01, "sed_f1": 74.80, "sed_er": 0.3486},
    "v1": {"asc_acc": 68.19, "tag_lwlrap": 69.41, "sed_f1": 79.62, "sed_er": 0.2926},
    "v2": {"asc_acc": 69.54, "tag_lwlrap": 69.19, "sed_f1": 79.34, "sed_er": 0.3085},
    "v3": {"asc_acc": 68.33, "tag_lwlrap": 70.62, "sed_f1": 78.61, "sed_er": 0.3085},
}
# Parameter counts: v1 / v2 from the paper's text, v3 from the released code.
PAPER_PARAMS = {"v1": "8.7 M (paper)", "v2": "8.9 M (paper)", "v3": "13,882,920 (released code)"}
TABLE3_PAPER_NOTE = ("The paper's Table 3 numbers are not recorded in this project's spec, so the \"paper\" "
                     "entries of this table are left empty; they are not invented.")
SYNTHETIC_WARNING = ("**SYNTHETIC data**: these numbers measure the pipeline on generated audio; they are "
                     "not comparable with the paper's.")
METRIC_COLUMNS = (
    ("asc_acc", "ASC acc %", 100.0),
    ("tag_lwlrap", "TAG lwlrap %", 100.0),
    ("sed_f1_1s", "SED F1 % (1 s)", 100.0),
    ("sed_er_1s", "SED ER (1 s)", 1.0),
    ("sed_f1_refcode_5s", "SED F1 % (ref. code, 5 s)", 100.0),
    ("sed_er_refcode_5s", "SED ER (ref. code, 5 s)", 1.0),
)
PAPER_BESIDE = {"asc_acc": "asc_acc", "tag_lwlrap": "tag_lwlrap", "sed_f1_refcode_5s": "sed_f1",
                "sed_er_refcode_5s": "sed_er"}


def _value(metrics: dict | None, key: str, scale: float):
    if metrics is None or key not in metrics or metrics[key] is None:
        return None
    v = float(metrics[key])
    if math.isnan(v):
        return None
    return round(v * scale, 2 if scale != 1.0 else 4)


def _row_values(per_task: dict) -> dict:
    """{column: value} from {task: run metrics} (each task's metrics from its own run)."""
    out = {}
    for key, _, scale in METRIC_COLUMNS:
        task = key.split("_")[0]
        out[key] = _value(per_task.get(task), key, scale)
    return out


def _version_label(key: str) -> str:
    version = key.split("-")[0]
    return f"DcaseNet-{version}" + (" w/o mixup" if key.endswith("-nomixup") else "")


def build_table2(cfg, results: dict) -> list[dict]:
    from tf_scenes.experiments.dcasenet import TASKS, run_name

    rows = []
    for key in cfg.table2:
        version, mixup = key.split("-")[0], not key.endswith("-nomixup")
        per_task = {t: results.get(run_name(version, (t,), mixup)) for t in TASKS}
        params = next((m.get("params") for m in per_task.values() if m and m.get("params")), None)
        rows.append({"key": key, "system": _version_label(key) + " (single task)",
                     "runs": {t: run_name(version, (t,), mixup) for t in TASKS},
                     "ours": _row_values(per_task), "params": params, "paper_params": PAPER_PARAMS[version],
                     "paper": dict(PAPER_TABLE2[key])})
    return rows


def build_table3(cfg, results: dict) -> list[dict]:
    from tf_scenes.experiments.dcasenet import parse_tasks, run_name

    rows = []
    for version in cfg.table3_versions:
        for combo in cfg.table3_combinations:
            tasks = parse_tasks(combo)
            joint = run_name(version, tasks)
            m = results.get(joint)
            rows.append({"key": joint, "version": version, "tasks": "+".join(t.upper() for t in tasks),
                         "training": "joint, random init" if len(tasks) > 1 else "single task, random init",
                         "runs": {t: joint for t in tasks}, "ours": _row_values({t: m for t in tasks}),
                         "paper": None})
            if cfg.finetune and len(tasks) > 1:
                runs = {t: f"{joint}-ft-{t}" for t in tasks}
                rows.append({"key": f"{joint}-ft", "version": version, "tasks": "+".join(t.upper() for t in tasks),
                             "training": "fine-tuned per task from the joint run",
                             "runs": runs, "ours": _row_values({t: results.get(r) for t, r in runs.items()}),
                             "paper": None})
    return rows


def _fmt_metric(key: str, v) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if "_er" in key else f"{v:.2f}"


def _header(doc: dict) -> list[str]:
    lines = [f"# {doc['title']}", "", f"Profile: **{doc['profile']}** ({doc.get('description', '')})", ""]
    if doc["synthetic"]:
        lines += [SYNTHETIC_WARNING, ""]
    lines.append("Data:")
    for task, source in doc["data"].items():
        lines.append(f"- {task.upper()}: {source}")
    lines += ["", f"Model selection: {doc['selection']}.",
              "SED: threshold 0.3, 4-channel average; \"1 s\" = standard segment-based metrics (sed_eval), "
              "\"ref. code, 5 s\" = the authors' metric (5 s blocks, last frame of each skipped); the paper's "
              "SED numbers are from the authors' code and stand beside that variant.", ""]
    if doc.get("subset_note"):
        lines += [f"Subset: {doc['subset_note']}", ""]
    return lines


def render_table2(doc: dict) -> str:
    lines = _header(doc)
    cols = [label for _, label, _ in METRIC_COLUMNS]
    lines.append("| system | " + " | ".join(f"{c} ours | paper" if k in PAPER_BESIDE else c
                                             for (k, _, _), c in zip(METRIC_COLUMNS, cols))
                 + " | params ours | params paper |")
    n = 1 + sum(2 if k in PAPER_BESIDE else 1 for k, _, _ in METRIC_COLUMNS) + 2
    lines.append("|" + "---|" * n)
    for r in doc["rows"]:
        cells = [r["system"]]
        for key, _, _ in METRIC_COLUMNS:
            cells.append(_fmt_metric(key, r["ours"][key]))
            if key in PAPER_BESIDE:
                cells.append(_fmt_metric(key, r["paper"][PAPER_BESIDE[key]]))
        cells += [f"{r['params']:,}" if r.get("params") else "-", r["paper_params"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Each task's number comes from its own single-task run (run folders: runs/<version>-<task>).")
    return "\n".join(lines) + "\n"


def render_table3(doc: dict) -> str:
    lines = _header(doc) + [TABLE3_PAPER_NOTE, ""]
    cols = [label for _, label, _ in METRIC_COLUMNS]
    lines.append("| version | tasks | training | " + " | ".join(cols) + " | paper |")
    lines.append("|" + "---|" * (4 + len(cols)))
    for r in doc["rows"]:
        cells = [r["version"], r["tasks"], r["training"]]
        cells += [_fmt_metric(k, r["ours"][k]) for k, _, _ in METRIC_COLUMNS]
        cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("\"-\": task not trained in that combination (or paper number not recorded).")
    return "\n".join(lines) + "\n"


def write_tables(cfg, out: Path, results: dict, meta: dict) -> dict:
    from tf_scenes.io_utils import atomic_write_json, atomic_write_text

    base = {"profile": cfg.profile, "description": cfg.description, "synthetic": meta["synthetic"],
            "data": meta["data"], "clips": meta["clips"], "selection": meta["selection"],
            "subset_note": meta.get("subset_note", ""),
            "columns": {k: label for k, label, _ in METRIC_COLUMNS},
            "units": "ASC acc, TAG lwlrap, SED F1 in %; SED ER as a fraction"}
    if meta["synthetic"]:
        base["warning"] = SYNTHETIC_WARNING.replace("**", "")
    t2 = {"title": "Table 2: single-task training (DcaseNet v1 w/o and with mixup, v2, v3)", **base,
          "rows": build_table2(cfg, results)}
    t3 = {"title": "Table 3: joint training of task combinations (random init) and per-task fine-tuning "
                   "from the joint run", **base, "paper_note": TABLE3_PAPER_NOTE, "rows": build_table3(cfg, results)}
    tables = {"table2": t2, "table3": t3}
    for key, doc in tables.items():
        atomic_write_json(out / f"{key}.json", doc)
        atomic_write_text(out / f"{key}.md", (render_table2 if key == "table2" else render_table3)(doc))
    atomic_write_json(out / "metrics_all.json", results)
    return tables


def figures(cfg, out: Path, runs_dir: Path, results: dict, meta: dict) -> list[Path]:
    """SED activity plots (reference vs channel-averaged prediction over time) for example
    evaluation recordings of two runs: the v3 single-task and all-task joint runs when the profile
    has them, else the first SED runs."""
    from tf_scenes import plots
    from tf_scenes.datasets import nigens2020

    sed_runs = [name for name, m in results.items() if "sed" in m.get("tasks", [])]
    chosen = [r for r in ("v3-sed", "v3-asc+tag+sed") if r in sed_runs]
    chosen += [r for r in sed_runs if r not in chosen][: max(0, 2 - len(chosen))]
    tag = "synthetic data" if meta["synthetic"] else "real data"
    paths = []
    for name in chosen:
        npz = runs_dir / name / "predictions_sed.npz"
        if not npz.exists():
            continue
        with np.load(npz, allow_pickle=False) as f:
            probs, labels, names = f["probs"], f["labels"], f["names"]
        for i in range(min(cfg.activity_clips, len(probs))):
            path = out / "figures" / f"activity_{name}_{names[i]}.png"
            paths.append(plots.activity_plot(labels[i], probs[i], nigens2020.CLASSES, path, hop_seconds=0.1,
                                             threshold=0.3, title=f"{name}: {names[i]} ({cfg.profile} profile, {tag})"))
    return paths
