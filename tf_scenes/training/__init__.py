"""tf_scenes.training."""
