"""`tf-scenes reproduce STUDY`: run one paper's study end to end from its profile config.

    tf-scenes reproduce two_stage --profile quick
    tf-scenes reproduce two_stage --profile paper --data /data/TAU-urban-acoustic-scenes-2020-mobile-development
    tf-scenes reproduce two_stage --config my.yaml --set train.batch_size=16

Profiles are files experiments/configs/{study}_{profile}.yaml.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from tf_scenes.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# study name -> module providing Config (dataclass) and run_study(cfg, out_dir) -> dict
STUDIES = {
    "two_stage": "tf_scenes.experiments.two_stage",
    "dcasenet": "tf_scenes.experiments.dcasenet",
    "weak_sed": "tf_scenes.experiments.weak_sed",
    "raw_waveform": "tf_scenes.experiments.raw_waveform",
}


def profiles(study: str) -> list[str]:
    return sorted(p.stem[len(study) + 1:] for p in CONFIG_DIR.glob(f"{study}_*.yaml"))


def config_path(study: str, profile: str) -> Path:
    path = CONFIG_DIR / f"{study}_{profile}.yaml"
    if not path.exists():
        raise ConfigError(f"no profile {profile!r} for {study}: available: {', '.join(profiles(study)) or 'none'}")
    return path


def add_arguments(parser) -> None:
    parser.add_argument("study", choices=sorted(STUDIES), help="which paper's study")
    parser.add_argument("--profile", default="quick", help="config profile (experiments/configs/STUDY_PROFILE.yaml)")
    parser.add_argument("--config", type=Path, help="a config file instead of a profile")
    parser.add_argument("--data", help="dataset root (real or synthetic); default: the synthetic default under data/")
    parser.add_argument("--out", type=Path, help="output folder (default results/STUDY)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.epochs=3 (repeatable)")


def run(args) -> int:
    from tf_scenes.config import load_config

    module = importlib.import_module(STUDIES[args.study])
    path = args.config or config_path(args.study, args.profile)
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.root={args.data}")
    cfg = load_config(module.Config, path, overrides)
    out = args.out or Path("results") / args.study
    module.run_study(cfg, Path(out))
    return 0
