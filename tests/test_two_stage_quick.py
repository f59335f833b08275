"""The two-stage quick profile end to end (`make reproduce-two-stage`: synthetic data generated
from scratch, 9 runs): every model of Tables 1 and 2 learns well above chance on the test split.
Slow (the whole quick profile, ~20-30 min on 2 cores): run by `make test-all`.

The floors are multiples of chance (10 scenes, 3 broad classes), not the paper's numbers: the quick
profile on synthetic data does not reproduce the paper's results. Measured (README, commit e5d555b,
AMD EPYC): 10-class rows 41.4-74.2 %, 3-class rows 84.2-99.4 %.
"""

import json
from pathlib import Path

import pytest

# Average accuracy (%) every row must reach: 3x chance for 10 scenes, about 2x for 3 classes.
FLOORS = {"table2": 30.0, "table1": 60.0}
ROWS = {"table2": {"resnet10", "fcnn10", "fsfcnn10", "ensemble10", "2stage_resnet10", "2stage_fcnn10",
                   "2stage_fsfcnn10", "2stage_ensemble10"},
        "table1": {"resnet3", "fcnn3", "ensemble3"}}


def rows_below_floors(out: Path) -> dict:
    """{(table, row): average accuracy} of every row of a two-stage result folder's Tables 1 and 2
    under its floor; a missing row or value counts as below (None)."""
    low = {}
    for table, floor in FLOORS.items():
        doc = json.loads((Path(out) / f"{table}.json").read_text())
        got = {r["key"]: r.get("average") for r in doc["rows"]}
        for key in sorted(ROWS[table]):
            v = got.get(key)
            if v is None or not v >= floor:
                low[(table, key)] = v
    return low


def _write_tables(out: Path, t2: float, t1: float) -> None:
    for table, value in (("table2", t2), ("table1", t1)):
        rows = [{"key": k, "average": value} for k in sorted(ROWS[table])]
        (out / f"{table}.json").write_text(json.dumps({"rows": rows}))


def test_floor_check_flags_rows_under_the_floor_and_missing_rows(tmp_path):
    _write_tables(tmp_path, 41.4, 84.2)
    assert rows_below_floors(tmp_path) == {}
    _write_tables(tmp_path, 29.9, 84.2)
    assert set(rows_below_floors(tmp_path)) == {("table2", k) for k in ROWS["table2"]}
    doc = {"rows": [{"key": "resnet3", "average": 99.0}]}
    (tmp_path / "table1.json").write_text(json.dumps(doc))
    low = rows_below_floors(tmp_path)
    assert low[("table1", "fcnn3")] is None and ("table1", "resnet3") not in low


@pytest.mark.slow
def test_quick_profile_rows_clear_the_floors(tmp_path):
    from tf_scenes.experiments.cli import main

    out = tmp_path / "two_stage"
    assert main(["reproduce", "two_stage", "--profile", "quick", "--out", str(out), "--cache-dir",
                 str(tmp_path / "cache"), "--set", f"data.synthetic_dir={tmp_path / 'data'}"]) == 0
    assert json.loads((out / "table2.json").read_text())["profile"] == "quick"
    low = rows_below_floors(out)
    assert not low, f"rows below the floors {FLOORS}: {low}"
