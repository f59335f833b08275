"""CPU training is bit-reproducible across processes for models with parallel branches.

Op determinism alone does not give this: the two-stage ResNet's two frequency paths run
concurrently under TensorFlow's default inter-op pool and their weight gradients then differ in the
last bits from process to process (measured: the script below without `serial_inter_op()` gave
three different weight hashes in three processes).  `serial_inter_op()`, called by the training
commands, fixes it.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import hashlib
import numpy as np
from tf_scenes.training.trainer import serial_inter_op, set_determinism
assert serial_inter_op()  # as the training commands do, before TensorFlow's runtime starts
import keras, tensorflow as tf
from tf_scenes.two_stage.model import TwoStageModelConfig, build_two_stage_model
set_determinism(5)
print("inter_op", tf.config.threading.get_inter_op_parallelism_threads())
m = build_two_stage_model(TwoStageModelConfig(arch="resnet", num_classes=10, width=0.125))
m.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="categorical_crossentropy")
rng = np.random.default_rng(0)
x = rng.standard_normal((32, 120, 128, 3)).astype("float32")
y = keras.utils.to_categorical(rng.integers(0, 10, 32), 10)
for _ in range(3):
    m.train_on_batch(x, y)
print("weights", hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in m.get_weights())).hexdigest())
"""


def _train() -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_NUM_INTEROP_THREADS"}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if line.startswith(("inter_op", "weights")))
    return lines["inter_op"], lines["weights"]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: no concurrent branches")
def test_resnet_training_is_bit_identical_across_processes_with_serial_inter_op():
    runs = [_train() for _ in range(3)]
    assert all(inter == "1" for inter, _ in runs)
    assert len({w for _, w in runs}) == 1, runs
