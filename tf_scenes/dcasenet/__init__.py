"""DcaseNet v1 / v2 / v3 (Jung et al., "DcaseNet: an integrated pretrained deep neural network for
detecting and classifying acoustic scenes and events", ICASSP 2021): joint ASC, audio tagging and
SED.

* :mod:`.model`: the networks (registered as ``dcasenet_v1`` / ``v2`` / ``v3``), their variants
  as data, per-task models sharing one set of layers;
* :mod:`.joint`: :class:`~.joint.JointTrainer`, the summed-loss train step for any task subset;
* :mod:`.evaluate`: the evaluation protocol (ASC 3 crops, TAG whole clip, SED 4-channel average);
* :mod:`.serving`: the exported model taking 24 kHz waveforms;
* :mod:`.paper`: the published numbers.

Importing this package loads no TensorFlow.
"""

from __future__ import annotations

from ..families import CardFacts, ExportSpec, Family

BUILDERS = ("dcasenet_v1", "dcasenet_v2", "dcasenet_v3")
SALIENCY_LAYER = "block3_conv2"  # Grad-CAM at the trunk's third block (the same layer in v1-v3)
OUTPUT_OF_TASK = {"asc": "scene", "tag": "tags", "sed": "frames"}


def default_config(builder: str):
    from .model import VARIANTS

    return VARIANTS[builder[len("dcasenet_"):]]


def card(builder: str, config, context=None) -> CardFacts:
    """Card facts: scene, tag and frame (SED) outputs. ``context``: {"tasks": [trained tasks],
    "init_from": run folder or None}; saliency explains the first trained task's head."""
    from ..datasets import fsd2019, nigens2020, tau2020

    context = dict(context or {})
    tasks = list(context.get("tasks") or ["asc"])
    return CardFacts(
        outputs={"scene": list(tau2020.SCENES), "tags": list(fsd2019.CLASSES), "frames": list(nigens2020.CLASSES)},
        saliency={"method": "gradcam", "layer": SALIENCY_LAYER, "output": OUTPUT_OF_TASK[tasks[0]]},
        feature_config="dcasenet",
        extra={"trained_tasks": tasks, "init_from": context.get("init_from"),
               "note": "heads of tasks not in trained_tasks keep their initial weights"})


def export(run_dir) -> ExportSpec:
    """Scene and tag probabilities and SED activity per 100 ms of the whole input (.serving)."""
    from .serving import EXPORT_NOTE, FRAME_SECONDS, MIN_SAMPLES, serving_model

    model, card_ = serving_model(run_dir)
    return ExportSpec(model, card_["sample_rate"], dict(card_["outputs"]),
                      {"frame_seconds": FRAME_SECONDS, "note": EXPORT_NOTE}, MIN_SAMPLES)


FAMILY = Family(name="dcasenet", title="DcaseNet v1/v2/v3: joint ASC, tagging and SED (Jung et al., ICASSP 2021)",
                builders=BUILDERS, default_config=default_config, card=card, export=export)
