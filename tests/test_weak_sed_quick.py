"""(slow) The weak-SED quick profile end to end (`make reproduce-weak-sed`: synthetic data generated
from scratch, 5 model runs x 2 SNRs and the 2 other alphas of the ablation at 20 dB; 22.9 minutes
wall, 34.7 CPU-minutes measured on 2 cores of an Intel Xeon at commit 26d4096):
every model learns well above chance on the held-out fold at 20 dB, and Table 1 reports every
model at 20 and 0 dB.

The bar is twice chance (3 of 41 classes per clip: micro-AP 0.073), not a number of the paper:
the quick profile on synthetic data does not reproduce the paper's results.
"""

import json
import math

import pytest

from tf_scenes.experiments.cli import main

CHANCE = 3 / 41
SNRS = ("20", "0")  # quick.yaml: data.snrs; the alpha ablation (Table 2) at 20 dB only


@pytest.mark.slow
def test_quick_profile_learns_every_model_above_twice_chance(tmp_path):
    out = tmp_path / "results"
    assert main(["reproduce", "weak_sed", "--profile", "quick", "--out", str(out), "--cache-dir",
                 str(tmp_path / "cache"), "--set", f"data.synthetic_dir={tmp_path / 'data'}"]) == 0
    t1 = json.loads((out / "table1.json").read_text())
    t2 = json.loads((out / "table2.json").read_text())
    assert t1["profile"] == "quick" and t1["synthetic"] is True
    micro = {}  # model run -> {snr: test micro-AP}
    for r in t1["rows"]:
        micro.setdefault(r["key"], {})[f"{r['snr']:g}"] = r["ours"]["micro_ap"]
    assert set(micro) == {"gap", "gmp", "gwrp", "dilated_attention", "2apae"}
    for name, by_snr in micro.items():
        # every Table 1 model at 20 and 0 dB: how each degrades is in the table
        assert set(by_snr) == set(SNRS), name
    for r in t2["rows"]:
        assert set(r["ours"]) == {"20"}, r["key"]
        if r["key"] in micro:  # Table 2's alpha 0.001 row is Table 1's 2APAE run
            assert r["ours"]["20"] == micro[r["key"]]["20"]
        micro.setdefault(r["key"], dict(r["ours"]))
    assert set(micro) == {"gap", "gmp", "gwrp", "dilated_attention", "2apae", "2apae_alpha0", "2apae_alpha0_1"}
    for name, by_snr in micro.items():
        assert all(v is not None and math.isfinite(v) and 0.0 <= v <= 1.0 for v in by_snr.values()), (name, by_snr)
    low = {n: round(v["20"], 4) for n, v in micro.items() if v["20"] < 2 * CHANCE}
    assert not low, f"20 dB test micro-AP below twice chance ({2 * CHANCE:.3f}): {low}"
