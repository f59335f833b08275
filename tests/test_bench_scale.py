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
    """Known costs: CPU s 2n+1, wall 3n, bytes 1000n+7, RSS 1e6 n (anon half); steps and validation
    clips proportional to n."""
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
            "bytes_written": 5 * 10 ** 8 if const else 1000 * n + 7, "peak_rss_bytes": int(1e6 * n),
            "peak_anon_bytes": int(5e5 * n), "peak_file_bytes": int(5e5 * n), "maxrss_bytes": 0, "processes": 1,
            "load_average_start": [0.1, 0.1, 0.1], "load_average_end": [0.1, 0.1, 0.1], "load_1min_samples": [0.5],
            "result": res}


def _fake_stages(sizes):
    return {str(n): {s: _measure(s, n) for s in scale.STAGES
                     if not (s in scale.CONSTANT_STAGES + tuple(scale.TRAIN_ARCHS) and n != sizes[0])}
            for n in sizes}


def test_extrapolation_on_known_costs():
    stages = _fake_stages([4, 8, 12])
    measured = {s: {k: v for k, v in per.items() if k != "models"} for s, per in stages.items()}
    real = scale.extrapolate(measured, N, runs_bytes=2 * 10 ** 9, cfg_counts={"kinds": 6, "fraction": 1.0})
    assert real["epoch_steps"] == N and real["batch_size"] == 32
    on, off = real["online"], real["offline"]
    # online data path: features + online_setup (2N+1 each) + the room bank (100 s, constant)
    assert on["hours_cpu"]["data_path"] == pytest.approx(round((2 * (2 * N + 1) + 100) / 3600, 3))
    assert off["hours_cpu"]["data_path"] == pytest.approx(round(2 * (2 * N + 1) / 3600, 3))
    # an epoch: input (2N+1) + steps (N steps x 32 examples x 0.5 s) + validation (N/4 x 0.25 s)
    n_val = real["val_clips"]
    for arch in ("resnet", "fcnn"):
        want = (2 * N + 1 + N * 32 * 0.5 + scale.predict(scale.fit([4, 8, 12], [1, 2, 3]), N) * 0.25) / 3600
        assert on["hours_cpu"][f"train_epoch_{arch}"] == pytest.approx(want, abs=2e-3)
        assert off["hours_cpu"][f"train_epoch_{arch}"] == pytest.approx(on["hours_cpu"][f"train_epoch_{arch}"])
    assert n_val == pytest.approx(N / 4, abs=1)
    # disk: features + online_setup (1000N+7 each) + room bank 0.5 GB + checkpoints 2 GB
    assert on["disk_gb"] == pytest.approx(2 * (1000 * N + 7) / 1e9 + 0.5 + 2.0, abs=2e-3)
    # RSS: the largest process: the training process (input pipeline + training stage at the
    # smallest size) against the data path's stages at N
    assert on["peak_rss_gb"] == pytest.approx(max(1e6 * N, 1e6 * N + 1e6 * 4) / 1e9, abs=1e-3)
    assert on["peak_anon_gb"] == pytest.approx((5e5 * N + 5e5 * 4) / 1e9, abs=1e-3)
    # offline, counted: 6 kinds x device-A training clips (train share 2/3 at size 12)
    cnt = real["offline_count"]
    assert cnt["copies"] == 6 * round(scale.REAL_COUNTS["train_a"] * 6 / 9)
    assert cnt["feature_bytes_per_row_float32"] == 423 * 128 * 3 * 4
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
    assert bench_run.main(["--out", str(tmp_path / "out"), "--only", "scale", "--quick"]) == 0
    # every stage at every size, the constant and training stages at the smallest only
    for n in (4, 8, 12):
        assert {s for s, m in calls if m == n} == (set(scale.STAGES) if n == 4 else
                                                   set(scale.STAGES) - set(scale.CONSTANT_STAGES)
                                                   - set(scale.TRAIN_ARCHS))
    assert (tmp_path / "data" / "n8" / "cache" / "augment").exists() is False  # size folders removed
    res = json.loads((tmp_path / "out" / "scale.json").read_text())
    assert res["sizes_measured"] == [4, 8, 12]
    assert set(res["stages"]) == {"4", "8", "12"}
    for per in res["stages"].values():
        for m in per.values():
            assert {"wall_s", "cpu_s", "bytes_written", "peak_rss_gb"} <= set(m)
    assert res["stages"]["8"]["features"]["peak_rss_gb"] == pytest.approx(8e6 / 1e9)
    f = res["fits"]["features"]["cpu_s"]["linear"]
    assert (f["a"], f["b"], f["r2"]) == pytest.approx((1.0, 2.0, 1.0))
    for mode in ("online", "offline"):
        r = res["real_size"][mode]
        assert {"disk_gb", "peak_rss_gb", "hours_cpu"} <= set(r)
        assert set(r["hours_cpu"]) == {"data_path", "train_epoch_resnet", "train_epoch_fcnn"}
        assert all(isinstance(v, float) for v in r["hours_cpu"].values())
    assert res["real_size"]["offline"]["hours_cpu"]["data_path"] == pytest.approx(round(2 * (2 * N + 1) / 3600, 3))
    m = res["machine"]
    assert m["cpu_model"] and m["cores"] == len(os.sched_getaffinity(0))
    assert len(res["commit"].split("-")[0]) == 40 and res["date"][:2] == "20"
    md = (tmp_path / "out" / "scale.md").read_text()
    assert "## At the real size" in md and "Budget of the paper profile" in md and "R^2" in md
    png = (tmp_path / "out" / "scale.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


@pytest.mark.slow
def test_real_stages_at_toy_sizes(tmp_path, monkeypatch):
    """Every stage run for real (subprocesses, quick widths, 1 training step) at two toy sizes: the
    measurements are consistent (bytes on disk, CPU time, RSS) and the extrapolation is finite."""
    monkeypatch.setenv("BENCH_SCALE_SIZES", "30,60")
    monkeypatch.setenv("BENCH_SCALE_ROOT", str(tmp_path / "data"))
    res = scale.run(tmp_path, quick=True)
    per = res["stages"]["30"]
    assert per["generate"]["bytes_written"] > 30 * 441000 * 3 * 0.9  # 10 s of 24-bit audio per listed clip
    assert per["features"]["result"]["memmap"] is True
    assert per["features"]["bytes_written"] >= per["features"]["result"]["clips"]["listed"] * 423 * 128 * 3 * 4
    assert all(m["cpu_s"] > 0 and m["peak_rss_bytes"] > 0 for m in per.values())
    assert per["train_resnet"]["result"]["steps_timed"] == 1 and per["train_resnet"]["result"]["losses_finite"]
    for mode in ("online", "offline"):
        assert all(math.isfinite(v) for v in res["real_size"][mode]["hours_cpu"].values())
    assert np.isfinite(res["real_size"]["online"]["disk_gb"])
