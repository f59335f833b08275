"""`tf-scenes reproduce STUDY`: run one paper's study end to end from its profile config.

    tf-scenes reproduce STUDY --profile quick
    tf-scenes reproduce STUDY --profile paper --data /data/DATASET_ROOT
    tf-scenes reproduce STUDY --config my.yaml --set train.batch_size=16
    tf-scenes reproduce --list            # studies and their profiles

Studies are the families of tf_scenes.families; profiles are the files
experiments/<study>/configs/<profile>.yaml.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from tf_scenes.errors import ConfigError
from tf_scenes import families


def get_study(name: str):
    """The :class:`~tf_scenes.experiments.study.Study` of a family."""
    return importlib.import_module(families.study_module(name)).STUDY


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
    parser.add_argument("study", nargs="?", choices=list(families.FAMILIES), help="which paper's study")
    parser.add_argument("--list", action="store_true", help="list the studies and their profiles, and stop")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config (profile, overrides, --data) as YAML, and stop")
    parser.add_argument("--profile", default="quick", help="config profile (experiments/STUDY/configs/PROFILE.yaml)")
    parser.add_argument("--config", type=Path, help="a config file instead of a profile")
    parser.add_argument("--data", help="dataset root (real or synthetic); default: the synthetic default under data/")
    parser.add_argument("--out", type=Path, help="output folder (default results/STUDY)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="cache root for features, augmentations and remixes (default: $TF_SCENES_CACHE, "
                             "else ~/.cache/tf-scenes)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.epochs=3 (repeatable)")


def list_studies() -> str:
    """Every study with its paper and each profile with its description."""
    lines = []
    for name in families.FAMILIES:
        study = get_study(name)
        lines.append(f"{name}: {families.get(name).title}")
        for profile, text in study.profiles().items():
            lines.append(f"    {profile:8s} {text}")
    return "\n".join(lines)


def run(args) -> int:
    from .study import cache_root, run_study

    if args.list:
        print(list_studies())
        return 0
    if not args.study:
        raise ConfigError(f"name a study: {', '.join(families.FAMILIES)} (tf-scenes reproduce --list shows their profiles)")
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.root={args.data}")
    cfg = load_study_config(args.study, args.profile, args.config, overrides)
    if args.print_config:
        from tf_scenes.config import dump_yaml

        print(dump_yaml(cfg), end="")
        return 0
    out = args.out or Path("results") / args.study
    run_study(get_study(args.study), cfg, Path(out), cache_dir=cache_root(args.cache_dir))
    return 0
