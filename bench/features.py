"""Feature extraction speed: the tf.data front-end vs the librosa reference recipe.

Both sides read the same 24-bit 44.1 kHz 10 s wav clips from disk and compute the two-stage
features (log-mel 128 x 431 -> min-max -> deltas -> (423, 128, 3)):

* tf.data: pipelines.audio.decode_dataset (in-graph 24-bit PCM decoding, parallel map) -> batch
  -> tf_features (STFT, mel, log, min-max, deltas in-graph) -> prefetch, iterated to numpy;
* reference: a Python loop of soundfile.read + tf_scenes.features.reference.two_stage
  (librosa.feature.melspectrogram + numpy deltas), one clip at a time.

Each side is run once untimed first (librosa's numba compilation, TF graph tracing), then timed
`repeats` times; clips per second are reported from the minimum and the median time.
"""

from __future__ import annotations

import functools
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _write_clips(folder: Path, n: int, seconds: float, sr: int = 44100) -> list[Path]:
    from tf_scenes.audio import write_audio

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    paths = []
    for i in range(n):
        f0 = 100 + 50 * i
        x = (0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * (f0 * t + 300 * t ** 2))
             + 0.1 * np.sin(2 * np.pi * 5000 * t))
        paths.append(write_audio(folder / f"clip{i:03d}.wav", x.astype(np.float32), sr, subtype="PCM_24"))
    return paths


def _time(fn, repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU (all threads, user + system) seconds of each call."""
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def run(out_dir: Path, repeats: int = 3, quick: bool = False) -> dict:
    import soundfile as sf
    import tensorflow as tf

    from pipelines.audio import decode_dataset, probe_audio
    from tf_scenes.features import get_feature_config, tf_features
    from tf_scenes.features import reference

    n_clips, seconds, batch = (8, 10.0, 8) if quick else (64, 10.0, 16)
    cfg = get_feature_config("two_stage")
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        paths = _write_clips(Path(tmp), n_clips, seconds)
        sources = probe_audio(paths)

        ds = decode_dataset(sources, cfg.sample_rate, num_samples=cfg.clip_samples)
        ds = ds.batch(batch).map(functools.partial(tf_features, cfg), num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.prefetch(tf.data.AUTOTUNE)

        def tf_pipeline():
            return np.concatenate([b.numpy() for b in ds])

        def librosa_reference():
            return np.stack([reference.two_stage(sf.read(str(p), dtype="float32")[0]) for p in paths])

        # Untimed warm-up: librosa's numba JIT and TF tracing are excluded from the timings.
        tf_out = tf_pipeline()
        ref_out = librosa_reference()
        max_diff = float(np.abs(tf_out - ref_out).max())
        tf_times = _time(tf_pipeline, repeats)
        ref_times = _time(librosa_reference, repeats)

    def stats(times):
        wall, cpu = times
        return {"seconds": [round(t, 4) for t in wall], "min_s": round(min(wall), 4),
                "median_s": round(statistics.median(wall), 4),
                "clips_per_s_best": round(n_clips / min(wall), 2),
                "clips_per_s_median": round(n_clips / statistics.median(wall), 2),
                "cpu_seconds": [round(t, 4) for t in cpu],
                "cpu_ms_per_clip_median": round(1000 * statistics.median(cpu) / n_clips, 2)}

    tf_s, ref_s = stats(tf_times), stats(ref_times)
    speedup_best = round(tf_s["clips_per_s_best"] / ref_s["clips_per_s_best"], 2)
    speedup_median = round(tf_s["clips_per_s_median"] / ref_s["clips_per_s_median"], 2)
    summary = "\n".join([
        f"two_stage features, {n_clips} clips x {seconds:g} s, 44.1 kHz 24-bit wav, {repeats} timed repeats "
        f"(after one untimed warm-up run of each side), output {tuple(tf_out.shape[1:])}:",
        "",
        "| pipeline | clips/s (best) | clips/s (median) | min time (s) | median time (s) | CPU ms/clip (median) |",
        "|---|---|---|---|---|---|",
        f"| tf.data front-end (batch {batch}) | {tf_s['clips_per_s_best']} | {tf_s['clips_per_s_median']} | "
        f"{tf_s['min_s']} | {tf_s['median_s']} | {tf_s['cpu_ms_per_clip_median']} |",
        f"| librosa reference (soundfile + melspectrogram + numpy deltas) | {ref_s['clips_per_s_best']} | "
        f"{ref_s['clips_per_s_median']} | {ref_s['min_s']} | {ref_s['median_s']} | {ref_s['cpu_ms_per_clip_median']} |",
        "",
        f"Ratio tf.data / librosa: {speedup_best}x (best), {speedup_median}x (median). "
        f"Max abs difference between the two outputs: {max_diff:.2e}. CPU ms/clip is process CPU time (all "
        f"threads) per clip; wall-clock rates depend on other load on the machine (see load average).",
    ])
    return {
        "measured": ("wall-clock time to decode N wav files from disk and compute two_stage features into numpy "
                     "arrays; tf.data pipeline (parallel in-graph decode, batched TF front-end) vs a sequential "
                     "soundfile + librosa + numpy loop; both warmed up once first (librosa numba JIT and TF "
                     "tracing excluded); clip files written beforehand and in the OS page cache; also process CPU "
                     "time (user + system, all threads)"),
        "config": "two_stage",
        "n_clips": n_clips, "clip_seconds": seconds, "sample_rate": 44100, "subtype": "PCM_24",
        "batch_size": batch, "repeats": repeats, "quick": quick,
        "tf_data": tf_s, "librosa_reference": ref_s,
        "ratio_best": speedup_best, "ratio_median": speedup_median,
        "max_abs_diff": max_diff,
        "summary_md": summary,
    }
