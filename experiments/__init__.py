"""Experiment configs (experiments/configs/*.yaml) and entry points (one per paper reproduction)."""
