"""Procedural sound synthesisers: eight parameterised families.

Every family is a function ``fn(rng, sr, dur, **params) -> float32 (samples,)`` of unit-ish RMS.
The ``params`` are class-level centre values (see :mod:`tf_scenes.synth.classes`); each call draws
its own instance values around them (``spread`` = relative jitter, log-uniform), so two clips of one
class differ and neighbouring classes overlap.

Families:
  tonal    musical notes: harmonic partials, pluck/sustain envelopes, vibrato (instruments, music)
  bell     struck inharmonic partials with long decays (bells, gongs, chimes, glockenspiel)
  texture  stationary shaped noise with slow modulation, hum and crackle (rain, wind, fans, fire)
  impacts  impulse trains through resonators: clicks, knocks, steps, bubbles, crashes, creaks
  voice    formant-filtered glottal / breath source in syllables (speech, crowd, screams, coughs)
  call     harmonic calls with pitch contours and pulsing (birds, dogs, cats, frogs, crickets)
  machine  harmonic engine + noise with rpm drift, sweeps, pulsing and pass-bys (engines, saws)
  alarm    electronic waveforms with on/off patterns and sweeps (alarms, phones, sirens, horns)
"""

from __future__ import annotations

import math
from types import MappingProxyType

import numpy as np

from . import dsp

# Vowel formants (Hz) of an adult male voice (Peterson & Barney style averages): /a e i o u/.
_VOWELS_F = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410],
                      [300, 870, 2240]], dtype=np.float64)
_VOWELS_BW = np.array([90.0, 110.0, 170.0])
_VOWELS_G = np.array([1.0, 0.6, 0.35])


def jit(rng: np.random.Generator, value: float, spread: float) -> float:
    """value * exp(U(-spread, spread)): multiplicative jitter, never changes sign."""
    return float(value) * math.exp(rng.uniform(-spread, spread)) if spread > 0 else float(value)


def _n(sr: int, dur: float) -> int:
    return max(int(round(dur * sr)), 16)


# ------------------------------------------------------------------------------------------- tonal
def tonal(rng, sr, dur, f0=220.0, range_st=7, n_harm=8, rolloff=1.2, inharm=0.0, note_dur=0.5,
          legato=0.9, attack=0.01, decay=0.4, vibrato_hz=0.0, vibrato_cents=0.0, noise=0.0,
          hi=None, chord=1, even=1.0, spread=0.15):
    """Sequence of notes from a pentatonic set around f0 (decay=0: sustained notes); `even`
    scales the even harmonics (clarinet-like when small)."""
    n = _n(sr, dur)
    out = np.zeros(n, dtype=np.float32)
    f0 = jit(rng, f0, spread)
    rolloff = jit(rng, rolloff, spread)
    note_dur = jit(rng, note_dur, spread)
    scale = np.array([0, 2, 4, 7, 9, 12, 14, 16, 19])
    scale = scale[scale <= max(range_st, 0)] if range_st > 0 else np.array([0])
    amps = np.arange(1, n_harm + 1, dtype=np.float64) ** -rolloff * 10 ** (rng.uniform(-3, 3, n_harm) / 20)
    amps[1::2] *= even
    t = 0.0
    while t < dur:
        nd = note_dur * math.exp(rng.uniform(-0.3, 0.3))
        ln = int(min(nd * legato + (3 * decay if decay else 0.05), dur - t + 0.05) * sr)
        if ln > 32:
            base = f0 * 2 ** (rng.choice(scale) / 12 + rng.normal(0, 0.005))
            for c in range(max(1, chord)):
                fc = base * (1.0, 1.26, 1.5, 2.0)[c % 4]
                track = np.full(ln, fc, dtype=np.float32)
                if vibrato_hz and vibrato_cents:
                    tt = np.arange(ln, dtype=np.float32) / sr
                    track *= 2 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * vibrato_hz * tt + rng.uniform(0, 6.28)))
                x = dsp.harmonic_stack(track, sr, amps, inharm, rng.uniform(0, 6.28, n_harm).astype(np.float32))
                x *= dsp.adsr(ln, sr, attack, min(0.05, nd * 0.3), decay if decay else None)
                if not decay:  # sustained: cut at the note's end
                    x[int(nd * legato * sr):] = 0.0
                    x = dsp.fade(x[: max(int(nd * legato * sr), 64)], sr, 0.02)
                dsp.add_at(out, x, int(t * sr + c * rng.uniform(0, 0.03) * sr), 10 ** (rng.uniform(-4, 0) / 20))
        t += nd
    if noise:
        out = dsp.normalize_rms(out) + noise * dsp.shaped_noise(rng, n, sr, dsp.tilt_fn(-3, 200, 8000)) * (out != 0).mean()
    if hi:
        out = dsp.butter(out, sr, hi=jit(rng, hi, spread))
    return dsp.normalize_rms(out)


# -------------------------------------------------------------------------------------------- bell
def bell(rng, sr, dur, f0=800.0, ratios=(1.0, 2.0, 2.76, 5.4, 8.93), decay=1.0, strike_rate=0.5,
         regularity=0.8, brightness=0.7, spread=0.15):
    """Struck partials f0*ratios with decays decay/ratio**0.6; strikes about strike_rate per s."""
    n = _n(sr, dur)
    out = np.zeros(n, dtype=np.float32)
    f0, decay = jit(rng, f0, spread), jit(rng, decay, spread)
    ratios = np.asarray(ratios, dtype=np.float64) * np.exp(rng.uniform(-0.01, 0.01, len(ratios)))
    amps = brightness ** np.arange(len(ratios)) * 10 ** (rng.uniform(-4, 2, len(ratios)) / 20)
    ln = min(n, int(min(5 * decay, 8.0) * sr))
    keep = ratios * f0 < 0.45 * sr
    taus = decay / ratios[keep] ** 0.6
    phases = rng.uniform(0, 6, keep.sum())
    tmpl = np.zeros(ln, dtype=np.float32)
    for a, r, tau, ph in zip(amps[keep], ratios[keep], taus, phases):
        tmpl += np.float32(a) * dsp.damped_sine(ln, sr, f0 * r, tau, ph)
    tmpl[: int(0.002 * sr)] *= np.linspace(0, 1, int(0.002 * sr), dtype=np.float32)
    tpos = rng.uniform(0, 0.2)
    period = 1.0 / max(strike_rate, 1e-3)
    while tpos < dur:
        dsp.add_at(out, tmpl, int(tpos * sr), 10 ** (rng.uniform(-6, 0) / 20))
        tpos += period * (regularity + (1 - regularity) * rng.exponential(1.0))
    return dsp.normalize_rms(out)


# ----------------------------------------------------------------------------------------- texture
def texture(rng, sr, dur, center=1000.0, width_oct=4.0, slope=-3.0, floor_db=-30.0, lo=20.0, hi=None,
            am_hz=0.5, am_db=3.0, hum_f0=0.0, hum_level=0.0, hum_harm=6, crackle_rate=0.0,
            crackle_level=0.0, crackle_hz=3000.0, spread=0.15):
    """Stationary coloured noise (Gaussian band on log-frequency + tilt) with optional hum and crackle."""
    n = _n(sr, dur)
    c, w = jit(rng, center, spread), jit(rng, width_oct, spread)
    slope = slope + rng.uniform(-1, 1) * spread * 4
    band = dsp.bandpass_fn(c, w, floor_db, slope)
    hi_j = jit(rng, hi, spread) if hi else None
    x = dsp.shaped_noise(rng, n, sr, lambda f: band(f) + dsp.band_curve_db(f, lo, hi_j))
    x *= dsp.am_envelope(rng, n, sr, jit(rng, am_hz, spread), am_db)
    if hum_f0 and hum_level:
        f = jit(rng, hum_f0, spread * 0.5)
        track = f * (1 + 0.003 * dsp.slow_curve(rng, n, sr, 0.5))
        amps = np.arange(1, hum_harm + 1, dtype=np.float64) ** -1.0 * 10 ** (rng.uniform(-6, 0, hum_harm) / 20)
        x += jit(rng, hum_level, spread) * dsp.normalize_rms(dsp.harmonic_stack(track.astype(np.float32), sr, amps))
    if crackle_rate and crackle_level:
        k = rng.poisson(jit(rng, crackle_rate, spread) * dur)
        imp = np.zeros(n, dtype=np.float32)
        idx = rng.integers(0, n, k)
        np.add.at(imp, idx, rng.standard_normal(k).astype(np.float32) * rng.pareto(2.5, k).astype(np.float32))
        kern = dsp.damped_sine(int(0.004 * sr), sr, crackle_hz, 0.0008)
        cr = dsp.fftconvolve(imp, kern)[:n]
        cr = dsp.butter(cr, sr, lo=crackle_hz * 0.4)
        x += jit(rng, crackle_level, spread) * dsp.normalize_rms(cr)
    return dsp.normalize_rms(x)


# ----------------------------------------------------------------------------------------- impacts
def impacts(rng, sr, dur, rate=4.0, regularity=0.5, click_ms=5.0, bright_hz=3000.0, click_lo=None, res_hz=800.0,
            res_tau=0.03, res_mix=0.5, glide=0.0, pairs=0.0, pair_gap=0.12, level_db=4.0, tail_tau=0.0,
            tail_hz=2000.0, debris=0, hum_f0=0.0, hum_level=0.0, bed=0.0, bed_hz=1500.0, burst=1.0,
            spread=0.15):
    """Impulse train (periodic .. Poisson by `regularity`) of click+resonance templates.

    glide > 0 makes bubbles (rising resonance); tail_tau adds a noise tail (crashes, shots);
    debris adds small bright clicks after each hit (shatter); burst < 1 confines the hits to a
    random fraction of the clip; bed adds a continuous band noise; hum adds a motor hum.
    """
    n = _n(sr, dur)
    out = np.zeros(n, dtype=np.float32)
    rate, res_hz = jit(rng, rate, spread), jit(rng, res_hz, spread)
    res_tau, click_ms = jit(rng, res_tau, spread), jit(rng, click_ms, spread)
    bright = jit(rng, bright_hz, spread)
    click_sos = dsp.butter_sos(sr, click_lo, bright)
    tail_sos = dsp.butter_sos(sr, None, tail_hz) if tail_tau else None
    templates = []
    for _ in range(6):
        fr = res_hz * math.exp(rng.uniform(-0.15, 0.15))
        ln = int((max(click_ms / 1000 * 4, res_tau * 5, tail_tau * 5) + 0.002) * sr)
        ln = max(ln, 64)
        t = np.arange(ln, dtype=np.float32) / sr
        click = rng.standard_normal(ln).astype(np.float32) * np.exp(-t / (click_ms / 1000))
        click = dsp.butter(click, sr, sos=click_sos)
        if glide:
            ph = 2 * np.pi * np.cumsum(fr * (1 + glide * (1 - np.exp(-t / res_tau)))) / sr
            res = (np.sin(ph) * np.exp(-t / res_tau)).astype(np.float32)
        else:
            res = dsp.damped_sine(ln, sr, fr, res_tau, rng.uniform(0, 6.28))
        tmpl = (1 - res_mix) * dsp.normalize_rms(click) + res_mix * dsp.normalize_rms(res)
        if tail_tau:
            tail = dsp.butter(rng.standard_normal(ln).astype(np.float32), sr, sos=tail_sos) * np.exp(-t / tail_tau)
            tmpl = tmpl + 0.7 * dsp.normalize_rms(tail) * dsp.rms(tmpl)
        if debris:
            for _d in range(debris):
                d0 = int(rng.exponential(0.08) * sr)
                dl = min(int(0.01 * sr), ln - d0)
                if dl > 8:
                    tmpl[d0:d0 + dl] += (0.5 * rng.uniform(0.2, 1) * dsp.damped_sine(
                        dl, sr, rng.uniform(2500, 9000), 0.002) * np.abs(tmpl).max())
        templates.append(dsp.fade(tmpl, sr, 0.001))
    a, b = 0.0, dur
    if burst < 1.0:
        span = dur * burst
        a = rng.uniform(0, dur - span)
        b = a + span
    period = 1.0 / max(rate, 1e-3)
    tpos = a + rng.uniform(0, min(period, 0.3))
    while tpos < b:
        g = 10 ** (rng.uniform(-level_db, 0) / 20)
        dsp.add_at(out, templates[rng.integers(len(templates))], int(tpos * sr), g)
        if pairs and rng.random() < pairs:
            dsp.add_at(out, templates[rng.integers(len(templates))], int((tpos + jit(rng, pair_gap, 0.2)) * sr), g * 0.7)
        tpos += period * (regularity + (1 - regularity) * rng.exponential(1.0))
    out = dsp.normalize_rms(out)
    if bed:
        out += jit(rng, bed, spread) * dsp.shaped_noise(rng, n, sr, dsp.bandpass_fn(bed_hz, 3.0, -30))
    if hum_f0 and hum_level:
        amps = np.arange(1, 9, dtype=np.float64) ** -0.8
        track = np.full(n, jit(rng, hum_f0, spread * 0.5), dtype=np.float32)
        out += jit(rng, hum_level, spread) * dsp.normalize_rms(dsp.harmonic_stack(track, sr, amps))
    return dsp.normalize_rms(out)


# ------------------------------------------------------------------------------------------- voice
def voice(rng, sr, dur, f0=120.0, formant_shift=1.0, syll_rate=4.0, syll_dur=0.18, voiced=0.9,
          breath=0.05, n_voices=1, pitch_st=4.0, vibrato_hz=0.0, vibrato_cents=0.0, rough=0.0,
          pause=0.25, fricatives=0.3, band=None, tilt=-9.0, spread=0.15):
    """Speech-like babble: glottal sawtooth (or breath noise) through vowel formant banks.

    Every syllable is filtered by its vowel's bank (5 vowels x 3 formants) in one batch of short
    FFTs (:func:`dsp.formant_pieces`); fricative noise is drawn only for the samples it covers.
    """
    n = _n(sr, dur)
    t = np.arange(n, dtype=np.float32) / sr
    n_voices = max(1, int(round(jit(rng, n_voices, spread))) if n_voices > 1 else 1)
    shift = jit(rng, formant_shift, spread * 0.5)
    syllables = []  # (vowel, start sample, source) for the formant banks
    fric = np.zeros(n, dtype=np.float32)
    for _ in range(n_voices):
        f = jit(rng, f0, spread)
        v = min(jit(rng, voiced, spread * 0.5), 1.0)
        nz_level = breath + max(0.0, 1 - v)
        sd, rate = jit(rng, syll_dur, spread), jit(rng, syll_rate, spread)
        tpos = rng.uniform(0, min(1.0 / rate, 0.3 * dur))
        p_prev = rng.standard_normal()
        first = True
        while tpos < dur:
            d = sd * math.exp(rng.uniform(-0.4, 0.4))
            p_next = 0.6 * p_prev + 0.8 * rng.standard_normal()  # intonation: correlated steps
            if rng.random() > pause or first:  # every voice utters at least one syllable
                first = False
                a, b = int(tpos * sr), min(int((tpos + d) * sr), n)
                if b - a > 16:
                    m = b - a
                    u = np.linspace(0.0, 1.0, m, dtype=np.float32)
                    contour = f * 2 ** (pitch_st / 24 * (p_prev + (p_next - p_prev) * u))
                    if vibrato_hz and vibrato_cents:
                        contour *= 2 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * vibrato_hz * t[a:b]))
                    if rough:
                        contour *= 1 + rough * rng.standard_normal(m).astype(np.float32)
                    phase = np.cumsum(contour) / sr + rng.uniform(0, 1)
                    src = v * (1.0 - 2.0 * dsp.frac(phase)).astype(np.float32)
                    if nz_level:
                        src += nz_level * rng.standard_normal(m).astype(np.float32)
                    w = np.sin(np.pi * u).clip(0) ** 0.7
                    syllables.append((int(rng.integers(5)), a, w * src * np.float32(10 ** (rng.uniform(-6, 0) / 20))))
                    if fricatives and rng.random() < fricatives:
                        fl = min(int(rng.uniform(0.03, 0.09) * sr), m)
                        fric[a:a + fl] += np.hanning(fl).astype(np.float32) * rng.uniform(0.2, 0.6)
            p_prev = p_next
            tpos += d + rng.exponential(1.0 / rate) * 0.5
    out = dsp.formant_pieces(syllables, n, sr, _VOWELS_F * shift, np.broadcast_to(_VOWELS_BW * shift, (5, 3)),
                             _VOWELS_G)
    out = dsp.normalize_rms(out)
    hiss = np.flatnonzero(fric)  # samples under a fricative (a few % of the clip)
    if hiss.size:
        fn = dsp.filtered_noise(rng, hiss.size, sr, lo=3500 * formant_shift, hi=min(9000 * formant_shift, 0.45 * sr))
        out[hiss] += 0.5 * fn * fric[hiss]
    if tilt != -9.0:  # shouting / whispering brighten the spectrum
        out = dsp.filter_fft(out, sr, dsp.tilt_fn((tilt + 9.0) / 2))
    if band:
        out = dsp.butter(out, sr, lo=band[0], hi=band[1], order=3)
    return dsp.normalize_rms(out)


# -------------------------------------------------------------------------------------------- call
def call(rng, sr, dur, f0=600.0, contour="arch", sweep_st=5.0, call_dur=0.3, call_rate=1.5, n_harm=5,
         rolloff=1.0, noise=0.1, am_hz=0.0, am_depth=0.0, bout=1, bout_gap=0.08, rough=0.0,
         formant=None, regularity=0.3, spread=0.15):
    """Animal-like calls: harmonic tone with a pitch contour (arch/up/down/flat/trill), optional
    pulsing (am_hz), roughness and breath noise, grouped in bouts of `bout` calls."""
    n = _n(sr, dur)
    out = np.zeros(n, dtype=np.float32)
    f0, call_dur, rate = jit(rng, f0, spread), jit(rng, call_dur, spread), jit(rng, call_rate, spread)
    sweep = jit(rng, sweep_st, spread) if sweep_st else 0.0
    amps = np.arange(1, n_harm + 1, dtype=np.float64) ** -jit(rng, rolloff, spread) * 10 ** (
        rng.uniform(-4, 2, n_harm) / 20)
    noise_sos = dsp.butter_sos(sr, f0 * 0.7, min(f0 * n_harm * 1.5, 0.45 * sr)) if noise else None
    tpos = rng.uniform(0, min(1.0 / rate, 0.5, 0.3 * dur))
    while tpos < dur:
        nb = max(1, int(round(jit(rng, bout, 0.3)))) if bout > 1 else 1
        for bi in range(nb):
            cd = call_dur * math.exp(rng.uniform(-0.25, 0.25))
            ln = int(cd * sr)
            if ln < 32:
                continue
            u = np.linspace(0.0, 1.0, ln, dtype=np.float32)
            if contour == "arch":
                st = sweep * np.sin(np.pi * u)
            elif contour == "up":
                st = sweep * u
            elif contour == "down":
                st = sweep * (1 - u)
            elif contour == "trill":
                st = sweep * 0.5 * (1 + np.sin(2 * np.pi * 12 * u * cd))
            else:
                st = sweep * 0.1 * np.sin(2 * np.pi * 3 * u)
            track = f0 * math.exp(rng.uniform(-0.08, 0.08)) * 2 ** (st / 12)
            if rough:
                track = track * (1 + rough * rng.standard_normal(ln).astype(np.float32) * 0.5)
            x = dsp.harmonic_stack(track.astype(np.float32), sr, amps, 0.0,
                                   rng.uniform(0, 6.28, n_harm).astype(np.float32))
            if noise:
                nz = rng.standard_normal(ln).astype(np.float32)
                nz = dsp.butter(nz, sr, sos=noise_sos)
                x = dsp.normalize_rms(x) + noise * dsp.normalize_rms(nz)
            if am_hz and am_depth:
                x *= 1 - am_depth * (0.5 + 0.5 * np.cos(2 * np.pi * jit(rng, am_hz, 0.05) * u * cd))
            x *= dsp.adsr(ln, sr, min(0.02, cd * 0.2), min(0.04, cd * 0.3))
            dsp.add_at(out, x, int(tpos * sr), 10 ** (rng.uniform(-6, 0) / 20))
            tpos += cd + jit(rng, bout_gap, 0.3) * (bi < nb - 1)
        tpos += (1.0 / rate) * (regularity + (1 - regularity) * rng.exponential(1.0))
    if formant:
        out = out + 1.5 * dsp.resonator(out, sr, jit(rng, formant, spread), 3.0)
    return dsp.normalize_rms(out)


# ----------------------------------------------------------------------------------------- machine
def machine(rng, sr, dur, f0=40.0, n_harm=12, rolloff=0.8, inharm=0.0, var_st=2.0, var_hz=0.2,
            sweep_st=0.0, sweep_hz=0.0, ramp_st=0.0, jitter=0.01, noise=0.3, noise_lo=50.0,
            noise_hi=4000.0, am_hz=0.0, am_depth=0.0, pulse_hz=0.0, duty=0.5, decay=0.0,
            passby=0.0, hi=None, spread=0.15):
    """Motor / engine: harmonic series on a drifting f0 (rpm), broadband noise, modulation.

    sweep_* : periodic pitch sweep (sirens); ramp_st: monotonic rise (accelerating);
    am_*    : amplitude modulation (rotor blades, drums); pulse_hz/duty: on-off strokes (saws,
    horns); decay > 0: each pulse is a struck, decaying hit; passby > 0: vehicle pass-bys with
    Doppler about every 1/passby s.
    """
    n = _n(sr, dur)
    t = np.arange(n, dtype=np.float32) / sr
    f0 = jit(rng, f0, spread)
    st = var_st * dsp.slow_curve(rng, n, sr, jit(rng, var_hz, spread)) * 0.5
    if sweep_st and sweep_hz:
        st = st + jit(rng, sweep_st, spread) * 0.5 * (1 + np.sin(2 * np.pi * jit(rng, sweep_hz, spread) * t + rng.uniform(0, 6)))
    if ramp_st:
        st = st + ramp_st * np.clip(t / dur * rng.uniform(0.8, 1.5), 0, 1)
    track = f0 * dsp.semitones(st)
    if jitter:
        track = track * (1 + jitter * dsp.control_noise(rng, n, sr, 400.0))
    gain = np.ones(n, dtype=np.float32)
    if passby:
        # Pass-bys: closest approach every ~1/passby s; Doppler factor c/(c - v cos).  Level and
        # Doppler change over d0 / v >= 0.2 s: computed at 200 Hz and interpolated to the samples.
        tp = np.sort(rng.uniform(0, dur, max(1, rng.poisson(passby * dur))))
        step = max(int(round(sr / 200.0)), 1)
        tc_grid = np.arange(-(-n // step) + 1) * (step / sr)
        g = np.zeros(tc_grid.shape)
        dop = np.ones(tc_grid.shape)
        for tc in tp:
            v, d0 = rng.uniform(8, 20), rng.uniform(4, 15)
            x = v * (tc_grid - tc)
            r2 = x * x + d0 * d0
            w = (d0 * d0 / r2)
            g += w
            dop += (343.0 / (343.0 + v * x / np.sqrt(r2)) - 1) * (w > 0.05)
        gain = dsp.upsample_linear(0.05 + g, step, n)
        track = track * dsp.upsample_linear(dop, step, n)
    amps = np.arange(1, n_harm + 1, dtype=np.float64) ** -jit(rng, rolloff, spread) * 10 ** (
        rng.uniform(-5, 3, n_harm) / 20)
    x = dsp.normalize_rms(dsp.harmonic_stack(track.astype(np.float32), sr, amps, inharm))
    if noise:
        nz = dsp.shaped_noise(rng, n, sr, dsp.tilt_fn(-3.0, jit(rng, noise_lo, spread), jit(rng, noise_hi, spread)))
        x = x + jit(rng, noise, spread) * nz
    if am_hz and am_depth:
        ph = 2 * np.pi * np.cumsum(jit(rng, am_hz, spread) * track / f0) / sr
        x *= (1 - am_depth * (0.5 + 0.5 * np.cos(ph)) ** 2).astype(np.float32)
    if pulse_hz:
        p = jit(rng, pulse_hz, spread)
        phase = dsp.frac(t * p + rng.uniform(0, 1))
        if decay:
            env = np.exp(-phase / (p * jit(rng, decay, spread))).astype(np.float32)
        else:
            env = dsp.butter((phase < duty).astype(np.float32), sr, hi=60.0)
        x *= env
    x *= gain
    if hi:
        x = dsp.butter(x, sr, hi=jit(rng, hi, spread))
    return dsp.normalize_rms(x)


# ------------------------------------------------------------------------------------------- alarm
def alarm(rng, sr, dur, f0=1000.0, wave="square", n_harm=9, on=0.2, off=0.2, ratio=1.0,
          sweep_st=0.0, sweep_hz=0.0, groups=0, group_gap=1.0, spread=0.08):
    """Electronic tone: square/saw/sine, beeping on/off, alternating two tones (ratio != 1) or
    sweeping (sirens); `groups` beeps per group with group_gap pauses (phone rings)."""
    n = _n(sr, dur)
    t = np.arange(n, dtype=np.float32) / sr
    f0 = jit(rng, f0, spread)
    on, off = jit(rng, on, spread), jit(rng, off, spread)
    k = np.arange(1, n_harm + 1, dtype=np.float64)
    if wave == "square":
        amps = np.where(k % 2 == 1, 1.0 / k, 0.0)
    elif wave == "saw":
        amps = 1.0 / k
    else:
        amps = np.where(k == 1, 1.0, 0.0)
    period = on + off
    ph = (t + rng.uniform(0, period)) / period
    idx = np.floor(ph)
    track = np.full(n, f0, dtype=np.float32)
    if ratio != 1.0:
        track = np.where(idx.astype(np.int64) & 1, f0 * ratio, f0).astype(np.float32)
    if sweep_st and sweep_hz:
        track = track * dsp.semitones(jit(rng, sweep_st, spread) * 0.5 * (1 - np.cos(2 * np.pi * jit(rng, sweep_hz, spread) * t)))
    gate = (dsp.frac(ph) < on / period).astype(np.float32) if off > 0 else np.ones(n, dtype=np.float32)
    if groups:
        gp = groups * period + group_gap
        gate *= (dsp.frac((t + rng.uniform(0, gp)) / gp) < groups * period / gp).astype(np.float32)
    gate = dsp.butter(gate, sr, hi=300.0)
    x = dsp.harmonic_stack(track.astype(np.float32), sr, amps) * gate
    return dsp.normalize_rms(x)


FAMILIES = MappingProxyType({
    "tonal": tonal, "bell": bell, "texture": texture, "impacts": impacts, "voice": voice,
    "call": call, "machine": machine, "alarm": alarm,
})


def render(rng: np.random.Generator, sr: int, dur: float, family: str, params: dict) -> np.ndarray:
    """Render one sound of `family` with class-level `params` (instance values drawn from rng)."""
    try:
        fn = FAMILIES[family]
    except KeyError:
        raise ValueError(f"unknown synthesiser family {family!r}; known: {sorted(FAMILIES)}") from None
    return fn(rng, sr, dur, **params)
