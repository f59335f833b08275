"""The one table writer of the studies (tf_scenes.experiments.tables) and the one data label
(tf_scenes.datasets.provenance)."""

import json
import math

import pytest

from tf_scenes.io_utils import loads_json
from tf_scenes.datasets import provenance
from tf_scenes.experiments.tables import Column, write_table

COLUMNS = [Column("system", "system", text=True), Column("A", "A", fmt="{:.1f}"),
           Column("average", "ours.avg", paper="paper.avg", fmt="{:.1f}")]
ROWS = [{"system": "ResNet | 10", "A": 75.0, "ours": {"avg": 50.0}, "paper": {"avg": 74.6}},
        {"system": "FCNN", "A": None, "ours": {"avg": math.nan}, "paper": None}]


def test_markdown_has_paper_column_beside_ours_and_dashes_for_missing(tmp_path):
    label = provenance.DataLabel("TAU 2020 at /data", synthetic=False)
    doc = write_table(tmp_path, "t", "Table X", COLUMNS, ROWS, data=label, profile="paper", notes=["a note"])
    md = (tmp_path / "t.md").read_text().splitlines()
    assert md[0] == "# Table X"
    assert "Data: TAU 2020 at /data  " in md and "Profile: paper" in md
    assert "| system | A | average ours | average paper |" in md
    assert "| :--- | ---: | ---: | ---: |" in md
    assert "| ResNet \\| 10 | 75.0 | 50.0 | 74.6 |" in md  # a pipe in a name is escaped
    assert "| FCNN | - | - | - |" in md  # None, NaN and a missing paper number
    assert md[-1] == "a note." and not any("SYNTHETIC" in line for line in md)
    text = (tmp_path / "t.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))  # strict JSON
    on_disk = loads_json(text)
    assert math.isnan(on_disk["rows"][1]["ours"]["avg"]) and math.isnan(doc["rows"][1]["ours"]["avg"])
    assert json.dumps(on_disk, allow_nan=True) == json.dumps(doc, allow_nan=True)
    assert on_disk["synthetic"] is False and on_disk["banner"] == "" and on_disk["columns"] == ["system", "A", "average"]


def test_synthetic_data_gets_the_banner_in_json_and_markdown(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / provenance.MARKER).write_text(json.dumps({"size": "tiny", "seed": 3}))
    label = provenance.describe("TAU Urban Acoustic Scenes 2020 Mobile", tmp_path / "ds")
    assert label.synthetic and label.kind == "synthetic" and "size tiny, seed 3" in label.text
    doc = write_table(tmp_path, "t", "T", COLUMNS, ROWS[:1], data=label, profile="tiny")
    md = (tmp_path / "t.md").read_text()
    assert doc["banner"] == provenance.SYNTHETIC_BANNER and f"**{provenance.SYNTHETIC_BANNER}.**" in md
    assert doc["data"].startswith("SYNTHETIC TAU Urban Acoustic Scenes 2020 Mobile-format data")


def test_one_rule_for_every_source(tmp_path):
    """Synthetic wherever the marker is; a remix of synthetic sources is synthetic; sources that are
    gone make the data unverified, never real."""
    real, synth = tmp_path / "real", tmp_path / "synth"
    real.mkdir(), synth.mkdir()
    (synth / provenance.MARKER).write_text("{}")
    assert provenance.describe("X", real).kind == "real"
    assert provenance.describe("X", synth).kind == "synthetic"
    assert provenance.describe("remix", tmp_path, sources=[real, synth]).kind == "synthetic"
    gone = provenance.describe("remix", tmp_path, sources=[real, tmp_path / "nope"])
    assert gone.kind == "unverified" and gone.banner.startswith("UNVERIFIED") and "UNVERIFIED" in gone.text
    both = provenance.combine([provenance.describe("X", real), provenance.describe("Y", synth)])
    assert both.synthetic and both.text.count(";") == 1
