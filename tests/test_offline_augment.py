"""Two-stage offline augmentations (Hu et al. 2021, Sec. 3.2) on short synthetic signals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import firwin2, lfilter

from tf_scenes.audio import read_audio, write_audio
from tf_scenes.datasets import tau2020
from tf_scenes.datasets.tau2020 import AscRecord
from tf_scenes.pipelines import offline_augment as oa

SR = 44100


def _rec(name: str, root=None) -> AscRecord:
    p = tau2020.parse_tau_filename(name)
    return AscRecord(path=(root / name) if root else name, filename=name, scene=p["scene"], city=p["city"],
                     location=p["location"], segment=p["segment"], device=p["device"],
                     identifier=p["identifier"], clip_id=p["clip_id"], broad=p["broad"])


def _tone(freq, seconds=1.0, amp=0.5):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_freq(y, sr=SR):
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)), n=8 * len(y)))
    return np.argmax(spec) * sr / (8 * len(y))


# ----------------------------------------------------------------------------- STFT / spectrum correction

def test_stft_roundtrip_and_shape():
    x = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    spec = oa.stft(x)
    assert spec.shape == (1025, 1 + SR // 1024)
    np.testing.assert_allclose(oa.istft(spec, len(x)), x, atol=1e-5)
    # a ratio of ones is the identity, same length
    y = oa.apply_spectrum_correction(x[:30001], np.ones(1025))
    assert y.shape == (30001,)
    np.testing.assert_allclose(y, x[:30001], atol=1e-5)


# Two "devices" = two smooth FIR filters (129 taps << 2048-sample window).
FREQS = [0, 2000, 6000, 12000, 22050]
H_B = firwin2(129, FREQS, [1.0, 0.9, 0.5, 0.25, 0.2], fs=SR)
H_C = firwin2(129, FREQS, [0.5, 0.6, 1.0, 0.8, 0.6], fs=SR)


def _response(h):
    w = np.fft.rfftfreq(2048, 1 / SR)
    return np.abs(np.exp(-2j * np.pi * np.outer(w / SR, np.arange(len(h)))) @ h)


def test_spectrum_correction_recovers_device_filter():
    rng = np.random.default_rng(1)
    a_clips = [rng.normal(0, 0.1, int(1.5 * SR)) for _ in range(3)]
    pairs = [(a, lfilter(H_B, 1, a), "b") for a in a_clips] + [(a, lfilter(H_C, 1, a), "c") for a in a_clips]
    ratio, per_dev = oa.spectrum_correction_reference(pairs, return_per_device=True)
    assert ratio.shape == (1025,) and ratio.dtype == np.float32
    band = slice(5, 1000)  # away from DC and Nyquist
    for dev, h in (("b", H_B), ("c", H_C)):
        rel = np.abs(per_dev[dev][band] / _response(h)[band] - 1)
        # mean over frames (paper): right in the typical bin, heavy-tailed in a few
        assert np.median(rel) < 0.03 and np.percentile(rel, 90) < 0.12, (dev, np.median(rel))
    robust = oa.spectrum_correction_reference([p for p in pairs if p[2] == "b"], reduce="median")
    assert np.max(np.abs(robust[band] / _response(H_B)[band] - 1)) < 0.04
    # the paper's reference: the equal-weight mean over devices
    want = (_response(H_B) + _response(H_C)) / 2
    rel = np.abs(ratio[band] / want[band] - 1)
    assert np.median(rel) < 0.03
    # applying it to a new device-A clip imposes that mean response
    x = rng.normal(0, 0.1, int(1.5 * SR))
    y = oa.apply_spectrum_correction(x, ratio)
    assert y.shape == x.shape
    gain = np.abs(oa.stft(y)).mean(axis=1) / np.abs(oa.stft(x)).mean(axis=1)
    assert np.median(np.abs(gain[band] / ratio[band] - 1)) < 0.03


def test_spectrum_correction_pairs_records_by_segment():
    rng = np.random.default_rng(2)
    names = ["audio/bus-paris-3-4-a.wav", "audio/bus-paris-3-4-b.wav", "audio/bus-paris-3-4-s3.wav",
             "audio/park-milan-5-6-a.wav", "audio/park-milan-5-6-s3.wav", "audio/park-milan-9-9-c.wav"]
    recs = [_rec(n) for n in names]
    pairs = oa.pair_parallel(recs)
    assert [(a.filename, d.filename) for a, d in pairs["s3"]] == [
        ("audio/bus-paris-3-4-a.wav", "audio/bus-paris-3-4-s3.wav"), ("audio/park-milan-5-6-a.wav",
                                                                     "audio/park-milan-5-6-s3.wav")]
    assert len(pairs["b"]) == 1 and pairs["c"] == []  # park-milan-9-9 has no device-A twin
    audio = {}
    for n in names:
        a = audio.setdefault(n.replace(n.rsplit("-", 1)[1], "a.wav"), rng.normal(0, 0.1, SR // 2))
        audio[n] = a if n.endswith("-a.wav") else lfilter(H_B if n.endswith("-b.wav") else H_C, 1, a)
    calls = []

    def read(path):
        calls.append(path)
        return audio[path]

    ratio, per_dev = oa.spectrum_correction_reference(recs, read, return_per_device=True)
    assert set(per_dev) == {"b", "s3"} and len(calls) == 6
    np.testing.assert_allclose(ratio, (per_dev["b"] + per_dev["s3"]) / 2, rtol=1e-6)
    # the reference code's effective behaviour: s3 only
    only_s3 = oa.spectrum_correction_reference(recs, read, devices=("s3",))
    np.testing.assert_allclose(only_s3, per_dev["s3"], rtol=1e-6)


# ----------------------------------------------------------------------------- compander / reverb

def test_compander_two_level_square_wave():
    # |x| is constant within each half, so the envelope converges to the amplitude exactly.
    n = SR  # 1 s per level
    sq = np.sign(np.sin(2 * np.pi * 441 * np.arange(n) / SR + 0.1))
    x = np.concatenate([0.01 * sq, 0.5 * sq])
    y = oa.compand(x, SR, "heavy")
    lo, hi = np.abs(y[n - 4410:n]).mean(), np.abs(y[-4410:]).mean()
    # heavy curve (-90,-70) (-70,-50) (-40,-30) (0,-20): at -40 dB gain +10 dB; at -6.02 dB
    # gain = 10 - 30 * (40 - 6.02) / 40 = -15.49 dB.
    assert lo == pytest.approx(0.01 * 10 ** (10 / 20), rel=0.02)
    g_hi = 10 - 30 * (40 + 20 * np.log10(0.5)) / 40
    assert hi == pytest.approx(0.5 * 10 ** (g_hi / 20), rel=0.02)
    range_in, range_out = 20 * np.log10(0.5 / 0.01), 20 * np.log10(hi / lo)
    assert range_in == pytest.approx(33.98, abs=0.01) and range_out == pytest.approx(8.49, abs=0.3)
    # attack 0.2 s: 0.2 s after the step the envelope has covered 1 - 1/e of it
    env = oa.envelope(x, SR)
    assert env[n + int(0.2 * SR)] == pytest.approx(0.01 + (0.5 - 0.01) * (1 - np.exp(-1)), rel=0.01)
    with pytest.raises(ValueError, match="increasing"):
        oa.compand(x, SR, [(0, 0), (-10, -10)])


def test_reverb_drc_length_params_determinism():
    x = np.random.default_rng(3).normal(0, 0.05, SR).astype(np.float32)
    y1, p1 = oa.reverb_drc(x, SR, np.random.default_rng(7), rt60_range=(0.2, 0.4))
    y2, p2 = oa.reverb_drc(x, SR, np.random.default_rng(7), rt60_range=(0.2, 0.4))
    assert y1.shape == x.shape and y1.dtype == np.float32 and np.all(np.isfinite(y1))
    np.testing.assert_array_equal(y1, y2)
    assert p1 == p2
    assert 0.2 <= p1["rt60"] <= 0.4
    assert p1["curve"] in oa.COMPAND_CURVES and p1["attack"] == 0.2 and p1["decay"] == 0.3
    dims, src, mic = np.array(p1["room_dim"]), np.array(p1["source"]), np.array(p1["mic"])
    assert np.all((src > 0) & (src < dims) & (mic > 0) & (mic < dims))
    assert np.linalg.norm(src - mic) >= 1.0
    json.dumps(p1)  # JSON-able for the manifest
    y3, p3 = oa.reverb_drc(x, SR, np.random.default_rng(8), rt60_range=(0.2, 0.4))
    assert p3["rt60"] != p1["rt60"] and not np.array_equal(y3, y1)


def test_reverb_aligned_to_direct_path():
    x = np.zeros(SR // 2, np.float32)
    x[5000] = 0.5
    y, p = oa.reverb_drc(x, SR, np.random.default_rng(11), rt60_range=(0.2, 0.3))
    assert abs(int(np.argmax(np.abs(y))) - 5000) <= 2
    assert np.abs(y[5100:]).sum() > 0  # a reverberant tail follows
    assert np.abs(y[:4990]).max() < 0.05 * np.abs(y).max()  # nothing arrives before the direct path


# ----------------------------------------------------------------------------- simple augmentations

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_speed_change_scales_frequency(seed):
    x = _tone(1000.0)
    y, p = oa.speed_change(x, SR, np.random.default_rng(seed))
    r = p["rate"]
    assert 0.5 <= r <= 2.0 and y.shape == x.shape
    valid = min(len(x), int(len(x) / r)) - 100
    assert _peak_freq(y[:valid]) == pytest.approx(1000.0 * r, rel=0.005)
    if r > 1:
        assert np.all(y[valid + 200:] == 0)  # zero-padded end


@pytest.mark.parametrize("seed", [0, 5])
def test_pitch_shift_moves_tone(seed):
    x = _tone(440.0, 1.5)
    y, p = oa.pitch_shift(x, SR, np.random.default_rng(seed))
    n = p["semitones"]
    assert -4 <= n <= 4 and y.shape == x.shape
    assert _peak_freq(y[SR // 4:SR // 4 + SR]) == pytest.approx(440.0 * 2 ** (n / 12), rel=0.005)


def test_noise_and_same_class_mix():
    x = np.zeros(SR, np.float32)
    y, p = oa.add_noise(x, np.random.default_rng(0))
    assert p == {"std": 0.01} and np.std(y) == pytest.approx(0.01, rel=0.02)
    y1, y2 = _tone(300), _tone(500, 0.5)
    rng = np.random.default_rng(4)
    fs = []
    for _ in range(200):
        y, p = oa.same_class_mix(y1, y2, rng)
        fs += [p["f1"], p["f2"]]
    assert 0.5 <= min(fs) and max(fs) <= 1.0 and max(fs) - min(fs) > 0.4
    padded = np.concatenate([y2, np.zeros(len(y1) - len(y2), np.float32)])
    np.testing.assert_allclose(y, p["f1"] * y1 + p["f2"] * padded, atol=1e-6)


# ----------------------------------------------------------------------------- generate_augmented_set

NAMES = ["audio/bus-paris-3-4-a.wav", "audio/bus-paris-3-5-a.wav", "audio/park-milan-5-6-a.wav",
         "audio/park-milan-5-7-a.wav", "audio/bus-paris-3-4-b.wav", "audio/park-milan-5-6-s1.wav"]


@pytest.fixture()
def small_set(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "tau"
    for n in NAMES:
        write_audio(root / n, rng.normal(0, 0.05, SR // 2), SR, subtype="PCM_24")
    return [_rec(n, root) for n in NAMES]


class CountingReader:
    def __init__(self, fail_after=None):
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self, path):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("simulated interruption")
        return read_audio(path, sr=SR)[0]


FAST = oa.OfflineAugmentConfig(rt60_range=(0.2, 0.3))


def test_generate_augmented_set_and_cache(tmp_path, small_set):
    out = tmp_path / "aug"
    reader = CountingReader()
    recs = oa.generate_augmented_set(small_set, out, kinds=oa.KINDS, seed=3, read_fn=reader, cfg=FAST,
                                     progress=False)
    assert len(recs) == 4 * len(oa.KINDS)
    assert {r.device for r in recs} == {"a"}
    r0 = next(r for r in recs if r.filename == "audio/bus-paris-3-4-a-reverb_drc.wav")
    assert (r0.scene, r0.clip_id, r0.broad) == ("bus", "bus-paris-3-4", "transportation")
    info = sf.info(str(r0.path))
    assert (info.samplerate, info.subtype, info.frames) == (SR, "PCM_24", SR // 2)
    man = json.loads((out / "manifest.json").read_text())
    assert len(man["clips"]) == len(recs)
    by_kind = {}
    for c in man["clips"]:
        by_kind.setdefault(c["kind"], []).append(c)
    assert {c["params"]["curve"] for c in by_kind["reverb_drc"]} <= set(oa.COMPAND_CURVES)
    assert all(0.2 <= c["params"]["rt60"] <= 0.3 for c in by_kind["reverb_drc"])
    assert all(-4 <= c["params"]["semitones"] <= 4 for c in by_kind["pitch_shift"])
    for c in by_kind["same_class_mix"]:
        assert c["partner"] != c["source"] and c["partner"].split("-")[0] == c["source"].split("-")[0]
    # the csv lists the same clips and is readable by the TAU reader
    listed = tau2020.read_fold_csv(out / "augmented.csv", out, check_files=True, allow_augmented=True)
    assert [r.filename for r in listed] == [r.filename for r in recs]
    assert [r.scene for r in listed] == [r.scene for r in recs]

    # second call: nothing read, nothing rewritten, same records
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "audio").iterdir()}
    reader2 = CountingReader()
    again = oa.generate_augmented_set(small_set, out, kinds=oa.KINDS, seed=3, read_fn=reader2, cfg=FAST,
                                      progress=False)
    assert reader2.calls == 0
    assert again == recs
    assert {p: p.stat().st_mtime_ns for p in (out / "audio").iterdir()} == mtimes

    # changing one kind's parameter recomputes that kind only
    reader3 = CountingReader()
    cfg = oa.OfflineAugmentConfig(rt60_range=(0.2, 0.3), noise_std=0.02)
    oa.generate_augmented_set(small_set, out, kinds=oa.KINDS, seed=3, read_fn=reader3, cfg=cfg, progress=False)
    assert reader3.calls == 4
    noise = json.loads((out / "manifests" / "noise.json").read_text())
    assert {c["params"]["std"] for c in noise["clips"]} == {0.02}


def test_generate_resumes_after_interruption(tmp_path, small_set):
    out = tmp_path / "aug"
    with pytest.raises(RuntimeError, match="simulated"):
        oa.generate_augmented_set(small_set, out, kinds=["noise"], seed=1, read_fn=CountingReader(fail_after=2),
                                  progress=False)
    assert not (out / "manifests" / "noise.json").exists()
    reader = CountingReader()
    recs = oa.generate_augmented_set(small_set, out, kinds=["noise"], seed=1, read_fn=reader, progress=False)
    assert reader.calls == 2 and len(recs) == 4
    assert not (out / "manifests" / "noise.journal.jsonl").exists()
    # per-clip draws do not depend on the other clips: a one-clip run gives the same noise
    solo = tmp_path / "solo"
    oa.generate_augmented_set([small_set[0]], solo, kinds=["noise"], seed=1, progress=False)
    a = read_audio(out / "audio/bus-paris-3-4-a-noise.wav")[0]
    b = read_audio(solo / "audio/bus-paris-3-4-a-noise.wav")[0]
    np.testing.assert_array_equal(a, b)
    seeds = {c["source"]: c["seed"] for c in json.loads((out / "manifest.json").read_text())["clips"]}
    assert len(set(seeds.values())) == 4


def test_generate_errors(tmp_path, small_set):
    with pytest.raises(ValueError, match="unknown augmentation kind"):
        oa.generate_augmented_set(small_set, tmp_path / "x", kinds=["reverb"], progress=False)
    only_b = [r for r in small_set if r.device == "b"]
    with pytest.raises(Exception, match="no records of device"):
        oa.generate_augmented_set(only_b, tmp_path / "x", kinds=["noise"], progress=False)
    with pytest.raises(Exception, match="no parallel device-A"):
        oa.spectrum_correction_reference([r for r in small_set if r.device == "a"])


def test_same_class_mix_draws_partners_from_every_training_clip(tmp_path):
    """With a 10 % selection of device-A clips (as the quick profile augments), every selected
    clip finds a partner: partners come from all training clips of its scene (any device), never
    from its own recording (the same segment on another device).  Before, only the selected clips
    were candidates and most clips were skipped."""
    rng = np.random.default_rng(0)
    names = []
    for scene in ("airport", "bus", "park", "tram"):
        for loc in range(5):
            names.append(f"audio/{scene}-paris-{loc}-{loc}-a.wav")
        names.append(f"audio/{scene}-paris-0-0-b.wav")  # parallel recording of the first segment
    root = tmp_path / "tau"
    for n in names:
        write_audio(root / n, rng.normal(0, 0.05, 4096), SR, subtype="PCM_24")
    records = [_rec(n, root) for n in names]
    a = [r for r in records if r.device == "a"]
    chosen = [a[i] for i in sorted(np.random.default_rng(1).permutation(len(a))[:max(1, round(0.1 * len(a)))])]
    assert len(chosen) == 2
    out = oa.generate_augmented_set(chosen, tmp_path / "aug", kinds=["same_class_mix"], seed=0, progress=False,
                                    partner_pool=records)
    assert len(out) == len(chosen)  # nobody skipped
    clips = json.loads((tmp_path / "aug" / "manifest.json").read_text())["clips"]
    by_name = {r.filename: r for r in records}
    for c in clips:
        src, partner = by_name[c["source"]], by_name[c["partner"]]
        assert partner.scene == src.scene and partner.clip_id != src.clip_id
    # the pool is part of the cache key: another pool regenerates
    pool = [r for r in records if r.device == "a"]
    oa.generate_augmented_set(chosen, tmp_path / "aug", kinds=["same_class_mix"], seed=0, progress=False,
                              partner_pool=pool)
    again = json.loads((tmp_path / "aug" / "manifest.json").read_text())["clips"]
    assert all(by_name[c["partner"]].device == "a" for c in again)
    # across many seeds, the partners cover every other recording of the scene, device b included
    seen = set()
    for s in range(30):
        oa.generate_augmented_set(chosen[:1], tmp_path / f"s{s}", kinds=["same_class_mix"], seed=s, progress=False,
                                  partner_pool=records)
        seen.add(json.loads((tmp_path / f"s{s}" / "manifest.json").read_text())["clips"][0]["partner"])
    src = chosen[0]
    want = {r.filename for r in records if r.scene == src.scene and r.clip_id != src.clip_id}
    assert seen == want


def test_short_clip_is_one_audio_error_naming_the_file(tmp_path, small_set):
    from tf_scenes.errors import AudioError

    short = small_set[0].path
    write_audio(short, np.zeros(1500, np.float32), SR, subtype="PCM_24")
    for kind in ("spectrum_correction", "noise"):
        with pytest.raises(AudioError, match=r"bus-paris-3-4-a\.wav: too short for augmentation: 1500 samples"):
            oa.generate_augmented_set(small_set, tmp_path / kind, kinds=[kind], seed=0, progress=False,
                                      correction_ratio=np.ones(1025, np.float32))
    with pytest.raises(AudioError, match=r"bus-paris-3-4-a\.wav: too short for the spectrum-correction ratio"):
        oa.spectrum_correction_reference(small_set)
