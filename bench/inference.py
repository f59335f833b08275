"""Inference latency and throughput of the exported two-stage SavedModel on 10 s clips (issue item 4).

The system is the one the two-stage study exports: waveform (44.1 kHz) -> feature front-end ->
10-class ensemble (ResNet, FCNN, fsFCNN) and 3-class ensemble (ResNet, FCNN) -> two-stage fusion
(the study's default ``ensemble10`` / ``ensemble3``), built from freshly initialised members with
:func:`tf_scenes.two_stage.system.two_stage_system` and written with :func:`tf_scenes.export.export_saved_model`,
then reloaded with ``tf.saved_model.load`` and called through its ``serving_default`` signature.
Random weights cost the same as trained ones.

Measured at each width (quick 0.125 and the paper's 1.0), on the CPU:

* batch 1: ms per 10 s clip (one untimed call first, then `repeats` timed calls);
* batch 32: clips/s (quick width: one untimed call, then `repeats` timed calls; full width: one
  timed call, as one call takes about a minute on two cores);
* breakdown at batch 1: the front-end alone (the same FeatureExtractor layer in a tf.function) and
  each member alone on (1, 423, 128, 3) features, interleaved.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from .common import interleaved, md_table, rnd, summary, timed

MEMBERS10 = {"resnet10": "resnet", "fcnn10": "fcnn", "fsfcnn10": "fsfcnn"}
MEMBERS3 = {"resnet3": "resnet", "fcnn3": "fcnn"}
TARGET_MS = 50.0


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _measure_width(width: float, tmp: Path, repeats: int, batch: int, full_batch_once: bool,
                   quick: bool = False) -> dict:
    import keras
    import tensorflow as tf

    from tf_scenes.datasets.tau2020 import BROAD_CLASSES, SCENES
    from tf_scenes.export import export_saved_model
    from tf_scenes.two_stage.system import two_stage_system
    from tf_scenes.features import FeatureExtractor, get_feature_config
    from tf_scenes.two_stage.model import TwoStageModelConfig, build_two_stage_model

    cfg = get_feature_config("two_stage")
    keras.utils.set_random_seed(0)
    m10, m3 = ({"fcnn10": "fcnn"}, {"fcnn3": "fcnn"}) if quick else (MEMBERS10, MEMBERS3)  # quick: 1 + 1 members
    members10 = {k: build_two_stage_model(TwoStageModelConfig(arch=a, num_classes=10, width=width))
                 for k, a in m10.items()}
    members3 = {k: build_two_stage_model(TwoStageModelConfig(arch=a, num_classes=3, width=width))
                for k, a in m3.items()}
    params = {k: int(m.count_params()) for k, m in {**members10, **members3}.items()}
    out_dir = tmp / f"two_stage_system_w{width:g}"
    export_s, _, _ = timed(lambda: export_saved_model(
        two_stage_system(members10, members3), out_dir, sample_rate=cfg.sample_rate,
        labels={"scene": list(SCENES), "broad": list(BROAD_CLASSES), "fused": list(SCENES)},
        metadata={"family": "two_stage", "note": f"benchmark export, random weights, width {width}"}))
    size_mb = _dir_mb(out_dir)
    serve = tf.saved_model.load(str(out_dir)).signatures["serving_default"]

    rng = np.random.default_rng(1)
    wav = tf.constant((0.1 * rng.standard_normal((batch, cfg.clip_samples))).astype(np.float32))
    wav1 = wav[:1]

    out = serve(waveform=wav1)  # untimed first call (also a sanity check)
    fused = out["fused"].numpy()
    sane = bool(np.all(np.isfinite(fused)) and abs(float(fused.sum()) - 1.0) < 1e-4)

    b1 = interleaved({"b1": lambda: serve(waveform=wav1)["fused"].numpy()}, repeats)["b1"]
    if full_batch_once:
        wall, cpu, _ = timed(lambda: serve(waveform=wav)["fused"].numpy())
        bn = {"wall": [wall], "cpu": [cpu]}
    else:
        serve(waveform=wav)["fused"].numpy()
        bn = interleaved({"bn": lambda: serve(waveform=wav)["fused"].numpy()}, repeats)["bn"]

    # Breakdown at batch 1: front-end, then each member on its features.
    front = tf.function(FeatureExtractor(cfg))
    feats = front(wav1)
    parts = {"front_end": lambda: front(wav1).numpy()}
    for name, model in {**members10, **members3}.items():
        fn = tf.function(lambda f, m=model: m(f, training=False))
        fn(feats)  # trace
        parts[name] = lambda fn=fn: fn(feats).numpy()
    parts["front_end"]()
    ptimes = interleaved(parts, repeats)

    b1_ms = {"wall_ms": summary([1000 * t for t in b1["wall"]]), "cpu_ms": summary([1000 * t for t in b1["cpu"]])}
    breakdown = {k: {"wall_ms": summary([1000 * t for t in v["wall"]]), "cpu_ms": summary([1000 * t for t in v["cpu"]])}
                 for k, v in ptimes.items()}
    return {
        "width": width, "members": {**{k: f"{a}, 10 classes" for k, a in m10.items()},
                                    **{k: f"{a}, 3 classes" for k, a in m3.items()}},
        "params": params, "params_total": sum(params.values()),
        "export_s": rnd(export_s), "saved_model_mb": rnd(size_mb), "outputs_sane": sane,
        "batch1": {**b1_ms, "repeats": len(b1["wall"]),
                   "clips_per_s_median": rnd(1000 / b1_ms["wall_ms"]["median"])},
        "batch_n": {"batch_size": batch, "repeats": len(bn["wall"]), "warm_up_call": not full_batch_once,
                    "wall_s": summary(bn["wall"]), "cpu_s": summary(bn["cpu"]),
                    "clips_per_s_best": rnd(batch / min(bn["wall"])),
                    "clips_per_s_median": rnd(batch / float(np.median(bn["wall"]))),
                    "ms_per_clip_median": rnd(1000 * float(np.median(bn["wall"])) / batch)},
        "breakdown_batch1": breakdown,
        "sum_of_parts_ms_median": rnd(sum(v["wall_ms"]["median"] for v in breakdown.values())),
        "meets_target_ms_batch1": b1_ms["wall_ms"]["median"] < TARGET_MS,
    }


def run(out_dir: Path, repeats: int = 3, quick: bool = False) -> dict:
    widths, batch = ((0.0625,), 2) if quick else ((0.125, 1.0), 32)
    tmp = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    try:
        results = [_measure_width(w, tmp, repeats, batch, full_batch_once=(w >= 1.0), quick=quick) for w in widths]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows, brows = [], []
    for r in results:
        b1, bn = r["batch1"], r["batch_n"]
        rows.append([r["width"], f"{r['params_total']:,}", b1["wall_ms"]["min"], b1["wall_ms"]["median"],
                     b1["cpu_ms"]["median"], bn["clips_per_s_best"], bn["clips_per_s_median"],
                     f"{bn['repeats']}{'' if bn['warm_up_call'] else ' (no warm-up)'}",
                     "yes" if r["meets_target_ms_batch1"] else "no", r["export_s"], r["saved_model_mb"]])
        for k, v in r["breakdown_batch1"].items():
            brows.append([r["width"], k, v["wall_ms"]["min"], v["wall_ms"]["median"], v["cpu_ms"]["median"]])
    target = "; ".join(f"width {r['width']}: {r['batch1']['wall_ms']['median']} ms "
                       f"({'meets' if r['meets_target_ms_batch1'] else 'misses'} the {TARGET_MS:g} ms target)"
                       for r in results)
    summary_md = "\n".join([
        f"Exported two-stage system (front-end + 10-class ensemble ResNet/FCNN/fsFCNN + 3-class ensemble "
        f"ResNet/FCNN + fusion), freshly initialised, reloaded SavedModel `serving_default`, 10 s clips "
        f"(441,000 samples), CPU; batch 1: one untimed call then {repeats} timed; batch {batch}: see repeats.",
        "",
        md_table(["width", "parameters", "batch 1 ms/clip (min)", "batch 1 ms/clip (median)",
                  "batch 1 CPU ms (median)", f"batch {batch} clips/s (best)", f"batch {batch} clips/s (median)",
                  f"batch {batch} timed calls", f"< {TARGET_MS:g} ms", "export s", "SavedModel MB"], rows),
        "",
        f"Batch-1 latency per 10 s clip: {target}. Breakdown at batch 1 (parts called alone, interleaved):",
        "",
        md_table(["width", "part", "wall ms (min)", "wall ms (median)", "CPU ms (median)"], brows),
    ])
    return {
        "measured": ("latency (batch 1) and throughput (batch 32) of the reloaded two-stage SavedModel on random 10 s "
                     "waveforms, and the front-end and each member alone at batch 1; wall-clock and process CPU time"),
        "device": "CPU", "precision": "float32", "repeats": repeats, "quick": quick, "target_ms_batch1": TARGET_MS,
        "widths": results, "summary_md": summary_md,
    }
