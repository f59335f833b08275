"""Segment-based, location-agnostic sound event detection metrics (F1 and error rate).

DcaseNet's SED task (Jung et al. 2021, Table 2) is scored on TAU-NIGENS Spatial Sound
Events 2020 with the DCASE SELD "location-agnostic" F1 and error rate, threshold 0.3:

* frame activities are binarised (prediction ``> threshold``; the reference is already binary),
* each segment is active for a class when ANY of its frames is (max over frames),
* F1 = 2 TP / (2 TP + FP + FN), pooled over all segments x classes,
* ER = (S + D + I) / N with, per segment, S = min(FN, FP), D = max(0, FN - FP),
  I = max(0, FP - FN), N = number of active reference (segment, class) pairs.

Two segmentations are provided and kept apart by their keys:

* :func:`segment_metrics` ("f1_1s", "er_1s"): the standard one, as ``sed_eval``'s
  ``SegmentBasedMetrics(time_resolution=1.0)``: consecutive 1 s segments per clip, the last
  (partial) segment of a clip included, segments never span two clips.
* :func:`reference_code_metrics` ("f1_refcode_5s", "er_refcode_5s"): what the DcaseNet
  reference code computes (``metric.compute_sed_scores(pred, gt, nb_frames_1s=50)`` on 100 ms
  frames): all clips concatenated along time, blocks of 50 frames (5 s), and the LAST frame of
  each block skipped (its slice is ``[i*50 : i*50 + 49]``).  The code also counts blocks
  differently for the two numbers: F1 uses ceil(frames / 50) blocks (a partial final block is
  kept, and its slice then reaches the end), ER uses floor(frames / 50) (a partial final block
  is dropped).  Both quirks are reproduced.  The reference's eps-smoothed F1
  (2PR / (P + R + 1e-8) with P, R smoothed by 1e-8) is replaced by the exact formula; the
  relative difference is about 1e-8 / (P + R), negligible unless P + R is tiny.

Undefined values (no reference activity for ER; no activity at all for F1) are returned as NaN.
Pure numpy; no TensorFlow import.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_THRESHOLD = 0.3
REFCODE_BLOCK_FRAMES = 50


def _as_clips(ref_frames, pred_probs, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return binary (clips, frames, classes) reference and prediction."""
    ref = np.asarray(ref_frames)
    pred = np.asarray(pred_probs, dtype=np.float64)
    if ref.shape != pred.shape:
        raise ValueError(f"SED metrics: reference shape {ref.shape} differs from prediction shape "
                         f"{pred.shape} (trim both to the same number of frames first)")
    if ref.ndim not in (2, 3):
        raise ValueError(f"SED metrics need (frames, classes) or (clips, frames, classes) arrays, "
                         f"got shape {ref.shape}")
    if ref.size and not np.isin(ref, (0, 1)).all():
        raise ValueError("SED metrics: the reference activity must be binary (0/1 or bool)")
    if not np.isfinite(pred).all():
        raise ValueError("SED metrics: predictions contain NaN or infinite values")
    if ref.ndim == 2:
        ref, pred = ref[None], pred[None]  # (1, frames, classes)
    return ref.astype(bool), pred > threshold


def _counts(ref_seg: np.ndarray, sys_seg: np.ndarray) -> dict[str, int]:
    """Pooled counts over (segments, classes) binary matrices."""
    tp = int(np.sum(ref_seg & sys_seg))
    fp_seg = np.sum(~ref_seg & sys_seg, axis=1)  # (segments,)
    fn_seg = np.sum(ref_seg & ~sys_seg, axis=1)
    return {
        "tp": tp,
        "fp": int(fp_seg.sum()),
        "fn": int(fn_seg.sum()),
        "s": int(np.minimum(fn_seg, fp_seg).sum()),
        "d": int(np.maximum(0, fn_seg - fp_seg).sum()),
        "i": int(np.maximum(0, fp_seg - fn_seg).sum()),
        "n_ref": int(ref_seg.sum()),
    }


def _f1(c: dict[str, int]) -> float:
    denom = 2 * c["tp"] + c["fp"] + c["fn"]
    return 2 * c["tp"] / denom if denom else float("nan")


def _er(c: dict[str, int]) -> float:
    return (c["s"] + c["d"] + c["i"]) / c["n_ref"] if c["n_ref"] else float("nan")


def _segment_max(x: np.ndarray, seg: int) -> np.ndarray:
    """(clips, frames, classes) bool -> (clips * segments, classes): any-active per segment of
    `seg` frames; the last partial segment of each clip is kept."""
    clips, frames, classes = x.shape
    n_seg = math.ceil(frames / seg)
    pad = n_seg * seg - frames
    x = np.pad(x, ((0, 0), (0, pad), (0, 0)))  # (clips, n_seg * seg, classes), padding inactive
    return x.reshape(clips, n_seg, seg, classes).any(axis=2).reshape(clips * n_seg, classes)


def _key_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


def segment_metrics(ref_frames, pred_probs, frame_hop_s: float = 0.1, segment_s: float = 1.0,
                    threshold: float = DEFAULT_THRESHOLD) -> dict[str, float]:
    """Standard segment-based F1 / ER (as sed_eval ``SegmentBasedMetrics``).

    Args:
      ref_frames: binary reference activity, (frames, classes) for one clip or
        (clips, frames, classes).
      pred_probs: predicted activity probabilities of the same shape.
      frame_hop_s: frame hop in seconds (DcaseNet's SED output: 100 ms).
      segment_s: segment length in seconds; must be a whole number of frames.
      threshold: a class is active in a frame when its probability is ``> threshold``.

    Returns:
      ``{"f1_1s": .., "er_1s": ..}`` (the suffix is the segment length, e.g. "f1_0.5s").
    """
    ref, sys = _as_clips(ref_frames, pred_probs, threshold)
    if frame_hop_s <= 0 or segment_s <= 0:
        raise ValueError(f"segment_metrics: frame_hop_s ({frame_hop_s}) and segment_s ({segment_s}) "
                         f"must be positive")
    seg = round(segment_s / frame_hop_s)
    if seg < 1 or abs(seg * frame_hop_s - segment_s) > 1e-9 * max(1.0, segment_s):
        raise ValueError(f"segment_metrics: segment_s={segment_s} is not a whole number of "
                         f"{frame_hop_s} s frames")
    c = _counts(_segment_max(ref, seg), _segment_max(sys, seg))
    k = _key_seconds(segment_s)
    return {f"f1_{k}": _f1(c), f"er_{k}": _er(c)}


def reference_code_metrics(ref_frames, pred_probs, block_frames: int = REFCODE_BLOCK_FRAMES,
                           threshold: float = DEFAULT_THRESHOLD,
                           frame_hop_s: float = 0.1) -> dict[str, float]:
    """F1 / ER as computed by the DcaseNet reference code (see the module docstring).

    Clips of a (clips, frames, classes) input are concatenated along time first, as the
    reference does.  Keys name the block length in seconds: ``{"f1_refcode_5s", "er_refcode_5s"}``
    for the default 50 frames of 100 ms.
    """
    ref, sys = _as_clips(ref_frames, pred_probs, threshold)
    if block_frames < 2:
        raise ValueError(f"reference_code_metrics: block_frames must be >= 2, got {block_frames}")
    classes = ref.shape[-1]
    ref = ref.reshape(-1, classes)  # (clips * frames, classes), clips concatenated
    sys = sys.reshape(-1, classes)
    frames = ref.shape[0]

    def blocks(x: np.ndarray, n_blocks: int) -> np.ndarray:
        # Slice [i*b, i*b + b - 1): the last frame of each full block is skipped.
        out = np.zeros((n_blocks, classes), dtype=bool)
        for i in range(n_blocks):
            out[i] = x[i * block_frames:i * block_frames + block_frames - 1].any(axis=0)
        return out

    n_f1 = math.ceil(frames / block_frames)
    n_er = frames // block_frames
    c_f1 = _counts(blocks(ref, n_f1), blocks(sys, n_f1))
    c_er = _counts(blocks(ref, n_er), blocks(sys, n_er))
    k = _key_seconds(block_frames * frame_hop_s)
    return {f"f1_refcode_{k}": _f1(c_f1), f"er_refcode_{k}": _er(c_er)}


def sed_metrics(ref_frames, pred_probs, threshold: float = DEFAULT_THRESHOLD,
                frame_hop_s: float = 0.1) -> dict[str, float]:
    """Both variants at once: ``{"f1_1s", "er_1s", "f1_refcode_5s", "er_refcode_5s"}``."""
    out = segment_metrics(ref_frames, pred_probs, frame_hop_s=frame_hop_s, segment_s=1.0,
                          threshold=threshold)
    out.update(reference_code_metrics(ref_frames, pred_probs, threshold=threshold,
                                      frame_hop_s=frame_hop_s))
    return out
