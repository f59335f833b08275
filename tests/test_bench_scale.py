"""The paper-scale benchmark (bench/scale.py): the fits and the extrapolation on known numbers, the
JSON, Markdown and plot the section writes (stages replaced by known costs), and, slow, the real
stages at toy sizes."""

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import scale  # noqa: E402

N = scale.REAL_CLIPS


def test_linear_fit_is_exact_on_a_line_and_extrapolates():
    f = scale.fit([4, 8, 12], [2 * 4 + 1, 2 * 8 + 1, 2 * 12 + 1])
    assert f["linear"]["a"] == pytest.approx(1.0) and f["linear"]["b"] == pytest.approx(2.0)
    assert f["linear"]["r2"] == pytest.approx(1.0) and f["linear"]["rel_rms"] == pytest.approx(0.0, abs=1e-12)
    assert scale.predict(f, N) == pytest.approx(2 * N + 1)
    assert f["better"] == "linear"
    # y = 3 x^1.5: the power law is exact, the line is not
    g = scale.fit([10, 20, 40], [3 * 10 ** 1.5, 3 * 20 ** 1.5, 3 * 40 ** 1.5])
    assert g["power"]["k"] == pytest.approx(1.5) and g["power"]["c"] == pytest.approx(3.0)
    assert g["better"] == "power" and scale.predict(g, 100, "power") == pytest.approx(3000.0)
    # R^2 by hand: points (1, 0), (2, 2), (3, 1): line 1/3 + x/2, SS_res 1.5, SS_tot 2
    h = scale.fit([1, 2, 3], [0, 2, 1])
    assert h["linear"]["b"] == pytest.approx(0.5) and h["linear"]["r2"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="two distinct sizes"):
        scale.fit([5, 5], [1, 2])


def _measure(stage, n):
    """Known costs: CPU s 2n+1, wall 3n, bytes 1000n+7, RSS 0.1 GB x n (anon half)."""
    res = {"generate": {"files": n}, "features": {"clips": {"train": n // 2, "val": n // 4, "eval": n - n // 2 - n // 4,
                                                            "listed": n}, "shape": [n, 423, 128, 3]},
           "room_bank": {"rooms": 128}, "online_setup": {"copies": 3 * n}, "offline_augment": {"copies": 3 * n},
           "offline_features": {"rows": 4 * n, "copies": 3 * n}}.get(stage, {})
    if stage.endswith("_epoch"):
        res = {"steps": n, "study_batch_size": 32, "val_clips": n // 4, "batches_per_s": 1.0, "batches_timed": 2,
               "cpu_s_per_batch": 2.0, "first_batch_cpu_s": 3.0}
    if stage in scale.TRAIN_ARCHS:
        res = {"step_cpu_s_mean": 4.0, "step_cpu_s_per_example": 0.5, "step_s_mean": 4.0,
               "val_predict_cpu_s_per_clip": 0.25}
    if stage == "models":
        res = {"runs_bytes": 2 * 10 ** 9, "augment": {"kinds": 6, "fraction": 1.0, "mode": "online"}}
    const = stage in scale.CONSTANT_STAGES
    return {"wall_s": 3.0 * n, "cpu_s": 100.0 if const else 2.0 * n + 1, "cpu_s_waited": 0.0, "cpu_s_sampled": 0.0,
            "bytes_written": 5 * 10 ** 8 if const else 1000 * n + 7, "peak_rss_bytes": int(1e8 * n),
            "peak_anon_bytes": int(5e7 * n), "peak_file_bytes": int(5e7 * n), "maxrss_bytes": 0, "processes": 1,
            "load_average_start": [0.1, 0.1, 0.1], "load_average_end": [0.1, 0.1, 0.1], "load_1min_samples": [0.5],
            "result": res}


def _wanted(stage, n, sizes):
    """Where the section runs each stage: the room bank at the smallest size, the models and the
    training at the largest, the rest at every size."""
    if stage == "room_bank":
        return n == sizes[0]
    if stage in ("models", *scale.TRAIN_ARCHS):
        return n == sizes[-1]
    return True


def _fake_stages(sizes):
    return {str(n): {s: _measure(s, n) for s in scale.STAGES if _wanted(s, n, sizes)} for n in sizes}


def test_unresolved_slopes_give_a_bound_or_the_largest_peak():
    """Fixed costs (TensorFlow's start) can hide a stage's slope at small sizes: time then gets an
    upper bound (the largest cost + the steepest slope the spread allows); a peak that did not rise
    beyond the noise stays the largest measured, not a line through noise."""
    cpu = scale.fit([26, 43, 86], [8.5, 8.3, 9.0])  # R^2 < 0.8
    value, how = scale.at_size(cpu, 1000, "cpu_s")
    assert how == "bound" and value == pytest.approx(9.0 + (9.0 - 8.3) / (86 - 26) * (1000 - 86))
    mem = scale.fit([26, 43, 86], [0.37e9, 0.40e9, 0.42e9])  # rises 0.05 GB: noise
    assert scale.at_size(mem, 16935, "peak_anon_bytes") == (0.42e9, "constant")
    grow = scale.fit([26, 43, 86], [1e9, 2e9, 4e9])
    value, how = scale.at_size(grow, 100, "peak_anon_bytes")
    assert how == "linear" and value == pytest.approx(scale.predict(grow, 100))
    line = scale.fit([4, 8, 12], [9, 17, 25])
    assert scale.at_size(line, N, "cpu_s") == (pytest.approx(2 * N + 1), "linear")


def test_real_counts_from_the_paper_config():
    rc = scale.real_counts({"kinds": 6, "fraction": 1.0, "val_fraction": 0.1, "batch_size": 32})
    assert rc["device_a_chosen"] == round(10215 * 0.9) == 9194 and rc["copies"] == 6 * 9194
    assert rc["train"] == round(13965 * 0.9) and rc["val"] == 13965 - rc["train"]
    assert rc["rows"] == 16935 + 6 * 9194 and rc["epoch_examples"] == rc["train"] + 6 * 9194
    assert rc["epoch_steps"] == math.ceil(rc["epoch_examples"] / 32)


def test_extrapolation_on_known_costs():
    stages = _fake_stages([4, 8, 12])
    measured = {s: {k: v for k, v in per.items() if k != "models"} for s, per in stages.items()}
    cfg = {"kinds": 6, "fraction": 1.0}
    real = scale.extrapolate(measured, N, runs_bytes=2 * 10 ** 9, cfg_counts=cfg)
    rc = scale.real_counts(cfg)
    C, R, S, V = rc["copies"], rc["rows"], rc["epoch_steps"], rc["val"]
    assert real["epoch_steps"] == S and real["batch_size"] == 32 and real["val_clips"] == V
    on, off = real["online"], real["offline"]
    # online data path: features + online_setup (2n+1 per listed clip each) + the room bank (100 s)
    assert on["hours_cpu"]["data_path"] == pytest.approx(round((2 * (2 * N + 1) + 100) / 3600, 3))
    # offline: the augmentation fitted per copy (3 per clip: 2/3 s each + 1), the features per row
    # (4 per clip: 1/2 s each + 1), each at its real count
    assert off["hours_cpu"]["data_path"] == pytest.approx(round((2 / 3 * C + 1 + 0.5 * R + 1) / 3600, 3))
    # an epoch: first batch 3 s + 2 s per further batch, S steps x 32 examples x 0.5 s, V x 0.25 s
    want = (3 + (S - 1) * 2 + S * 32 * 0.5 + V * 0.25) / 3600
    for arch in ("resnet", "fcnn"):
        assert on["hours_cpu"][f"train_epoch_{arch}"] == pytest.approx(want, abs=1e-3)
        assert off["hours_cpu"][f"train_epoch_{arch}"] == pytest.approx(want, abs=1e-3)
    # disk: features + online_setup (1000n+7 bytes each) + room bank 0.5 GB + checkpoints 2 GB
    assert on["disk_gb"] == pytest.approx(2 * (1000 * N + 7) / 1e9 + 0.5 + 2.0, abs=2e-3)
    assert off["disk_gb"] == pytest.approx((1000 / 3 * C + 7 + 250 * R + 7) / 1e9 + 2.0, abs=2e-3)
    # RSS: the largest process: the training process (input pipeline at N + training stage, measured
    # at the largest size, 12) against the data path's stages at N
    assert on["peak_rss_gb"] == pytest.approx((1e8 * N + 1e8 * 12) / 1e9, abs=1e-3)
    assert on["peak_anon_gb"] == pytest.approx((5e7 * N + 5e7 * 12) / 1e9, abs=1e-3)
    assert real["methods"]["features"] == {"cpu_s": "linear", "bytes_written": "linear", "peak_rss_bytes": "linear",
                                           "peak_anon_bytes": "linear"}
    cnt = real["offline_count"]
    assert cnt["copies"] == C and cnt["feature_bytes_per_row_float32"] == 423 * 128 * 3 * 4
    b = scale.budget(real)
    assert b["disk_ok"] == (on["disk_gb"] <= 15) and b["ram_ok"] == (on["peak_anon_gb"] <= 16)


def test_section_writes_json_markdown_and_plot(tmp_path, monkeypatch):
    """`python -m bench.run --only scale` with the stage processes replaced by known costs: the
    JSON keys, the fits' numbers, the Markdown and the plot."""
    from bench import run as bench_run

    calls = []

    def fake_run_stage(stage, root, n, quick, timeout=None):
        calls.append((stage, n))
        if stage == "room_bank":
            (root / "cache" / "augment").mkdir(parents=True, exist_ok=True)
            (root / "cache" / "augment" / "rir_bank-x.npz").write_bytes(b"rooms")
        return _measure(stage, n)

    monkeypatch.setattr(scale, "run_stage", fake_run_stage)
    monkeypatch.setenv("BENCH_SCALE_SIZES", "4,8,12")
    monkeypatch.setenv("BENCH_SCALE_ROOT", str(tmp_path / "data"))
    monkeypatch.delenv("BENCH_SCALE_TRAIN_SIZES", raising=False)
    monkeypatch.setenv("BENCH_SCALE_FLOAT16", "0")  # the float16 cache has its own tests (test_cache.py)
    assert bench_run.main(["--out", str(tmp_path / "out"), "--only", "scale", "--quick"]) == 0
    for n in (4, 8, 12):
        assert [s for s, m in calls if m == n] == [s for s in scale.STAGES if _wanted(s, n, (4, 8, 12))]
    assert (tmp_path / "data" / "n8" / "cache" / "augment").exists() is False  # size folders removed
    res = json.loads((tmp_path / "out" / "scale.json").read_text())
    assert res["sizes_measured"] == [4, 8, 12]
    assert set(res["stages"]) == {"4", "8", "12"}
    for per in res["stages"].values():
        for m in per.values():
            assert {"wall_s", "cpu_s", "bytes_written", "peak_rss_gb"} <= set(m)
    assert res["stages"]["8"]["features"]["peak_rss_gb"] == pytest.approx(0.8)
    f = res["fits"]["features"]["cpu_s"]["linear"]
    assert (f["a"], f["b"], f["r2"]) == pytest.approx((1.0, 2.0, 1.0))
    for mode in ("online", "offline"):
        r = res["real_size"][mode]
        assert {"disk_gb", "peak_rss_gb", "hours_cpu"} <= set(r)
        assert set(r["hours_cpu"]) == {"data_path", "train_epoch_resnet", "train_epoch_fcnn"}
        assert all(isinstance(v, float) for v in r["hours_cpu"].values())
    online = res["real_size"]["online"]["hours_cpu"]["data_path"]
    assert online == pytest.approx(round((2 * (2 * N + 1) + 100) / 3600, 3))
    m = res["machine"]
    assert m["cpu_model"] and m["cores"] == len(os.sched_getaffinity(0))
    assert len(res["commit"].split("-")[0]) == 40 and res["date"][:2] == "20"
    md = (tmp_path / "out" / "scale.md").read_text()
    assert "## At the real size" in md and "Budget of the paper profile" in md and "R^2" in md
    png = (tmp_path / "out" / "scale.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())
    # --report redoes the fits, extrapolation, Markdown and plot from the JSON alone: the same numbers
    (tmp_path / "out" / "scale.md").unlink()
    assert scale.main(["--report", str(tmp_path / "out" / "scale.json")]) == 0
    again = json.loads((tmp_path / "out" / "scale.json").read_text())
    assert again["real_size"] == res["real_size"] and again["fits"] == res["fits"]
    assert (tmp_path / "out" / "scale.md").read_text() == md


def test_interrupted_section_resumes_from_completed_sizes(tmp_path, monkeypatch):
    """A stage that fails stops the section; started again with the same root it keeps the sizes it
    completed (and the size-independent room bank) and measures only the rest."""
    calls = []
    fail = {"on": True}

    def fake_run_stage(stage, root, n, quick, timeout=None):
        if fail["on"] and (stage, n) == ("offline_features", 12):
            raise RuntimeError("stage failed")
        calls.append((stage, n))
        return _measure(stage, n)

    monkeypatch.setattr(scale, "run_stage", fake_run_stage)
    monkeypatch.setenv("BENCH_SCALE_SIZES", "4,8,12")
    monkeypatch.setenv("BENCH_SCALE_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("BENCH_SCALE_FLOAT16", "0")
    monkeypatch.setattr(scale, "finish", lambda res, out: res)  # no report needed here
    monkeypatch.setattr("bench.common.machine_info", lambda: {"cpus_usable": 2})
    with pytest.raises(RuntimeError, match="stage failed"):
        scale.run(tmp_path, quick=True)
    saved = json.loads((tmp_path / "data" / "measured.json").read_text())
    assert set(saved) == {"4", "8", "12"} and "offline_features" not in saved["12"]
    calls.clear()
    fail["on"] = False
    res = scale.run(tmp_path, quick=True)
    assert [n for _, n in calls] == [12] * len([s for s in scale.STAGES if _wanted(s, 12, (4, 8, 12))])
    assert res["stages"]["4"]["room_bank"] == saved["4"]["room_bank"]
    assert not (tmp_path / "data" / "measured.json").exists()  # a finished section leaves no state


@pytest.mark.slow
def test_real_stages_at_toy_sizes(tmp_path, monkeypatch):
    """Every stage run for real (subprocesses, quick widths, 1 training step) at two toy sizes: the
    measurements are consistent (bytes on disk, CPU time, RSS) and the extrapolation is finite."""
    monkeypatch.setenv("BENCH_SCALE_SIZES", "16,24")
    monkeypatch.setenv("BENCH_SCALE_ROOT", str(tmp_path / "data"))
    res = scale.run(tmp_path, quick=True)
    per = res["stages"]["16"]
    listed = per["features"]["result"]["clips"]["listed"]
    assert per["generate"]["bytes_written"] > listed * 441000 * 3 * 0.9  # 10 s of 24-bit audio per listed clip
    assert per["features"]["result"]["memmap"] is True
    assert per["features"]["bytes_written"] >= listed * 423 * 128 * 3 * 4
    assert all(m["cpu_s"] > 0 and m["peak_rss_bytes"] > 0 for m in per.values())
    train = res["stages"]["24"]["train_resnet"]["result"]
    assert train["steps_timed"] == 1 and train["losses_finite"] and train["memory_batch_loss_finite"]
    for mode in ("online", "offline"):
        assert all(math.isfinite(v) for v in res["real_size"][mode]["hours_cpu"].values())
    assert np.isfinite(res["real_size"]["online"]["disk_gb"])
    f16 = res["float16_cache"]
    assert f16["ratio"] < 0.51 and 0 < f16["max_abs_error"] <= 2.0 ** -12
