"""Segment-based SED F1 / ER: hand-computed cases, the reference-code variant and sed_eval parity."""

import math
import sys

import numpy as np
import pytest

from tf_scenes.metrics.sed import reference_code_metrics, sed_metrics, segment_metrics


def test_segment_metrics_hand_computed():
    # 25 frames of 100 ms, 2 classes -> 1 s segments [0,10), [10,20), [20,25) (partial, kept).
    ref = np.zeros((25, 2), int)
    ref[0:5, 0] = 1          # seg0 class 0
    ref[12:14, 1] = 1        # seg1 class 1
    ref[22, 1] = 1           # seg2 class 1
    pred = np.zeros((25, 2))
    pred[3, 0] = 0.31        # seg0 class 0 -> TP
    pred[15, 0] = 0.9        # seg1 class 0 -> FP
    pred[12, 1] = 0.3        # not > 0.3 -> seg1 class 1 missed (FN)
    pred[24, 1] = 0.8        # seg2 class 1 -> TP
    out = segment_metrics(ref, pred)
    # TP 2, FP 1, FN 1 -> F1 = 4 / 6; seg1 has one substitution, N = 3 -> ER = 1/3.
    assert out == pytest.approx({"f1_1s": 2 / 3, "er_1s": 1 / 3})
    # A lower threshold turns the 0.3 frame on: seg1 then has TP (class 1) and an insertion (class 0).
    low = segment_metrics(ref, pred, threshold=0.2)
    assert low == pytest.approx({"f1_1s": 6 / 7, "er_1s": 1 / 3})


def test_segment_metrics_deletion_insertion_and_segment_length():
    ref = np.zeros((20, 3), int)
    ref[0, :] = 1            # seg0: 3 active
    pred = np.zeros((20, 3))
    pred[5, 0] = 1.0         # seg0: 1 active -> TP 1, FN 2 -> D = 2
    pred[15, 1:] = 1.0       # seg1: FP 2 -> I = 2
    out = segment_metrics(ref, pred)
    assert out == pytest.approx({"f1_1s": 2 / (2 + 2 + 2), "er_1s": (2 + 2) / 3})
    # 0.5 s segments: frame 0 and frame 5 fall in different segments.
    half = segment_metrics(ref, pred, segment_s=0.5)
    assert set(half) == {"f1_0.5s", "er_0.5s"}
    assert half["f1_0.5s"] == pytest.approx(0.0)
    assert half["er_0.5s"] == pytest.approx((3 + 3) / 3)  # D 3 in seg0, I 1 + 2 in seg1 and seg3


def test_segments_do_not_span_clips():
    # Two clips of 15 frames: per clip, segments [0,10) and [10,15).
    ref = np.zeros((2, 15, 1), int)
    pred = np.zeros((2, 15, 1))
    ref[0, 12, 0] = 1        # clip 0, second segment: missed
    pred[1, 2, 0] = 0.9      # clip 1, first segment: inserted
    out = segment_metrics(ref, pred)
    assert out == pytest.approx({"f1_1s": 0.0, "er_1s": 2.0})
    # Concatenated (as the reference code does) the two frames share block [10, 20) -> a hit.
    rc = reference_code_metrics(ref, pred, block_frames=10, frame_hop_s=0.1)
    assert rc == pytest.approx({"f1_refcode_1s": 1.0, "er_refcode_1s": 0.0})


def test_reference_code_variant_hand_computed():
    # Blocks of 5 frames on 12 frames, 1 class; slices [0:4], [5:9], [10:14] (last frame skipped).
    ref = np.zeros((12, 1), int)
    pred = np.zeros((12, 1))
    ref[4] = 1               # last frame of block 0: skipped
    ref[7] = 1               # block 1
    ref[11] = 1              # partial block 2 (frames 10, 11): nothing skipped
    pred[0] = 0.9            # block 0
    pred[9] = 0.9            # last frame of block 1: skipped
    pred[10] = 0.9           # block 2
    out = reference_code_metrics(ref, pred, block_frames=5, frame_hop_s=0.1)
    # F1 over ceil(12/5) = 3 blocks: FP (b0), FN (b1), TP (b2) -> 2 / (2 + 1 + 1).
    # ER over floor(12/5) = 2 blocks: I (b0) + D (b1), N = 1 -> 2.
    assert out == pytest.approx({"f1_refcode_0.5s": 0.5, "er_refcode_0.5s": 2.0})
    # The standard segmentation keeps every frame: all three 0.5 s segments are hits.
    assert segment_metrics(ref, pred, segment_s=0.5) == pytest.approx({"f1_0.5s": 1.0, "er_0.5s": 0.0})


def _reference_loop(ref, pred, block, threshold):
    """Independent loop version of the reference code's computation (eps-smoothed F1)."""
    eps = 1e-8
    o = (pred > threshold).astype(float).reshape(-1, pred.shape[-1])
    t = ref.astype(float).reshape(-1, ref.shape[-1])

    def blocks(x, n):
        return np.array([x[i * block:i * block + block - 1].max(axis=0) for i in range(n)])

    ob, tb = blocks(o, math.ceil(len(o) / block)), blocks(t, math.ceil(len(t) / block))
    tp = ((tb == 1) & (ob == 1)).sum()
    p, r = tp / (ob.sum() + eps), tp / (tb.sum() + eps)
    f1 = 2 * p * r / (p + r + eps)
    n = len(o) // block
    ob, tb = blocks(o, n), blocks(t, n)
    fp = ((tb == 0) & (ob == 1)).sum(1)
    fn = ((tb == 1) & (ob == 0)).sum(1)
    er = (np.minimum(fp, fn).sum() + np.maximum(0, fn - fp).sum() + np.maximum(0, fp - fn).sum()) / tb.sum()
    return f1, er


@pytest.mark.parametrize("frames", [600, 1234])
def test_reference_code_variant_matches_loop_version(frames):
    rng = np.random.default_rng(frames)
    ref = (rng.random((frames, 14)) < 0.05).astype(int)
    pred = rng.random((frames, 14)) * 0.33
    f1, er = _reference_loop(ref, pred, 50, 0.3)
    out = reference_code_metrics(ref, pred)
    assert out["f1_refcode_5s"] == pytest.approx(f1, abs=1e-6)
    assert out["er_refcode_5s"] == pytest.approx(er, abs=1e-12)


def test_sed_metrics_combines_both_variants():
    rng = np.random.default_rng(3)
    ref = (rng.random((2, 600, 14)) < 0.1).astype(int)
    pred = rng.random((2, 600, 14)) * 0.4
    out = sed_metrics(ref, pred)
    assert set(out) == {"f1_1s", "er_1s", "f1_refcode_5s", "er_refcode_5s"}
    assert all(np.isfinite(v) for v in out.values())


def _random_events(rng, n_frames, labels, n_events, filename):
    events = []
    for _ in range(n_events):
        on = int(rng.integers(0, n_frames - 1))
        off = int(rng.integers(on + 1, min(n_frames, on + 40) + 1))
        # Times on the 100 ms grid: i / 10 is the float nearest to the decimal value.
        events.append({"filename": filename, "event_label": str(rng.choice(labels)),
                       "onset": on / 10, "offset": off / 10})
    return events


def _roll(events, n_frames, labels):
    roll = np.zeros((n_frames, len(labels)), int)
    for e in events:
        roll[round(e["onset"] * 10):round(e["offset"] * 10), labels.index(e["event_label"])] = 1
    return roll


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_segment_metrics_match_sed_eval(seed):
    sed_eval = pytest.importorskip("sed_eval")
    rng = np.random.default_rng(seed)
    labels = ["alarm", "baby", "crash", "dog"]
    n_files, n_frames = 5, 87                      # 8.7 s: the last 1 s segment is partial
    metric = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=labels, time_resolution=1.0)
    refs, preds = [], []
    for f in range(n_files):
        ref_ev = _random_events(rng, n_frames, labels, 6, f"f{f}.wav")
        est_ev = _random_events(rng, n_frames, labels, 6, f"f{f}.wav")
        metric.evaluate(ref_ev, est_ev, evaluated_length_seconds=n_frames / 10)
        refs.append(_roll(ref_ev, n_frames, labels))
        est = _roll(est_ev, n_frames, labels)
        # Probabilities that binarise back to the estimated roll at threshold 0.3.
        preds.append(np.where(est == 1, rng.uniform(0.31, 1.0, est.shape), rng.uniform(0.0, 0.3, est.shape)))
    ours = segment_metrics(np.stack(refs), np.stack(preds))
    overall = metric.results_overall_metrics()
    assert ours["f1_1s"] == pytest.approx(overall["f_measure"]["f_measure"], abs=1e-6)
    assert ours["er_1s"] == pytest.approx(overall["error_rate"]["error_rate"], abs=1e-6)


def test_undefined_values_are_nan():
    ref = np.zeros((10, 2), int)
    out = segment_metrics(ref, np.zeros((10, 2)))
    assert math.isnan(out["f1_1s"]) and math.isnan(out["er_1s"])


@pytest.mark.parametrize("ref, pred, kwargs, msg", [
    (np.zeros((10, 2)), np.zeros((9, 2)), {}, "differs"),
    (np.zeros(10), np.zeros(10), {}, "classes"),
    (np.full((10, 2), 0.5), np.zeros((10, 2)), {}, "binary"),
    (np.zeros((10, 2)), np.full((10, 2), np.nan), {}, "NaN"),
    (np.zeros((10, 2)), np.zeros((10, 2)), {"segment_s": 0.25}, "whole number"),
])
def test_bad_input_raises_clear_error(ref, pred, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        segment_metrics(ref, pred, **kwargs)


def test_metrics_module_does_not_import_tensorflow():
    import subprocess
    code = ("import sys, tf_scenes.metrics.sed, tf_scenes.metrics.tagging; "
            "sys.exit(1 if 'tensorflow' in sys.modules or 'keras' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
