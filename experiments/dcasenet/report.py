"""Tables 2-3, figures and the export of the DcaseNet study, from the runs' metrics and scores.

Units: ASC accuracy and TAG lwlrap in %, SED F1 in %, SED error rate as a fraction (as the paper).
SED is reported twice: segment-based over 1 s segments (the standard, as sed_eval) and the
reference code's variant (5 s blocks, last frame of each skipped); the paper's numbers come from
the reference code, so they sit beside the 5 s variant.  Beside them, event-based F1 and PSDS
(scenario 1) by sed_scores_eval (:mod:`tf_scenes.metrics.sed_events`), which the paper does not
report (no paper column).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from ..tables import Column, write_table

log = logging.getLogger(__name__)

METRIC_COLUMNS = (
    ("asc_acc", "ASC acc %", 100.0),
    ("tag_lwlrap", "TAG lwlrap %", 100.0),
    ("sed_f1_1s", "SED F1 % (1 s)", 100.0),
    ("sed_er_1s", "SED ER (1 s)", 1.0),
    ("sed_f1_refcode_5s", "SED F1 % (ref. code, 5 s)", 100.0),
    ("sed_er_refcode_5s", "SED ER (ref. code, 5 s)", 1.0),
    ("sed_event_f1", "SED event F1 % (macro)", 100.0),
    ("sed_psds1", "SED PSDS1", 1.0),
)
PAPER_BESIDE = {"asc_acc": "asc_acc", "tag_lwlrap": "tag_lwlrap", "sed_f1_refcode_5s": "sed_f1",
                "sed_er_refcode_5s": "sed_er"}
SED_NOTE = ("SED: threshold 0.3, 4-channel average; \"1 s\" = standard segment-based metrics (sed_eval), \"ref. code, "
            "5 s\" = the authors' metric (5 s blocks, last frame of each skipped); the paper's SED numbers are from "
            "the authors' code and stand beside that variant")
EVENT_NOTE = ("SED event F1 and PSDS1 (not in the paper): computed by sed_scores_eval from the runs' frame score files "
              "(scores_evaluate_frames/) against the TAU-NIGENS metadata as events (maximal runs of active 100 ms "
              "frames per class); ")


def _metric_columns() -> list[Column]:
    return [Column(label, f"ours.{key}", paper=f"paper.{PAPER_BESIDE[key]}" if key in PAPER_BESIDE else None,
                   fmt="{:.4f}" if scale == 1.0 else "{:.2f}") for key, label, scale in METRIC_COLUMNS]


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
    from tf_scenes.dcasenet import paper

    from .plan import TASKS, run_name

    rows = []
    for key in cfg.table2:
        version, mixup = key.split("-")[0], not key.endswith("-nomixup")
        per_task = {t: results.get(run_name(version, (t,), mixup)) for t in TASKS}
        params = next((m.get("params") for m in per_task.values() if m and m.get("params")), None)
        rows.append({"key": key, "system": _version_label(key) + " (single task)",
                     "runs": {t: run_name(version, (t,), mixup) for t in TASKS},
                     "ours": _row_values(per_task), "params": params, "paper_params": paper.PARAMS[version],
                     "paper": dict(paper.TABLE2[key])})
    return rows


def build_table3(cfg, results: dict) -> list[dict]:
    from .plan import parse_tasks, run_name

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


def report(cfg, data, results: dict, env) -> dict:
    from tf_scenes.dcasenet import paper
    from tf_scenes.io_utils import atomic_write_json
    from tf_scenes.metrics.sed_events import PARAMETERS_NOTE

    out = env.out
    metrics = with_event_metrics(results, data)
    selection = (f"{cfg.train.select} epoch" + (" on the validation split (val_score)" if cfg.train.select == "best"
                                                 else " of the fixed schedule"))
    notes = [f"Model selection: {selection}", SED_NOTE, EVENT_NOTE + PARAMETERS_NOTE, cfg.subset_note,
             "ASC acc, TAG lwlrap, SED F1 in %; SED ER as a fraction"]
    common = dict(data=data.label, profile=cfg.profile, description=cfg.description,
                  clips={t: d.counts for t, d in data.tasks.items()}, datasets={t: d.label.text
                                                                               for t, d in data.tasks.items()})
    write_table(out, "table2", "Table 2: single-task training (DcaseNet v1 w/o and with mixup, v2, v3)",
                     [Column("system", "system", text=True), *_metric_columns(),
                      Column("params ours", "params", fmt="{:,}"), Column("params paper", "paper_params", text=True)],
                     build_table2(cfg, metrics), notes=[*notes, "Each task's number comes from its own single-task "
                                                        "run (run folders: runs/<version>-<task>)"], **common)
    write_table(out, "table3", "Table 3: joint training of task combinations (random init) and per-task "
                     "fine-tuning from the joint run",
                     [Column("version", "version", text=True), Column("tasks", "tasks", text=True),
                      Column("training", "training", text=True), *_metric_columns()],
                     build_table3(cfg, metrics), notes=[*notes, paper.TABLE3_NOTE,
                                                        "\"-\": task not trained in that combination"], **common)
    atomic_write_json(out / "metrics_all.json", metrics)
    doc = {"tables": ["table2", "table3"], "clips": common["clips"], "selection": selection,
           "summary": {"runs": len(results)}}
    if cfg.figures:
        doc["figures"] = [str(p.relative_to(out)) for p in figures(cfg, out, data, results)]
    if cfg.export_run:
        doc["export"] = export_and_check(results[cfg.export_run].run_dir,
                                         out / "export" / f"dcasenet_{cfg.export_run}", out)
    return doc


def with_event_metrics(results: dict, data) -> dict:
    """{run: metrics}; a SED run evaluated before its metrics held the event-based ones gets them
    from its score files (the numbers its evaluation would have written)."""
    from .plan import sed_event_metrics, sed_reference

    out = {}
    for name, r in results.items():
        m = r.metrics
        if "sed" in m.get("tasks", []) and "sed_event_f1" not in m and "sed" in data.tasks:
            names, labels = sed_reference(data.tasks["sed"].test)
            m = {**m, **sed_event_metrics(r.run_dir / "scores_evaluate_frames", names, labels)}
            log.info("%s: event-based SED metrics computed from its score files (not in its metrics.json)", name)
        out[name] = m
    return out


def figures(cfg, out: Path, data, results: dict) -> list[Path]:
    """SED activity plots (reference vs channel-averaged prediction over time) for example
    evaluation recordings of two runs: the v3 single-task and all-task joint runs when the profile
    has them, else the first SED runs."""
    from tf_scenes import plots
    from tf_scenes.datasets import nigens2020
    from tf_scenes.scores import read_frame_scores

    sed_runs = [name for name, r in results.items() if "sed" in r.metrics.get("tasks", [])]
    chosen = [r for r in ("v3-sed", "v3-asc+tag+sed") if r in sed_runs]
    chosen += [r for r in sed_runs if r not in chosen][: max(0, 2 - len(chosen))]
    tag = f"{data.label.kind} data"
    test = data.tasks["sed"].test if "sed" in data.tasks else None
    paths = []
    for name in chosen:
        folder = results[name].run_dir / "scores_evaluate_frames"
        recordings = list(dict.fromkeys(test.names))[: cfg.activity_clips]
        for rec in recordings:
            _, probs, _ = read_frame_scores(folder / f"{rec}.tsv")
            labels = test.labels[test.names.index(rec)][: len(probs)]
            path = out / "figures" / f"activity_{name}_{rec}.png"
            paths.append(plots.activity_plot(labels, probs, nigens2020.CLASSES, path, hop_seconds=0.1,
                                             threshold=0.3, title=f"{name}: {rec} ({cfg.profile} profile, {tag})"))
    return paths


def export_and_check(run_dir: Path, out_dir: Path, study_dir: Path, seconds: float = 2.0) -> dict:
    """Export a run as `tf-scenes export` does, reload it and compare with the Keras model."""
    import tensorflow as tf

    from tf_scenes.export_cli import export_run

    path, model = export_run(run_dir, out_dir)
    wav = (0.1 * np.random.default_rng(0).standard_normal((1, int(seconds * 24000)))).astype(np.float32)
    ref = {k: np.asarray(v) for k, v in model(wav, training=False).items()}
    got = tf.saved_model.load(str(path)).signatures["serving_default"](waveform=tf.constant(wav))
    diff = {k: float(np.max(np.abs(ref[k] - got[k].numpy()))) for k in ref}
    log.info("exported %s -> %s (max abs difference to Keras: %s)", run_dir.name, path, diff)
    return {"path": str(Path(path).relative_to(study_dir)), "run": run_dir.name, "max_abs_diff": diff}
