"""`tf-scenes audit-fusion`: recompute the published two-stage result from its own score files.

The two-stage paper's public code (https://github.com/MihawkHu/DCASE2020_task1, folders task1a/10class and
task1a/3class) ships its final ensemble scores:

* ``two_stage_scores_10class.txt``: 10-class ensemble (ResNet + FCNN + fsFCNN), one row per clip in
  the order of ``tau2020_fold1_evaluate.csv``, columns = scenes in alphabetical order;
* ``two_stage_scores_3class.txt``: 3-class ensemble (ResNet + FCNN), rows in the order of
  ``two_stage_fold1_evaluate_3class.csv``, columns = indoor, outdoor, transportation.

The reference fuses the two files row by row.  The two csv files list the same 2,970 clips in a
different order inside each scene block, so row i of the 3-class file belongs to another clip of
the same true scene: the fused system receives the true broad class of every clip through the
row order (a label leak).  This audit reports the 10-class ensemble accuracy (79.39 %), the
row-by-row fused accuracy (81.89 %, the published Table 2 figure) and the accuracy of the correct,
filename-joined fusion (79.36 %), each with the paper's device groups.

The four files ship with tf_scenes (``tf_scenes/two_stage/reference/``, with their source, license
and hashes in its README.md), so the audit needs no argument:

    tf-scenes audit-fusion [--reference-dir DIR] [--out audit.json]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from ..errors import DataFormatError
from ..metrics.classification import classification_report
from .fusion import BROAD_CLASSES, SCENES, ScoreTable, broad_index, fuse, fuse_tables

SCORES_10 = "two_stage_scores_10class.txt"
SCORES_3 = "two_stage_scores_3class.txt"
CSV_10 = "tau2020_fold1_evaluate.csv"
CSV_3 = "two_stage_fold1_evaluate_3class.csv"

EXPLANATION = (
    "The reference code fuses the 10-class and 3-class score files row by row, but the two files "
    "follow different clip lists (tau2020_fold1_evaluate.csv vs two_stage_fold1_evaluate_3class.csv) "
    "whose rows agree in their true scene in {same_scene} of {n} rows but name the same clip "
    "in only {same_clip}: inside every scene block the clips are ordered differently, so row i "
    "of the 3-class scores belongs to another clip of the same true scene "
    "(and so of the same true broad class). The broad-class factor P3[broad(c)] is then chosen by "
    "the ground-truth label order rather than computed from the clip itself: a label leak. It "
    "decorrelates the two stages' errors: of the {n_wrong} clips whose 10-class ensemble picks the "
    "wrong broad class, the clip's own 3-class scores are wrong too for {own_wrong}, the row-paired "
    "clip's 3-class scores for only {paired_wrong}. This raises the accuracy from {join:.2%} "
    "(correct fusion, joined by filename) to {row:.2%} (the published figure). The 10-class "
    "ensemble alone scores {ens:.2%}; correct two-stage fusion does not improve on it with these "
    "scores."
)


def default_reference_dir() -> Path:
    """The copies of the published files shipped with the package (``two_stage/reference``)."""
    from importlib.resources import files

    # A wheel installs as plain files, so the resource is a real folder (zip imports are not supported).
    return Path(str(files(__package__) / "reference"))


def read_score_file(path, num_classes: int) -> np.ndarray:
    """Whitespace-separated score rows (no header) -> (rows, num_classes) float array.

    Accepts LF / CRLF and a missing final newline; blank lines are skipped.  Raises
    DataFormatError naming the file and line for a wrong column count or a non-number.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "score file not found")
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    for lineno, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != num_classes:
            raise DataFormatError(path, f"expected {num_classes} scores, found {len(parts)}", line=lineno)
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise DataFormatError(path, f"not a number in {line.strip()!r}", line=lineno) from None
        if not all(math.isfinite(v) for v in values):
            raise DataFormatError(path, "score is NaN or infinite", line=lineno)
        rows.append(values)
    if not rows:
        raise DataFormatError(path, "no score rows")
    return np.asarray(rows, dtype=np.float64)


def _summary(report: dict) -> dict:
    """Keep accuracy, log loss, device groups and per-device accuracies of a classification report."""
    return {
        "acc": report["acc"],
        "logloss": report["logloss"],
        "groups": {k.split("/group_", 1)[1]: v for k, v in report.items() if k.startswith("acc/group_")},
        "devices": {k.split("/device_", 1)[1]: v for k, v in report.items() if k.startswith("acc/device_")},
    }


def audit_fusion(reference_dir) -> dict:
    """Recompute ensemble, row-by-row fused and filename-joined fused accuracies (see module doc).

    Returns a JSON-ready dict with ``acc_ensemble_10class``, ``acc_fused_row_order``,
    ``acc_fused_by_filename`` (plus log loss and device groups of each system under
    ``systems``), the 3-class ensemble accuracy, counts describing the row pairing and an
    ``explanation`` of the leak.  Log losses use ``metrics.classification.log_loss`` (rows
    normalised before clipping; the reference code's printed 0.936 for its fused scores clips the
    raw scores instead).
    """
    from ..datasets.tau2020 import read_broad_csv, read_fold_csv

    ref = Path(reference_dir)
    if not ref.is_dir():
        raise DataFormatError(ref, "reference directory not found")
    for name in (CSV_10, CSV_3, SCORES_10, SCORES_3):
        if not (ref / name).is_file():
            raise DataFormatError(ref / name, "file not found", hint="the audit needs the published score "
                                  "files and their clip lists (see tf_scenes/two_stage/reference/README.md)")
    recs10 = read_fold_csv(ref / CSV_10)
    recs3 = read_broad_csv(ref / CSV_3)
    s10 = read_score_file(ref / SCORES_10, len(SCENES))
    s3 = read_score_file(ref / SCORES_3, len(BROAD_CLASSES))
    for recs, scores, csv_name, score_name in ((recs10, s10, CSV_10, SCORES_10), (recs3, s3, CSV_3, SCORES_3)):
        if len(recs) != len(scores):
            raise DataFormatError(ref / score_name, f"{len(scores)} score rows but {csv_name} lists "
                                  f"{len(recs)} clips")

    files10 = [r.filename for r in recs10]
    labels10 = [r.scene for r in recs10]
    devices10 = [r.device for r in recs10]

    def report(scores):
        return _summary(classification_report(labels10, scores, devices10, SCENES))

    ensemble10 = report(s10)
    # What the fusion should do: join the two score tables by clip filename (this also checks that
    # both lists hold the same clips).  fuse_tables keeps the 10-class row order.
    joined = fuse_tables(ScoreTable(files10, s10, SCENES), ScoreTable([r.filename for r in recs3], s3, BROAD_CLASSES))
    by_filename = report(joined.scores)
    # What the reference code does: pair row i of one file with row i of the other.
    row_order = report(fuse(s10, s3, SCENES, BROAD_CLASSES))
    ensemble3 = _summary(classification_report([r.broad for r in recs3], s3, [r.device for r in recs3],
                                               BROAD_CLASSES))

    # Where the 10-class ensemble gets the broad class wrong, how often is the 3-class factor wrong
    # too: with the clip's own 3-class scores (joined) vs the row-paired clip's scores?
    true_broad = np.array([BROAD_CLASSES.index(r.broad) for r in recs10])
    wrong10 = broad_index(SCENES, BROAD_CLASSES)[s10.argmax(axis=1)] != true_broad
    own3 = ScoreTable([r.filename for r in recs3], s3, BROAD_CLASSES).take(files10).scores.argmax(axis=1)
    overlap = {
        "clips_with_wrong_broad_class_10class": int(wrong10.sum()),
        "of_which_own_3class_also_wrong": int((own3[wrong10] != true_broad[wrong10]).sum()),
        "of_which_row_paired_3class_also_wrong": int((s3.argmax(axis=1)[wrong10] != true_broad[wrong10]).sum()),
    }

    same_clip = sum(a.filename == b.filename for a, b in zip(recs10, recs3))
    same_scene = sum(a.scene == b.scene for a, b in zip(recs10, recs3))
    same_device = sum(a.device == b.device for a, b in zip(recs10, recs3))
    acc_e, acc_r, acc_j = ensemble10["acc"], row_order["acc"], by_filename["acc"]
    return {
        "reference_dir": str(ref),
        "files": {"scores_10class": SCORES_10, "scores_3class": SCORES_3, "clips_10class": CSV_10,
                  "clips_3class": CSV_3},
        "n_clips": len(recs10),
        "acc_ensemble_10class": acc_e,
        "acc_fused_row_order": acc_r,
        "acc_fused_by_filename": acc_j,
        "acc_ensemble_3class": ensemble3["acc"],
        "leak_gain": acc_r - acc_j,
        "row_pairing": {
            "rows": len(recs10),
            "rows_pairing_the_same_clip": same_clip,
            "rows_pairing_the_same_true_scene": same_scene,
            "rows_pairing_the_same_device": same_device,
        },
        "broad_error_overlap": overlap,
        "systems": {
            "ensemble_10class": ensemble10,
            "fused_row_order": row_order,
            "fused_by_filename": by_filename,
            "ensemble_3class": ensemble3,
        },
        "explanation": EXPLANATION.format(
            same_clip=same_clip, same_scene=same_scene, n=len(recs10), join=acc_j, row=acc_r, ens=acc_e,
            n_wrong=overlap["clips_with_wrong_broad_class_10class"],
            own_wrong=overlap["of_which_own_3class_also_wrong"],
            paired_wrong=overlap["of_which_row_paired_3class_also_wrong"]),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reference-dir", type=Path, default=None,
                        help="folder holding the published score files and clip lists "
                             "(default: the copies shipped with tf_scenes, two_stage/reference)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON to this file")


def run(args) -> int:
    ref = getattr(args, "reference_dir", None) or default_reference_dir()
    result = audit_fusion(ref)
    from ..io_utils import dumps_json

    text = dumps_json(result, indent=2)
    if getattr(args, "out", None):
        from ..io_utils import atomic_write_json, ensure_writable_dir

        ensure_writable_dir(Path(args.out).parent, min_free_bytes=0)
        atomic_write_json(args.out, result)
    print(text)
    return 0
