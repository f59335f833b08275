"""What a weak-SED export serves: 32 kHz waveforms in; clip probabilities and the model's own
attention over time out (2APAE: "time_attention"; the dilated CNN: "attention"), with the
features, the training mixtures' per-band standardisation and the channel drop in the graph.
"""

from __future__ import annotations

# The outputs an export keeps (of those a model has; not the reconstruction or the raw class map),
# the attention maps' hop and the note recorded in the export's metadata.
EXPORT_OUTPUTS = ("clip", "time_attention", "attention")
FRAME_SECONDS = 0.032
EXPORT_NOTE = ("clips are cut or zero-padded to 10 s (320,000 samples at 32 kHz) by the front-end; per-band "
               "standardisation with the training mixtures' statistics is inside; attention maps are "
               "(batch, classes, 311 frames), hop 32 ms")


def export_waveform_model(run_dir):
    """(Keras model: waveform [batch, samples] -> the run's EXPORT_OUTPUTS, card) from a run folder."""
    import keras

    from ..model_io import waveform_model

    wm, card = waveform_model(run_dir)
    keep = [k for k in EXPORT_OUTPUTS if k in wm.output]
    return keras.Model(wm.inputs[0], {k: wm.output[k] for k in keep}, name=f"{card['builder']}_waveform"), card
