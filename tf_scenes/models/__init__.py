"""tf_scenes.models."""
