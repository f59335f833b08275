"""The two-stage system as one model: 10-class and 3-class ensembles and their fusion, taking
44.1 kHz waveforms (Hu et al. 2021, Sec. 2.1; what the two-stage study exports).

A study folder (or any folder) that ships such a system holds ``system.json``::

    {"family": "two_stage", "members_10class": ["runs/resnet10", ...], "members_3class": [...]}

(paths relative to the folder), which :func:`system_export` reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import TFScenesError

SYSTEM_FILE = "system.json"
NOTE = "clips are cut or zero-padded to 10 s (441,000 samples) by the front-end"


def write_system_file(folder, members10, members3) -> Path:
    """Record which run folders (relative to ``folder``) make the system."""
    from ..io_utils import atomic_write_json

    return atomic_write_json(Path(folder) / SYSTEM_FILE, {"family": "two_stage", "members_10class": list(members10),
                                                         "members_3class": list(members3)})


def read_system_file(folder) -> dict:
    """The member run folders of a system folder: {"10": [Path...], "3": [Path...]}."""
    folder = Path(folder)
    path = folder / SYSTEM_FILE
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise TFScenesError(f"{path}: unreadable ({e})") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) and doc[k]
                                            for k in ("members_10class", "members_3class")):
        raise TFScenesError(f"{path}: expected members_10class and members_3class lists of run folders")
    out = {}
    for key, n in (("members_10class", "10"), ("members_3class", "3")):
        runs = []
        for rel in doc[key]:
            p = (folder / str(rel)).resolve()
            if folder.resolve() not in p.parents:
                raise TFScenesError(f"{path}: member {rel!r} is not inside {folder}")
            runs.append(p)
        out[n] = runs
    return out


def two_stage_system(models10: dict, models3: dict):
    """Keras model: waveform (44.1 kHz) -> {"scene": 10-class ensemble, "broad": 3-class ensemble,
    "fused": two-stage fusion score[c] = P10[c] * P3[broad(c)], renormalised}.

    Ensembles are the mean of the members' softmax outputs (the paper sums them; the argmax is the
    same, and the mean stays a probability distribution)."""
    from keras import ops

    from ..datasets.tau2020 import BROAD_CLASSES, SCENE_TO_BROAD, SCENES
    from ..export import waveform_signature_model
    from ..features import get_feature_config

    expand = np.zeros((len(BROAD_CLASSES), len(SCENES)), np.float32)  # P3 (batch, 3) @ expand -> (batch, 10)
    for c, scene in enumerate(SCENES):
        expand[BROAD_CLASSES.index(SCENE_TO_BROAD[scene]), c] = 1.0

    def inner(feats):
        p10 = ops.mean(ops.stack([m(feats) for m in models10.values()], axis=0), axis=0)  # (batch, 10)
        p3 = ops.mean(ops.stack([m(feats) for m in models3.values()], axis=0), axis=0)  # (batch, 3)
        fused = p10 * ops.matmul(p3, ops.convert_to_tensor(expand))  # (batch, 10)
        fused = fused / ops.sum(fused, axis=-1, keepdims=True)
        return {"scene": p10, "broad": p3, "fused": fused}

    return waveform_signature_model(inner, get_feature_config("two_stage"), "two_stage_system")


def system_export(folder):
    """The ExportSpec of the system a folder's ``system.json`` describes (None without one)."""
    from ..datasets.tau2020 import BROAD_CLASSES, SCENES
    from ..families import ExportSpec
    from ..features import get_feature_config
    from ..model_io import load_run_model

    folder = Path(folder)
    if not (folder / SYSTEM_FILE).is_file():
        return None
    members = read_system_file(folder)
    m10 = {p.name: load_run_model(p)[0] for p in members["10"]}
    m3 = {p.name: load_run_model(p)[0] for p in members["3"]}
    return ExportSpec(two_stage_system(m10, m3), get_feature_config("two_stage").sample_rate,
                      labels={"scene": list(SCENES), "broad": list(BROAD_CLASSES), "fused": list(SCENES)},
                      metadata={"family": "two_stage", "members_10class": list(m10), "members_3class": list(m3),
                                "runs": [str(p) for p in [*members["10"], *members["3"]]], "note": NOTE})


def saliency_runs(folder):
    """[3-class run, 10-class run] to explain side by side for a system folder or its export: the
    ResNets when the system has them (their class conv gives CAM), else the first members."""
    from ..model_io import read_model_card

    folder = Path(folder)
    if (folder / SYSTEM_FILE).is_file():
        members = read_system_file(folder)
        runs3, runs10 = members["3"], members["10"]
    else:
        if not (folder / "assets.extra" / "metadata.json").is_file():
            return None
        from ..export import read_export_metadata

        meta, _ = read_export_metadata(folder)
        if meta.get("family") != "two_stage":
            return None
        runs = [Path(r) for r in meta.get("runs") or []]
        if len(runs) < 2:
            return None
        missing = [str(r) for r in runs if not (r / "model.json").is_file()]
        if missing:
            raise TFScenesError(f"{folder}: the export points at run folders that are gone ({', '.join(missing)}); "
                                "pass a run folder instead")
        n = {r: len(next(iter(read_model_card(r)["outputs"].values()))) for r in runs}
        runs3, runs10 = [r for r in runs if n[r] == 3], [r for r in runs if n[r] == 10]
        if not runs3 or not runs10:
            return None

    def pick(runs):
        return next((r for r in runs if read_model_card(r)["builder"] == "two_stage_resnet"), runs[0])

    return [pick(runs3), pick(runs10)]


def saliency_class(card: dict, class_arg):
    """A scene named for the system selects its broad class in a 3-class member."""
    from ..datasets.tau2020 import SCENE_TO_BROAD

    names = next(iter(card["outputs"].values()))
    if class_arg is not None and not str(class_arg).isdigit() and len(names) == 3:
        return SCENE_TO_BROAD.get(class_arg, class_arg)
    return class_arg
