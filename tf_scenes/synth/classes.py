"""Class -> synthesiser tables of the event, tagging, SED and ESC-50 stand-ins.

Each entry is a :class:`ClassSound`: a family of :mod:`tf_scenes.synth.sounds`, its class-level
centre parameters (instances jitter around them) and a typical duration range in seconds.
Classes that share a family and have nearby parameters are confusable on purpose.

ESC-50 is built differently on purpose: every coarse group uses ONE family (animals: call,
natural soundscapes & water: texture, human non-speech: voice, interior/domestic: impacts,
exterior/urban: machine) and the ten fine classes of a group differ only by parameters, so the
coarse level is easier than the fine level (the hierarchy is real in the audio).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class ClassSound:
    family: str
    params: dict = field(default_factory=dict)
    dur: tuple[float, float] = (1.0, 8.0)


def T(dur=(2, 12), **p):  # tonal
    return ClassSound("tonal", p, dur)


def B(dur=(1, 8), **p):  # bell
    return ClassSound("bell", p, dur)


def X(dur=(3, 15), **p):  # texture
    return ClassSound("texture", p, dur)


def I(dur=(1, 8), **p):  # noqa: E743  impacts
    return ClassSound("impacts", p, dur)


def V(dur=(1, 8), **p):  # voice
    return ClassSound("voice", p, dur)


def C(dur=(1, 6), **p):  # call
    return ClassSound("call", p, dur)


def M(dur=(2, 12), **p):  # machine
    return ClassSound("machine", p, dur)


def A(dur=(1, 6), **p):  # alarm
    return ClassSound("alarm", p, dur)


# Shared building blocks (used by several datasets under different names).
_BARK = C(f0=450, contour="down", sweep_st=4, call_dur=0.15, call_rate=1.5, n_harm=8, rolloff=0.8, noise=0.6,
          bout=2, formant=1200, dur=(1, 6))
_BURP = V(f0=60, formant_shift=0.9, syll_rate=1.0, syll_dur=0.6, voiced=1.0, rough=0.2, pause=0.5, pitch_st=2,
          fricatives=0, dur=(0.5, 3))
_SHATTER = I(rate=0.4, click_ms=10, bright_hz=9000, res_hz=3500, res_tau=0.05, res_mix=0.5, tail_tau=0.2,
             tail_hz=8000, debris=12, burst=0.3, dur=(1, 5))
_KNOCK = I(rate=3, regularity=0.85, click_ms=3, bright_hz=2500, res_hz=220, res_tau=0.03, res_mix=0.7, burst=0.4,
           dur=(1, 6))
_STEPS = I(rate=1.8, regularity=0.85, click_ms=5, bright_hz=4000, res_hz=300, res_tau=0.02, res_mix=0.4,
           dur=(2, 12))
_MALE = V(f0=115, dur=(1, 10))
_FEMALE = V(f0=210, formant_shift=1.17, dur=(1, 10))
_PHONE = A(f0=1200, wave="square", n_harm=5, on=0.04, off=0.01, ratio=1.25, groups=40, group_gap=2.0, dur=(2, 8))
_COUGH = V(f0=250, voiced=0.3, breath=1.0, syll_rate=1.2, syll_dur=0.2, pause=0.3, fricatives=0.8, tilt=-4,
           dur=(0.5, 4))
_LAUGH = V(f0=230, syll_rate=5, syll_dur=0.12, voiced=0.6, breath=0.5, pause=0.1, pitch_st=5, fricatives=0.2,
           dur=(1, 6))

FSD2019 = MappingProxyType({
    "Accelerating_and_revving_and_vroom": M(f0=30, n_harm=14, ramp_st=12, var_st=4, noise=0.5, noise_hi=3000),
    "Accordion": T(f0=260, n_harm=10, rolloff=0.7, decay=0, note_dur=0.6, vibrato_hz=6, vibrato_cents=8, chord=3,
                   noise=0.05),
    "Acoustic_guitar": T(f0=196, n_harm=12, rolloff=1.1, inharm=1e-4, decay=0.6, note_dur=0.4, attack=0.003),
    "Applause": I(rate=120, regularity=0.0, click_ms=2, bright_hz=6000, res_hz=1200, res_tau=0.003, res_mix=0.3,
                  level_db=8, dur=(2, 10)),
    "Bark": _BARK,
    "Bass_drum": I(rate=2, regularity=0.9, click_ms=3, bright_hz=1500, res_hz=60, res_tau=0.12, res_mix=0.9,
                   glide=-0.3),
    "Bass_guitar": T(f0=70, n_harm=10, rolloff=1.3, decay=0.5, note_dur=0.4, attack=0.005),
    "Bathtub_(filling_or_washing)": X(center=1500, width_oct=4, slope=-1, am_hz=1.5, am_db=3, crackle_rate=200,
                                      crackle_level=0.6, crackle_hz=1500),
    "Bicycle_bell": B(f0=2800, ratios=(1, 1.48, 2.1, 2.9), decay=0.4, strike_rate=4, regularity=0.9, dur=(0.5, 4)),
    "Burping_and_eructation": _BURP,
    "Bus": M(f0=30, n_harm=12, var_st=3, noise=1.0, noise_hi=1500, dur=(3, 15)),
    "Buzz": M(f0=150, n_harm=20, rolloff=0.5, var_st=0.5, noise=0.1, jitter=0.02, dur=(1, 8)),
    "Car_passing_by": M(f0=40, n_harm=10, noise=1.5, noise_hi=4000, passby=0.2, dur=(3, 12)),
    "Cheering": V(f0=250, formant_shift=1.1, n_voices=10, syll_rate=2, syll_dur=0.6, pause=0.05, pitch_st=8,
                  tilt=-3, dur=(2, 10)),
    "Chewing_and_mastication": I(rate=2.5, regularity=0.7, click_ms=15, bright_hz=4000, res_hz=400, res_tau=0.02,
                                 res_mix=0.2, debris=3),
    "Child_speech_and_kid_speaking": V(f0=280, formant_shift=1.3, syll_rate=4.5, pitch_st=6),
    "Chink_and_clink": B(f0=3000, ratios=(1, 2.3, 3.9, 5.6), decay=0.15, strike_rate=2, regularity=0.3, dur=(0.5, 4)),
    "Chirp_and_tweet": C(f0=3500, contour="trill", sweep_st=7, call_dur=0.12, call_rate=2, n_harm=2, rolloff=2.0,
                         noise=0.02, bout=3, dur=(1, 10)),
    "Church_bell": B(f0=400, ratios=(0.5, 1, 1.2, 1.5, 2, 2.5, 3), decay=2.5, strike_rate=0.7, regularity=0.95,
                     dur=(3, 20)),
    "Clapping": I(rate=4, regularity=0.9, click_ms=2, bright_hz=5000, res_hz=1500, res_tau=0.004, res_mix=0.3,
                  dur=(1, 6)),
    "Computer_keyboard": I(rate=8, regularity=0.3, click_ms=1, bright_hz=8000, res_hz=2500, res_tau=0.006,
                           res_mix=0.5, dur=(1, 10)),
    "Crackle": X(center=3000, width_oct=5, am_db=1, crackle_rate=60, crackle_level=3.0, crackle_hz=4000, dur=(1, 10)),
    "Cricket": C(f0=4500, contour="flat", sweep_st=0.5, call_dur=0.3, call_rate=2, n_harm=2, rolloff=2, noise=0.0,
                 am_hz=40, am_depth=0.95, dur=(2, 12)),
    "Crowd": V(f0=160, formant_shift=1.08, n_voices=12, syll_rate=4, pause=0.1, dur=(3, 15)),
    "Cupboard_open_or_close": I(rate=0.6, regularity=0.5, click_ms=8, bright_hz=2500, res_hz=250, res_tau=0.05,
                                res_mix=0.6, pairs=0.5, pair_gap=0.15, dur=(1, 5)),
    "Cutlery_and_silverware": B(f0=2500, ratios=(1, 2.7, 4.1), decay=0.08, strike_rate=5, regularity=0.1),
    "Dishes_and_pots_and_pans": B(f0=900, ratios=(1, 1.6, 2.3, 3.4, 4.8), decay=0.4, strike_rate=1.5,
                                  regularity=0.2),
    "Drawer_open_or_close": I(rate=0.8, click_ms=20, bright_hz=3000, res_hz=500, res_tau=0.04, res_mix=0.3, bed=0.5,
                              bed_hz=1200, burst=0.5, dur=(1, 5)),
    "Drip": I(rate=2, regularity=0.8, click_ms=1, bright_hz=4000, res_hz=1200, res_tau=0.02, res_mix=0.9, glide=0.5,
              dur=(1, 10)),
    "Electric_guitar": T(f0=165, n_harm=16, rolloff=0.6, decay=0.8, note_dur=0.3, chord=2),
    "Fart": V(f0=80, formant_shift=0.7, voiced=1.0, rough=0.4, syll_rate=1, syll_dur=0.5, pause=0.4, pitch_st=3,
              fricatives=0, dur=(0.5, 3)),
    "Female_singing": V(f0=330, formant_shift=1.17, syll_rate=1.5, syll_dur=0.6, pause=0.05, pitch_st=7,
                        vibrato_hz=5.5, vibrato_cents=40, fricatives=0.1, dur=(2, 15)),
    "Female_speech_and_woman_speaking": _FEMALE,
    "Fill_(with_liquid)": I(rate=25, regularity=0.2, click_ms=1, res_hz=600, res_tau=0.015, res_mix=0.8, glide=0.6,
                            bed=0.6, bed_hz=1500, dur=(2, 10)),
    "Finger_snapping": I(rate=1.5, regularity=0.8, click_ms=1.5, bright_hz=7000, res_hz=2000, res_tau=0.005,
                         res_mix=0.4, dur=(1, 6)),
    "Frying_(food)": X(center=5000, width_oct=4, slope=1, am_db=1, crackle_rate=300, crackle_level=1.2,
                       crackle_hz=5000),
    "Gasp": V(f0=200, voiced=0.1, breath=0.6, syll_rate=0.7, syll_dur=0.4, pause=0.3, fricatives=0, dur=(0.5, 3)),
    "Glockenspiel": B(f0=1400, ratios=(1, 2.76, 5.4), decay=0.6, strike_rate=3, regularity=0.7, dur=(1, 10)),
    "Gong": B(f0=180, ratios=(1, 1.52, 2.1, 2.7, 3.3, 4.2), decay=3.0, strike_rate=0.25, dur=(3, 20)),
    "Gurgling": I(rate=12, regularity=0.1, click_ms=2, res_hz=350, res_tau=0.03, res_mix=0.9, glide=0.8),
    "Harmonica": T(f0=520, n_harm=8, rolloff=0.9, decay=0, note_dur=0.5, chord=2, vibrato_hz=5, vibrato_cents=15,
                   noise=0.15),
    "Hi-hat": I(rate=6, regularity=0.95, click_ms=20, click_lo=6000, bright_hz=16000, res_hz=8000, res_tau=0.01,
                res_mix=0.2),
    "Hiss": X(center=6000, width_oct=3, slope=2, am_db=1, dur=(1, 8)),
    "Keys_jangling": B(f0=4000, ratios=(1, 1.3, 1.9, 2.6), decay=0.05, strike_rate=25, regularity=0.0, dur=(1, 6)),
    "Knock": _KNOCK,
    "Male_singing": V(f0=150, syll_rate=1.5, syll_dur=0.6, pause=0.05, pitch_st=7, vibrato_hz=5.5,
                      vibrato_cents=40, fricatives=0.1, dur=(2, 15)),
    "Male_speech_and_man_speaking": _MALE,
    "Marimba_and_xylophone": T(f0=520, n_harm=3, rolloff=1.5, inharm=0.02, decay=0.25, note_dur=0.25,
                               attack=0.002, dur=(1, 10)),
    "Mechanical_fan": X(center=400, width_oct=4, slope=-3, am_db=0.5, hum_f0=50, hum_level=0.5, hum_harm=8),
    "Meow": C(f0=550, contour="arch", sweep_st=5, call_dur=0.7, call_rate=0.6, n_harm=10, rolloff=1.0, noise=0.1,
              formant=1500),
    "Microwave_oven": X(center=800, width_oct=2, slope=-2, am_db=0.5, hum_f0=120, hum_level=1.2, hum_harm=6),
    "Motorcycle": M(f0=55, n_harm=16, rolloff=0.6, var_st=6, var_hz=0.4, noise=0.6, noise_hi=5000, jitter=0.02),
    "Printer": M(f0=20, n_harm=30, rolloff=0.4, pulse_hz=3, duty=0.6, noise=1.0, noise_lo=300, noise_hi=6000),
    "Purr": V(f0=25, formant_shift=0.8, voiced=1.0, breath=0.3, syll_rate=0.5, syll_dur=1.2, pause=0.05,
              pitch_st=1, fricatives=0, rough=0.1, dur=(2, 10)),
    "Race_car_and_auto_racing": M(f0=90, n_harm=10, rolloff=0.7, ramp_st=10, var_st=6, noise=0.5, noise_hi=6000,
                                  passby=0.2),
    "Raindrop": X(center=4000, width_oct=5, slope=-1, am_db=1, crackle_rate=40, crackle_level=1.5,
                  crackle_hz=2500),
    "Run": I(rate=3, regularity=0.9, click_ms=6, bright_hz=3000, res_hz=200, res_tau=0.02, res_mix=0.4, level_db=3,
             bed=0.15, bed_hz=800),
    "Scissors": I(rate=2, regularity=0.7, click_ms=25, bright_hz=7000, res_hz=3000, res_tau=0.01, res_mix=0.3,
                  pairs=0.8, pair_gap=0.06, dur=(1, 5)),
    "Screaming": V(f0=500, formant_shift=1.15, syll_rate=0.6, syll_dur=1.2, pause=0.2, pitch_st=5, rough=0.03,
                   tilt=-3, fricatives=0, dur=(1, 6)),
    "Shatter": _SHATTER,
    "Sigh": V(f0=160, voiced=0.3, breath=0.6, syll_rate=0.4, syll_dur=1.0, pause=0.2, fricatives=0, dur=(1, 4)),
    "Sink_(filling_or_washing)": X(center=2500, width_oct=4, slope=-1, am_db=2, am_hz=2, crackle_rate=100,
                                   crackle_level=0.5, crackle_hz=2500),
    "Skateboard": M(f0=12, n_harm=20, rolloff=0.5, noise=2.0, noise_lo=80, noise_hi=3000, passby=0.15, var_st=1),
    "Slam": I(rate=0.5, click_ms=5, bright_hz=3000, res_hz=120, res_tau=0.08, res_mix=0.6, tail_tau=0.15,
              tail_hz=1500, burst=0.3, dur=(0.5, 4)),
    "Sneeze": V(f0=300, voiced=0.4, breath=0.9, syll_rate=0.8, syll_dur=0.35, pause=0.3, fricatives=1.0, tilt=0,
                dur=(0.5, 3)),
    "Squeak": C(f0=1800, contour="arch", sweep_st=4, call_dur=0.25, call_rate=1.2, n_harm=6, rolloff=1.0,
                noise=0.05, dur=(0.5, 5)),
    "Stream": X(center=1200, width_oct=5, slope=-2, am_hz=3, am_db=2, crackle_rate=150, crackle_level=0.4,
                crackle_hz=1500, dur=(3, 20)),
    "Strum": T(f0=147, n_harm=12, rolloff=1.0, inharm=1e-4, decay=0.9, note_dur=0.8, attack=0.002, chord=4),
    "Tap": I(rate=3, regularity=0.6, click_ms=2, bright_hz=4000, res_hz=900, res_tau=0.01, res_mix=0.5, dur=(0.5, 6)),
    "Tick-tock": I(rate=2, regularity=1.0, click_ms=1, bright_hz=6000, res_hz=3000, res_tau=0.004, res_mix=0.6,
                   dur=(2, 12)),
    "Toilet_flush": X(center=1200, width_oct=4, slope=-2, am_hz=0.3, am_db=6, crackle_rate=80, crackle_level=0.5,
                      crackle_hz=1200, dur=(3, 10)),
    "Traffic_noise_and_roadway_noise": X(center=180, width_oct=4, slope=-5, am_hz=0.15, am_db=3, dur=(3, 20)),
    "Trickle_and_dribble": I(rate=15, regularity=0.1, click_ms=1, res_hz=1500, res_tau=0.012, res_mix=0.9, glide=0.4,
                             bed=0.2, bed_hz=2500, dur=(2, 12)),
    "Walk_and_footsteps": _STEPS,
    "Water_tap_and_faucet": X(center=3000, width_oct=3, slope=0, am_db=1, am_hz=5, dur=(2, 12)),
    "Waves_and_surf": X(center=700, width_oct=5, slope=-2, am_hz=0.15, am_db=8, dur=(4, 20)),
    "Whispering": V(f0=150, voiced=0.0, breath=0.8, syll_rate=4, fricatives=0.6),
    "Writing": I(rate=6, regularity=0.3, click_ms=30, bright_hz=7000, res_hz=3000, res_tau=0.004, res_mix=0.1,
                 bed=0.4, bed_hz=4000),
    "Yell": V(f0=320, syll_rate=1.2, syll_dur=0.5, pause=0.3, pitch_st=6, tilt=-4, dur=(0.5, 5)),
    "Zipper_(clothing)": I(rate=60, regularity=0.7, click_ms=1, bright_hz=8000, res_hz=3500, res_tau=0.002,
                           res_mix=0.3, burst=0.3, dur=(0.5, 3)),
})

FSD2018 = MappingProxyType({
    "Acoustic_guitar": FSD2019["Acoustic_guitar"],
    "Applause": FSD2019["Applause"],
    "Bark": _BARK,
    "Bass_drum": FSD2019["Bass_drum"],
    "Burping_or_eructation": _BURP,
    "Bus": FSD2019["Bus"],
    "Cello": T(f0=130, n_harm=14, rolloff=0.9, decay=0, note_dur=0.8, vibrato_hz=5, vibrato_cents=20, noise=0.05),
    "Chime": B(f0=1200, ratios=(1, 2.0, 3.0, 4.2), decay=1.5, strike_rate=1.5),
    "Clarinet": T(f0=300, n_harm=11, rolloff=0.6, even=0.15, decay=0, note_dur=0.5),
    "Computer_keyboard": FSD2019["Computer_keyboard"],
    "Cough": _COUGH,
    "Cowbell": B(f0=560, ratios=(1, 1.5, 2.4, 3.1), decay=0.25, strike_rate=3, regularity=0.9),
    "Double_bass": T(f0=60, n_harm=12, rolloff=1.0, decay=0.7, note_dur=0.5),
    "Drawer_open_or_close": FSD2019["Drawer_open_or_close"],
    "Electric_piano": T(f0=330, n_harm=6, rolloff=1.8, inharm=1e-4, decay=1.0, note_dur=0.5, chord=3),
    "Fart": FSD2019["Fart"],
    "Finger_snapping": FSD2019["Finger_snapping"],
    "Fireworks": I(rate=0.7, click_ms=8, bright_hz=2000, res_hz=80, res_tau=0.1, res_mix=0.4, tail_tau=0.5,
                   tail_hz=1200, debris=8, dur=(2, 10)),
    "Flute": T(f0=600, n_harm=4, rolloff=2.0, decay=0, note_dur=0.5, vibrato_hz=5, vibrato_cents=15, noise=0.3),
    "Glockenspiel": FSD2019["Glockenspiel"],
    "Gong": FSD2019["Gong"],
    "Gunshot_or_gunfire": I(rate=2, regularity=0.6, click_ms=2, bright_hz=6000, res_hz=150, res_tau=0.02,
                            res_mix=0.3, tail_tau=0.12, tail_hz=3000, burst=0.5, dur=(0.5, 5)),
    "Harmonica": FSD2019["Harmonica"],
    "Hi-hat": FSD2019["Hi-hat"],
    "Keys_jangling": FSD2019["Keys_jangling"],
    "Knock": _KNOCK,
    "Laughter": _LAUGH,
    "Meow": FSD2019["Meow"],
    "Microwave_oven": FSD2019["Microwave_oven"],
    "Oboe": T(f0=440, n_harm=14, rolloff=0.4, decay=0, note_dur=0.5, vibrato_hz=5, vibrato_cents=10),
    "Saxophone": T(f0=233, n_harm=14, rolloff=0.7, decay=0, note_dur=0.35, vibrato_hz=5, vibrato_cents=25,
                   noise=0.1),
    "Scissors": FSD2019["Scissors"],
    "Shatter": _SHATTER,
    "Snare_drum": I(rate=3, regularity=0.9, click_ms=40, bright_hz=8000, res_hz=200, res_tau=0.03, res_mix=0.3),
    "Squeak": FSD2019["Squeak"],
    "Tambourine": I(rate=4, regularity=0.8, click_ms=30, bright_hz=12000, res_hz=6000, res_tau=0.05, res_mix=0.5,
                    debris=4),
    "Tearing": I(rate=80, regularity=0.3, click_ms=1, bright_hz=5000, res_hz=1500, res_tau=0.002, res_mix=0.2,
                 burst=0.4, bed=0.5, bed_hz=3000, dur=(0.5, 4)),
    "Telephone": _PHONE,
    "Trumpet": T(f0=466, n_harm=16, rolloff=0.5, decay=0, note_dur=0.4, attack=0.03, vibrato_hz=5, vibrato_cents=10),
    "Violin_or_fiddle": T(f0=440, n_harm=16, rolloff=0.8, decay=0, note_dur=0.4, vibrato_hz=6, vibrato_cents=30,
                          noise=0.05),
    "Writing": FSD2019["Writing"],
})

# TAU-NIGENS 2020 (DCASE 2020 Task 3), class indices 0-13.
NIGENS = MappingProxyType({
    "alarm": A(f0=2000, wave="square", n_harm=5, on=0.25, off=0.25, dur=(1, 5)),
    "baby": V(f0=450, formant_shift=1.4, syll_rate=1.0, syll_dur=0.7, pause=0.15, pitch_st=6, tilt=-5, fricatives=0,
              dur=(2, 6)),
    "crash": I(rate=0.6, click_ms=10, bright_hz=6000, res_hz=150, res_tau=0.1, res_mix=0.4, tail_tau=0.3,
               tail_hz=5000, debris=10, burst=0.4, dur=(1, 3)),
    "dog": _BARK,
    "engine": M(f0=35, n_harm=14, var_st=3, noise=0.8, noise_hi=2500, dur=(3, 8)),
    "female_scream": V(f0=650, formant_shift=1.2, syll_rate=0.6, syll_dur=1.0, pitch_st=5, tilt=-3, rough=0.03,
                       fricatives=0, pause=0.1, dur=(1, 3)),
    "female_speech": V(f0=210, formant_shift=1.17, dur=(2, 6)),
    "fire": X(center=800, width_oct=3, slope=-4, am_hz=0.5, am_db=2, crackle_rate=40, crackle_level=2.5,
              crackle_hz=3000, dur=(3, 10)),
    "footsteps": I(rate=1.8, regularity=0.85, click_ms=5, bright_hz=4000, res_hz=300, res_tau=0.02, res_mix=0.4,
                   dur=(2, 8)),
    "knock": I(rate=3, regularity=0.85, click_ms=3, bright_hz=2500, res_hz=220, res_tau=0.03, res_mix=0.7,
               dur=(1, 3)),
    "male_scream": V(f0=350, syll_rate=0.6, syll_dur=1.0, pitch_st=5, tilt=-3, rough=0.03, fricatives=0, pause=0.1,
                     dur=(1, 3)),
    "male_speech": V(f0=115, dur=(2, 6)),
    "phone": A(f0=1200, wave="square", n_harm=5, on=0.04, off=0.01, ratio=1.25, groups=25, group_gap=1.0,
               dur=(2, 6)),
    "piano": T(f0=262, n_harm=10, rolloff=1.4, inharm=2e-4, decay=0.8, note_dur=0.4, chord=2, dur=(3, 8)),
})

# ESC-50: target order 0-49 (category names of meta/esc50.csv) and the five coarse groups.
ESC50_GROUPS = ("animals", "natural", "human", "interior", "exterior")
ESC50_GROUP_FAMILY = MappingProxyType({"animals": "call", "natural": "texture", "human": "voice",
                                       "interior": "impacts", "exterior": "machine"})
ESC50 = MappingProxyType({
    # animals -> call
    "dog": C(f0=500, contour="down", sweep_st=4, call_dur=0.15, call_rate=1.2, n_harm=8, rolloff=0.8, noise=0.6,
             bout=2, formant=1200),
    "rooster": C(f0=650, contour="arch", sweep_st=6, call_dur=1.4, call_rate=0.25, n_harm=8, noise=0.3,
                 formant=1500, rough=0.05),
    "pig": C(f0=200, contour="flat", sweep_st=2, call_dur=0.3, call_rate=1.5, n_harm=12, noise=1.0, rough=0.15,
             bout=2),
    "cow": C(f0=140, contour="arch", sweep_st=3, call_dur=1.4, call_rate=0.3, n_harm=14, rolloff=0.8, noise=0.2,
             formant=700),
    "frog": C(f0=400, contour="flat", sweep_st=1, call_dur=0.25, call_rate=2, n_harm=6, noise=0.1, am_hz=60,
              am_depth=0.9, bout=3),
    "cat": C(f0=600, contour="arch", sweep_st=5, call_dur=0.8, call_rate=0.6, n_harm=10, noise=0.1, formant=1500),
    "hen": C(f0=800, contour="down", sweep_st=3, call_dur=0.12, call_rate=2.5, n_harm=6, noise=0.3, bout=3),
    "insects": C(f0=300, contour="flat", sweep_st=0.5, call_dur=3.0, call_rate=0.3, n_harm=12, rolloff=0.6,
                 noise=0.05, am_hz=30, am_depth=0.4),
    "sheep": C(f0=380, contour="flat", sweep_st=1, call_dur=0.9, call_rate=0.5, n_harm=12, noise=0.2, am_hz=12,
               am_depth=0.6, formant=1000),
    "crow": C(f0=550, contour="down", sweep_st=2, call_dur=0.35, call_rate=1.2, n_harm=10, noise=0.8, rough=0.1,
              bout=3),
    # natural soundscapes & water -> texture
    "rain": X(center=5000, width_oct=6, slope=-1, am_db=1, crackle_rate=300, crackle_level=0.8, crackle_hz=3000),
    "sea_waves": X(center=600, width_oct=5, slope=-2, am_hz=0.15, am_db=8),
    "crackling_fire": X(center=700, width_oct=3, slope=-4, am_hz=0.5, am_db=2, crackle_rate=40, crackle_level=2.5,
                        crackle_hz=3000),
    "crickets": X(center=4500, width_oct=0.5, floor_db=-50, am_hz=20, am_db=12),
    "chirping_birds": X(center=3500, width_oct=1.5, floor_db=-45, am_hz=15, am_db=12),
    "water_drops": X(center=1500, width_oct=4, slope=-3, floor_db=-60, am_db=0, crackle_rate=6, crackle_level=6,
                     crackle_hz=1200),
    "wind": X(center=150, width_oct=4, slope=-6, am_hz=0.3, am_db=7),
    "pouring_water": X(center=1800, width_oct=3, slope=-1, am_hz=4, am_db=3, crackle_rate=200, crackle_level=0.6,
                       crackle_hz=1800),
    "toilet_flush": X(center=1000, width_oct=4, slope=-2, am_hz=0.25, am_db=6, crackle_rate=60, crackle_level=0.6),
    "thunderstorm": X(center=80, width_oct=3, slope=-8, am_hz=0.2, am_db=9, crackle_rate=10, crackle_level=0.3,
                      crackle_hz=5000),
    # human non-speech -> voice
    "crying_baby": V(f0=450, formant_shift=1.4, syll_rate=1.0, syll_dur=0.7, pause=0.15, pitch_st=6, tilt=-5,
                     fricatives=0),
    "sneezing": V(f0=300, voiced=0.4, breath=0.9, syll_rate=0.6, syll_dur=0.35, pause=0.4, fricatives=1.0, tilt=-2),
    "clapping": V(voiced=0.0, breath=1.0, syll_rate=4, syll_dur=0.015, pause=0.0, formant_shift=2.5, fricatives=0),
    "breathing": V(f0=100, voiced=0.0, breath=0.5, syll_rate=0.35, syll_dur=1.2, pause=0.0, formant_shift=0.9,
                   fricatives=0),
    "coughing": _COUGH,
    "footsteps": V(voiced=0.0, breath=1.0, syll_rate=2, syll_dur=0.03, pause=0.05, formant_shift=0.6, fricatives=0),
    "laughing": _LAUGH,
    "brushing_teeth": V(voiced=0.0, breath=1.0, syll_rate=4, syll_dur=0.2, pause=0.0, formant_shift=2.0,
                        fricatives=1.0),
    "snoring": V(f0=40, voiced=0.8, breath=0.6, syll_rate=0.25, syll_dur=1.5, pause=0.0, formant_shift=0.8,
                 rough=0.15, fricatives=0),
    "drinking_sipping": V(f0=200, voiced=0.0, breath=1.0, syll_rate=1.5, syll_dur=0.08, formant_shift=1.6,
                          pause=0.2, fricatives=0.3),
    # interior / domestic -> impacts
    "door_wood_knock": I(rate=3, regularity=0.85, click_ms=3, bright_hz=2500, res_hz=220, res_tau=0.03, res_mix=0.7,
                         burst=0.4),
    "mouse_click": I(rate=1.5, regularity=0.5, click_ms=0.5, bright_hz=9000, res_hz=4000, res_tau=0.002,
                     res_mix=0.5, pairs=0.6, pair_gap=0.08),
    "keyboard_typing": I(rate=7, regularity=0.3, click_ms=1, bright_hz=8000, res_hz=2500, res_tau=0.006,
                         res_mix=0.5),
    "door_wood_creaks": I(rate=60, regularity=0.95, click_ms=1, bright_hz=4000, res_hz=900, res_tau=0.006,
                          res_mix=0.8, burst=0.5, level_db=2),
    "can_opening": I(rate=1.0, click_ms=2, bright_hz=8000, res_hz=3000, res_tau=0.01, tail_tau=0.25, tail_hz=6000,
                     burst=0.3, res_mix=0.4),
    "washing_machine": I(rate=1.0, regularity=0.9, click_ms=10, bright_hz=800, res_hz=90, res_tau=0.08, res_mix=0.6,
                         hum_f0=50, hum_level=0.8, bed=0.8, bed_hz=600),
    "vacuum_cleaner": I(rate=400, regularity=0.0, click_ms=0.5, bright_hz=10000, res_hz=2000, res_tau=0.001,
                        res_mix=0.2, hum_f0=180, hum_level=1.0, bed=1.5, bed_hz=2500),
    "clock_alarm": I(rate=8, regularity=1.0, click_ms=1, bright_hz=6000, res_hz=2600, res_tau=0.05, res_mix=0.95,
                     burst=0.7),
    "clock_tick": I(rate=2, regularity=1.0, click_ms=0.8, bright_hz=7000, res_hz=3200, res_tau=0.004, res_mix=0.6),
    "glass_breaking": I(rate=0.5, click_ms=8, bright_hz=9000, res_hz=3500, res_tau=0.05, res_mix=0.5, tail_tau=0.2,
                        tail_hz=8000, debris=12, burst=0.2),
    # exterior / urban -> machine
    "helicopter": M(f0=22, n_harm=30, rolloff=0.5, noise=1.0, noise_hi=3000, am_hz=18, am_depth=0.8, var_st=1),
    "chainsaw": M(f0=110, n_harm=25, rolloff=0.5, var_st=5, var_hz=0.5, noise=0.5, noise_hi=6000, jitter=0.02),
    "siren": M(f0=700, n_harm=6, rolloff=1.0, var_st=0, sweep_st=7, sweep_hz=0.4, noise=0.05, jitter=0),
    "car_horn": M(f0=400, n_harm=14, rolloff=0.7, var_st=0.1, noise=0.05, pulse_hz=0.8, duty=0.6, jitter=0.002),
    "engine": M(f0=35, n_harm=14, rolloff=0.8, var_st=3, noise=0.6, noise_hi=2000),
    "train": M(f0=50, n_harm=10, noise=1.5, noise_hi=3000, am_hz=2, am_depth=0.5, passby=0.1),
    "church_bells": M(f0=420, n_harm=8, inharm=0.02, rolloff=0.6, var_st=0, noise=0.0, pulse_hz=0.7, decay=0.6,
                      jitter=0),
    "airplane": M(f0=90, n_harm=6, rolloff=1.5, var_st=1, noise=2.5, noise_lo=60, noise_hi=2500, passby=0.08),
    "fireworks": M(f0=60, n_harm=4, noise=4.0, noise_hi=5000, pulse_hz=0.6, decay=0.15, var_st=2),
    "hand_saw": M(f0=250, n_harm=10, noise=2.0, noise_lo=1500, noise_hi=8000, pulse_hz=1.8, duty=0.45, var_st=1),
})
ESC50_CATEGORIES = tuple(ESC50)
ESC10 = frozenset({"dog", "rooster", "rain", "sea_waves", "crackling_fire", "crying_baby", "sneezing",
                   "clock_tick", "helicopter", "chainsaw"})


def esc50_group(target: int) -> str:
    return ESC50_GROUPS[target // 10]


def check_tables() -> None:
    """Every table entry names a known family and only parameters that family accepts."""
    import inspect

    from .sounds import FAMILIES

    for name, table in (("FSD2019", FSD2019), ("FSD2018", FSD2018), ("NIGENS", NIGENS), ("ESC50", ESC50)):
        for cls, spec in table.items():
            if spec.family not in FAMILIES:
                raise ValueError(f"{name}[{cls}]: unknown family {spec.family}")
            accepted = set(inspect.signature(FAMILIES[spec.family]).parameters) - {"rng", "sr", "dur"}
            bad = set(spec.params) - accepted
            if bad:
                raise ValueError(f"{name}[{cls}]: {spec.family} takes no {sorted(bad)}")
    for g, fam in ESC50_GROUP_FAMILY.items():
        gi = ESC50_GROUPS.index(g)
        for cls in ESC50_CATEGORIES[gi * 10:(gi + 1) * 10]:
            if ESC50[cls].family != fam:
                raise ValueError(f"ESC50[{cls}] must use the {g} family {fam}")
