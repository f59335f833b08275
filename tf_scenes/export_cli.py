"""`tf-scenes export RUN_DIR --out DIR [--tflite]`: a SavedModel taking waveforms.

RUN_DIR is a model run folder (holding model.json) of any family, or a two-stage study folder
(holding study.json and runs/), which exports the whole two-stage system (10-class and 3-class
ensembles and their fusion).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from .errors import TFScenesError

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path, help="model run folder (model.json) or two-stage study folder")
    parser.add_argument("--out", type=Path, required=True,
                        help="export folder: new, empty, or an earlier tf-scenes export (replaced once the new one "
                             "is complete); anything else is refused")
    parser.add_argument("--tflite", action="store_true",
                        help="also write model.tflite (built-in ops only), checked against the Keras outputs")


def read_study(study_dir: Path) -> dict:
    """The config.yaml of a two-stage study folder, checked for the ensembles to export."""
    import yaml

    from .errors import DataFormatError

    path = study_dir / "config.yaml"
    try:
        cfg = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise DataFormatError(path, f"cannot read the study config: {e.strerror or e}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise DataFormatError(path, f"unreadable study config: {str(e).splitlines()[0]}") from None
    if not isinstance(cfg, dict):
        raise DataFormatError(path, "the study config must be a mapping")
    models = cfg.get("models")
    for key in ("ensemble10", "ensemble3"):
        names = cfg.get(key)
        if not names:
            raise TFScenesError(f"{study_dir}: study config lists no ensembles to export")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataFormatError(path, f"{key}: expected a list of model run names, got {names!r}")
        for n in names:  # names are folder names under runs/, never paths
            if n in ("", ".", "..") or "/" in n or "\\" in n:
                raise DataFormatError(path, f"{key}: {n!r} is not a run name")
            if isinstance(models, dict) and not isinstance(models.get(n), dict):
                raise DataFormatError(path, f"{key}: {n!r} is not one of the study's models")
    return cfg


def _study_models(study_dir: Path):
    from .model_io import load_run_model

    cfg = read_study(study_dir)
    m10, m3 = cfg["ensemble10"], cfg["ensemble3"]
    load = lambda n: load_run_model(study_dir / "runs" / n)[0]  # noqa: E731
    return {n: load(n) for n in m10}, {n: load(n) for n in m3}


def family_model(run_dir: Path):
    """(Keras model taking waveforms, card, labels, extra metadata, min_samples) for one run folder.

    Each family ships what its study exports: DcaseNet scene/tag/frame probabilities, weak-SED clip
    probabilities with the model's own attention over time, raw-waveform whole clips (windowing and
    window averaging inside the graph), and the features + training statistics + model otherwise."""
    from .model_io import load_run_model, read_model_card, waveform_model

    card = read_model_card(run_dir)
    family = card["family"]
    extra, min_samples = {}, None
    if family == "raw_waveform":  # whole clips: windowing + averaging inside the graph
        from experiments.raw_waveform import clip_export_settings, clip_model

        model = clip_model(load_run_model(run_dir)[0])
        min_samples, extra = clip_export_settings()
    elif family == "dcasenet":
        from .dcasenet.serving import EXPORT_NOTE, FRAME_SECONDS, MIN_SAMPLES, serving_model

        model, card = serving_model(run_dir)
        min_samples = MIN_SAMPLES
        extra.update(frame_seconds=FRAME_SECONDS, note=EXPORT_NOTE)
    elif family == "weak_sed":  # as the study exports: clip probabilities and the attention over time
        from experiments.weak_sed import EXPORT_NOTE, FRAME_SECONDS, export_waveform_model

        model, card = export_waveform_model(run_dir)
        extra.update(frame_seconds=FRAME_SECONDS, note=EXPORT_NOTE)
    else:
        model, card = waveform_model(run_dir)
    labels = card["outputs"]
    if isinstance(model.output, dict):
        labels = {k: v for k, v in labels.items() if k in model.output}
    return model, card, labels, extra, min_samples


def export_run(run_dir: Path, out: Path) -> tuple[Path, object]:
    """Export a run or two-stage study folder; returns (export dir, the Keras model exported)."""
    from .export import export_saved_model, two_stage_system
    from .model_io import read_model_card

    run_dir = Path(run_dir)
    if (run_dir / "model.json").exists():
        model, card, labels, extra, min_samples = family_model(run_dir)
        path = export_saved_model(model, out, sample_rate=card["sample_rate"], labels=labels,
                                  metadata={"family": card["family"], "builder": card["builder"],
                                            "runs": [str(run_dir.resolve())], **extra},
                                  min_samples=min_samples, sources=[run_dir])
        return path, model
    if (run_dir / "study.json").exists() and (run_dir / "runs").is_dir():
        from .datasets.tau2020 import BROAD_CLASSES, SCENES

        m10, m3 = _study_models(run_dir)
        system = two_stage_system(m10, m3)
        card = read_model_card(run_dir / "runs" / next(iter(m10)))
        path = export_saved_model(
            system, out, sample_rate=card["sample_rate"],
            labels={"scene": list(SCENES), "broad": list(BROAD_CLASSES), "fused": list(SCENES)},
            metadata={"family": "two_stage", "members_10class": list(m10), "members_3class": list(m3),
                      "runs": [str((run_dir / "runs" / n).resolve()) for n in [*m10, *m3]]},
            sources=[run_dir])
        return path, system
    raise TFScenesError(f"{run_dir}: neither a model run folder (model.json) nor a two-stage study folder (study.json)")


def convert_tflite(export_dir: Path, keras_model, sample_rate: int, seconds: float = 2.0, atol: float = 1e-3) -> dict:
    """Convert the SavedModel to TFLite with built-in ops only and compare with Keras on a random clip.

    The TFLite model has a fixed input length (`seconds` at the model's rate)."""
    import tensorflow as tf

    from .io_utils import atomic_path

    n = int(seconds * sample_rate)
    wav = np.random.default_rng(0).normal(0, 0.1, (1, n)).astype(np.float32)
    fn = tf.function(lambda w: keras_model(w, training=False),
                     input_signature=[tf.TensorSpec([1, n], tf.float32, name="waveform")])
    conc = fn.get_concrete_function()
    # Without a trackable object the converter freezes the weights into constants; with one it
    # keeps resource variables, whose reads returned garbage under the XNNPACK delegate.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([conc])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        blob = converter.convert()
    except Exception as e:  # the converter's errors are long; keep the first lines
        raise TFScenesError(f"TFLite conversion with built-in ops failed: {str(e).splitlines()[0]}") from e
    path = Path(export_dir) / "model.tflite"
    with atomic_path(path, suffix=".tflite") as tmp:
        tmp.write_bytes(blob)
    interp = tf.lite.Interpreter(model_content=blob)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], wav)
    interp.invoke()
    outs = interp.get_output_details()
    want = keras_model(wav, training=False)
    want = want if isinstance(want, dict) else {"output_0": want}
    # Match TFLite outputs to Keras outputs by shape (names are not kept by this conversion path).
    got = {}
    for k, v in want.items():
        cands = [o for o in outs if tuple(o["shape"]) == tuple(np.shape(v)) and o["index"] not in
                 [g["index"] for g in got.values()]]
        if not cands:
            raise TFScenesError(f"TFLite model has no output shaped like {k!r} {tuple(np.shape(v))}")
        best = min(cands, key=lambda o: float(np.nanmax(np.abs(interp.get_tensor(o["index"]) - np.asarray(v)))))
        got[k] = best
    diffs = {}
    for k, v in want.items():
        diffs[k] = float(np.max(np.abs(interp.get_tensor(got[k]["index"]) - np.asarray(v))))
    worst = max(diffs.values())
    if not np.isfinite(worst) or worst > atol:
        raise TFScenesError(f"TFLite outputs differ from Keras by {worst:.2e} (> {atol}): {diffs}")
    return {"path": str(path), "input_samples": n, "max_abs_diff": diffs}


def run(args) -> int:
    path, model = export_run(args.run_dir, args.out)
    result = {"export": str(path)}
    if args.tflite:
        from .export import read_export_metadata

        meta, _ = read_export_metadata(path)
        result["tflite"] = convert_tflite(path, model, meta["input"]["sample_rate"])
    print(json.dumps(result))
    return 0
