"""Scene + event remix (docs/weak_sed.md, "What runs") on tiny synthetic FSDKaggle2018 / TAU folders."""

import json
import shutil
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import yaml

from tf_scenes.audio import read_audio, resample_audio
from tf_scenes.experiments.cli import main
from tf_scenes.datasets.fsd2018 import CLASSES
from tf_scenes.errors import DataFormatError, OutputDirError
from tf_scenes.weak_sed import remix
from tf_scenes.weak_sed.remix import (Mixture, RemixEvent, assign_folds, build_remix, mix_components,
                                      mixture_components, multi_hot, plan_remix, read_remix)

SR_IN = 44100
N_EVENTS = 26  # 24 verified + 2 unverified


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """FSDKaggle2018-format events (44.1 kHz 16-bit, 0.4-3.2 s) and 5 TAU-format scenes (10 s, 24-bit)."""
    root = tmp_path_factory.mktemp("remix_src")
    rng = np.random.default_rng(0)
    events, scenes = root / "fsd2018", root / "tau"
    (events / "audio_train").mkdir(parents=True)
    (scenes / "audio").mkdir(parents=True)
    rows = ["fname,label,manually_verified"]
    durations = {}
    for i in range(N_EVENTS):
        dur = float(rng.choice([0.4, 1.0, 1.7, 2.5, 3.2]))
        t = np.arange(int(dur * SR_IN)) / SR_IN
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 3000) * t) * np.exp(-t * rng.uniform(0, 3))
        x[: len(x) // 2] *= 2.0  # loud first half: the level must use the whole clip's RMS
        fname = f"{i:08x}.wav"
        sf.write(events / "audio_train" / fname, x, SR_IN, subtype="PCM_16")
        rows.append(f"{fname},{CLASSES[i % len(CLASSES)]},{0 if i >= 24 else 1}")
        durations[fname] = len(x) / SR_IN
    (events / "train.csv").write_text("\n".join(rows) + "\n")
    for k in range(5):
        x = rng.uniform(0.01, 0.2) * rng.standard_normal(10 * SR_IN)
        sf.write(scenes / "audio" / f"park-lyon-{k}-100-a.wav", x, SR_IN, subtype="PCM_24")
    return events, scenes, durations


@pytest.fixture(scope="module")
def built(sources, tmp_path_factory):
    events, scenes, _ = sources
    out = tmp_path_factory.mktemp("remix_out")
    folders = build_remix(events, scenes, out, snrs=(0, 20), seed=3, progress=False)
    return out, folders


def _events(n=12):
    return [(f"e{i:02d}.wav", CLASSES[i]) for i in range(n)]


def test_plan_onsets_offsets_folds():
    evs = _events(24)
    durations = {f: d for (f, _), d in zip(evs, np.linspace(0.3, 4.0, 24))}
    scenes = [f"audio/s{i}.wav" for i in range(7)]
    plan = plan_remix(evs, durations, scenes, n_folds=4, seed=5)
    folds = assign_folds([f for f, _ in evs], 4, 5)
    assert Counter(folds.values()) == {1: 6, 2: 6, 3: 6, 4: 6}
    assert len(plan) == 8 and Counter(m.fold for m in plan) == {1: 2, 2: 2, 3: 2, 4: 2}  # 6 clips // 3
    for m in plan:
        assert [e.onset for e in m.events] == [0.5, 3.0, 5.5]
        for e in m.events:
            assert e.offset == pytest.approx(e.onset + min(durations[e.event_file], 2.0))
            assert e.offset - e.onset <= 2.0 and folds[e.event_file] == m.fold
            assert e.label == dict(evs)[e.event_file]
    used = [e.event_file for m in plan for e in m.events]
    assert len(used) == len(set(used)) == 24  # default cap: no clip reused
    assert len({m.scene_file for m in plan[:7]}) == 7  # every scene before any reuse
    assert plan == plan_remix(evs, durations, scenes, n_folds=4, seed=5)
    assert plan != plan_remix(evs, durations, scenes, n_folds=4, seed=6)


def test_plan_explicit_count_reuses_clips_but_not_within_a_mixture():
    evs = _events(16)  # 4 per fold: passes of 4 straddle mixtures of 3
    plan = plan_remix(evs, {f: 1.0 for f, _ in evs}, ["audio/s.wav"], n_folds=4, mixtures_per_fold=9, seed=0)
    assert len(plan) == 36 and len({m.name for m in plan}) == 36
    folds = assign_folds([f for f, _ in evs], 4, 0)
    for m in plan:
        files = [e.event_file for e in m.events]
        assert len(set(files)) == 3 and {folds[f] for f in files} == {m.fold}
    with pytest.raises(ValueError, match="at least 3"):
        plan_remix(_events(8), {f: 1.0 for f, _ in _events(8)}, ["a"], n_folds=4)


def test_class_balanced_folds_deal_each_class_evenly():
    """assign_folds(labels=...) / plan_remix(class_balanced_folds=True): every fold holds each
    class's clips to within one (the plain shuffle can put 1 clip of a class in one fold and 13 in
    another), the folds' sizes to within one; the default plan is unchanged."""
    evs = [(f"c{c}_{i:02d}.wav", CLASSES[c]) for c in range(5) for i in range(6 + c)]  # 6..10 clips per class
    labels = dict(evs)
    plain = assign_folds(list(labels), 4, 0)
    assert plain == assign_folds(list(labels), 4, 0, labels=None)
    folds = assign_folds(list(labels), 4, 0, labels=labels)
    assert sorted(folds) == sorted(labels) and set(folds.values()) == {1, 2, 3, 4}
    sizes = Counter(folds.values())
    assert max(sizes.values()) - min(sizes.values()) <= 1
    for c in range(5):
        per_fold = Counter(k for f, k in folds.items() if labels[f] == CLASSES[c])
        counts = [per_fold.get(k, 0) for k in (1, 2, 3, 4)]
        assert max(counts) - min(counts) <= 1 and sum(counts) == 6 + c
    assert folds == assign_folds(list(labels), 4, 0, labels=labels) != assign_folds(list(labels), 4, 1, labels=labels)
    durations = {f: 1.0 for f in labels}
    plan = plan_remix(evs, durations, ["audio/s.wav"], n_folds=4, seed=0, class_balanced_folds=True)
    assert all(folds[e.event_file] == m.fold for m in plan for e in m.events)
    assert plan_remix(evs, durations, ["audio/s.wav"], n_folds=4, seed=0) == plan_remix(
        evs, durations, ["audio/s.wav"], n_folds=4, seed=0, class_balanced_folds=False)


def test_mix_levels_use_the_whole_clip_rms():
    sr = 1000
    rng = np.random.default_rng(1)
    scene = 0.05 * rng.standard_normal(10 * sr)
    short = rng.standard_normal(1500)  # 1.5 s: placed whole
    long = np.concatenate([3 * rng.standard_normal(1500), 0.1 * rng.standard_normal(1500)])  # 3 s
    mixture = Mixture("x", 1, "s", (RemixEvent("a", "Bark", 0.5, 2.0), RemixEvent("b", "Gong", 3.0, 5.0),
                                    RemixEvent("c", "Cello", 5.5, 7.0)))
    for snr in (0.0, 10.0, 20.0, -5.0):
        parts = mix_components(scene, [short, long, short], mixture, snr, sr)
        assert _rms(parts["scene"]) == pytest.approx(1.0)
        gain = 10 ** (snr / 20)
        ev = parts["events"]
        # whole clips placed: the event's own RMS / scene RMS is the SNR
        assert _rms(ev[0, 500:2000]) / _rms(parts["scene"]) == pytest.approx(gain)
        assert _rms(ev[2, 5500:7000]) / _rms(parts["scene"]) == pytest.approx(gain)
        # cut clip: scaled by the whole clip's RMS, then cut to 2 s
        np.testing.assert_allclose(ev[1, 3000:5000], long[:2000] * gain / _rms(long))
        assert np.count_nonzero(ev[1]) == 2000 and not ev[:, :500].any() and not ev[:, 7000:].any()
        np.testing.assert_allclose(parts["mix"], parts["scene"] + ev.sum(0))
        assert np.max(np.abs(parts["normalised"])) == pytest.approx(1.0)


def test_build_writes_mixtures(sources, built):
    events, scenes, durations = sources
    out, folders = built
    assert sorted(p.name for p in out.iterdir()) == ["snr0", "snr20"]
    yamls = [(folders[s] / "mixture.yaml").read_text() for s in (0.0, 20.0)]
    assert yamls[0] == yamls[1]  # same scene / event choices at every SNR
    plan = yaml.safe_load(yamls[0])
    assert len(plan) == 8  # 24 verified clips, 6 per fold, 2 mixtures per fold
    unverified = {f"{i:08x}.wav" for i in (24, 25)}
    by_fold = {}
    for m in plan:
        assert [e["onset"] for e in m["events"]] == [0.5, 3.0, 5.5]
        for e in m["events"]:
            assert e["offset"] - e["onset"] == pytest.approx(min(durations[e["event_file"]], 2.0))
            assert e["event_file"] not in unverified
            by_fold.setdefault(m["fold"], set()).add(e["event_file"])
    assert all(not (by_fold[a] & by_fold[b]) for a in by_fold for b in by_fold if a < b)  # folds disjoint
    for s in (0.0, 20.0):
        manifest = json.loads((folders[s] / "manifest.json").read_text())
        assert manifest["snr"] == s and manifest["n_mixtures"] == 8 and manifest["mixtures_per_fold"] == 2
        info = sf.info(folders[s] / "audio" / "00000.wav")
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (32000, 1, 320000, "PCM_16")


def test_written_audio_has_the_requested_snr(sources, built):
    """Rebuild the mix independently from the sources and compare with the written files."""
    events, scenes, _ = sources
    out, folders = built
    records = read_remix(folders[20.0])
    rec = records[3]
    scene, sr = read_audio(scenes / rec.scene_file)
    scene = resample_audio(scene, sr, 32000)[:320000].astype(np.float64)
    levels = {}
    for snr in (0.0, 20.0):
        mix = scene / _rms(scene)
        for e in rec.events:
            clip, sr = read_audio(events / "audio_train" / e.event_file)
            clip = resample_audio(clip, sr, 32000).astype(np.float64)
            a, b = int(round(e.onset * 32000)), int(round(e.offset * 32000))
            seg = clip[: b - a] * 10 ** (snr / 20) / _rms(clip)
            mix[a: a + len(seg)] += seg
        written, _ = read_audio(folders[snr] / "audio" / f"{rec.name}.wav")
        np.testing.assert_allclose(written, mix / np.abs(mix).max(), atol=1e-4)
        parts = mixture_components(remix.Mixture(rec.name, rec.fold, rec.scene_file, rec.events),
                                   events, scenes, snr)
        np.testing.assert_allclose(written, parts["normalised"], atol=1e-4)
        levels[snr] = [_rms(track) for track in parts["events"]]
        assert np.max(np.abs(written)) == pytest.approx(1.0, abs=1e-4)
    # 20 dB louder events than at 0 dB relative to the same RMS-1 scene
    np.testing.assert_allclose(np.array(levels[20.0]) / np.array(levels[0.0]), 10.0, rtol=1e-9)


def test_deterministic_and_skips_when_built(sources, built, tmp_path, monkeypatch):
    events, scenes, _ = sources
    out, folders = built
    other = build_remix(events, scenes, tmp_path / "again", snrs=(20,), seed=3, progress=False)
    for f in ["mixture.yaml", "manifest.json", "audio/00000.wav", "audio/00007.wav"]:
        assert (other[20.0] / f).read_bytes() == (folders[20.0] / f).read_bytes()
    # rebuilt with the same parameters: nothing is written again
    monkeypatch.setattr("tf_scenes.audio.write_audio", lambda *a, **k: pytest.fail("rewrote audio"))
    assert build_remix(events, scenes, out, snrs=(0, 20), seed=3, progress=False) == folders
    # ... also when the datasets moved (the manifest compares the plan, not the source paths)
    moved = tmp_path / "moved"
    shutil.copytree(events, moved / "events")
    shutil.copytree(scenes, moved / "scenes")
    assert build_remix(moved / "events", moved / "scenes", out, snrs=(20,), seed=3, progress=False) \
        == {20.0: folders[20.0]}
    monkeypatch.undo()
    with pytest.raises(OutputDirError, match="plan_sha256, seed"):
        build_remix(events, scenes, tmp_path / "again", snrs=(20,), seed=4, progress=False)
    seed4 = build_remix(events, scenes, tmp_path / "again", snrs=(20,), seed=4, progress=False,
                        overwrite=True)
    assert read_remix(seed4[20.0])[0].events != read_remix(folders[20.0])[0].events


def test_read_remix_records_and_errors(built, tmp_path):
    _, folders = built
    records = read_remix(folders[0.0])
    assert len(records) == 8 and {r.fold for r in records} == {1, 2, 3, 4}
    r = records[0]
    assert r.path == folders[0.0] / "audio" / "00000.wav" and r.labels == {e.label for e in r.events}
    y = multi_hot(records)
    assert y.shape == (8, 41) and (y.sum(1) == [len(r.labels) for r in records]).all()

    bad = tmp_path / "bad"
    (bad / "audio").mkdir(parents=True)
    text = (folders[0.0] / "mixture.yaml").read_text()
    for rec in records:
        (bad / "audio" / f"{rec.name}.wav").write_bytes(b"")
    (bad / "mixture.yaml").write_text(text.replace(f"label: {r.events[1].label}", "label: Dog", 1))
    with pytest.raises(DataFormatError, match=r"mixture.yaml:1: mixture 1: unknown label 'Dog'"):
        read_remix(bad)
    data = yaml.safe_load(text)
    data[2]["events"][0]["offset"] = 11.0
    (bad / "mixture.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    line = yaml.safe_dump(data[:2], sort_keys=False).count("\n") + 1
    with pytest.raises(DataFormatError, match=rf"mixture.yaml:{line}: mixture 3: .*offset=11.0"):
        read_remix(bad)
    data[2]["events"][0]["offset"] = 1.0
    (bad / "mixture.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (bad / "audio" / "00005.wav").unlink()
    with pytest.raises(DataFormatError, match=r"1 of 8 mixture audio files are missing: .*00005.wav"):
        read_remix(bad)
    assert len(read_remix(bad, check_files=False)) == 8
    with pytest.raises(DataFormatError, match="file not found"):
        read_remix(tmp_path)


def test_cli(sources, tmp_path, capsys):
    events, scenes, _ = sources
    rc = main(["remix", "--events", str(events), "--scenes", str(scenes), "--snr", "0", "10",
               "--out", str(tmp_path / "cli"), "--seed", "1", "--per-fold", "1", "--no-progress"])
    assert rc == 0
    assert len(read_remix(tmp_path / "cli" / "snr10")) == 4
    assert "4 mixtures, SNR 10 dB, folds [1, 2, 3, 4]" in capsys.readouterr().out
    rc = main(["remix", "--events", str(tmp_path / "nowhere"), "--scenes", str(scenes), "--out",
               str(tmp_path / "cli2"), "--no-progress"])
    assert rc == 2 and "train.csv: file not found" in capsys.readouterr().err


def test_plan_only_then_audio(sources, built, tmp_path, monkeypatch):
    """audio=False writes the plan only (no source decoded); asking for the audio later writes the
    mixtures of that plan, the same bytes as a direct build; audio left in a plan-only folder is
    never taken for the mixtures."""
    events, scenes, _ = sources
    _, folders = built
    monkeypatch.setattr(remix, "load_sources", lambda *a, **k: pytest.fail("decoded a source"))
    plan = build_remix(events, scenes, tmp_path / "p", snrs=(20,), seed=3, progress=False, audio=False)
    monkeypatch.undo()
    folder = plan[20.0]
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "mixture.yaml"]
    assert (folder / "mixture.yaml").read_bytes() == (folders[20.0] / "mixture.yaml").read_bytes()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["audio"] is False and manifest["plan_sha256"] == json.loads(
        (folders[20.0] / "manifest.json").read_text())["plan_sha256"]
    assert len(read_remix(folder, check_files=False)) == 8
    # stale audio (another remix's) in the plan-only folder is rewritten, not trusted
    (folder / "audio").mkdir()
    for k in range(8):
        shutil.copy(folders[0.0] / "audio" / f"{k:05d}.wav", folder / "audio" / f"{k:05d}.wav")
    build_remix(events, scenes, tmp_path / "p", snrs=(20,), seed=3, progress=False)
    for k in range(8):
        assert (folder / "audio" / f"{k:05d}.wav").read_bytes() == (folders[20.0] / "audio" / f"{k:05d}.wav").read_bytes()
    assert json.loads((folder / "manifest.json").read_text())["audio"] is True
    # a folder with audio satisfies a plan-only request untouched
    monkeypatch.setattr("tf_scenes.io_utils.atomic_write_text", lambda *a, **k: pytest.fail("rewrote the plan"))
    assert build_remix(events, scenes, tmp_path / "p", snrs=(20,), seed=3, progress=False, audio=False) == plan


def test_cli_plan_only(sources, tmp_path, capsys):
    events, scenes, _ = sources
    rc = main(["remix", "--events", str(events), "--scenes", str(scenes), "--snr", "0", "--out", str(tmp_path),
               "--seed", "1", "--per-fold", "1", "--plan-only", "--no-progress"])
    assert rc == 0 and not (tmp_path / "snr0" / "audio").exists()
    assert "4 mixtures planned (no audio), SNR 0 dB" in capsys.readouterr().out
