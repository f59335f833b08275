"""`tf-scenes features CONFIG AUDIO --out X.npy`: features of one audio file under a named config.

The file is read as mono float32 (resampled once with soxr to the config's rate, with a logged
warning; with a fixed clip length only the samples used are decoded) and its features, (frames,
mel_bands, channels) float32, are written atomically as .npy.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .config import feature_configs

    parser.add_argument("config", help=f"feature config: {', '.join(feature_configs())}")
    parser.add_argument("audio", type=Path, help="audio file (wav, flac, ...)")
    parser.add_argument("--out", type=Path, required=True, help="output .npy file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set n_mels=64 (repeatable)")


def run(args) -> int:
    from ..audio import read_audio
    from ..config import apply_overrides, from_dict
    from ..errors import ConfigError, OutputDirError
    from ..io_utils import atomic_save_npy, ensure_writable_dir
    from .config import FeatureConfig, config_to_dict, get_feature_config, n_frames

    cfg = get_feature_config(args.config)
    if args.overrides:
        cfg = from_dict(FeatureConfig, apply_overrides(config_to_dict(cfg), args.overrides), prefix="features")
    out = Path(args.out)
    if out.is_dir():
        raise OutputDirError(f"{out}: is a directory; --out takes the .npy file to write (e.g. {out / 'x.npy'})")
    if out.suffix != ".npy":
        raise ConfigError(f"--out {out}: the output must be a .npy file")
    # A config with a fixed clip length uses only its first clip_samples: only those are decoded
    # (cutting or zero-padding is logged).
    x, _ = read_audio(args.audio, sr=cfg.sample_rate, mono=True, num_samples=cfg.clip_samples)
    n_frames(cfg, x.shape[0])  # ConfigError naming the config if the audio is too short

    from .frontend import extract

    feats = extract(cfg, x)
    ensure_writable_dir(out.parent if str(out.parent) else Path("."), min_free_bytes=feats.nbytes + 2**20)
    atomic_save_npy(out, feats)
    print(f"{out}: {cfg.name} features {tuple(feats.shape)} (frames, mel_bands, channels) float32")
    return 0
