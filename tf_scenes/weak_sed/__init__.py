"""Weakly supervised sound event detection with a self-supervised auxiliary task and two-step
attention pooling (Deshmukh, Raj & Singh, "Improving weakly supervised sound event detection with
self-supervised auxiliary tasks", Interspeech 2021).

* :mod:`.model`: 2APAE and the pooling baselines (GAP, GMP, GWRP, dilated CNN + attention),
  registered as ``weak_sed_<model>``;
* :mod:`.remix`: FSDKaggle2018 events mixed into acoustic scenes at given SNRs;
* :mod:`.training`: standardisation, the plateau schedule that survives a resume;
* :mod:`.serving`: the export contract; :mod:`.paper`: the published numbers.

Importing this package loads no TensorFlow.
"""

from __future__ import annotations

from ..families import CardFacts, ExportSpec, Family

BUILDERS = ("weak_sed_2apae", "weak_sed_gap", "weak_sed_gmp", "weak_sed_gwrp", "weak_sed_dilated_attention")
# Outputs with one value per class (the order of the classes), per model kind.
_CLASS_OUTPUTS = {"2apae": ("clip", "time_attention", "time_presence", "first_step", "freq_attention",
                            "freq_presence", "class_map"),
                  "dilated_attention": ("clip", "attention", "class_map")}
# Saliency defaults: 2APAE's own attention maps (drawn beside) Grad-CAM at the last encoder conv; the
# dilated CNN's attention beside Grad-CAM at its last conv; CAM of the baselines' class map.
_SALIENCY = {"2apae": {"method": "gradcam", "layer": "enc4_conv2", "output": "clip",
                       "attention": ["freq_attention", "time_attention"]},
             "dilated_attention": {"method": "gradcam", "layer": "block3_conv", "output": "clip",
                                   "attention": ["attention"]}}
_POOLING_SALIENCY = {"method": "cam", "layer": "class_conv", "output": "clip"}


def default_config(builder: str):
    from .model import WeakSedConfig

    return WeakSedConfig(model=builder[len("weak_sed_"):])


def card(builder: str, config, context=None) -> CardFacts:
    """Card facts of a weak-SED model: per-class outputs over the FSDKaggle2018 classes; the model
    takes standardised (frames, mels) features (the card's normalization holds the statistics)."""
    from ..datasets.fsd2018 import CLASSES

    kind = builder[len("weak_sed_"):]
    outputs = _CLASS_OUTPUTS.get(kind, ("clip", "class_map"))
    return CardFacts(outputs={k: list(CLASSES) for k in outputs},
                     saliency=dict(_SALIENCY.get(kind, _POOLING_SALIENCY)), feature_config="weak_sed",
                     squeeze_channel=True)


def export(run_dir) -> ExportSpec:
    from .serving import EXPORT_NOTE, FRAME_SECONDS, export_waveform_model

    model, card_ = export_waveform_model(run_dir)
    labels = {k: v for k, v in card_["outputs"].items() if k in model.output}
    return ExportSpec(model, card_["sample_rate"], labels, {"frame_seconds": FRAME_SECONDS, "note": EXPORT_NOTE})


FAMILY = Family(name="weak_sed",
                title="Weakly supervised SED, 2-step attention pooling + reconstruction (Deshmukh et al., Interspeech 2021)",
                builders=BUILDERS, default_config=default_config, card=card, export=export,
                commands={"remix": ("tf_scenes.weak_sed.remix_cli",
                                    "mix event clips into scene clips at given SNRs (weak-SED data)")})
