"""Synthetic TAU-NIGENS Spatial Sound Events 2020 (DCASE 2020 Task 3), development part::

    mic_dev/fold{f}_room{r}_mix{NNN}_ov{1|2}.wav   4 ch, 24 kHz, PCM_16, 60 s (tetrahedral array)
    foa_dev/<same names>.wav                       4 ch first-order ambisonics (ACN order, SN3D)
    metadata_dev/<same names>.csv                  no header: frame,class,track,azimuth,elevation
    SYNTHETIC_DATASET.json

Each mixture is one acoustic scene rendered to both formats: events of the 14 classes on one
(ov1) or two (ov2) overlapping layers, each with a direction (azimuth -180..170, elevation -40..40,
10 degree grid; a third of them move), spatialised with per-capsule delays and directivity (mic)
or ambisonic gains (foa), plus the room's diffuse reverberation and ambient noise.  Metadata:
one row per active 100 ms frame per event (overlapping events repeat a frame); `track`
distinguishes simultaneous events of the same class (0 otherwise).

Names follow the real numbering: folds 1-5 have room1 and room2 with mix001-025 ov1 and
mix026-050 ov2; fold 6 has room1 only with mix001-050 ov1 and mix051-100 ov2.  Smaller sizes keep
every fold and take the first mixes of each group.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
from scipy import fft as sfft

from . import common, dsp, sounds
from .classes import NIGENS

log = logging.getLogger(__name__)

DATASET = "TAU-NIGENS-2020"
SR = 24000
SUBTYPE = "PCM_16"
SECONDS = 60.0
FRAME = 0.1
N_FRAMES = 600
CLASSES = tuple(NIGENS)
# Tetrahedral capsules (azimuth, elevation) in degrees and array radius (DCASE 2020 Task 3).
CAPSULES = ((45.0, 35.0), (-45.0, -35.0), (135.0, -35.0), (-135.0, 35.0))
RADIUS = 0.042
C_SOUND = 343.0


@dataclass(frozen=True)
class SedSize:
    """Mixtures per (fold, room, overlap); folds 1-5 use rooms 1 and 2, fold 6 room 1 only."""

    per_group: int        # folds 1-5: mixes per room and overlap (real 25)
    per_group_fold6: int  # fold 6 (room 1): mixes per overlap (real 50)
    rooms: int = 2
    tiny_alternate: bool = False  # tiny: one mix per fold, ov1 on odd folds, ov2 on even folds


SIZES = MappingProxyType({
    "tiny": SedSize(per_group=1, per_group_fold6=1, rooms=1, tiny_alternate=True),
    "small": SedSize(per_group=1, per_group_fold6=2),
    "full": SedSize(per_group=25, per_group_fold6=50),
})


def mixture_names(sz: SedSize) -> list[str]:
    names = []
    for fold in range(1, 7):
        rooms = [1] if fold == 6 else list(range(1, sz.rooms + 1))
        block = 50 if fold == 6 else 25
        k = sz.per_group_fold6 if fold == 6 else sz.per_group
        for room in rooms:
            for ov in (1, 2):
                if sz.tiny_alternate and ov != (1 if fold % 2 else 2):
                    continue
                for i in range(k):
                    names.append(f"fold{fold}_room{room}_mix{(ov - 1) * block + i + 1:03d}_ov{ov}")
    return names


def _unit(az_deg, el_deg):
    az, el = np.radians(az_deg), np.radians(el_deg)
    return np.stack([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)], axis=0)


def plan_events(rng: np.random.Generator, ov: int) -> list[dict]:
    """Events on `ov` layers: class, onset/offset frames, start/end direction."""
    events = []
    for layer in range(ov):
        t = rng.uniform(0.2, 3.0) + layer * rng.uniform(0.0, 4.0)
        while True:
            cls = int(rng.integers(len(CLASSES)))
            spec = NIGENS[CLASSES[cls]]
            dur = float(np.exp(rng.uniform(np.log(spec.dur[0]), np.log(spec.dur[1]))))
            on = int(round(t / FRAME))
            off = min(int(round((t + dur) / FRAME)), N_FRAMES)
            if off - on < 3:
                break
            az0 = float(rng.integers(-18, 18) * 10)
            el0 = float(rng.integers(-4, 5) * 10)
            moving = rng.random() < 1 / 3
            speed = float(rng.choice([-40, -20, -10, 10, 20, 40])) if moving else 0.0  # deg / s
            events.append({"class": cls, "on": on, "off": off, "az0": az0, "el0": el0, "speed": speed,
                           "level_db": float(rng.uniform(-6, 0)), "layer": layer})
            t += dur + rng.uniform(0.3, 3.0)
            if t > SECONDS - 1.0:
                break
    events.sort(key=lambda e: (e["on"], e["layer"]))
    # track: index among simultaneous events of the same class
    for i, e in enumerate(events):
        busy = {o["track"] for o in events[:i] if o["class"] == e["class"] and o["off"] > e["on"]}
        e["track"] = min(set(range(len(busy) + 1)) - busy)
    return events


def event_doa(e: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame integer azimuth (wrapped to [-180, 180)) and elevation of an event."""
    k = np.arange(e["off"] - e["on"])
    az = e["az0"] + e["speed"] * k * FRAME
    az = (np.round(az) + 180) % 360 - 180
    el = np.full(k.shape, e["el0"])
    return az.astype(int), el.astype(int)


def metadata_rows(events: list[dict]) -> list[tuple[int, int, int, int, int]]:
    rows = []
    for e in events:
        az, el = event_doa(e)
        for j, f in enumerate(range(e["on"], e["off"])):
            rows.append((f, e["class"], e["track"], int(az[j]), int(el[j])))
    rows.sort()
    return rows


def _room_tails(seed: int, fold: int, room: int, n_ch: int = 4) -> np.ndarray:
    """Diffuse late reverberation of one room: n_ch decorrelated exponentially decaying tails."""
    rng = common.rng_for(seed, "sed-room", fold, room)
    rt60 = rng.uniform(0.3, 0.8)
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    tails = rng.standard_normal((n_ch, n)).astype(np.float32) * np.exp(-6.9 * t / rt60).astype(np.float32)
    tails = dsp.butter(tails, SR, hi=rng.uniform(4000, 8000), axis=1)
    tails[:, : int(0.01 * SR)] *= np.linspace(0, 1, int(0.01 * SR), dtype=np.float32)
    return tails / np.sqrt(np.sum(tails ** 2, axis=1, keepdims=True) + 1e-12)


_FRAME_SAMPLES = int(round(FRAME * SR))


def _spatialise(s: np.ndarray, e: dict, caps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mic (4, len), foa (4, len)) float32 of one event's signal s moving along its DOA track.

    Directions are computed per 100 ms frame and interpolated linearly to the samples (a unit
    vector moves at most 4 degrees in a frame); each capsule reads s with its own fractional
    delay (linear interpolation, zero outside the event).
    """
    length = s.shape[0]
    az, el = event_doa(e)
    # Unit vector at every frame centre, then per sample; unwrap keeps moving sources continuous.
    az_r, el_r = np.unwrap(np.radians(az)), np.radians(el)
    u_f = np.stack([np.cos(az_r) * np.cos(el_r), np.sin(az_r) * np.cos(el_r), np.sin(el_r)])  # (3, frames)
    u = np.stack([dsp.upsample_linear(c, _FRAME_SAMPLES, length) for c in u_f])  # (3, length)
    proj = np.einsum("dc,dl->cl", caps.astype(np.float32), u)  # (4 capsules, length): cos(capsule, source)
    mic = np.empty((4, length), dtype=np.float32)
    padded = np.concatenate([np.zeros(4, np.float32), s, np.zeros(4, np.float32)])
    idx = np.arange(length, dtype=np.float32) + np.float32(4.0)
    for m in range(4):
        # Delay (samples, relative to the array centre), at most RADIUS / C_SOUND * SR < 3.
        pos = idx + proj[m] * np.float32(RADIUS / C_SOUND * SR)
        fl = np.floor(pos)
        i = fl.astype(np.int64)
        w = pos - fl
        y = padded[i] * (1 - w) + padded[i + 1] * w
        mic[m] = (0.5 + 0.5 * proj[m]) * y
    foa = np.stack([s, u[1] * s, u[2] * s, u[0] * s])  # W, Y, Z, X
    return mic, foa


def render_mixture(seed: int, name: str) -> tuple[np.ndarray, np.ndarray, list[tuple]]:
    """(mic (samples, 4), foa (samples, 4), metadata rows) of one mixture."""
    parts = name.split("_")
    fold, room, ov = int(parts[0][4:]), int(parts[1][4:]), int(parts[3][2:])
    rng = common.rng_for(seed, "sed-mix", name)
    events = plan_events(rng, ov)
    n = int(SECONDS * SR)
    mic = np.zeros((4, n), dtype=np.float32)
    foa = np.zeros((4, n), dtype=np.float32)
    dry_sum = np.zeros(n, dtype=np.float32)
    caps = _unit(np.array([c[0] for c in CAPSULES]), np.array([c[1] for c in CAPSULES]))  # (3, 4)
    for e in events:
        spec = NIGENS[CLASSES[e["class"]]]
        start, length = int(e["on"] * FRAME * SR), int((e["off"] - e["on"]) * FRAME * SR)
        # The whole annotated span sounds (no `burst` confinement inside an event).
        params = dict(spec.params, burst=1.0) if "burst" in spec.params else spec.params
        s = sounds.render(rng, SR, length / SR, spec.family, params)[:length]
        s = dsp.fade(s, SR, 0.02) * np.float32(10 ** (e["level_db"] / 20))
        m_ev, f_ev = _spatialise(s, e, caps)
        mic[:, start:start + length] += m_ev
        foa[:, start:start + length] += f_ev
        dry_sum[start:start + length] += s
    # Room: diffuse reverberation of the dry sum plus ambient noise, both formats from the same
    # scene.  Both are made in the spectrum: one forward FFT of the dry sum, one inverse per channel.
    tails = _room_tails(seed, fold, room)
    wet_db = common.rng_for(seed, "sed-room", fold, room).uniform(-12, -6)
    nfft = dsp.fft_len(n + tails.shape[1] - 1)
    dry_spec = sfft.rfft(dry_sum, nfft)
    rev = sfft.rfft(tails, nfft, axis=1) * dry_spec[None, :] * np.float32(10 ** (wet_db / 20))  # (4, bins)
    amb_gain = dsp.gain_on_bins(dsp.tilt_fn(-4.0, 30.0, 8000.0), nfft, SR)
    amb_level = 10 ** (rng.uniform(-36, -28) / 20) * max(dsp.rms(dry_sum), 1e-4)
    for c in range(4):
        amb = dsp.noise_spectrum(rng, amb_gain)
        rev[c] += amb * np.float32(amb_level / math.sqrt(dsp.spectrum_energy(amb, nfft) / nfft + 1e-30))
    diffuse = sfft.irfft(rev, nfft, axis=1)[:, :n]  # (4, n): reverberation + ambience
    mic += diffuse
    foa[0] += diffuse[0]
    foa[1:] += diffuse[1:] * np.float32(1 / math.sqrt(3))
    g = np.float32(10 ** (-3 / 20) / max(float(np.max(np.abs(mic))), float(np.max(np.abs(foa))), 1e-9))
    return (mic * g).T, (foa * g).T, metadata_rows(events)


def _run_chunk(root: str, seed: int, names: list[str]) -> list[int]:
    out = []
    for name in names:
        mic, foa, rows = render_mixture(seed, name)
        common.write_pcm(Path(root) / "mic_dev" / f"{name}.wav", mic, SR, SUBTYPE)
        common.write_pcm(Path(root) / "foa_dev" / f"{name}.wav", foa, SR, SUBTYPE)
        common.write_table(Path(root) / "metadata_dev" / f"{name}.csv", None, rows, delimiter=",")
        out.append(len(rows))
    return out


def generate(root, size: str = "tiny", seed: int = 0, *, jobs: int | None = None, progress: bool = True) -> dict:
    """Write the synthetic TAU-NIGENS 2020 development set into `root`; returns the manifest."""
    root = Path(root)
    sz = SIZES[size]
    params = {"sizes": asdict(sz), "sample_rate": SR, "subtype": SUBTYPE, "seconds": SECONDS,
              "classes": list(CLASSES), "capsules_deg": [list(c) for c in CAPSULES], "radius_m": RADIUS,
              "foa": "ACN channel order (W, Y, Z, X), SN3D",
              "synthesisers": {c: {"family": s.family, **s.params} for c, s in NIGENS.items()}}
    core = common.manifest_core("sed", DATASET, size, seed, params)
    if not common.prepare_root(root, core):
        log.info("%s: complete synthetic dataset with the same parameters exists, skipping", root)
        return common.read_manifest(root)
    names = mixture_names(sz)
    for d in ("mic_dev", "foa_dev", "metadata_dev"):
        (root / d).mkdir(parents=True, exist_ok=True)
    n_rows = common.map_items(functools.partial(_run_chunk, str(root), seed), names, jobs=jobs, desc="sed",
                              unit="mix", progress=progress, chunk=2)
    return common.finish_root(root, core, {"counts": {"mixtures": len(names), "metadata_rows": int(sum(n_rows))}})
