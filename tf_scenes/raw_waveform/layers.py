"""The two layers of the whole-clip raw-waveform model (tf_scenes.raw_waveform.windows.clip_model)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tf_scenes.raw_waveform")
class FoldWindows(keras.layers.Layer):
    """(batch, windows, samples, 1) -> (batch * windows, samples): windows become examples."""

    def call(self, x):
        return ops.reshape(x, (-1, x.shape[2]))  # (batch * windows, samples)

    def compute_output_shape(self, input_shape):
        return (None, input_shape[2])


@keras.saving.register_keras_serializable(package="tf_scenes.raw_waveform")
class WindowMean(keras.layers.Layer):
    """[(batch * windows, dim), (batch, windows, ...)] -> (batch, dim): mean over a clip's windows."""

    def call(self, inputs):
        values, windows = inputs
        shape = ops.shape(windows)
        v = ops.reshape(values, (shape[0], shape[1], values.shape[-1]))  # (batch, windows, dim)
        return ops.mean(v, axis=1)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[1][0], input_shapes[0][-1])
