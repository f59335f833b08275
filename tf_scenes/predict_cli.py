"""`tf-scenes predict EXPORT_DIR AUDIO...`: run an exported SavedModel, print one JSON line per file.

Any wav (or flac/ogg) is read, down-mixed to mono and resampled to the model's rate when needed.
Files that cannot be read, that the model rejects, or for which it returns NaN / Inf are reported
on stderr with the reason (one line each); the others are still predicted, and the exit code is 2
if any file failed. Every line printed is strict JSON.

Output line: {"file": ..., "sample_rate": ..., "seconds": ..., "outputs": {name: {"top": [[class,
prob], ...]}}}; for frame-level outputs (SED activity) also "frames": [[p_class0, ...], ...] per
output frame and "frame_hop_s".

Length: a model with a fixed clip length (its front-end cuts or zero-pads every input to it, e.g.
10 s for the two-stage and weak-SED exports) sees the first clip of each file and only that part
is decoded; a line's "input" says when a file was cut or padded, and one warning per run counts
them. With ``--windows`` the whole file is covered by windows instead (decoded block by block,
so memory stays bounded): "windows" lists each window's {start_s, end_s, outputs} and "outputs"
is the mean of each output over the windows.

With ``--format dcase --threshold T`` the frame-level (SED) output becomes an event list instead:
one line per event, ``file<TAB>onset<TAB>offset<TAB>label`` (seconds, 3 decimals; the DCASE /
sed_eval event list format, no header), in file order and then by onset (:func:`frame_events`).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np

from .errors import AudioError, ConfigError, TFScenesError

log = logging.getLogger(__name__)

HELP = """\
Length of the input: a model with a fixed clip length (its front-end cuts or zero-pads each input
to it) sees the first clip of each file, and only that part is decoded; files cut or padded are
counted in one warning and noted in their line ("input"). Models without one take the whole file.

--windows covers the whole file with windows instead: each window is run through the model and
reported as {"start_s", "end_s", "outputs"} under "windows", and "outputs" holds the mean of each
output over the windows. The file is decoded in blocks, so memory stays bounded whatever its
length. The last window is zero-padded at the end when the file does not fill it.

--format dcase --threshold T prints the events of an SED model's frame output instead of JSON, one
line each: file<TAB>onset<TAB>offset<TAB>label (seconds). The frame hop is the export's
frame_seconds. Per class: an optional median filter over --median-filter SECONDS (SECONDS / hop
rounded to whole frames, plus one if even; edges reflected), then each maximal run of frames
scoring above T (strictly, the rule of the evaluation's event-based F1) is one event; events
shorter than --min-duration SECONDS are dropped. Both are off by default: the events are then exactly what the
event-based F1 at T counts. With --windows the windows must not overlap; events of one class that
meet at a window boundary are joined, and nothing past the end of the audio is reported.
"""


def add_arguments(parser) -> None:
    parser.description = (parser.description or "") + "\n\n" + HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("export_dir", type=Path, help="folder written by `tf-scenes export` (or a study's export/)")
    parser.add_argument("audio", type=Path, nargs="+", help="audio files")
    parser.add_argument("--top", type=int, default=3, help="classes to list per output (default 3)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="for frame outputs: also list the active classes per frame at or above this value; "
                             "with --format dcase: the detection threshold (events: frames scoring above it)")
    parser.add_argument("--windows", nargs="?", const="model", default=None, metavar="SECONDS",
                        help="cover each file with windows of SECONDS (default: the model's own clip length) "
                             "and report every window's outputs and their mean; decodes the file in blocks")
    parser.add_argument("--hop", type=float, default=None, metavar="SECONDS",
                        help="with --windows: the step between window starts (default: the window length, "
                             "no overlap); at most the window length, so that the windows cover the file")
    parser.add_argument("--format", choices=("json", "dcase"), default="json",
                        help="json: one JSON line per file (default); dcase: one line per detected event, "
                             "file<TAB>onset<TAB>offset<TAB>label, from the frame output (needs --threshold)")
    parser.add_argument("--output", default=None, metavar="NAME",
                        help="with --format dcase: the frame output to detect events in (default: the only one)")
    parser.add_argument("--median-filter", type=float, default=0.0, metavar="SECONDS",
                        help="with --format dcase: median filter of each class's frame scores over SECONDS "
                             "before thresholding (default: 0.0, none)")
    parser.add_argument("--min-duration", type=float, default=0.0, metavar="SECONDS",
                        help="with --format dcase: drop events shorter than SECONDS (default: 0.0, keep all)")


def load_export(export_dir: Path):
    import tensorflow as tf

    from .export import read_export_metadata

    meta, labels = read_export_metadata(export_dir)
    try:
        fn = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    except (OSError, KeyError, ValueError) as e:
        raise TFScenesError(f"{export_dir}: cannot load the SavedModel's serving signature: {e}") from e
    return fn, meta, labels


def model_clip_samples(fn, meta: dict) -> int | None:
    """The fixed length (samples) the export's front-end cuts or zero-pads every input to, or None
    for a model that takes whole clips of any length.

    Taken from metadata (input.clip_samples) when recorded, else from the serving graph: the
    front-end's fixed-length step is an EnsureShape to [batch, N] (named "clip_samples"); several
    different lengths give None.
    """
    recorded = (meta.get("input") or {}).get("clip_samples")
    if recorded:
        return int(recorded)
    try:
        gdef = fn.graph.as_graph_def()
    except Exception:  # a signature without a Python graph: no way to tell
        return None
    named, other = set(), set()
    for node in [*gdef.node, *(n for f in gdef.library.function for n in f.node_def)]:
        if node.op != "EnsureShape":
            continue
        dims = [d.size for d in node.attr["shape"].shape.dim]
        if len(dims) == 2 and dims[1] > 0:
            (named if node.name.rsplit("/", 1)[-1].startswith("clip_samples") else other).add(dims[1])
    found = named or other
    return found.pop() if len(found) == 1 else None


def describe(outputs: dict, labels: dict, top: int, threshold: float | None, duration_s: float,
             frame_seconds: float | None = None) -> dict:
    """JSON-ready summary of one file's outputs. Frame outputs are (frames, classes), or (classes,
    frames) as the weak-SED time attention (transposed here); their hop is `frame_seconds` when the
    export records it, else the duration over the number of frames."""
    out = {}
    for name, value in outputs.items():
        v = np.asarray(value)[0]  # one file at a time
        names = labels.get(name)
        frames = frame_matrix(v, names)
        if frames is not None:
            v = frames
        if v.ndim == 1 and names and len(names) == v.shape[0]:
            order = np.argsort(-v)[:top]
            out[name] = {"top": [[names[i], round(float(v[i]), 5)] for i in order]}
        elif frames is not None:  # (frames, classes): activity
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


def frame_matrix(value, names) -> np.ndarray | None:
    """One file's output as (frames, classes) when it is frame-level (class scores over time), else
    None. A (classes, frames) output (the weak-SED time attention) is transposed."""
    v = np.asarray(value)
    if v.ndim != 2 or not names:
        return None
    if len(names) == v.shape[0] != v.shape[1]:
        return v.T  # (classes, frames) -> (frames, classes)
    return v if len(names) == v.shape[1] else None


def median_frames(seconds: float, frame_seconds: float) -> int:
    """Median filter length in frames: seconds / hop rounded to whole frames, plus one if even (an
    odd length keeps the filter centred); 1 = no filter."""
    if seconds <= 0:
        return 1
    n = max(1, int(round(seconds / frame_seconds)))
    return n if n % 2 else n + 1


def frame_events(frames, frame_seconds: float, class_names, threshold: float, *, median: int = 1,
                 start_s: float = 0.0, end_s: float | None = None) -> list[tuple[float, float, str]]:
    """Events ``(onset_s, offset_s, class)`` of a (frames, classes) score matrix, sorted.

    Each class's scores are median-filtered over ``median`` frames (scipy.ndimage.median_filter,
    edges reflected; 1 = none); each maximal run of frames scoring ``> threshold`` is an event
    (sed_scores_eval's ``scores_to_event_list``, the detection rule of the event-based F1).  Times
    start at ``start_s`` (a window's start in the file); events are cut at ``end_s`` (the end of
    the audio) and those starting at or after it dropped.
    """
    from .metrics.sed_events import TIME_DECIMALS, frame_timestamps, sed_scores_eval, score_frame

    frames = np.asarray(frames, np.float64)  # (frames, classes)
    if median > 1:
        from scipy.ndimage import median_filter

        frames = median_filter(frames, size=(median, 1), mode="reflect")
    if not len(frames):
        return []
    table = score_frame(frames, frame_timestamps(len(frames), frame_seconds), [str(c) for c in class_names])
    events = []
    for on, off, label in sed_scores_eval().base_modules.detection.scores_to_event_list(table, float(threshold)):
        on, off = round(start_s + float(on), TIME_DECIMALS), round(start_s + float(off), TIME_DECIMALS)
        if end_s is not None:
            if on >= end_s:
                continue
            off = min(off, round(end_s, TIME_DECIMALS))
        events.append((on, off, label))
    return sorted(events)


def join_events(events, min_duration: float = 0.0) -> list[tuple[float, float, str]]:
    """Events sorted, those of one class that meet or overlap (at a window boundary) joined, and
    then those shorter than ``min_duration`` seconds dropped."""
    out: list[list] = []
    last: dict[str, list] = {}
    for on, off, label in sorted(events, key=lambda e: (e[0], e[1], e[2])):
        prev = last.get(label)
        if prev is not None and on <= prev[1] + 1e-6:
            prev[1] = max(prev[1], off)
            continue
        last[label] = [on, off, label]
        out.append(last[label])
    return sorted((on, off, label) for on, off, label in out if off - on >= min_duration - 1e-9)


def _reason(error) -> str:
    """The assertion text of a signature's InvalidArgumentError, without TensorFlow's node dump."""
    text = getattr(error, "message", str(error))
    for line in text.splitlines():
        if "assertion failed" in line or "NaN or Inf" in line or "not compatible" in line:
            return line.strip()
    return text.strip().splitlines()[-1] if text.strip() else type(error).__name__


class _Skip(Exception):
    """A file the model cannot give a valid answer for (the message says why)."""


def _run_model(fn, wav: np.ndarray, path) -> dict[str, np.ndarray]:
    """{output: numpy array} of one waveform; _Skip when the signature rejects it or an output
    holds NaN / Inf (never printed as JSON)."""
    import tensorflow as tf

    try:
        outputs = fn(waveform=tf.constant(wav[None, :]))
    except tf.errors.InvalidArgumentError as e:  # the signature's input checks
        raise _Skip(f"{path}: the model rejected the waveform: {_reason(e)}") from None
    outputs = {k: np.asarray(v) for k, v in outputs.items()}
    for name, v in outputs.items():
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            raise _Skip(f"{path}: the model's output {name!r} holds NaN or Inf "
                        f"({int(np.size(v) - np.isfinite(v).sum())} of {v.size} values); no prediction written")
    return outputs


def _seconds(path) -> float:
    from .audio import audio_info

    info = audio_info(path)
    return info.frames / info.samplerate


def predict_file(fn, path, *, sr: int, min_samples, clip: int | None, labels: dict, top: int, threshold,
                 frame_seconds) -> dict:
    """One file's JSON line: the model on the whole file, or on its first `clip` samples (only
    those are decoded; shorter files are zero-padded at the end, as the model would)."""
    from .audio import read_audio

    wav, _ = read_audio(path, sr=sr, mono=True, min_samples=min_samples, num_samples=clip)
    seconds = _seconds(path)
    outputs = _run_model(fn, wav, path)
    line = {"file": str(path), "sample_rate": sr, "seconds": round(seconds if clip else len(wav) / sr, 3)}
    if clip is not None:
        if round(seconds * sr) > clip:
            line["input"] = f"the first {clip / sr:.3f} s (the model's clip length; use --windows for the whole file)"
        elif round(seconds * sr) < clip:
            line["input"] = f"zero-padded at the end to {clip / sr:.3f} s (the model's clip length)"
    line["outputs"] = describe(outputs, labels, top, threshold, len(wav) / sr, frame_seconds)
    return line


def windows(blocks, window: int, hop: int):
    """(start, window samples zero-padded to `window`, samples of audio in it) over a stream of
    sample blocks: windows start at 0, hop, 2 hop, ... until one reaches the end of the audio; the
    last is zero-padded at the end when the audio does not fill it. Holds at most one window plus
    one block in memory. `hop` must be in 1..window."""
    if not 0 < hop <= window:
        raise ValueError(f"hop must be in 1..window={window}, got {hop}")
    buf = np.zeros(0, np.float32)
    start = 0  # file position of buf[0]
    nxt = 0  # start of the next window
    total = 0
    for b in blocks:
        buf = np.concatenate([buf, b]) if buf.size else np.asarray(b, np.float32)
        total += len(b)
        while nxt + window <= total:
            yield nxt, buf[nxt - start:nxt - start + window], window
            nxt += hop
        drop = min(nxt - start, len(buf))
        buf, start = buf[drop:], start + drop
    if total > 0 and (nxt == 0 or nxt - hop + window < total):
        part = buf[nxt - start:]
        yield nxt, np.pad(part, (0, window - len(part))), len(part)


def predict_windows(fn, path, *, sr: int, window: int, hop: int, labels: dict, top: int, threshold,
                    frame_seconds) -> dict:
    """One file's JSON line: the model on every window (see :func:`windows`), their outputs and
    the mean of each output over the windows. The file is decoded in blocks."""
    from .audio import iter_audio_blocks

    per_window, acc, n = [], {}, 0
    blocks = iter_audio_blocks(path, sr, block_seconds=max(10.0, window / sr))
    end = 0
    for start, wav, filled in windows(blocks, window, hop):
        out = _run_model(fn, wav, path)
        for k, v in out.items():
            acc[k] = acc.get(k, 0.0) + v.astype(np.float64)
        n += 1
        end = start + filled
        per_window.append({"start_s": round(start / sr, 3), "end_s": round(end / sr, 3),
                           "outputs": describe(out, labels, top, threshold, window / sr, frame_seconds)})
    if n == 0:
        raise AudioError(path, "no audio samples in file")
    mean = {k: v / n for k, v in acc.items()}
    return {"file": str(path), "sample_rate": sr, "seconds": round(end / sr, 3),
            "window_s": round(window / sr, 3), "hop_s": round(hop / sr, 3),
            "windowing": (f"{n} windows of {window / sr:g} s every {hop / sr:g} s from the start of the file; "
                          "the last one zero-padded at the end when the file does not fill it; 'outputs' is "
                          "the mean of each output over the windows"),
            "outputs": describe(mean, labels, top, threshold, window / sr, frame_seconds),
            "windows": per_window}


@dataclasses.dataclass(frozen=True)
class EventOptions:
    """How --format dcase turns a frame output into events."""

    threshold: float
    frame_seconds: float
    median: int  # median filter length in frames (1: none)
    min_duration: float
    output: str | None  # the frame output to use (None: the model's only one)
    source: Path  # the export, for error messages

    def output_of(self, outputs: dict, labels: dict) -> str:
        """The frame-level output of a model's outputs (one file's) to detect events in."""
        found = [k for k, v in outputs.items() if frame_matrix(np.asarray(v)[0], labels.get(k)) is not None]
        if self.output is not None:
            if self.output not in found:
                raise TFScenesError(f"{self.source}: --output {self.output}: not a frame-level output of this model "
                                    f"(frame-level outputs: {', '.join(found) or 'none'})")
            return self.output
        if not found:
            raise TFScenesError(f"{self.source}: the model has no frame-level output (class scores over time); "
                                "--format dcase needs a sound event detection model")
        if len(found) > 1:
            raise TFScenesError(f"{self.source}: the model has several frame-level outputs ({', '.join(found)}); "
                                "choose one with --output NAME")
        return found[0]

    def events(self, outputs: dict, labels: dict, start_s: float, end_s: float) -> list:
        name = self.output_of(outputs, labels)
        frames = frame_matrix(np.asarray(outputs[name])[0], labels[name])
        return frame_events(frames, self.frame_seconds, labels[name], self.threshold, median=self.median,
                            start_s=start_s, end_s=end_s)


def event_options(args, meta: dict, plan) -> EventOptions | None:
    """The --format dcase settings (None for JSON output), checked before any file is read."""
    if args.format != "dcase":
        given = [flag for flag, v in (("--output", args.output), ("--median-filter", args.median_filter),
                                      ("--min-duration", args.min_duration)) if v]
        if given:
            raise ConfigError(f"{', '.join(given)}: only with --format dcase")
        return None
    if args.threshold is None:
        raise ConfigError("--format dcase needs --threshold T (an event is a run of frames scoring above T)")
    if args.median_filter < 0 or args.min_duration < 0:
        raise ConfigError("--median-filter and --min-duration must be >= 0 seconds")
    fs = meta.get("frame_seconds")
    if fs is None:
        raise TFScenesError(f"{args.export_dir}: the export's metadata has no frame_seconds (the hop of its frame "
                            "outputs), needed by --format dcase; export the run again")
    if plan is not None and plan[1] != plan[0]:
        raise ConfigError("--format dcase with --windows: the windows must not overlap (--hop equal to the window "
                          "length), so that every frame is scored once")
    median = median_frames(args.median_filter, fs)
    if median > 1:
        log.info("median filter over %d frames (%g s)", median, median * fs)
    return EventOptions(float(args.threshold), float(fs), median, float(args.min_duration), args.output,
                        Path(args.export_dir))


def file_events(fn, path, *, sr: int, min_samples, clip: int | None, labels: dict, opts: EventOptions) -> list:
    """One file's events: the model on the whole file, or on its first `clip` samples."""
    from .audio import read_audio

    wav, _ = read_audio(path, sr=sr, mono=True, min_samples=min_samples, num_samples=clip)
    end = min(_seconds(path), len(wav) / sr) if clip else len(wav) / sr  # not into the zero padding
    return join_events(opts.events(_run_model(fn, wav, path), labels, 0.0, end), opts.min_duration)


def window_events(fn, path, *, sr: int, window: int, labels: dict, opts: EventOptions) -> list:
    """One file's events over back-to-back windows (decoded in blocks); an event running across
    a window boundary is joined into one."""
    from .audio import iter_audio_blocks

    found, n = [], 0
    for start, wav, filled in windows(iter_audio_blocks(path, sr, block_seconds=max(10.0, window / sr)),
                                      window, window):
        found += opts.events(_run_model(fn, wav, path), labels, start / sr, (start + filled) / sr)
        n += 1
    if n == 0:
        raise AudioError(path, "no audio samples in file")
    return join_events(found, opts.min_duration)


def window_plan(args, clip: int | None, sr: int, min_samples) -> tuple[int, int] | None:
    """(window, hop) in samples for --windows / --hop, or None without --windows."""
    if args.windows is None:
        if args.hop is not None:
            raise ConfigError("--hop needs --windows")
        return None
    if args.windows == "model":
        if clip is None:
            raise ConfigError("--windows: this export takes whole clips of any length (no fixed clip length "
                              "to use as the window); give the window length: --windows SECONDS")
        window = clip
    else:
        try:
            seconds = float(args.windows)
        except ValueError:
            raise ConfigError(f"--windows {args.windows!r}: expected a length in seconds") from None
        if not seconds > 0:
            raise ConfigError(f"--windows {args.windows}: the window length must be > 0 seconds")
        window = int(round(seconds * sr))
    if min_samples and window < int(min_samples):
        raise ConfigError(f"--windows: {window / sr:g} s is shorter than the {int(min_samples)} samples "
                          f"({int(min_samples) / sr:g} s) this model needs per input")
    if clip is not None and window > clip:
        raise ConfigError(f"--windows: {window / sr:g} s is longer than the model's clip length {clip / sr:g} s "
                          "(the model would use only the first part of each window)")
    hop = window if args.hop is None else int(round(args.hop * sr))
    if not 0 < hop <= window:
        raise ConfigError(f"--hop {args.hop}: must be > 0 and at most the window length ({window / sr:g} s)")
    if clip is not None and window < clip:
        log.warning("windows of %g s are shorter than the model's clip length %g s: the model zero-pads each one",
                    window / sr, clip / sr)
    return window, hop


def run(args) -> int:
    from .audio import summarised_warnings
    from .io_utils import dumps_json

    fn, meta, labels = load_export(args.export_dir)
    sr = int(meta["input"]["sample_rate"])
    min_samples = meta["input"].get("min_samples")
    clip = model_clip_samples(fn, meta)
    plan = window_plan(args, clip, sr, min_samples)
    opts = event_options(args, meta, plan)
    common = dict(sr=sr, labels=labels, top=args.top, threshold=args.threshold,
                  frame_seconds=meta.get("frame_seconds"))
    failed = 0
    with summarised_warnings("tf-scenes predict"):
        for path in args.audio:
            try:
                if opts is not None:
                    events = (file_events(fn, path, sr=sr, min_samples=min_samples, clip=clip, labels=labels,
                                          opts=opts) if plan is None else
                              window_events(fn, path, sr=sr, window=plan[0], labels=labels, opts=opts))
                    print("".join(f"{path}\t{on:.3f}\t{off:.3f}\t{label}\n" for on, off, label in events),
                          end="", flush=True)
                    continue
                if plan is None:
                    line = predict_file(fn, path, min_samples=min_samples, clip=clip, **common)
                else:
                    line = predict_windows(fn, path, window=plan[0], hop=plan[1], **common)
            except (AudioError, _Skip) as e:
                print(f"tf-scenes predict: skipping {e}", file=sys.stderr)
                failed += 1
                continue
            print(dumps_json(line), flush=True)
    return 2 if failed else 0
