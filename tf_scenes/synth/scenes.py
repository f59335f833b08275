"""Acoustic scenes of the synthetic TAU Urban Acoustic Scenes 2020 Mobile stand-in.

A scene clip = a background texture bed + foreground components (crowds, steps, vehicles, voices,
announcements...) at random levels and rates, coloured by its location, then (indoor and vehicle
scenes) convolved with a room impulse response.  The three broad classes of the two-stage paper
share traits on purpose:

* indoor (airport, shopping_mall, metro_station): large reverberant halls, crowd babble, steps,
  ventilation hum;
* outdoor (park, public_square, street_pedestrian, street_traffic): no room, wind, traffic rumble
  in varying amounts, birds;
* transportation (bus, tram, metro): strong low-frequency engine / running noise with vibration,
  small cabins, few talkers.

Every location (city + location id) has its own fixed parameters (a colouring EQ, component levels
and rates, its room, engine pitch...), drawn from the dataset seed and the location's name, and
every city has a few shared traits; the real split is by location, so generalising to unseen
locations is part of the task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from scipy import fft as sfft

from . import dsp, sounds
from .common import key_int
from .rooms import RirBank

SCENES = ("airport", "shopping_mall", "metro_station", "street_pedestrian", "public_square",
          "street_traffic", "tram", "bus", "metro", "park")
CITIES = ("barcelona", "helsinki", "lisbon", "london", "lyon", "milan", "paris", "prague",
          "stockholm", "vienna")
BROAD = MappingProxyType({"airport": "indoor", "shopping_mall": "indoor", "metro_station": "indoor",
         "park": "outdoor", "public_square": "outdoor", "street_pedestrian": "outdoor",
         "street_traffic": "outdoor", "bus": "transportation", "metro": "transportation",
         "tram": "transportation"})
BROAD_CLASSES = ("indoor", "outdoor", "transportation")

# Room type of the reverberant scenes (see rooms.ROOM_TYPES) and the wet energy fraction range.
_ROOM = MappingProxyType({"airport": ("hall", (0.55, 0.85)), "shopping_mall": ("mall", (0.45, 0.75)),
         "metro_station": ("station", (0.5, 0.8)), "bus": ("bus", (0.2, 0.45)),
         "tram": ("tram", (0.2, 0.45)), "metro": ("metro", (0.25, 0.5))})


def room_types() -> tuple[str, ...]:
    """The room types (rooms.ROOM_TYPES) that the reverberant scenes use."""
    return tuple(sorted({room for room, _ in _ROOM.values()}))


@dataclass(frozen=True)
class Location:
    """Fixed random traits of one recording location (drawn from seed + scene + city + id)."""

    scene: str
    city: str
    location: int
    eq_anchors: tuple[float, ...]
    eq_gains: tuple[float, ...]
    level: dict
    rate: dict
    room_index: int
    wet: float
    f0: float
    slope: float
    voice_shift: float

    @staticmethod
    def draw(seed: int, scene: str, city: str, location: int, strength: float = 1.0) -> "Location":
        rng = np.random.default_rng([seed, key_int("location", scene, city, location)])
        crng = np.random.default_rng([seed, key_int("city", city)])
        anchors = tuple(np.geomspace(60.0, 16000.0, 9).tolist())
        city_eq = crng.normal(0.0, 1.5, len(anchors))
        gains = tuple((city_eq + rng.normal(0.0, 3.0 * strength, len(anchors))).tolist())
        comps = ("bed", "crowd", "talk", "steps", "traffic", "wind", "birds", "music", "announce",
                 "engine", "whine", "clatter", "squeal", "hum", "horn", "passby", "children", "trains")
        city_traffic = crng.normal(0.0, 2.0)
        level = {c: float(rng.normal(0.0, 3.0 * strength)) for c in comps}
        level["traffic"] += city_traffic
        level["passby"] += city_traffic
        rate = {c: float(math.exp(rng.normal(0.0, 0.35 * strength))) for c in comps}
        room, wet = _ROOM.get(scene, (None, (0.0, 0.0)))
        return Location(scene=scene, city=city, location=location, eq_anchors=anchors, eq_gains=gains,
                        level=level, rate=rate, room_index=int(rng.integers(0, 1 << 16)),
                        wet=float(rng.uniform(*wet)) if room else 0.0,
                        f0=float(math.exp(rng.uniform(-0.35, 0.35))),
                        slope=float(rng.normal(0.0, 1.0 * strength)),
                        voice_shift=float(math.exp(crng.normal(0.0, 0.05))))


class _Mix:
    """Accumulates components at given levels (dB re the bed)."""

    def __init__(self, n: int):
        self.x = np.zeros(n, dtype=np.float32)

    def add(self, sig: np.ndarray, level_db: float, start: int = 0) -> None:
        dsp.add_at(self.x, sig, start, dsp.db(level_db))


def _events(rng, mix: _Mix, sr: int, dur: float, rate: float, make, level_db: float, spread_db: float = 4.0):
    """Place Poisson-distributed short events made by make(rng) -> signal."""
    k = rng.poisson(rate * dur)
    for _ in range(k):
        ev = make(rng)
        start = int(rng.uniform(-0.3 * ev.shape[0], dur * sr))
        mix.add(ev, level_db + rng.uniform(-spread_db, spread_db), start)


def _bed(rng, sr, n, center, width, slope, lo=25.0, hi=None, am_hz=0.2, am_db=1.5):
    fn = dsp.bandpass_fn(center, width, -35.0, slope)
    x = dsp.shaped_noise(rng, n, sr, lambda f: fn(f) + dsp.band_curve_db(f, lo, hi))
    return x * dsp.am_envelope(rng, n, sr, am_hz, am_db)


def _babble_bed(rng, sr, n, lvl_var=2.5):
    """Many distant talkers: speech-shaped noise with weak syllabic modulation."""
    fn = dsp.bandpass_fn(rng.uniform(450, 650), rng.uniform(2.5, 3.5), -40.0, -2.0)
    x = dsp.shaped_noise(rng, n, sr, fn)
    return x * dsp.am_envelope(rng, n, sr, rng.uniform(3, 5), lvl_var)


def _talker(rng, sr, dur, loc: Location, far: bool, child: bool = False):
    if child:
        p = dict(f0=280.0, formant_shift=1.3, syll_rate=4.5, pitch_st=6.0)
    elif rng.random() < 0.5:
        p = dict(f0=115.0, formant_shift=1.0 * loc.voice_shift)
    else:
        p = dict(f0=210.0, formant_shift=1.17 * loc.voice_shift)
    x = sounds.voice(rng, sr, dur, pause=0.35, **p)
    return dsp.butter(x, sr, hi=3500.0) if far else x


def _pa_announcement(rng, sr):
    dur = rng.uniform(2.5, 5.0)
    chime = sounds.bell(rng, sr, 1.2, f0=rng.uniform(550, 800), ratios=(1.0, 2.0, 3.0), decay=0.5,
                        strike_rate=2.5, regularity=1.0)
    speech = sounds.voice(rng, sr, dur, f0=rng.choice([115.0, 210.0]), pause=0.15, band=(350.0, 3400.0))
    return np.concatenate([chime * 0.7, speech])


def _horn(rng, sr):
    return sounds.alarm(rng, sr, rng.uniform(0.2, 0.9), f0=rng.uniform(330, 480), wave="saw", on=5.0,
                        off=0.0, n_harm=14)


def _siren(rng, sr):
    return sounds.alarm(rng, sr, rng.uniform(3, 6), f0=rng.uniform(600, 900), wave="saw", n_harm=6,
                        on=10.0, off=0.0, sweep_st=rng.uniform(5, 9), sweep_hz=rng.uniform(0.3, 1.2))


def _birds(rng, sr, dur):
    return sounds.call(rng, sr, dur, f0=rng.uniform(2500, 4500), contour=rng.choice(["trill", "arch", "down"]),
                       sweep_st=7, call_dur=0.15, call_rate=1.2, n_harm=2, rolloff=2.0, noise=0.02,
                       bout=4, bout_gap=0.05)


def _steps(rng, sr, dur, rate):
    return sounds.impacts(rng, sr, dur, rate=rate, regularity=0.8, click_ms=4, bright_hz=5000,
                          res_hz=rng.uniform(150, 500), res_tau=0.015, res_mix=0.4, level_db=6)


def scene_mix(rng: np.random.Generator, sr: int, dur: float, loc: Location) -> np.ndarray:
    """The sum of loc.scene's sound components before location colouring and room (float32)."""
    n = int(round(dur * sr))
    s, L, R = loc.scene, loc.level, loc.rate
    m = _Mix(n)
    r = lambda c: R[c]  # noqa: E731
    lv = lambda c, base: base + L[c]  # noqa: E731

    if BROAD[s] == "indoor":
        m.add(_babble_bed(rng, sr, n), lv("crowd", {"airport": -1, "shopping_mall": 0, "metro_station": -3}[s]))
        m.add(_bed(rng, sr, n, 300.0, 4.0, -3.0 + loc.slope, am_db=0.8), lv("bed", -8))
        m.add(sounds.texture(rng, sr, dur, center=900, width_oct=3, slope=-4, hum_f0=rng.choice([50.0, 100.0]),
                             hum_level=0.8, am_hz=0.1, am_db=1.0), lv("hum", -12))
        m.add(_steps(rng, sr, dur, 2.0 * r("steps")), lv("steps", -7))
        _events(rng, m, sr, dur, 0.25 * r("talk"), lambda g: _talker(g, sr, g.uniform(1.5, 4), loc, False),
                lv("talk", -4))
        if s == "airport":
            m.add(sounds.texture(rng, sr, dur, center=600, width_oct=2.5, am_hz=10.0 * r("squeal"), am_db=4.0),
                  lv("clatter", -9))  # trolley / suitcase wheels on tiles
            _events(rng, m, sr, dur, 0.08 * r("announce"), lambda g: _pa_announcement(g, sr), lv("announce", -2))
        elif s == "shopping_mall":
            music = sounds.tonal(rng, sr, dur, f0=rng.uniform(180, 330), n_harm=6, note_dur=0.35, decay=0.3,
                                 chord=2)
            m.add(dsp.butter(music, sr, lo=150, hi=6000), lv("music", -6))
            m.add(_talker(rng, sr, dur, loc, False, child=True), lv("children", -12))
        else:  # metro_station
            k = rng.poisson(0.12 * dur * r("trains"))
            for _ in range(k):
                tr = sounds.machine(rng, sr, rng.uniform(4, 8), f0=45 * loc.f0, n_harm=10, noise=1.2,
                                    noise_hi=2500, passby=0.15)
                m.add(tr, lv("trains", 2), int(rng.uniform(-2, dur) * sr))
            _events(rng, m, sr, dur, 0.15 * r("squeal"), lambda g: sounds.alarm(
                g, sr, g.uniform(0.5, 2.0), f0=g.uniform(2500, 4000), wave="sine", on=9, off=0,
                sweep_st=2, sweep_hz=0.5), lv("squeal", -10))
            _events(rng, m, sr, dur, 0.05 * r("announce"), lambda g: _pa_announcement(g, sr), lv("announce", -3))
    elif BROAD[s] == "outdoor":
        base_traffic = {"street_traffic": 2, "street_pedestrian": -6, "public_square": -8, "park": -14}[s]
        m.add(_bed(rng, sr, n, 180.0 * loc.f0, 3.5, -5.0 + loc.slope, am_hz=0.15, am_db=3.0),
              lv("traffic", base_traffic))
        m.add(sounds.texture(rng, sr, dur, center=120, width_oct=4, slope=-6, am_hz=0.4, am_db=6),
              lv("wind", {"park": -2, "public_square": -6, "street_pedestrian": -9, "street_traffic": -9}[s]))
        m.add(_bed(rng, sr, n, 1500.0, 5.0, -2.0, am_db=1.0), lv("bed", -16))
        birds = {"park": 0.5, "public_square": 0.25, "street_pedestrian": 0.08, "street_traffic": 0.03}[s]
        if rng.random() < min(1.0, birds * 2 * r("birds")):
            m.add(_birds(rng, sr, dur), lv("birds", -8 if s == "park" else -12))
        if s == "street_traffic":
            m.add(sounds.machine(rng, sr, dur, f0=35 * loc.f0, n_harm=8, noise=1.5, noise_hi=3000,
                                 passby=0.35 * r("passby")), lv("passby", 0))
            _events(rng, m, sr, dur, 0.08 * r("horn"), lambda g: _horn(g, sr), lv("horn", -4))
            if rng.random() < 0.3:  # a bus or lorry idling nearby
                m.add(sounds.machine(rng, sr, dur, f0=32 * loc.f0, n_harm=10, var_st=1.0, noise=0.6,
                                     noise_hi=1200), lv("engine", rng.uniform(-8.0, 0.0)))
            _events(rng, m, sr, dur, 0.02, lambda g: _siren(g, sr), lv("horn", -8))
        else:
            pb = {"street_pedestrian": 0.15, "public_square": 0.08, "park": 0.03}[s]
            m.add(sounds.machine(rng, sr, dur, f0=35 * loc.f0, n_harm=8, noise=1.5, noise_hi=2500,
                                 passby=pb * r("passby")), lv("passby", -8))
            steps_db = {"street_pedestrian": -4, "public_square": -8, "park": -12}[s]
            m.add(_steps(rng, sr, dur, 2.0 * r("steps")), lv("steps", steps_db))
            talk_rate = {"street_pedestrian": 0.3, "public_square": 0.25, "park": 0.1}[s]
            _events(rng, m, sr, dur, talk_rate * r("talk"),
                    lambda g: _talker(g, sr, g.uniform(1, 3), loc, False), lv("talk", -3))
            if s == "public_square":
                m.add(_babble_bed(rng, sr, n, 3.0), lv("crowd", -7))
                m.add(_bed(rng, sr, n, 2500.0, 4.0, 0.0, am_db=0.5), lv("squeal", -11))  # fountain
            if s == "park":
                _events(rng, m, sr, dur, 0.1 * r("children"),
                        lambda g: _talker(g, sr, g.uniform(1, 3), loc, True, child=True), lv("children", -6))
    else:  # transportation
        f0 = {"bus": 32.0, "tram": 60.0, "metro": 48.0}[s] * loc.f0
        eng = sounds.machine(rng, sr, dur, f0=f0, n_harm=10, rolloff=1.0, var_st=3.0, var_hz=0.15,
                             noise={"bus": 0.6, "tram": 1.0, "metro": 1.8}[s],
                             noise_lo=30, noise_hi={"bus": 1200, "tram": 1800, "metro": 3000}[s],
                             am_hz=0.0)
        # Engine load varies within a ride (stops, acceleration); outside traffic leaks in.
        m.add(eng, lv("engine", 2 + rng.uniform(-8.0, 0.0)))
        m.add(_bed(rng, sr, n, 90.0, 3.0, -6.0 + loc.slope, am_hz=0.5, am_db=3.0), lv("bed", 0))
        if s != "metro":
            m.add(_bed(rng, sr, n, 180.0 * loc.f0, 3.5, -5.0, am_hz=0.15, am_db=3.0),
                  lv("traffic", rng.uniform(-14.0, -4.0)))
        _events(rng, m, sr, dur, 0.15 * r("talk"), lambda g: _talker(g, sr, g.uniform(1.5, 4), loc, False),
                lv("talk", -6))
        if s == "bus":
            if rng.random() < 0.4:
                m.add(sounds.impacts(rng, sr, dur, rate=1.4, regularity=1.0, click_ms=2, res_hz=2500,
                                     res_tau=0.01, burst=0.5), lv("clatter", -14))  # indicator
            _events(rng, m, sr, dur, 0.04, lambda g: sounds.texture(g, sr, 1.5, center=3000, width_oct=3),
                    lv("squeal", -8))  # door / brake air
        elif s == "tram":
            m.add(sounds.machine(rng, sr, dur, f0=rng.uniform(250, 600), n_harm=3, noise=0.0, var_st=6,
                                 var_hz=0.1, jitter=0.0), lv("whine", -10))
            _events(rng, m, sr, dur, 0.06 * r("squeal"), lambda g: sounds.bell(
                g, sr, 1.5, f0=g.uniform(900, 1400), decay=0.4, strike_rate=3), lv("squeal", -8))
        else:  # metro
            m.add(sounds.impacts(rng, sr, dur, rate=1.3 * r("clatter"), regularity=0.9, pairs=0.9,
                                 pair_gap=0.1, click_ms=8, bright_hz=2500, res_hz=180, res_tau=0.03),
                  lv("clatter", -4))
            m.add(sounds.machine(rng, sr, dur, f0=rng.uniform(300, 700), n_harm=3, noise=0.0, var_st=4,
                                 var_hz=0.1, jitter=0.0), lv("whine", -9))
    return m.x


def scene_spectrum(rng: np.random.Generator, sr: int, dur: float, loc: Location, rirs: RirBank | None,
                   memo: dsp.Memo | None = None) -> tuple[np.ndarray, int, int]:
    """The scene of loc.scene in the frequency domain: (rfft spectrum, nfft, clip samples n).

    The component mix is coloured by the location's EQ and (indoor and vehicle scenes) mixed
    dry / wet with a room impulse response of the bank, both by multiplication in one spectrum of
    nfft >= n + len(rir) - 1 points (a linear convolution; the EQ is zero-phase).  Scaled to unit
    RMS over the clip's n samples (Parseval; the reverberant tail beyond n, ~1 % of the energy,
    is counted).  memo keeps the RIR spectra for the next clips.  rng draws this clip's events.
    """
    x = scene_mix(rng, sr, dur, loc)
    n = x.shape[0]
    room = _ROOM.get(loc.scene) if rirs is not None else None
    h = rirs.get(room[0], loc.room_index)[0] if room else None
    nfft = dsp.fft_len(n + (h.shape[0] - 1 if h is not None else 0))
    spec = sfft.rfft(x, nfft)
    # Location colouring (site acoustics, source distances).
    spec *= dsp.gain_on_bins(lambda f: dsp.curve_db(f, loc.eq_anchors, loc.eq_gains), nfft, sr)
    if h is not None:
        memo = memo if memo is not None else dsp.Memo()
        rir = memo.get(("rir", room[0], rirs.slot(loc.room_index), nfft), lambda: sfft.rfft(h, nfft))
        spec *= np.float32(math.sqrt(1 - loc.wet)) + np.float32(math.sqrt(loc.wet)) * rir
    energy = dsp.spectrum_energy(spec, nfft)
    spec *= np.float32(1.0 / math.sqrt(energy / n + 1e-20))
    return spec, nfft, n


def synth_scene(rng: np.random.Generator, sr: int, dur: float, loc: Location, rirs: RirBank | None,
                memo: dsp.Memo | None = None) -> np.ndarray:
    """The dry-to-room scene signal (float32, RMS ~1) of loc.scene; rng draws this clip's events."""
    spec, nfft, n = scene_spectrum(rng, sr, dur, loc, rirs, memo)
    return sfft.irfft(spec, nfft)[:n]
