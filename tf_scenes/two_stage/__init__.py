"""tf_scenes.two_stage."""
