"""tf.data input pipelines and augmentations (decode, resample, feature cache, crop, mixup, SpecAugment)."""
