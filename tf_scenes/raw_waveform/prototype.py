"""Prototype loss on coarse classes and the multi-task trainer (Abrol & Sharma 2020).

Each coarse class G owns a learnable prototype z_G (n_coarse x dim).  For an embedding r of coarse
class G the loss is

    l(r, G) = ||r - z_G||^2 + sum_{G' != G} max(0, m - ||r - z_G'||^2),   m = 1,

i.e. pull r to its own prototype and push it out of a squared-distance margin m around every other
prototype.  Averaging: the per-example loss is *summed* over the other prototypes G' and *averaged*
over the examples of the mini-batch (an unweighted mean; sample weights are not applied).

    model = build_raw_waveform(cfg)
    trainer = attach_hierarchical_losses(model, cfg)     # compiled: CE(coarse) + CE(fine) + prototype
    trainer.fit(ds)                                       # ds yields (waveform, {"coarse": int, "fine": int})
    model.save("raw_waveform.keras")                      # the backbone is the inference model
"""

from __future__ import annotations

import keras
from keras import ops

from ..training.distribute import replica_share

_PKG = "tf_scenes.prototype"


@keras.saving.register_keras_serializable(package=_PKG)
class PrototypeLoss(keras.layers.Layer):
    """Learnable class prototypes and the pull/push prototype loss.

    call(embedding (batch, dim), labels (batch,) int class ids or (batch, n_classes) one-hot)
    -> scalar mean loss over the batch.  `per_example` gives the (batch,) losses.
    """

    def __init__(self, n_classes: int, dim: int, margin: float = 1.0, initializer="random_normal", **kwargs):
        super().__init__(**kwargs)
        if n_classes < 2:
            raise ValueError(f"PrototypeLoss needs at least 2 classes, got {n_classes}")
        self.n_classes, self.dim, self.margin = int(n_classes), int(dim), float(margin)
        self.initializer = keras.initializers.get(initializer)
        self.prototypes = self.add_weight(name="prototypes", shape=(self.n_classes, self.dim),
                                          initializer=self.initializer)

    def squared_distances(self, embedding):
        diff = embedding[:, None, :] - ops.cast(self.prototypes, embedding.dtype)[None]  # (batch, classes, dim)
        return ops.sum(ops.square(diff), axis=-1)  # (batch, classes)

    def per_example(self, embedding, labels):
        embedding = ops.convert_to_tensor(embedding)
        labels = ops.convert_to_tensor(labels)
        if len(labels.shape) == 2:
            onehot = ops.cast(labels, embedding.dtype)
        else:
            onehot = ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), self.n_classes, dtype=embedding.dtype)
        d2 = self.squared_distances(embedding)
        pull = ops.sum(onehot * d2, axis=-1)
        push = ops.sum((1.0 - onehot) * ops.relu(self.margin - d2), axis=-1)
        return pull + push  # (batch,)

    def call(self, embedding, labels):
        return ops.mean(self.per_example(embedding, labels))

    def compute_output_spec(self, embedding, labels):
        return keras.KerasTensor((), dtype=embedding.dtype)

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes, "dim": self.dim, "margin": self.margin,
                "initializer": keras.initializers.serialize(self.initializer)}


@keras.saving.register_keras_serializable(package=_PKG)
class HierarchicalTrainer(keras.Model):
    """Wraps a raw-waveform backbone; loss = compiled CE losses + prototype_weight * prototype loss.

    The backbone's dict output must contain "embedding"; the targets are a dict with int labels
    {"coarse": (batch,), "fine": (batch,)} (keys for heads the backbone lacks are ignored by the CE
    terms; "coarse" is needed whenever prototype_weight > 0).  Regularisation losses of the backbone
    (orthogonal conv regulariser) are added by Keras.  Works with the default train/test steps, so
    fit / evaluate / callbacks behave as usual; the prototype term is logged as "prototype_loss".
    """

    def __init__(self, backbone: keras.Model, n_coarse: int, prototype_weight: float = 1.0,
                 margin: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.n_coarse = int(n_coarse)
        self.prototype_weight = float(prototype_weight)
        self.margin = float(margin)
        dim = backbone.output["embedding"].shape[-1]
        self.prototype_loss = PrototypeLoss(self.n_coarse, dim, margin=self.margin, name="prototypes")
        self.prototype_tracker = keras.metrics.Mean(name="prototype_loss")
        # Everything is built here (functional backbone, prototypes): mark it so weights can be
        # loaded into a fresh trainer when a run resumes.
        self.built = True

    @property
    def head_names(self) -> tuple[str, ...]:
        return tuple(k for k in ("coarse", "fine") if k in self.backbone.output)

    def build(self, input_shape=None):
        # The backbone is a built functional model and the prototypes are created in __init__.
        self.built = True

    def call(self, x, training=False):
        return self.backbone(x, training=training)

    def _heads(self, y, y_pred):
        if not isinstance(y, dict):
            raise ValueError(f"HierarchicalTrainer expects targets as a dict with keys {list(self.head_names)}, "
                             f"got {type(y).__name__}")
        missing = [k for k in self.head_names if k not in y]
        if missing:
            raise ValueError(f"targets lack {missing}; the model's heads are {list(self.head_names)}")
        return {k: y[k] for k in self.head_names}, {k: y_pred[k] for k in self.head_names}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        heads_y, heads_pred = self._heads(y, y_pred)
        loss = super().compute_loss(x, heads_y, heads_pred, sample_weight, training)
        if self.prototype_weight > 0:
            if "coarse" not in y:
                raise ValueError("the prototype loss needs coarse labels: targets lack 'coarse'")
            proto = self.prototype_loss(y_pred["embedding"], y["coarse"])
            self.prototype_tracker.update_state(proto)
            # Keras' compute_loss already holds this replica's share of the CE terms: add the
            # prototype term the same way (replica_share: identity without a strategy)
            loss = loss + ops.cast(self.prototype_weight, loss.dtype) * replica_share(ops.cast(proto, loss.dtype))
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        heads_y, heads_pred = self._heads(y, y_pred)
        return super().compute_metrics(x, heads_y, heads_pred, sample_weight)

    def get_config(self):
        return {**super().get_config(), "backbone": keras.saving.serialize_keras_object(self.backbone),
                "n_coarse": self.n_coarse, "prototype_weight": self.prototype_weight, "margin": self.margin}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"], custom_objects=custom_objects)
        return cls(**config)


def attach_hierarchical_losses(backbone: keras.Model, cfg=None, *, optimizer=None, n_coarse: int | None = None,
                               prototype_weight: float | None = None, margin: float | None = None,
                               coarse_weight: float | None = None, fine_weight: float | None = None,
                               metrics: bool = True, jit_compile="auto") -> HierarchicalTrainer:
    """Wrap `backbone` in a compiled HierarchicalTrainer (multi-task CE + prototype loss, Adam 1e-3).

    Settings come from `cfg` (a RawWaveformConfig: n_coarse, prototype_weight, prototype_margin,
    coarse_loss_weight, fine_loss_weight) unless given as keywords.  The CE losses are sparse
    categorical cross-entropies on the heads' probabilities; metrics are top-1 / top-3 accuracy
    per head, logged as "coarse_top1", "fine_top3", ... (with a single head Keras logs its CE
    as "loss" only).
    """

    def pick(value, attr, default):
        if value is not None:
            return value
        return getattr(cfg, attr) if cfg is not None else default

    n_coarse = pick(n_coarse, "n_coarse", None)
    if n_coarse is None:
        raise ValueError("attach_hierarchical_losses needs cfg or n_coarse")
    trainer = HierarchicalTrainer(backbone, n_coarse,
                                  prototype_weight=pick(prototype_weight, "prototype_weight", 1.0),
                                  margin=pick(margin, "prototype_margin", 1.0), name="hierarchical_trainer")
    weights = {"coarse": pick(coarse_weight, "coarse_loss_weight", 1.0),
               "fine": pick(fine_weight, "fine_loss_weight", 1.0)}
    heads = trainer.head_names
    # Keras prefixes metric names with the output name only when there are several outputs.
    prefix = f"{heads[0]}_" if len(heads) == 1 else ""
    trainer.compile(
        optimizer=optimizer if optimizer is not None else keras.optimizers.Adam(1e-3),
        loss={h: keras.losses.SparseCategoricalCrossentropy(name=f"{h}_ce") for h in heads},
        loss_weights={h: float(weights[h]) for h in heads},
        metrics={h: [keras.metrics.SparseCategoricalAccuracy(name=f"{prefix}top1"),
                     keras.metrics.SparseTopKCategoricalAccuracy(k=3, name=f"{prefix}top3")] for h in heads}
        if metrics else None,
        jit_compile=jit_compile,
    )
    return trainer
