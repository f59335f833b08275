"""Ensembles, two-stage fusion joined by clip name, the fusion audit on the published scores, tables."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tf_scenes.errors import DataFormatError
from tf_scenes.metrics.classification import log_loss
from tf_scenes.two_stage.audit import audit_fusion, read_score_file
from tf_scenes.two_stage import paper as tables
from tf_scenes.scores import ClipMismatchError, ScoreTable, join_by_clip
from tf_scenes.two_stage.fusion import BROAD_CLASSES, SCENES, broad_class, ensemble, ensemble_tables, fuse, fuse_tables


def test_broad_classes():
    assert [s for s in SCENES if broad_class(s) == "indoor"] == ["airport", "metro_station", "shopping_mall"]
    assert [s for s in SCENES if broad_class(s) == "outdoor"] == ["park", "public_square", "street_pedestrian",
                                                                "street_traffic"]
    assert [s for s in SCENES if broad_class(s) == "transportation"] == ["bus", "metro", "tram"]
    with pytest.raises(ValueError, match="unknown scene"):
        broad_class("beach")


def test_ensemble_is_sum():
    a, b = np.array([[0.2, 0.8]]), np.array([[0.6, 0.4]])
    np.testing.assert_allclose(ensemble([a, b]), [[0.8, 1.2]])
    with pytest.raises(ValueError):
        ensemble([a, np.ones((2, 2))])


def test_fuse_hand_computed():
    p10 = np.full((1, 10), 0.1)
    p10[0, SCENES.index("park")] = 0.3
    p10[0, SCENES.index("bus")] = 0.25
    p3 = np.array([[0.1, 0.2, 0.7]])  # indoor, outdoor, transportation
    s = fuse(p10, p3)
    assert s[0, SCENES.index("park")] == pytest.approx(0.3 * 0.2)
    assert s[0, SCENES.index("bus")] == pytest.approx(0.25 * 0.7)
    assert s[0, SCENES.index("airport")] == pytest.approx(0.1 * 0.1)
    assert SCENES[s.argmax()] == "bus"  # the broad stage overturns the fine argmax (park)
    # Column order of the broad scores is taken from its names, not assumed.
    s2 = fuse(p10, p3[:, ::-1], SCENES, BROAD_CLASSES[::-1])
    np.testing.assert_allclose(s, s2)


def _tables(seed=0, n=12):
    rng = np.random.default_rng(seed)
    ids = [f"audio/{SCENES[i % 10]}-lyon-1-{i}-a.wav" for i in range(n)]
    t10 = ScoreTable(ids, rng.dirichlet(np.ones(10), n), SCENES)
    t3 = ScoreTable(ids, rng.dirichlet(np.ones(3), n), BROAD_CLASSES)
    return t10, t3


def test_fusion_ignores_row_order():
    t10, t3 = _tables()
    fused = fuse_tables(t10, t3)
    perm = np.random.default_rng(1).permutation(len(t3))
    shuffled3 = ScoreTable([t3.clip_ids[i] for i in perm], t3.scores[perm], t3.class_names)
    fused_shuffled = fuse_tables(t10, shuffled3)
    assert fused_shuffled.clip_ids == fused.clip_ids == t10.clip_ids
    np.testing.assert_array_equal(fused_shuffled.scores, fused.scores)
    np.testing.assert_allclose(fused.scores, fuse(t10.scores, t3.scores))  # same order: plain row fusion
    # Row-by-row fusion of the shuffled table would be different (the bug the audit exposes).
    assert not np.allclose(fuse(t10.scores, shuffled3.scores), fused.scores)
    # Shuffling the 10-class table permutes the output rows with it.
    shuffled10 = ScoreTable([t10.clip_ids[i] for i in perm], t10.scores[perm], t10.class_names)
    np.testing.assert_array_equal(fuse_tables(shuffled10, t3).scores, fused.scores[perm])


def test_join_by_clip_matches_base_names_and_reports_missing_clips():
    t10, t3 = _tables()
    bare = ScoreTable([c.split("/")[-1] for c in t3.clip_ids], t3.scores, t3.class_names)
    a, b = join_by_clip(t10, bare)
    np.testing.assert_array_equal(b.scores, t3.scores)
    partial = ScoreTable(t3.clip_ids[2:] + ("audio/extra-x-1-1-a.wav",), np.vstack([t3.scores[2:], t3.scores[:1]]),
                         t3.class_names)
    with pytest.raises(ClipMismatchError) as e:
        fuse_tables(t10, partial)
    msg = str(e.value)
    assert "2 clips only in the first table" in msg and t10.clip_ids[0].split("/")[-1] in msg
    assert "1 clips only in the second table: extra-x-1-1-a.wav" in msg
    with pytest.raises(ClipMismatchError, match="repeats"):
        ScoreTable(["x.wav", "audio/x.wav"], np.ones((2, 3)), BROAD_CLASSES)


def test_ensemble_tables_joins_by_clip():
    t10, _ = _tables(0)
    other, _ = _tables(5)
    perm = np.arange(len(other))[::-1]
    rev = ScoreTable([other.clip_ids[i] for i in perm], other.scores[perm], other.class_names)
    np.testing.assert_allclose(ensemble_tables([t10, rev]).scores, t10.scores + other.scores)


# ------------------------------------------------------------------------------------------------
# audit on the published score files (shipped with tf_scenes: two_stage/reference)


def test_shipped_audit_files_are_the_published_originals(reference_dir):
    """The package data is where importlib.resources finds it, and each file is byte-identical to
    the published original (sha256 recorded in its README.md)."""
    import hashlib
    import re
    from importlib.resources import files

    from tf_scenes.two_stage import audit as audit_module

    resource = files("tf_scenes.two_stage") / "reference"
    assert reference_dir == audit_module.default_reference_dir()
    assert str(resource) == str(reference_dir) and resource.is_dir()
    hashes = {}
    for line in (resource / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"[0-9a-f]{64}", cells[2]):
            hashes[cells[0]] = cells[2]
    needed = [audit_module.CSV_10, audit_module.CSV_3, audit_module.SCORES_10, audit_module.SCORES_3]
    assert sorted(hashes) == sorted(needed)
    for name in needed:
        assert hashlib.sha256((resource / name).read_bytes()).hexdigest() == hashes[name], name
    assert b"\r\n" in (resource / audit_module.CSV_10).read_bytes()[:100]  # CRLF kept as published

@pytest.fixture(scope="module")
def audit(reference_dir):
    return audit_fusion(reference_dir)


def test_audit_reproduces_three_numbers(audit):
    assert audit["n_clips"] == 2970
    assert round(audit["acc_ensemble_10class"], 4) == 0.7939
    assert round(audit["acc_fused_row_order"], 4) == 0.8189
    assert round(audit["acc_fused_by_filename"], 4) == 0.7936
    assert round(audit["acc_ensemble_3class"], 3) == 0.932  # paper Table 1 ensemble: 93.2
    pairing = audit["row_pairing"]
    assert pairing["rows_pairing_the_same_true_scene"] == 2970  # the leak: always the same true scene
    assert pairing["rows_pairing_the_same_clip"] < 30
    assert "label leak" in audit["explanation"] and "81.89%" in audit["explanation"]


def test_audit_row_order_matches_reference_code_printout(audit, reference_dir):
    """The reference code's README prints per-device accuracies of its final system; the row-order
    fusion reproduces them to the printed 3 decimals, the filename join does not."""
    ref = tables.REFERENCE_CODE_ROW_ORDER_FUSION
    row = audit["systems"]["fused_row_order"]
    for dev, acc in ref["devices"].items():
        assert round(row["devices"][dev], 3) == acc, dev
    for group, acc in ref["groups"].items():
        assert round(row["groups"][group], 3) == acc, group
    joined = audit["systems"]["fused_by_filename"]
    assert any(round(joined["devices"][d], 3) != a for d, a in ref["devices"].items())
    # The printed log loss 0.936 used classic clipping of the raw (unnormalised) fused scores.
    from tf_scenes.datasets.tau2020 import read_fold_csv

    recs = read_fold_csv(reference_dir / "tau2020_fold1_evaluate.csv")
    y = [SCENES.index(r.scene) for r in recs]
    s10 = read_score_file(reference_dir / "two_stage_scores_10class.txt", 10)
    s3 = read_score_file(reference_dir / "two_stage_scores_3class.txt", 3)
    assert round(log_loss(y, fuse(s10, s3), normalize_first=False), 3) == ref["logloss"]


def test_audit_groups_are_means_of_devices(audit):
    for system in audit["systems"].values():
        dev, g = system["devices"], system["groups"]
        assert g["B&C"] == pytest.approx((dev["b"] + dev["c"]) / 2)
        assert g["s4-s6"] == pytest.approx((dev["s4"] + dev["s5"] + dev["s6"]) / 3)
        assert g["average"] == pytest.approx(system["acc"])  # 330 clips per device


def test_audit_cli_prints_json(reference_dir, tmp_path):
    out = tmp_path / "audit.json"
    copy = tmp_path / "copy"
    shutil.copytree(reference_dir, copy)
    proc = subprocess.run([sys.executable, "-m", "tf_scenes.experiments.cli", "audit-fusion", "--reference-dir",
                           str(copy), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert [round(printed[k], 4) for k in ("acc_ensemble_10class", "acc_fused_row_order",
                                           "acc_fused_by_filename")] == [0.7939, 0.8189, 0.7936]
    assert printed["reference_dir"] == str(copy)
    assert json.loads(out.read_text()) == printed


def test_audit_cli_needs_no_argument(tmp_path):
    """`tf-scenes audit-fusion` alone reads the copies shipped with the package (from any folder)."""
    import tf_scenes

    env = dict(os.environ, PYTHONPATH=str(Path(tf_scenes.__file__).parent.parent))
    proc = subprocess.run([sys.executable, "-m", "tf_scenes.experiments.cli", "audit-fusion"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert [round(printed[k], 4) for k in ("acc_ensemble_10class", "acc_fused_row_order",
                                           "acc_fused_by_filename")] == [0.7939, 0.8189, 0.7936]
    assert printed["reference_dir"].endswith("tf_scenes/two_stage/reference")


def test_audit_errors_name_file_and_line(reference_dir, tmp_path):
    for name in ("tau2020_fold1_evaluate.csv", "two_stage_fold1_evaluate_3class.csv",
                 "two_stage_scores_10class.txt"):
        shutil.copy(reference_dir / name, tmp_path / name)
    with pytest.raises(DataFormatError, match="two_stage_scores_3class.txt: file not found"):
        audit_fusion(tmp_path)
    lines = (reference_dir / "two_stage_scores_3class.txt").read_text().splitlines()
    lines[4] = "0.1 0.2"
    (tmp_path / "two_stage_scores_3class.txt").write_text("\r\n".join(lines))  # CRLF, no final newline
    with pytest.raises(DataFormatError, match=r"two_stage_scores_3class.txt:5: expected 3 scores, found 2"):
        audit_fusion(tmp_path)
    (tmp_path / "two_stage_scores_3class.txt").write_text("\r\n".join(lines[:4] + lines[5:-1]))
    with pytest.raises(DataFormatError, match="2968 score rows but two_stage_fold1_evaluate_3class.csv lists 2970"):
        audit_fusion(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "tf_scenes.experiments.cli", "audit-fusion", "--reference-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "2968 score rows" in proc.stderr


# ------------------------------------------------------------------------------------------------
# tables

def test_paper_numbers():
    t2 = {r.key: r.average for r in tables.TABLE2}
    assert [t2[k] for k in ("resnet", "fcnn", "fsfcnn", "ensemble")] == [74.6, 76.9, 76.2, 79.4]
    assert [r.average for r in tables.TABLE2[4:]] == [77.7, 80.1, 79.0, 81.9]
    assert "row by row" in tables.TABLE2[-1].note
    assert [r.average for r in tables.TABLE1] == [91.4, 92.9, 93.2]
    assert all(r.average is None for r in tables.TABLE3) and len(tables.TABLE3) == 5


def test_paper_number_lookup():
    assert tables.paper_number("table2", "fsfcnn") == 76.2
    assert tables.paper_number("table2", "2stage_ensemble") == 81.9
    assert tables.paper_number("table2", "2stage_fcnn") == 80.1
    assert tables.paper_number("table1", "ensemble") == 93.2
    assert tables.paper_number("table3", "row0") is None and tables.paper_number("table2", "nope") is None
