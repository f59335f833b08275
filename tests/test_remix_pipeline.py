"""The weak-SED remix made inside tf.data (tf_scenes.pipelines.remix) against the mixtures the
remix's writer puts on disk, and the study's data.remix=online.

Tolerance of the float mixtures against the written files: the writer hands the float mixture
(peak-normalised, clipped to [-1, 1 - 2^-23]) to libsndfile, which stores round(x * 2^31) >> 16
for 16-bit PCM (>> 8 for 24-bit): the decoded sample is x rounded *down* to the PCM grid, an error
in [0, 1 LSB) (LSB = 2^-15 for 16-bit, 2^-23 for 24-bit). The asserted bound, 1.5 LSB, also holds
for libsndfiles that round x * 32767 (error up to |x| / 32768 + 0.5 LSB); a mistake in the mixing
itself (a wrong gain, onset or normalisation) is orders of magnitude larger (the same mixture
at 20 dB instead of 10 dB differs by thousands of LSB)."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from tf_scenes.audio import write_audio
from tf_scenes.datasets import LoadReport
from tf_scenes.errors import AudioError, ConfigError, DataFormatError
from tf_scenes.pipelines.audio import DecodeErrors, iterate_checked
from tf_scenes.pipelines.cache import cached_features
from tf_scenes.pipelines.remix import (cached_mixture_features, mixture_dataset, mixture_table,
                                       pcm_quantise)
from tf_scenes.weak_sed import remix
from tf_scenes.weak_sed.remix import build_remix, read_remix

SNRS = (0.0, 10.0, 20.0)
LSB16 = 2.0 ** -15
LSB24 = 2.0 ** -23


@pytest.fixture(scope="module")
def tiny(study_root):
    """tf_scenes.synth's tiny remix (16 mixtures at 0, 10, 20 dB; 44.1 kHz sources), in the data
    folder the tiny studies share (generated once per worker)."""
    from tf_scenes.synth import generate

    roots = generate("remix", study_root / "data", size="tiny", seed=0, progress=False)
    return roots["events"], roots["asc"], roots["remix"]


def _mixtures(table, snr, pcm_bits=None, levels=False):
    errors = DecodeErrors()
    ds = mixture_dataset(table, snr=snr, pcm_bits=pcm_bits, levels=levels, errors=errors)
    return [tuple(t.numpy() for t in x) if levels else x.numpy() for x in iterate_checked(ds, errors)]


def _written(records, folder=None):
    return [sf.read(r.path if folder is None else folder / "audio" / f"{r.name}.wav", dtype="float64")[0]
            for r in records]


def test_pipeline_mixtures_equal_the_written_files_at_every_snr(tiny):
    events, scenes, root = tiny
    plan = read_remix(root / "snr0")
    table = mixture_table(plan, events, scenes)  # one plan for every SNR
    assert len(table) == 16 and table.event_index.shape == (16, 3)
    floats, written = {}, {}
    for snr in SNRS:
        folder = root / remix.snr_dirname(snr)
        records = read_remix(folder)
        assert [r.name for r in records] == [m.name for m in table.mixtures]
        written[snr] = _written(records)
        floats[snr] = _mixtures(table, snr)
        worst = max(np.max(np.abs(x - y)) for x, y in zip(floats[snr], written[snr]))
        assert worst <= 1.5 * LSB16, f"{snr} dB: {worst / LSB16:.3f} LSB"
        # quantised as the writer: the very samples of the files
        pcm = _mixtures(table, snr, pcm_bits=16)
        assert all(np.array_equal(x, y) for x, y in zip(pcm, written[snr]))
        assert all(x.dtype == np.float32 and x.shape == (320000,) for x in pcm)
    # the comparison has teeth: the same mixture at another SNR is thousands of LSB away
    assert np.max(np.abs(floats[20.0][0] - written[10.0][0])) > 1000 * LSB16


def test_pcm_quantise_is_libsndfiles_conversion_bit_for_bit(tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    k = rng.integers(-32768, 32767, 20000)
    x = np.concatenate([rng.uniform(-1, 1, 100000),
                        (k + rng.choice([-1e-9, 0.0, 1e-9, 0.5, 0.5 - 1e-9, 0.5 + 1e-9], k.size)) / 32768,
                        (k * 65536 + rng.choice([-0.5, 0.5, 1.5, -1.5], k.size)) / 2 ** 31,  # ties at 2^-31
                        [-1.0, remix.PCM_CLIP_HIGH, 0.0]])
    x = np.clip(x, -1.0, remix.PCM_CLIP_HIGH)  # write_audio's clip
    for bits in (16, 24):
        path = write_audio(tmp_path / f"q{bits}.wav", x, 32000, subtype=f"PCM_{bits}")
        stored, _ = sf.read(path, dtype="float64")
        got = pcm_quantise(tf.constant(x), bits).numpy()
        assert np.array_equal(got, stored), bits
        lsb = 2.0 ** (1 - bits)
        err = x - stored  # rounded down to the grid (after rounding to 32 bits: +-2^-32)
        assert err.min() >= -2.0 ** -32 and err.max() < lsb + 2.0 ** -32
    with pytest.raises(ConfigError, match="pcm_bits"):
        mixture_dataset([], snr=0.0, pcm_bits=8)


@pytest.fixture(scope="module")
def sources32(tmp_path_factory):
    """Sources the other decoding routes read: 32 kHz 16-bit mono events (in-graph route), scenes
    at 32 kHz 24-bit stereo (24-bit route; down-mixed) and 48 kHz stereo (soundfile + soxr)."""
    root = tmp_path_factory.mktemp("remix32")
    rng = np.random.default_rng(7)
    events, scenes = root / "fsd", root / "tau"
    (events / "audio_train").mkdir(parents=True)
    (scenes / "audio").mkdir(parents=True)
    rows = ["fname,label,manually_verified"]
    from tf_scenes.datasets.fsd2018 import CLASSES

    for i in range(12):
        n = int(rng.choice([0.3, 1.1, 2.6]) * 32000)
        x = 0.5 * np.sin(2 * np.pi * rng.uniform(100, 4000) * np.arange(n) / 32000) * rng.uniform(0.05, 1)
        sf.write(events / "audio_train" / f"e{i:02d}.wav", x, 32000, subtype="PCM_16")
        rows.append(f"e{i:02d}.wav,{CLASSES[i]},1")
    (events / "train.csv").write_text("\n".join(rows) + "\n")
    for k, (sr, sub) in enumerate([(32000, "PCM_24"), (48000, "PCM_24"), (32000, "PCM_16")]):
        x = rng.uniform(0.01, 0.3) * rng.standard_normal((10 * sr + 5, 2))
        sf.write(scenes / "audio" / f"s{k}.wav", x, sr, subtype=sub)
    return events, scenes


def test_every_decoding_route_and_24_bit_files(sources32, tmp_path):
    events, scenes = sources32
    folders = build_remix(events, scenes, tmp_path / "remix", snrs=(10,), seed=1, progress=False)
    records = read_remix(folders[10.0])
    table = mixture_table(records, events, scenes)
    assert {s.encoding for s in table.scenes} == {"pcm24", "pcm16"} and {s.sample_rate for s in table.scenes} \
        == {32000, 48000} and {s.encoding for s in table.events} == {"pcm16"}
    written = _written(records)
    assert all(np.array_equal(x, y) for x, y in zip(_mixtures(table, 10.0, pcm_bits=16), written))
    assert max(np.max(np.abs(x - y)) for x, y in zip(_mixtures(table, 10.0), written)) <= 1.5 * LSB16
    # the same mixtures written as 24-bit PCM
    floats = _mixtures(table, 10.0)
    for r, x24 in zip(records, _mixtures(table, 10.0, pcm_bits=24)):
        parts = remix.mixture_components(r, events, scenes, 10.0)
        y = sf.read(write_audio(tmp_path / f"{r.name}.wav", parts["normalised"], 32000, subtype="PCM_24"),
                    dtype="float64")[0]
        assert np.array_equal(x24, y)
    worst = max(np.max(np.abs(x - sf.read(tmp_path / f"{r.name}.wav", dtype="float64")[0]))
                for r, x in zip(records, floats))
    assert worst <= 1.5 * LSB24


def test_bad_sources_are_named(sources32, tmp_path):
    events, scenes = sources32
    ev, sc = tmp_path / "fsd", tmp_path / "tau"
    shutil.copytree(events, ev)
    shutil.copytree(scenes, sc)
    folders = build_remix(ev, sc, tmp_path / "remix", snrs=(0,), seed=1, progress=False, audio=False)
    records = read_remix(folders[0.0], check_files=False)
    assert not (folders[0.0] / "audio").exists()
    # a silent event: the features are not cached, the file is named in the writer's words
    silent = records[1].events[2]
    sf.write(ev / "audio_train" / silent.event_file, np.zeros(16000), 32000, subtype="PCM_16")
    with pytest.raises(AudioError, match=f"{silent.event_file}: event clip is silent"):
        cached_mixture_features(records, ev, sc, 0.0, "weak_sed", tmp_path / "cache", progress=False)
    assert not list((tmp_path / "cache").glob("*.npy"))
    # a silent scene, through the levels of the dataset
    sf.write(sc / records[0].scene_file, np.zeros(320000), 32000, subtype="PCM_16")
    table = mixture_table(records, ev, sc)
    x, levels = _mixtures(table, 0.0, levels=True)[0]
    assert levels[0] == 0 and np.isnan(x).all()
    with pytest.raises(AudioError, match=f"{records[0].scene_file}: scene clip is silent"):
        table.check_levels(0, levels[None])
    # a short scene and a missing file: named before anything is decoded
    sf.write(sc / records[0].scene_file, np.ones(300000) * 0.1, 32000, subtype="PCM_16")
    with pytest.raises(AudioError, match=f"{records[0].scene_file}: scene is 9.375 s, need 10 s"):
        mixture_table(records, ev, sc)
    gone = records[2].events[0].event_file
    (ev / "audio_train" / gone).unlink()
    with pytest.raises(AudioError, match=f"{gone}: file not found"):
        mixture_table(records[2:3], ev, sc)
    with pytest.raises(DataFormatError, match=f"mixture.yaml: 1 of 4 listed mixture source files are missing: "
                                              f".*{gone}"):
        remix.drop_missing_sources(records, ev, sc)
    report = LoadReport()
    kept = remix.drop_missing_sources(records, ev, sc, missing="skip", report=report)
    assert [r.name for r in kept] == [r.name for i, r in enumerate(records) if i != 2]
    assert [(s.name, s.path.endswith(gone)) for s in report.skipped] == [(records[2].name, True)]


def test_cached_features_equal_those_of_the_written_files(tiny, tmp_path):
    events, scenes, root = tiny
    records = read_remix(root / "snr10")
    files = cached_features([r.path for r in records], "weak_sed", tmp_path / "files", progress=False)
    online = cached_mixture_features(records, events, scenes, 10.0, "weak_sed", tmp_path / "online",
                                     progress=False)
    assert online.shape == (16, 311, 64, 1) and np.array_equal(online, files)
    (npy,) = (tmp_path / "online").glob("weak_sed-remix-snr10-*.npy")
    meta = json.loads(npy.with_suffix(".json").read_text())
    assert meta["waveforms"]["snr"] == 10.0 and meta["waveforms"]["pcm_bits"] == 16
    assert len(meta["waveforms"]["sources"]) == len(mixture_table(records, events, scenes).sources())
    # a second call reads the cache; unquantised mixtures are another cache, a hair away
    mtime = npy.stat().st_mtime_ns
    again = cached_mixture_features(records, events, scenes, 10.0, "weak_sed", tmp_path / "online", progress=False)
    assert np.array_equal(again, online) and npy.stat().st_mtime_ns == mtime
    raw = cached_mixture_features(records, events, scenes, 10.0, "weak_sed", tmp_path / "online", pcm_bits=None,
                                  progress=False)
    assert len(list((tmp_path / "online").glob("*.npy"))) == 2
    # the 16-bit quantisation shows in the log-mel features (most in near-silent bands)
    assert np.any(raw != online) and np.median(np.abs(raw - online)) < 1e-3


# ---------------------------------------------------------------------------------------------
# the study: data.remix=online


def _study_config(*overrides):
    from tf_scenes.config import load_config
    from tf_scenes.experiments.weak_sed import plan as ws

    return load_config(ws.Config, ws.__file__.replace("plan.py", "configs/tiny.yaml"), list(overrides))


def test_online_study_data_equal_the_files_data_without_mixture_files(tiny, tmp_path):
    """The study's online data (plan only on disk, mixtures made in the pipeline) are the files
    data: same mixtures, labels, plan and features bit for bit (hence the same tables)."""
    import types

    from tf_scenes.experiments.weak_sed import plan as ws

    events, scenes, root = tiny
    cfg = _study_config(f"data.events_root={events}", f"data.scenes_root={scenes}", "data.mixtures_per_fold=4",
                        "data.snrs=[10.0]", "export_snrs=[10.0]", "table2_snrs=[10.0]", f"data.remix_dir={tmp_path / 'plan'}",
                        "data.remix=online")
    data = ws.prepare(cfg, types.SimpleNamespace(cache_dir=tmp_path / "cache"))
    assert not list((tmp_path / "plan").rglob("*.wav"))
    assert remix.read_manifest(tmp_path / "plan" / "snr10")["audio"] is False
    assert data.label.synthetic and data.label.text.startswith("SYNTHETIC")  # the sources' marker
    online = data.snr[10.0]
    records = read_remix(root / "snr10")
    assert [r.name for r in online.records] == [r.name for r in records]
    assert online.plan_sha256 == remix.read_manifest(root / "snr10")["plan_sha256"]
    files = ws.load_snr(10.0, root / "snr10", tmp_path / "cache-files")
    assert np.array_equal(online.features, files.features) and np.array_equal(online.labels, files.labels)


def test_online_label_and_refusals(tiny, tmp_path):
    """The data label is the files mode's (sources' markers decide); online refuses a remix whose
    sources are gone, files mode a folder holding the plan only."""
    from tf_scenes.experiments.weak_sed import plan as ws

    events, scenes, _ = tiny
    # an unmarked copy of the sources (as a real dataset): the events and six scenes
    copy = {"events": tmp_path / "fsd", "scenes": tmp_path / "tau"}
    shutil.copytree(events, copy["events"], ignore=shutil.ignore_patterns("SYNTHETIC_DATASET.json"))
    (copy["scenes"] / "audio").mkdir(parents=True)
    for p in sorted((scenes / "audio").glob("*.wav"))[:6]:
        shutil.copy(p, copy["scenes"] / "audio" / p.name)
    for ev, sc, synthetic in [(events, scenes, True), (copy["events"], copy["scenes"], False)]:
        labels = {}
        for mode in ("files", "online"):
            cfg = _study_config(f"data.events_root={ev}", f"data.scenes_root={sc}", "data.mixtures_per_fold=1",
                                f"data.remix_dir={tmp_path / f'{synthetic}-{mode}'}", f"data.remix={mode}")
            folders, labels[mode] = ws.resolve_remix(cfg, tmp_path)
            assert len(list(folders[10.0].rglob("*.wav"))) == (4 if mode == "files" else 0)
        assert labels["online"].synthetic is labels["files"].synthetic is synthetic
        assert labels["online"].verified and labels["online"].text == labels["files"].text.replace(
            f"{synthetic}-files", f"{synthetic}-online")
    plan_only = tmp_path / "False-online"
    with pytest.raises(ConfigError, match="holds the remix plan only"):
        ws.resolve_remix(_study_config(f"data.root={plan_only}"), tmp_path)
    cfg = _study_config(f"data.root={plan_only}", "data.remix=online")
    assert not ws.resolve_remix(cfg, tmp_path)[1].synthetic
    shutil.rmtree(copy["events"])
    with pytest.raises(ConfigError, match="data.remix=online makes the mixtures from their sources"):
        ws.resolve_remix(cfg, tmp_path)
    with pytest.raises(ConfigError, match="data.remix"):
        _study_config("data.remix=disk")


@pytest.mark.slow
def test_tiny_study_tables_are_identical_in_both_modes(tiny_study, tmp_path):
    """The whole tiny profile with data.remix=online (mixtures never written by it) gives the
    files mode's tables, per-class AP, metrics and score files byte for byte."""
    from tf_scenes.experiments.reproduce import get_study, load_study_config
    from tf_scenes.experiments.study import run_study

    files = tiny_study("weak_sed")
    cfg = load_study_config("weak_sed", "tiny", overrides=[f"data.synthetic_dir={files.cfg.data.synthetic_dir}",
                                                           "data.remix=online", "figures=false", "export=false"])
    out = tmp_path / "online"
    report = run_study(get_study("weak_sed"), cfg, out, cache_dir=tmp_path / "cache")
    assert report["remix_mixtures"] == "made in the input pipeline from mixture.yaml"
    for name in ("table1.json", "table1.md", "table2.json", "table2.md", "per_class_ap.json", "metrics_all.json"):
        assert (out / name).read_bytes() == (files.out / name).read_bytes(), name
    scores = sorted(p.relative_to(out) for p in (out / "runs").rglob("scores_*.tsv"))
    assert len(scores) == 3 * 5 + 2  # Table 1 at 3 SNRs, the two other alphas of Table 2 at 20 dB (tiny.yaml)
    assert all((out / p).read_bytes() == (files.out / p).read_bytes() for p in scores)
