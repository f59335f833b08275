"""DcaseNet quick profile end to end (`make reproduce-dcasenet`): every single-task row of Table 2
learns each task well above chance on the synthetic data.  Slow (the whole quick profile, data
generation included): run by `make test-all`."""

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Floors of the quick profile's single-task rows (%), well above chance (ASC 10 %, 10 scenes; TAG
# lwlrap about 6 %, 80 classes).  Measured at Adam 3e-3 with zero TAG biases: ASC 58.6-85.3 %,
# SED F1 63.2-70.4 % cleared them, TAG lwlrap 10.0-14.5 % did not; with the TAG bias at the tag prior
# (quick.yaml) v1 w/o mixup's TAG went 13.9 % -> 17.6 % (README: the whole table).
FLOORS = {"asc_acc": 40.0, "tag_lwlrap": 15.0, "sed_f1_1s": 40.0}


@pytest.mark.slow
def test_quick_profile_single_task_rows_clear_the_floors(tmp_path):
    from tf_scenes.experiments.cli import main

    out = tmp_path / "dcasenet"
    # The synthetic data go where `make reproduce-dcasenet` puts them (reused when present).
    rc = main(["reproduce", "dcasenet", "--profile", "quick", "--out", str(out),
               "--set", f"data.synthetic_dir={REPO / 'data'}"])
    assert rc == 0
    rows = {r["key"]: r["ours"] for r in json.loads((out / "table2.json").read_text())["rows"]}
    assert sorted(rows) == ["v1", "v1-nomixup", "v2", "v3"]
    low = {(row, k): v for row, ours in rows.items() for k, v in ours.items()
           if k in FLOORS and (v is None or v < FLOORS[k])}
    assert not low, f"single-task rows below the floors {FLOORS}: {low}"


def test_quick_profile_learning_rate_and_tiny_keeps_the_papers():
    """The quick profile trains with Adam 3e-3 (chosen on the validation split, quick.yaml); the
    tiny smoke test, which inherits from it, keeps the paper's 1e-3 and so its numbers."""
    from tf_scenes.config import load_config
    from tf_scenes.experiments.dcasenet.plan import Config

    configs = REPO / "experiments" / "dcasenet" / "configs"
    lrs = {p: load_config(Config, configs / f"{p}.yaml", []).train.lr for p in ("paper", "quick", "tiny")}
    assert lrs == {"paper": 1e-3, "quick": 3e-3, "tiny": 1e-3}


def test_quick_profile_starts_the_tag_bias_at_the_prior_and_paper_does_not():
    from tf_scenes.config import load_config
    from tf_scenes.experiments.dcasenet.plan import Config

    configs = REPO / "experiments" / "dcasenet" / "configs"
    got = {p: load_config(Config, configs / f"{p}.yaml", []).train.tag_prior_bias for p in ("paper", "quick", "tiny")}
    assert got == {"paper": False, "quick": True, "tiny": True}
