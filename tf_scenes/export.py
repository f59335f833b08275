"""SavedModel export: every exported model takes float32 waveforms [batch, samples] at its rate.

The feature front-end is part of the exported graph (one implementation, tf_scenes.features).
Beside the SavedModel, `assets.extra/labels.json` holds the class names of each output,
`assets.extra/metadata.json` the sample rate, the outputs and how the model was made, and
`assets.extra/tf_scenes_export.json` marks the folder as a tf-scenes export: only a folder with that
marker (or an empty / absent one) is ever replaced by a new export.

    export_saved_model(model, "export/my_model", sample_rate=44100, labels={"probs": [...]})
    m = tf.saved_model.load(path); out = m.signatures["serving_default"](waveform=wav)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path


from .errors import DataFormatError, OutputDirError, TFScenesError

log = logging.getLogger(__name__)

MARKER = Path("assets.extra") / "tf_scenes_export.json"
# What an export folder may hold: the SavedModel (saved_model.pb, fingerprint.pb, variables/,
# assets/), our assets.extra/ files and the optional model.tflite (with atomic_path's temporaries).
EXPORT_ENTRIES = frozenset({"saved_model.pb", "fingerprint.pb", "variables", "assets", "assets.extra", "model.tflite"})
EXTRA_FILES = frozenset({"labels.json", "metadata.json", MARKER.name})


def waveform_signature_model(inner, feature_cfg, name: str):
    """keras.Model: waveform (batch, samples) -> features -> `inner` (a model or a callable on features)."""
    import keras

    from .features import FeatureExtractor

    wav = keras.Input((None,), dtype="float32", name="waveform")
    feats = FeatureExtractor(feature_cfg, name="features")(wav)  # (batch, frames, mels, ch)
    return keras.Model(wav, inner(feats), name=name)


def _front_end_min_samples(model) -> int:
    """The shortest waveform every FeatureExtractor inside `model` (nested models included) accepts."""
    from .features import FeatureExtractor, min_input_samples

    need, stack, seen = 1, [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, FeatureExtractor):
            need = max(need, min_input_samples(layer.feature_config))
        stack.extend(getattr(layer, "layers", None) or [])
    return need


def _ours(name: str, known: frozenset) -> bool:
    """An entry an export writes, or a temporary that atomic_path left while writing one."""
    return name in known or any(name.startswith(f".{k}.") for k in known)


def export_target_state(out_dir, sources=()) -> str:
    """"absent", "empty" or "export": what `out_dir` is, if an export may be written there.

    Anything else raises OutputDirError naming the folder: a file, a folder with content that is
    not a tf-scenes export (no marker, or entries an export never writes), or a folder that is or
    contains one of `sources` (the run folders being exported)."""
    out = Path(out_dir)
    real = out.resolve()
    for src in sources:
        s = Path(src).resolve()
        if s == real or s.is_relative_to(real):
            what = "is" if s == real else "contains"
            raise OutputDirError(f"{out}: {what} the run folder being exported ({src}); choose another --out")
    if not out.exists() and not out.is_symlink():
        return "absent"
    if not out.is_dir():
        raise OutputDirError(f"{out}: exists and is not a directory (choose another --out)")
    try:
        entries = sorted(p.name for p in out.iterdir())
    except OSError as e:
        raise OutputDirError(f"{out}: cannot list the existing folder: {e.strerror or e}") from e
    if not entries:
        return "empty"
    foreign = [e for e in entries if not _ours(e, EXPORT_ENTRIES)]
    if (out / "assets.extra").is_dir():
        foreign += [f"assets.extra/{e.name}" for e in sorted((out / "assets.extra").iterdir())
                    if not _ours(e.name, EXTRA_FILES)]
    if not (out / MARKER).is_file() and not _legacy_export(out):
        raise OutputDirError(f"{out}: exists and is not a tf-scenes export (no {MARKER.as_posix()}); "
                             "tf-scenes only replaces its own exports: choose another --out or remove it")
    if foreign:
        listed = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputDirError(f"{out}: this export folder also holds files tf-scenes did not write ({listed}); "
                             "move them out or choose another --out")
    return "export"


def _legacy_export(out: Path) -> bool:
    """An export written before exports carried the marker: a SavedModel with our metadata."""
    try:
        meta = json.loads((out / "assets.extra" / "metadata.json").read_text())
    except (OSError, ValueError):
        return False
    return (out / "saved_model.pb").is_file() and isinstance(meta, dict) and isinstance(meta.get("input"), dict) \
        and meta["input"].get("name") == "waveform"


def _replace_dir(tmp: Path, out: Path, state: str) -> None:
    """Put the finished export `tmp` at `out`. An earlier export is renamed aside first and
    deleted only once the new one is in place (renamed back if that fails)."""
    if state == "empty":
        os.rmdir(out)  # only ever removes an empty folder
    if state != "export":
        os.rename(tmp, out)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.replaced-", dir=out.parent))
    try:
        os.replace(out, aside)  # a directory renamed over the empty one mkdtemp made
    except BaseException:
        os.rmdir(aside)
        raise
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(aside, out)
        raise
    try:
        shutil.rmtree(aside)
    except OSError as e:  # the new export is in place; the old one is only left behind
        log.warning("%s: could not delete the replaced export: %s", aside, e)


def _export_sources(metadata: dict | None) -> list[Path]:
    meta = metadata or {}
    runs = meta.get("runs") or []
    return [Path(r) for r in [*runs, meta.get("run")] if r]


def export_saved_model(model, out_dir, *, sample_rate: int, labels: dict[str, list[str]], metadata: dict | None = None,
                       min_samples: int | None = None, sources=()) -> Path:
    """Write `model` (waveform in, dict or tensor out) as a SavedModel with a serving signature
    `serving_default(waveform: float32[batch, samples]) -> dict`.

    `out_dir` must be absent, an empty folder, or an earlier tf-scenes export (marked by
    assets.extra/tf_scenes_export.json); anything else, and a folder that is or contains one of the
    run folders exported (`sources`, and the `run` / `runs` recorded in `metadata`), is refused with
    OutputDirError before any work. The export is written into a temporary sibling folder and
    renamed into place when complete; an earlier export is replaced only then.

    The signature rejects bad input with an InvalidArgumentError whose message says what is wrong:
    a tensor that is not [batch, samples], an empty batch, fewer than `min_samples` samples (at
    least what the model's feature front-end needs for one frame; recorded in metadata.json), or
    NaN / Inf samples. The output folder is checked for writability before anything is traced.
    """
    import keras
    import tensorflow as tf

    from .io_utils import _umask, atomic_write_json, ensure_writable_dir

    out_dir = Path(out_dir)
    target = out_dir.resolve()  # a symlinked --out: write where it points
    state = export_target_state(out_dir, [*sources, *_export_sources(metadata)])
    ensure_writable_dir(target.parent)
    if isinstance(model.output, dict):
        out_names = list(model.output.keys())
    else:  # one output: name it as its labels are keyed (predict looks class names up by this name)
        out_names = list(labels) if len(labels) == 1 else [model.output_names[0]]
    min_samples = max(int(min_samples or 1), _front_end_min_samples(model))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform")])
    def serve(waveform):
        # A loaded signature does not enforce the declared shape: check it (and the values) here so
        # that bad input fails with a plain message instead of deep inside the front-end.
        waveform = tf.ensure_shape(waveform, [None, None], name="waveform_must_be_batch_by_samples")
        shape = tf.shape(waveform)
        tf.debugging.assert_positive(shape[0], message="waveform: empty batch (0 clips)")
        tf.debugging.assert_greater_equal(
            shape[1], min_samples,
            message=f"waveform too short: this model needs at least {min_samples} samples per clip at {sample_rate} Hz")
        waveform = tf.debugging.assert_all_finite(waveform, "waveform contains NaN or Inf samples")
        out = model(waveform, training=False)
        if not isinstance(out, dict):
            out = {out_names[0]: out}
        return {k: tf.cast(v, tf.float32) for k, v in out.items()}

    # A fresh, uniquely named sibling: never a folder that exists already (it may not be ours).
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the export gets the usual folder mode
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serving_default", serve)
        archive.write_out(str(tmp), verbose=False)
        meta = {"input": {"name": "waveform", "dtype": "float32", "shape": "[batch, samples]",
                          "sample_rate": sample_rate, "channels": 1, "min_samples": min_samples},
                "outputs": out_names, **(metadata or {})}
        atomic_write_json(tmp / "assets.extra" / "labels.json", labels)
        atomic_write_json(tmp / "assets.extra" / "metadata.json", meta)
        atomic_write_json(tmp / MARKER, {"format": "tf-scenes export", "version": 1})  # last: the export is whole
        try:
            _replace_dir(tmp, target, state)
        except OSError as e:  # e.g. files appeared in the folder meanwhile: nothing of theirs is touched
            raise OutputDirError(f"{out_dir}: could not move the new export into place: {e.strerror or e}") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # our own temporary folder, nothing else
        raise
    return out_dir


def read_export_metadata(export_dir) -> tuple[dict, dict]:
    """(metadata, labels) of an export folder, checked: DataFormatError naming the file otherwise."""
    d = Path(export_dir) / "assets.extra"
    if not (d / "metadata.json").is_file():
        raise TFScenesError(f"{export_dir}: not a tf-scenes export (no assets.extra/metadata.json)")
    out = []
    for name in ("metadata.json", "labels.json"):
        try:
            out.append(json.loads((d / name).read_bytes().decode("utf-8")))
        except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
            raise DataFormatError(d / name, f"unreadable ({getattr(e, 'strerror', None) or e}); "
                                            "re-export the model") from None
    meta, labels = out
    if not isinstance(meta, dict) or not isinstance(meta.get("input"), dict):
        raise DataFormatError(d / "metadata.json",
                              "expected a JSON object with an \"input\" object; re-export the model")
    inp = meta["input"]
    sr, need = inp.get("sample_rate"), inp.get("min_samples", 1)
    for key, v in (("sample_rate", sr), ("min_samples", need)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise DataFormatError(d / "metadata.json", f"input.{key}: expected a positive integer, got {v!r}; "
                                                       "re-export the model")
    fs = meta.get("frame_seconds")
    if fs is not None and (isinstance(fs, bool) or not isinstance(fs, (int, float)) or not fs > 0):
        raise DataFormatError(d / "metadata.json", f"frame_seconds: expected a positive number, got {fs!r}")
    runs = meta.get("runs")
    if runs is not None and not (isinstance(runs, list) and all(isinstance(r, str) for r in runs)):
        raise DataFormatError(d / "metadata.json", f"runs: expected a list of run folder paths, got {runs!r}")
    if not isinstance(labels, dict) or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in labels.values()):
        raise DataFormatError(d / "labels.json", "expected a JSON object of output name -> list of class names; "
                                                 "re-export the model")
    return meta, labels
