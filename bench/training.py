"""Training throughput of the two-stage FCNN and ResNet at the quick width (issue item 3).

For each architecture (10 classes, width 0.125, fully convolutional) and crop (200 frames: the
quick profile; 400: the paper), the model is compiled as the two-stage study compiles it (SGD with
momentum 0.9, categorical cross-entropy) in several variants, side by side:

* float32, ``jit_compile=False`` (what Keras' ``"auto"`` picks on a CPU-only machine, and what the
  study's trainer gets: it enables op determinism, under which Keras turns XLA off);
* float32, ``jit_compile=True`` (XLA);
* mixed precision at 400 frames: ``mixed_bfloat16`` on a CPU (this CPU's flags are recorded; bf16
  matmul / convolution kernels of oneDNN need AVX512-BF16 or AMX to be fast), ``mixed_float16``
  on a GPU.

One batch of 32 random examples is fed with ``train_on_batch`` (no input pipeline: the input is
measured in the input_pipeline section). The first step of each variant (tracing, XLA compilation)
is timed apart; then the variants take `repeats` steps in turn (A, B, C, A, B, C, ...).
samples/s = 32 / step time. On a machine with a GPU the same code measures the GPU (TensorFlow
places the ops there); on a CPU-only machine the GPU entry says how to run it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .common import md_table, rnd, summary

GPU_COMMAND = "python -m bench.run --out bench --only training"


def _variants(crop: int, gpu: bool, quick: bool) -> list[tuple[str, bool]]:
    out = [("float32", False), ("float32", True)]
    if crop == max(_crops(quick)):
        out.append(("mixed_float16" if gpu else "mixed_bfloat16", False))
    return out


def _crops(quick: bool) -> tuple[int, ...]:
    return (32,) if quick else (200, 400)


def _archs(quick: bool) -> tuple[str, ...]:
    return ("fcnn",) if quick else ("fcnn", "resnet")


def run(out_dir: Path, repeats: int = 3, quick: bool = False) -> dict:
    import keras
    import tensorflow as tf

    from tf_scenes.two_stage.model import TwoStageModelConfig, build_two_stage_model

    batch, width = (4, 0.0625) if quick else (32, 0.125)
    gpu = bool(tf.config.list_physical_devices("GPU"))
    rng = np.random.default_rng(0)
    entries = []
    for arch in _archs(quick):
        for crop in _crops(quick):
            x = tf.constant(rng.random((batch, crop, 128, 3), dtype=np.float32))
            y = tf.constant(np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)])
            models = []
            for precision, jit in _variants(crop, gpu, quick):
                keras.mixed_precision.set_global_policy(precision)
                try:
                    keras.utils.set_random_seed(0)
                    model = build_two_stage_model(TwoStageModelConfig(arch=arch, num_classes=10, width=width))
                    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                                  loss="categorical_crossentropy", jit_compile=jit)
                finally:
                    keras.mixed_precision.set_global_policy("float32")
                t0 = time.perf_counter()
                model.train_on_batch(x, y)  # tracing (+ XLA compilation)
                first = time.perf_counter() - t0
                models.append({"model": model, "precision": precision, "jit_compile": jit, "first": first,
                               "steps": []})
            for _ in range(repeats):
                for m in models:
                    t0 = time.perf_counter()
                    m["model"].train_on_batch(x, y)
                    m["steps"].append(time.perf_counter() - t0)
            for m in models:
                steps = m["steps"]
                entries.append({
                    "arch": arch, "num_classes": 10, "width": width, "crop_frames": crop, "batch_size": batch,
                    "precision": m["precision"], "jit_compile": m["jit_compile"],
                    "device": m["model"].weights[0].value.device or ("GPU" if gpu else "CPU"),
                    "params": int(m["model"].count_params()),
                    "first_step_s": rnd(m["first"]), "step_s": summary(steps),
                    "samples_per_s_best": rnd(batch / min(steps)),
                    "samples_per_s_median": rnd(batch / float(np.median(steps))),
                })
            del models
            keras.backend.clear_session()

    def find(arch, crop, precision, jit):
        return next(e for e in entries if (e["arch"], e["crop_frames"], e["precision"], e["jit_compile"])
                    == (arch, crop, precision, jit))

    comparisons = []
    for arch in _archs(quick):
        for crop in _crops(quick):
            base = find(arch, crop, "float32", False)
            for e in entries:
                if (e["arch"], e["crop_frames"]) == (arch, crop) and e is not base:
                    what = "XLA" if e["jit_compile"] else e["precision"]
                    ratio = e["samples_per_s_median"] / base["samples_per_s_median"]
                    comparisons.append({"arch": arch, "crop_frames": crop, "variant": what,
                                        "speedup_median": rnd(ratio, 3)})
    device_kind = "GPU" if gpu else "CPU"
    gpu_entry = ({"status": "measured: see entries (device GPU)"} if gpu else
                 {"status": "not measured: no GPU in this run", "command": GPU_COMMAND,
                  "where": "on a machine with a GPU visible to TensorFlow (the section then measures the GPU)",
                  "variants_on_gpu": "float32 with and without XLA, mixed_float16 at the longer crop"})
    rows = [[e["arch"], e["crop_frames"], e["precision"], "on" if e["jit_compile"] else "off",
             e["samples_per_s_best"], e["samples_per_s_median"], e["step_s"]["median"], e["first_step_s"]]
            for e in entries]
    speed = "; ".join(f"{c['arch']} {c['crop_frames']}: {c['variant']} {c['speedup_median']}x" for c in comparisons)
    summary_md = "\n".join([
        f"Two-stage models, 10 classes, width {width}, batch {batch} random examples, SGD momentum 0.9, categorical "
        f"cross-entropy, train_on_batch on the {device_kind} ({'GPU' if gpu else 'TensorFlow CPU, oneDNN'}); "
        f"{repeats} timed steps per variant after the first (tracing / XLA compilation, timed apart), variants "
        f"interleaved.",
        "",
        md_table(["model", "crop", "precision", "XLA", "samples/s (best)", "samples/s (median)", "step s (median)",
                  "first step s"], rows),
        "",
        f"Speed-up against float32 without XLA (median samples/s): {speed}. "
        f"GPU: {gpu_entry['status']}" + ("" if gpu else f" (run `{GPU_COMMAND}` on a machine with a GPU)") + ".",
    ])
    return {
        "measured": ("samples/s of train_on_batch steps (forward, backward, SGD update) on one fixed batch, per "
                     "architecture, crop, precision and jit_compile, after a first step timed apart"),
        "device": device_kind, "batch_size": batch, "width": width, "repeats": repeats, "quick": quick,
        "entries": entries, "speedups_vs_float32_no_xla": comparisons, "gpu": gpu_entry,
        "library_defaults": ("unchanged: the study's precision policy 'auto' is float32 on CPU (mixed_float16 on GPU) "
                             "and Keras' jit_compile='auto' is off on CPU-only machines and under op determinism"),
        "summary_md": summary_md,
    }
