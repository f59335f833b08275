"""tf_scenes.metrics."""
