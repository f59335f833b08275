"""Hierarchy-aware embeddings from raw audio (Abrol & Sharma, "Learning hierarchy aware embedding
from raw audio for acoustic scene classification", IEEE/ACM TASLP 2020).

* :mod:`.model`: the two-pipeline 1D-CNN (registered as ``raw_waveform`` with attention pooling,
  ``raw_waveform_mean`` / ``_lstm`` / ``_gru``);
* :mod:`.prototype`: the multi-task trainer with the prototype loss on coarse classes;
* :mod:`.windows`: 2 s windows, window predictions and the whole-clip exported model;
* :mod:`.figures`: Figure 3 (first-layer filter responses); :mod:`.embed`: `tf-scenes embed`;
* :mod:`.paper`: the published numbers.

Importing this package loads no TensorFlow.
"""

from __future__ import annotations

from ..families import CardFacts, ExportSpec, Family

BUILDERS = ("raw_waveform", "raw_waveform_mean", "raw_waveform_lstm", "raw_waveform_gru")
SALIENCY_LAYER = "short_conv4"  # Grad-CAM over time at the short-kernel pipeline's Conv4 (Table I)


def builder_name(pooling: str) -> str:
    return "raw_waveform" if pooling == "attention" else f"raw_waveform_{pooling}"


def default_config(builder: str):
    from .model import VARIANTS

    return VARIANTS[builder[len("raw_waveform_"):] if builder != "raw_waveform" else "attention"]


def card(builder: str, config, context=None) -> CardFacts:
    """Card facts: the model takes 2 s windows of waveform; ``context["classes"]``: {"coarse": [...],
    "fine": [...]} class names of the heads the model has (they come from the data)."""
    from .windows import feature_config

    classes = dict((context or {}).get("classes") or {})
    outputs = {k: list(classes[k]) for k in ("coarse", "fine") if k in config.head_names and k in classes}
    fcfg = feature_config()
    return CardFacts(
        outputs=outputs, feature_config="raw", input="waveform",
        saliency={"method": "gradcam", "layer": SALIENCY_LAYER, "output": "fine" if "fine" in outputs else "coarse"},
        extra={"window_samples": fcfg.raw_window_samples, "hop_samples": fcfg.raw_hop_samples,
               "input_note": "the model takes 2 s windows after the 'raw' feature config (pre-emphasis over the "
                             "clip, mean removed per window); clip decision = mean of window scores"})


def export(run_dir) -> ExportSpec:
    """Whole clips in (windowing and window averaging in the graph): clip probabilities and embedding."""
    from ..model_io import load_run_model
    from .windows import clip_export_settings, clip_model, feature_config

    model, card_ = load_run_model(run_dir)
    min_samples, meta = clip_export_settings()
    return ExportSpec(clip_model(model), feature_config().sample_rate, dict(card_["outputs"]), meta, min_samples)


def saliency_extra(run_dir, model, out_path) -> dict:
    """The first-layer filter responses of the run beside its saliency figure (OUT_filters.png)."""
    from pathlib import Path

    from .figures import filter_figure

    path = Path(out_path).with_name(Path(out_path).stem + "_filters.png")
    return {"filters": filter_figure(model, path, f"{Path(run_dir).name}: first-layer filter responses")}


FAMILY = Family(name="raw_waveform",
                title="Raw-waveform 1D-CNN, hierarchy-aware embeddings (Abrol & Sharma, TASLP 2020)",
                builders=BUILDERS, default_config=default_config, card=card, export=export,
                saliency_extra=saliency_extra,
                commands={"embed": ("tf_scenes.raw_waveform.embed", "write raw-waveform model embeddings of audio files")})
