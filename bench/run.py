"""Run the benchmark sections and merge their results (``make bench``).

    python -m bench.run --out bench                       # every section (< 15 min on 2 CPU cores)
    python -m bench.run --out bench --only features --repeats 5
    python -m bench.run --out /tmp/b --quick              # tiny sizes: a smoke run, numbers meaningless

Sections (one module each, ``run(out_dir, repeats, quick) -> dict``):

* features: clips/s of the tf.data feature pipeline vs the librosa recipe, and where the time goes;
* input_pipeline: batches/s of make_train_dataset on a memory-mapped cache vs a Python generator of
  pickled features with numpy mixup (the reference design), and the input-wait fraction of training;
* training: samples/s of the two-stage FCNN and ResNet (quick width) per crop, XLA on/off, precision;
* inference: latency and throughput of the exported two-stage SavedModel (quick and full width);
* augmentation: clips/s of the two-stage audio augmentations online (tf.data, with features) vs the
  offline reference design (per kind and the six-way mix), and the input wait of training on them;
* synth: CPU per item of every synthetic-data generator and the projected time of the full-size sets;
* scale (only with ``--only scale``, ~20-40 min: ``make bench-scale``): the two-stage paper profile's data
  path and training input at several sizes of synthetic data, extrapolated to the real TAU set
  (bench/scale.json, bench/scale.md, bench/scale.png).

Each section's result goes to OUT/NAME.json and is merged into OUT/results.json (sections not run
keep their last result); OUT/results.md gets one short part per section. Every result records the
machine (CPU model, cores, platform, TensorFlow version) and the load average before and after.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import logging
import os
import sys
import time
from pathlib import Path

# name -> "module:function"; add a section by adding a line.
SECTIONS = [
    ("features", "bench.features:run"),
    ("input_pipeline", "bench.input_pipeline:run"),
    ("training", "bench.training:run"),
    ("inference", "bench.inference:run"),
    ("augmentation", "bench.augmentation:run"),
    ("synth", "bench.synth:run"),
    ("scale", "bench.scale:run"),
]
# Sections that run only when named with --only (too long for `make bench`).
ON_REQUEST = {"scale"}


def _load_fn(spec: str):
    mod, fn = spec.split(":")
    return getattr(importlib.import_module(mod), fn)


def results_markdown(results: dict) -> str:
    lines = ["# Benchmark results", "", f"Updated {results.get('updated', '')}. Reproduce: `make bench` "
             "(= `python -m bench.run --out bench`); one section: `python -m bench.run --out bench --only NAME`.", ""]
    m = results.get("machine", {})
    lines.append(f"Machine: {m.get('cpu_model')} ({m.get('cpus_usable')} usable CPUs of {m.get('cpu_count')}; "
                 f"{', '.join(m.get('cpu_flags') or [])}), {m.get('platform')}, TensorFlow {m.get('tensorflow')}, "
                 f"Keras {m.get('keras')}, librosa {m.get('librosa')}; GPUs: {m.get('gpus') or 'none'}.")
    run = results.get("run", {})
    if run:
        lines += ["", f"Last run: {', '.join(run.get('sections', []))} ({'quick' if run.get('quick') else 'full'} "
                      f"sizes, timed repeats: {run.get('repeats')}), {run.get('seconds')} s in all, load average "
                      f"(1, 5, 15 min) "
                      f"{run.get('load_average_start')} at start, {run.get('load_average_end')} at end."]
        if run.get("note"):
            lines += ["", f"**Note:** {run['note']}"]
    for name, res in results.get("sections", {}).items():
        lines += ["", f"## {name}", "",
                  f"Measured {res.get('date')} in {res.get('seconds')} s; load average {res.get('load_average_start')} "
                  f"-> {res.get('load_average_end')}{' (quick sizes)' if res.get('quick') else ''}.", ""]
        if res.get("summary_md"):
            lines.append(res["summary_md"])
        if res.get("measured"):
            lines += ["", f"What was measured: {res['measured']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench"), help="output folder (default: bench)")
    parser.add_argument("--only", action="append", choices=[n for n, _ in SECTIONS], help="run only these sections")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per measurement (default 3)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run, numbers not meaningful)")
    parser.add_argument("--note", default=None, help="a sentence stored with the results (e.g. machine state)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(".cache/numba").resolve()))

    from tf_scenes.io_utils import atomic_write_json, atomic_write_text, ensure_writable_dir, read_json

    from .common import load_average, machine_info, shared_note

    out = ensure_writable_dir(args.out)
    results_path = out / "results.json"
    results = read_json(results_path) if results_path.exists() else {}
    results.setdefault("sections", {})
    load_start, t_start = load_average(), time.perf_counter()
    machine = machine_info()
    results["machine"] = machine
    names = []
    for name, spec in SECTIONS:
        if (args.only and name not in args.only) or (not args.only and name in ON_REQUEST):
            continue
        names.append(name)
        logging.info("bench section %s", name)
        sec_load, t0 = load_average(), time.perf_counter()
        res = _load_fn(spec)(out_dir=out, repeats=args.repeats, quick=args.quick)
        res = {"section": name, "date": datetime.datetime.now().isoformat(timespec="seconds"),
               "seconds": round(time.perf_counter() - t0, 1), "load_average_start": sec_load,
               "load_average_end": load_average(), "machine": machine, **res}
        atomic_write_json(out / f"{name}.json", res)
        results["sections"][name] = res
        if res.get("summary_md"):
            print(f"== {name} ({res['seconds']} s)\n{res['summary_md']}\n", flush=True)
    load_end = load_average()
    # Only the load before the run says whether other work was running: during the run the
    # benchmark's own threads keep the 1-minute average above 1 on their own.
    notes = [n for n in (args.note, shared_note(load_start, machine["cpus_usable"])) if n]
    results["run"] = {"sections": names, "quick": args.quick, "repeats": args.repeats,
                      "seconds": round(time.perf_counter() - t_start, 1),
                      "load_average_start": load_start, "load_average_end": load_end,
                      "note": " ".join(notes) or None}
    results["updated"] = datetime.datetime.now().isoformat(timespec="seconds")
    atomic_write_json(results_path, results)
    md = atomic_write_text(out / "results.md", results_markdown(results))
    print(f"wrote {results_path} and {md} ({results['run']['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
