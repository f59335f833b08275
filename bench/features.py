"""Feature extraction speed: our tf.data front-end vs the librosa reference recipe (issue item 1).

Both sides read the same 24-bit 44.1 kHz 10 s wav clips from disk (written beforehand, so in the
OS page cache) and compute the two-stage features (log-mel 128 x 431 -> min-max -> deltas ->
(423, 128, 3)) into one float32 array:

* ours: :func:`tf_scenes.pipelines.cache.feature_dataset`, the pipeline of the feature cache: parallel
  decoding (24-bit PCM through a strided numpy view), the front-end of each clip in parallel map
  calls, XLA-compiled (``jit_compile=True``; the cache uses it from ``XLA_MIN_CLIPS`` files on),
  batched, written into the array; also measured with the graph front-end (``jit_compile=False``);
* reference: a Python loop of ``soundfile.read`` + :func:`tf_scenes.two_stage.features.reference`
  (librosa.feature.melspectrogram + numpy deltas), one clip at a time, as the reference code does.

* ours, the feature cache's XLA path for PCM WAV files: :func:`pipelines.pcm_features.pcm_feature_batches`
  (sample bytes read into batches, decoded inside the XLA front-end; no tf.data);

Each side runs once untimed first (XLA compilation, TF tracing, librosa's numba JIT; their time is
reported as ``first_run_s``), then the sides run interleaved `repeats` times. A breakdown measures
the parts alone: decoding, the front-end on waveforms already in memory (graph, XLA, eager), and
three ways of decoding one 24-bit clip.

The floor: the bare batched STFT + power + mel projection (no log, scaling or deltas) of the same
clips as waveforms already in memory, by every implementation available here (tf.signal in a
tf.function, with and without XLA, with the dense or the blocked mel product; scipy.fft rfft with 1
and 2 workers and numpy.fft rfft, with a dense or a sparse mel product; torch is not installed). The
fastest by median CPU time per clip is the floor, and every pipeline is reported as a ratio to it.
"""

from __future__ import annotations

import functools
import statistics
import tempfile
from pathlib import Path

import numpy as np

from .common import interleaved, md_table, per_item, rnd, timed


def write_clips(folder: Path, n: int, seconds: float, sr: int = 44100) -> list[Path]:
    """`n` 24-bit mono wav files of noise + chirps + a 5 kHz tone (energy over the whole band)."""
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


def _tf_ops_pcm24(raw):
    """The previous in-graph 24-bit decoder (kept here for the breakdown only): uint8 -> int32,
    b0 + 256 b1 + 65536 b2, sign extension with a shift pair, / 2^23."""
    import tensorflow as tf

    b = tf.cast(tf.reshape(tf.io.decode_raw(raw, tf.uint8), [-1, 3]), tf.int32)  # (samples, 3)
    v = b[:, 0] + b[:, 1] * 256 + b[:, 2] * 65536
    v = tf.bitwise.right_shift(tf.bitwise.left_shift(v, 8), 8)
    return tf.cast(v, tf.float32) / 8388608.0


def floor_candidates(cfg, waves):
    """{name: fn() -> (batch, frames, n_mels) mel power} for the waveforms `waves` (batch, samples):
    the bare STFT + power + mel projection (librosa framing: centred, reflect-padded) by each
    implementation available here."""
    import scipy.fft
    import scipy.sparse
    import tensorflow as tf

    from tf_scenes.features.filters import window
    from tf_scenes.features.frontend import mel_matrix, mel_spectrogram, stft_spectrogram

    mel = mel_matrix(cfg)  # (bins, n_mels)
    mel_t_sparse = scipy.sparse.csr_matrix(mel.T)  # > 95 % zeros
    win = window(cfg.window, cfg.n_fft, cfg.window_periodic).astype(np.float32)
    assert cfg.window_length == cfg.n_fft and cfg.center and cfg.power == 2  # the two-stage STFT
    wt = tf.constant(waves)

    def tf_power_mel(x, blocked):
        s = stft_spectrogram(cfg, x)  # (batch, frames, bins)
        return mel_spectrogram(cfg, s) if blocked else tf.matmul(s, tf.constant(mel))

    fns = {}
    for blocked, tag in ((False, "dense"), (True, "blocked")):
        graph = tf.function(functools.partial(tf_power_mel, blocked=blocked))
        xla = tf.function(functools.partial(tf_power_mel, blocked=blocked), jit_compile=True)
        fns[f"tf_graph_{tag}_mel"] = lambda f=graph: f(wt).numpy()
        fns[f"tf_xla_{tag}_mel"] = lambda f=xla: f(wt).numpy()

    half = cfg.n_fft // 2
    n_frames = 1 + waves.shape[1] // cfg.hop_length

    def np_power(fft, workers=None):
        padded = np.pad(waves, [(0, 0), (half, half)], mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft, axis=1)[:, ::cfg.hop_length][:, :n_frames]
        spec = fft(frames * win, axis=-1, **({} if workers is None else {"workers": workers}))  # complex64
        return spec.real ** 2 + spec.imag ** 2  # (batch, frames, bins) float32

    def sparse_mel(power):
        b, t, f = power.shape
        return np.asarray(mel_t_sparse @ power.reshape(b * t, f).T).T.reshape(b, t, -1)

    for workers in (1, 2):
        fns[f"scipy_rfft_w{workers}_dense_mel"] = lambda w=workers: np_power(scipy.fft.rfft, w) @ mel
        fns[f"scipy_rfft_w{workers}_sparse_mel"] = lambda w=workers: sparse_mel(np_power(scipy.fft.rfft, w))
    fns["numpy_rfft_dense_mel"] = lambda: np_power(np.fft.rfft) @ mel
    return fns


def _floor(cfg, waves, repeats: int) -> dict:
    """Time every floor candidate (interleaved) and pick the fastest by median CPU time per clip."""
    fns = floor_candidates(cfg, waves)
    outputs = {k: fn() for k, fn in fns.items()}  # warm-up: tracing, XLA compilation
    ref = outputs["tf_graph_dense_mel"]
    scale = float(np.abs(ref).max())
    times = interleaved(fns, max(3, repeats))
    cands = {k: per_item(times[k], len(waves)) for k in fns}
    for k in fns:
        cands[k]["max_rel_diff_vs_tf_graph_dense"] = rnd(float(np.abs(outputs[k] - ref).max()) / scale, 3)
    fastest = min(cands, key=lambda k: cands[k]["cpu_ms_per_item_median"])
    return {"what": "STFT (centred, reflect-padded, Hann 2048 / hop 1024) + power + 128-band mel projection of "
                    f"a batch of {len(waves)} ten-second waveforms in memory; no log, scaling or deltas",
            "tried": sorted(fns), "torch": "not installed (not tried)", "candidates": cands, "fastest": fastest,
            "cpu_ms_per_clip_median": cands[fastest]["cpu_ms_per_item_median"],
            "cpu_ms_per_clip_min": cands[fastest]["cpu_ms_per_item_min"]}


def _breakdown(paths, sources, cfg, repeats: int, batch: int) -> dict:
    import soundfile as sf
    import tensorflow as tf

    from tf_scenes.pipelines.audio import decode_dataset, pcm24_samples
    from tf_scenes.features import extract, tf_features

    n = len(paths)
    out = {}

    # 1. Decoding alone, in tf.data (parallel map, batched), as in the pipeline.
    dec = decode_dataset(sources, cfg.sample_rate, num_samples=cfg.clip_samples).batch(batch)

    def decode_only():
        for b in dec:
            b.numpy()

    # 2. The front-end alone on a batch of waveforms in memory: graph, XLA, eager.
    waves = np.stack([sf.read(str(p), dtype="float32")[0][:cfg.clip_samples] for p in paths[:batch]])
    wt = tf.constant(waves)
    graph = tf.function(functools.partial(tf_features, cfg))
    xla = tf.function(functools.partial(tf_features, cfg), jit_compile=True)
    n_eager = min(4, len(waves))
    # The cache's PCM path in two parts: reading the sample bytes of a batch, the XLA program
    # (decoding + front-end) on bytes in memory.
    from tf_scenes.pipelines.pcm_features import _read_batch, feature_program

    raw = _read_batch(sources[:batch], cfg.clip_samples, 3)
    fused = feature_program(cfg, "pcm24")
    fns = {
        "decode_tf_data": (decode_only, n),
        "pcm_read_batch": (lambda: _read_batch(sources[:batch], cfg.clip_samples, 3), len(raw)),
        "pcm_xla_decode_and_front_end_batch": (lambda: fused(raw).numpy(), len(raw)),
        "front_end_graph_batch": (lambda: graph(wt).numpy(), len(waves)),
        "front_end_xla_batch": (lambda: xla(wt).numpy(), len(waves)),
        "front_end_eager_per_clip": (lambda: [extract(cfg, w) for w in waves[:n_eager]], n_eager),
    }
    for fn, _ in fns.values():  # warm-up (tracing, compilation)
        fn()
    times = interleaved({k: fn for k, (fn, _) in fns.items()}, repeats)
    for k, (_, count) in fns.items():
        out[k] = per_item(times[k], count)

    # 3. One 24-bit clip, three decoders (single call each, no tf.data).
    src = sources[0]
    path = str(src.path)

    def numpy_view():
        with open(path, "rb") as f:
            f.seek(src.data_offset - 1)
            buf = f.read(src.data_bytes + 1)
        return pcm24_samples(buf, 1, src.data_bytes // 3)

    tf_ops = tf.function(lambda p: _tf_ops_pcm24(tf.strings.substr(tf.io.read_file(p), src.data_offset,
                                                                    src.data_bytes)))
    ptensor = tf.constant(path)
    same = bool(np.array_equal(numpy_view(), tf_ops(ptensor).numpy())
                and np.array_equal(numpy_view(), sf.read(path, dtype="float32")[0]))
    dec_fns = {"pcm24_numpy_strided_view": numpy_view,
               "pcm24_tf_ops_previous": lambda: tf_ops(ptensor).numpy(),
               "pcm24_soundfile": lambda: sf.read(path, dtype="float32")[0]}
    reps = max(5, 3 * repeats)
    dtimes = interleaved(dec_fns, reps)
    for k in dec_fns:
        out[k] = per_item(dtimes[k], 1)
    out["pcm24_decoders_identical"] = same
    return out


def run(out_dir: Path, repeats: int = 3, quick: bool = False) -> dict:
    import soundfile as sf

    from tf_scenes.pipelines.audio import probe_audio
    from tf_scenes.pipelines.cache import XLA_MIN_CLIPS, feature_dataset
    from tf_scenes.pipelines.pcm_features import feature_program, pcm_feature_batches
    from tf_scenes.features import get_feature_config, output_shape
    from tf_scenes.two_stage.features import reference

    n_clips, seconds, batch = (2, 10.0, 2) if quick else (64, 10.0, 16)
    cfg = get_feature_config("two_stage")
    shape = (n_clips,) + output_shape(cfg, cfg.clip_samples)
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        paths = write_clips(Path(tmp), n_clips, seconds)
        sources = probe_audio(paths)

        def ours(jit: bool):
            ds = feature_dataset(sources, cfg, num_samples=cfg.clip_samples, batch_size=batch, jit_compile=jit)

            def go():
                out, i = np.empty(shape, np.float32), 0
                for b in ds:
                    b = b.numpy()
                    out[i:i + len(b)] = b
                    i += len(b)
                return out
            return go

        program = feature_program(cfg, "pcm24")  # compiled once (first run), as in one cache fill

        def pcm_xla():
            out = np.empty(shape, np.float32)
            for rows, feats in pcm_feature_batches(sources, cfg, num_samples=cfg.clip_samples, batch_size=batch,
                                                   program=program):
                out[rows] = feats
            return out

        def librosa_reference():
            return np.stack([reference(sf.read(str(p), dtype="float32")[0]) for p in paths])

        sides = {"cache_xla_pcm": pcm_xla, "tf_data_xla": ours(True), "tf_data_graph": ours(False),
                 "librosa_reference": librosa_reference}
        first, first_cpu, outputs = {}, {}, {}
        for name, fn in sides.items():  # untimed warm-up (its time is reported)
            wall, cpu, outputs[name] = timed(fn)
            first[name], first_cpu[name] = rnd(wall), cpu
        times = interleaved(sides, repeats)
        breakdown = _breakdown(paths, sources, cfg, repeats, batch)
        floor = _floor(cfg, np.stack([sf.read(str(p), dtype="float32")[0][:cfg.clip_samples]
                                      for p in paths[:batch]]), repeats)

    res = {name: {**per_item(times[name], n_clips), "first_run_s": first[name]} for name in sides}
    ref = outputs["librosa_reference"]
    diffs = {"xla_vs_librosa": float(np.abs(outputs["tf_data_xla"] - ref).max()),
             "graph_vs_librosa": float(np.abs(outputs["tf_data_graph"] - ref).max()),
             "xla_vs_graph": float(np.abs(outputs["tf_data_xla"] - outputs["tf_data_graph"]).max()),
             "cache_xla_pcm_vs_tf_data_xla": float(np.abs(outputs["cache_xla_pcm"] - outputs["tf_data_xla"]).max())}
    x, g, r = res["tf_data_xla"], res["tf_data_graph"], res["librosa_reference"]
    c = res["cache_xla_pcm"]
    f_ms = floor["cpu_ms_per_clip_median"]
    vs_floor = {name: rnd(res[name]["cpu_ms_per_item_median"] / f_ms, 3) for name in sides}
    vs_floor["front_end_xla_batch_in_memory"] = rnd(breakdown["front_end_xla_batch"]["cpu_ms_per_item_median"] / f_ms, 3)
    vs_floor["pcm_xla_program_on_bytes_in_memory"] = rnd(
        breakdown["pcm_xla_decode_and_front_end_batch"]["cpu_ms_per_item_median"] / f_ms, 3)
    ratios = {
        "wall_clips_per_s_best": rnd(x["per_s_best"] / r["per_s_best"], 3),
        "wall_clips_per_s_median": rnd(x["per_s_median"] / r["per_s_median"], 3),
        "cpu_per_clip_median": rnd(r["cpu_ms_per_item_median"] / x["cpu_ms_per_item_median"], 3),
        "graph_wall_clips_per_s_median": rnd(g["per_s_median"] / r["per_s_median"], 3),
        "graph_cpu_per_clip_median": rnd(r["cpu_ms_per_item_median"] / g["cpu_ms_per_item_median"], 3),
    }
    # One-off XLA compilation against the per-clip saving (CPU time: steadier than wall-clock on a
    # shared machine): when the cache switches XLA on.
    compile_s = max(first["tf_data_xla"] - statistics.median(times["tf_data_xla"]["wall"]), 0.0)
    compile_cpu_s = max(first_cpu["tf_data_xla"] - statistics.median(times["tf_data_xla"]["cpu"]), 0.0)
    saving_ms = g["cpu_ms_per_item_median"] - x["cpu_ms_per_item_median"]
    xla_cost = {"compile_overhead_wall_s": rnd(compile_s), "compile_overhead_cpu_s": rnd(compile_cpu_s),
                "cpu_saving_ms_per_clip": rnd(saving_ms),
                "break_even_clips": int(1000 * compile_cpu_s / saving_ms) if saving_ms > 0 else None,
                "cache_uses_xla_from_clips": XLA_MIN_CLIPS}

    def row(label, s):
        return [label, s["per_s_best"], s["per_s_median"], s["wall_ms_per_item_min"], s["wall_ms_per_item_median"],
                s["cpu_ms_per_item_min"], s["cpu_ms_per_item_median"], s["first_run_s"]]

    bd = breakdown

    def brow(label, key):
        s = bd[key]
        return [label, s["wall_ms_per_item_min"], s["wall_ms_per_item_median"], s["cpu_ms_per_item_min"],
                s["cpu_ms_per_item_median"]]

    summary_md = "\n".join([
        f"two_stage features of {n_clips} clips x {seconds:g} s (44.1 kHz 24-bit wav files in the page cache) "
        f"into one float32 array {shape}; {repeats} interleaved timed repeats after one untimed run of each side.",
        "",
        md_table(["pipeline", "clips/s (best)", "clips/s (median)", "wall ms/clip (min)", "wall ms/clip (median)",
                  "CPU ms/clip (min)", "CPU ms/clip (median)", "first run (s)"],
                 [row(f"ours: feature cache, XLA path: PCM bytes decoded in the XLA front-end (batch {batch})", c),
                  row(f"ours: tf.data, XLA front-end (batch {batch})", x),
                  row(f"ours: tf.data, graph front-end (batch {batch})", g),
                  row("librosa reference (soundfile + melspectrogram + numpy deltas, sequential)", r)]),
        "",
        f"**Ratio ours (XLA) / librosa: {ratios['wall_clips_per_s_best']}x wall clips/s (best), "
        f"{ratios['wall_clips_per_s_median']}x (median); the reference needs {ratios['cpu_per_clip_median']}x our CPU "
        f"time per clip (median).** Graph front-end: {ratios['graph_wall_clips_per_s_median']}x wall (median), "
        f"{ratios['graph_cpu_per_clip_median']}x CPU. Max abs difference to the librosa output: "
        f"{diffs['xla_vs_librosa']:.2e} (XLA), {diffs['graph_vs_librosa']:.2e} (graph); XLA vs graph "
        f"{diffs['xla_vs_graph']:.2e}. XLA compilation: ~{xla_cost['compile_overhead_cpu_s']} CPU s once, "
        f"{xla_cost['cpu_saving_ms_per_clip']} CPU ms saved per clip: "
        + (f"break-even after ~{xla_cost['break_even_clips']} clips" if xla_cost['break_even_clips'] is not None
           else "no break-even on this machine (XLA was not cheaper per clip in this run)")
        + f" (the cache compiles from {XLA_MIN_CLIPS} files on).",
        "",
        f"**Floor** (bare STFT + power + mel projection of {min(batch, n_clips)} "
        f"waveforms in memory, fastest of {len(floor['tried'])} implementations: {floor['fastest']}): "
        f"{f_ms} CPU ms per clip (median). **Ours / floor (CPU, median): feature cache XLA path "
        f"{vs_floor['cache_xla_pcm']}x ({c['cpu_ms_per_item_median']} ms), tf.data + XLA front-end "
        f"{vs_floor['tf_data_xla']}x ({x['cpu_ms_per_item_median']} ms), tf.data + graph front-end "
        f"{vs_floor['tf_data_graph']}x ({g['cpu_ms_per_item_median']} ms), librosa {vs_floor['librosa_reference']}x.** "
        f"The XLA front-end alone on waveforms in memory: {vs_floor['front_end_xla_batch_in_memory']}x; the cache's "
        f"XLA program on sample bytes in memory: {vs_floor['pcm_xla_program_on_bytes_in_memory']}x. The cache's XLA "
        f"path gives the tf.data XLA pipeline's features exactly (max abs difference "
        f"{diffs['cache_xla_pcm_vs_tf_data_xla']:.1e}).",
        "",
        md_table(["floor candidate", "CPU ms/clip (min)", "CPU ms/clip (median)", "max rel. diff to tf graph dense"],
                 [[k, v["cpu_ms_per_item_min"], v["cpu_ms_per_item_median"], v["max_rel_diff_vs_tf_graph_dense"]]
                  for k, v in sorted(floor["candidates"].items(), key=lambda kv: kv[1]["cpu_ms_per_item_median"])]),
        "",
        "Where the time goes (parts alone, interleaved, per clip):",
        "",
        md_table(["part", "wall ms (min)", "wall ms (median)", "CPU ms (min)", "CPU ms (median)"], [
            brow("decoding in tf.data (24-bit numpy view, parallel map, batched)", "decode_tf_data"),
            brow("cache XLA path: reading the sample bytes of a batch", "pcm_read_batch"),
            brow("cache XLA path: XLA program (decoding + front-end) on a batch of bytes in memory",
                 "pcm_xla_decode_and_front_end_batch"),
            brow(f"front-end, graph, batch of {min(batch, n_clips)} in memory", "front_end_graph_batch"),
            brow(f"front-end, XLA, batch of {min(batch, n_clips)} in memory", "front_end_xla_batch"),
            brow("front-end, eager (extract(), one clip a call)", "front_end_eager_per_clip"),
            brow("decode one 24-bit clip: strided numpy view (now)", "pcm24_numpy_strided_view"),
            brow("decode one 24-bit clip: TF ops uint8->int32 (previous)", "pcm24_tf_ops_previous"),
            brow("decode one 24-bit clip: soundfile.read", "pcm24_soundfile"),
        ]),
    ])
    return {
        "measured": ("wall-clock and process CPU time (user + system, all threads) to decode N 24-bit wav files "
                     "from disk and compute the two_stage features into one numpy array: the feature cache's XLA "
                     "path (tf_scenes.pipelines.pcm_features), our tf.data pipeline (tf_scenes.pipelines.cache.feature_dataset, XLA and "
                     "graph front-end) and a sequential soundfile + librosa + numpy loop; sides interleaved; warm-up "
                     "runs (XLA compilation, TF tracing, numba JIT) excluded from the timed repeats and reported as "
                     "first_run_s; the floor: the fastest bare STFT + power + mel projection of waveforms in memory "
                     "among the implementations tried, every pipeline as a ratio of CPU time to it"),
        "config": "two_stage", "n_clips": n_clips, "clip_seconds": seconds, "sample_rate": 44100,
        "subtype": "PCM_24", "batch_size": batch, "repeats": repeats, "quick": quick,
        "cache_xla_pcm": c, "tf_data_xla": x, "tf_data_graph": g, "librosa_reference": r,
        "floor": floor, "vs_floor_cpu_median": vs_floor,
        "ratios": ratios, "max_abs_diff": diffs, "xla_compile": xla_cost,
        "breakdown": breakdown,
        "summary_md": summary_md,
    }
