"""The toy family's features: 16 kHz log-mel, 1 s clips."""

from tf_scenes.features.config import FeatureConfig

FEATURES = FeatureConfig(name="toy", sample_rate=16000, clip_samples=16000, n_fft=512, hop_length=256,
                         window="hann", center=True, pad_mode="reflect", power=2, n_mels=32, fmin=0.0,
                         fmax=8000.0, mel_scale="htk", mel_norm=None, log="ln", log_offset=1e-6,
                         scaling="none")


def reference(y, sr=16000):  # the toy family is not a paper: no reference recipe
    raise NotImplementedError
