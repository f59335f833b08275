"""`tf-scenes reproduce STUDY`: run one paper's study end to end from its profile config.

    tf-scenes reproduce two_stage --profile quick
    tf-scenes reproduce two_stage --profile paper --data /data/TAU-urban-acoustic-scenes-2020-mobile-development
    tf-scenes reproduce two_stage --config my.yaml --set train.batch_size=16

Studies are the families of tf_scenes.families; profiles are the files
experiments/<study>/configs/<profile>.yaml.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from tf_scenes.errors import ConfigError
from tf_scenes.families import FAMILIES, study_module


def get_study(name: str):
    """The :class:`~tf_scenes.experiments.study.Study` of a family."""
    return importlib.import_module(study_module(name)).STUDY


def config_path(study: str, profile: str) -> Path:
    path = get_study(study).config_dir / f"{profile}.yaml"
    if not path.exists():
        names = ", ".join(get_study(study).profiles()) or "none"
        raise ConfigError(f"no profile {profile!r} for {study}: available: {names}")
    return path


def load_study_config(study: str, profile: str = "quick", config=None, overrides=()):
    from tf_scenes.config import load_config

    path = Path(config) if config else config_path(study, profile)
    return load_config(get_study(study).Config, path, list(overrides))


def add_arguments(parser) -> None:
    parser.add_argument("study", choices=list(FAMILIES), help="which paper's study")
    parser.add_argument("--profile", default="quick", help="config profile (experiments/STUDY/configs/PROFILE.yaml)")
    parser.add_argument("--config", type=Path, help="a config file instead of a profile")
    parser.add_argument("--data", help="dataset root (real or synthetic); default: the synthetic default under data/")
    parser.add_argument("--out", type=Path, help="output folder (default results/STUDY)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="cache root for features, augmentations and remixes (default: $TF_SCENES_CACHE, "
                             "else ~/.cache/tf-scenes)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.epochs=3 (repeatable)")


def run(args) -> int:
    from .study import cache_root, run_study

    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.root={args.data}")
    cfg = load_study_config(args.study, args.profile, args.config, overrides)
    out = args.out or Path("results") / args.study
    run_study(get_study(args.study), cfg, Path(out), cache_dir=cache_root(args.cache_dir))
    return 0
