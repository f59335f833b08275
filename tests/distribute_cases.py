"""Training cases and checks shared by the tf.distribute tests (tests/test_distribute.py).

A case builds a compiled model (or trainer) of one family under the current strategy's scope and
the global batches it trains on; :func:`train_case` trains it for a few steps with the project's
``fit`` from given initial weights and returns the weights before and after.  The same case runs
under the default strategy (one device), MirroredStrategy over two logical CPUs and
MultiWorkerMirroredStrategy over two worker processes, and :func:`assert_same_training` compares
the results.

A strategy over logical CPUs or several workers must be set up before TensorFlow starts, so the
tests run the cases in fresh processes through this file's command line::

    python tests/distribute_cases.py mirrored OUT CASE...   # 2 logical CPUs, then the default strategy
    python tests/distribute_cases.py worker OUT CASE...     # one worker of TF_CONFIG's cluster, then the
                                                            # default strategy in the same process

Each process writes ``OUT/<role>/<case>.npz`` (arrays) and ``.json`` (losses, replicas).
:func:`run_two_workers` starts two worker processes on 127.0.0.1 and collects their results.

Every case is free of per-replica randomness that one device would draw differently (dropout
rate 0) and synchronises BatchNormalization (``sync_batch_norm``): otherwise each replica
normalises its own slice with its own statistics and N replicas legitimately train another model.
The DcaseNet and weak-SED cases train with SGD where their studies use Adam: Adam divides every
gradient element by its running RMS, so in the first steps each element moves by ~lr whatever its
size, and float32 rounding in gradient elements near zero becomes an lr-sized difference (measured
after 3 Adam steps: 8.7e-4 of a 3e-3 move for DcaseNet, 1.2e-3 for the 2APAE; with SGD 3.2e-6 and
7.2e-7).  The optimizer update runs the same way on every worker from the all-reduced gradient, so
SGD checks everything the distribution changes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
GLOBAL_BATCH = 8  # examples per step, split over the replicas (4 each on 2 replicas)
N_EXAMPLES = 16


# ------------------------------------------------------------------------------------ the cases
# Each case: () -> (model, make_ds) under the current strategy scope; make_ds(epochs, steps) is the
# ``initial_epoch -> tf.data.Dataset`` function that fit() takes.


def toy_model():
    """Two convolutions and a softmax (no BatchNormalization), SGD with momentum."""
    import keras

    inp = keras.Input((12, 8, 1))
    h = keras.layers.Conv2D(6, 3, padding="same", name="conv1")(inp)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="conv2")(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(3, activation="softmax", name="out")(h)
    m = keras.Model(inp, out)
    m.compile(keras.optimizers.SGD(0.1, momentum=0.9), "categorical_crossentropy")
    return m


def case_toy():
    """Keras' own train step on a toy model; make_train_dataset with mixup."""
    from tf_scenes.pipelines.train_data import make_train_dataset
    from tf_scenes.pipelines.transforms import Mixup

    rng = np.random.default_rng(0)
    x = rng.standard_normal((N_EXAMPLES, 12, 8, 1)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, N_EXAMPLES)]

    def make_ds(epochs, steps):
        return lambda k: make_train_dataset(x, y, batch_size=GLOBAL_BATCH, seed=1, epochs=epochs, initial_epoch=k,
                                            steps_per_epoch=steps, mixup=Mixup(0.4))
    return toy_model(), make_ds


def toy_backbone():
    """A raw-waveform-like backbone without convolutions: {"embedding", "coarse", "fine"}."""
    import keras

    inp = keras.Input((20,))
    emb = keras.layers.Dense(4, name="emb")(keras.layers.Dense(8, activation="relu", name="h")(inp))
    return keras.Model(inp, {"embedding": emb,
                             "coarse": keras.layers.Dense(3, activation="softmax", name="c")(emb),
                             "fine": keras.layers.Dense(5, activation="softmax", name="f")(emb)})


def _toy_hierarchical_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N_EXAMPLES, 20)).astype(np.float32)
    labels = {"coarse": rng.integers(0, 3, N_EXAMPLES), "fine": rng.integers(0, 5, N_EXAMPLES)}
    return x, labels


def _plain_batches(x, labels):
    """In-order batches of GLOBAL_BATCH from arrays (a fixed number of steps per epoch)."""
    import tensorflow as tf

    def make_ds(epochs, steps):
        def fn(k):
            ds = tf.data.Dataset.from_tensor_slices((x, labels)).batch(GLOBAL_BATCH, drop_remainder=True)
            return ds.repeat().take(steps).repeat(epochs - k)
        return fn
    return make_ds


def case_toy_prototype():
    """The raw-waveform trainer (CE + prototype loss) on the toy backbone."""
    import keras

    from tf_scenes.raw_waveform.prototype import attach_hierarchical_losses

    model = attach_hierarchical_losses(toy_backbone(), n_coarse=3, optimizer=keras.optimizers.SGD(0.5), metrics=False)
    return model, _plain_batches(*_toy_hierarchical_data())


class ToyJoint:
    """Factory of a keras.Model with the DcaseNet JointTrainer's step (summed task losses, replica
    share, scale_loss) over the toy backbone (a class made on first use: keras is imported late)."""

    @staticmethod
    def build():
        import keras
        import tensorflow as tf
        from keras import ops

        from tf_scenes.training.distribute import replica_share

        class Joint(keras.Model):
            def __init__(self, net):
                super().__init__()
                self.net = net
                self.built = True  # the functional net is built (as JointTrainer): checkpoints can be written

            def call(self, x):
                return self.net(x)

            def train_step(self, data):
                x, y = data
                with tf.GradientTape() as tape:
                    p = self.net(x, training=True)
                    a = ops.mean(keras.losses.sparse_categorical_crossentropy(y["coarse"], p["coarse"]))
                    b = ops.mean(keras.losses.sparse_categorical_crossentropy(y["fine"], p["fine"]))
                    total = a + b
                    scaled = self.optimizer.scale_loss(replica_share(total))
                grads = tape.gradient(scaled, self.net.trainable_variables)
                self.optimizer.apply_gradients(zip(grads, self.net.trainable_variables))
                return {"loss": total}

        model = Joint(toy_backbone())
        model.compile(optimizer=keras.optimizers.SGD(0.5))
        return model


def case_toy_joint():
    return ToyJoint.build(), _plain_batches(*_toy_hierarchical_data())


def case_two_stage():
    """Two-stage ResNet (two frequency paths, BatchNorm, L2) at width 1/16 on 16 mel bands; the
    study's input: SpecAugment per channel, random crop, mixup of the two halves of 2 x 8 clips."""
    import keras

    from tf_scenes.pipelines.train_data import make_train_dataset
    from tf_scenes.pipelines.transforms import Mixup, crop, spec_augment
    from tf_scenes.two_stage.model import TwoStageModelConfig, build_two_stage_model
    from tf_scenes.training.distribute import sync_batch_norm

    cfg = TwoStageModelConfig(arch="resnet", num_classes=10, width=0.0625, n_mels=16, channels=3, dropout=0.0,
                              bn_momentum=0.9)
    model = build_two_stage_model(cfg)
    assert sync_batch_norm(model) > 0
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((2 * N_EXAMPLES, 28, 16, 3), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 2 * N_EXAMPLES)]
    spec = dict(max_freq_width=3, max_time_width=4, per_channel=True)

    def make_ds(epochs, steps):
        return lambda k: make_train_dataset(x, y, batch_size=GLOBAL_BATCH, seed=2, epochs=epochs, initial_epoch=k,
                                            transforms=[spec_augment(**spec), crop(24)],
                                            mixup=Mixup(0.4, pairing="halves"), steps_per_epoch=steps)
    return model, make_ds


def case_dcasenet_joint():
    """DcaseNet v3 JointTrainer (ASC + TAG + SED, its own train_step) at width 1/16 on 32 mel
    bands; the study's task datasets (crops, re-standardisation, tiling, mixup) zipped.  A small
    rate: this deep, synchronised-BatchNorm network on 8 examples amplifies float32 rounding
    ~100x per step at lr 0.01 (the one-device run with its batches' halves swapped then differs
    by 2e-4 after 3 steps; at lr 0.002 by 2.4e-6)."""
    import keras

    from tf_scenes.dcasenet.crops import TaskSplit
    from tf_scenes.experiments.dcasenet.data import joint_dataset, train_dataset
    from tf_scenes.dcasenet.joint import JointTrainer
    from tf_scenes.dcasenet.model import VARIANTS
    from tf_scenes.training.distribute import sync_batch_norm

    cfg = dataclasses.replace(VARIANTS["v3"], width=0.0625, dropout=(0.0, 0.0), n_mels=32)
    trainer = JointTrainer(cfg, ("asc", "tag", "sed"))
    assert sync_batch_norm(trainer) > 0
    trainer.compile(optimizer=keras.optimizers.SGD(0.002, momentum=0.9))
    rng = np.random.default_rng(0)
    n, frames = N_EXAMPLES, 100

    def feats():
        return rng.standard_normal((n, frames, 32, 1)).astype(np.float32)

    splits = {
        "asc": TaskSplit("asc", feats(), np.full(n, frames), rng.integers(0, 10, n), [f"a{i}" for i in range(n)]),
        "tag": TaskSplit("tag", feats(), rng.integers(50, frames + 1, n), (rng.random((n, 80)) < 0.1).astype(np.float32),
                         [f"t{i}" for i in range(n)]),
        "sed": TaskSplit("sed", feats(), np.full(n, frames), (rng.random((n, frames // 5, 14)) < 0.2).astype(np.float32),
                         [f"s{i}" for i in range(n)], groups=np.arange(n)),
    }

    def make_ds(epochs, steps):
        def fn(k):
            return joint_dataset({t: train_dataset(s, batch_size=GLOBAL_BATCH, crop_frames=80, seed=3, epochs=epochs,
                                                   initial_epoch=k, steps_per_epoch=steps, mixup_alpha=0.1,
                                                   mixup_from_epoch=0, n_classes=10)
                                  for t, s in splits.items()})
        return fn
    return trainer, make_ds


def case_raw_waveform():
    """Raw-waveform model (two conv pipelines, attention pooling, L2-softmax heads, orthogonal
    regulariser) in the HierarchicalTrainer: CE on both heads + prototype loss, Adam."""
    import keras

    from tf_scenes.pipelines.train_data import make_train_dataset
    from tf_scenes.raw_waveform.model import RawWaveformConfig, build_raw_waveform
    from tf_scenes.training.distribute import sync_batch_norm
    from tf_scenes.raw_waveform.prototype import attach_hierarchical_losses

    cfg = RawWaveformConfig(window_samples=16000, width=0.05, stats_window=2, fc_units=(16, 8), attention_units=8,
                            n_coarse=3, n_fine=5, dropout=0.0)
    backbone = build_raw_waveform(cfg)
    sync_batch_norm(backbone)  # (none in this family today)
    model = attach_hierarchical_losses(backbone, cfg, optimizer=keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((N_EXAMPLES, 16000))).astype(np.float32)
    fine = rng.integers(0, 5, N_EXAMPLES)
    labels = {"coarse": (fine % 3).astype(np.int64), "fine": fine.astype(np.int64)}

    def make_ds(epochs, steps):
        return lambda k: make_train_dataset(x, labels, batch_size=GLOBAL_BATCH, seed=4, epochs=epochs, initial_epoch=k,
                                            steps_per_epoch=steps)
    return model, make_ds


def case_weak_sed():
    """2APAE (encoder-decoder, two-step attention pooling, BatchNorm) with the paper's loss
    BCE(clip) + alpha MSE(reconstruction, standardised input), SGD (module docstring); the study's
    input map."""
    import keras
    import tensorflow as tf

    from tf_scenes.pipelines.train_data import make_train_dataset
    from tf_scenes.weak_sed.model import WeakSedConfig, build_weak_sed, weak_sed_loss
    from tf_scenes.training.distribute import sync_batch_norm
    from tf_scenes.weak_sed.training import inputs_and_targets

    cfg = WeakSedConfig(model="2apae", width=0.125, frames=24, n_mels=12, n_classes=5, alpha=0.1)
    model = build_weak_sed(cfg)
    assert sync_batch_norm(model) > 0
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), **weak_sed_loss(cfg.alpha))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N_EXAMPLES, 24, 12, 1)).astype(np.float32) * 2.0 + 1.0
    y = (rng.random((N_EXAMPLES, 5)) < 0.3).astype(np.float32)
    mean, std = x.mean(axis=(0, 1)), x.std(axis=(0, 1))  # (mels, 1)
    to_model = inputs_and_targets(mean, std, True)

    def make_ds(epochs, steps):
        return lambda k: make_train_dataset(x, y, batch_size=GLOBAL_BATCH, seed=5, epochs=epochs, initial_epoch=k,
                                            steps_per_epoch=steps).map(to_model, num_parallel_calls=tf.data.AUTOTUNE)
    return model, make_ds


CASES = {
    "toy": case_toy,
    "toy_prototype": case_toy_prototype,
    "toy_joint": case_toy_joint,
    "two_stage": case_two_stage,
    "dcasenet_joint": case_dcasenet_joint,
    "raw_waveform": case_raw_waveform,
    "weak_sed": case_weak_sed,
}


# ------------------------------------------------------------------------------------ training


def train_case(name: str, strategy, run_dir: Path, *, steps: int, epochs: int = 1, resume_to: int | None = None,
               start: list | None = None) -> dict:
    """Train case `name` under `strategy` with tf_scenes.training.trainer.fit.

    start: initial weights to load (None: the case's seeded initial weights).  resume_to: after
    `epochs` epochs, a new model object resumes the run from its checkpoint up to `resume_to`.
    Returns {"start", "weights" (lists of arrays), "loss" (per epoch), "replicas", "resumed"}.
    """
    import keras

    from tf_scenes.training.trainer import fit

    def build():
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model, make_ds = CASES[name]()
            if start is not None:
                model.set_weights(start)
        return model, make_ds

    model, make_ds = build()
    first = [np.array(w) for w in model.get_weights()]
    runs = []
    for total in [epochs] + ([resume_to] if resume_to else []):
        if runs:  # a new model object resumes from the checkpoint (restore under the strategy)
            model, make_ds = build()
        runs.append(fit(model, make_ds(total, steps), epochs=total, steps_per_epoch=steps, run_dir=run_dir,
                        monitor="loss", mode="min", select="last", verbose=0, tensorboard=False))
    trainable = {id(v) for v in model.trainable_weights}
    return {"start": first, "weights": [np.array(w) for w in model.get_weights()],
            "trainable": [id(v) in trainable for v in model.weights],
            "loss": [float(r["loss"]) for r in runs[-1]["history"]], "replicas": int(strategy.num_replicas_in_sync),
            "resumed": bool(runs[-1]["resumed"])}


def save_result(path: Path, res: dict, extra: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{key}_{i}": w for key in ("start", "weights") for i, w in enumerate(res[key])}
    np.savez(path.with_suffix(".npz"), **arrays)
    meta = {k: v for k, v in res.items() if k not in ("start", "weights")}
    meta["n_weights"] = len(res["weights"])
    path.with_suffix(".json").write_text(json.dumps({**meta, **(extra or {})}))


def load_result(path: Path) -> dict:
    meta = json.loads(path.with_suffix(".json").read_text())
    with np.load(path.with_suffix(".npz")) as z:
        n = meta["n_weights"]
        meta["start"] = [z[f"start_{i}"] for i in range(n)]
        meta["weights"] = [z[f"weights_{i}"] for i in range(n)]
    return meta


def max_abs_diff(a: list, b: list, keep: list | None = None) -> float:
    """Largest absolute difference between two lists of arrays (those flagged in `keep`)."""
    assert len(a) == len(b) > 0, (len(a), len(b))
    keep = keep if keep is not None else [True] * len(a)
    for u, v in zip(a, b):
        assert u.shape == v.shape, (u.shape, v.shape)
    return max(float(np.max(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64)))) if u.size and k else 0.0
               for u, v, k in zip(a, b, keep))


def assert_same_training(reference: dict, other: dict, *, atol: float, moved_factor: float = 100.0, label: str = ""):
    """`other` (a distributed run) trained the same weights as `reference` (one device).

    Checks: the same initial weights; final weights (trainable ones and BatchNorm statistics)
    within `atol`, max abs; the steps moved the trainable weights by more than `moved_factor` x
    `atol`, so the check would see a distributed step that differs from the one-device step
    (a loss term counted twice, per-worker BatchNorm statistics, a worker reading the wrong
    examples)."""
    assert max_abs_diff(reference["start"], other["start"]) == 0.0, f"{label}: the runs start from other weights"
    diff = max_abs_diff(reference["weights"], other["weights"])
    moved = max_abs_diff(reference["weights"], reference["start"], keep=reference["trainable"])
    assert diff <= atol, f"{label}: distributed weights differ by {diff:.3g} > {atol:g} (the steps moved them by {moved:.3g})"
    assert moved >= moved_factor * atol, f"{label}: the steps moved the weights by only {moved:.3g}"
    return diff, moved


# ------------------------------------------------------------------------------------ processes


def free_ports(n: int) -> list[int]:
    """`n` distinct TCP ports free on 127.0.0.1 now (held together while chosen, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def process_env(**extra) -> dict:
    """Environment of a test process: this checkout first on the path, CPU only, quiet, and no
    proxy variables (gRPC would honour them; the workers must talk over loopback only)."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "grpc_proxy", "all_proxy")}
    env.update(PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONHASHSEED="0",
               no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
    env.update(extra)
    return env


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def run_two_workers(out: Path, cases: list[str], *, steps: int, timeout: float, attempts: int = 2) -> list[dict]:
    """Run `cases` in two worker processes of one MultiWorkerMirroredStrategy cluster on
    127.0.0.1 (free ports chosen here), each followed by the one-worker reference; returns
    ``[{case: {"mw": result, "ref": result}} for worker 0, 1]``.  Both processes are killed if
    one fails or the time runs out (AssertionError with both logs)."""
    script = str(Path(__file__).resolve())
    for attempt in range(attempts):
        ports = free_ports(2)
        cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
        run_out = out / f"attempt{attempt}"
        procs, logs = [], []
        try:
            for i in range(2):
                tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
                log = run_out / f"worker{i}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                logs.append(log)
                with open(log, "wb") as f:
                    procs.append(subprocess.Popen(
                        [sys.executable, script, "worker", str(run_out), *cases, "--steps", str(steps)],
                        cwd=REPO, env=process_env(TF_CONFIG=tf_config), stdout=f, stderr=subprocess.STDOUT))
            deadline = time.monotonic() + timeout
            while any(p.poll() is None for p in procs):
                if any(p.returncode not in (None, 0) for p in procs):
                    break  # one failed: the other would wait for it forever
                if time.monotonic() > deadline:
                    raise AssertionError(f"two-worker run timed out after {timeout:g} s\n"
                                         + "\n".join(f"--- worker {i}\n{_tail(lg)}" for i, lg in enumerate(logs)))
                time.sleep(0.2)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        codes = [p.returncode for p in procs]
        if codes == [0, 0]:
            return [{c: {"mw": load_result(run_out / f"worker{i}" / f"{c}_mw"),
                         "ref": load_result(run_out / f"worker{i}" / f"{c}_ref")} for c in cases} for i in range(2)]
        text = "\n".join(f"--- worker {i} (exit {codes[i]})\n{_tail(lg)}" for i, lg in enumerate(logs))
        if "already in use" not in text or attempt == attempts - 1:  # a port taken between choice and use: retry
            raise AssertionError(f"two-worker run failed\n{text}")
    raise AssertionError("unreachable")


def _worker_main(out: Path, cases: list[str], steps: int) -> None:
    # As the training commands: one inter-op thread on CPU, then the cluster, before any op runs.
    from tf_scenes.training.trainer import serial_inter_op

    serial_inter_op()
    from tf_scenes.training.distribute import get_strategy

    strategy = get_strategy("multi_worker")
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    mine = out / f"worker{index}"
    for name in cases:
        res = train_case(name, strategy, mine / f"run_{name}_mw", steps=steps)
        save_result(mine / f"{name}_mw", res, {"task": index})
        # One worker: the default strategy, in this process, from the same initial weights.
        ref = train_case(name, get_strategy("default"), mine / f"run_{name}_ref", steps=steps, start=res["start"])
        save_result(mine / f"{name}_ref", ref)


def _mirrored_main(out: Path, cases: list[str], steps: int, epochs: int, resume_to: int | None) -> None:
    from tf_scenes.training.distribute import get_strategy, replica_share, split_cpu

    devices = split_cpu(2)
    import tensorflow as tf

    for name in cases:
        extra = {}
        for role in ("default", "mirrored"):
            strategy = get_strategy(role, devices=devices if role == "mirrored" else None)
            with strategy.scope():
                share = strategy.run(lambda: replica_share(tf.constant(1.0)))
            extra = {"share": [float(v) for v in strategy.experimental_local_results(share)], "devices": devices}
            res = train_case(name, strategy, out / f"run_{name}_{role}", steps=steps, epochs=epochs,
                             resume_to=resume_to)
            save_result(out / role / name, res, extra)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("worker", "mirrored"))
    p.add_argument("out", type=Path)
    p.add_argument("cases", nargs="+", choices=sorted(CASES))
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--resume-to", type=int, default=None)
    args = p.parse_args(argv)
    if args.mode == "worker":
        _worker_main(args.out, args.cases, args.steps)
    else:
        _mirrored_main(args.out, args.cases, args.steps, args.epochs, args.resume_to)
    return 0


if __name__ == "__main__":
    sys.exit(main())
