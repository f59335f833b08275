"""Paper scale on one machine: the two-stage study's paper profile, data path and training input,
at several sizes of TAU-format synthetic data, fitted against size and extrapolated to the real
TAU Urban Acoustic Scenes 2020 Mobile fold 1 (13,965 training + 2,970 evaluation clips).

    python -m bench.run --out bench --only scale          # make bench-scale (35 min on 2 busy cores)
    BENCH_SCALE_SIZES=500,1000,2000 BENCH_SCALE_ROOT=/tmp/scale python -m bench.run --out bench --only scale

Sizes are counts of listed clips (fold1_train + fold1_evaluate) of a synthetic set with the real
set's proportions (device A 10,215 : each other training device 750 : 330 evaluation clips per
device).  For each size, stages (each in a fresh subprocess of ``python -m bench.scale``, so its
peak memory is its own), all with the paper profile's config and the study's own functions
(:mod:`tf_scenes.experiments.two_stage.plan`):

* ``generate``: the synthetic set (:func:`tf_scenes.synth.asc.generate`, every usable CPU);
* ``features``: the feature cache of training, validation and evaluation clips
  (:func:`tf_scenes.pipelines.cache.cached_features`; what ``augment.mode=online`` stores);
* ``room_bank``: the bank of simulated rooms online reverberation draws from (128 rooms whatever
  the size: measured once, at the smallest size, and copied into the cache of the other sizes);
* ``online_setup``: the rest of what online augmentation prepares (:func:`plan.augment_online`:
  headers of every training file, the device ratio);
* ``online_epoch``: the 10-class ResNet run's training input in online mode (every augmented copy
  decoded, augmented and featurised in tf.data): the first batch and ``EPOCH_BATCHES`` more timed,
  batches/s and CPU seconds per batch (an epoch is extrapolated from them);
* ``offline_augment``: the offline copies written as wav files (:func:`plan.augment_offline`);
* ``offline_features``: the offline mode's feature cache (every clip and every copy, as
  :func:`plan.prepare` caches them);
* ``offline_epoch``: the same run's training input in offline mode (rows of the cache), timed so;
* ``models``: parameters and checkpoint bytes of every model run of the profile (paper widths);
* ``train_resnet`` / ``train_fcnn`` (at ``BENCH_SCALE_TRAIN_SIZES``, default the smallest size only:
  a step's cost does not depend on the size of the set): 20 training steps of the full-width
  10-class model on batches of ``TRAIN_BATCH`` examples of the training input (read first, so the
  steps are timed alone), compiled as the study compiles it, and the validation prediction per
  clip, then one step at ``MEMORY_BATCH`` examples: the peak memory at the study's batch (32) is
  extrapolated linearly from the peaks after the small and this step.  An epoch at the real size is then (examples
  per epoch) x (CPU seconds per example at the small batch): on the CPU a step's cost is close to
  proportional to its batch (no idle vector units to fill).

Measured per stage: wall seconds, CPU seconds of the stage's process tree (its own rusage and that
of the children it waited for, or the sum of every process seen in the tree when larger: the
generator's workers belong to a fork server), bytes the stage added to the disk, peak RSS sampled
over the process tree every 0.2 s (total, anonymous, file-backed: pages of the memory-mapped
cache count as file-backed, which the kernel can drop), and the load average.  Each stage's cost
is fitted against its unit (listed clips; the copies for ``offline_augment``, the feature rows for
``offline_features``) by least squares, ``a + b n`` with its R^2 (a power law ``c n^k`` too, named
when it fits better), and evaluated at the unit's real count (:func:`real_counts`: counted from the
paper config, as are the steps and validation clips of an epoch): linearly where the slope is
measured, else as an upper bound (time, bytes) or the largest peak (memory), see :func:`at_size`.
What offline mode writes at the real size is also counted (copies x bytes per copy), as a check.
The measurements are saved after every stage (``BENCH_SCALE_ROOT/measured.json``): started again
with the same root, an interrupted section keeps its completed sizes and the room bank.
``python -m bench.scale --report bench/scale.json`` redoes the fits and the report from the JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

REAL_TRAIN, REAL_EVAL = 13965, 2970  # TAU Urban Acoustic Scenes 2020 Mobile, fold 1
REAL_CLIPS = REAL_TRAIN + REAL_EVAL
# The real set's listed clips per device (TAU 2020 Mobile development, fold 1): device A's training clips, each
# other training device's (b, c, s1-s3), the evaluation clips of each of the 9 devices.
REAL_COUNTS = {"train_a": 10215, "train_other": 750, "eval_per_device": 330}
# Listed clips per measured size (as generated: 26, 43, 86). Offline augmentation writes ~2.7
# copies per listed clip at ~0.25 CPU s each: the largest size keeps the section near 40 min on
# 2 cores shared with other work (load ~15), ~10 on idle ones.
SIZES = (20, 40, 80)
QUICK_SIZES = (16, 24)
TRAIN_STEPS, QUICK_TRAIN_STEPS = 20, 1
# Batches of the training input timed after the first (the steady rate; an epoch is extrapolated).
EPOCH_BATCHES, QUICK_EPOCH_BATCHES = 3, 1
# Examples per timed training step (the study trains on 32): small enough for 20 full-width steps
# of each model to take minutes on a CPU; the per-example cost is what is extrapolated (on a CPU a
# small batch costs at least as much per example as a large one: an upper bound).
TRAIN_BATCH = 2
# Stop timing a model's steps after this many seconds (at least 3 steps): a bound on a busy machine.
TRAIN_MAX_S = 120.0
# The batch of the one extra step whose peak memory, with the small batch's, gives the study's.
MEMORY_BATCH = 8
QUICK_WIDTH = 0.125
VAL_PREDICT_CLIPS = 8
STAGES = ("generate", "features", "room_bank", "online_setup", "online_epoch", "offline_augment", "offline_features",
          "offline_epoch", "models", "train_resnet", "train_fcnn")
# Which stages make up each mode's data path and training epoch (the rest is shared or not in it).
DATA_PATH = {"online": ("features", "room_bank", "online_setup"), "offline": ("offline_augment", "offline_features")}
# Stages whose cost does not depend on the size: measured once, at the smallest size, and taken as
# they are at the real size.
CONSTANT_STAGES = ("room_bank", "models")
EPOCH_INPUT = {"online": "online_epoch", "offline": "offline_epoch"}
TRAIN_ARCHS = {"train_resnet": "resnet", "train_fcnn": "fcnn"}
GB = 1e9


# ----------------------------------------------------------------------------------------------
# the synthetic set of one size


def scaled_size(n: int):
    """The :class:`tf_scenes.synth.asc.AscSize` of about `n` listed clips in the real proportions.

    Ten training locations and four evaluation locations per scene at every size, so that the
    validation split (whole locations, 10 %) keeps about the real share."""
    from tf_scenes.synth.asc import AscSize

    s = n / REAL_CLIPS
    return AscSize(train_a=max(10, round(REAL_COUNTS["train_a"] * s)),
                   train_other=max(1, round(REAL_COUNTS["train_other"] * s)),
                   eval_per_device=max(1, round(REAL_COUNTS["eval_per_device"] * s)),
                   train_locations=10, eval_locations=4)


def _config(root: Path, mode: str, quick: bool):
    from tf_scenes.experiments.reproduce import load_study_config

    cfg = load_study_config("two_stage", "paper", overrides=[f"data.root={root / 'data'}", f"augment.mode={mode}"])
    return cfg


def _env(root: Path, cfg):
    from tf_scenes.experiments.study import StudyEnv
    from tf_scenes.experiments.two_stage import STUDY

    return StudyEnv(root / "out", root / "cache", STUDY, cfg)


def _splits(cfg):
    from tf_scenes.datasets import LoadReport, tau2020
    from tf_scenes.experiments import study
    from tf_scenes.experiments.two_stage import plan

    records, eval_records = tau2020.load_fold1(Path(cfg.data.root), **study.reader_options(cfg.data, LoadReport()))
    train, val = plan.location_split(records, cfg.data.val_fraction, cfg.seed)
    return train, val, eval_records


def _kinds(cfg) -> list[str]:
    from tf_scenes.experiments.two_stage.plan import OFFLINE_KINDS

    return sorted({k for m in cfg.models.values() for k in m.offline}, key=OFFLINE_KINDS.index)


# ----------------------------------------------------------------------------------------------
# stages (run in a subprocess: python -m bench.scale --stage NAME --root DIR --size N --result F)


def _timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - t0, 3), round(time.process_time() - c0, 3)


def stage_generate(root: Path, n: int, quick: bool) -> dict:
    from tf_scenes.synth import asc

    man = asc.generate(root / "data", "scaled", seed=0, size_override=scaled_size(n), progress=False)
    counts = man.get("counts", {})
    return {"counts": counts, "files": sum(counts.get("files", {}).values())}


def stage_features(root: Path, n: int, quick: bool) -> dict:
    from tf_scenes.features import get_feature_config
    from tf_scenes.pipelines.cache import cached_features

    cfg = _config(root, "online", quick)
    train, val, ev = _splits(cfg)
    x = cached_features([str(r.path) for r in train + val + ev], get_feature_config("two_stage"),
                        _env(root, cfg).cache_dir / "features", progress=False)
    return {"clips": {"train": len(train), "val": len(val), "eval": len(ev), "listed": len(train) + len(val) + len(ev)},
            "shape": list(x.shape), "dtype": str(x.dtype), "memmap": _is_memmap(x)}


def stage_room_bank(root: Path, n: int, quick: bool) -> dict:
    from tf_scenes.pipelines import waveform_augment as wa

    cfg = _config(root, "online", quick)
    aug_dir = root / "rooms"  # never a cache hit: the bank is built here, then shared by every size
    aug_dir.mkdir(parents=True, exist_ok=True)
    wcfg = wa.WaveAugmentConfig(rir_bank_size=cfg.augment.rir_bank_size, rir_bank_seed=cfg.augment.seed)
    bank = wa.rir_bank(wcfg.rir_bank_size, wcfg.rt60_range, wcfg.sample_rate, wcfg.rir_bank_seed, aug_dir)
    return {"rooms": wcfg.rir_bank_size, "key": bank.key}


def stage_online_setup(root: Path, n: int, quick: bool) -> dict:
    from tf_scenes.experiments.two_stage import plan

    cfg = _config(root, "online", quick)
    train, _, _ = _splits(cfg)
    records, online = plan.augment_online(train, _kinds(cfg), cfg, _env(root, cfg).cache_dir)
    return {"copies": len(records), "sources": len({int(s) for s in online.sources[:, 0]})}


def _is_memmap(x) -> bool:
    import numpy as np

    base = getattr(x, "base", None)
    return isinstance(x, np.memmap) or isinstance(base, np.memmap)


def _epoch(root: Path, mode: str, quick: bool) -> dict:
    """The 10-class ResNet run's training input as the study builds it: the first batch (pipeline
    start) and up to ``EPOCH_BATCHES`` more, timed; an epoch's cost is extrapolated from the
    steady rate (a batch's cost does not depend on the size of the set)."""
    from tf_scenes.experiments.two_stage import plan
    from tf_scenes.training.trainer import set_determinism

    cfg = _config(root, mode, quick)
    set_determinism(cfg.seed)
    env = _env(root, cfg)
    data, prep_wall, prep_cpu = _timed(lambda: plan.prepare(cfg, env))
    spec = next(s for s in plan.plan(cfg, data) if s.name == "resnet10")
    _, split = spec.item
    steps = plan.epoch_steps(split, cfg.train)
    it = iter(plan.train_dataset(spec, data, cfg.train, 0))
    first, first_wall, first_cpu = _timed(lambda: next(it))
    timed = max(1, min(steps - 1, QUICK_EPOCH_BATCHES if quick else EPOCH_BATCHES))
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(timed):
        next(it)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    computed = 0 if split.computed is None else len(split.computed)
    return {"prepare_s": prep_wall, "prepare_cpu_s": prep_cpu, "steps": steps, "study_batch_size": cfg.train.batch_size,
            "batch_shape": list(first[0].shape),
            "examples": len(split.records), "stored_examples": len(split.records) - computed,
            "computed_examples": computed, "val_clips": len(data.val.records), "eval_clips": len(data.test.records),
            "first_batch_s": first_wall, "first_batch_cpu_s": first_cpu, "batches_timed": timed,
            "batches_per_s": round(timed / wall, 4), "cpu_s_per_batch": round(cpu / timed, 4),
            "epoch_s_estimate": round(first_wall + (steps - 1) * wall / timed, 3),
            "epoch_cpu_s_estimate": round(first_cpu + (steps - 1) * cpu / timed, 3),
            "features_memmap": _is_memmap(data.features)}


def stage_online_epoch(root: Path, n: int, quick: bool) -> dict:
    return _epoch(root, "online", quick)


def stage_offline_augment(root: Path, n: int, quick: bool) -> dict:
    from tf_scenes.experiments.two_stage import plan

    cfg = _config(root, "offline", quick)
    train, _, _ = _splits(cfg)
    records = plan.augment_offline(train, _kinds(cfg), cfg, _env(root, cfg).cache_dir, Path(cfg.data.root))
    return {"copies": len(records)}


def stage_offline_features(root: Path, n: int, quick: bool) -> dict:
    from tf_scenes.experiments.two_stage import plan

    cfg = _config(root, "offline", quick)
    data = plan.prepare(cfg, _env(root, cfg))  # the copies are on disk (cache hit): this computes the features
    return {"rows": int(data.features.shape[0]), "copies": len(data.aug_records), "memmap": _is_memmap(data.features)}


def stage_offline_epoch(root: Path, n: int, quick: bool) -> dict:
    return _epoch(root, "offline", quick)


def _width(quick: bool) -> float:
    return QUICK_WIDTH if quick else 1.0


def stage_models(root: Path, n: int, quick: bool) -> dict:
    """Parameters and checkpoint files of every model run of the profile: a run keeps
    checkpoints/best.weights.h5 and model.weights.h5 (weights) and checkpoints/last.weights.h5
    (weights and optimizer state)."""
    import dataclasses

    import keras

    from tf_scenes import registry
    from tf_scenes.experiments.two_stage import plan

    cfg = _config(root, "online", quick)
    tmp = root / "models"
    tmp.mkdir(parents=True, exist_ok=True)
    per_model, runs = {}, {}
    for name, mrun in cfg.models.items():
        mrun = dataclasses.replace(mrun, width=mrun.width * _width(quick))
        key = f"{mrun.arch}{mrun.num_classes}"
        if key not in per_model:
            keras.backend.clear_session()
            model = registry.build(f"two_stage_{mrun.arch}", plan.model_config(mrun, cfg.train))
            weights = tmp / f"{key}.weights.h5"
            model.save_weights(str(weights))
            model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=cfg.train.momentum),
                          loss="categorical_crossentropy")
            model.optimizer.build(model.trainable_variables)
            last = tmp / f"{key}.last.weights.h5"
            model.save_weights(str(last))
            per_model[key] = {"params": int(model.count_params()), "weights_bytes": weights.stat().st_size,
                              "last_checkpoint_bytes": last.stat().st_size}
            weights.unlink()
            last.unlink()
        m = per_model[key]
        runs[name] = {"model": key, "bytes": 2 * m["weights_bytes"] + m["last_checkpoint_bytes"]}
    return {"width": _width(quick), "models": per_model, "runs": runs,
            "runs_bytes": sum(r["bytes"] for r in runs.values()),
            "augment": {"kinds": len(_kinds(cfg)), "fraction": cfg.augment.fraction, "mode": cfg.augment.mode,
                        "val_fraction": cfg.data.val_fraction, "batch_size": cfg.train.batch_size}}


def _train(root: Path, arch: str, quick: bool) -> dict:
    """Training steps of the 10-class model of `arch` on batches of ``TRAIN_BATCH`` examples of the
    (offline) training input, read beforehand; compiled as :func:`plan.train` compiles it."""
    import dataclasses

    import keras
    import numpy as np

    from tf_scenes import registry
    from tf_scenes.experiments.study import run_setup
    from tf_scenes.experiments.two_stage import plan
    from tf_scenes.pipelines.train_data import make_eval_dataset
    from tf_scenes.training.distribute import jit_compile_arg
    from tf_scenes.training.schedules import CosineWarmRestarts
    from tf_scenes.training.trainer import set_determinism

    name = {"resnet": "resnet10", "fcnn": "fcnn10"}[arch]
    steps_timed = QUICK_TRAIN_STEPS if quick else TRAIN_STEPS
    cfg = _config(root, "offline", quick)
    set_determinism(cfg.seed)
    t = dataclasses.replace(cfg.train, batch_size=TRAIN_BATCH)
    data = plan.prepare(cfg, _env(root, cfg))
    spec = next(s for s in plan.plan(cfg, data) if s.name == name)
    mrun, split = spec.item
    mrun = dataclasses.replace(mrun, width=mrun.width * _width(quick))
    batches, read_s, read_cpu = _timed(lambda: list(plan.train_dataset(spec, data, t, 0).take(steps_timed + 1)))
    with run_setup(spec.seed, t) as strategy:
        with strategy.scope():
            model = registry.build(f"two_stage_{mrun.arch}", plan.model_config(mrun, t))
            schedule = CosineWarmRestarts(max_lr=t.lr_max, min_lr=t.lr_min, steps_per_epoch=plan.epoch_steps(split, t),
                                          first_cycle_epochs=t.first_cycle_epochs, t_mul=t.cycle_mult)
            model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=t.momentum),
                          loss="categorical_crossentropy", metrics=["accuracy"],
                          jit_compile=jit_compile_arg(t.jit_compile))
        walls, cpus, losses = [], [], []
        for x, y in batches:
            (loss, _), w, c = _timed(lambda: model.train_on_batch(x, y))
            walls.append(w)
            cpus.append(c)
            losses.append(float(loss))
            if sum(walls) > TRAIN_MAX_S and len(walls) >= 3:
                break
        k = min(VAL_PREDICT_CLIPS, len(data.val.records))
        val = make_eval_dataset(data.val.features[:k], batch_size=t.eval_batch_size)
        _, pred_s, pred_cpu = _timed(lambda: model.predict(val, verbose=0))
        # Peak memory grows with the batch (activations): one step at MEMORY_BATCH after the small
        # ones, and the peak at the study's batch extrapolated linearly from the two peaks (a step
        # at 32 would cost ~16 small steps); its time includes tracing the new shape.
        hwm_small = _vm_hwm()
        tb = dataclasses.replace(cfg.train, batch_size=MEMORY_BATCH)
        (xb, yb), = list(plan.train_dataset(spec, data, tb, 0).take(1))
        (big_loss, _), big_w, big_c = _timed(lambda: model.train_on_batch(xb, yb))
        hwm_big = _vm_hwm()
    per_example = max(0, hwm_big - hwm_small) / (MEMORY_BATCH - TRAIN_BATCH)
    at_study = hwm_small + per_example * (cfg.train.batch_size - TRAIN_BATCH)
    steady_w, steady_c = walls[1:], cpus[1:]
    return {"model": name, "width": mrun.width, "params": int(model.count_params()),
            "batch_shape": list(batches[0][0].shape), "read_batches_s": read_s, "read_batches_cpu_s": read_cpu,
            "first_step_s": walls[0], "first_step_cpu_s": cpus[0], "steps_timed": len(steady_w),
            "step_s_mean": round(sum(steady_w) / len(steady_w), 4),
            "step_cpu_s_mean": round(sum(steady_c) / len(steady_c), 4),
            "step_cpu_s_per_example": round(sum(steady_c) / len(steady_c) / int(batches[0][0].shape[0]), 5),
            "step_s": steady_w, "step_cpu_s": steady_c, "losses_finite": bool(np.all(np.isfinite(losses))),
            "val_predict_clips": k, "val_predict_s_per_clip": round(pred_s / max(k, 1), 4),
            "val_predict_cpu_s_per_clip": round(pred_cpu / max(k, 1), 4),
            "memory_batch": int(xb.shape[0]), "memory_batch_step_s": round(big_w, 3),
            "memory_batch_step_cpu_s": round(big_c, 3),
            "memory_batch_cpu_s_per_example": round(big_c / int(xb.shape[0]), 5),
            "memory_batch_loss_finite": bool(np.isfinite(float(big_loss))),
            "peak_rss_bytes_small_batch": hwm_small, "peak_rss_bytes_memory_batch": hwm_big,
            "study_batch": cfg.train.batch_size, "peak_rss_bytes_study_batch_estimate": int(at_study)}


def _vm_hwm() -> int:
    """This process's peak resident set size in bytes (VmHWM, Linux; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def stage_train_resnet(root: Path, n: int, quick: bool) -> dict:
    return _train(root, "resnet", quick)


def stage_train_fcnn(root: Path, n: int, quick: bool) -> dict:
    return _train(root, "fcnn", quick)


# ----------------------------------------------------------------------------------------------
# measuring a stage from the parent


def _proc_status(pid: int) -> dict | None:
    """VmRSS, RssAnon, RssFile, RssShmem of a process in bytes (Linux), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            out = {}
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(line.split()[1]) * 1024
            return out
    except (OSError, ValueError):
        return None


class TreeSampler:
    """Samples a process tree (RSS by kind, CPU seconds per process) and the load average."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid, self.interval = pid, interval
        self.peak = {"rss": 0, "anon": 0, "file": 0}
        self.cpu: dict[int, float] = {}
        self.loads: list[float] = []
        self.max_procs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            return
        tot = {"rss": 0, "anon": 0, "file": 0}
        for p in procs:
            st = _proc_status(p.pid)
            if st:
                tot["rss"] += st.get("VmRSS", 0)
                tot["anon"] += st.get("RssAnon", 0)
                tot["file"] += st.get("RssFile", 0) + st.get("RssShmem", 0)
            try:
                ct = p.cpu_times()
                self.cpu[p.pid] = max(self.cpu.get(p.pid, 0.0), ct.user + ct.system)
            except psutil.Error:
                pass
        for k, v in tot.items():
            self.peak[k] = max(self.peak[k], v)
        self.max_procs = max(self.max_procs, len(procs))

    def _loop(self) -> None:
        last_load = 0.0
        while not self._stop.is_set():
            self.sample()
            if time.monotonic() - last_load >= 5.0 and hasattr(os, "getloadavg"):
                self.loads.append(round(os.getloadavg()[0], 2))
                last_load = time.monotonic()
            self._stop.wait(self.interval)


def disk_bytes(path: Path) -> int:
    """Bytes allocated on disk under `path` (st_blocks; sparse and memory-mapped files as stored)."""
    total = 0
    if not path.exists():
        return 0
    stack = [str(path)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.is_file(follow_symlinks=False):
                        total += e.stat(follow_symlinks=False).st_blocks * 512
                except FileNotFoundError:
                    pass
    return total


def run_stage(stage: str, root: Path, n: int, quick: bool, timeout: float | None = None) -> dict:
    """Run one stage in a subprocess; its result plus wall, CPU, bytes added and peak RSS."""
    import resource

    from .common import load_average

    result = root / f".stage-{stage}.json"
    result.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "bench.scale", "--stage", stage, "--root", str(root), "--size", str(n),
           "--result", str(result)] + (["--quick"] if quick else [])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
    before = disk_bytes(root)
    load0 = load_average()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parent.parent, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    with TreeSampler(proc.pid) as sampler:
        out, _ = proc.communicate(timeout=timeout)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.scale stage {stage} (size {n}) failed with exit status {proc.returncode}:\n"
                           f"{out[-3000:]}")
    res = json.loads(result.read_text())
    result.unlink()
    waited = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    seen = sum(sampler.cpu.values())
    return {"wall_s": round(wall, 3), "cpu_s": round(max(waited, seen), 3), "cpu_s_waited": round(waited, 3),
            "cpu_s_sampled": round(seen, 3), "bytes_written": max(0, disk_bytes(root) - before),
            "peak_rss_bytes": sampler.peak["rss"], "peak_anon_bytes": sampler.peak["anon"],
            "peak_file_bytes": sampler.peak["file"], "maxrss_bytes": int(ru1.ru_maxrss) * 1024,
            "processes": sampler.max_procs, "load_average_start": load0, "load_average_end": load_average(),
            "load_1min_samples": sampler.loads, "result": res}


# ----------------------------------------------------------------------------------------------
# fitting and extrapolation (pure functions)


def fit(xs, ys) -> dict:
    """Least-squares fits of ``y = a + b x`` and ``y = c x^k`` (on logs; positive values only).

    Each form has ``r2`` (coefficient of determination of the fit to the points, on the values for
    the linear form and on their logarithms for the power law) and ``rel_rms``, the root mean
    square of (fit - y) / y over the points; ``better`` names the form with the smaller rel_rms
    (``linear`` unless the power law's is smaller by more than 10 %, or when no power law can be
    fitted)."""
    import numpy as np

    x, y = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    if len(x) < 2 or len(set(x.tolist())) < 2:
        raise ValueError(f"need at least two distinct sizes to fit, got {list(xs)}")
    b, a = np.polyfit(x, y, 1)
    lin = a + b * x
    denom = np.where(y != 0, np.abs(y), 1.0)
    out = {"linear": {"a": float(a), "b": float(b), "r2": _r2(y, lin),
                      "rel_rms": float(np.sqrt(np.mean(((lin - y) / denom) ** 2)))}}
    if np.all(y > 0):
        k, logc = np.polyfit(np.log(x), np.log(y), 1)
        pw = np.exp(logc) * x ** k
        out["power"] = {"c": float(np.exp(logc)), "k": float(k), "r2": _r2(np.log(y), logc + k * np.log(x)),
                        "rel_rms": float(np.sqrt(np.mean(((pw - y) / y) ** 2)))}
    better = "linear"
    if "power" in out and out["power"]["rel_rms"] < 0.9 * out["linear"]["rel_rms"]:
        better = "power"
    out["better"] = better
    out["points"] = [[float(a_), float(b_)] for a_, b_ in zip(x, y)]
    return out


# A slope counts as measured when the fit explains the points (R^2 >= MIN_R2) and rises; memory
# also needs a rise of MEMORY_NOISE_BYTES over the measured sizes (the peaks of a TensorFlow
# process move by ~0.1 GB from run to run).
MIN_R2 = 0.8
MEMORY_NOISE_BYTES = 0.1 * GB


def at_size(f: dict, x: float, metric: str = "cpu_s") -> tuple[float, str]:
    """(value, method) of a fit at `x`: ``linear`` where the slope is measured (see MIN_R2); else,
    for memory, ``constant`` (the largest peak measured: nothing in the process grew with the
    size beyond the noise) and, for time and bytes, ``bound``: the largest value measured plus the
    steepest slope the spread of the measurements allows, (max y - min y) / (max n - min n), over
    the rest of the way to `x` (the fixed costs hid the slope; an upper bound)."""
    pts = f["points"]
    lin = f["linear"]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    rise = lin["b"] * (max(xs) - min(xs))
    measured = lin["b"] > 0 and lin["r2"] >= MIN_R2
    if metric.startswith("peak_"):
        if measured and rise >= MEMORY_NOISE_BYTES:
            return max(0.0, predict(f, x)), "linear"
        return max(ys), "constant"
    if measured:
        return max(0.0, predict(f, x)), "linear"
    steepest = max(lin["b"], (max(ys) - min(ys)) / (max(xs) - min(xs)))
    return max(ys) + steepest * max(0.0, x - max(xs)), "bound"


def _r2(y, pred) -> float:
    """1 - SS_res / SS_tot; 1.0 when the points are all equal and the fit goes through them."""
    import numpy as np

    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - np.mean(y)) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res <= 1e-12 * max(1.0, float(np.sum(y ** 2))) else 0.0
    return 1.0 - ss_res / ss_tot


def predict(f: dict, x: float, form: str = "linear") -> float:
    """The value of a fit at `x`."""
    if form == "linear":
        return f["linear"]["a"] + f["linear"]["b"] * x
    return f["power"]["c"] * x ** f["power"]["k"]


METRICS = ("wall_s", "cpu_s", "bytes_written", "peak_rss_bytes", "peak_anon_bytes", "peak_file_bytes")


def listed_clips(stages: dict, size) -> int:
    """The listed clips of a measured size as generated (the features stage counts them; the
    nominal size where it did not run): the scaled counts round per device."""
    per = stages.get(str(size), {})
    try:
        return int(per["features"]["result"]["clips"]["listed"])
    except (KeyError, TypeError):
        return int(size)


# What a stage's cost is proportional to, where not the listed clips: the augmented copies it
# writes, the feature rows it computes (clips + copies).  At small sizes the share of device-A
# training clips, and so of copies, differs from the real set's (minimum counts per device, whole
# locations held out), so these stages are fitted against their own unit.
STAGE_UNITS = {"offline_augment": "copies", "offline_features": "rows"}


def stage_unit(stages: dict, size, stage: str) -> int:
    """The amount of work of `stage` at a measured size, in its unit (:data:`STAGE_UNITS`)."""
    unit = STAGE_UNITS.get(stage)
    if unit:
        return int(stages[str(size)][stage]["result"][unit])
    return listed_clips(stages, size)


def real_counts(cfg_counts: dict | None) -> dict:
    """The real fold 1's counts under the paper profile, from the config: listed clips, training and
    validation clips (``val_fraction`` of the training clips, held out by location), augmented
    copies (every kind on the chosen share of the device-A training clips), feature rows of the
    offline cache (clips + copies), examples and steps of an epoch (training clips + copies, in
    batches of ``batch_size``)."""
    c = {"kinds": 6, "fraction": 1.0, "val_fraction": 0.1, "batch_size": 32, **(cfg_counts or {})}
    train = round(REAL_TRAIN * (1 - c["val_fraction"]))
    chosen = round(REAL_COUNTS["train_a"] * (1 - c["val_fraction"]) * c["fraction"])
    copies = chosen * c["kinds"]
    examples = train + copies
    return {"listed": REAL_CLIPS, "train": train, "val": REAL_TRAIN - train, "device_a_chosen": chosen,
            "copies": copies, "rows": REAL_CLIPS + copies, "epoch_examples": examples,
            "epoch_steps": -(-examples // c["batch_size"]), "batch_size": c["batch_size"]}


def fit_stages(stages: dict) -> dict:
    """{stage: {metric: fit}} over the sizes each stage was measured at (``stages[size][stage]``),
    against the stage's unit at each size (:func:`stage_unit`: listed clips as generated, or its
    copies / rows); stages measured at fewer than two sizes are left out."""
    by_stage: dict[str, dict[int, dict]] = {}
    for size, per in stages.items():
        for stage, m in per.items():
            by_stage.setdefault(stage, {})[stage_unit(stages, size, stage)] = m
    out = {}
    for stage, per_size in by_stage.items():
        if len(per_size) < 2:
            continue
        xs = sorted(per_size)
        out[stage] = {metric: fit(xs, [per_size[x][metric] for x in xs]) for metric in METRICS}
    return out


def _train_entry(stages: dict, stage: str) -> dict | None:
    """The training stage's per-example and per-clip costs: the mean over the sizes it ran at
    (a step does not depend on the size of the data set)."""
    got = [per[stage] for per in stages.values() if stage in per]
    if not got:
        return None
    mean = (lambda key: sum(g["result"][key] for g in got) / len(got))  # noqa: E731
    return {"step_cpu_s_per_example": mean("step_cpu_s_per_example"), "step_cpu_s": mean("step_cpu_s_mean"),
            "step_s": mean("step_s_mean"), "val_predict_cpu_s_per_clip": mean("val_predict_cpu_s_per_clip"),
            "peak_rss_bytes": max(max(g["peak_rss_bytes"], g["result"].get("peak_rss_bytes_study_batch_estimate", 0))
                                  for g in got),
            "peak_anon_bytes": max(max(g["peak_anon_bytes"], g["result"].get("peak_rss_bytes_study_batch_estimate", 0))
                                   for g in got), "sizes": len(got)}


def _epoch_entry(stages: dict, stage: str) -> dict | None:
    """The training input's CPU seconds per batch (steady) and for its first batch: means over sizes."""
    got = [per[stage]["result"] for per in stages.values() if stage in per]
    if not got:
        return None
    return {k: sum(g[k] for g in got) / len(got) for k in ("cpu_s_per_batch", "first_batch_cpu_s")}


def offline_count(stages: dict, cfg_counts: dict | None = None) -> dict | None:
    """What offline mode writes at the real size, counted rather than fitted: (augmented copies)
    x (bytes of one copy's wav file + one feature row).  Copies: every kind of the paper profile
    (`kinds`) on every device-A training clip left after the validation split (``fraction`` 1.0),
    i.e. ``kinds x train_a x (1 - val_fraction)`` (:func:`real_counts`); bytes per wav file
    (at the largest size) and per feature row as measured."""
    sized = [(listed_clips(stages, s), per) for s, per in stages.items()
             if "offline_augment" in per and "features" in per]
    if not sized or not cfg_counts:
        return None
    _, per = max(sized, key=lambda p: p[0])
    copies_small = per["offline_augment"]["result"]["copies"]
    wav_bytes = per["offline_augment"]["bytes_written"] / max(1, copies_small)
    shape = per["features"]["result"]["shape"]
    row_bytes = 4
    for d in shape[1:]:
        row_bytes *= int(d)
    kinds = cfg_counts["kinds"]
    rc = real_counts(cfg_counts)
    chosen, copies = rc["device_a_chosen"], rc["copies"]
    return {"kinds": kinds, "device_a_train_clips": chosen,
            "copies": copies, "wav_bytes_per_copy": round(wav_bytes), "feature_bytes_per_row_float32": row_bytes,
            "wav_gb": _gb(copies * wav_bytes), "copy_features_gb": _gb(copies * row_bytes),
            "clip_features_gb": _gb(REAL_CLIPS * row_bytes),
            "total_gb": _gb(copies * (wav_bytes + row_bytes) + REAL_CLIPS * row_bytes)}


def extrapolate(stages: dict, x: float = REAL_CLIPS, runs_bytes: int | None = None,
                cfg_counts: dict | None = None, float16: dict | None = None) -> dict:
    """Disk, peak RSS and CPU hours at `x` listed clips for both augmentation modes.

    Per mode: ``disk_gb`` (GB beyond the dataset: the data path's bytes from their linear fits plus
    the runs' checkpoints, `runs_bytes`, every model run of the profile; each stage's fit is
    evaluated at its unit's real count, :func:`real_counts`), ``peak_rss_gb`` (largest
    RSS of any process of the data path or of training; file-backed pages of the memory-mapped
    cache included) and ``peak_anon_gb`` (without them: what must fit in RAM), ``hours_cpu`` with
    ``data_path`` (the mode's stages, :data:`DATA_PATH`, once) and ``train_epoch_resnet`` /
    ``train_epoch_fcnn`` (one epoch of the 10-class model: the mode's input pipeline for an epoch,
    its first batch and steady CPU seconds per batch x the epoch's steps; the training steps,
    examples per epoch x measured CPU seconds per example; the validation prediction, validation
    clips x CPU seconds per clip; steps and clips counted from the config, :func:`real_counts`).  The training
    process's RSS is the training stage's plus the input pipeline's (both in one process; an upper
    bound, the TensorFlow runtime is counted twice).  ``parts`` holds every term.  With `float16`
    (:func:`float16_cache`), ``disk_gb_float16_cache``: the same with the feature caches stored in
    float16 (their bytes x the measured ratio)."""
    fits = fit_stages(stages)
    rc = real_counts(cfg_counts)
    scale_x = x / REAL_CLIPS  # other sizes than the real one (tests): counts in proportion
    units = {"copies": rc["copies"] * scale_x, "rows": rc["rows"] * scale_x}
    batch = rc["batch_size"]
    train = {a: _train_entry(stages, s) for s, a in TRAIN_ARCHS.items()}
    n_steps = rc["epoch_steps"] * scale_x
    n_val = rc["val"] * scale_x
    out: dict = {"clips": int(x), "train_clips": REAL_TRAIN, "eval_clips": REAL_EVAL,
                 "counts": rc if scale_x == 1 else None,
                 "epoch_steps": round(n_steps), "batch_size": batch, "val_clips": round(n_val)}

    methods: dict = {}

    def at(stage, metric):
        if stage in fits:
            value, how = at_size(fits[stage][metric], units.get(STAGE_UNITS.get(stage), x), metric)
            methods.setdefault(stage, {})[metric] = how
            return value
        once = [per[stage][metric] for per in stages.values() if stage in per]
        return float(once[0]) if stage in CONSTANT_STAGES and once else None

    for mode in ("online", "offline"):
        data_cpu = {s: at(s, "cpu_s") for s in DATA_PATH[mode]}
        data_disk = {s: at(s, "bytes_written") for s in DATA_PATH[mode]}
        data_rss = {s: {"total": at(s, "peak_rss_bytes"), "anon": at(s, "peak_anon_bytes")} for s in DATA_PATH[mode]}
        inp = EPOCH_INPUT[mode]
        rate = _epoch_entry(stages, inp)
        epoch_cpu, epoch_rss = {}, {}
        for arch, tr in train.items():
            if tr is None or n_steps is None:
                continue
            inp_cpu = (rate["first_batch_cpu_s"] + max(0.0, n_steps - 1) * rate["cpu_s_per_batch"]) if rate else None
            epoch_cpu[arch] = {"input_pipeline": inp_cpu,
                               "training_steps": round(n_steps) * batch * tr["step_cpu_s_per_example"],
                               "validation": (n_val or 0) * tr["val_predict_cpu_s_per_clip"]}
            inp_total, inp_anon = at(inp, "peak_rss_bytes"), at(inp, "peak_anon_bytes")
            epoch_rss[arch] = {"total": (inp_total or 0) + tr["peak_rss_bytes"],
                               "anon": (inp_anon or 0) + tr["peak_anon_bytes"]}
        hours_parts = {"data_path": {k: _h(v) for k, v in data_cpu.items()},
                       **{f"train_epoch_{a}": {k: _h(v) for k, v in p.items()} for a, p in epoch_cpu.items()}}
        hours = {"data_path": _h(_sum(data_cpu.values())),
                 **{f"train_epoch_{a}": _h(_sum(p.values())) for a, p in epoch_cpu.items()}}
        disk_parts = {k: _gb(v) for k, v in data_disk.items()}
        disk_parts["runs_checkpoints"] = _gb(runs_bytes) if runs_bytes is not None else None
        disk = round(_sum(disk_parts.values()), 3)
        rss_parts = {**{k: {kk: _gb(vv) for kk, vv in v.items()} for k, v in data_rss.items()},
                     **{f"train_epoch_{a}": {k: _gb(v) for k, v in p.items()} for a, p in epoch_rss.items()}}
        every = list(rss_parts.values())
        out[mode] = {
            "disk_gb": disk,
            "peak_rss_gb": max((e["total"] for e in every if e["total"] is not None), default=None),
            "peak_anon_gb": max((e["anon"] for e in every if e["anon"] is not None), default=None),
            "hours_cpu": hours,
            "parts": {"disk_gb": disk_parts, "peak_rss_gb": rss_parts, "hours_cpu": hours_parts}}
        if float16:
            cache_gb = _sum(disk_parts.get(k) for k in ("features", "offline_features"))
            out[mode]["disk_gb_float16_cache"] = round(disk - cache_gb * (1 - float16["ratio"]), 3)
    out["offline_count"] = offline_count(stages, cfg_counts)
    out["methods"] = methods
    return out


def _sum(values) -> float:
    return float(sum(v for v in values if v is not None))


def _h(seconds) -> float | None:
    return None if seconds is None else round(seconds / 3600, 3)


def _gb(nbytes) -> float | None:
    return None if nbytes is None else round(nbytes / GB, 3)


def budget(real: dict, disk_gb: float = 15.0, ram_gb: float = 16.0) -> dict:
    """The paper profile's budget in online mode: disk beyond the dataset and RAM (anonymous memory:
    what must be resident; the file-backed pages of the memory-mapped cache, which the kernel drops
    under memory pressure, are reported beside)."""
    on = real["online"]
    disk, anon, total = on["disk_gb"], on["peak_anon_gb"], on["peak_rss_gb"]
    return {"disk_gb_limit": disk_gb, "ram_gb_limit": ram_gb, "disk_gb": disk, "ram_anon_gb": anon,
            "ram_total_gb": total, "disk_ok": disk is not None and disk <= disk_gb,
            "ram_ok": anon is not None and anon <= ram_gb,
            "ok": disk is not None and anon is not None and disk <= disk_gb and anon <= ram_gb}


# ----------------------------------------------------------------------------------------------
# the section


def _env_list(name: str, default):
    raw = os.environ.get(name)
    if not raw:
        return tuple(default)
    return tuple(int(v) for v in raw.replace(",", " ").split())


def _commit() -> str | None:
    try:
        repo = Path(__file__).resolve().parent.parent
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def _stage_record(m: dict) -> dict:
    out = {k: m[k] for k in ("wall_s", "cpu_s", "cpu_s_waited", "cpu_s_sampled", "bytes_written", "peak_rss_bytes",
                             "peak_anon_bytes", "peak_file_bytes", "maxrss_bytes", "processes",
                             "load_average_start", "load_average_end", "load_1min_samples", "result")}
    out["peak_rss_gb"] = round(m["peak_rss_bytes"] / GB, 4)
    out["peak_anon_gb"] = round(m["peak_anon_bytes"] / GB, 4)
    return out


def run(out_dir: Path, repeats: int = 1, quick: bool = False) -> dict:
    """The scale section (``python -m bench.run --only scale``): every stage at every size, fits,
    extrapolation to the real size, bench/scale.md and bench/scale.png in `out_dir`.

    Environment: BENCH_SCALE_SIZES (comma-separated listed clips), BENCH_SCALE_TRAIN_SIZES (where the
    training stages run; default the smallest size), BENCH_SCALE_ROOT (data folder,
    default a temporary folder), BENCH_SCALE_KEEP=1 keeps each size's data."""
    import shutil
    import tempfile

    from tf_scenes.io_utils import atomic_write_json

    from .common import load_average

    sizes = sorted(_env_list("BENCH_SCALE_SIZES", QUICK_SIZES if quick else SIZES))
    train_sizes = set(_env_list("BENCH_SCALE_TRAIN_SIZES", (sizes[-1],)))
    base = Path(os.environ.get("BENCH_SCALE_ROOT") or tempfile.mkdtemp(prefix="bench-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    keep = os.environ.get("BENCH_SCALE_KEEP") == "1"
    # Measurements so far (BENCH_SCALE_ROOT/measured.json): a run interrupted and started again
    # with the same root keeps every size it completed and its size-independent stages.
    done_path = base / "measured.json"
    done = json.loads(done_path.read_text()) if done_path.exists() else {}
    stages: dict[str, dict] = {}
    rooms = base / "room_bank"
    loads = []
    t0 = time.perf_counter()

    def runs_at(stage: str, n: int) -> bool:
        if stage in TRAIN_ARCHS:
            return n in train_sizes
        if stage == "room_bank":  # before online_setup, which reads the bank
            return n == sizes[0]
        if stage == "models":
            return n == sizes[-1]
        return True

    for n in sizes:
        wanted = [s for s in STAGES if runs_at(s, n)]
        per = dict(done.get(str(n), {}))
        if not all(s in per for s in wanted):  # an incomplete size is measured again (its data is gone)
            per = {s: m for s, m in per.items() if s in CONSTANT_STAGES}
        todo = [s for s in wanted if s not in per]
        if todo:
            root = base / f"n{n}"
            if root.exists():
                shutil.rmtree(root)
            root.mkdir(parents=True)
            try:
                for stage in todo:
                    if stage == "online_setup":  # the same rooms at every size (the room_bank stage's)
                        _copy_files(rooms, root / "cache" / "augment")
                    log.info("scale: size %d, stage %s", n, stage)
                    m = run_stage(stage, root, n, quick)
                    if stage == "room_bank":
                        _copy_files(root / "rooms", rooms, pattern="rir_bank-*")
                    per[stage] = _stage_record(m)
                    done[str(n)] = per
                    atomic_write_json(done_path, done)
                    loads += m["load_1min_samples"]
                    log.info("scale: size %d, stage %s: %.1f s wall, %.1f s CPU, %.3f GB written, peak RSS %.2f GB "
                             "(anon %.2f)", n, stage, m["wall_s"], m["cpu_s"], m["bytes_written"] / GB,
                             m["peak_rss_bytes"] / GB, m["peak_anon_bytes"] / GB)
            finally:
                if not keep:
                    shutil.rmtree(root, ignore_errors=True)
        stages[str(n)] = {s: per[s] for s in wanted}
    res = {
        "measured": ("wall and CPU seconds, bytes written and peak RSS of each stage of the two-stage paper "
                     "profile's data path and training input at several sizes of synthetic TAU data, fitted "
                     "against size and extrapolated to the real fold 1"),
        "quick": quick, "commit": _commit(), "sizes_measured": sizes, "train_sizes": sorted(train_sizes),
        "size_unit": "listed clips (fold1_train + fold1_evaluate)", "stages": stages,
        "load_average": _load_summary(loads, load_average()), "total_s": round(time.perf_counter() - t0, 1),
        "data_root": str(base), "date": datetime.datetime.now().isoformat(timespec="seconds")}
    if os.environ.get("BENCH_SCALE_FLOAT16", "1") == "1":
        res["float16_cache"] = float16_cache(base / "float16", quick)
    from .common import machine_info

    res["machine"] = machine_info()
    res["machine"]["cores"] = res["machine"]["cpus_usable"]
    res["machine"]["load_average_during_run"] = res["load_average"]
    finish(res, Path(out_dir))
    done_path.unlink(missing_ok=True)
    if not keep:
        shutil.rmtree(rooms, ignore_errors=True)
        with _suppress():
            base.rmdir()  # empty unless the caller put other things there
    return res


def finish(res: dict, out_dir: Path) -> dict:
    """Fits, extrapolation, budget and summary of the measured stages in `res` (in place); writes
    scale.md and scale.png into `out_dir`."""
    from tf_scenes.io_utils import atomic_write_text

    stages = res["stages"]
    models = next((per["models"]["result"] for per in stages.values() if "models" in per), None)
    measured = {s: {k: v for k, v in per.items() if k != "models"} for s, per in stages.items()}
    res["models"] = models
    res["fits"] = fit_stages(measured)
    res["real_size"] = extrapolate(measured, REAL_CLIPS, runs_bytes=models["runs_bytes"] if models else None,
                                   cfg_counts=models.get("augment") if models else None,
                                   float16=res.get("float16_cache"))
    res["budget"] = budget(res["real_size"])
    res["summary_md"] = summary_markdown(res)
    atomic_write_text(Path(out_dir) / "scale.md", scale_markdown(res))
    plot(res, Path(out_dir) / "scale.png")
    return res


def float16_cache(root: Path, quick: bool, clips: int = 8) -> dict:
    """The float16 feature cache against the float32 one on `clips` synthetic TAU clips of 10 s:
    bytes of each array file and the largest and mean absolute difference of the features."""
    import numpy as np

    from tf_scenes.features import get_feature_config
    from tf_scenes.pipelines.cache import cached_features
    from tf_scenes.synth import asc

    asc.generate(root / "data", "scaled", seed=1, progress=False, size_override=scaled_size(24))
    paths = sorted((root / "data" / "audio").glob("*.wav"))[:clips]
    cfg = get_feature_config("two_stage")
    f32 = cached_features(paths, cfg, root / "f32", progress=False)
    f16 = cached_features(paths, cfg, root / "f16", progress=False, dtype="float16")
    err = np.abs(f16.astype(np.float32) - f32)
    b32, b16 = (sum(p.stat().st_size for p in (root / d).glob("*.npy")) for d in ("f32", "f16"))
    out = {"clips": len(paths), "float32_bytes": b32, "float16_bytes": b16, "ratio": round(b16 / b32, 4),
           "max_abs_error": float(err.max()), "mean_abs_error": float(err.mean()),
           "value_range": [float(f32.min()), float(f32.max())]}
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    return out


def _copy_files(src: Path, dst: Path, pattern: str = "*") -> None:
    import shutil

    dst.mkdir(parents=True, exist_ok=True)
    for f in Path(src).glob(pattern):
        if f.is_file():
            shutil.copy2(f, dst / f.name)


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)


def _load_summary(samples: list[float], end) -> dict:
    if not samples:
        return {"samples": 0, "end": end}
    return {"samples": len(samples), "min": min(samples), "mean": round(sum(samples) / len(samples), 2),
            "max": max(samples), "end": end}


# ----------------------------------------------------------------------------------------------
# reporting


def _fmt(v, digits=3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def stage_table(res: dict) -> str:
    from .common import md_table

    rows = []
    for size, per in res["stages"].items():
        for stage, m in per.items():
            r = m["result"]
            extra = ""
            if stage.endswith("_epoch"):
                extra = (f"{r['steps']} batches/epoch; {r['batches_timed']} timed: {_fmt(r['batches_per_s'])} "
                         f"batches/s, {_fmt(r['cpu_s_per_batch'])} CPU s/batch")
            elif stage in TRAIN_ARCHS:
                extra = f"{_fmt(r['step_cpu_s_mean'])} CPU s/step, {_fmt(r['step_s_mean'])} s/step"
            elif stage in ("online_setup", "offline_augment"):
                extra = f"{r['copies']} copies"
            elif stage == "generate":
                extra = f"{r['files']} files"
            rows.append([size, stage, _fmt(m["wall_s"]), _fmt(m["cpu_s"]), _fmt(m["bytes_written"] / GB),
                         _fmt(m["peak_rss_bytes"] / GB), _fmt(m["peak_anon_bytes"] / GB), extra])
    return md_table(["clips", "stage", "wall s", "CPU s", "GB written", "peak RSS GB", "peak anon GB", ""], rows)


def fit_table(res: dict) -> str:
    from .common import md_table

    rows = []
    for stage, f in res["fits"].items():
        c = f["cpu_s"]
        rows.append([stage, f"{c['linear']['a']:.3g} + {c['linear']['b']:.3g} n", f"{c['linear']['r2']:.3f}",
                     f"{c['power']['c']:.3g} n^{c['power']['k']:.2f}" if "power" in c else "-", c["better"],
                     *_at_cell(res, stage, f, "cpu_s", 3600),
                     f"{f['bytes_written']['linear']['b'] / 1e6:.3g}" if f["bytes_written"]["linear"]["b"] else "0",
                     f"{f['bytes_written']['linear']['r2']:.3f}",
                     *_at_cell(res, stage, f, "bytes_written", GB), *_at_cell(res, stage, f, "peak_anon_bytes", GB)])
    return md_table(["stage (n: its unit)", "CPU s = a + b n", "R^2", "power law", "better", "CPU h at the real size",
                     "how", "MB written per unit", "R^2", "GB written at the real size", "how",
                     "peak anon GB at the real size", "how"], rows)


def _at_cell(res: dict, stage: str, f: dict, metric: str, scale: float) -> list:
    rc = res["real_size"].get("counts") or real_counts(None)
    unit = STAGE_UNITS.get(stage)
    value, how = at_size(f[metric], rc[unit] if unit else REAL_CLIPS, metric)
    return [_fmt(value / scale), how]


def real_table(res: dict) -> str:
    from .common import md_table

    real = res["real_size"]
    rows = []
    for mode in ("online", "offline"):
        r = real[mode]
        h = r["hours_cpu"]
        rows.append([mode, _fmt(r["disk_gb"]), _fmt(r["peak_anon_gb"]), _fmt(r["peak_rss_gb"]),
                     _fmt(h["data_path"]), _fmt(h.get("train_epoch_resnet")), _fmt(h.get("train_epoch_fcnn"))])
    return md_table(["mode", "disk GB beyond the dataset", "peak RAM GB (anonymous)",
                     "peak RSS GB (with cache pages)", "CPU h: data path (once)", "CPU h: ResNet epoch",
                     "CPU h: FCNN epoch"], rows)


def parts_table(res: dict) -> str:
    from .common import md_table

    real = res["real_size"]
    rows = []
    for mode in ("online", "offline"):
        parts = real[mode]["parts"]
        for what, d in parts["disk_gb"].items():
            rows.append([mode, "disk GB", what, _fmt(d)])
        for what, d in parts["hours_cpu"].items():
            rows.append([mode, "CPU h", what, ", ".join(f"{k} {_fmt(v)}" for k, v in d.items())])
        for what, d in parts["peak_rss_gb"].items():
            rows.append([mode, "peak GB", what, f"RSS {_fmt(d['total'])}, anonymous {_fmt(d['anon'])}"])
    return md_table(["mode", "quantity", "part", "value at the real size"], rows)


def budget_verdict(res: dict) -> str:
    b = res["budget"]
    real = res["real_size"]
    off = real["offline"]
    cnt = real.get("offline_count") or {}
    ok = "**holds**" if b["ok"] else "**does not hold**"
    f16 = res.get("float16_cache")
    f16_line = ""
    if f16:
        f16_line = (f"\n\nfloat16 feature cache (`--set data.cache_dtype=float16`; measured on {f16['clips']} clips): "
                    f"{f16['ratio']:.3f} of the float32 bytes, features at most {f16['max_abs_error']:.2e} from the "
                    f"float32 ones (mean {f16['mean_abs_error']:.1e}; values in [{f16['value_range'][0]:.3g}, "
                    f"{f16['value_range'][1]:.3g}]); disk at the real size: online "
                    f"{_fmt(real['online'].get('disk_gb_float16_cache'))} GB, offline "
                    f"{_fmt(real['offline'].get('disk_gb_float16_cache'))} GB.")
    lines = [
        f"Budget of the paper profile in online mode at the real size (at most {b['disk_gb_limit']:g} GB of disk "
        f"beyond the dataset, {b['ram_gb_limit']:g} GB of RAM): {ok}. Disk {_fmt(b['disk_gb'])} GB "
        f"({'within' if b['disk_ok'] else 'over'} the limit: the feature cache of the listed clips, the room bank "
        f"and device ratio, the runs' checkpoints); RAM {_fmt(b['ram_anon_gb'])} GB of anonymous memory at the "
        f"largest process ({'within' if b['ram_ok'] else 'over'} the limit). The feature cache is memory-mapped "
        f"(`np.load(mmap_mode='r')`, never read whole): its pages count in RSS while read or written "
        f"({_fmt(b['ram_total_gb'])} GB with them) but are page cache the kernel drops under memory pressure.",
        "",
        f"Offline mode {'fits' if (off['disk_gb'] or 0) <= b['disk_gb_limit'] else 'does not fit'} the disk "
        f"budget: {_fmt(off['disk_gb'])} GB extrapolated (wav copies, their features and the clips' in one cache, "
        f"the runs' checkpoints)"
        + (f"; counted from the config, {cnt['copies']:,} copies ({cnt['kinds']} kinds x "
           f"{cnt['device_a_train_clips']:,} device-A training clips) x ({cnt['wav_bytes_per_copy'] / 1e6:.2f} MB "
           f"of wav + {cnt['feature_bytes_per_row_float32'] / 1e6:.2f} MB of float32 features) + the clips' features "
           f"= {_fmt(cnt['total_gb'])} GB (wav {_fmt(cnt['wav_gb'])}, "
           f"copies' features {_fmt(cnt['copy_features_gb'])}, "
           f"clips' features {_fmt(cnt['clip_features_gb'])})." if cnt else ".") + f16_line,
    ]
    return "\n".join(lines)


def summary_markdown(res: dict) -> str:
    real = res["real_size"]
    la = res["load_average"]
    return "\n".join([
        f"Two-stage paper profile at {', '.join(map(str, res['sizes_measured']))} listed clips of synthetic TAU data "
        f"(training stages at {', '.join(map(str, res['train_sizes']))}), extrapolated linearly to the real fold 1 "
        f"({REAL_CLIPS:,} clips; {real.get('epoch_steps')} steps of {real.get('batch_size')} per epoch of the "
        f"10-class ResNet/FCNN). Load average (1 min) during the run: {la.get('mean')} mean, {la.get('max')} max. "
        f"Details: bench/scale.md.",
        "",
        real_table(res),
        "",
        budget_verdict(res),
    ])


def scale_markdown(res: dict) -> str:
    m = res["machine"]
    la = res["load_average"]
    shared = (f"The machine was shared with other work: 1-minute load average {la.get('min')}-{la.get('max')} "
              f"(mean {la.get('mean')}) on {m.get('cores')} cores during the run, so wall times are inflated; "
              f"CPU times are the steadier figure." if (la.get("mean") or 0) > 0.5 * (m.get("cores") or 1) else
              f"1-minute load average during the run: mean {la.get('mean')}, max {la.get('max')}.")
    return "\n".join([
        "# Paper scale: the two-stage study's paper profile, measured and extrapolated", "",
        f"Commit {res['commit']}, {res.get('date')}; {m.get('cpu_model')}, {m.get('cores')} cores, CPU only; "
        f"{'quick sizes, numbers meaningless; ' if res['quick'] else ''}"
        f"{res['total_s']} s in all. {shared} Reproduce: `make bench-scale` "
        f"(= `python -m bench.run --out bench --only scale`).",
        "",
        "## At the real size", "", res["summary_md"], "",
        "Every term:", "", parts_table(res), "",
        "## Measured (every stage in its own process)", "",
        "CPU s: user + system time of the stage's process tree. Peak RSS: sampled every 0.2 s over the "
        "tree; anon = anonymous memory (must be resident), the rest file-backed pages (the memory-mapped "
        "cache, read or written), which the kernel drops when memory is short. Size n: listed clips as "
        "generated.", "",
        stage_table(res), "",
        "## Fits against size, extrapolated to the real size", "",
        "Linear least squares per stage (R^2 of the fit); a stage with a large intercept (TensorFlow's "
        "start, XLA compilation, the room bank) has a small slope, so its extrapolation is dominated by "
        "the slope measured over a 4x range of sizes.", "",
        f"n is the listed clips as generated, or for {', '.join(f'{k} its {v}' for k, v in STAGE_UNITS.items())} "
        f"(at the real size: {(res['real_size'].get('counts') or {}).get('copies', '-'):,} copies, "
        f"{(res['real_size'].get('counts') or {}).get('rows', '-'):,} rows). how: `linear` where the fit has R^2 >= "
        f"{MIN_R2} and a rising slope; else `bound` for time and bytes (the largest value measured plus the "
        f"steepest slope the spread of the measurements allows, (max - min) / (range of n), up to the real "
        f"count: an upper bound) and `constant` for memory "
        f"(the largest peak measured, when it did not rise by {MEMORY_NOISE_BYTES / GB:g} GB over the sizes).", "",
        fit_table(res), "",
        "![cost against size](scale.png)", "",
    ]) + "\n"



def plot(res: dict, path: Path) -> Path:
    """Log-log plot of CPU seconds, GB written and peak anonymous RSS against size (listed clips),
    one line per stage, and a dotted line from each fitted stage's largest measurement to its
    extrapolated value at the real size (a single point: a size-independent stage)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = res["stages"]
    rc = (res.get("real_size") or {}).get("counts") or real_counts(None)
    by_stage: dict[str, list] = {}
    for size, per in stages.items():
        for stage, m in per.items():
            if stage != "models":
                by_stage.setdefault(stage, []).append((listed_clips(stages, size), m))
    panels = (("cpu_s", "CPU time (s)", 1.0), ("bytes_written", "written to disk (GB)", GB),
              ("peak_anon_bytes", "peak anonymous RSS (GB)", GB))
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.6))
    cmap = plt.get_cmap("tab10")
    for ax, (metric, label, scale) in zip(axes, panels):
        for i, (stage, pts) in enumerate(sorted(by_stage.items(), key=lambda kv: STAGES.index(kv[0]))):
            pts = sorted(pts, key=lambda p: p[0])
            ys = [p[1][metric] / scale for p in pts]
            if not any(y > 0 for y in ys):
                continue
            xs = [p[0] for p in pts]
            color = cmap(i % 10)
            ax.plot(xs, [max(y, 1e-6) for y in ys], "o-", color=color, label=stage)
            f = res["fits"].get(stage, {}).get(metric)
            if f is not None:
                unit = STAGE_UNITS.get(stage)
                real = at_size(f, rc[unit] if unit else REAL_CLIPS, metric)[0] / scale
                if real > 0:
                    ax.plot([xs[-1], REAL_CLIPS], [max(ys[-1], 1e-6), real], ":", color=color)
                    ax.plot([REAL_CLIPS], [real], "x", color=color)
        ax.axvline(REAL_CLIPS, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"size (listed clips; grey line: the real fold 1, {REAL_CLIPS:,})")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Two-stage paper profile: cost of each stage against size (dotted, x: its value at the real size, "
                 "bench/scale.md says how)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------
# the stage subprocess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale",
                                     description="one stage of the scale bench, or --report: redo the fits, "
                                                 "extrapolation, scale.md and scale.png of a scale.json")
    parser.add_argument("--report", type=Path, help="a scale.json: rewrite it and its scale.md / scale.png")
    parser.add_argument("--stage", choices=STAGES)
    parser.add_argument("--root", type=Path)
    parser.add_argument("--size", type=int)
    parser.add_argument("--result", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(".cache/numba").resolve()))
    if args.report:
        from tf_scenes.io_utils import atomic_write_json

        res = json.loads(args.report.read_text())
        if "float16_cache" not in res and os.environ.get("BENCH_SCALE_FLOAT16", "1") == "1":
            import tempfile

            res["float16_cache"] = float16_cache(Path(tempfile.mkdtemp(prefix="bench-scale-f16-")), res["quick"])
        finish(res, args.report.parent)
        atomic_write_json(args.report, res)
        return 0
    if None in (args.stage, args.root, args.size, args.result):
        parser.error("--stage, --root, --size and --result are required without --report")
    fn = globals()[f"stage_{args.stage}"]
    res = fn(args.root, args.size, args.quick)
    args.result.write_text(json.dumps(res, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
