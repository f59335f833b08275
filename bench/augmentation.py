"""Two-stage audio augmentation: online (tf.data, :mod:`tf_scenes.pipelines.waveform_augment`) against the
offline design of the reference code, per kind and for the six-way mix.

Both sides start from the same 24-bit 44.1 kHz 10 s wav clips (written beforehand, so in the page
cache) and make one augmented copy per clip and kind:

* online: :func:`tf_scenes.pipelines.waveform_augment.augmented_dataset` (files decoded by
  :func:`tf_scenes.pipelines.audio.index_reader`, same-scene partners drawn in the pipeline, a RIR drawn
  from a bank built once) followed by the two-stage log-mel features (423 x 128 x 3,
  :func:`tf_scenes.features.tf_features`), parallel map calls on the machine's cores, batched;
* offline, as the reference does it: one clip at a time in Python, read the wav, augment it with
  :mod:`tf_scenes.pipelines.offline_augment` (per-clip pyroomacoustics room simulation and the
  sample-loop compander; librosa's phase-vocoder pitch shift, as the reference code; soxr speed
  change; numpy noise and mixing), write a 24-bit wav.  Its features are NOT included (the
  reference computes them in a later pass), which favours the offline side.

Each side runs once untimed (tracing, librosa's JIT), then the sides run interleaved `repeats`
times.  The six-way mix is every clip in all six kinds (online: one dataset that interleaves the
kinds per clip; offline: the six loops one after the other).  The one-time costs (room bank,
device ratio) are reported apart.

Training: the online six-way stream (features, random 400-frame crop, batches of 32) feeding the
quick-width two-stage ResNet (width 0.125) in a manual loop timing ``next(iterator)`` (waiting for
input) and ``train_on_batch``; fraction = wait / (wait + step).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .common import interleaved, md_table, per_item, rnd, summary

KINDS = ("spectrum_correction", "reverb_drc", "pitch_shift", "speed_change", "noise", "same_class_mix")
TARGET = 10.0


def _offline_one(kind, path, partner_path, rng, ratio, out_path, sr=44100, rt60=(0.2, 1.0)):
    """One clip through the reference design: read, augment, write 24-bit."""
    import librosa

    from tf_scenes.audio import read_audio, write_audio
    from tf_scenes.pipelines import offline_augment as oa

    x = read_audio(path, sr=sr)[0]
    if kind == "spectrum_correction":
        y = oa.apply_spectrum_correction(x, ratio)
    elif kind == "reverb_drc":
        y, _ = oa.reverb_drc(x, sr, rng, rt60_range=rt60)
    elif kind == "pitch_shift":  # the reference code: librosa's phase vocoder
        y = librosa.effects.pitch_shift(x, sr=sr, n_steps=float(rng.uniform(-4, 4)), res_type="soxr_hq")
    elif kind == "speed_change":
        y, _ = oa.speed_change(x, sr, rng)
    elif kind == "noise":
        y, _ = oa.add_noise(x, rng)
    else:
        y, _ = oa.same_class_mix(x, read_audio(partner_path, sr=sr)[0], rng)
    top = float(np.max(np.abs(y)))
    write_audio(out_path, y * (0.999 / top if top > 0.999 else 1.0), sr, subtype="PCM_24")


def run(out_dir: Path, repeats: int = 3, quick: bool = False) -> dict:
    import keras
    import tensorflow as tf

    from tf_scenes.pipelines import waveform_augment as wa
    from tf_scenes.pipelines.audio import index_reader
    from tf_scenes.features import get_feature_config, tf_features
    from tf_scenes.two_stage.model import TwoStageModelConfig, build_two_stage_model

    from .features import write_clips

    n_clips, seconds, bank_size, rt60, batch, width, steps = (
        (2, 1.0, 2, (0.2, 0.3), 2, 0.0625, 1) if quick else (8, 10.0, 16, (0.2, 1.0), 32, 0.125, 3))
    cfg = get_feature_config("two_stage")
    with tempfile.TemporaryDirectory(prefix="bench-augment-") as tmp:
        tmp = Path(tmp)
        paths = write_clips(tmp / "audio", n_clips, seconds)
        scenes = ["park" if i % 2 else "bus" for i in range(n_clips)]  # two clips per scene at least
        names = [f"audio/{p.name}" for p in paths]
        ratio = (1 + 0.5 * np.sin(np.linspace(0, 6, 1025)) ** 2).astype(np.float32)  # a smooth device ratio
        t0 = time.perf_counter()
        bank = wa.rir_bank(bank_size, rt60, seed=0)
        bank_s = time.perf_counter() - t0
        params = wa.AugmentParams(cfg=wa.WaveAugmentConfig(rt60_range=rt60, rir_bank_size=bank_size),
                                  ratio=ratio, bank=bank)
        read = index_reader(paths, cfg.sample_rate, num_samples=cfg.clip_samples)
        common = dict(read=read, keys=wa.clip_keys(names), partners=wa.ScenePartners(scenes), seed=0, names=names)

        @tf.autograph.experimental.do_not_convert
        def features(y, i, k):
            return tf_features(cfg, y), i

        def online_dataset(kinds, epoch=0):
            ds = wa.augmented_dataset(range(n_clips), kinds, params, mode="fresh", epoch=epoch, **common)
            ds = ds.map(features, num_parallel_calls=tf.data.AUTOTUNE)
            return ds.batch(8).prefetch(tf.data.AUTOTUNE)

        def online(kinds):
            ds = online_dataset(kinds)  # traced once; every repeat iterates it afresh

            def go():
                n = 0
                for x, _ in ds:
                    n += int(x.shape[0])
                assert n == n_clips * len(kinds)
            return go

        rng_seed = iter(range(10 ** 6))

        def offline(kinds):
            def go():
                for kind in kinds:
                    for i, p in enumerate(paths):
                        partner = paths[(i + 2) % n_clips]  # same scene (scenes alternate)
                        _offline_one(kind, p, partner, np.random.default_rng(next(rng_seed)), ratio,
                                     tmp / "offline" / f"{p.stem}-{kind}.wav", rt60=rt60)
            return go

        fns = {}
        for kind in KINDS:
            fns[f"online/{kind}"] = online([kind])
            fns[f"offline/{kind}"] = offline([kind])
        fns["online/six_way"] = online(list(KINDS))
        first = {}
        for name, fn in fns.items():  # warm-up: tracing, librosa's JIT, first reads
            t0 = time.perf_counter()
            fn()
            first[name] = rnd(time.perf_counter() - t0)
        times = interleaved(fns, repeats)

        rates = {name: {**per_item(t, n_clips * (len(KINDS) if name.endswith("six_way") else 1)),
                        "first_run_s": first[name]} for name, t in times.items()}
        # Offline six-way: the six loops one after the other (per repeat, the sum of the kinds' times).
        six = {"wall": [sum(times[f"offline/{k}"]["wall"][r] for k in KINDS) for r in range(repeats)],
               "cpu": [sum(times[f"offline/{k}"]["cpu"][r] for k in KINDS) for r in range(repeats)]}
        rates["offline/six_way"] = per_item(six, n_clips * len(KINDS))
        per_kind = {}
        for kind in (*KINDS, "six_way"):
            on, off = rates[f"online/{kind}"], rates[f"offline/{kind}"]
            per_kind[kind] = {"online_clips_per_s": on["per_s_median"], "offline_clips_per_s": off["per_s_median"],
                              "ratio": rnd(on["per_s_median"] / off["per_s_median"], 3),
                              "online_cpu_ms_per_clip": on["cpu_ms_per_item_median"],
                              "offline_cpu_ms_per_clip": off["cpu_ms_per_item_median"]}

        # Training on the online six-way stream: input wait of the quick-width ResNet.
        keras.utils.set_random_seed(0)
        model = build_two_stage_model(TwoStageModelConfig(arch="resnet", num_classes=10, width=width))
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy")
        onehot = tf.constant(np.eye(10, dtype=np.float32)[[i % 10 for i in range(n_clips)]])

        @tf.autograph.experimental.do_not_convert
        def epoch_clips(e):
            return wa.augmented_dataset(range(n_clips), list(KINDS), params, mode="fresh", epoch=e, **common)

        @tf.autograph.experimental.do_not_convert
        def example(y, i, k):  # the first 400 frames: the crop's position does not change the timing
            return tf_features(cfg, y)[:400], tf.gather(onehot, i)

        train = (tf.data.Dataset.range(0, 10 ** 6).flat_map(epoch_clips)
                 .map(example, num_parallel_calls=tf.data.AUTOTUNE)
                 .batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
        x0 = tf.zeros([batch, 400, 128, 3])
        y0 = tf.gather(onehot, tf.zeros([batch], tf.int32))
        t0 = time.perf_counter()
        model.train_on_batch(x0, y0)  # tracing, excluded
        trace_s = time.perf_counter() - t0
        alone = []
        for _ in range(steps):  # the step with nothing else running
            t0 = time.perf_counter()
            model.train_on_batch(x0, y0)
            alone.append(time.perf_counter() - t0)
        it = iter(train)
        wait, step = [], []
        for k in range(steps + 1):
            a = time.perf_counter()
            x, y = next(it)
            b = time.perf_counter()
            model.train_on_batch(x, y)
            c = time.perf_counter()
            if k:  # the first batch (pipeline start-up) is not timed
                wait.append(b - a)
                step.append(c - b)
        del it
        train_loop = {"model": f"two_stage_resnet width {width}, 10 classes", "batch_size": batch, "crop": 400,
                      "steps": steps, "trace_s": rnd(trace_s), "device": "CPU" if not tf.config.list_physical_devices("GPU")
                      else "GPU", "wait_s": summary(wait), "step_s": summary(step), "step_alone_s": summary(alone),
                      "input_wait_fraction": rnd(sum(wait) / (sum(wait) + sum(step)), 3),
                      "online_clips_per_s_during_training": rnd(batch * len(wait) / max(sum(wait) + sum(step), 1e-9))}

    six_k = per_kind["six_way"]
    met = six_k["ratio"] >= TARGET
    rows = [[k, per_kind[k]["online_clips_per_s"], per_kind[k]["offline_clips_per_s"], per_kind[k]["ratio"],
             per_kind[k]["online_cpu_ms_per_clip"], per_kind[k]["offline_cpu_ms_per_clip"]] for k in (*KINDS, "six_way")]
    summary_md = "\n".join([
        f"{n_clips} clips of {seconds:g} s (24-bit 44.1 kHz wav), one augmented copy per clip and kind; {repeats} "
        f"interleaved repeats. Online: tf.data on this machine's cores, two-stage log-mel features included; "
        f"offline (reference design): one clip at a time, per-clip room simulation, sample-loop compander, librosa "
        f"pitch shift, 24-bit wav written, features not included. Room bank of {bank_size} rooms (RT60 "
        f"{rt60[0]}-{rt60[1]} s) built once in {rnd(bank_s, 3)} s (not in the rates).",
        "",
        md_table(["kind", "online clips/s (median)", "offline clips/s (median)", "online / offline",
                  "online CPU ms/clip", "offline CPU ms/clip"], rows),
        "",
        f"**Six-way mix: online / offline = {six_k['ratio']}x** (target {TARGET:g}x: "
        f"{'met' if met else 'NOT met'}). Training the quick-width ResNet (batch {batch}) on the online six-way "
        f"stream: {train_loop['input_wait_fraction']:.1%} of the loop time waits for input (wait "
        f"{train_loop['wait_s']['median']} s, step {train_loop['step_s']['median']} s per batch, median). "
        f"On the CPU the pipeline's prefetching threads and the step share the cores: the step alone takes "
        f"{train_loop['step_alone_s']['median']} s, so the stream feeds "
        f"{train_loop['online_clips_per_s_during_training']} clips/s to training here; an accelerator is kept "
        f"fed while its step takes more than batch / (online clips/s) = "
        f"{rnd(batch / max(six_k['online_clips_per_s'], 1e-9), 3)} s.",
    ])
    return {
        "measured": ("clips/s (median over interleaved repeats) of one augmented copy per clip and kind, online "
                     "(tf.data with features) vs offline (read, augment, write wav; no features), per kind and for "
                     "the six-way mix; input-wait fraction of training on the online stream"),
        "quick": quick, "n_clips": n_clips, "clip_seconds": seconds, "repeats": repeats,
        "online_clips_per_s": six_k["online_clips_per_s"], "offline_clips_per_s": six_k["offline_clips_per_s"],
        "ratio": six_k["ratio"], "target": TARGET, "target_met": met,
        "kinds": {k: per_kind[k] for k in KINDS}, "rates": rates,
        "rir_bank": {"rooms": bank_size, "rt60_range": list(rt60), "build_s": rnd(bank_s)},
        "train_loop": train_loop, "summary_md": summary_md,
    }
