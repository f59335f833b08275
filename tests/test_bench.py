"""The benchmark harness (bench/): every section in its quick mode, the JSON it writes, the helpers,
and the front-end speed changes it measures (24-bit numpy decoding, blocked mel product, the XLA
front-end of the feature cache) against the values they replace."""

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("features", "input_pipeline", "training", "inference", "augmentation", "synth")


# ------------------------------------------------------------------------------------ helpers

def test_per_item_hand_computed():
    from bench.common import per_item

    s = per_item({"wall": [2.0, 1.0, 4.0], "cpu": [1.0, 0.5, 3.0]}, 10)
    assert s["repeats"] == 3 and s["items_per_repeat"] == 10
    assert s["per_s_best"] == 10.0 and s["per_s_median"] == 5.0  # 10 items in 1 s (min) and 2 s (median)
    assert s["wall_ms_per_item_min"] == 100.0 and s["wall_ms_per_item_median"] == 200.0
    assert s["cpu_ms_per_item_min"] == 50.0 and s["cpu_ms_per_item_median"] == 100.0
    assert s["wall_s"] == {"values": [2.0, 1.0, 4.0], "min": 1.0, "median": 2.0}


def test_interleaved_runs_alternatives_in_turn():
    from bench.common import interleaved

    calls = []
    out = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b"] * 3
    assert len(out["a"]["wall"]) == len(out["b"]["cpu"]) == 3


def test_shared_note_and_table():
    from bench.common import md_table, shared_note

    assert shared_note([0.5, 0.4, 0.3], 2) is None
    assert "shared with other work" in shared_note([3.2, 2.0, 1.0], 2)
    assert md_table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"


def test_reference_generator_batches(tmp_path):
    from bench.input_pipeline import reference_generator, write_pickles

    feats = np.ones((8, 423, 128, 3), np.float32)
    labels = np.eye(10, dtype=np.float32)[np.arange(8) % 10]
    paths = write_pickles(tmp_path, feats, labels)
    x, y = next(reference_generator(paths, batch_size=2, crop=400, seed=1))
    assert x.shape == (2, 400, 128, 3) and y.shape == (2, 10)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)  # mixed one-hot labels stay distributions
    assert x.min() >= 0.0 and x.max() <= 1.0 + 1e-6 and (x == 0).any()  # ones, masked to 0, mixed


# --------------------------------------------------------------- front-end changes the bench measures

def test_pcm24_samples_hand_computed():
    from tf_scenes.pipelines.audio import pcm24_samples

    ints = [0, 1, -1, 2**23 - 1, -(2**23), 0x123456]
    raw = b"\xab" + b"".join(v.to_bytes(3, "little", signed=True) for v in ints)  # a header byte first
    got = pcm24_samples(raw, 1, len(ints))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array(ints, np.float64) / 2**23)
    with pytest.raises(ValueError, match="need"):
        pcm24_samples(raw[:-1], 1, len(ints))
    with pytest.raises(ValueError, match="offset"):
        pcm24_samples(raw, 0, 1)


def test_mel_blocks_rebuild_the_mel_matrix():
    tf = pytest.importorskip("tensorflow")
    from tf_scenes.features import FEATURE_CONFIGS
    from tf_scenes.features.frontend import mel_blocks, mel_matrix, mel_spectrogram

    rng = np.random.default_rng(0)
    for cfg in FEATURE_CONFIGS.values():
        if cfg.kind != "logmel":
            continue
        full = mel_matrix(cfg)
        rebuilt = np.zeros_like(full)
        col = 0
        for lo, hi, w in mel_blocks(cfg):
            rebuilt[lo:hi, col:col + w.shape[1]] = w
            col += w.shape[1]
        np.testing.assert_array_equal(rebuilt, full)  # every non-zero weight inside its block
        spec = rng.random((2, 7, full.shape[0]), dtype=np.float32)
        np.testing.assert_allclose(mel_spectrogram(cfg, tf.constant(spec)).numpy(), spec @ full, rtol=1e-5)


def test_cache_xla_front_end_matches_graph(tmp_path):
    pytest.importorskip("tensorflow")
    from tf_scenes.pipelines.cache import cached_features
    from tf_scenes.audio import read_audio
    from tf_scenes.features import extract

    from bench.features import write_clips

    clips = write_clips(tmp_path / "audio", 3, 2.0)  # zero-padded to 10 s by the two_stage config
    xla = cached_features(clips, "two_stage", tmp_path / "xla", jit_compile=True, batch_size=2, progress=False)
    auto = cached_features(clips, "two_stage", tmp_path / "auto", batch_size=2, progress=False)
    for i, p in enumerate(clips):
        ref = extract("two_stage", read_audio(p, sr=44100)[0])
        np.testing.assert_allclose(xla[i], ref, atol=1e-5)
        np.testing.assert_allclose(auto[i], ref, atol=1e-6)  # graph front-end (< XLA_MIN_CLIPS files)
    meta = {d: json.loads(next((tmp_path / d).glob("*.json")).read_text()) for d in ("xla", "auto")}
    assert meta["xla"]["front_end"] == {"jit_compile": True}
    assert meta["auto"]["front_end"] == {"jit_compile": False}


# ------------------------------------------------------------------------------ the quick run

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONHASHSEED="0",
               NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba")))
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--out", str(out), "--quick", "--repeats", "1",
                           "--note", "test run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, json.loads((out / "results.json").read_text())


@pytest.mark.slow  # the quick bench run takes ~3 min on 2 cores: `make bench` is where it belongs
def test_quick_run_writes_every_section(quick_run):
    out, res = quick_run
    assert set(res["sections"]) == set(SECTIONS)
    for name in SECTIONS:
        assert (out / f"{name}.json").exists()
    md = (out / "results.md").read_text()
    assert all(f"## {name}" in md for name in SECTIONS) and "test run" in md

    m = res["machine"]
    assert m["cpu_model"] and m["cpus_usable"] >= 1 and m["platform"]
    assert m["tensorflow"] == importlib.metadata.version("tensorflow")
    run = res["run"]
    assert run["quick"] is True and run["repeats"] == 1 and run["sections"] == list(SECTIONS)
    if hasattr(os, "getloadavg"):
        assert len(run["load_average_start"]) == 3 and len(run["load_average_end"]) == 3
    for name in SECTIONS:
        sec = res["sections"][name]
        assert sec["quick"] is True and sec["seconds"] > 0 and sec["summary_md"] and sec["measured"]
        assert sec["machine"] == m and sec["load_average_end"] is not None


@pytest.mark.slow  # the quick bench run takes ~3 min on 2 cores: `make bench` is where it belongs
def test_quick_run_features_fields(quick_run):
    sec = quick_run[1]["sections"]["features"]
    for side in ("cache_xla_pcm", "tf_data_xla", "tf_data_graph", "librosa_reference"):
        s = sec[side]
        assert s["repeats"] == 1 and len(s["wall_s"]["values"]) == 1
        assert s["per_s_best"] > 0 and s["cpu_ms_per_item_median"] > 0 and s["first_run_s"] > 0
    assert set(sec["ratios"]) >= {"wall_clips_per_s_best", "wall_clips_per_s_median", "cpu_per_clip_median"}
    assert sec["max_abs_diff"]["xla_vs_librosa"] <= 1e-3 and sec["max_abs_diff"]["xla_vs_graph"] <= 1e-5
    assert sec["breakdown"]["pcm24_decoders_identical"] is True
    assert sec["xla_compile"]["cache_uses_xla_from_clips"] >= 1
    # the floor: every implementation tried, the fastest by median CPU, pipelines as ratios to it
    floor = sec["floor"]
    assert {"tf_graph_dense_mel", "tf_xla_blocked_mel", "scipy_rfft_w1_dense_mel", "numpy_rfft_dense_mel"} <= set(
        floor["tried"]) and set(floor["candidates"]) == set(floor["tried"])
    best = min(floor["candidates"].values(), key=lambda c: c["cpu_ms_per_item_median"])
    assert floor["cpu_ms_per_clip_median"] == best["cpu_ms_per_item_median"] == floor["candidates"][floor["fastest"]][
        "cpu_ms_per_item_median"]
    assert all(c["max_rel_diff_vs_tf_graph_dense"] < 1e-5 for c in floor["candidates"].values())  # one computation
    ratios = sec["vs_floor_cpu_median"]
    for side in ("cache_xla_pcm", "tf_data_xla", "tf_data_graph", "librosa_reference"):
        assert ratios[side] == pytest.approx(sec[side]["cpu_ms_per_item_median"] / floor["cpu_ms_per_clip_median"],
                                             rel=2e-3)
    assert sec["max_abs_diff"]["cache_xla_pcm_vs_tf_data_xla"] == 0.0  # the cache's XLA path: the same features
    assert {"pcm_read_batch", "pcm_xla_decode_and_front_end_batch"} <= set(sec["breakdown"])
    assert "Floor" in sec["summary_md"] and floor["fastest"] in sec["summary_md"]


@pytest.mark.slow  # the quick bench run takes ~3 min on 2 cores: `make bench` is where it belongs
def test_quick_run_input_training_inference_fields(quick_run):
    secs = quick_run[1]["sections"]
    inp = secs["input_pipeline"]
    assert set(inp["rates"]) == {"ours_tf_data_memmap", "generator_inline", "generator_thread_queue10"}
    for src in inp["train_loop"]["sources"].values():
        assert 0.0 <= src["input_wait_fraction"] <= 1.0 and src["step_s"]["median"] > 0

    tr = secs["training"]
    kinds = {(e["precision"], e["jit_compile"]) for e in tr["entries"]}
    assert {("float32", False), ("float32", True)} <= kinds
    assert any(p.startswith("mixed_") for p, _ in kinds)
    assert all(e["samples_per_s_median"] > 0 and e["device"] for e in tr["entries"])
    if tr["device"] == "CPU":
        assert tr["gpu"]["status"].startswith("not measured") and "bench.run" in tr["gpu"]["command"]

    inf = secs["inference"]
    (w,) = inf["widths"]
    assert w["outputs_sane"] is True and w["batch1"]["wall_ms"]["median"] > 0
    assert w["batch_n"]["clips_per_s_median"] > 0
    assert {"front_end", "fcnn10", "fcnn3"} <= set(w["breakdown_batch1"])


@pytest.mark.slow  # the quick bench run takes ~3 min on 2 cores: `make bench` is where it belongs
def test_quick_run_augmentation_fields(quick_run):
    sec = quick_run[1]["sections"]["augmentation"]
    kinds = ("spectrum_correction", "reverb_drc", "pitch_shift", "speed_change", "noise", "same_class_mix")
    assert set(sec["kinds"]) == set(kinds)
    for k in kinds:
        e = sec["kinds"][k]
        assert e["online_clips_per_s"] > 0 and e["offline_clips_per_s"] > 0
        assert e["ratio"] == pytest.approx(e["online_clips_per_s"] / e["offline_clips_per_s"], rel=0.01)
    assert sec["online_clips_per_s"] == sec["rates"]["online/six_way"]["per_s_median"]
    assert sec["offline_clips_per_s"] == sec["rates"]["offline/six_way"]["per_s_median"]
    assert sec["target"] == 10.0 and sec["target_met"] == (sec["ratio"] >= 10.0)
    loop = sec["train_loop"]
    assert 0.0 <= loop["input_wait_fraction"] <= 1.0 and loop["step_s"]["median"] > 0
    assert sec["rir_bank"]["rooms"] >= 1 and sec["rir_bank"]["build_s"] > 0


@pytest.mark.slow  # the quick bench run takes ~3 min on 2 cores: `make bench` is where it belongs
def test_quick_run_synth_fields(quick_run):
    sec = quick_run[1]["sections"]["synth"]
    assert set(sec["kinds"]) == {"asc", "tag", "sed", "events", "esc50"}
    full = {"asc": (14400, 23040), "tag": (24785, 24785), "events": (9471, 9471), "sed": (600, 1200),
            "esc50": (None, 2000)}
    for kind, e in sec["kinds"].items():
        assert e["items"] >= 1 and e["cpu_ms_per_item_median"] > 0 and e["cpu_ms_per_file_median"] > 0, kind
        assert (full[kind][0] in (None, e["full_items"])) and e["full_files"] == full[kind][1], kind
        assert e["projected_full_minutes"] == pytest.approx(
            e["full_items"] * e["cpu_ms_per_item_median"] / 1000 / sec["cpus_usable"] / 60, rel=0.01), kind
