"""`tf-scenes synth KIND --out DIR --size tiny|small|full --seed N [--report]`.

Writes synthetic datasets in the real on-disk formats (see :mod:`tf_scenes.synth`).  With
``--report`` (asc / all / remix) it also measures how learnable the acoustic scenes are (logistic
regression on clip-mean log-mel, see :mod:`tf_scenes.synth.report`), prints the table and writes
report.json into the scene dataset folder.  ``--report-only`` skips generation and measures an
existing folder in the TAU 2020 format (real or synthetic); there --out may be the dataset folder
itself or its parent.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from . import DATASET_DIRS, KINDS, SIZES

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("kind", choices=KINDS, help="which dataset to write (all: every dataset; remix: "
                        "events + asc + the weak-SED remix)")
    parser.add_argument("--out", required=True, help="output folder; each dataset goes into its own "
                        "sub-folder named as the real release")
    parser.add_argument("--size", choices=SIZES, default="small", help="tiny (tests), small (CPU "
                        "experiments, default), full (real dataset counts)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker processes (default: every CPU this process may use); output does not "
                        "depend on it")
    parser.add_argument("--report", action="store_true",
                        help="after generating, measure the scene set's learnability (asc, all, remix)")
    parser.add_argument("--report-only", action="store_true",
                        help="only measure an existing TAU 2020 format folder (no generation)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (they are drawn only when stderr is a terminal)")


def _asc_root(out: Path) -> Path:
    """The TAU folder: `out` itself if it holds evaluation_setup/, else out/<release name>."""
    return out if (out / "evaluation_setup").is_dir() else out / DATASET_DIRS["asc"]


def run(args) -> int:
    from . import generate
    from ..errors import ConfigError
    from .common import default_jobs

    out = Path(args.out)
    progress = not args.no_progress
    if args.report_only:
        if args.kind not in ("asc", "all", "remix"):
            raise ConfigError("--report-only measures an acoustic-scene (asc) folder")
        return _report(_asc_root(out), progress)
    if args.report and args.kind not in ("asc", "all", "remix"):
        raise ConfigError("--report measures the acoustic-scene set: use it with asc, all or remix")
    jobs = args.jobs if args.jobs is not None else default_jobs()
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    t0 = time.perf_counter()
    roots = generate(args.kind, out, size=args.size, seed=args.seed, jobs=jobs, progress=progress)
    seconds = time.perf_counter() - t0
    for kind, root in roots.items():
        print(f"{kind}: {root}")
    print(f"done in {seconds:.1f} s (size {args.size}, seed {args.seed}, {jobs} job(s))")
    if args.report:
        return _report(roots["asc"], progress)
    return 0


def _report(root: Path, progress: bool) -> int:
    from .report import REPORT_FILE, asc_report, format_report

    t0 = time.perf_counter()
    rep = asc_report(root, progress=progress)
    print(format_report(rep))
    print(f"report: {root / REPORT_FILE} ({time.perf_counter() - t0:.1f} s)")
    ok = all(v for k, v in rep["effects"].items() if k[:2] in ("a_", "b_", "c_"))
    if not ok:
        print("warning: not every expected effect holds on this set: "
              + json.dumps({k: v for k, v in rep["effects"].items() if k[:2] in ("a_", "b_", "c_")}),
              file=sys.stderr)
    return 0
