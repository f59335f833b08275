"""Learnability report of an acoustic-scene set in the TAU 2020 Mobile format.

A deliberately simple probe: clip-mean log-mel energies (the project's front-end, the two-stage
STFT/mel settings without min-max scaling and deltas: 2048/1024 Hann, 128 HTK mels, ln(S + 1e-8)),
standardised, into a multinomial logistic regression trained on fold1_train and scored on
fold1_evaluate.  The synthetic set is meant to show the effects of the real task:

  (a) far above chance (10 %) but not perfect;
  (b) clearly lower accuracy on the unseen devices s4-s6 than on the reference device a;
  (c) the 3-class (indoor / outdoor / transportation) problem easier than the 10-class one.

Works on any folder in the format, real or synthetic.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

REPORT_FILE = "report.json"
# Thresholds of :func:`check_effects` (documented in the report itself).
MIN_ACC_FACTOR = 3.0       # (a) overall accuracy >= 3 x chance
MAX_ACC = 0.97             # (a) ... and below this
MIN_DEVICE_GAP = 0.10      # (b) acc(a) - mean acc(s4, s5, s6) >= 10 points
MIN_BROAD_GAIN = 0.0       # (c) acc(3-class) - acc(10-class) > 0


def _feature_config():
    from ..features import get_feature_config

    # Whole clips (no fixed length): 10 s TAU clips give the two-stage 431 frames.
    return get_feature_config("two_stage").replace(name="report_logmel", scaling="none", deltas=0,
                                                   clip_samples=None)


def clip_features(paths, batch: int = 16, progress: bool = True) -> np.ndarray:
    """(clips, 128) clip-mean log-mel energies of 44.1 kHz mono files (all of one length)."""
    from tqdm import tqdm

    from ..audio import read_audio, summarised_warnings
    from ..features import extract

    cfg = _feature_config()
    out = []
    paths = list(paths)
    with summarised_warnings("synth report"):
        for i in tqdm(range(0, len(paths), batch), desc="features", unit="batch", disable=None if progress else True,
                      leave=False):
            wav = np.stack([read_audio(p, sr=cfg.sample_rate, mono=True)[0] for p in paths[i:i + batch]])
            f = extract(cfg, wav)  # (batch, frames, mels, 1)
            out.append(f[..., 0].mean(axis=1))  # (batch, mels)
    return np.concatenate(out, axis=0)


def _fit_predict(x_tr, y_tr, x_ev, seed: int = 0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000, random_state=seed))
    clf.fit(x_tr, y_tr)
    return clf.predict(x_ev)


def asc_report(root, progress: bool = True, write: bool = True) -> dict:
    """Measure the probe on the dataset at `root`; write root/report.json (if `write`) and return it."""
    from ..datasets import tau2020
    from ..io_utils import atomic_write_json

    root = Path(root)
    train, evaluate = tau2020.load_fold1(root)
    x_tr = clip_features([r.path for r in train], progress=progress)
    x_ev = clip_features([r.path for r in evaluate], progress=progress)
    dev = np.array([r.device for r in evaluate])
    y10_tr = np.array([r.scene for r in train])
    y10_ev = np.array([r.scene for r in evaluate])
    y3_tr = np.array([r.broad for r in train])
    y3_ev = np.array([r.broad for r in evaluate])
    p10 = _fit_predict(x_tr, y10_tr, x_ev)
    p3 = _fit_predict(x_tr, y3_tr, x_ev)
    broad_of = dict(tau2020.SCENE_TO_BROAD)
    p10_as3 = np.array([broad_of[s] for s in p10])

    def acc_by_device(pred, truth) -> dict:
        d = {"overall": float(np.mean(pred == truth))}
        for device in tau2020.DEVICES:
            m = dev == device
            if m.any():
                d[f"device_{device}"] = float(np.mean(pred[m] == truth[m]))
        seen = [d[f"device_{x}"] for x in ("s4", "s5", "s6") if f"device_{x}" in d]
        if seen:
            d["devices_s4-s6"] = float(np.mean(seen))
        return d

    rep = {
        "dataset": str(root),
        "probe": "clip-mean log-mel (two_stage STFT/mel, no scaling, no deltas) -> StandardScaler -> "
                 "LogisticRegression(C=1) trained on fold1_train, scored on fold1_evaluate",
        "n_train": len(train),
        "n_evaluate": len(evaluate),
        "chance": {"10class": 1 / len(tau2020.SCENES), "3class": 1 / len(tau2020.BROAD_CLASSES)},
        "acc_10class": acc_by_device(p10, y10_ev),
        "acc_3class": acc_by_device(p3, y3_ev),
        "acc_10class_as_3class": acc_by_device(p10_as3, y3_ev),
    }
    rep["effects"] = check_effects(rep)
    if write:
        atomic_write_json(root / REPORT_FILE, rep)
    return rep


def check_effects(rep: dict) -> dict:
    """The three required effects as booleans plus the numbers they were judged on."""
    a10, a3 = rep["acc_10class"], rep["acc_3class"]
    chance = rep["chance"]["10class"]
    gap = a10.get("device_a", float("nan")) - a10.get("devices_s4-s6", float("nan"))
    return {
        "a_above_chance_not_perfect": bool(MIN_ACC_FACTOR * chance <= a10["overall"] <= MAX_ACC),
        "b_unseen_devices_lower": bool(gap >= MIN_DEVICE_GAP),
        "c_broad_easier": bool(a3["overall"] - a10["overall"] > MIN_BROAD_GAIN),
        "device_gap_a_minus_s4s6": float(gap),
        "thresholds": {"min_acc": MIN_ACC_FACTOR * chance, "max_acc": MAX_ACC, "min_device_gap": MIN_DEVICE_GAP},
    }


def format_report(rep: dict) -> str:
    """A small text table of the report (for the command line)."""
    lines = [f"probe: {rep['probe']}", f"train clips {rep['n_train']}, evaluation clips {rep['n_evaluate']}",
             f"{'':22s}{'10-class':>10s}{'3-class':>10s}{'10->3':>10s}"]
    keys = ["overall", "device_a"] + [k for k in rep["acc_10class"] if k.startswith("device_") and k != "device_a"]
    keys.append("devices_s4-s6")
    for k in keys:
        if k in rep["acc_10class"]:
            lines.append(f"{k:22s}{rep['acc_10class'][k]:10.3f}{rep['acc_3class'][k]:10.3f}"
                         f"{rep['acc_10class_as_3class'][k]:10.3f}")
    e = rep["effects"]
    lines.append(f"(a) above chance, not perfect: {e['a_above_chance_not_perfect']}; "
                 f"(b) a - s4-s6 = {e['device_gap_a_minus_s4s6']:+.3f}: {e['b_unseen_devices_lower']}; "
                 f"(c) 3-class easier: {e['c_broad_easier']}")
    return "\n".join(lines)
