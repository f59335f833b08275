"""`tf-scenes predict EXPORT_DIR AUDIO...`: run an exported SavedModel, print one JSON line per file.

Any wav (or flac/ogg) is read, down-mixed to mono and resampled to the model's rate when needed (with
a logged warning). Files that cannot be read are reported on stderr with the reason; the others
are still predicted, and the exit code is 2 if any file failed.

Output line: {"file": ..., "outputs": {name: {"top": [[class, prob], ...]}}}; for frame-level
outputs (SED activity) also "frames": [[p_class0, ...], ...] per output frame and "frame_hop_s".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .errors import AudioError, TFScenesError


def add_arguments(parser) -> None:
    parser.add_argument("export_dir", type=Path, help="folder written by `tf-scenes export` (or a study's export/)")
    parser.add_argument("audio", type=Path, nargs="+", help="audio files")
    parser.add_argument("--top", type=int, default=3, help="classes to list per output (default 3)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="for frame outputs: also list the active classes per frame above this value")


def load_export(export_dir: Path):
    import tensorflow as tf

    from .export import read_export_metadata

    meta, labels = read_export_metadata(export_dir)
    try:
        fn = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    except (OSError, KeyError, ValueError) as e:
        raise TFScenesError(f"{export_dir}: cannot load the SavedModel's serving signature: {e}") from e
    return fn, meta, labels


def describe(outputs: dict, labels: dict, top: int, threshold: float | None, duration_s: float,
             frame_seconds: float | None = None) -> dict:
    """JSON-ready summary of one file's outputs. Frame outputs are (frames, classes), or (classes,
    frames) as the weak-SED time attention (transposed here); their hop is `frame_seconds` when the
    export records it, else the duration over the number of frames."""
    out = {}
    for name, value in outputs.items():
        v = np.asarray(value)[0]  # one file at a time
        names = labels.get(name)
        if v.ndim == 2 and names and len(names) == v.shape[0] != v.shape[1]:
            v = v.T  # (classes, frames) -> (frames, classes)
        if v.ndim == 1 and names and len(names) == v.shape[0]:
            order = np.argsort(-v)[:top]
            out[name] = {"top": [[names[i], round(float(v[i]), 5)] for i in order]}
        elif v.ndim == 2 and names and len(names) == v.shape[1]:  # (frames, classes): activity
            clip = v.max(axis=0)
            order = np.argsort(-clip)[:top]
            entry = {"top": [[names[i], round(float(clip[i]), 5)] for i in order],
                     "frame_hop_s": round(frame_seconds or duration_s / max(v.shape[0], 1), 5),
                     "frames": np.round(v.astype(np.float64), 4).tolist()}
            if threshold is not None:
                entry["active"] = [[names[c] for c in np.flatnonzero(row >= threshold)] for row in v]
            out[name] = entry
        elif v.size <= 1024:
            out[name] = {"values": np.round(v.astype(np.float64), 5).tolist()}
        else:
            out[name] = {"shape": list(v.shape)}
    return out


def _reason(error) -> str:
    """The assertion text of a signature's InvalidArgumentError, without TensorFlow's node dump."""
    text = getattr(error, "message", str(error))
    for line in text.splitlines():
        if "assertion failed" in line or "NaN or Inf" in line or "not compatible" in line:
            return line.strip()
    return text.strip().splitlines()[-1] if text.strip() else type(error).__name__


def run(args) -> int:
    import tensorflow as tf

    from .audio import read_audio

    fn, meta, labels = load_export(args.export_dir)
    sr = int(meta["input"]["sample_rate"])
    min_samples = meta["input"].get("min_samples")
    failed = 0
    for path in args.audio:
        try:
            wav, _ = read_audio(path, sr=sr, mono=True, min_samples=min_samples)
        except AudioError as e:
            print(f"tf-scenes predict: skipping {e}", file=sys.stderr)
            failed += 1
            continue
        try:
            outputs = fn(waveform=tf.constant(wav[None, :]))
        except tf.errors.InvalidArgumentError as e:  # the signature's input checks (older exports)
            print(f"tf-scenes predict: skipping {path}: the model rejected the waveform: {_reason(e)}",
                  file=sys.stderr)
            failed += 1
            continue
        line = {"file": str(path), "sample_rate": sr, "seconds": round(len(wav) / sr, 3),
                "outputs": describe(outputs, labels, args.top, args.threshold, len(wav) / sr,
                                   meta.get("frame_seconds"))}
        print(json.dumps(line), flush=True)
    return 2 if failed else 0
