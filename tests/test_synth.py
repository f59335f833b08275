"""Synthetic dataset generator: formats, structure, determinism, manifests, readers, the report.

The module-scoped fixture writes every kind at size "tiny" once in this process (about 7 s on an
idle 2-core machine); the slow tests generate "small" sets and check the learnability effects,
and a 150-segment scene set with 2 and 3 worker processes.
"""

import csv
import hashlib
import json
import re
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tf_scenes.errors import OutputDirError
from tf_scenes.synth import DATASET_DIRS, common, generate, generate_dataset

SEED = 0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_tiny")
    t0 = time.perf_counter()
    roots = generate("all", out, size="tiny", seed=SEED, jobs=1, progress=False)
    return {"out": out, "roots": roots, "seconds": time.perf_counter() - t0}


def _hashes(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "report.json"}


def _lines(path: Path) -> list[str]:
    return path.read_bytes().decode().replace("\r\n", "\n").rstrip("\n").split("\n")


# ----------------------------------------------------------------------------------------- general
def test_tiny_all_is_fast_and_complete(tiny):
    assert set(tiny["roots"]) == set(DATASET_DIRS)
    for kind, root in tiny["roots"].items():
        assert root.name == DATASET_DIRS[kind]
    # ~7 s on an idle 2-core machine; generous bound for a shared one.
    assert tiny["seconds"] < 60, f"tiny 'all' took {tiny['seconds']:.1f} s"


def test_manifests(tiny):
    for kind, root in tiny["roots"].items():
        m = json.loads((root / common.MANIFEST).read_text())
        assert m["synthetic"] is True and "SYNTHETIC" in m["statement"]
        assert (m["kind"], m["size"], m["seed"], m["dataset"]) == (kind, "tiny", SEED, DATASET_DIRS[kind])
        assert m["generator"] == "tf_scenes.synth" and m["generator_version"] == common.GENERATOR_VERSION
        assert m["parameters"]
        on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                         if p.is_file() and p.name not in (common.MANIFEST, "report.json"))
        assert [f for f, _ in m["files"]] == on_disk
        assert m["n_files"] == len(on_disk) and not (root / common.PARTIAL).exists()


def test_skips_complete_dataset(tiny):
    root = tiny["roots"]["events"]
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    t0 = time.perf_counter()
    generate_dataset("events", root, "tiny", SEED, progress=False)
    assert time.perf_counter() - t0 < 5
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before


def test_events_per_class_sets_the_verified_count(tiny, tmp_path):
    """generate_dataset("events", ..., events_per_class=n): n verified clips per class, the
    unverified ones as the size has them, the count in the manifest (another set than the size's)."""
    from tf_scenes.errors import ConfigError

    root = tmp_path / "ev3"
    man = generate_dataset("events", root, "tiny", SEED, jobs=1, progress=False, events_per_class=3)
    with open(root / "train.csv") as f:
        rows = list(csv.DictReader(f))
    verified = Counter(r["label"] for r in rows if r["manually_verified"] == "1")
    assert len(verified) == 41 and set(verified.values()) == {3} and len(rows) == 3 * 41
    assert man["counts"] == {"clips": 123, "verified": 123}
    assert man["parameters"]["sizes"]["verified_per_class"] == 3
    default = json.loads((tiny["roots"]["events"] / common.MANIFEST).read_text())
    assert default["parameters"]["sizes"]["verified_per_class"] == 1 and default["counts"]["clips"] == 41
    with pytest.raises(ConfigError, match="events_per_class applies to the 'events' kind only"):
        generate_dataset("asc", tmp_path / "asc", "tiny", SEED, progress=False, events_per_class=3)
    for bad in (0, 2.5, True):
        with pytest.raises(ConfigError, match="verified_per_class must be a whole number"):
            generate_dataset("events", tmp_path / "bad", "tiny", SEED, jobs=1, progress=False, events_per_class=bad)


def test_unknown_kind_or_size(tmp_path):
    from tf_scenes.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown kind"):
        generate("speech", tmp_path)
    with pytest.raises(ConfigError, match="unknown size"):
        generate_dataset("asc", tmp_path, "huge")


def test_refuses_foreign_folder(tmp_path):
    (tmp_path / "meta.csv").write_text("real data\n")
    with pytest.raises(OutputDirError, match="refusing"):
        generate_dataset("esc50", tmp_path, "tiny", SEED, progress=False)
    assert (tmp_path / "meta.csv").read_text() == "real data\n"


def test_replaces_incomplete_synthetic_folder(tmp_path):
    root = tmp_path / "ev"
    generate_dataset("events", root, "tiny", SEED, progress=False)
    (root / common.MANIFEST).unlink()  # as if interrupted before the end...
    common.atomic_write_json(root / common.PARTIAL, {"interrupted": True})
    (root / "audio_train" / "stale.wav").write_bytes(b"x")
    generate_dataset("events", root, "tiny", SEED, progress=False)
    assert not (root / "audio_train" / "stale.wav").exists()
    assert (root / common.MANIFEST).exists()


def test_determinism_same_seed_same_bytes_any_jobs(tiny, tmp_path):
    # Same seed, other process layout (2 worker processes instead of this one): identical bytes,
    # manifests included, for every kind.
    for kind in DATASET_DIRS:
        root = tmp_path / kind
        generate_dataset(kind, root, "tiny", SEED, jobs=2, progress=False)
        assert _hashes(root) == _hashes(tiny["roots"][kind]), kind


def test_different_seed_different_bytes(tiny, tmp_path):
    root = tmp_path / "events"
    generate_dataset("events", root, "tiny", SEED + 1, progress=False)
    a, b = _hashes(tiny["roots"]["events"]), _hashes(root)
    a_wav = sorted(v for k, v in a.items() if k.endswith(".wav"))
    b_wav = sorted(v for k, v in b.items() if k.endswith(".wav"))
    assert len(a_wav) == len(b_wav) and not set(a_wav) & set(b_wav)


# --------------------------------------------------------------------------------------------- asc
TAU_NAME = re.compile(r"^audio/(?P<scene>[a-z_]+)-(?P<city>[a-z]+)-(?P<loc>\d+)-(?P<seg>\d+)-(?P<dev>a|b|c|s[1-6])\.wav$")
SCENES = {"airport", "shopping_mall", "metro_station", "street_pedestrian", "public_square", "street_traffic",
          "tram", "bus", "metro", "park"}
CITIES = {"barcelona", "helsinki", "lisbon", "london", "lyon", "milan", "paris", "prague", "stockholm", "vienna"}


def test_asc_files_and_csvs(tiny):
    root = tiny["roots"]["asc"]
    es = root / "evaluation_setup"
    meta_raw = (root / "meta.csv").read_bytes()
    assert b"\r" not in meta_raw
    meta = [r.split("\t") for r in _lines(root / "meta.csv")]
    assert meta[0] == ["filename", "scene_label", "identifier", "source_label"]
    for name, scene, ident, dev in meta[1:]:
        m = TAU_NAME.match(name)
        assert m, name
        assert m["scene"] == scene and scene in SCENES and m["city"] in CITIES
        assert ident == f"{m['city']}-{m['loc']}" and dev == m["dev"]
    wavs = sorted("audio/" + p.name for p in (root / "audio").iterdir())
    assert wavs == sorted(r[0] for r in meta[1:])
    for name in wavs[:6] + wavs[-3:]:
        info = sf.info(str(root / name))
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (44100, 1, "PCM_24", 441000)
    # Fold lists: TAB, one header line; evaluate CRLF, train LF without final newline, as shipped.
    train_raw, eval_raw = (es / "fold1_train.csv").read_bytes(), (es / "fold1_evaluate.csv").read_bytes()
    assert b"\r" not in train_raw and not train_raw.endswith(b"\n")
    assert eval_raw.count(b"\r\n") == eval_raw.count(b"\n") > 1
    train = [r.split("\t") for r in _lines(es / "fold1_train.csv")]
    evaluate = [r.split("\t") for r in _lines(es / "fold1_evaluate.csv")]
    test = _lines(es / "fold1_test.csv")
    assert train[0] == evaluate[0] == ["filename", "scene_label"] and test[0] == "filename"
    assert test[1:] == [r[0] for r in evaluate[1:]]
    label = {r[0]: r[1] for r in meta[1:]}
    for name, scene in train[1:] + evaluate[1:]:
        assert label[name] == scene


def test_asc_devices_parallel_recordings_and_location_split(tiny):
    root = tiny["roots"]["asc"]
    es = root / "evaluation_setup"
    meta = [r.split("\t") for r in _lines(root / "meta.csv")[1:]]
    train = [r.split("\t")[0] for r in _lines(es / "fold1_train.csv")[1:]]
    evaluate = [r.split("\t")[0] for r in _lines(es / "fold1_evaluate.csv")[1:]]
    dev = lambda n: TAU_NAME.match(n)["dev"]  # noqa: E731
    clip = lambda n: n.rsplit("-", 1)[0]  # noqa: E731
    loc = lambda n: "-".join(n.split("-")[1:3])  # noqa: E731
    train_dev, eval_dev = Counter(map(dev, train)), Counter(map(dev, evaluate))
    # Device a dominates training; s4-s6 appear only in the evaluation fold, every device there.
    assert train_dev["a"] > sum(v for k, v in train_dev.items() if k != "a")
    assert set(train_dev) == {"a", "b", "c", "s1", "s2", "s3"}
    assert set(eval_dev) == {"a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6"}
    assert len(set(eval_dev.values())) == 1
    # Parallel recordings: every non-a recording has its device-a twin with the same clip id.
    by_clip = defaultdict(set)
    for name, *_ in meta:
        by_clip[clip(name)].add(dev(name))
    assert all("a" in devs for devs in by_clip.values())
    assert any(len(devs) >= 2 for devs in by_clip.values())
    train_clips = {clip(n) for n in train}
    assert all(clip(n) in train_clips for n in train if dev(n) != "a")
    # No location in both folds.
    assert not {loc(n) for n in train} & {loc(n) for n in evaluate}


def test_parallel_recordings_share_the_scene(tiny):
    """Devices recording one segment hear the same scene: their 1-3 kHz envelopes correlate,
    unlike those of another segment."""
    from scipy import signal

    root = tiny["roots"]["asc"]
    clips = defaultdict(list)
    for p in (root / "audio").iterdir():
        clips[p.name.rsplit("-", 1)[0]].append(p.name)
    sos = signal.butter(4, [1000, 3000], "bandpass", fs=44100, output="sos")

    def env(name):
        x, _ = sf.read(str(root / "audio" / name), dtype="float32")
        return np.log(np.square(signal.sosfilt(sos, x)).reshape(-1, 2205).mean(1) + 1e-12)

    ids = sorted(k for k, v in clips.items() if len(v) >= 2)[:3]
    for i, k in enumerate(ids):
        names = sorted(clips[k])
        e = [env(n) for n in names]
        other = env(sorted(clips[ids[(i + 1) % len(ids)]])[0])
        assert min(np.corrcoef(e[0], x)[0, 1] for x in e[1:]) > 0.8, names
        assert np.corrcoef(e[0], other)[0, 1] < 0.5


def test_asc_full_plan_has_the_real_counts():
    """The real TAU 2020 Mobile development set (fold1 csvs and the set's README): train a 10,215 +
    750 per b, c, s1-s3; evaluate 330 per device; files per device a 14,400, others 1,080; 23,040
    in all."""
    from tf_scenes.synth import asc

    segs = asc.plan(asc.SIZES["full"], SEED)
    train = Counter(d for s in segs for d in s.train)
    evaluate = Counter(d for s in segs for d in s.evaluate)
    files = Counter(d for s in segs for d in s.devices)
    assert dict(train) == {"a": 10215, "b": 750, "c": 750, "s1": 750, "s2": 750, "s3": 750}
    assert dict(evaluate) == {d: 330 for d in ("a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6")}
    assert files["a"] == 14400 and all(files[d] == 1080 for d in files if d != "a")
    assert sum(files.values()) == 23040
    train_locs = {(s.city, s.location) for s in segs if s.train}
    eval_locs = {(s.city, s.location) for s in segs if s.evaluate}
    assert not train_locs & eval_locs
    assert all(s.devices[0] == "a" for s in segs)
    assert len({s.segment for s in segs}) == len(segs)


def test_devices():
    from tf_scenes.synth import devices

    f = np.geomspace(50, 20000, 200)
    a = devices.get_device("a").response_db(f)
    assert np.ptp(a[(f > 100) & (f < 15000)]) < 3.0  # the reference is nearly flat
    train = np.stack([devices.get_device(d).response_db(f) for d in devices.TRAIN_DEVICES])
    for d in devices.UNSEEN_DEVICES:
        r = devices.get_device(d).response_db(f)
        # each unseen device is far from every training device (mean abs difference, dB)
        assert np.min(np.mean(np.abs(train - r), axis=1)) > 4.0, d
    x = np.random.default_rng(0).standard_normal(44100).astype(np.float32) * 0.1
    y1 = devices.record(x, 44100, "s4", np.random.default_rng(1))
    y2 = devices.record(x, 44100, "s4", np.random.default_rng(1))
    assert y1.dtype == np.float32 and np.array_equal(y1, y2)
    with pytest.raises(ValueError, match="unknown device"):
        devices.get_device("s7")


# ------------------------------------------------------------------------- speed: the primitives
def test_fft_len_is_the_smallest_2_3_smooth_length():
    from tf_scenes.synth.dsp import fft_len

    smooth = sorted(2 ** a * 3 ** b for a in range(22) for b in range(14) if 2 ** a * 3 ** b < 4_000_000)
    for n in (1, 2, 5, 97, 1000, 4097, 44100, 441000, 441001, 568_000, 1_440_000):
        assert fft_len(n) == next(m for m in smooth if m >= n), n
    assert fft_len(441000) == 442368  # 2^14 * 3^3, not 441000 = 2^3 3^2 5^3 7^2


def test_upsample_linear_matches_interp():
    from tf_scenes.synth.dsp import upsample_linear

    c = np.random.default_rng(0).standard_normal(12).astype(np.float32)
    for step, n in ((7, 70), (7, 64), (220, 2000), (1, 5)):
        ref = np.interp(np.arange(n), np.arange(c.shape[0]) * step, c, right=c[-1])
        np.testing.assert_allclose(upsample_linear(c, step, n), ref, atol=1e-6)


def test_harmonic_stack_is_a_sum_of_sines():
    """The wavetable, the per-partial sines and the muting above 0.45 sr, against float64 sines over
    a 20 s gliding track (phase accumulated over 880,000 samples)."""
    from tf_scenes.synth.dsp import harmonic_stack

    sr, n = 44100, 882000
    t = np.arange(n) / sr
    f0 = (900 + 800 * np.sin(2 * np.pi * 0.1 * t)).astype(np.float32)  # 100 .. 1700 Hz
    cyc = np.cumsum(f0.astype(np.float64)) / sr
    amps, ph0 = np.array([1.0, 0.5, 0.0, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]), np.linspace(0, 3, 14)
    for inharm in (0.0, 0.002):
        ratio = np.arange(1, 15) * np.sqrt(1 + inharm * np.arange(1, 15) ** 2)
        ref = sum(a * np.sin(2 * np.pi * r * cyc + p) * (r * f0 < 0.45 * sr) for a, r, p in zip(amps, ratio, ph0))
        got = harmonic_stack(f0, sr, amps, inharm, ph0.astype(np.float32))
        assert got.dtype == np.float32 and got.shape == (n,)
        err = np.abs(got - ref)
        # float32 phases: ~5e-4 cycles of drift after 20 s (partial 14: 0.05 rad), none audible
        assert np.sqrt(np.mean(err ** 2)) < 0.01 * np.sqrt(np.mean(ref ** 2)) and err.max() < 0.05, inharm
        assert err[:2 * sr].max() < 0.01, inharm


def test_shaped_noise_has_its_spectrum_level_and_gaussian_samples():
    from scipy import signal, stats

    from tf_scenes.synth import dsp

    sr = 44100
    fn = dsp.tilt_fn(-3.0, 200.0, 4000.0)
    x = dsp.shaped_noise(np.random.default_rng(0), 10 * sr, sr, fn)
    assert x.dtype == np.float32 and x.shape == (10 * sr,)
    assert abs(dsp.rms(x) - 1.0) < 1e-4
    f, p = signal.welch(x, sr, nperseg=4096)
    band = (f > 100) & (f < 10000)
    shape = 10 * np.log10(p[band]) - fn(f[band])
    assert np.ptp(np.convolve(shape, np.ones(9) / 9, "valid")) < 2.0  # follows the curve within 2 dB
    assert abs(stats.kurtosis(x)) < 0.05 and abs(stats.skew(x)) < 0.05  # Gaussian: kurtosis 0


def test_spectrum_energy_is_parseval():
    from scipy import fft as sfft

    from tf_scenes.synth.dsp import spectrum_energy

    for nfft in (1000, 1001):
        x = np.random.default_rng(nfft).standard_normal(nfft).astype(np.float32)
        np.testing.assert_allclose(spectrum_energy(sfft.rfft(x), nfft), np.sum(x.astype(np.float64) ** 2),
                                   rtol=1e-5)


def test_formant_pieces_batch_equals_full_length_filtering():
    """A talker's syllables filtered one by one in short FFTs = the summed vowel tracks filtered."""
    from tf_scenes.synth import dsp, sounds

    sr, n = 44100, 3 * 44100
    rng = np.random.default_rng(1)
    pieces = [(int(rng.integers(5)), int(s), rng.standard_normal(int(m)).astype(np.float32))
              for s, m in zip(rng.integers(0, n - 9000, 12), rng.integers(3000, 9000, 12))]
    args = (sounds._VOWELS_F, np.broadcast_to(sounds._VOWELS_BW, (5, 3)), sounds._VOWELS_G)
    batched = dsp.formant_pieces(pieces, n, sr, *args)
    full = dsp._formant_tracks(pieces, sorted({p[0] for p in pieces}), n, sr, *args)
    assert np.max(np.abs(batched - full)) < 1e-3 * np.max(np.abs(full))


def test_scene_room_is_a_linear_convolution_with_the_bank_rir():
    """scene_spectrum = the mix, EQ'd, dry/wet mixed with the RIR by linear convolution, unit RMS."""
    from scipy import fft as sfft
    from scipy import signal

    from tf_scenes.synth import dsp, scenes
    from tf_scenes.synth.rooms import RirBank

    sr, dur = 44100, 2.0
    loc = scenes.Location.draw(SEED, "airport", "lisbon", 3)
    bank = RirBank.build(sr, SEED, ("hall",))
    spec, nfft, n = scenes.scene_spectrum(np.random.default_rng(5), sr, dur, loc, bank)
    got = sfft.irfft(spec, nfft)[:n]
    mix = scenes.scene_mix(np.random.default_rng(5), sr, dur, loc)
    eq = sfft.irfft(sfft.rfft(mix, nfft) * dsp.gain_on_bins(
        lambda f: dsp.curve_db(f, loc.eq_anchors, loc.eq_gains), nfft, sr), nfft)
    h = bank.get("hall", loc.room_index)[0]
    full = np.sqrt(1 - loc.wet) * np.pad(eq, (0, h.shape[0] - 1)) + np.sqrt(loc.wet) * signal.fftconvolve(eq, h)
    ref = full[:n] / np.sqrt(np.sum(full ** 2) / n)  # unit RMS over the clip, the tail counted
    # No wrap-around of the clip's reverberation into its start (that would differ by tens of %).
    # What differs, at -49 dB over the first second here, is the room's echo of the zero-phase
    # EQ's pre-ringing of the first sample (it sits at the end of the FFT buffer).
    assert np.max(np.abs(got - ref)) < 1e-2 * np.max(np.abs(ref))
    assert np.max(np.abs(got - ref)[sr:]) < 1e-4 * np.max(np.abs(ref))
    assert 0.9 < dsp.rms(got) <= 1.0


def test_record_spectrum_is_record():
    """Recording from the scene's spectrum (what the writer does) = recording the waveform; the
    self-noise of a silent scene sits at the device's noise_db."""
    from scipy import fft as sfft

    from tf_scenes.synth import devices, dsp

    sr, n = 44100, 44100
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.05
    nfft = dsp.fft_len(n)
    for dev in ("a", "s4"):
        y1 = devices.record(x, sr, dev, np.random.default_rng(7))
        y2 = devices.record_spectrum(sfft.rfft(x, nfft), nfft, n, sr, dev, np.random.default_rng(7), dsp.Memo())
        assert y1.dtype == y2.dtype == np.float32 and np.array_equal(y1, y2), dev
        silent = devices.record(np.zeros(n, np.float32), sr, dev, np.random.default_rng(3))
        level = 20 * np.log10(dsp.rms(silent))
        assert abs(level - devices.get_device(dev).noise_db) < 0.5, (dev, level)


def test_rir_bank_built_once_matches_lazy_and_travels_to_workers():
    import pickle

    from tf_scenes.synth.rooms import RirBank

    built = RirBank.build(16000, SEED, ("bus", "small"), per_type=2)
    lazy = RirBank(16000, SEED, per_type=2)
    copy = pickle.loads(pickle.dumps(built))
    for room in ("bus", "small"):
        for i in range(5):
            h = built.get(room, i)[0]
            assert np.array_equal(h, lazy.get(room, i)[0]) and np.array_equal(h, copy.get(room, i)[0])
    assert built.slot(5) == 1 and not np.array_equal(built.get("bus", 0)[0], built.get("bus", 1)[0])


def test_write_pcm_round_trip(tmp_path):
    from tf_scenes.errors import AudioError
    from tf_scenes.synth.common import write_pcm

    x = np.array([0.0, 0.5, -0.5, 1.5, -1.5, 1e-7, 0.1234567], np.float32)
    for subtype, bits in (("PCM_24", 23), ("PCM_16", 15)):
        p = write_pcm(tmp_path / f"{subtype}.wav", np.stack([x, -x], 1), 44100, subtype)
        info = sf.info(str(p))
        assert (info.subtype, info.channels, info.frames) == (subtype, 2, x.size)
        y, _ = sf.read(str(p), dtype="float64")
        for ch, v in enumerate((x, -x)):
            q = np.clip(np.rint(v.astype(np.float64) * 2 ** bits), -2 ** bits, 2 ** bits - 1) / 2 ** bits
            np.testing.assert_array_equal(y[:, ch], q)
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []  # no temporaries left
    with pytest.raises(AudioError, match="bad.wav: refusing to write non-finite"):
        write_pcm(tmp_path / "bad.wav", np.array([0.0, np.nan], np.float32), 44100, "PCM_16")
    assert not (tmp_path / "bad.wav").exists()


# ------------------------------------------------------------------------ speed: worker processes
def test_jobs_default_to_every_usable_cpu(monkeypatch, tmp_path):
    """No --jobs / jobs=None: one worker per CPU this process may use (not a fixed 2)."""
    import os

    import tf_scenes.synth as synth
    from tf_scenes.experiments.cli import main
    from tf_scenes.synth import common

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    assert common.default_jobs() == 6 and common.check_jobs(None) == 6
    seen = {}
    monkeypatch.setattr(synth, "generate", lambda kind, out, **kw: seen.update(kw) or {kind: tmp_path})
    assert main(["synth", "events", "--out", str(tmp_path), "--size", "tiny", "--no-progress"]) == 0
    assert seen["jobs"] == 6


def test_bad_jobs_is_one_clear_error(tmp_path, capsys):
    from tf_scenes.errors import ConfigError
    from tf_scenes.experiments.cli import main

    for bad in (0, -2, 1.5, True):
        with pytest.raises(ConfigError, match="jobs must be a whole number >= 1"):
            generate_dataset("events", tmp_path / "ev", "tiny", SEED, jobs=bad, progress=False)
    assert not (tmp_path / "ev").exists()
    assert main(["synth", "events", "--out", str(tmp_path), "--size", "tiny", "--jobs", "0"]) == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err


def test_map_items_keeps_order_and_runs_in_workers():
    import functools
    import os

    from tf_scenes.synth.common import map_items

    items = list(range(23))
    out = map_items(functools.partial(_square_with_pid), items, jobs=3, progress=False, chunk=4)
    assert [v for v, _ in out] == [i * i for i in items]
    assert os.getpid() not in {pid for _, pid in out}  # computed in worker processes


def _square_with_pid(chunk):
    import os

    return [(i * i, os.getpid()) for i in chunk]


# --------------------------------------------------------------------------------------------- tag
def test_tag_format(tiny):
    root = tiny["roots"]["tag"]
    from tf_scenes.synth.tag import CLASSES

    assert len(CLASSES) == 80
    for subset in ("curated", "noisy"):
        with open(root / f"train_{subset}.csv", newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == ["fname", "labels"]
        files = sorted(p.name for p in (root / f"train_{subset}").iterdir())
        assert sorted(r[0] for r in rows[1:]) == files
        for fname, labels in rows[1:]:
            assert re.fullmatch(r"[0-9a-f]{8}\.wav", fname)
            assert all(lab in CLASSES for lab in labels.split(","))
        for fname in files[:10]:
            info = sf.info(str(root / f"train_{subset}" / fname))
            assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_16")
            assert 0.3 <= info.duration <= 30.0
    raw = (root / "train_curated.csv").read_text()
    assert re.search(r'^[0-9a-f]{8}\.wav,"[A-Za-z_()-]+,[A-Za-z_(),-]+"$', raw, re.M), "multi-labels are quoted"
    header = (root / "sample_submission.csv").read_text().split("\n")[0].split(",")
    assert header == ["fname", *CLASSES]


# --------------------------------------------------------------------------------------------- sed
def test_sed_format(tiny):
    root = tiny["roots"]["sed"]
    name_re = re.compile(r"^fold([1-6])_room(\d+)_mix(\d{3})_ov([12])$")
    mic = sorted(p.stem for p in (root / "mic_dev").iterdir())
    assert mic == sorted(p.stem for p in (root / "foa_dev").iterdir())
    assert mic == sorted(p.stem for p in (root / "metadata_dev").iterdir())
    parsed = [name_re.match(s) for s in mic]
    assert all(parsed)
    assert {int(m[1]) for m in parsed} == {1, 2, 3, 4, 5, 6}
    for m in parsed:  # real numbering: ov1 mix001-025 (fold 6: 001-050), ov2 above
        mix, ov, fold = int(m[3]), int(m[4]), int(m[1])
        block = 50 if fold == 6 else 25
        assert (ov == 1 and 1 <= mix <= block) or (ov == 2 and block < mix <= 2 * block)
    for fmt in ("mic_dev", "foa_dev"):
        info = sf.info(str(root / fmt / f"{mic[0]}.wav"))
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (24000, 4, "PCM_16", 1_440_000)
    repeated = False
    for stem in mic:
        text = (root / "metadata_dev" / f"{stem}.csv").read_text()
        rows = np.array([[int(v) for v in line.split(",")] for line in text.strip().split("\n")])
        assert rows.shape[1] == 5 and rows.size
        assert rows[:, 0].min() >= 0 and rows[:, 0].max() <= 599
        assert rows[:, 1].min() >= 0 and rows[:, 1].max() <= 13
        assert np.all(rows[:, 3] >= -180) and np.all(rows[:, 3] < 180) and np.all(np.abs(rows[:, 4]) <= 40)
        assert np.all(np.diff(rows[:, 0]) >= 0)
        if stem.endswith("ov2") and len(np.unique(rows[:, 0])) < len(rows):
            repeated = True
    assert repeated, "overlapping events repeat a frame in some ov2 file"


def test_sed_audio_follows_metadata(tiny):
    """Frames with events are louder than frames without (in the W channel of FOA)."""
    root = tiny["roots"]["sed"]
    stem = sorted(p.stem for p in (root / "metadata_dev").iterdir())[0]
    x, sr = sf.read(str(root / "foa_dev" / f"{stem}.wav"), dtype="float32")
    rows = np.loadtxt(root / "metadata_dev" / f"{stem}.csv", delimiter=",", dtype=int, ndmin=2)
    active = np.zeros(600, bool)
    active[rows[:, 0]] = True
    e = np.square(x[:, 0]).reshape(600, -1).mean(1)
    assert (~active).sum() > 10
    assert np.median(e[active]) > 10 * np.median(e[~active])


# ------------------------------------------------------------------------------------- events/esc
def test_events_format(tiny):
    root = tiny["roots"]["events"]
    from tf_scenes.synth.events import CLASSES

    with open(root / "train.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["fname", "label", "manually_verified"] and len(CLASSES) == 41
    assert {r[1] for r in rows[1:]} == set(CLASSES)
    assert {r[2] for r in rows[1:]} <= {"0", "1"}
    assert sorted(r[0] for r in rows[1:]) == sorted(p.name for p in (root / "audio_train").iterdir())
    for fname, *_ in rows[1:8]:
        info = sf.info(str(root / "audio_train" / fname))
        assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_16")
        assert 0.3 <= info.duration <= 10.0


def test_esc50_format(tiny):
    root = tiny["roots"]["esc50"]
    from tf_scenes.synth.classes import ESC50_CATEGORIES

    with open(root / "meta" / "esc50.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
    assert len(ESC50_CATEGORIES) == 50 and ESC50_CATEGORIES[0] == "dog" and ESC50_CATEGORIES[49] == "hand_saw"
    for fn, fold, target, cat, esc10, src, take in rows[1:]:
        assert fn == f"{fold}-{src}-{take}-{target}.wav" and 1 <= int(fold) <= 5
        assert ESC50_CATEGORIES[int(target)] == cat and esc10 in ("True", "False")
    assert {int(r[2]) for r in rows[1:]} == set(range(50))
    info = sf.info(str(root / "audio" / rows[1][0]))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (44100, 1, "PCM_16", 220500)
    cmap = [line.split(",") for line in _lines(root / "meta" / "class_map.csv")]
    assert cmap[0] == ["fine", "coarse"] and len(cmap) == 51
    groups = ["animals", "natural", "human", "interior", "exterior"]
    assert [c for _, c in cmap[1:]] == [g for g in groups for _ in range(10)]


def test_every_class_synthesiser_renders():
    """Every class of every table: finite, not silent, right length, at 44.1 and 24 kHz.

    Each is rendered at its shortest duration in the datasets, at least 1.5 s (a phone rings in
    groups with 2 s pauses: a shorter clip may fall into a pause).
    """
    from tf_scenes.synth import classes, sounds

    rng = np.random.default_rng(0)
    for table in (classes.FSD2019, classes.FSD2018, classes.NIGENS, classes.ESC50):
        for name, spec in table.items():
            dur = max(1.5, spec.dur[0])
            for sr in (44100, 24000):
                x = sounds.render(rng, sr, dur, spec.family, spec.params)
                assert x.dtype == np.float32 and x.shape == (round(dur * sr),), name
                assert np.all(np.isfinite(x)) and np.sqrt(np.mean(x ** 2)) > 0.5, name
    with pytest.raises(ValueError, match="unknown synthesiser family"):
        sounds.render(rng, 16000, 1.0, "theremin", {})


def test_esc50_groups_share_a_family():
    from tf_scenes.synth import classes

    classes.check_tables()  # every entry valid; ESC-50 groups one family each
    fams = [classes.ESC50[c].family for c in classes.ESC50_CATEGORIES]
    assert [len(set(fams[i:i + 10])) for i in range(0, 50, 10)] == [1] * 5
    assert len(set(fams)) == 5


# ----------------------------------------------------------------------------------------- readers
def test_project_readers_load_the_output(tiny):
    from tf_scenes.datasets import esc50, fsd2018, fsd2019, nigens2020, tau2020

    r = tiny["roots"]
    assert len(tau2020.load(r["asc"], "train")) == 30 and len(tau2020.load(r["asc"], "evaluate")) == 18
    assert len(tau2020.load(r["asc"], "test")) == 18
    assert len(fsd2019.load(r["tag"], "curated")) == 80 and len(fsd2019.load(r["tag"], "noisy")) == 16
    assert fsd2019.check_sample_submission(r["tag"] / "sample_submission.csv") == tuple(fsd2019.CLASSES)
    assert len(fsd2018.load(r["events"])) == 41
    for fmt in ("mic", "foa"):
        recs = nigens2020.load(r["sed"], fmt=fmt)
        assert sorted({x.fold for x in recs}) == [1, 2, 3, 4, 5, 6]
        assert nigens2020.read_metadata(recs[0].meta_path).shape[1] == 5
    hier = esc50.load_hier(r["esc50"], r["esc50"] / "meta" / "class_map.csv")
    assert len(hier) == 50 and {h.coarse for h in hier} == {"animals", "natural", "human", "interior", "exterior"}


def test_remix_kind_builds_on_the_generated_sets(tiny):
    pytest.importorskip("tf_scenes.weak_sed.remix")
    roots = generate("remix", tiny["out"], size="tiny", seed=SEED, progress=False)
    folders = sorted(p.name for p in roots["remix"].iterdir() if p.is_dir())
    assert len(folders) == 3
    for f in folders:
        assert (roots["remix"] / f / "mixture.yaml").exists()


# ------------------------------------------------------------------------------------------- cli
def test_cli(tmp_path, capsys):
    from tf_scenes.experiments.cli import main

    rc = main(["synth", "events", "--out", str(tmp_path), "--size", "tiny", "--seed", "3", "--no-progress",
               "--jobs", "1"])
    assert rc == 0
    m = json.loads((tmp_path / "FSDKaggle2018" / common.MANIFEST).read_text())
    assert m["seed"] == 3 and m["kind"] == "events"
    assert "FSDKaggle2018" in capsys.readouterr().out
    assert main(["synth", "events", "--out", str(tmp_path), "--size", "tiny", "--report"]) == 2


# ---------------------------------------------------------------------------------------- report
def test_report_runs_on_tiny(tiny):
    from tf_scenes.synth.report import REPORT_FILE, asc_report, format_report

    rep = asc_report(tiny["roots"]["asc"], progress=False)
    assert rep["n_train"] == 30 and rep["n_evaluate"] == 18
    for key in ("acc_10class", "acc_3class", "acc_10class_as_3class"):
        accs = rep[key]
        assert {"overall", "device_a", "devices_s4-s6"} <= set(accs)
        assert all(0.0 <= v <= 1.0 for v in accs.values())
    assert json.loads((tiny["roots"]["asc"] / REPORT_FILE).read_text())["n_train"] == 30
    assert "devices_s4-s6" in format_report(rep)


@pytest.mark.slow
def test_report_effects_small(tmp_path):
    """(a) far above chance, not perfect; (b) unseen devices s4-s6 lower than a; (c) 3-class easier."""
    from tf_scenes.synth.report import asc_report, format_report

    root = tmp_path / "asc"
    generate_dataset("asc", root, "small", SEED, jobs=2, progress=False)
    rep = asc_report(root, progress=False)
    print(format_report(rep))
    e = rep["effects"]
    assert e["a_above_chance_not_perfect"] and e["b_unseen_devices_lower"] and e["c_broad_easier"], e


@pytest.mark.slow
def test_asc_many_chunks_same_bytes_any_workers(tmp_path):
    """A 150-segment set (240 files, 10 chunks): 2 and 3 worker processes (3 is more than a 2-core
    machine has, so chunks land on workers in another order) write identical files."""
    from tf_scenes.synth import asc

    size = asc.AscSize(train_a=140, train_other=10, eval_per_device=5, train_locations=4, eval_locations=2)
    hashes = []
    for jobs in (2, 3):
        root = tmp_path / f"jobs{jobs}"
        m = asc.generate(root, "small", SEED, jobs=jobs, progress=False, size_override=size)
        assert m["counts"]["segments"] == 150 and len(list((root / "audio").iterdir())) == 240
        hashes.append(_hashes(root))
    assert hashes[0] == hashes[1]


@pytest.mark.slow
def test_esc50_hierarchy_is_in_the_audio(tmp_path):
    """Fine-class errors of a clip-level probe stay mostly inside the true coarse group."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from tf_scenes.datasets import esc50
    from tf_scenes.synth.report import clip_features

    root = tmp_path / "esc"
    generate_dataset("esc50", root, "small", SEED, jobs=2, progress=False)
    recs = esc50.load(root)
    x = clip_features([r.path for r in recs], progress=False)
    fine = np.array([r.target for r in recs])
    fold = np.array([r.fold for r in recs])
    tr, te = fold != 1, fold == 1
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
    pred_fine = clf.fit(x[tr], fine[tr]).predict(x[te])
    pred_coarse = clf.fit(x[tr], fine[tr] // 10).predict(x[te])
    acc_fine = np.mean(pred_fine == fine[te])
    acc_coarse = np.mean(pred_coarse == fine[te] // 10)
    wrong = pred_fine != fine[te]
    within = np.mean(pred_fine[wrong] // 10 == fine[te][wrong] // 10)
    print(f"esc50 small: fine {acc_fine:.3f}, coarse {acc_coarse:.3f}, fine errors within group {within:.3f}")
    assert acc_coarse > acc_fine > 0.1
    assert within > 0.4  # chance: 9 / 49
