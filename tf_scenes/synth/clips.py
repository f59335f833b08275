"""Isolated sound-event clips (the FSDKaggle 2018 / 2019 stand-ins): one or more class sounds,
a short lead-in, a faint recording noise floor and a random peak level."""

from __future__ import annotations

import numpy as np

from . import dsp, sounds
from .classes import ClassSound


def draw_duration(rng: np.random.Generator, spec: ClassSound, lo: float, hi: float) -> float:
    """A clip length from the class's typical range (log-uniform), clipped to [lo, hi] seconds."""
    a, b = max(spec.dur[0], lo), min(spec.dur[1], hi)
    if a >= b:
        return float(np.clip(spec.dur[0], lo, hi))
    return float(np.exp(rng.uniform(np.log(a), np.log(b))))


def event_clip(rng: np.random.Generator, sr: int, dur: float, specs: list[ClassSound],
               noise_db: tuple[float, float] = (-70.0, -50.0), peak_db: tuple[float, float] = (-12.0, -1.0),
               lead: float = 0.15) -> np.ndarray:
    """A clip of `dur` seconds holding one sound per spec (the first dominant), float32 mono."""
    n = max(int(round(dur * sr)), 16)
    x = np.zeros(n, dtype=np.float32)
    for i, spec in enumerate(specs):
        start = int(rng.uniform(0, lead) * n) if i == 0 else int(rng.uniform(0, 0.5) * n)
        length = n - start
        if length < 16:
            continue
        s = sounds.render(rng, sr, length / sr, spec.family, spec.params)
        s = dsp.fade(s, sr, 0.005)
        gain = 1.0 if i == 0 else 10 ** (rng.uniform(-10, -2) / 20)
        dsp.add_at(x, s[:length], start, gain)
    x = dsp.normalize_rms(x) + 10 ** (rng.uniform(*noise_db) / 20) * dsp.shaped_noise(
        rng, n, sr, dsp.tilt_fn(-3.0, 40.0, None))
    peak = float(np.max(np.abs(x)))
    return (x * (10 ** (rng.uniform(*peak_db) / 20) / max(peak, 1e-9))).astype(np.float32)
