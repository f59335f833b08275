"""Training machinery: epoch-indexed datasets (tf_scenes.pipelines.train_data), the SGDR schedule and the
resumable fit (tf_scenes.training).

Run as a script (``python tests/test_training.py worker RUN_DIR``) this file is the training
process that test_sigkill_mid_run_then_resume kills.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf

from tf_scenes.pipelines.train_data import Computed, epoch_steps, make_eval_dataset, make_train_dataset
from tf_scenes.pipelines.transforms import Mixup, crop, map_example, spec_augment
from tf_scenes.training.schedules import CosineWarmRestarts, sgdr_lr

REPO = Path(__file__).resolve().parent.parent

# Tiny problem shared by the in-process runs and the worker process.
N, FRAMES, CROP, MELS, CLASSES, BATCH, EPOCHS = 48, 12, 10, 8, 3, 8, 4
STEPS = N // BATCH


def tiny_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, FRAMES, MELS, 1)).astype(np.float32)
    y = np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, N)]
    return x, y


def build_model():
    """Conv + BatchNorm (moving statistics) + Dropout (seed state), SGD with momentum + SGDR."""
    import keras

    from tf_scenes.training import set_determinism

    set_determinism(1)
    inp = keras.Input((CROP, MELS, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3, name="drop")(x)
    out = keras.layers.Dense(CLASSES, activation="softmax", name="out")(x)
    model = keras.Model(inp, out)
    model.compile(keras.optimizers.SGD(CosineWarmRestarts(0.1, 1e-4, 1, STEPS), momentum=0.9),
                  "categorical_crossentropy", metrics=[keras.metrics.CategoricalAccuracy(name="acc")])
    return model


def train_ds_factory(epochs):
    x, y = tiny_data()
    return lambda k: make_train_dataset(x, y, batch_size=BATCH, seed=3, epochs=epochs, initial_epoch=k,
                                        transforms=[spec_augment(max_time_width=2, max_freq_width=2), crop(CROP)],
                                        mixup=Mixup(0.4))


def val_ds():
    x, y = tiny_data()
    return make_eval_dataset(x[:16, :CROP], y[:16], batch_size=8)


def run_fit(run_dir, epochs, **kw):
    from tf_scenes.training import fit

    kw.setdefault("val_data", val_ds())
    kw.setdefault("select", "last")
    model = build_model()
    result = fit(model, train_ds_factory(epochs), epochs=epochs, steps_per_epoch=STEPS, run_dir=run_dir,
                 verbose=0, tensorboard=False, **kw)
    return model, result


def checkpoint_arrays(path):
    """Every array in a last.weights.h5 (model, optimizer, seed states), by h5 path."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def metrics_only(history):
    return [{k: v for k, v in row.items() if k != "time_s"} for row in history]


# ============================================================================ train_data


def batches(ds):
    return [tuple(np.asarray(t) for t in tf.nest.flatten(b)) for b in ds.as_numpy_iterator()]


def same_batches(a, b):
    return len(a) == len(b) and all(len(u) == len(v) and all(np.array_equal(p, q) for p, q in zip(u, v))
                                    for u, v in zip(a, b))


def ident_data(n=10, frames=6):
    """x[i] is filled with i; labels are identity one-hots (label argmax = example index)."""
    x = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, frames, 3, 2)).copy()
    x += np.arange(frames, dtype=np.float32)[None, :, None, None] / 100  # time ramp to see crops
    return x, np.eye(n, dtype=np.float32)


AUG = dict(transforms=[spec_augment(max_time_width=2, max_freq_width=1), crop(4)], mixup=Mixup(0.4))


@pytest.mark.parametrize("kw", [
    {},
    AUG,
    dict(AUG, drop_remainder=False, mixup=None),
    dict(AUG, steps_per_epoch=3, mixup=Mixup(0.4, pairing="halves", from_epoch=2)),
    dict(AUG, steps_per_epoch=4, mixup=Mixup(0.4, per_example=False)),
], ids=["plain", "augmented", "keep-remainder", "fixed-steps-halves", "fixed-steps"])
def test_train_dataset_resume_equals_uninterrupted(kw):
    x, y = ident_data()
    full = batches(make_train_dataset(x, y, batch_size=3, seed=5, epochs=4, **kw))
    resumed = batches(make_train_dataset(x, y, batch_size=3, seed=5, epochs=4, initial_epoch=2, **kw))
    assert len(resumed) == len(full) // 2
    assert same_batches(full[-len(resumed):], resumed)
    again = batches(make_train_dataset(x, y, batch_size=3, seed=5, epochs=4, **kw))
    assert same_batches(full, again)  # deterministic
    other = batches(make_train_dataset(x, y, batch_size=3, seed=6, epochs=4, **kw))
    assert not same_batches(full, other)


def test_train_dataset_shapes_and_epoch_permutations():
    x, y = ident_data(10)
    ds = make_train_dataset(x, y, batch_size=3, seed=1, epochs=3, drop_remainder=False)
    got = batches(ds)
    assert [b[0].shape[0] for b in got] == [3, 3, 3, 1] * 3  # batches never straddle epochs
    orders = []
    for e in range(3):
        ids = np.concatenate([b[1].argmax(1) for b in got[4 * e:4 * e + 4]])
        assert sorted(ids) == list(range(10))  # each epoch is one permutation
        orders.append(list(ids))
        for b in got[4 * e:4 * e + 4]:  # no augmentation asked: rows are the stored examples
            np.testing.assert_array_equal(b[0], x[b[1].argmax(1)])
            assert set(np.unique(b[1])) <= {0.0, 1.0}
    assert orders[0] != orders[1] != orders[2]
    assert int(ds.cardinality()) == 12  # known length, checked by fit()
    dropped = batches(make_train_dataset(x, y, batch_size=3, seed=1, epochs=3, transforms=[crop(4)]))
    assert len(dropped) == 3 * epoch_steps(10, 3) == 9
    resumed = make_train_dataset(x, y, batch_size=3, seed=1, epochs=3, initial_epoch=1, steps_per_epoch=5)
    assert int(resumed.cardinality()) == 10
    assert dropped[0][0].shape == (3, 4, 3, 2) and dropped[0][1].shape == (3, 10)


def test_train_dataset_crop_is_a_slice_of_the_right_example():
    x, y = ident_data(10, frames=12)
    for xb, yb in batches(make_train_dataset(x, y, batch_size=5, seed=2, epochs=2, transforms=[crop(8)])):
        for xi, yi in zip(xb, yb):
            i = int(yi.argmax())
            off = int(round((xi[0, 0, 0] - i) * 100))
            assert 0 <= off <= 12 - 8 - 1
            np.testing.assert_allclose(xi, x[i, off:off + 8], atol=1e-6)


def test_train_dataset_mixup_only_when_asked():
    x, y = ident_data(12)
    plain = batches(make_train_dataset(x, y, batch_size=4, seed=0, epochs=4))
    assert all(set(np.unique(b[1])) <= {0.0, 1.0} for b in plain)
    mixed = batches(make_train_dataset(x, y, batch_size=4, seed=0, epochs=4, mixup=Mixup(0.4)))
    assert all(not set(np.unique(b[1])) <= {0.0, 1.0} for b in mixed)
    late = batches(make_train_dataset(x, y, batch_size=4, seed=0, epochs=4, mixup=Mixup(0.4, from_epoch=2)))
    onehot = [set(np.unique(b[1])) <= {0.0, 1.0} for b in late]
    assert onehot == [True] * 6 + [False] * 6  # 3 batches per epoch, mixup from epoch 2
    halves = batches(make_train_dataset(x, y, batch_size=3, seed=0, epochs=1, mixup=Mixup(0.4, pairing="halves")))
    assert len(halves) == epoch_steps(12, 3, mixup_pairing="halves") == 2
    assert halves[0][0].shape[0] == 3 and np.allclose(halves[0][1].sum(1), 1)


def test_train_dataset_fixed_steps_walks_through_seeded_passes():
    x, y = ident_data(10)
    got = batches(make_train_dataset(x, y, batch_size=4, seed=7, epochs=5, steps_per_epoch=2))
    ids = np.concatenate([b[1].argmax(1) for b in got])  # 5 epochs x 2 steps x 4 = 40 = 4 passes
    assert len(got) == 10 and len(ids) == 40
    for p in range(4):
        assert sorted(ids[10 * p:10 * p + 10]) == list(range(10))


def test_train_dataset_memmap_nested_labels_and_a_study_map(tmp_path):
    x, y = ident_data(9)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert isinstance(mm, np.memmap)
    labels = {"scene": y, "index": np.arange(9)}

    def extra(xe, ye, s):
        noise = tf.random.stateless_uniform(tf.shape(xe), seed=s)
        return xe + noise, dict(ye, index=ye["index"] * 10)

    kw = dict(batch_size=3, seed=4, epochs=2, transforms=[map_example("noise", extra), crop(4)])
    from_mm = batches(make_train_dataset(mm, labels, **kw))
    from_ram = batches(make_train_dataset(x, labels, **kw))
    assert same_batches(from_mm, from_ram)
    xb, idx, scene = from_mm[0]  # nest.flatten order: x, then labels by sorted key
    assert set(idx % 10) == {0} and np.array_equal(idx // 10, scene.argmax(1))
    assert np.all(xb - x[idx // 10][:, :4] > -1e-6)  # noise in [0, 1) was added (crop offset aside)


@pytest.mark.parametrize("steps", [None, 3], ids=["one-pass", "fixed-steps"])
def test_train_dataset_computed_examples_follow_the_stored_ones(steps):
    """Examples computed in the pipeline (Computed) come after the stored rows, in the same
    permutations: example 6 + j is fn(j, epoch) with the epoch it is drawn in, its label the row
    6 + j of the labels; resumed runs get the same batches."""
    x, _ = ident_data(6)
    y = np.eye(10, dtype=np.float32)  # 6 stored + 4 computed examples

    def fn(j, epoch):  # the example's index (6 + j) plus epoch / 10 everywhere
        return tf.fill([6, 3, 2], tf.cast(6 + j, tf.float32) + tf.cast(epoch, tf.float32) / 10)

    kw = dict(batch_size=2, seed=3, epochs=3, steps_per_epoch=steps, computed=Computed(4, fn, (6, 3, 2)))
    got = batches(make_train_dataset(x, y, **kw))
    per_epoch = len(got) // 3
    for b, (xb, yb) in enumerate(got):
        epoch = b // per_epoch
        for xi, yi in zip(xb, yb):
            i = int(yi.argmax())
            want = x[i] if i < 6 else np.full((6, 3, 2), i + epoch / 10, np.float32)
            np.testing.assert_allclose(xi, want, atol=1e-6)
    seen = {int(i) for _, yb in got for i in yb.argmax(1)}
    assert seen == set(range(10))  # stored and computed examples all drawn
    resumed = batches(make_train_dataset(x, y, initial_epoch=1, **kw))
    assert same_batches(got[per_epoch:], resumed)
    with pytest.raises(ValueError, match=r"computed examples have shape \(6, 3\), the stored ones \(6, 3, 2\)"):
        make_train_dataset(x, y, batch_size=2, seed=0, epochs=1, computed=Computed(4, fn, (6, 3)))
    with pytest.raises(ValueError, match="labels.*10 rows.*11 examples"):
        make_train_dataset(x, y, batch_size=2, seed=0, epochs=1, computed=Computed(5, fn, (6, 3, 2)))


def test_train_dataset_errors():
    x, y = ident_data(5)
    with pytest.raises(ValueError, match="labels.*4 rows.*5 examples"):
        make_train_dataset(x, y[:4], batch_size=2, seed=0, epochs=1)
    with pytest.raises(ValueError, match="0 batches"):
        make_train_dataset(x, y, batch_size=8, seed=0, epochs=1)
    with pytest.raises(ValueError, match="mixup_pairing"):
        Mixup(0.2, pairing="x")


def test_eval_dataset_in_order_with_remainder():
    x, y = ident_data(7)
    got = batches(make_eval_dataset(x, y, batch_size=3))
    assert [b[0].shape[0] for b in got] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in got]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), y)
    only_x = [b.shape for b in make_eval_dataset(x, None, batch_size=4)]
    assert only_x == [(4, 6, 3, 2), (3, 6, 3, 2)]


# ============================================================================ schedule


def lr_at(schedule, step):
    return float(schedule(tf.constant(step, tf.int64)))


def test_sgdr_two_stage_restarts():
    spe = 1000  # fine steps so that the step before a restart is within 1e-7 of min_lr
    s = CosineWarmRestarts(max_lr=0.1, min_lr=1e-5, first_cycle_epochs=2, steps_per_epoch=spe, t_mul=2)
    assert s.restart_epochs(5) == [2, 6, 14, 30, 62]
    assert lr_at(s, 0) == pytest.approx(0.1, abs=1e-7)
    for restart in (2, 6, 14, 30, 62):
        assert lr_at(s, restart * spe) == pytest.approx(0.1, abs=1e-7)
        assert lr_at(s, restart * spe - 1) == pytest.approx(1e-5, abs=2e-7)


def test_sgdr_values_by_hand():
    s = CosineWarmRestarts(max_lr=0.1, min_lr=1e-5, first_cycle_epochs=2, steps_per_epoch=10, t_mul=2)
    # step 5: epoch 0.5 of the first cycle (length 2): cos(pi / 4)
    assert lr_at(s, 5) == pytest.approx(1e-5 + 0.5 * (0.1 - 1e-5) * (1 + math.cos(math.pi * 0.25)), rel=1e-6)
    # step 10: epoch 1, the middle of the first cycle: (max + min) / 2
    assert lr_at(s, 10) == pytest.approx((0.1 + 1e-5) / 2, rel=1e-6)
    # step 50: epoch 5 = 3 epochs into the second cycle (starts at 2, length 4): cos(3 pi / 4)
    assert lr_at(s, 50) == pytest.approx(1e-5 + 0.5 * (0.1 - 1e-5) * (1 + math.cos(math.pi * 0.75)), rel=1e-6)
    # step 100: epoch 10 = 4 epochs into the third cycle (starts at 6, length 8): the middle
    assert lr_at(s, 100) == pytest.approx((0.1 + 1e-5) / 2, rel=1e-6)
    for step in range(0, 400, 7):
        ref = sgdr_lr(step, max_lr=0.1, min_lr=1e-5, first_cycle_epochs=2, steps_per_epoch=10, t_mul=2)
        assert lr_at(s, step) == pytest.approx(ref, rel=1e-5, abs=1e-9)


def test_sgdr_dcasenet_constant_cycles_and_legacy_decay():
    s = CosineWarmRestarts(max_lr=1e-3, min_lr=1e-6, first_cycle_epochs=80, steps_per_epoch=500, t_mul=1)
    assert lr_at(s, 0) == pytest.approx(1e-3)
    assert lr_at(s, 20_000) == pytest.approx((1e-3 + 1e-6) / 2, rel=1e-6)  # epoch 40 of 80
    assert lr_at(s, 40_000) == pytest.approx(1e-3)  # restart at epoch 80
    assert lr_at(s, 39_999) == pytest.approx(1e-6, abs=1e-9)
    d = CosineWarmRestarts(0.1, 1e-5, 2, 10, t_mul=2, legacy_decay=1e-3)
    assert lr_at(d, 10) == pytest.approx((0.1 + 1e-5) / 2 / (1 + 1e-3 * 10), rel=1e-6)


def test_sgdr_config_round_trip_and_per_batch_stepping():
    import keras

    s = CosineWarmRestarts(0.1, 1e-5, 2, 7, t_mul=2, legacy_decay=1e-6)
    s2 = CosineWarmRestarts.from_config(s.get_config())
    assert s2.get_config() == s.get_config()
    s3 = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(s))
    assert isinstance(s3, CosineWarmRestarts) and s3.get_config() == s.get_config()
    opt = keras.optimizers.SGD(s)
    v = keras.Variable(np.zeros(2, np.float32))
    for _ in range(9):
        opt.apply_gradients([(keras.ops.ones(2), v)])
    assert float(opt.learning_rate) == pytest.approx(lr_at(s, 9), rel=1e-6)
    with pytest.raises(ValueError, match="max_lr >= min_lr"):
        CosineWarmRestarts(1e-5, 0.1, 2, 10)


# ============================================================================ fit


@pytest.fixture(scope="module", autouse=True)
def _restore_op_determinism():
    """set_determinism() turns on TF op determinism process-wide; turn it off for later modules."""
    yield
    from tensorflow.python.framework import config as tf_config  # no public disable_op_determinism

    tf_config.disable_op_determinism()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run A: 4 epochs uninterrupted.  Run B: 2 epochs, a fresh model object, then epochs=4 again."""
    root = tmp_path_factory.mktemp("fit")
    model_a, res_a = run_fit(root / "A", EPOCHS)
    model_b1, res_b1 = run_fit(root / "B", 2)
    after_two = model_b1.get_weights()
    model_b, res_b = run_fit(root / "B", EPOCHS)
    yield {"root": root, "A": (model_a, res_a), "B1": res_b1, "B": (model_b, res_b), "after_two": after_two}


def test_fit_resume_is_exact(runs):
    (model_a, res_a), (model_b, res_b) = runs["A"], runs["B"]
    assert not res_a["resumed"] and res_b["resumed"] and res_b["initial_epoch"] == 2
    a = checkpoint_arrays(runs["root"] / "A" / "checkpoints" / "last.weights.h5")
    b = checkpoint_arrays(runs["root"] / "B" / "checkpoints" / "last.weights.h5")
    assert a.keys() == b.keys()
    assert any(k.startswith("optimizer/") for k in a)  # momentum and step counter are saved
    assert any("seed_states" in k for k in a)  # and the dropout seed state
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    for wa, wb in zip(model_a.get_weights(), model_b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert metrics_only(res_a["history"]) == metrics_only(res_b["history"])
    assert res_a["final"]["val_acc"] == res_b["final"]["val_acc"]
    assert int(model_b.optimizer.iterations) == EPOCHS * STEPS


def test_fit_writes_run_folder(runs):
    root = runs["root"] / "B"
    state = json.loads((root / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == EPOCHS - 1 and state["optimizer_step"] == EPOCHS * STEPS
    assert [r["epoch"] for r in state["history"]] == [0, 1, 2, 3]
    lines = (root / "history.csv").read_text().splitlines()
    assert lines[0].split(",")[:2] == ["epoch", "acc"] and len(lines) == 1 + EPOCHS
    assert [int(line.split(",")[0]) for line in lines[1:]] == [0, 1, 2, 3]
    # the SGDR rate of each epoch's first step: restarts every epoch here (first_cycle=1, t_mul=2
    # -> restarts at epochs 1, 3): epochs 0, 1, 3 start at max_lr
    lrs = [r["lr"] for r in state["history"]]
    assert lrs[0] == pytest.approx(0.1) and lrs[1] == pytest.approx(0.1) and lrs[3] == pytest.approx(0.1)
    assert lrs[2] == pytest.approx(1e-4 + 0.5 * (0.1 - 1e-4) * (1 + math.cos(math.pi * 0.5)), rel=1e-5)
    assert not list((root / "checkpoints").glob(".*"))  # no temporaries left


def test_fit_select_best_with_callable_validation(runs, tmp_path):
    scores = [0.1, 0.5, 0.3, 0.4]  # best at epoch 1

    def scripted(model):
        epoch = int(model.optimizer.iterations) // STEPS - 1
        return {"val_score": scores[epoch]}

    model, res = run_fit(tmp_path / "C", EPOCHS, val_data=scripted, monitor="val_score", select="best")
    assert res["best_epoch"] == 1 and res["best_value"] == 0.5
    assert res["weights"].endswith("best.weights.h5")
    assert [r["val_score"] for r in res["history"]] == scores
    # the model now holds the weights after epoch 1: those of run B's 2-epoch checkpoint
    for w, ref in zip(model.get_weights(), runs["after_two"], strict=True):
        np.testing.assert_array_equal(w, ref)
    # resuming a finished run trains nothing and reselects the best epoch
    model2, res2 = run_fit(tmp_path / "C", EPOCHS, val_data=scripted, monitor="val_score", select="best")
    assert res2["initial_epoch"] == EPOCHS and res2["best_epoch"] == 1
    for w, ref in zip(model2.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(w, ref)


def test_fit_resume_with_loss_scale_optimizer(tmp_path):
    """Under mixed_float16 (configure_precision("auto") on GPU) Keras wraps the optimizer in a
    LossScaleOptimizer; its dynamic loss scale is restored too."""
    import keras

    from tf_scenes.training import configure_precision

    try:
        configure_precision("mixed_float16")
        model_a, res_a = run_fit(tmp_path / "A", 2)
        assert type(model_a.optimizer).__name__ == "LossScaleOptimizer"
        run_fit(tmp_path / "B", 1)
        _, res_b = run_fit(tmp_path / "B", 2)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert res_b["resumed"]
    a = checkpoint_arrays(tmp_path / "A" / "checkpoints" / "last.weights.h5")
    b = checkpoint_arrays(tmp_path / "B" / "checkpoints" / "last.weights.h5")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert metrics_only(res_a["history"]) == metrics_only(res_b["history"])


def test_fit_configuration_errors(tmp_path):
    from tf_scenes.errors import ConfigError, OutputDirError

    with pytest.raises(ConfigError, match="monitor 'val_nope'"):
        run_fit(tmp_path / "D", 1, monitor="val_nope", select="best")
    with pytest.raises(ConfigError, match="select"):
        run_fit(tmp_path / "E", 1, select="first")
    from tf_scenes.training import fit

    wrong = train_ds_factory(EPOCHS + 1)  # one epoch too many: epochs would not line up
    with pytest.raises(ConfigError, match="has 30 batches, but fit.. expects 24"):
        fit(build_model(), wrong, epochs=EPOCHS, steps_per_epoch=STEPS, run_dir=tmp_path / "G", verbose=0,
            tensorboard=False, select="last")
    (tmp_path / "F" / "checkpoints").mkdir(parents=True)
    (tmp_path / "F" / "checkpoints" / "state.json").write_text("{}")
    with pytest.raises(OutputDirError, match="last.weights.h5 is missing"):
        run_fit(tmp_path / "F", 1)


def test_fit_trains_on_a_dataset_without_the_autotune_model(tmp_path):
    """Keras gets the training data with tf.data's autotuning model off (trainer.without_autotune_model:
    its thread could hold up the iterator's destruction for up to a minute after the last epoch),
    and the batches are the ones make_train_dataset gives."""
    from tf_scenes.training import fit

    model, seen = build_model(), []
    keras_fit = model.fit

    def spy(x, *args, **kwargs):
        seen.append(x)
        return keras_fit(x, *args, **kwargs)

    model.fit = spy
    make = train_ds_factory(2)
    fit(model, make, epochs=2, steps_per_epoch=STEPS, run_dir=tmp_path / "H", verbose=0, tensorboard=False,
        select="last")
    assert len(seen) == 1 and isinstance(seen[0], tf.data.Dataset)
    assert make(0).options().autotune.enabled is not False  # the study's dataset leaves it on
    assert seen[0].options().autotune.enabled is False
    assert same_batches(batches(seen[0]), batches(make(0)))


def test_set_determinism_reseeds():
    from tf_scenes.training import set_determinism

    set_determinism(5)
    a = np.random.rand(3), tf.random.uniform([3]).numpy()
    set_determinism(5)
    b = np.random.rand(3), tf.random.uniform([3]).numpy()
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_sigkill_mid_run_then_resume(runs, tmp_path):
    """A training process killed (SIGKILL) during epoch 1, after epoch 0's checkpoint, resumes at
    epoch 1 and ends with exactly the weights of the uninterrupted run A."""
    run_dir = tmp_path / "K"
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "worker", str(run_dir)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    state_file = run_dir / "checkpoints" / "state.json"
    deadline = time.monotonic() + 180
    try:
        while not state_file.exists():
            if proc.poll() is not None:
                pytest.fail(f"worker exited early ({proc.returncode}): {proc.stdout.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("worker wrote no checkpoint in 180 s")
            time.sleep(0.05)
        time.sleep(0.5)  # into epoch 1, which the worker slows down to >= 1.8 s
        assert proc.poll() is None, "worker finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert json.loads(state_file.read_text())["epoch"] == 0

    model, res = run_fit(run_dir, EPOCHS)
    assert res["resumed"] and res["initial_epoch"] == 1
    a = checkpoint_arrays(runs["root"] / "A" / "checkpoints" / "last.weights.h5")
    k = checkpoint_arrays(run_dir / "checkpoints" / "last.weights.h5")
    for key in a:
        np.testing.assert_array_equal(a[key], k[key], err_msg=key)
    assert metrics_only(res["history"]) == metrics_only(runs["A"][1]["history"])


def _worker(run_dir):
    import keras

    class SlowAfterFirstEpoch(keras.callbacks.Callback):
        """Leaves time to kill the process in the middle of epoch 1."""

        def on_epoch_begin(self, epoch, logs=None):
            self.slow = epoch >= 1

        def on_train_batch_end(self, batch, logs=None):
            if self.slow:
                time.sleep(0.3)

    run_fit(run_dir, EPOCHS, extra_callbacks=[SlowAfterFirstEpoch()])


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "worker":
    _worker(Path(sys.argv[2]))


# ------------------------------------------------------------------------------------------
# output bias at the label prior
# ------------------------------------------------------------------------------------------

def test_prior_logits_by_hand_and_unseen_classes_stay_finite():
    from tf_scenes.training.init import prior_logits

    y = np.zeros((9, 3), np.float32)
    y[:4, 0] = 1  # class 0 in 4 of 9 clips, class 1 in all, class 2 never
    y[:, 1] = 1
    p = np.array([4.5 / 10, 9.5 / 10, 0.5 / 10])
    np.testing.assert_allclose(prior_logits(y), np.log(p / (1 - p)), rtol=1e-12)
    assert np.all(np.isfinite(prior_logits(y)))


def test_set_prior_bias_makes_a_sigmoid_head_start_at_the_prior():
    import keras

    from tf_scenes.errors import ConfigError
    from tf_scenes.training.init import set_prior_bias

    rng = np.random.default_rng(0)
    y = (rng.random((200, 5)) < np.array([0.02, 0.05, 0.1, 0.3, 0.6])).astype(np.float32)
    head = keras.layers.Dense(5, kernel_initializer="zeros", activation="sigmoid")
    head.build((None, 4))
    set_prior_bias(head, y)
    out = np.asarray(head(np.ones((1, 4), np.float32)))[0]
    np.testing.assert_allclose(out, (y.sum(0) + 0.5) / 201, rtol=1e-5)
    wrong = keras.layers.Dense(3)
    wrong.build((None, 4))
    with pytest.raises(ConfigError, match="bias shape"):
        set_prior_bias(wrong, y)
    no_bias = keras.layers.Dense(5, use_bias=False)
    no_bias.build((None, 4))
    with pytest.raises(ConfigError, match="no bias"):
        set_prior_bias(no_bias, y)


def test_set_prior_bias_shared_gives_every_unit_the_mean_prior():
    import keras

    from tf_scenes.training.init import prior_logits, set_prior_bias

    y = np.zeros((10, 4), np.float32)
    y[:2, 0] = 1
    y[:6, 3] = 1  # 8 positives in 40 label cells
    layer = keras.layers.Dense(7)  # units are frames, not classes
    layer.build((None, 7))
    values = set_prior_bias(layer, y, shared=True)
    expected = prior_logits(y.reshape(-1, 1))[0]
    np.testing.assert_allclose(np.asarray(layer.bias), np.full(7, expected), rtol=1e-6)
    np.testing.assert_allclose(1 / (1 + np.exp(-expected)), 8.5 / 41)
    assert values.shape == (7,)


def _pooled_sigmoid_model(seed: int = 0):
    """(batch, 50 cells, 4 features) -> per-cell sigmoid of 3 classes -> max over the cells."""
    import keras

    keras.utils.set_random_seed(seed)
    x = keras.Input((50, 4))
    cells = keras.layers.Dense(3, activation="sigmoid", kernel_initializer="he_uniform", name="cls")(x)
    return keras.Model(x, keras.layers.GlobalMaxPooling1D()(cells))


def test_calibrate_bias_starts_a_pooled_output_at_its_target():
    """The max of 50 sigmoid cells starts far above the cells' prior; after calibration the mean
    pooled output over the batch equals each class's target, and the returned offsets are what
    was added to the bias."""
    from tf_scenes.training.init import calibrate_bias, prior_logits

    model = _pooled_sigmoid_model()
    x = np.random.default_rng(1).standard_normal((16, 50, 4)).astype(np.float32)
    y = np.zeros((100, 3), np.float32)
    y[:5, 0], y[:20, 1], y[:50, 2] = 1, 1, 1
    target = (y.sum(0) + 0.5) / 101
    layer = model.get_layer("cls")
    layer.bias.assign(prior_logits(y).astype(np.float32))

    def outputs():
        return np.asarray(model(x), np.float64).mean(axis=0)

    assert np.all(outputs() - target > 0.1)  # the prior logit per cell is not the prior of the max
    offsets = calibrate_bias(layer, outputs, target)
    np.testing.assert_allclose(outputs(), target, atol=1e-3)
    np.testing.assert_allclose(np.asarray(layer.bias), prior_logits(y) + offsets, atol=1e-5)
    assert np.all(offsets < 0)


def test_calibrate_bias_clamps_unreachable_targets_and_rejects_bad_layers():
    import keras

    from tf_scenes.errors import ConfigError
    from tf_scenes.training.init import calibrate_bias

    model = _pooled_sigmoid_model()
    x = np.random.default_rng(1).standard_normal((4, 50, 4)).astype(np.float32)
    layer = model.get_layer("cls")
    offsets = calibrate_bias(layer, lambda: np.asarray(model(x)).mean(0), np.array([0.0, 1.0, 0.3]),
                             low=-5.0, high=5.0, iters=12)
    assert offsets[0] == pytest.approx(-5.0, abs=1e-2) and offsets[1] == pytest.approx(5.0, abs=1e-2)
    assert -5 < offsets[2] < 5
    with pytest.raises(ConfigError, match="targets shape"):
        calibrate_bias(layer, lambda: np.zeros(3), np.zeros(2))
    no_bias = keras.layers.Dense(3, use_bias=False)
    no_bias.build((None, 4))
    with pytest.raises(ConfigError, match="no bias"):
        calibrate_bias(no_bias, lambda: np.zeros(3), np.zeros(3))


def test_training_mode_call_uses_batch_statistics_and_leaves_the_moving_ones():
    import keras

    from tf_scenes.training.init import training_mode_call

    keras.utils.set_random_seed(0)
    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.BatchNormalization(name="bn")(inp))
    x = (np.arange(12, dtype=np.float32).reshape(4, 3) * 3 + 7)
    before = [np.asarray(v).copy() for v in model.non_trainable_variables]
    y = np.asarray(training_mode_call(model, x))
    np.testing.assert_allclose(y.mean(0), np.zeros(3), atol=1e-5)  # batch-normalised: mean 0 per feature
    for v, b in zip(model.non_trainable_variables, before):
        np.testing.assert_array_equal(np.asarray(v), b)
    # inference mode would have used the moving statistics (0, 1): the raw mean, far from 0
    assert np.all(np.asarray(model(x, training=False)).mean(0) > 10)
