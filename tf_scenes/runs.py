"""Self-describing run folders.

A run folder holds everything needed to know what was run and to resume it:
    config.yaml     resolved config (after overrides)
    run.json        name, seed, command line, status, start/end times
    versions.json   python, platform, tf-scenes, TensorFlow, Keras, numpy versions and code version
    history.csv     per-epoch logs (written by the trainer)
    metrics.json    final metrics
    checkpoints/    per-epoch checkpoints (resume)
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
import sys
from pathlib import Path

from .config import dump_yaml, to_dict
from .io_utils import atomic_write_json, atomic_write_text, ensure_writable_dir


def code_version() -> str:
    """Git commit of the tf-scenes checkout (with '+dirty'), or the package version."""
    from . import __version__

    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        if sha:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return f"tf-scenes {__version__}"


def package_versions() -> dict:
    from importlib import metadata

    from . import __version__

    out = {"python": sys.version.split()[0], "platform": platform.platform(),
           "machine": platform.machine(), "tf_scenes": __version__, "code_version": code_version()}
    for pkg in ("tensorflow", "keras", "numpy", "scipy", "librosa", "soundfile", "soxr", "scikit-learn"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def create_run_dir(path, config=None, seed: int | None = None, name: str | None = None) -> Path:
    """Create (or reopen, for resume) a run folder and write its description.

    If the folder already has a config.yaml that differs from `config`, refuse to mix runs.
    """
    path = ensure_writable_dir(path)
    cfg_text = dump_yaml(config) if config is not None else None
    cfg_file = path / "config.yaml"
    if cfg_text is not None:
        if cfg_file.exists() and cfg_file.read_text() != cfg_text:
            from .errors import ConfigError

            raise ConfigError(f"{path}: this run folder holds a run with another config; "
                              f"use a new output folder or delete {cfg_file}")
        atomic_write_text(cfg_file, cfg_text)
    run_file = path / "run.json"
    info = json.loads(run_file.read_text()) if run_file.exists() else {"created": _now(), "attempts": []}
    info.update({"name": name or path.name, "seed": seed, "status": "running"})
    info["attempts"].append({"started": _now(), "argv": sys.argv})
    atomic_write_json(run_file, info)
    atomic_write_json(path / "versions.json", package_versions())
    return path


def finish_run(path, metrics: dict | None = None, status: str = "finished") -> None:
    path = Path(path)
    if metrics is not None:
        atomic_write_json(path / "metrics.json", metrics)
    run_file = path / "run.json"
    info = json.loads(run_file.read_text()) if run_file.exists() else {"attempts": []}
    info["status"] = status
    info["finished"] = _now()
    atomic_write_json(run_file, info)


def is_finished(path, config, required: tuple[str, ...] = ("model.json",)) -> bool:
    """True when `path` holds a finished run of exactly `config` (a dataclass or plain data) and
    the `required` files; studies reuse such runs instead of training again."""
    import yaml

    path = Path(path)
    try:
        info = json.loads((path / "run.json").read_text())
        same = yaml.safe_load((path / "config.yaml").read_text()) == yaml.safe_load(dump_yaml(config))
    except (OSError, ValueError, yaml.YAMLError):
        return False
    return info.get("status") == "finished" and same and all((path / f).exists() for f in required)


def read_run_config(path) -> dict:
    import yaml

    return yaml.safe_load((Path(path) / "config.yaml").read_text())


__all__ = ["create_run_dir", "finish_run", "is_finished", "read_run_config", "package_versions", "code_version", "to_dict"]
