"""Export a trained DcaseNet as a SavedModel that takes 24 kHz waveforms.

``serving_model(run_dir)`` rebuilds the run's network from its model card
(:func:`tf_scenes.model_io.waveform_model`: front-end + network) and turns the logits into
probabilities: ``{"scene": softmax (batch, 10), "tags": sigmoid (batch, 80), "frames": SED
activity (batch, frames // 40 * 8, 14)}``.  Every output is computed on the whole input (no
3-crop averaging for ASC, one channel for SED): the exported model is the network, the evaluation
protocol stays in :mod:`tf_scenes.dcasenet.evaluate`.  Inputs need at least 40 feature frames
(0.8 s, 18,721 samples).
"""

from __future__ import annotations


MIN_SAMPLES = 1 + 39 * 480  # 40 frames: 1 + (n - 1) // 480 >= 40 (pre-emphasis drops one sample)


# Recorded in an export's metadata (here and by `tf-scenes export`).
FRAME_SECONDS = 0.1
EXPORT_NOTE = ("scene and tag probabilities of the whole input (the evaluation protocol's 3-crop ASC average is "
               "not part of the graph); frames: SED activity per 100 ms")


def serving_model(run_dir):
    """keras.Model: waveform (batch, samples) at 24 kHz -> {"scene", "tags", "frames"} probabilities."""
    import keras

    from tf_scenes.model_io import waveform_model

    inner, card = waveform_model(run_dir)
    wav = keras.Input((None,), dtype="float32", name="waveform")
    out = inner(wav)
    probs = {"scene": keras.layers.Softmax(name="scene_probs", dtype="float32")(out["scene"]),
             "tags": keras.layers.Activation("sigmoid", name="tag_probs", dtype="float32")(out["tags"]),
             "frames": keras.layers.Activation("linear", name="frame_probs", dtype="float32")(out["frames"])}
    return keras.Model(wav, probs, name=f"{inner.name}_probs"), card
