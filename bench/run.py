"""Run the benchmark sections and merge their results.

    python -m bench.run --out bench             # every section
    python -m bench.run --out bench --only features --repeats 5

Each section is a function ``run(out_dir, repeats, quick) -> dict`` listed in SECTIONS; its result
is written to OUT/NAME.json and merged into OUT/results.json (sections not run keep their last
result), and OUT/results.md gets one short table per section.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import logging
import os
import platform
import sys
from pathlib import Path

# name -> "module:function"; add a section by adding a line.
SECTIONS = [
    ("features", "bench.features:run"),
]


def machine_info() -> dict:
    import numpy as np

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "numpy": np.__version__,
    }
    if hasattr(os, "getloadavg"):
        info["load_average_1_5_15min_at_start"] = [round(v, 2) for v in os.getloadavg()]
    for mod in ("tensorflow", "librosa", "soundfile", "soxr"):
        try:
            info[mod] = importlib.import_module(mod).__version__
        except Exception:  # benchmark machine info is best effort
            info[mod] = None
    return info


def _load_fn(spec: str):
    mod, fn = spec.split(":")
    return getattr(importlib.import_module(mod), fn)


def results_markdown(results: dict) -> str:
    lines = ["# Benchmark results", "", f"Updated {results.get('updated', '')}.", ""]
    m = results.get("machine", {})
    lines.append(f"Machine: {m.get('platform')}, {m.get('cpus_usable')} usable CPUs of {m.get('cpu_count')}, "
                 f"load average at start {m.get('load_average_1_5_15min_at_start')}, "
                 f"TensorFlow {m.get('tensorflow')}, librosa {m.get('librosa')}.")
    for name, res in results.get("sections", {}).items():
        lines += ["", f"## {name}", ""]
        if res.get("summary_md"):
            lines.append(res["summary_md"])
        if res.get("measured"):
            lines += ["", f"What was measured: {res['measured']}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench"), help="output folder (default: bench)")
    parser.add_argument("--only", action="append", choices=[n for n, _ in SECTIONS], help="run only these sections")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per measurement (default 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run, numbers not meaningful)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(".cache/numba").resolve()))

    from tf_scenes.io_utils import atomic_write_json, atomic_write_text, ensure_writable_dir

    out = ensure_writable_dir(args.out)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results.setdefault("sections", {})
    results["machine"] = machine_info()
    for name, spec in SECTIONS:
        if args.only and name not in args.only:
            continue
        logging.info("bench section %s", name)
        res = _load_fn(spec)(out_dir=out, repeats=args.repeats, quick=args.quick)
        res = {"section": name, "date": datetime.datetime.now().isoformat(timespec="seconds"),
               "machine": results["machine"], **res}
        atomic_write_json(out / f"{name}.json", res)
        results["sections"][name] = res
        if res.get("summary_md"):
            print(f"== {name}\n{res['summary_md']}")
    results["updated"] = datetime.datetime.now().isoformat(timespec="seconds")
    atomic_write_json(results_path, results)
    md = atomic_write_text(out / "results.md", results_markdown(results))
    print(f"wrote {results_path} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
