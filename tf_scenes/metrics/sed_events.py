"""Event-based sound event detection metrics, computed by sed_scores_eval: collar-based F1 and the
PSDS (Polyphonic Sound Detection Score), what SED work has reported since DCASE 2021 Task 4.

Inputs are the frame scores a run writes (``tf_scenes.scores.write_frame_scores``: one
``<recording>.tsv`` per recording, ``onset<TAB>offset<TAB>class...``) and the reference as event
lists ``(onset_s, offset_s, class)`` per recording (:func:`reference_events` turns a binary
activity matrix into one).  Every number comes from sed_scores_eval (Ebbers et al., ICASSP 2022);
this module only loads the files, checks them and picks the parameters:

* event-based F1 (``collar_based.fscore``): a detection is a maximal run of frames whose score is
  ``> threshold`` (the threshold of the segment-based metrics, :data:`tf_scenes.metrics.sed.
  DEFAULT_THRESHOLD` = 0.3); it matches a reference event of its class when its onset is within
  :data:`ONSET_COLLAR_S` (200 ms) of the reference onset and its offset within
  max(:data:`OFFSET_COLLAR_S` (200 ms), :data:`OFFSET_COLLAR_RATE` (20 %) x the reference event's
  length) of the reference offset (DCASE Task 4's event-based setting, sed_eval's ``t_collar=0.2,
  percentage_of_length=0.2``).  ``event_f1`` is the class-wise (macro) average, as Task 4 ranked
  systems by it up to 2020; ``event_f1_micro`` pools the counts of all classes.
* PSDS in the DCASE 2021 Task 4 scenario 1 setting (:data:`PSDS1`): detection tolerance 0.7,
  ground-truth intersection 0.7, no cross-trigger criterion (alpha_ct 0), alpha_st 1 (the standard
  deviation over the classes' ROCs is subtracted from their mean), eFPR up to 100 per hour.  It
  sweeps every threshold, so it needs no threshold.

Classes without a single reference event in the evaluated recordings are left out of both numbers
(sed_scores_eval has no recall for them); ``event_classes`` counts the classes that are in.  No
class with events at all gives NaN.  No TensorFlow import.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import DataFormatError, TFScenesError
from .sed import DEFAULT_THRESHOLD

log = logging.getLogger(__name__)

ONSET_COLLAR_S = 0.2
OFFSET_COLLAR_S = 0.2
OFFSET_COLLAR_RATE = 0.2
PSDS1 = {"dtc_threshold": 0.7, "gtc_threshold": 0.7, "cttc_threshold": None, "alpha_ct": 0.0, "alpha_st": 1.0,
         "unit_of_time": "hour", "max_efpr": 100.0}
TIME_DECIMALS = 6  # score files hold times rounded to 6 decimals (write_frame_scores); events are too


def sed_scores_eval():
    """The sed_scores_eval package, or one clear error when it is not installed."""
    try:
        import sed_scores_eval
    except ImportError as e:
        raise TFScenesError(f"event-based SED metrics need the sed_scores_eval package ({e}); "
                            "install the project's requirements (pip install -r requirements.txt)") from None
    return sed_scores_eval


def score_frame(scores, timestamps, class_names):
    """One recording's (frames, classes) scores as sed_scores_eval's score DataFrame
    (``timestamps``: every frame's onset and the last offset, frames + 1 values)."""
    sse = sed_scores_eval()
    create = sse.base_modules.scores.create_score_dataframe
    return create(np.asarray(scores, np.float64), np.asarray(timestamps, np.float64), list(class_names))


def frame_timestamps(n_frames: int, frame_seconds: float) -> np.ndarray:
    """Onsets of ``n_frames`` back-to-back frames and the last offset, rounded as the score files."""
    return np.round(np.arange(n_frames + 1) * float(frame_seconds), TIME_DECIMALS)


def read_score_folder(folder) -> dict:
    """{recording: score DataFrame} of every ``<recording>.tsv`` in a folder of frame score files;
    DataFormatError naming the file for a malformed one, or for classes that differ between files."""
    from ..scores import read_frame_score_times

    folder = Path(folder)
    paths = sorted(folder.glob("*.tsv"))
    if not paths:
        raise DataFormatError(folder, "no frame score files (<recording>.tsv) in the folder")
    out, classes = {}, None
    for path in paths:
        times, scores, names = read_frame_score_times(path)
        if classes is None:
            classes = names
        elif names != classes:
            raise DataFormatError(path, f"classes {list(names)} differ from those of {paths[0].name}: {list(classes)}",
                                  line=1)
        out[path.stem] = score_frame(scores, times, names)
    return out


def reference_events(activity, frame_seconds: float, class_names: Sequence[str]) -> list[tuple[float, float, str]]:
    """Reference events of one recording from its binary (frames, classes) activity: each maximal
    run of active frames of a class is one event ``(onset_s, offset_s, class)``, sorted.  Events of
    one class that overlap or touch in the annotation (two tracks of the same class) become one
    event: a detector with one output per class cannot tell them apart."""
    sse = sed_scores_eval()
    activity = np.asarray(activity)
    if activity.ndim != 2 or activity.shape[1] != len(class_names):
        raise ValueError(f"reference activity of shape {activity.shape} does not match {len(class_names)} classes")
    if activity.size and not np.isin(activity, (0, 1)).all():
        raise ValueError("reference activity must be binary (0/1 or bool)")
    frame = score_frame(activity.astype(np.float64), frame_timestamps(len(activity), frame_seconds), class_names)
    events = sse.base_modules.detection.scores_to_event_list(frame, 0.5)
    return [(float(on), float(off), str(c)) for on, off, c in events]


def _restrict(scores: Mapping, ground_truth: Mapping) -> tuple[dict, list[str], list[str]]:
    """Score frames with only the classes that have reference events, those classes, the others."""
    first = next(iter(scores.values()))
    classes = [c for c in first.columns if c not in ("onset", "offset")]
    present = {ev[2] for events in ground_truth.values() for ev in events}
    unknown = sorted(present - set(classes))
    if unknown:
        raise TFScenesError(f"reference events of classes the scores do not have: {unknown}; score classes: {classes}")
    kept = [c for c in classes if c in present]
    return {k: v[["onset", "offset", *kept]] for k, v in scores.items()}, kept, [c for c in classes if c not in present]


def event_metrics(scores, ground_truth: Mapping[str, Sequence], audio_durations: Mapping[str, float], *,
                  threshold: float = DEFAULT_THRESHOLD, source=None) -> dict[str, float]:
    """Event-based F1 (macro and micro) at ``threshold`` and PSDS (scenario 1) of SED scores.

    Args:
      scores: a folder of ``<recording>.tsv`` frame score files, or {recording: score DataFrame}.
      ground_truth: {recording: [(onset_s, offset_s, class), ...]}, every scored recording
        (an empty list for a recording without events).
      audio_durations: {recording: seconds} of every scored recording (the eFPR's time base).
      threshold: detection threshold of the F1 (a frame is active when its score is > threshold).
      source: what the scores are, for error messages (default: the folder, or "scores").

    Returns:
      ``{"event_f1", "event_f1_micro", "psds1", "event_classes"}`` (see the module docstring).
    """
    sse = sed_scores_eval()
    where = source if source is not None else scores if isinstance(scores, (str, Path)) else "scores"
    if isinstance(scores, (str, Path)):
        scores = read_score_folder(scores)
    missing = sorted(set(scores) - set(ground_truth))
    extra = sorted(set(ground_truth) - set(scores))
    no_duration = sorted(set(scores) - set(audio_durations))
    if missing or extra or no_duration:
        parts = [f"{len(v)} recordings {what}: {', '.join(v[:5])}" + (" ..." if len(v) > 5 else "")
                 for v, what in ((missing, "scored but without reference"), (extra, "with reference but not scored"),
                                 (no_duration, "scored but without a duration")) if v]
        raise TFScenesError(f"{where}: scores and reference do not cover the same recordings; " + "; ".join(parts))
    scores, kept, dropped = _restrict(scores, ground_truth)
    if dropped:
        log.warning("event-based SED metrics: %d classes have no reference event in these %d recordings and are "
                    "left out: %s", len(dropped), len(scores), ", ".join(dropped))
    if not kept:
        return {"event_f1": math.nan, "event_f1_micro": math.nan, "psds1": math.nan, "event_classes": 0}
    ground_truth = {k: [tuple(ev) for ev in ground_truth[k]] for k in scores}
    durations = {k: float(audio_durations[k]) for k in scores}
    f1, _, _, _ = sse.collar_based.fscore(scores, ground_truth, threshold, onset_collar=ONSET_COLLAR_S,
                                          offset_collar=OFFSET_COLLAR_S, offset_collar_rate=OFFSET_COLLAR_RATE,
                                          time_decimals=TIME_DECIMALS)
    psds = sse.intersection_based.psds(scores, ground_truth, durations, time_decimals=TIME_DECIMALS, **PSDS1)[0]
    return {"event_f1": float(f1["macro_average"]), "event_f1_micro": float(f1["micro_average"]),
            "psds1": float(psds), "event_classes": len(kept)}


PARAMETERS_NOTE = (f"event F1: collar-based (sed_scores_eval), threshold {DEFAULT_THRESHOLD}, onset collar "
                   f"{ONSET_COLLAR_S * 1000:g} ms, offset collar max({OFFSET_COLLAR_S * 1000:g} ms, "
                   f"{OFFSET_COLLAR_RATE:.0%} of the event), class-wise (macro) average; PSDS1: sed_scores_eval, DCASE "
                   f"2021 Task 4 scenario 1 (dtc {PSDS1['dtc_threshold']}, gtc {PSDS1['gtc_threshold']}, alpha_ct "
                   f"{PSDS1['alpha_ct']:g}, alpha_st {PSDS1['alpha_st']:g}, eFPR up to {PSDS1['max_efpr']:g} per "
                   "hour), threshold-free")
