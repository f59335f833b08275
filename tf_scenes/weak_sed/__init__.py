"""tf_scenes.weak_sed."""
