"""Joint multi-task training of DcaseNet: one batch per active task per step, summed losses.

Jung et al. 2021, Sec. 3.3 (and the authors' ``train_joint_3task``): every iteration draws one
batch of each active task, runs that task's forward pass only (``model(x, mode=[task])``: here
the per-task models of :func:`tf_scenes.dcasenet.model.build_task_models`, which share one set
of layers), adds the task losses

* ASC: softmax cross-entropy on the scene logits,
* TAG: binary cross-entropy with logits, averaged over the 80 classes,
* SED: binary cross-entropy on the 100 ms activity probabilities, prediction and label trimmed
  to the shorter length (:func:`tf_scenes.dcasenet.model.sed_loss`),

and takes one optimiser step on the sum.  Any non-empty subset of tasks can be active.  The
network always holds every head (so a checkpoint of any task subset loads into any other run of
the same version, e.g. for fine-tuning); gradients reach only the variables the active tasks use.

    trainer = JointTrainer(VARIANTS["v3"], tasks=("asc", "sed"))
    trainer.compile(optimizer=keras.optimizers.Adam(CosineWarmRestarts(...)))
    fit(trainer, lambda k: joint_dataset({...}), ...)   # tf_scenes.training.trainer.fit
    trainer.net                                        # the plain DcaseNet (features -> dict)
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from tf_scenes.errors import ConfigError
from tf_scenes.dcasenet.model import OUTPUT_KEYS, DcaseNetConfig, build_task_models, sed_loss, task_models
from tf_scenes.training.distribute import replica_share

TASKS = ("asc", "tag", "sed")


def check_tasks(tasks) -> tuple[str, ...]:
    """Tasks in canonical order (asc, tag, sed); ConfigError for an empty or unknown set."""
    tasks = tuple(tasks)
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks or len(set(tasks)) != len(tasks):
        raise ConfigError(f"tasks must be a non-empty subset of {list(TASKS)} without repeats, got {list(tasks)}")
    return tuple(t for t in TASKS if t in tasks)


def task_loss(task: str, y_true, y_pred):
    """Mean loss of one task's batch (``y_pred``: the task model's output tensor)."""
    y_pred = ops.cast(y_pred, "float32")
    y_true = ops.cast(y_true, "float32")
    if task == "asc":
        return ops.mean(keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=True))
    if task == "tag":
        return ops.mean(keras.losses.binary_crossentropy(y_true, y_pred, from_logits=True))
    if task == "sed":
        return sed_loss(y_true, y_pred)
    raise ConfigError(f"unknown task {task!r}")


def summed_task_gradients(tape, task_losses, variables) -> list:
    """Gradients of the sum of ``task_losses`` w.r.t. ``variables``, summed over tasks in a fixed order.

    One ``tape.gradient`` of the summed loss would add the tasks' contributions to a shared
    variable with one AddN op per variable, and TensorFlow's CPU AddN accumulates into whichever
    input buffer it can reuse, moved to the front of the sum: with three tasks the summation
    order, hence the last bits, can depend on which branch finished first.  Measured: the
    DcaseNet-v3 ASC+TAG+SED quick run gave 3 different first-epoch losses in 4 reruns
    (2.07663 / 2.07834 / 2.08132; op determinism on, one inter-op thread, also with oneDNN off
    or one intra-op thread; the batches were bit-identical), and with this function 4 equal ones
    (2.07811; the commands are in docs/reliability.md).
    With two tasks AddN was already exact (a + b == b + a), and so is this: one add.
    Here each task's gradients come from their own ``tape.gradient`` (``tape`` persistent when
    there is more than one loss) and three or more are summed by a reduction over a stacked axis,
    which adds in index order.  None (a variable no task uses) stays None.
    """
    per_task = [tape.gradient(loss, variables) for loss in task_losses]
    out = []
    for parts in zip(*per_task):
        parts = [g for g in parts if g is not None]
        if not parts:
            out.append(None)
        elif len(parts) == 1:
            out.append(parts[0])
        elif len(parts) == 2:
            out.append(parts[0] + parts[1])
        else:
            out.append(tf.reduce_sum(tf.stack(parts), axis=0))
    return out


@keras.saving.register_keras_serializable(package="tf_scenes")
class JointTrainer(keras.Model):
    """DcaseNet with a multi-task ``train_step`` (module docstring).

    Args:
      model_cfg: the DcaseNet config (version, width, ...).
      tasks: the active tasks; each training element is ``{task: (x, y)}`` for these tasks.
      net: the network, already built from ``model_cfg`` (e.g. by the registry); None: built here.
    """

    def __init__(self, model_cfg: DcaseNetConfig, tasks=TASKS, net=None, **kwargs):
        kwargs.setdefault("name", f"dcasenet_{model_cfg.version}_joint")
        super().__init__(**kwargs)
        self.model_cfg = model_cfg
        self.tasks = check_tasks(tasks)
        models = build_task_models(model_cfg) if net is None else task_models(net)
        self.net = models["joint"]
        self.task_models = {t: models[t] for t in self.tasks}
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", *(f"loss_{t}" for t in self.tasks))}
        # Variables the active tasks use, in the order of the network's (stable) variable list.
        used = {id(v) for t in self.tasks for v in self.task_models[t].trainable_variables}
        self._train_vars = [v for v in self.net.trainable_variables if id(v) in used]
        self.built = True

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, x, training=False):
        return self.net(x, training=training)

    def task_losses(self, batches: dict, training: bool = False) -> dict:
        """``{task: mean loss}`` of one batch per active task (``batches[task] = (x, y)``)."""
        missing = [t for t in self.tasks if t not in batches]
        if missing:
            raise ValueError(f"the batch has no data for active task(s) {missing}")
        out = {}
        for t in self.tasks:
            x, y = batches[t]
            pred = self.task_models[t](x, training=training)[OUTPUT_KEYS[t]]
            out[t] = task_loss(t, y, pred)
        return out

    def train_step(self, data):
        with tf.GradientTape(persistent=len(self.tasks) > 1) as tape:
            losses = self.task_losses(data, training=True)
            total = ops.sum(ops.stack([losses[t] for t in self.tasks]))
            # per-replica share under a distribution strategy (the replicas' gradients are summed),
            # then the loss scale of a LossScaleOptimizer (mixed_float16; identity otherwise)
            scaled = {t: self.optimizer.scale_loss(replica_share(losses[t])) for t in self.tasks}
        grads = summed_task_gradients(tape, [scaled[t] for t in self.tasks], self._train_vars)
        del tape
        self.optimizer.apply_gradients(zip(grads, self._train_vars))
        self.trackers["loss"].update_state(total)
        for t in self.tasks:
            self.trackers[f"loss_{t}"].update_state(losses[t])
        return {name: m.result() for name, m in self.trackers.items()}

    def get_config(self):
        from tf_scenes.config import to_dict

        return {"model_cfg": to_dict(self.model_cfg), "tasks": list(self.tasks), "name": self.name}

    @classmethod
    def from_config(cls, config):
        from tf_scenes.config import from_dict

        return cls(from_dict(DcaseNetConfig, config["model_cfg"]), tuple(config["tasks"]), name=config.get("name"))
