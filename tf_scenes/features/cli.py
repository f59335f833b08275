"""`tf-scenes features CONFIG AUDIO... --out OUT`: features of audio files under a named config.

Each file is read as mono float32 (resampled once with soxr to the config's rate; with a fixed clip
length only the samples used are decoded) and its features, (frames, mel_bands, channels) float32,
are written atomically as .npy.

* One audio file: --out is the .npy file to write.
* Several files and/or folders (every *.wav / *.flac below a folder, recursively): --out is a
  folder; each file's features go to OUT/<its path below the folder given>.npy (a file given by
  itself: OUT/<its name>.npy). Two inputs that would write the same .npy are refused before any
  work. All files are computed in one process (TensorFlow starts once); a file that cannot be read
  or is too short gets one line on stderr and the others are still written (exit code 2 then).
  Resampling / down-mixing warnings are counted in one line per kind; a progress bar is drawn on a
  terminal; one summary line ends the run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .config import feature_configs

    parser.add_argument("config", help=f"feature config: {', '.join(feature_configs())}")
    parser.add_argument("audio", type=Path, nargs="+",
                        help="audio files (wav, flac, ...) and/or folders (every *.wav and *.flac below them)")
    parser.add_argument("--out", type=Path, required=True,
                        help="one audio file: the .npy file to write; several files or a folder: the folder to "
                             "write one .npy per file into (FOLDER/a/b.wav -> OUT/a/b.npy, FILE.wav -> OUT/FILE.npy)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set n_mels=64 (repeatable)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (one is drawn only when stderr is a terminal)")


def run(args) -> int:
    from ..config import apply_overrides, from_dict
    from .config import FeatureConfig, config_to_dict, get_feature_config

    cfg = get_feature_config(args.config)
    if args.overrides:
        cfg = from_dict(FeatureConfig, apply_overrides(config_to_dict(cfg), args.overrides), prefix="features")
    inputs = [Path(a) for a in args.audio]
    if len(inputs) == 1 and not inputs[0].is_dir():
        return _one_file(cfg, inputs[0], Path(args.out))
    return _many_files(cfg, inputs, Path(args.out), progress=not args.no_progress)


def _one_file(cfg, audio: Path, out: Path) -> int:
    from ..audio import read_audio
    from ..errors import ConfigError, OutputDirError
    from ..io_utils import atomic_save_npy, ensure_writable_dir
    from .config import n_frames

    if out.is_dir():
        raise OutputDirError(f"{out}: is a directory; --out takes the .npy file to write (e.g. {out / 'x.npy'})")
    if out.suffix != ".npy":
        raise ConfigError(f"--out {out}: the output must be a .npy file")
    # A config with a fixed clip length uses only its first clip_samples: only those are decoded
    # (cutting or zero-padding is logged).
    x, _ = read_audio(audio, sr=cfg.sample_rate, mono=True, num_samples=cfg.clip_samples)
    n_frames(cfg, x.shape[0])  # ConfigError naming the config if the audio is too short

    from .frontend import extract

    feats = extract(cfg, x)
    ensure_writable_dir(out.parent if str(out.parent) else Path("."), min_free_bytes=feats.nbytes + 2**20)
    atomic_save_npy(out, feats)
    print(f"{out}: {cfg.name} features {tuple(feats.shape)} (frames, mel_bands, channels) float32")
    return 0


def plan_outputs(inputs: list[Path], out: Path) -> list[tuple[Path, Path]]:
    """(audio file, .npy to write) for each input file and each *.wav / *.flac below each input
    folder (sorted), the .npy mirroring the file's path below its folder under `out`. A file listed
    twice is planned once; two files that would write the same .npy raise ConfigError naming both."""
    from ..errors import ConfigError

    plan: dict[Path, Path] = {}
    for given in inputs:
        if given.is_dir():
            found = sorted(p for p in given.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not found:
                raise ConfigError(f"{given}: no {' or '.join(AUDIO_SUFFIXES)} files in this folder")
            pairs = [(p, out / p.relative_to(given).with_suffix(".npy")) for p in found]
        else:  # a file, or a path that does not exist (reported with the other unreadable files)
            pairs = [(given, out / Path(given.name).with_suffix(".npy"))]
        for src, dst in pairs:
            if dst in plan:
                if plan[dst].resolve() != src.resolve():
                    raise ConfigError(f"{plan[dst]} and {src} would both be written to {dst}; "
                                      "rename one or compute them in separate runs")
                continue
            plan[dst] = src
    return [(src, dst) for dst, src in plan.items()]


def _many_files(cfg, inputs: list[Path], out: Path, progress: bool) -> int:
    from tqdm.auto import tqdm

    from ..audio import read_audio, summarised_warnings
    from ..errors import ConfigError, OutputDirError, TFScenesError
    from ..io_utils import atomic_save_npy, ensure_writable_dir
    from .config import n_frames

    if out.suffix == ".npy":
        raise ConfigError(f"--out {out}: with several audio files or a folder, --out is the folder to write "
                          "the .npy files into")
    plan = plan_outputs(inputs, out)
    ensure_writable_dir(out)

    from .frontend import extract

    t0 = time.perf_counter()
    shapes, failed = [], 0
    with summarised_warnings("tf-scenes features"):
        # disable=None: tqdm draws the bar only when stderr is a terminal
        for src, dst in tqdm(plan, unit="file", desc=f"features {cfg.name}", disable=None if progress else True):
            try:
                x, _ = read_audio(src, sr=cfg.sample_rate, mono=True, num_samples=cfg.clip_samples)
                n_frames(cfg, x.shape[0])
                feats = extract(cfg, x)
            except (TFScenesError, ValueError) as e:
                text = str(e)
                tqdm.write(f"tf-scenes features: skipping {text if text.startswith(str(src)) else f'{src}: {text}'}",
                           file=sys.stderr)
                failed += 1
                continue
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                atomic_save_npy(dst, feats)
            except OSError as e:  # disk full, permissions: every later file would fail the same way
                raise OutputDirError(f"{dst}: cannot write: {e.strerror or e}") from e
            shapes.append(feats.shape)
    print(_summary(cfg, out, len(plan), shapes, failed, time.perf_counter() - t0))
    return 2 if failed else 0


def _summary(cfg, out: Path, total: int, shapes: list[tuple], failed: int, seconds: float) -> str:
    """One line: where, how many, what shape, how many failed, how long."""
    if not shapes:
        what = f"no features written of {total} files"
    else:
        frames = sorted({s[0] for s in shapes})
        span = str(frames[0]) if len(frames) == 1 else f"{frames[0]}-{frames[-1]}"
        rest = ", ".join(str(d) for d in shapes[0][1:])
        what = f"{len(shapes)} of {total} files, {cfg.name} features ({span}, {rest}) float32"
    tail = f"; {failed} skipped (see above)" if failed else ""
    return f"{out}: {what}{tail} ({seconds:.1f} s)"
