"""`tf-scenes export RUN_DIR --out DIR [--tflite]`: a SavedModel taking waveforms.

RUN_DIR is a model run folder (holding model.json) of any family, exported as its family's export
contract says (tf_scenes.families), or a folder of a system of runs (the two-stage study folder:
10-class and 3-class ensembles and their fusion).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .errors import TFScenesError

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path, help="model run folder (model.json) or a system folder (the two-stage study folder)")
    parser.add_argument("--out", type=Path, required=True,
                        help="export folder: new, empty, or an earlier tf-scenes export (replaced once the new one "
                             "is complete); anything else is refused")
    parser.add_argument("--tflite", action="store_true",
                        help="also write model.tflite (built-in ops only), checked against the Keras outputs")


def family_export(run_dir: Path):
    """The :class:`~tf_scenes.families.ExportSpec` of a run folder (model.json) from its family's
    export contract, or of a folder holding a system of several runs (a family's group export)."""
    from .families import ExportSpec, all_families, get
    from .model_io import read_model_card, waveform_model

    run_dir = Path(run_dir)
    if (run_dir / "model.json").exists():
        card = read_model_card(run_dir)
        family = get(card["family"])
        if family.export is not None:
            return family.export(run_dir)
        model, card = waveform_model(run_dir)
        labels = card["outputs"]
        if isinstance(model.output, dict):
            labels = {k: v for k, v in labels.items() if k in model.output}
        return ExportSpec(model, card["sample_rate"], labels)
    for family in all_families():
        spec = family.group_export(run_dir) if family.group_export else None
        if spec is not None:
            return spec
    raise TFScenesError(f"{run_dir}: neither a model run folder (model.json) nor a folder of a system of runs")


def export_run(run_dir: Path, out: Path, metadata: dict | None = None) -> tuple[Path, object]:
    """Export a run or a system folder (``metadata``: more fields for the export's metadata.json);
    returns (export dir, the Keras model exported)."""
    from .export import export_saved_model
    from .model_io import read_model_card

    run_dir = Path(run_dir)
    spec = family_export(run_dir)
    meta = dict(spec.metadata)
    if (run_dir / "model.json").exists():
        card = read_model_card(run_dir)
        meta = {"family": card["family"], "builder": card["builder"], "runs": [str(run_dir.resolve())], **meta}
    meta.update(metadata or {})
    path = export_saved_model(spec.model, out, sample_rate=spec.sample_rate, labels=dict(spec.labels),
                              metadata=meta, min_samples=spec.min_samples, sources=[run_dir])
    return path, spec.model


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
    from .io_utils import dumps_json

    print(dumps_json(result))
    return 0
