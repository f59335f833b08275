"""Distribution strategies, mixed precision and logical CPU devices for tests.

    strategy = get_strategy("mirrored")          # all local GPUs
    policy = configure_precision("auto")          # mixed_float16 on GPU, float32 on CPU
    with strategy.scope():
        model = build(...); model.compile(...)    # variables are created under the strategy

Batch sizes given to the datasets are GLOBAL batch sizes: a MirroredStrategy over R replicas
splits each batch into R per-replica batches of ``batch / R`` examples, and Keras averages the
loss over the global batch, so the update equals the single-device update (checked by
tests/test_distribute.py).  Caveat: ``BatchNormalization`` normalises each replica's slice with
that slice's statistics unless it is built with ``synchronized=True`` (:func:`sync_batch_norm`).

Several machines (``"multi_worker"``, docs/distributed.md): every worker runs the same program with
its own ``TF_CONFIG``; the strategy must exist before TensorFlow runs its first op (the
``tf-scenes`` training commands create it first thing when ``TF_CONFIG`` is set), and every worker
reads its own part of each global batch (:func:`shard_by_data`, applied by ``fit``).
"""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

from ..errors import ConfigError

log = logging.getLogger(__name__)

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu", "one_device")
PRECISION_POLICIES = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
JIT_SETTINGS = ("auto", "on", "off")


def get_strategy(name: str = "default", *, devices=None, tpu: str | None = None) -> tf.distribute.Strategy:
    """Return a ``tf.distribute`` strategy by name.

    - ``"default"``: the default (no-op) strategy of the current context.
    - ``"mirrored"``: ``MirroredStrategy`` over ``devices`` (default: all local GPUs, else the CPU).
    - ``"multi_worker"``: ``MultiWorkerMirroredStrategy``; the cluster comes from the ``TF_CONFIG``
      environment variable (without it, a single local worker).
    - ``"tpu"``: ``TPUStrategy`` via ``TPUClusterResolver(tpu)`` (``tpu``: name or grpc address;
      None = the environment's TPU, e.g. on a TPU VM or Colab).
    - ``"one_device"``: ``OneDeviceStrategy`` on ``devices`` (a device string; default the first GPU,
      else the CPU).

    A strategy is made once per process and settings, then reused: the studies train many models
    in one process, and a second MirroredStrategy over the same devices reuses the collective
    instance keys of the first, whose cached shapes then clash ("Shape mismatch in the collective
    instance"); a multi-worker or TPU strategy can only be initialised once anyway.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"unknown distribution strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "default":
        if _MULTI_WORKER_KEY in _STRATEGIES:
            log.warning("this process joined the multi-worker cluster of TF_CONFIG, but the strategy asked for is "
                        "%r: each worker trains alone (use --set train.strategy=multi_worker)", name)
        return tf.distribute.get_strategy()
    key = (name, tuple(devices) if isinstance(devices, (list, tuple)) else devices, tpu)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _make_strategy(name, devices, tpu)
    return _STRATEGIES[key]


_STRATEGIES: dict = {}
_MULTI_WORKER_KEY = ("multi_worker", None, None)


class KerasMultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """``MultiWorkerMirroredStrategy`` whose ``reduce`` accepts what Keras 3's TensorFlow trainer
    passes it on two or more workers.

    Keras 3.15's ``fit`` calls ``strategy.reduce("MEAN", first_batch, axis=None)`` on the whole
    ``(x, y)`` structure to build the model, and ``strategy.reduce("MEAN", log, axis=0)`` on
    every scalar it logs; TensorFlow's reduce takes one tensor and needs an axis that exists, so
    ``fit`` stops with "Attempt to convert a value (PerReplica...) to a Tensor" or "Invalid
    reduction dimension 0 for input with 0 dimensions".  Here a structure is reduced leaf by leaf
    and a scalar is reduced across the replicas only (there is no batch axis to average over).
    Everything else is TensorFlow's strategy unchanged.
    """

    def reduce(self, reduce_op, value, axis=None):
        parent = super()

        def one(v):
            if v is None:
                return None
            local = v.values[0] if isinstance(v, tf.distribute.DistributedValues) else v
            rank = getattr(getattr(local, "shape", None), "rank", None)
            return parent.reduce(reduce_op, v, None if rank == 0 else axis)

        return tf.nest.map_structure(one, value)


def _make_strategy(name: str, devices, tpu):
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "one_device":
        if devices is None:
            devices = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
        elif not isinstance(devices, str):
            raise ConfigError(f"one_device strategy takes one device string, got {devices!r}")
        return tf.distribute.OneDeviceStrategy(devices)
    if name == "multi_worker":
        raw = os.environ.get("TF_CONFIG")
        if raw:
            try:
                cfg = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ConfigError(f"TF_CONFIG is not valid JSON: {e}") from e
            if "cluster" not in cfg or "task" not in cfg:
                raise ConfigError("TF_CONFIG must have 'cluster' and 'task' entries "
                                  "(see tf.distribute.MultiWorkerMirroredStrategy)")
        else:
            log.warning("TF_CONFIG is not set: MultiWorkerMirroredStrategy runs a single local worker")
        try:
            strategy = KerasMultiWorkerStrategy()
        except RuntimeError as e:
            if "program startup" not in str(e):
                raise
            raise ConfigError("the multi-worker strategy must be created before TensorFlow runs its first op: "
                              "train through the tf-scenes commands (they create it first thing when TF_CONFIG is "
                              "set) or call get_strategy('multi_worker') at the start of the program") from e
        resolver = strategy.cluster_resolver
        log.info("multi-worker strategy: this is %s %s; %d replica(s) in sync", resolver.task_type,
                 resolver.task_id, strategy.num_replicas_in_sync)
        return strategy
    # tpu
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise ConfigError(f"cannot connect to a TPU (tpu={tpu!r}): {e}") from e
    return tf.distribute.TPUStrategy(resolver)


def start_multi_worker_from_env() -> tf.distribute.Strategy | None:
    """Join the cluster described by ``TF_CONFIG`` now, if that variable is set; else do nothing.

    ``MultiWorkerMirroredStrategy`` can only be created before TensorFlow runs its first op
    (it configures the collective ops of the runtime), while the studies choose their strategy
    after computing features.  The training commands call this first thing, so the studies'
    later ``get_strategy("multi_worker")`` returns this strategy.  Blocks until every worker of
    the cluster has started.
    """
    if not os.environ.get("TF_CONFIG"):
        return None
    return get_strategy("multi_worker")


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with tf.data's DATA auto-shard policy: under several workers, worker i keeps
    the i-th part of every global batch.

    Why DATA: the training datasets here (:func:`pipelines.train_data.make_train_dataset`) read
    rows of in-memory or memory-mapped arrays through ``tf.numpy_function``; there are no files
    to hand out, so FILE sharding does not apply (AUTO would try it, log a warning and fall
    back to DATA).  With DATA every worker runs the same seeded pipeline (same order, crops,
    SpecAugment, mixup pairs and lambdas over the whole global batch) and keeps its own slice,
    so N workers take exactly the step of one worker on the global batch (tests/test_distribute.py).
    The cost: every worker computes the input of the whole global batch and drops the other
    workers' slices.  A per-worker pipeline (``distribute_datasets_from_function``) would read
    only its own examples, but mixup pairs and shuffles would then stay inside each worker's
    slice, so results would depend on the number of workers.  The policy is a no-op for a
    single worker.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def sync_batch_norm(model) -> int:
    """Make every ``BatchNormalization`` layer of ``model`` (nested models included) use the
    statistics of the global batch (``synchronized=True``) and return how many it changed.

    Under a distribution strategy each replica otherwise normalises its own slice with that
    slice's mean and variance, so N replicas do not train the model that one device trains on
    the global batch.  Synchronised statistics cost one all-reduce per layer and step.  Call
    before the first training step (the setting is read when the step is traced).  With one
    replica the values are those of plain BatchNormalization up to float32 rounding (Keras
    computes them as E[x^2] - E[x]^2).
    """
    import keras

    changed = 0
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized:
            layer.synchronized = True
            changed += 1
    return changed


def _all_layers(model):
    seen = set()
    stack = [model]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        stack.extend(getattr(obj, "layers", None) or [])  # sub-layers of models and of composite layers


def configure_precision(policy: str = "auto") -> str:
    """Set Keras' global dtype policy and return its name.

    ``"auto"``: ``mixed_float16`` when a GPU is visible, else ``float32``.  Call before building
    models.  Under ``mixed_float16`` Keras' ``compile`` wraps the optimizer in a
    ``LossScaleOptimizer``; keep the model's last activation (softmax/sigmoid) in float32.
    """
    import keras

    if policy not in PRECISION_POLICIES:
        raise ConfigError(f"unknown precision policy {policy!r}; choose one of {', '.join(PRECISION_POLICIES)}")
    if policy == "auto":
        policy = "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def replica_share(value):
    """A loss computed on one replica's batch, divided by the number of replicas in sync.

    Under a distribution strategy the gradients of the replicas are summed; Keras' own
    ``compute_loss`` scales its losses this way, and a custom train step or an added loss term must
    too, or it counts N times.  The identity outside a strategy / with one replica."""
    n = tf.distribute.get_strategy().num_replicas_in_sync
    return value if n == 1 else value * tf.cast(1.0 / n, value.dtype)


def jit_compile_arg(setting: str = "auto"):
    """``train.jit_compile`` -> Keras' ``compile(jit_compile=...)``.

    ``"auto"``: Keras' rule: XLA on a GPU / TPU, but not on CPU-only machines, under a distribution
    strategy, or with op determinism enabled (the studies enable it for reproducible runs); on 2
    CPU cores XLA made the two-stage training steps slower (bench/results.md).  ``"on"`` / ``"off"``
    force it.
    """
    if setting not in JIT_SETTINGS:
        raise ConfigError(f"unknown jit_compile setting {setting!r}; choose one of {', '.join(JIT_SETTINGS)}")
    return {"auto": "auto", "on": True, "off": False}[setting]


def split_cpu(n: int) -> list[str]:
    """Split the first physical CPU into ``n`` logical CPU devices and return their names.

    For testing distribution on a machine without accelerators.  Must run before TensorFlow
    initialises its devices (before any op runs or any device is listed by ``list_logical_devices``),
    i.e. at the very start of a fresh process.
    """
    if n < 1:
        raise ConfigError(f"split_cpu needs n >= 1, got {n}")
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as e:
        raise ConfigError(f"cannot split the CPU into {n} logical devices: TensorFlow is already "
                          f"initialised in this process (call split_cpu first, in a fresh process): {e}") from e
    return [d.name for d in tf.config.list_logical_devices("CPU")]
