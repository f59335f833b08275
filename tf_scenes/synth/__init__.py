"""Synthetic stand-ins of the real datasets, written in their exact on-disk formats.

    from tf_scenes.synth import generate
    roots = generate("all", "data", size="small", seed=0)   # {kind: dataset folder}

Kinds and the folder each writes under ``out``:

  asc     TAU-urban-acoustic-scenes-2020-mobile-development   (DCASE 2020 Task 1a)
  tag     FSDKaggle2019                                         (DCASE 2019 Task 2)
  sed     TAU-NIGENS-2020                                       (DCASE 2020 Task 3)
  events  FSDKaggle2018                                         (DCASE 2018 Task 2)
  esc50   ESC-50
  all     all of the above
  remix   events + asc, then the weak-SED remix (tf_scenes.weak_sed.remix.build_remix) into
          ``out/weak_sed_remix``

Sizes: "tiny" (tests: a few dozen files per set), "small" (CPU experiments), "full" (the real
counts).  Output is a pure function of (kind, size, seed): same seed, same bytes, whatever the
number of worker processes (``jobs``; by default every CPU this process may use).  Every dataset
folder carries SYNTHETIC_DATASET.json saying it is synthetic and how it was made; a complete
folder with the same manifest is not regenerated.  Nothing here imports TensorFlow (the
``--report`` probe does, through the feature front-end).
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

KINDS = ("asc", "tag", "sed", "events", "esc50", "remix", "all")
DATASET_KINDS = ("asc", "tag", "sed", "events", "esc50")
SIZES = ("tiny", "small", "full")
DATASET_DIRS = MappingProxyType({
    "asc": "TAU-urban-acoustic-scenes-2020-mobile-development",
    "tag": "FSDKaggle2019",
    "sed": "TAU-NIGENS-2020",
    "events": "FSDKaggle2018",
    "esc50": "ESC-50",
})
REMIX_DIR = "weak_sed_remix"
# Mixtures per fold of the weak-SED remix by size (the paper's 2,000 for "full").
REMIX_PER_FOLD = MappingProxyType({"tiny": 4, "small": 100, "full": None})


def _module(kind: str):
    import importlib

    return importlib.import_module(f".{kind}", __name__)


def generate_dataset(kind: str, root, size: str = "tiny", seed: int = 0, *, jobs: int | None = None,
                     progress: bool = True, events_per_class: int | None = None) -> dict:
    """Write one dataset `kind` directly into folder `root`; returns its manifest.

    jobs: worker processes (None: every CPU this process may use; 1: this process only).  The
    files are the same whatever it is.  events_per_class ("events" only): manually verified clips
    per class instead of the size's count (small: 8).
    """
    from ..errors import ConfigError
    from .common import check_jobs

    if kind not in DATASET_KINDS:
        raise ConfigError(f"unknown dataset kind {kind!r}; known: {', '.join(DATASET_KINDS)}")
    if size not in SIZES:
        raise ConfigError(f"unknown size {size!r}; known: {', '.join(SIZES)}")
    if events_per_class is None:
        return _module(kind).generate(root, size, seed, jobs=check_jobs(jobs), progress=progress)
    if kind != "events":
        raise ConfigError(f"events_per_class applies to the 'events' kind only, not {kind!r}")
    return _module(kind).generate(root, size, seed, jobs=check_jobs(jobs), progress=progress,
                                  verified_per_class=events_per_class)


def generate(kind: str, out, size: str = "tiny", seed: int = 0, *, jobs: int | None = None,
             progress: bool = True) -> dict[str, Path]:
    """Write `kind` ("all", "remix" or one dataset) under `out`; returns {kind: folder}.

    jobs: worker processes (None: every CPU this process may use); the files do not depend on it.
    """
    from ..errors import ConfigError
    from .common import check_jobs

    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    jobs = check_jobs(jobs)
    out = Path(out)
    kinds = {"all": DATASET_KINDS, "remix": ("events", "asc")}.get(kind, (kind,))
    roots = {}
    for k in kinds:
        roots[k] = out / DATASET_DIRS[k]
        generate_dataset(k, roots[k], size, seed, jobs=jobs, progress=progress)
    if kind == "remix":
        roots["remix"] = build_remix(roots["events"], roots["asc"], out / REMIX_DIR, size, seed, progress)
    return roots


def build_remix(events_root, scenes_root, out_dir, size: str, seed: int, progress: bool = True) -> Path:
    """Call the weak-SED remix builder (imported lazily: it lives in tf_scenes.weak_sed)."""
    from ..errors import ConfigError

    try:
        from ..weak_sed.remix import build_remix as _build
    except ImportError as e:
        raise ConfigError(
            "kind 'remix' needs tf_scenes.weak_sed.remix.build_remix, which is not available "
            f"in this installation ({e}); generate 'events' and 'asc' and run `tf-scenes remix` later") from e
    _build(events_root, scenes_root, out_dir, snrs=(0, 10, 20), seed=seed,
           mixtures_per_fold=REMIX_PER_FOLD[size], progress=progress)
    return Path(out_dir)
