"""tf_scenes.training.distribute: strategies, precision policies, logical CPU devices.

The MirroredStrategy check runs in a subprocess: logical devices must be configured before
TensorFlow initialises, which has long happened in the pytest process.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_scenes.errors import ConfigError
from tf_scenes.training.distribute import configure_precision, get_strategy, split_cpu

REPO = Path(__file__).resolve().parent.parent

# Two strategies, same global batch (8), same data and initial weights: 2 epochs of 2 steps with
# the project's fit() and make_train_dataset (mixup on), then a new model object resumes to epoch 3
# from the checkpoint (restore under the strategy).  No BatchNormalization: unsynchronised BN
# normalises each replica's half batch with its own statistics, so it would legitimately differ.
SCRIPT = textwrap.dedent("""
    import json, sys, tempfile
    from tf_scenes.training.distribute import get_strategy, split_cpu
    devices = split_cpu(2)
    import keras, numpy as np, tensorflow as tf
    from tf_scenes.pipelines.train_data import make_train_dataset
    from tf_scenes.pipelines.transforms import Mixup
    from tf_scenes.training.trainer import fit

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 12, 8, 1)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 16)]

    def build():
        keras.utils.set_random_seed(0)
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

    def data(epochs):
        return lambda k: make_train_dataset(x, y, batch_size=8, seed=1, epochs=epochs, initial_epoch=k,
                                            mixup=Mixup(0.4))

    out = {"devices": devices}
    root = tempfile.mkdtemp()
    for name in ("default", "mirrored"):
        strategy = get_strategy(name, devices=devices if name == "mirrored" else None)
        runs = []
        for epochs in (2, 3):
            with strategy.scope():
                model = build()
            runs.append(fit(model, data(epochs), epochs=epochs, steps_per_epoch=2, run_dir=f"{root}/{name}",
                            monitor="loss", mode="min", select="last", verbose=0, tensorboard=False))
        out[name] = {"replicas": strategy.num_replicas_in_sync, "resumed": runs[1]["resumed"],
                     "loss": [r["loss"] for r in runs[1]["history"]],
                     "weights": [w.tolist() for w in model.get_weights()]}
    print("RESULT " + json.dumps(out))
""")


def test_mirrored_over_two_logical_cpus_matches_default_strategy():
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(lines[0][len("RESULT "):])
    assert len(res["devices"]) == 2 and all("CPU" in d for d in res["devices"])
    default, mirrored = res["default"], res["mirrored"]
    assert default["replicas"] == 1 and mirrored["replicas"] == 2
    assert default["resumed"] and mirrored["resumed"]
    assert len(default["loss"]) == 3
    np.testing.assert_allclose(mirrored["loss"], default["loss"], rtol=0, atol=1e-5)
    assert len(default["weights"]) == len(mirrored["weights"]) == 6
    for a, b in zip(default["weights"], mirrored["weights"]):
        np.testing.assert_allclose(np.array(b), np.array(a), rtol=0, atol=1e-5)
    # the step really moved the weights (the comparison is not between two untouched models)
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
# added terms twice.  Toy backbones without BatchNormalization (per-replica batch statistics would
# legitimately differ); 2 SGD steps from the same weights on the same global batches.
TRAINERS_SCRIPT = textwrap.dedent("""
    import json
    from tf_scenes.training.distribute import get_strategy, replica_share, split_cpu
    devices = split_cpu(2)
    import keras, numpy as np, tensorflow as tf
    from keras import ops
    from tf_scenes.raw_waveform.prototype import attach_hierarchical_losses

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 20)).astype(np.float32)
    coarse, fine = rng.integers(0, 3, 16), rng.integers(0, 5, 16)

    def backbone():
        keras.utils.set_random_seed(0)
        inp = keras.Input((20,))
        emb = keras.layers.Dense(4, name="emb")(keras.layers.Dense(8, activation="relu", name="h")(inp))
        return keras.Model(inp, {"embedding": emb,
                                 "coarse": keras.layers.Dense(3, activation="softmax", name="c")(emb),
                                 "fine": keras.layers.Dense(5, activation="softmax", name="f")(emb)})

    class Joint(keras.Model):  # the JointTrainer's step: summed task losses, replica share, scale_loss
        def __init__(self, net):
            super().__init__()
            self.net = net
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

    def ds():
        return tf.data.Dataset.from_tensor_slices((x, {"coarse": coarse, "fine": fine})).batch(8)

    out = {}
    for name in ("default", "mirrored"):
        strategy = get_strategy(name, devices=devices if name == "mirrored" else None)
        with strategy.scope():
            share = strategy.run(lambda: replica_share(tf.constant(1.0)))
            hier = attach_hierarchical_losses(backbone(), n_coarse=3, optimizer=keras.optimizers.SGD(0.5),
                                              metrics=False)
            joint = Joint(backbone())
            joint.compile(optimizer=keras.optimizers.SGD(0.5))
        hier.fit(ds(), epochs=1, verbose=0)
        joint.fit(ds(), epochs=1, verbose=0)
        out[name] = {"share": [float(v) for v in strategy.experimental_local_results(share)],
                     "hier": [w.tolist() for w in hier.get_weights()],
                     "joint": [w.tolist() for w in joint.get_weights()],
                     "start": [w.tolist() for w in backbone().get_weights()]}
    print("RESULT " + json.dumps(out))
""")


def test_custom_training_steps_give_each_replica_its_share_of_the_loss():
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", TRAINERS_SCRIPT], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(lines[0][len("RESULT "):])
    assert res["default"]["share"] == [1.0] and res["mirrored"]["share"] == [0.5, 0.5]
    for key in ("hier", "joint"):
        a, b = res["default"][key], res["mirrored"][key]
        assert len(a) == len(b) > 0
        for u, v in zip(a, b):
            np.testing.assert_allclose(np.array(v), np.array(u), rtol=0, atol=1e-5, err_msg=key)
        # the steps moved the weights
        assert any(not np.allclose(np.array(u), np.array(s)) for u, s in zip(a, res["default"]["start"]))


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
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", STUDIES_SCRIPT, str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0 and "RESULT ok" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    for study, table in (("raw_waveform", "table2.json"), ("weak_sed", "table1.json"), ("dcasenet", "table2.json")):
        assert (tmp_path / study / table).exists(), study
        cfg = (tmp_path / study / "config.yaml").read_text()
        assert "strategy: mirrored" in cfg, study
