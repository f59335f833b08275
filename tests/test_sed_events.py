"""Event-based F1 and PSDS (tf_scenes.metrics.sed_events, computed by sed_scores_eval): reference
events from activity, hand-computed F1 and PSDS, and the numbers through the written score files
equal sed_scores_eval's on the scores in memory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tf_scenes.errors import DataFormatError, TFScenesError
from tf_scenes.metrics import sed_events
from tf_scenes.metrics.sed_events import event_metrics, frame_timestamps, reference_events, score_frame
from tf_scenes.scores import write_frame_scores

HOP = 0.1
CLASSES = ("a", "b")


def _frames(n: int, spans: dict) -> np.ndarray:
    """(n, 2) scores: {class index: [(first frame, last frame + 1, value), ...]}, 0 elsewhere."""
    x = np.zeros((n, len(CLASSES)))
    for k, parts in spans.items():
        for lo, hi, v in parts:
            x[lo:hi, k] = v
    return x


def test_reference_events_are_the_runs_of_active_frames():
    act = _frames(30, {0: [(2, 5, 1), (5, 8, 1), (20, 30, 1)], 1: [(0, 1, 1), (9, 12, 1)]})
    assert reference_events(act, HOP, CLASSES) == [
        (0.0, 0.1, "b"), (0.2, 0.8, "a"),  # two touching annotations of one class: one event
        (0.9, 1.2, "b"), (2.0, 3.0, "a")]  # an event running to the end of the recording
    assert reference_events(np.zeros((5, 2)), HOP, CLASSES) == []
    with pytest.raises(ValueError, match="binary"):
        reference_events(np.full((5, 2), 0.5), HOP, CLASSES)


def _hand_case():
    """Two 6 s recordings. Reference r1: a (0.5, 1.5), a (3.0, 5.0), b (1.0, 2.0); r2: none.
    Detections at threshold 0.3 (score > 0.3):
      r1 a (0.6, 1.6)  onset +0.1, offset +0.1 (collar 200 ms)              -> TP
      r1 a (3.0, 4.7)  offset -0.3, within 20 % of the 2 s event (0.4 s)     -> TP
      r1 a frame 2.5 s scored exactly 0.3: not above the threshold          -> nothing
      r1 b (1.4, 2.1)  onset +0.4 > 200 ms                                  -> FP (and b missed)
      r1 b (5.0, 5.3)                                                       -> FP
      r2 a (1.0, 1.2)                                                       -> FP
    a: TP 2, FP 1, 2 events -> P 2/3, R 1, F1 0.8;  b: TP 0, FP 2, 1 event -> F1 0.
    macro F1 = 0.4; micro: TP 2, FP 3, 3 events -> P 0.4, R 2/3, F1 0.5."""
    r1 = _frames(60, {0: [(6, 16, 0.9), (25, 26, 0.3), (30, 47, 0.8)], 1: [(14, 21, 0.7), (50, 53, 0.6)]})
    r2 = _frames(60, {0: [(10, 12, 0.5)]})
    gt = {"r1": [(0.5, 1.5, "a"), (3.0, 5.0, "a"), (1.0, 2.0, "b")], "r2": []}
    return {"r1": r1, "r2": r2}, gt, {"r1": 6.0, "r2": 6.0}


def _write(folder, scores: dict):
    for name, x in scores.items():
        write_frame_scores(folder / f"{name}.tsv", x, HOP, CLASSES)
    return folder


def test_event_f1_hand_computed_through_the_score_files(tmp_path):
    scores, gt, durations = _hand_case()
    m = event_metrics(_write(tmp_path / "frames", scores), gt, durations, threshold=0.3)
    assert m["event_f1"] == pytest.approx(0.4, abs=1e-12)
    assert m["event_f1_micro"] == pytest.approx(0.5, abs=1e-12)
    assert m["event_classes"] == 2
    # at 0.75 only the 0.9 and 0.8 detections of a remain: a F1 1, b F1 0; micro P 1, R 2/3
    m = event_metrics(tmp_path / "frames", gt, durations, threshold=0.75)
    assert m["event_f1"] == pytest.approx(0.5, abs=1e-12)
    assert m["event_f1_micro"] == pytest.approx(0.8, abs=1e-12)


def test_psds_hand_computed():
    """Class a detected exactly; of b's two events one is detected exactly and one gets score 0.
    Per-class TPR: a 1, b 1/2 at eFPR 0; the only false positive (b over the whole 6 s recording,
    when the threshold drops below 0) is at 600 per hour, beyond max_efpr 100.  PSDS (alpha_st 1)
    = mean - std of the classes' TPRs = 0.75 - 0.25 = 0.5."""
    act = _frames(60, {0: [(5, 15, 1)], 1: [(20, 30, 1), (40, 50, 1)]})
    scores = act.copy()
    scores[40:50, 1] = 0.0
    gt = {"r": reference_events(act, HOP, CLASSES)}
    frame = {"r": score_frame(scores, frame_timestamps(60, HOP), CLASSES)}
    m = event_metrics(frame, gt, {"r": 6.0})
    assert m["psds1"] == pytest.approx(0.5, abs=1e-12)
    perfect = event_metrics({"r": score_frame(act, frame_timestamps(60, HOP), CLASSES)}, gt, {"r": 6.0})
    assert perfect["psds1"] == pytest.approx(1.0, abs=1e-12) and perfect["event_f1"] == 1.0


def test_our_numbers_on_the_files_equal_sed_scores_eval_on_the_scores_in_memory(tmp_path):
    sse = sed_events.sed_scores_eval()
    rng = np.random.default_rng(3)
    probs, gt, durations = {}, {}, {}
    for i in range(3):
        n = 600 - 7 * i
        # noise below 0.3: false detections only at lower thresholds
        act, p = np.zeros((n, 2)), 0.28 * rng.random((n, 2))
        for k in range(2):
            for _ in range(3):
                lo, length = int(rng.integers(5, n - 50)), int(rng.integers(3, 40))
                act[lo:lo + length, k] = 1
                # the detection: shifted ends and its own level, so that matches depend on the threshold
                a, b = lo + int(rng.integers(-4, 5)), lo + length + int(rng.integers(-4, 5))
                p[a:max(a + 1, b), k] += rng.uniform(0.1, 0.6)
        name = f"fold1_room1_mix00{i}_ov1"
        probs[name], gt[name], durations[name] = np.clip(p, 0, 1), reference_events(act, HOP, CLASSES), n * HOP
    folder = tmp_path / "scores_evaluate_frames"
    for name, p in probs.items():
        write_frame_scores(folder / f"{name}.tsv", p.astype(np.float32), HOP, CLASSES)
    ours = event_metrics(folder, gt, durations, threshold=0.3)

    memory = {k: score_frame(p.astype(np.float32).astype(np.float64), frame_timestamps(len(p), HOP), CLASSES)
              for k, p in probs.items()}
    f1, _, _, _ = sse.collar_based.fscore(memory, gt, 0.3, onset_collar=0.2, offset_collar=0.2,
                                          offset_collar_rate=0.2)
    psds = sse.intersection_based.psds(memory, gt, durations, dtc_threshold=0.7, gtc_threshold=0.7,
                                       cttc_threshold=None, alpha_ct=0.0, alpha_st=1.0, max_efpr=100.0)[0]
    assert ours["event_f1"] == float(f1["macro_average"]) and ours["event_f1_micro"] == float(f1["micro_average"])
    assert ours["psds1"] == float(psds)
    assert 0.05 < ours["event_f1"] < 0.95 and 0.0 < ours["psds1"] < 1.0  # a case that is neither trivial extreme


def test_classes_without_reference_events_are_left_out(tmp_path):
    scores, gt, durations = _hand_case()
    only_a = {k: [e for e in v if e[2] == "a"] for k, v in gt.items()}
    m = event_metrics(_write(tmp_path, scores), only_a, durations, threshold=0.3)
    assert m["event_classes"] == 1 and m["event_f1"] == pytest.approx(0.8, abs=1e-12)  # class a alone
    none = event_metrics(tmp_path, {"r1": [], "r2": []}, durations)
    assert none["event_classes"] == 0 and all(math.isnan(none[k]) for k in ("event_f1", "event_f1_micro", "psds1"))


def test_mismatched_recordings_and_bad_files_are_one_clear_error(tmp_path):
    scores, gt, durations = _hand_case()
    folder = _write(tmp_path / "f", scores)
    with pytest.raises(TFScenesError, match=r"1 recordings scored but without reference: r2"):
        event_metrics(folder, {"r1": gt["r1"]}, durations)
    with pytest.raises(TFScenesError, match=r"with reference but not scored: r3"):
        event_metrics(folder, {**gt, "r3": []}, {**durations, "r3": 1.0})
    with pytest.raises(TFScenesError, match=r"classes the scores do not have: \['dog'\]"):
        event_metrics(folder, {**gt, "r2": [(0.0, 1.0, "dog")]}, durations)
    (folder / "r2.tsv").write_text("onset\toffset\ta\tb\n0.0\t0.1\t0.5\t0.5\n0.2\t0.3\t0.5\t0.5\n")
    with pytest.raises(DataFormatError, match=r"r2.tsv:2: frames are not back to back"):
        event_metrics(folder, gt, durations)
    (folder / "r2.tsv").write_text("onset\toffset\ta\tb\n0.0\t0.1\t0.5\t0.5\n0.1\t0.2\t0.5\n")
    with pytest.raises(DataFormatError, match=r"r2.tsv:3: expected 4 columns, found 3"):
        event_metrics(folder, gt, durations)
    (folder / "r2.tsv").write_text("onset\toffset\ta\tdog\n0.0\t0.1\t0.5\t0.5\n")
    with pytest.raises(DataFormatError, match=r"r2.tsv:1: classes \['a', 'dog'\] differ from those of r1.tsv"):
        event_metrics(folder, gt, durations)
    with pytest.raises(DataFormatError, match="no frame score files"):
        event_metrics(tmp_path / "empty", gt, durations)


def test_event_metrics_import_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys, tf_scenes.metrics.sed_events as m; m.sed_scores_eval(); "
            "sys.exit(1 if 'tensorflow' in sys.modules or 'keras' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
