"""tf_scenes.training.distribute: strategies, precision policies, logical CPU devices, several workers.

The MirroredStrategy and multi-worker checks run in subprocesses: logical devices and a worker's
cluster must be configured before TensorFlow initialises, which has long happened in the pytest
process.  Their models, data and comparisons live in tests/distribute_cases.py, shared by both.

Tolerance of the distributed-vs-one-device comparisons: the runs differ only in the order of float32
sums (each replica sums its slice, the all-reduce adds the slices; synchronised BatchNorm computes
E[x^2] - E[x]^2 from summed parts), whose rounding the following layers and steps amplify.  Measured
after 3 steps (max abs over all weights): two workers vs one: two-stage 1.2e-6, DcaseNet 3.2e-6,
raw-waveform 8.8e-7, weak-SED 7.2e-7, toy 3.7e-9 (1 step); the one-device run against itself with
each batch's two halves swapped (same maths, another summation order): 1.5e-6, 2.4e-6, 3.3e-7,
7.7e-7, 7e-9.  The families' tolerance, 2e-5, is ~10x that floor; the toy models' is 1e-5 (the
prototype trainer at lr 0.5 moves weights by 9 in 2 steps: 1.9e-6 apart under MirroredStrategy).  Every check
also asserts that the trainable weights moved by 100x the tolerance, so a distributed step that
differs for a reason (a loss term counted twice, per-worker BatchNorm statistics, a worker reading
the wrong examples) cannot pass.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import distribute_cases as dc
from tf_scenes.errors import ConfigError
from tf_scenes.training.distribute import (configure_precision, get_strategy, shard_by_data, split_cpu,
                                           sync_batch_norm)

REPO = Path(__file__).resolve().parent.parent
FAMILY_ATOL = 2e-5
TOY_ATOL = 1e-5


def _run_mirrored(out: Path, cases, *args, timeout=300):
    proc = subprocess.run([sys.executable, str(Path(dc.__file__)), "mirrored", str(out), *cases, *args], cwd=REPO,
                          env=dc.process_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {role: {c: dc.load_result(out / role / c) for c in cases} for role in ("default", "mirrored")}


# Two strategies, same global batch (8), same data and initial weights: 2 epochs of 2 steps with
# the project's fit() and make_train_dataset (mixup on), then a new model object resumes to epoch 3
# from the checkpoint (restore under the strategy).  No BatchNormalization.
def test_mirrored_over_two_logical_cpus_matches_default_strategy(tmp_path):
    res = _run_mirrored(tmp_path, ["toy"], "--steps", "2", "--epochs", "2", "--resume-to", "3")
    default, mirrored = res["default"]["toy"], res["mirrored"]["toy"]
    assert len(mirrored["devices"]) == 2 and all("CPU" in d for d in mirrored["devices"])
    assert default["replicas"] == 1 and mirrored["replicas"] == 2
    assert default["resumed"] and mirrored["resumed"]
    assert len(default["loss"]) == 3
    np.testing.assert_allclose(mirrored["loss"], default["loss"], rtol=0, atol=1e-5)
    assert len(default["weights"]) == len(mirrored["weights"]) == 6
    dc.assert_same_training(default, mirrored, atol=TOY_ATOL, label="toy")
    assert default["loss"][0] != default["loss"][2]


def test_get_strategy_by_name():
    assert get_strategy("default") is tf.distribute.get_strategy()
    one = get_strategy("one_device", devices="/cpu:0")
    assert isinstance(one, tf.distribute.OneDeviceStrategy) and one.num_replicas_in_sync == 1
    # made once per process and settings (a second MirroredStrategy would clash with the first's
    # collective instance keys: test_every_study_trains_under_mirrored_strategy)
    assert get_strategy("one_device", devices="/cpu:0") is one
    assert get_strategy("one_device", devices="/cpu:0") is not get_strategy("one_device")
    with pytest.raises(ConfigError, match="unknown distribution strategy 'horovod'.*mirrored"):
        get_strategy("horovod")
    with pytest.raises(ConfigError, match="one device string"):
        get_strategy("one_device", devices=["/cpu:0", "/cpu:1"])
    with pytest.raises(ConfigError, match="cannot connect to a TPU"):
        get_strategy("tpu")  # no TPU here: a clear error, not a traceback from the resolver


def test_multi_worker_rejects_bad_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG is not valid JSON"):
        get_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["localhost:1"]}}))
    with pytest.raises(ConfigError, match="'cluster' and 'task'"):
        get_strategy("multi_worker")


def test_configure_precision():
    try:
        expected = "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"
        assert configure_precision("auto") == expected
        assert keras.mixed_precision.global_policy().name == expected
        assert configure_precision("mixed_bfloat16") == "mixed_bfloat16"
        layer = keras.layers.Dense(2)
        assert layer.compute_dtype == "bfloat16" and layer.variable_dtype == "float32"
        with pytest.raises(ConfigError, match="unknown precision policy 'fp8'"):
            configure_precision("fp8")
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_split_cpu_after_initialisation_is_a_clear_error():
    _ = (tf.constant(1.0) + 1.0).numpy()  # TensorFlow is initialised in this process
    with pytest.raises(ConfigError, match="already initialised"):
        split_cpu(2)
    with pytest.raises(ConfigError, match="n >= 1"):
        split_cpu(0)


# The studies' own training steps under MirroredStrategy: the raw-waveform HierarchicalTrainer adds a
# prototype loss to Keras' (replica-scaled) CE losses, and the DcaseNet JointTrainer has its own
# train_step; both must give each replica its share of the loss, or the summed gradients count the
# added terms twice.  Toy backbones (tests/distribute_cases.py); 2 SGD steps from the same weights
# on the same global batches.
def test_custom_training_steps_give_each_replica_its_share_of_the_loss(tmp_path):
    res = _run_mirrored(tmp_path, ["toy_prototype", "toy_joint"], "--steps", "2")
    for case in ("toy_prototype", "toy_joint"):
        default, mirrored = res["default"][case], res["mirrored"][case]
        assert default["share"] == [1.0] and mirrored["share"] == [0.5, 0.5]
        assert default["replicas"] == 1 and mirrored["replicas"] == 2
        dc.assert_same_training(default, mirrored, atol=TOY_ATOL, label=case)


# ---------------------------------------------------------------------------------- two workers
# Two worker processes of one MultiWorkerMirroredStrategy cluster on 127.0.0.1 (TF_CONFIG with
# ports chosen by the test, CPU only), each followed in the same process by the default strategy
# (one worker) from the same initial weights on the same global batches.  Each worker keeps its
# half of every global batch (DATA sharding, tf_scenes.training.distribute.shard_by_data).


def _check_two_workers(res, case, atol):
    w0, w1 = res[0][case], res[1][case]
    assert w0["mw"]["replicas"] == w1["mw"]["replicas"] == 2 and w0["mw"]["task"] == 0 and w1["mw"]["task"] == 1
    assert w0["ref"]["replicas"] == 1
    # the reference is reproducible (both processes computed it) and the workers hold one model
    assert dc.max_abs_diff(w0["ref"]["weights"], w1["ref"]["weights"]) == 0.0
    assert dc.max_abs_diff(w0["mw"]["weights"], w1["mw"]["weights"]) == 0.0
    diff, moved = dc.assert_same_training(w0["ref"], w0["mw"], atol=atol, label=case)
    # the logged loss is the global batch's mean (each worker's mean, averaged across workers)
    np.testing.assert_allclose(w0["mw"]["loss"], w0["ref"]["loss"], rtol=1e-5)
    return diff, moved


def test_two_workers_one_step_matches_one_worker(tmp_path):
    """Keras' own train step through fit() and make_train_dataset (mixup): one step on two worker
    processes gives the weights of one step on one worker (fails without the multi-worker fixes:
    Keras' fit cannot reduce the first batch's structure or its scalar logs across workers)."""
    res = dc.run_two_workers(tmp_path, ["toy"], steps=1, timeout=240)
    _check_two_workers(res, "toy", TOY_ATOL)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["two_stage", "dcasenet_joint", "raw_waveform", "weak_sed"])
def test_two_workers_family_steps_match_one_worker(tmp_path, case):
    """Three steps of each family's trainer on two workers equal three steps on one: Keras' step on
    the two-stage ResNet (synchronised BatchNorm, L2, SpecAugment + crop + mixup input), the DcaseNet
    JointTrainer step (three task datasets zipped), the raw-waveform prototype-loss trainer and the
    2APAE with its BCE + reconstruction loss."""
    res = dc.run_two_workers(tmp_path, [case], steps=3, timeout=900)
    _check_two_workers(res, case, FAMILY_ATOL)


def test_multi_worker_strategy_after_tensorflow_started_is_a_clear_error(monkeypatch):
    _ = (tf.constant(1.0) + 1.0).numpy()  # TensorFlow is initialised in this process
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    with pytest.raises(ConfigError, match="before TensorFlow runs its first op"):
        get_strategy("multi_worker")


def test_fit_gives_keras_the_training_data_with_data_sharding(tmp_path):
    """fit() sets the DATA auto-shard policy on the training dataset (FILE does not apply to
    arrays; AUTO would warn and fall back), and shard_by_data leaves the elements unchanged."""
    from tf_scenes.training.trainer import fit

    ds = tf.data.Dataset.from_tensor_slices((np.arange(8, dtype=np.float32)[:, None], np.ones((8, 1), np.float32)))
    ds = ds.batch(4)
    assert ds.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.AUTO
    sharded = shard_by_data(ds)
    assert sharded.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA
    assert [b[0].numpy().ravel().tolist() for b in sharded] == [[0, 1, 2, 3], [4, 5, 6, 7]]

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    seen = []
    keras_fit = model.fit

    def spy(x, **kwargs):
        seen.append(x.options().experimental_distribute.auto_shard_policy)
        return keras_fit(x, **kwargs)

    model.fit = spy
    fit(model, lambda k: ds.repeat(2 - k), epochs=2, steps_per_epoch=2, run_dir=tmp_path, monitor="loss", mode="min",
        select="last", verbose=0, tensorboard=False)
    assert seen == [tf.data.experimental.AutoShardPolicy.DATA]


def test_sync_batch_norm_sets_every_layer_and_keeps_one_device_values():
    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.Input((5, 3)), keras.layers.BatchNormalization(name="bn_inner")], name="inner")
    inp = keras.Input((5, 3))
    h = keras.layers.BatchNormalization(name="bn_outer")(keras.layers.Dense(3)(inp))
    model = keras.Model(inp, inner(h))
    x = np.random.default_rng(0).standard_normal((4, 5, 3)).astype(np.float32) * 3.0 + 2.0
    plain = model(x, training=True).numpy()
    assert sync_batch_norm(model) == 2
    bns = [layer for layer in (model.get_layer("bn_outer"), inner.get_layer("bn_inner"))]
    assert all(layer.synchronized for layer in bns)
    assert sync_batch_norm(model) == 0  # already synchronised
    # one device: the same normalisation (Keras computes E[x^2] - E[x]^2: float32 rounding only)
    np.testing.assert_allclose(model(x, training=True).numpy(), plain, rtol=0, atol=1e-5)


STUDIES_SCRIPT = textwrap.dedent("""
    import sys
    from tf_scenes.training.distribute import split_cpu
    split_cpu(2)
    from tf_scenes.experiments.cli import main
    from tf_scenes.synth import generate
    root = sys.argv[1]
    for kind in ("asc", "tag", "sed", "remix", "esc50"):
        generate(kind, root + "/data", size="tiny", seed=0, progress=False)
    common = ["--set", "train.strategy=mirrored", "--set", "data.synthetic_dir=" + root + "/data"]
    for study in ("raw_waveform", "weak_sed", "dcasenet"):
        rc = main(["reproduce", study, "--profile", "tiny", "--out", root + "/" + study,
                   "--cache-dir", root + "/cache_" + study, *common])
        assert rc == 0, study
    print("RESULT ok")
""")


@pytest.mark.slow
def test_every_study_trains_under_mirrored_strategy(tmp_path):
    """`--set train.strategy=mirrored` over 2 logical CPU devices: each study's tiny profile runs end
    to end and writes its tables."""
    proc = subprocess.run([sys.executable, "-c", STUDIES_SCRIPT, str(tmp_path)], cwd=REPO, env=dc.process_env(),
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0 and "RESULT ok" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    for study, table in (("raw_waveform", "table2.json"), ("weak_sed", "table1.json"), ("dcasenet", "table2.json")):
        assert (tmp_path / study / table).exists(), study
        cfg = (tmp_path / study / "config.yaml").read_text()
        assert "strategy: mirrored" in cfg, study
