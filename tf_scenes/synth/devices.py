"""Recording devices of the synthetic TAU 2020 Mobile stand-in.

A device is a fixed chain (DCASE 2020 Task 1a: a = binaural reference microphone, b and c = phones,
s1-s6 = simulated devices; s4-s6 appear only in the evaluation fold):

    gain -> frequency response (band limits, resonances, a fixed smooth ripple) -> soft clipping
    (tanh, `drive`) -> additive self-noise (shaped noise floor).

The ripple of each device comes from a generator seeded by the device name only, so a device
sounds the same in every generated dataset.  s4-s6 are deliberately unlike the training devices
(narrower bands, strong resonances, more noise) so that they are "unseen" in the sense of the task.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from scipy import fft as sfft

from . import dsp

TRAIN_DEVICES = ("a", "b", "c", "s1", "s2", "s3")
UNSEEN_DEVICES = ("s4", "s5", "s6")
DEVICES = TRAIN_DEVICES + UNSEEN_DEVICES


@dataclass(frozen=True)
class Device:
    """Parameters of one simulated recording device (all levels in dB)."""

    name: str
    hp_hz: float
    lp_hz: float
    hp_order: float = 2.0
    lp_order: float = 4.0
    peaks: tuple[tuple[float, float, float], ...] = ()  # (centre Hz, gain dB, width octaves)
    tilt_db_oct: float = 0.0
    ripple_db: float = 1.0
    noise_db: float = -90.0  # self-noise RMS re full scale
    gain_db: float = 0.0
    drive: float = 0.0  # tanh soft clipping: y = tanh(drive*x)/drive (0 = linear)

    def response_db(self, freqs: np.ndarray) -> np.ndarray:
        """Magnitude response in dB at `freqs` (Hz), the fixed ripple included."""
        f = np.maximum(freqs, 1.0)
        g = dsp.band_curve_db(f, self.hp_hz, self.lp_hz, self.hp_order, self.lp_order)
        g = g + self.tilt_db_oct * np.log2(f / 1000.0)
        for fc, gain, width in self.peaks:
            g = g + gain * np.exp(-0.5 * (np.log2(f / fc) / (width / 2.355)) ** 2)
        if self.ripple_db:
            rr = np.random.default_rng(zlib.crc32(f"device-ripple-{self.name}".encode()))
            anchors = np.geomspace(40.0, 20000.0, 24)
            g = g + dsp.curve_db(f, anchors, rr.uniform(-self.ripple_db, self.ripple_db, anchors.size))
        return g

    def to_dict(self) -> dict:
        return {"name": self.name, "hp_hz": self.hp_hz, "lp_hz": self.lp_hz, "hp_order": self.hp_order,
                "lp_order": self.lp_order, "peaks": [list(p) for p in self.peaks],
                "tilt_db_oct": self.tilt_db_oct, "ripple_db": self.ripple_db, "noise_db": self.noise_db,
                "gain_db": self.gain_db, "drive": self.drive}


DEVICE_TABLE = MappingProxyType({
    # Reference: near-flat, quiet, linear.
    "a": Device("a", hp_hz=20, lp_hz=20000, ripple_db=0.5, noise_db=-92, gain_db=0.0, drive=0.0),
    # Phones: high-pass around 100-200 Hz, presence peaks, some band limiting and compression.
    "b": Device("b", hp_hz=110, lp_hz=15000, peaks=((2800, 4.0, 1.2), (7500, -5.0, 1.0)),
                ripple_db=2.0, noise_db=-80, gain_db=-3.0, drive=1.5),
    "c": Device("c", hp_hz=180, lp_hz=12000, peaks=((1200, 3.0, 1.5), (5000, 4.0, 1.0)),
                tilt_db_oct=-0.8, ripple_db=2.0, noise_db=-78, gain_db=2.0, drive=2.0),
    # Simulated devices seen in training.
    "s1": Device("s1", hp_hz=90, lp_hz=9000, peaks=((3500, 6.0, 1.0),), ripple_db=2.5, noise_db=-75,
                 gain_db=-5.0, drive=1.0),
    "s2": Device("s2", hp_hz=250, lp_hz=16000, peaks=((600, -4.0, 1.5), (9000, 5.0, 1.0)),
                 tilt_db_oct=1.0, ripple_db=2.5, noise_db=-74, gain_db=3.0, drive=2.5),
    "s3": Device("s3", hp_hz=60, lp_hz=7000, peaks=((250, 4.0, 1.5), (2000, -3.0, 1.0)),
                 tilt_db_oct=-1.2, ripple_db=2.5, noise_db=-76, gain_db=-2.0, drive=1.2),
    # Unseen (evaluation only): telephone-like bands, strong resonances, louder self-noise.
    "s4": Device("s4", hp_hz=400, lp_hz=5000, lp_order=6, peaks=((1500, 7.0, 1.0),), ripple_db=3.0,
                 noise_db=-62, gain_db=4.0, drive=3.0),
    "s5": Device("s5", hp_hz=40, lp_hz=5500, lp_order=6, peaks=((200, 6.0, 1.2), (3000, 6.0, 0.7)),
                 tilt_db_oct=-1.5, ripple_db=3.0, noise_db=-66, gain_db=-6.0, drive=1.0),
    "s6": Device("s6", hp_hz=450, lp_hz=18000, peaks=((4500, 7.0, 0.8), (11000, 4.0, 1.0)),
                 tilt_db_oct=1.8, ripple_db=3.0, noise_db=-64, gain_db=0.0, drive=3.0),
})


def get_device(name: str) -> Device:
    try:
        return DEVICE_TABLE[name]
    except KeyError:
        raise ValueError(f"unknown device {name!r}; known: {', '.join(DEVICES)}") from None


def record(x: np.ndarray, sr: int, device: Device | str, rng: np.random.Generator) -> np.ndarray:
    """Pass a dry scene `x` (float32, full-scale units) through `device`; rng draws its self-noise."""
    n = x.shape[0]
    nfft = dsp.fft_len(n)
    return record_spectrum(sfft.rfft(np.asarray(x, dtype=np.float32), nfft), nfft, n, sr, device, rng)


def record_spectrum(spec: np.ndarray, nfft: int, n: int, sr: int, device: Device | str,
                    rng: np.random.Generator, memo: dsp.Memo | None = None) -> np.ndarray:
    """:func:`record` of the scene whose rfft (nfft points) is `spec`; the first n samples.

    The response is applied in the spectrum (zero-phase), so parallel recordings of one scene share
    its forward FFT; memo keeps each device's response at the bins.  A linear device (drive 0)
    gets its self-noise added in the same spectrum: one inverse FFT per recording.
    """
    dev = get_device(device) if isinstance(device, str) else device
    memo = memo if memo is not None else dsp.Memo()
    resp = memo.get(("device", dev.name, nfft, sr),
                    lambda: dsp.gain_on_bins(dev.response_db, nfft, sr) * np.float32(dsp.db(dev.gain_db)))
    noise_gain = memo.get(("device-noise", dev.name, nfft, sr),
                          lambda: dsp.gain_on_bins(dsp.tilt_fn(-1.5, dev.hp_hz, dev.lp_hz), nfft, sr))
    noise = dsp.noise_spectrum(rng, noise_gain)
    # Self-noise at noise_db RMS over the recording (Parseval, before the inverse FFT).
    noise *= np.float32(dsp.db(dev.noise_db) / math.sqrt(dsp.spectrum_energy(noise, nfft) / nfft + 1e-30))
    y_spec = spec * resp
    if not dev.drive:
        y_spec += noise
        return sfft.irfft(y_spec, nfft)[:n]
    y = sfft.irfft(y_spec, nfft)[:n]
    y = np.tanh(y * np.float32(dev.drive)) * np.float32(1.0 / dev.drive)
    y += sfft.irfft(noise, nfft)[:n]
    return y
