"""Scene + event remix for weakly supervised SED (Deshmukh et al. 2021, after Kong et al.'s
``utils/create_mixture_yaml.py`` / ``utils/create_mixed_audio.py`` in
https://github.com/qiuqiangkong/sed_time_freq_segmentation).

Events are FSDKaggle2018's manually verified clips, dealt into ``n_folds`` folds by a seeded
shuffle.  Each mixture is 10 s of one acoustic scene with 3 events of one fold at 0.5, 3.0 and
5.5 s, each cut to at most 2.0 s (so they never overlap).  The scene is scaled to RMS 1 and each
event to RMS ``10 ** (snr / 20)``, the RMS being that of the whole (resampled) source clip; the
sum is peak-normalised and written as 16-bit mono wav at 32 kHz.  The same mixtures can be made
inside a tf.data pipeline from the plan alone (:mod:`tf_scenes.pipelines.remix`), so that a
study needs no mixture files on disk (``build_remix(..., audio=False)`` writes the plan only).

The plan (which scene and which events go in which mixture) depends on the seed and the inputs
only, never on the SNR: the folders of several SNRs hold the same mixtures at different levels.

Output, one folder per SNR::

    out_dir/snr{S}/audio/{name}.wav
    out_dir/snr{S}/mixture.yaml     list of {name, fold, scene_file, events: [{event_file, label,
                                    onset, offset} x 3]}
    out_dir/snr{S}/manifest.json    parameters + plan hash, ``audio``: whether the mixtures were
                                    written; written last (its presence = complete)

A folder whose manifest matches the requested build is skipped (a plan-only folder counts as
built for a plan-only request, and gets its mixtures written when they are asked for); one with
another manifest is an error unless ``overwrite=True``.  Nothing here imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import AudioError, ConfigError, DataFormatError, OutputDirError

log = logging.getLogger(__name__)

FORMAT = "tf-scenes-remix/1"
CLIP_SECONDS = 10.0
ONSETS = (0.5, 3.0, 5.5)
MAX_EVENT_SECONDS = 2.0
PAPER_MIXTURES_PER_FOLD = 2000
SAMPLE_RATE = 32000


@dataclass(frozen=True)
class RemixEvent:
    """One event of a mixture: FSDKaggle2018 file name (in ``audio_train/``), label, seconds."""

    event_file: str
    label: str
    onset: float
    offset: float

    def to_dict(self) -> dict:
        return {"event_file": self.event_file, "label": self.label, "onset": self.onset,
                "offset": self.offset}


@dataclass(frozen=True)
class Mixture:
    """One planned mixture: name, fold (1-based), scene file (relative to the scenes root)."""

    name: str
    fold: int
    scene_file: str
    events: tuple[RemixEvent, ...]

    def to_dict(self) -> dict:
        return {"name": self.name, "fold": self.fold, "scene_file": self.scene_file,
                "events": [e.to_dict() for e in self.events]}


@dataclass(frozen=True)
class RemixRecord:
    """One mixture read back by :func:`read_remix`; source and line: mixture.yaml and the 1-based
    line of the entry (None when the file was not written by :func:`build_remix`), not compared."""

    path: Path
    name: str
    fold: int
    scene_file: str
    labels: frozenset[str]
    events: tuple[RemixEvent, ...]
    source: Path | None = field(default=None, compare=False, repr=False)
    line: int | None = field(default=None, compare=False, repr=False)


# --------------------------------------------------------------------------------------------
# Planning (no audio decoding: headers only)
# --------------------------------------------------------------------------------------------

def assign_folds(fnames: Sequence[str], n_folds: int = 4, seed: int = 0,
                 labels: Mapping[str, str] | None = None) -> dict[str, int]:
    """Seeded shuffle of the (sorted) file names dealt round-robin into folds 1..n_folds.

    labels (file name -> class): deal each class's clips in turn (classes sorted, the clips of
    each shuffled, the round-robin carried on from one class to the next), so that every fold
    holds each class's clips to within one, and the folds' sizes to within one.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    names = sorted(set(fnames))
    if labels is None:
        order = np.random.default_rng([seed, 0]).permutation(len(names))
        return {names[j]: rank % n_folds + 1 for rank, j in enumerate(order)}
    rng = np.random.default_rng([seed, 3])
    dealt: list[str] = []
    for label in sorted({labels[f] for f in names}):
        group = [f for f in names if labels[f] == label]
        dealt.extend(group[j] for j in rng.permutation(len(group)))
    return {f: rank % n_folds + 1 for rank, f in enumerate(dealt)}


def _event_stream(n_events: int, n_needed: int, rng: np.random.Generator, per_mixture: int) -> list[int]:
    """Indices 0..n_events-1 in shuffled passes (Kong et al.'s ``repeat_array``), long enough for
    `n_needed`; a pass is redrawn if it would repeat a clip inside the mixture straddling two passes."""
    stream: list[int] = []
    while len(stream) < n_needed:
        straddle = stream[len(stream) - len(stream) % per_mixture:]
        for _ in range(100):
            perm = rng.permutation(n_events).tolist()
            if not set(perm[: per_mixture - len(straddle)]) & set(straddle):
                break
        stream.extend(perm)
    return stream[:n_needed]


def plan_remix(events: Sequence[tuple[str, str]], durations: Mapping[str, float] | Callable[[str], float],
               scene_files: Sequence[str], *, n_folds: int = 4, mixtures_per_fold: int | None = None,
               seed: int = 0, class_balanced_folds: bool = False) -> list[Mixture]:
    """Plan the mixtures.

    Args:
      events: (file name, label) of the verified event clips.
      durations: file name -> duration in seconds, a mapping or a function (only the clips
        drawn are asked for).
      scene_files: scene clips (relative paths); each mixture takes the next one of a seeded
        shuffle, reshuffling (with a warning) when there are more mixtures than scenes.
      n_folds: event folds.
      mixtures_per_fold: None = the paper's 2,000, capped so that no fold reuses an event clip
        (``min(2000, smallest fold // 3)``); a number = exactly that many per fold, reusing event
        clips in fresh shuffled passes (as the reference) when a fold is too small.
      seed: seeds the folds, the scene order and the event draws (independent streams).
      class_balanced_folds: deal each class's clips evenly into the folds (:func:`assign_folds`
        with labels) instead of shuffling all clips together.
    """
    if not events:
        raise ValueError("no event clips to mix")
    if not scene_files:
        raise ValueError("no scene clips to mix into")
    duration_of = durations if callable(durations) else durations.__getitem__
    labels = dict(events)
    folds = assign_folds(list(labels), n_folds, seed, labels=labels if class_balanced_folds else None)
    by_fold = {k: sorted(f for f, v in folds.items() if v == k) for k in range(1, n_folds + 1)}
    per_mix = len(ONSETS)
    smallest = min(len(v) for v in by_fold.values())
    if smallest < per_mix:
        raise ValueError(f"a fold has only {smallest} event clip(s); need at least {per_mix} per fold "
                         f"({len(labels)} clips in {n_folds} folds)")
    if mixtures_per_fold is None:
        per_fold = min(PAPER_MIXTURES_PER_FOLD, smallest // per_mix)
        if per_fold < PAPER_MIXTURES_PER_FOLD:
            log.warning("%d mixtures per fold instead of the paper's %d: the smallest fold has %d "
                        "event clips and none is reused (mixtures_per_fold / --per-fold %d "
                        "reuses clips like the reference)", per_fold, PAPER_MIXTURES_PER_FOLD, smallest,
                        PAPER_MIXTURES_PER_FOLD)
    else:
        if mixtures_per_fold < 1:
            raise ValueError(f"mixtures_per_fold must be >= 1, got {mixtures_per_fold}")
        per_fold = int(mixtures_per_fold)
    n_total = per_fold * n_folds

    scenes = sorted(scene_files)
    scene_rng = np.random.default_rng([seed, 1])
    scene_order: list[int] = []
    while len(scene_order) < n_total:
        scene_order.extend(scene_rng.permutation(len(scenes)).tolist())
    if n_total > len(scenes):
        log.warning("%d mixtures but only %d scene clips: scenes are reused", n_total, len(scenes))

    width = max(5, len(str(n_total - 1)))
    mixtures: list[Mixture] = []
    for fold in range(1, n_folds + 1):
        pool = by_fold[fold]
        rng = np.random.default_rng([seed, 2, fold])
        stream = _event_stream(len(pool), per_fold * per_mix, rng, per_mix)
        for m in range(per_fold):
            evs = []
            for j, onset in enumerate(ONSETS):
                fname = pool[stream[m * per_mix + j]]
                length = min(float(duration_of(fname)), MAX_EVENT_SECONDS)
                evs.append(RemixEvent(fname, labels[fname], onset, round(onset + length, 6)))
            i = len(mixtures)
            mixtures.append(Mixture(f"{i:0{width}d}", fold, scenes[scene_order[i]], tuple(evs)))
    return mixtures


def plan_digest(mixtures: Iterable[Mixture]) -> str:
    """sha256 of the plan (stable JSON), recorded in the manifest."""
    text = json.dumps([m.to_dict() for m in mixtures], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Mixing
# --------------------------------------------------------------------------------------------

def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


# The one-line problems of sources whose level cannot be set (also raised by the tf.data route).
SILENT_SCENE = "scene clip is silent (RMS 0): cannot scale it to RMS 1"
SILENT_EVENT = "event clip is silent (RMS 0): cannot set its SNR"
# write_audio's clip before integer PCM: full scale +1.0 itself is not representable.
PCM_CLIP_HIGH = 1.0 - 2.0 ** -23


def clip_samples(sr: int = SAMPLE_RATE) -> int:
    """Samples of one mixture (10 s) at `sr`."""
    return int(round(CLIP_SECONDS * sr))


def min_scene_samples(sr: int = SAMPLE_RATE) -> int:
    """Shortest scene accepted (10 s less 10 ms; the rest is zero-padded)."""
    return clip_samples(sr) - sr // 100


def event_span(event: RemixEvent, sr: int = SAMPLE_RATE) -> tuple[int, int]:
    """(first sample, end sample) of an event's slot in the mixture before it is cut to the clip's
    own length and to the mixture: ``round(onset * sr)``, ``round(offset * sr)``."""
    return int(round(event.onset * sr)), int(round(event.offset * sr))


def source_paths(mixture, events_root, scenes_root) -> tuple[Path, list[Path]]:
    """(scene file, event files) of a mixture (a :class:`Mixture` or :class:`RemixRecord`)."""
    return (Path(scenes_root) / mixture.scene_file,
            [Path(events_root) / "audio_train" / ev.event_file for ev in mixture.events])


def _read(path: Path, sr: int) -> np.ndarray:
    # Resampled with soxr inside read_audio (the same samples as resampling the mono signal);
    # build_remix summarises the per-file warnings (thousands of files) in one line per kind.
    from ..audio import read_audio

    return read_audio(path, sr=sr)[0]


def load_sources(mixture: Mixture, events_root, scenes_root, sr: int = SAMPLE_RATE
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Read a mixture's scene (exactly 10 s at `sr`) and its event clips (whole, at `sr`).

    Raises AudioError for a scene shorter than 10 s (10 ms tolerance, zero-padded) or silent
    sources, whose level cannot be set.
    """
    n = clip_samples(sr)
    scene_path, event_paths = source_paths(mixture, events_root, scenes_root)
    scene = _read(scene_path, sr)
    if scene.shape[0] < min_scene_samples(sr):
        raise AudioError(scene_path, f"scene is {scene.shape[0] / sr:.3f} s, need {CLIP_SECONDS:g} s")
    scene = np.pad(scene[:n], (0, max(0, n - scene.shape[0])))
    if rms(scene) == 0:
        raise AudioError(scene_path, SILENT_SCENE)
    clips = []
    for path in event_paths:
        x = _read(path, sr)
        if rms(x) == 0:
            raise AudioError(path, SILENT_EVENT)
        clips.append(x)
    return scene, clips


def mix_components(scene: np.ndarray, clips: Sequence[np.ndarray], mixture: Mixture, snr: float,
                   sr: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
    """Place the events in the scene at `snr` dB.

    Returns:
      scene: (samples,) the scene at RMS 1.
      events: (n_events, samples) each event alone in its slot, scaled so that the whole source
        clip has RMS 10 ** (snr / 20), then cut to [onset, offset).
      mix: scene + events (before peak normalisation).
      normalised: mix / max|mix| (what is written, after write_audio's clip to
        [-1, PCM_CLIP_HIGH] and the conversion to 16-bit PCM).
    """
    scene = np.asarray(scene, dtype=np.float64)
    scene = scene / rms(scene)
    gain = 10.0 ** (snr / 20.0)
    tracks = np.zeros((len(clips), scene.shape[0]))
    for k, (clip, ev) in enumerate(zip(clips, mixture.events)):
        start, stop = event_span(ev, sr)
        stop = min(stop, start + clip.shape[0], scene.shape[0])
        clip = np.asarray(clip, dtype=np.float64)
        tracks[k, start:stop] = clip[: stop - start] * (gain / rms(clip))
    mix = scene + tracks.sum(axis=0)
    return {"scene": scene, "events": tracks, "mix": mix, "normalised": mix / np.max(np.abs(mix))}


def mixture_components(mixture: Mixture, events_root, scenes_root, snr: float,
                       sr: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
    """Read the sources of `mixture` and return :func:`mix_components` at `snr`."""
    scene, clips = load_sources(mixture, events_root, scenes_root, sr)
    return mix_components(scene, clips, mixture, snr, sr)


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------

def snr_dirname(snr: float) -> str:
    return f"snr{snr:g}"


def list_scenes(scenes_root) -> list[str]:
    """Scene clips of a TAU-format folder: ``audio/*.wav`` relative to the root, sorted."""
    audio = Path(scenes_root) / "audio"
    if not audio.is_dir():
        raise DataFormatError(audio, "scene audio folder not found",
                              hint="--scenes must be a TAU-format root holding audio/*.wav")
    files = sorted(f"audio/{p.name}" for p in audio.glob("*.wav"))
    if not files:
        raise DataFormatError(audio, "no .wav files in the scene audio folder")
    return files


def read_events(events_root) -> list[tuple[str, str]]:
    """(fname, label) of FSDKaggle2018's manually verified clips (train.csv + audio_train/)."""
    from ..datasets import fsd2018

    return [(r.fname, r.label) for r in fsd2018.load(events_root, verified_only=True, check_files=True)]


def _duration_reader(events_root):
    from ..audio import audio_info

    cache: dict[str, float] = {}

    def duration_of(fname: str) -> float:
        if fname not in cache:
            info = audio_info(Path(events_root) / "audio_train" / fname)
            cache[fname] = info.frames / info.samplerate
        return cache[fname]

    return duration_of


def _dump_yaml(data) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False)


def _manifest(snr, *, seed, n_folds, per_fold, sr, events_root, scenes_root, mixtures, audio=True) -> dict:
    return {"format": FORMAT, "snr": float(snr), "seed": int(seed), "n_folds": int(n_folds),
            "mixtures_per_fold": per_fold, "sample_rate": int(sr), "clip_seconds": CLIP_SECONDS,
            "onsets": list(ONSETS), "max_event_seconds": MAX_EVENT_SECONDS,
            "events_root": str(Path(events_root).resolve()),
            "scenes_root": str(Path(scenes_root).resolve()),
            "n_mixtures": len(mixtures), "plan_sha256": plan_digest(mixtures), "audio": bool(audio)}


def _comparable(manifest: dict) -> dict:
    # The source roots are recorded, not compared: moving the datasets does not change the remix
    # (the plan hash covers every choice of scene and event). Whether the mixtures were written
    # is not part of what the remix is (a plan-only folder gets its audio when asked for).
    return {k: v for k, v in manifest.items() if k not in ("events_root", "scenes_root", "audio")}


def read_manifest(folder) -> dict | None:
    """The manifest of one SNR folder (None when absent or unreadable: an incomplete build).
    Manifests written before plan-only folders existed have no ``audio`` key: they hold audio."""
    try:
        found = json.loads((Path(folder) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict):
        return None
    found.setdefault("audio", True)
    return found


def _is_built(folder: Path, manifest: dict, mixtures: Sequence[Mixture], overwrite: bool, audio: bool) -> bool:
    path = folder / "manifest.json"
    if not path.exists():
        return False
    found = read_manifest(folder)
    if found is not None and _comparable(found) == _comparable(manifest):
        if not (folder / "mixture.yaml").is_file():
            log.warning("%s: manifest matches but mixture.yaml is missing: rebuilding", folder)
            return False
        if not audio:
            return True
        if not found["audio"]:
            # Audio files left in a plan-only folder are never trusted: they may be another remix's.
            log.info("%s: holds the plan only; writing its %d mixtures", folder, len(mixtures))
            return False
        missing = [m.name for m in mixtures if not (folder / "audio" / f"{m.name}.wav").is_file()]
        if not missing:
            return True
        log.warning("%s: manifest matches but %d audio file(s) are missing: rebuilding", folder, len(missing))
        return False
    if overwrite:
        log.warning("%s: holds another remix; overwriting it", folder)
        return False
    diff = sorted(k for k in _comparable(manifest)
                  if not isinstance(found, dict) or found.get(k) != manifest[k])
    raise OutputDirError(f"{folder}: already holds a different remix (differs in: {', '.join(diff)}); "
                         f"choose another output folder or pass overwrite=True (--overwrite)")


def build_remix(events_root, scenes_root, out_dir, snrs: Sequence[float] = (0, 10, 20), seed: int = 0,
                mixtures_per_fold: int | None = None, n_folds: int = 4, sr: int = SAMPLE_RATE, *,
                overwrite: bool = False, progress: bool = True, audio: bool = True,
                class_balanced_folds: bool = False) -> dict[float, Path]:
    """Build the remix at every SNR (see the module docstring).

    Args:
      events_root: FSDKaggle2018 root (train.csv, audio_train/).
      scenes_root: TAU-format scene root (audio/*.wav, any sample rate; resampled to `sr`).
      out_dir: output root; one ``snr{S}`` folder per SNR.
      snrs: event-to-scene SNRs in dB (paper: 0, 10, 20).
      mixtures_per_fold: see :func:`plan_remix` (None: 2,000 capped by the clips available).
      overwrite: replace SNR folders that hold a different remix (otherwise OutputDirError).
      audio: write the mixtures; False writes mixture.yaml and the manifest only (no source is
        decoded), for mixing inside the input pipeline (tf_scenes.pipelines.remix).
      class_balanced_folds: see :func:`plan_remix` (another plan: build it into another folder).

    Returns: {snr: folder}.
    """
    from tqdm import tqdm

    from ..audio import summarised_warnings, write_audio
    from ..io_utils import atomic_write_json, atomic_write_text, ensure_writable_dir

    snrs = [float(s) for s in snrs]
    if not snrs:
        raise ConfigError("give at least one SNR")
    if not all(math.isfinite(s) for s in snrs):
        raise ConfigError(f"SNRs must be finite, got {snrs}")
    if len({snr_dirname(s) for s in snrs}) != len(snrs):
        raise ConfigError(f"repeated SNR in {snrs}")
    if n_folds < 2:
        raise ConfigError(f"n_folds must be >= 2, got {n_folds}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    if mixtures_per_fold is not None and mixtures_per_fold < 1:
        raise ConfigError(f"mixtures per fold must be >= 1, got {mixtures_per_fold}")
    if sr < 8000:
        raise ConfigError(f"sample rate {sr} Hz is too low (the paper uses 32000)")
    out_dir = ensure_writable_dir(out_dir)

    events = read_events(events_root)
    scenes = list_scenes(scenes_root)
    try:
        mixtures = plan_remix(events, _duration_reader(events_root), scenes, n_folds=n_folds,
                              mixtures_per_fold=mixtures_per_fold, seed=seed,
                              class_balanced_folds=class_balanced_folds)
    except ValueError as e:
        raise DataFormatError(Path(events_root) / "train.csv", str(e)) from e
    per_fold = len(mixtures) // n_folds
    yaml_text = _dump_yaml([m.to_dict() for m in mixtures])

    folders = {s: out_dir / snr_dirname(s) for s in snrs}
    manifests = {s: _manifest(s, seed=seed, n_folds=n_folds, per_fold=per_fold, sr=sr,
                              events_root=events_root, scenes_root=scenes_root, mixtures=mixtures, audio=audio)
                 for s in snrs}
    todo = [s for s in snrs if not _is_built(folders[s], manifests[s], mixtures, overwrite, audio)]
    for s in snrs:
        if s not in todo:
            log.info("%s: already built, skipping", folders[s])
    if not todo:
        return folders
    for s in todo:
        stale = folders[s] / "manifest.json"
        if stale.exists():
            stale.unlink()  # an interrupted rebuild must not look complete
        (folders[s] / "audio" if audio else folders[s]).mkdir(parents=True, exist_ok=True)

    with summarised_warnings("remix sources"):
        for mixture in tqdm(mixtures if audio else [], desc=f"remix {', '.join(snr_dirname(s) for s in todo)}",
                            unit="mix", disable=None if (progress and audio) else True):
            scene, clips = load_sources(mixture, events_root, scenes_root, sr)
            for s in todo:
                parts = mix_components(scene, clips, mixture, s, sr)
                write_audio(folders[s] / "audio" / f"{mixture.name}.wav", parts["normalised"], sr,
                            subtype="PCM_16")
    for s in todo:
        atomic_write_text(folders[s] / "mixture.yaml", yaml_text)
        atomic_write_json(folders[s] / "manifest.json", manifests[s])  # last: marks it complete
        log.info("%s: %d mixtures %s", folders[s], len(mixtures), "written" if audio else "planned (no audio)")
    return folders


# --------------------------------------------------------------------------------------------
# Reading back
# --------------------------------------------------------------------------------------------

_ITEM_START = re.compile(r"^-(?:[ \t]|$)", re.MULTILINE)


def _item_lines_fast(text: str, n_items: int) -> list[int | None]:
    """Lines of the top-level list items when each starts with ``-`` in column 0 (as
    :func:`build_remix` writes them); all None otherwise.  Composing the YAML again would take
    1.8 s for 8,000 mixtures, this scan milliseconds."""
    starts = [text.count("\n", 0, m.start()) + 1 for m in _ITEM_START.finditer(text)]
    return starts if len(starts) == n_items else [None] * n_items


def _item_line(text: str, index: int) -> int | None:
    """1-based line of the `index`-th item of the top-level YAML list (for error messages)."""
    import yaml

    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return node.value[index].start_mark.line + 1
    except Exception:  # the line is a courtesy; never hide the real error
        return None


_EVENT_KEYS = ("event_file", "label", "onset", "offset")


def read_remix(folder, *, classes: Sequence[str] | None = None, check_files: bool = True,
               missing: str = "error", allow_outside_root: bool = False, report=None) -> list[RemixRecord]:
    """Read one SNR folder of a remix (``mixture.yaml`` + ``audio/``).

    Raises DataFormatError naming mixture.yaml (and the line of the bad entry) for malformed
    entries, unknown labels (default: FSDKaggle2018's 41 classes), duplicate names (also two
    spellings of one file), names leading out of the folder (absolute, ``..``, a symlink; accepted
    with ``allow_outside_root``), events outside the clip, and (``check_files``) missing audio
    files.  With ``missing="skip"`` the mixtures whose audio is missing are dropped, logged in one
    line and appended to `report` (a :class:`tf_scenes.datasets.common.LoadReport`).
    """
    import yaml

    from ..datasets import fsd2018
    from ..datasets.common import (OUTSIDE_HINT, apply_missing, check_missing_mode, is_inside, outside_spelling,
                                   real_path)

    check_missing_mode(missing)

    folder = Path(folder)
    path = folder / "mixture.yaml"
    classes = tuple(fsd2018.CLASSES if classes is None else classes)
    if not path.is_file():
        raise DataFormatError(path, "file not found",
                              hint="point at one snr folder of a remix built by `tf-scenes remix`")
    text = path.read_text()
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise DataFormatError(path, f"invalid YAML: {getattr(e, 'problem', e)}",
                              line=mark.line + 1 if mark else None) from e
    if not isinstance(data, list) or not data:
        raise DataFormatError(path, "expected a non-empty list of mixtures")

    def fail(i, problem, hint=None):
        raise DataFormatError(path, f"mixture {i + 1}: {problem}", line=_item_line(text, i), hint=hint)

    real_folder, real_dirs, reals = real_path(folder), {}, {}
    item_lines = _item_lines_fast(text, len(data))
    records, seen = [], {}
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            fail(i, f"expected a mapping, found {type(item).__name__}")
        lacking = [k for k in ("name", "fold", "scene_file", "events") if k not in item]
        if lacking:
            fail(i, f"missing key(s) {', '.join(lacking)}")
        name, fold, events = item["name"], item["fold"], item["events"]
        if not isinstance(name, str) or not name:
            fail(i, f"name must be a non-empty string, found {name!r}")
        if name in seen:
            fail(i, f"duplicate name {name!r} (first as mixture {seen[name] + 1})")
        seen[name] = i
        if not isinstance(fold, int) or isinstance(fold, bool) or fold < 1:
            fail(i, f"fold must be an integer >= 1, found {fold!r}")
        if not isinstance(events, list) or not events:
            fail(i, "events must be a non-empty list")
        evs = []
        for ev in events:
            if not isinstance(ev, dict) or any(k not in ev for k in _EVENT_KEYS):
                fail(i, f"each event needs event_file, label, onset, offset; found {ev!r}")
            label = ev["label"]
            if label not in classes:
                import difflib

                close = difflib.get_close_matches(str(label), classes, n=1)
                fail(i, f"unknown label {label!r}", hint=f"did you mean {close[0]!r}?" if close else None)
            on, off = ev["onset"], ev["offset"]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (on, off)) \
                    or not 0 <= on < off <= CLIP_SECONDS + 1e-6:
                fail(i, f"event {ev['event_file']!r}: need 0 <= onset < offset <= {CLIP_SECONDS:g}, "
                        f"found onset={on!r}, offset={off!r}")
            evs.append(RemixEvent(str(ev["event_file"]), label, float(on), float(off)))
        if "\x00" in name:
            fail(i, f"NUL character in name {name!r}")
        why = outside_spelling(name)
        if why is not None and not allow_outside_root:
            fail(i, f"{why} in name {name!r}: listed files must lie inside the remix folder {folder} "
                    "(audio/NAME.wav)", hint=OUTSIDE_HINT)
        audio = folder / "audio" / f"{name}.wav"
        real = real_path(audio, real_dirs)
        if not allow_outside_root and not is_inside(real, real_folder):
            fail(i, f"audio/{name}.wav resolves to {real}, outside the remix folder {real_folder}",
                 hint="a symlink leads out of it; " + OUTSIDE_HINT)
        if real in reals:
            j = reals[real]
            fail(i, f"name {name!r} is the same file as mixture {j + 1} ({data[j]['name']!r}, line "
                    f"{_item_line(text, j)}): both resolve to {real}", hint="each mixture must be listed once")
        reals[real] = i
        records.append(RemixRecord(audio, name, fold, str(item["scene_file"]),
                                   frozenset(e.label for e in evs), tuple(evs), source=path, line=item_lines[i]))
    if check_files:
        absent = [r for r in records if not r.path.is_file()]
        if absent and missing == "skip" and len(absent) < len(records):
            return apply_missing(records, path, missing="skip", report=report, name=lambda r: r.name,
                                 what="mixture audio file")
        if absent:
            first = absent[0]
            more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
            raise DataFormatError(path, f"{len(absent)} of {len(records)} mixture audio files are missing: "
                                  f"{first.path}{more}", line=_item_line(text, seen[first.name]),
                                  hint="the remix is incomplete; run `tf-scenes remix` again")
    return records


def drop_missing_sources(records: Sequence[RemixRecord], events_root, scenes_root, *, missing: str = "error",
                         report=None) -> list[RemixRecord]:
    """The mixtures whose source files (scene and events) all exist, for mixing them from their plan
    (tf_scenes.pipelines.remix).  Others raise DataFormatError naming mixture.yaml and the missing
    files (``missing="error"``), or are dropped with one warning line and appended to `report`
    (``missing="skip"``; as :func:`read_remix` does with missing mixture files)."""
    from ..datasets.common import apply_missing

    def first_missing(r: RemixRecord) -> Path:
        scene, events = source_paths(r, events_root, scenes_root)
        return next((p for p in (scene, *events) if not p.is_file()), scene)

    if not records:
        return []
    listed_in = records[0].source or "mixture.yaml"
    return apply_missing(records, listed_in, missing=missing, report=report, name=lambda r: r.name,
                         path=first_missing, source=lambda r: r.source or listed_in, what="mixture source file")


def multi_hot(records: Sequence[RemixRecord], classes: Sequence[str] | None = None) -> np.ndarray:
    """(n_records, n_classes) float32 weak labels in `classes` order (default FSDKaggle2018's)."""
    from ..datasets import fsd2018

    classes = tuple(fsd2018.CLASSES if classes is None else classes)
    index = {c: k for k, c in enumerate(classes)}
    y = np.zeros((len(records), len(classes)), dtype=np.float32)
    for i, r in enumerate(records):
        for label in r.labels:
            y[i, index[label]] = 1.0
    return y
