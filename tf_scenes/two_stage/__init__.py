"""Two-stage device-robust acoustic scene classification (Hu et al., "A two-stage approach to
device-robust acoustic scene classification", ICASSP 2021).

* :mod:`.model`: the two-path ResNet, FCNN and fsFCNN (registered as ``two_stage_resnet``,
  ``two_stage_fcnn``, ``two_stage_fsfcnn``);
* :mod:`.fusion`: ensembles and the two-stage fusion, joined by clip name;
* :mod:`.system`: the exported system (both ensembles and their fusion, waveform in);
* :mod:`.offline_augment`: the reference's offline augmentations (written clips);
* :mod:`.audit`: `tf-scenes audit-fusion` on the published score files;
* :mod:`.paper`: the published numbers.

Importing this package loads no TensorFlow.
"""

from __future__ import annotations

from ..families import CardFacts, Family

# Saliency defaults per builder (layer names are fixed in .model): CAM from the ResNet's 1x1 class
# conv; Grad-CAM at the FCNNs' last conv of block 3.
_SALIENCY = {"two_stage_resnet": {"method": "cam", "layer": "class_conv"},
             "two_stage_fcnn": {"method": "gradcam", "layer": "block3_conv4"},
             "two_stage_fsfcnn": {"method": "gradcam", "layer": "block3_conv4"}}


def default_config(builder: str):
    """The paper's 10-class model of an architecture."""
    from .model import TwoStageModelConfig

    return TwoStageModelConfig(arch=builder[len("two_stage_"):])


def card(builder: str, config, context=None) -> CardFacts:
    """Card facts: one output "probs" over the 10 scenes or the 3 broad classes."""
    from ..datasets.tau2020 import BROAD_CLASSES, SCENES

    classes = SCENES if config.num_classes == 10 else BROAD_CLASSES
    return CardFacts(outputs={"probs": list(classes)}, saliency=dict(_SALIENCY[builder]),
                     feature_config="two_stage")


def _system_export(folder):
    from .system import system_export

    return system_export(folder)


def _saliency_runs(folder):
    from .system import saliency_runs

    return saliency_runs(folder)


def _saliency_class(card, class_arg):
    from .system import saliency_class

    return saliency_class(card, class_arg)


FAMILY = Family(
    name="two_stage",
    title="Two-stage device-robust ASC (Hu et al., ICASSP 2021)",
    builders=tuple(_SALIENCY),
    default_config=default_config,
    card=card,
    group_export=_system_export,
    saliency_runs=_saliency_runs,
    saliency_class=_saliency_class,
    commands={"audit-fusion": ("tf_scenes.two_stage.audit",
                               "audit two-stage score fusion on the published score files")},
)
