"""Room impulse responses for indoor and vehicle scenes.

Each RIR = early reflections from pyroomacoustics' image-source model of a shoebox room (absorption
from the inverse Sabine formula for the sampled RT60, image order capped at 6 so a large hall costs
milliseconds, not seconds) + a late tail of exponentially decaying noise with the same RT60, whose
decay is faster at high frequencies (air absorption).  The tail starts where the early part fades.

A :class:`RirBank` holds a few RIRs per room type, made once per dataset and reused, so generating
thousands of clips needs only a handful of room simulations; the clips apply them by FFT
convolution.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from . import dsp


@dataclass(frozen=True)
class RoomType:
    """Ranges of a family of rooms: dimensions (m) and RT60 (s)."""

    dims_lo: tuple[float, float, float]
    dims_hi: tuple[float, float, float]
    rt60: tuple[float, float]


ROOM_TYPES = MappingProxyType({
    "hall": RoomType((35.0, 20.0, 8.0), (70.0, 40.0, 15.0), (1.4, 2.4)),        # airport halls
    "mall": RoomType((25.0, 15.0, 5.0), (50.0, 30.0, 9.0), (0.9, 1.6)),         # shopping malls
    "station": RoomType((40.0, 10.0, 5.0), (90.0, 18.0, 8.0), (1.2, 2.0)),      # metro platforms
    "bus": RoomType((9.0, 2.4, 2.2), (12.0, 2.6, 2.5), (0.25, 0.45)),
    "tram": RoomType((18.0, 2.4, 2.2), (30.0, 2.7, 2.5), (0.3, 0.55)),
    "metro": RoomType((15.0, 2.6, 2.1), (20.0, 3.0, 2.4), (0.35, 0.6)),
    "small": RoomType((3.0, 3.0, 2.4), (6.0, 5.0, 3.0), (0.25, 0.6)),           # domestic rooms
})


def make_rir(rng: np.random.Generator, sr: int, room: RoomType, max_order: int = 6) -> tuple[np.ndarray, dict]:
    """One RIR (float32, direct path at sample ~0, unit energy) and its parameters."""
    import pyroomacoustics as pra

    dims = [float(rng.uniform(a, b)) for a, b in zip(room.dims_lo, room.dims_hi)]
    rt60 = float(rng.uniform(*room.rt60))
    e_abs, order = pra.inverse_sabine(rt60, dims)
    order = int(min(order, max_order))
    src = [float(rng.uniform(0.15, 0.85) * d) for d in dims[:2]] + [float(rng.uniform(1.0, min(2.0, dims[2] - 0.3)))]
    mic = [float(rng.uniform(0.15, 0.85) * d) for d in dims[:2]] + [float(rng.uniform(1.0, min(1.8, dims[2] - 0.3)))]
    r = pra.ShoeBox(dims, fs=sr, materials=pra.Material(float(e_abs)), max_order=order)
    r.add_source(src)
    r.add_microphone(mic)
    r.compute_rir()
    early = np.asarray(r.rir[0][0], dtype=np.float64)
    peak = int(np.argmax(np.abs(early)))
    early = early[max(peak - 32, 0):]
    # Late tail: noise decaying by 60 dB in rt60 (faster above 2 kHz), matched in level to the
    # end of the early part, starting after the early reflections.
    n = int(rt60 * 1.2 * sr)
    t = np.arange(n) / sr
    lo = dsp.butter(rng.standard_normal(n).astype(np.float32), sr, hi=2000.0) * np.exp(-6.9 * t / rt60)
    hi = dsp.butter(rng.standard_normal(n).astype(np.float32), sr, lo=2000.0) * np.exp(-6.9 * t / (0.6 * rt60))
    tail = (lo + hi).astype(np.float64)
    t_mix = min(len(early), int(0.08 * sr))
    ref = np.sqrt(np.mean(early[max(t_mix - int(0.01 * sr), 0):t_mix] ** 2) + 1e-12)
    tail *= ref / (np.sqrt(np.mean(tail[t_mix: t_mix + int(0.01 * sr)] ** 2)) + 1e-12)
    ramp = np.clip((np.arange(n) - t_mix * 0.5) / max(t_mix * 0.5, 1), 0, 1)
    h = tail * ramp
    h[: min(len(early), n)] += early[:n] * (1 - ramp[: min(len(early), n)] * 0.5)
    h /= np.sqrt(np.sum(h ** 2)) + 1e-12
    params = {"dims_m": [round(d, 2) for d in dims], "rt60_s": round(rt60, 3), "image_order": order,
              "source_m": [round(c, 2) for c in src], "mic_m": [round(c, 2) for c in mic]}
    return h.astype(np.float32), params


class RirBank:
    """A few fixed RIRs per room type, seeded by (seed, room type, index).

    Built once per dataset (:meth:`build`, in the process that plans it) and handed to the workers
    with their chunks (the asc bank: 24 RIRs, 5 MB); :meth:`get` makes a missing RIR on first
    use.  The bytes of every RIR depend only on (sr, seed, room type, index), never on which process
    made it.
    """

    def __init__(self, sr: int, seed: int, per_type: int = 4):
        self.sr = sr
        self.seed = seed
        self.per_type = per_type
        self._cache: dict[tuple[str, int], tuple[np.ndarray, dict]] = {}

    @classmethod
    def build(cls, sr: int, seed: int, room_types, per_type: int = 4) -> "RirBank":
        """A bank holding every RIR of `room_types` (a room simulation each, ~7 ms)."""
        bank = cls(sr, seed, per_type)
        for room_type in room_types:
            for index in range(per_type):
                bank.get(room_type, index)
        return bank

    def slot(self, index: int) -> int:
        """Which of a room type's RIRs an index picks."""
        return index % self.per_type

    def get(self, room_type: str, index: int) -> tuple[np.ndarray, dict]:
        key = (room_type, self.slot(index))
        if key not in self._cache:
            rng = np.random.default_rng([self.seed, zlib.crc32(room_type.encode()), key[1], 0x5157])
            self._cache[key] = make_rir(rng, self.sr, ROOM_TYPES[room_type])
        return self._cache[key]


def reverberate(x: np.ndarray, h: np.ndarray, wet: float) -> np.ndarray:
    """Dry/wet mix of x and x*h (wet in [0, 1] as an energy fraction), same length as x."""
    y = dsp.fftconvolve(x, h)[: x.shape[0]]
    return (np.sqrt(1 - wet) * x + np.sqrt(wet) * y).astype(np.float32)
