"""Tables 1-3, figures and the exported system of the two-stage study, from the runs' score files.

Every score file is keyed by clip filename; ensembles and fusion join tables by filename
(tf_scenes.two_stage.fusion), never by row order.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..tables import Column, write_table

log = logging.getLogger(__name__)

GROUPS = ("A", "B&C", "s1-s3", "s4-s6", "average")
TITLES = {"table1": "Table 1: 3-class accuracy (%)",
          "table2": "Table 2: 10-class accuracy (%) per device group, single models, ensemble, two-stage",
          "table3": "Table 3: augmentation ablation on the 10-class ResNet (%)"}
COLUMNS = [Column("system", "system", text=True), *(Column(g, g, fmt="{:.1f}") for g in GROUPS[:-1]),
           Column("average", "average", paper="paper", fmt="{:.1f}"), Column("note", "note", text=True)]
GROUP_NOTE = ("Accuracy in %; device groups are unweighted means of per-device accuracies (A; B&C; s1-s3; "
              "s4-s6 unseen in training; average over all devices); the paper's average beside ours")


def _score_table(records, probs, class_names):
    from tf_scenes.scores import ScoreTable

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
        fused = fuse_tables(t10, t3).take(test.filenames())  # back to the evaluation records' order
        out[f"2stage_{name}"] = (fused.scores, 10)
    return out


def classification(probs: np.ndarray, test, num_classes: int) -> dict:
    from tf_scenes.datasets.tau2020 import BROAD_CLASSES, SCENES
    from tf_scenes.metrics.classification import classification_report

    names = SCENES if num_classes == 10 else BROAD_CLASSES
    return classification_report(test.labels(num_classes), probs, devices=[r.device for r in test.records],
                                 class_names=list(names))


def build_tables(cfg, test, scores: dict) -> dict:
    from tf_scenes.two_stage import paper

    systems = system_scores(cfg, test, scores)
    metrics = {name: classification(p, test, n) for name, (p, n) in systems.items()}

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
    t3 = [row(n, _ablation_label(cfg, n), f"row{i}" if same_rows else None, "table3")
          for i, n in enumerate(cfg.table3)]
    return {"table1": t1, "table2": t2, "table3": t3, "_metrics": metrics}


def _ablation_label(cfg, name):
    m = cfg.models[name]
    parts = ["mixup" if m.mixup else "no mixup"]
    if m.spec_augment:
        parts.append("SpecAugment")
    parts += [k.replace("_", " ") for k in m.offline]
    return f"ResNet: {', '.join(parts)}"


def report(cfg, data, results: dict, env) -> dict:
    """Tables (json + md), metrics_all.json, figures and the exported system; returns study.json fields."""
    from tf_scenes.io_utils import atomic_write_json

    out = env.out
    test = data.test
    scores = {name: r.scores().take(test.filenames()).scores for name, r in results.items()}
    built = build_tables(cfg, test, scores)
    selection = "best epoch on the validation split (held-out locations)" if cfg.train.select == "best" \
        else "last epoch"
    for key in ("table1", "table2", "table3"):
        write_table(out, key, TITLES[key], COLUMNS, built[key], data=data.label, profile=cfg.profile,
                    description=cfg.description, notes=[GROUP_NOTE, f"Model selection: {selection}"],
                    selection=selection)
    atomic_write_json(out / "metrics_all.json", built["_metrics"])
    ens, two = built["_metrics"]["ensemble10"], built["_metrics"]["2stage_ensemble10"]
    summary = {"ensemble10_acc": ens["acc"], "two_stage_acc": two["acc"], "two_stage_gain": two["acc"] - ens["acc"],
               "ensemble10_acc_A": ens.get("acc/group_A"), "ensemble10_acc_s4-s6": ens.get("acc/group_s4-s6")}
    doc = {"tables": ["table1", "table2", "table3"], "summary": summary,
           "clips": {"train": len(data.train.records), "validation": len(data.val.records),
                     "evaluation": len(test.records), "augmented": len(data.aug_records)},
           "augment": {"mode": cfg.augment.mode, "draws": cfg.augment.draws},  # offline copies are fixed
           "selection": selection}
    if cfg.figures:
        doc["figures"] = [str(p.relative_to(out)) for p in figures(cfg, out, data, scores, results)]
    if cfg.export:
        from tf_scenes.export_cli import export_run
        from tf_scenes.two_stage.system import write_system_file

        write_system_file(out, [f"runs/{m}" for m in cfg.ensemble10], [f"runs/{m}" for m in cfg.ensemble3])
        doc["export"] = str(export_run(out, out / "export" / "two_stage_system")[0].relative_to(out))
    return doc


def figures(cfg, out: Path, data, scores: dict, results: dict) -> list[Path]:
    from tf_scenes import plots, saliency
    from tf_scenes.datasets.tau2020 import BROAD_CLASSES, SCENES
    from tf_scenes.metrics.classification import confusion_matrix, per_device_accuracy

    test = data.test
    fig_dir = out / "figures"
    systems = system_scores(cfg, test, scores)
    y10 = test.labels(10)
    tag = f"{data.label.kind} data"
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
    if "resnet10" in results and "resnet3" in results:
        from tf_scenes.families import get
        from tf_scenes.two_stage.features import FEATURES

        layer = get("two_stage").card("two_stage_resnet", results["resnet10"].spec.model_config).saliency["layer"]
        m10, m3 = results["resnet10"].model(), results["resnet3"].model()
        pred = scores["resnet10"].argmax(1)
        rng = np.random.default_rng(cfg.seed)
        order = rng.permutation(len(test.records))
        # Prefer clips the model gets right (as the paper's example); fall back to any clip.
        picks = ([i for i in order if pred[i] == y10[i]] + [i for i in order if pred[i] != y10[i]])[: cfg.cam_clips]
        y3 = test.labels(3)
        grid = plots.feature_grid(FEATURES, test.features.shape[1])
        edges = saliency.frequency_path_edges(m10)  # the ResNet's two frequency paths: [64]
        note = plots.frequency_paths_note(edges, grid, test.features.shape[2]) if edges else ""
        for i in picks:
            x = np.asarray(test.features[i:i + 1])
            c3 = saliency.cam(m3, x, layer, class_index=int(y3[i]))[0]
            c10 = saliency.cam(m10, x, layer, class_index=int(y10[i]))[0]
            r = test.records[i]
            spec, spec_label = _cam_spectrogram(r.path, x[0, :, :, 0])
            paths.append(plots.saliency_panels(
                spec, [(f"CAM 3-class: {BROAD_CLASSES[y3[i]]}", c3), (f"CAM 10-class: {SCENES[y10[i]]}", c10)],
                fig_dir / f"cam_{Path(r.filename).stem}.png", f"{r.filename} (device {r.device}, {tag})",
                grid=grid, spectrogram_label=spec_label, note=note, band_edges=edges))
    return paths


def _cam_spectrogram(audio_path, model_input: np.ndarray) -> tuple[np.ndarray, str]:
    """The CAM figure's top panel: the clip's log-mel in dB recomputed from its audio file (the cached
    model input is min-max scaled per clip, which has no unit); the scaled model input, labelled as
    such, when the audio file cannot be read any more (a moved or deleted dataset)."""
    from tf_scenes import plots
    from tf_scenes.audio import read_audio
    from tf_scenes.errors import AudioError
    from tf_scenes.two_stage.features import FEATURES

    try:
        wav, _ = read_audio(audio_path, sr=FEATURES.sample_rate, mono=True)
    except (AudioError, OSError) as exc:
        log.warning("CAM figure: %s; its spectrogram panel shows the scaled model input instead", exc)
        return model_input, plots.spectrogram_label(FEATURES)
    return plots.log_mel_db(FEATURES, wav, model_input.shape[0]), plots.DB_LABEL
