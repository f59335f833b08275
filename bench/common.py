"""Helpers shared by the benchmark sections: timing, statistics, tables, machine description.

Every timing records wall-clock seconds (``time.perf_counter``) and process CPU seconds
(``time.process_time``: user + system time of all threads of this process). On a machine shared
with other work the wall-clock rates move with the load while CPU time per item is steadier, so
both are reported, as min / median over the repeats. Alternatives that are compared with each
other are run interleaved (A, B, A, B, ...) so that they see the same load.
"""

from __future__ import annotations

import importlib
import os
import platform
import statistics
import time
from typing import Callable


def timed(fn: Callable) -> tuple[float, float, object]:
    """(wall seconds, process CPU seconds, result) of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, time.process_time() - c0, result


def interleaved(fns: dict[str, Callable], repeats: int) -> dict[str, dict[str, list[float]]]:
    """Run every function `repeats` times in turn (round r runs each once) -> {name: {"wall", "cpu"}}."""
    out = {name: {"wall": [], "cpu": []} for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu, _ = timed(fn)
            out[name]["wall"].append(wall)
            out[name]["cpu"].append(cpu)
    return out


def rnd(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def summary(values: list[float], digits: int = 4) -> dict:
    """{"values", "min", "median"} rounded to `digits` significant digits."""
    return {"values": [rnd(v, digits) for v in values], "min": rnd(min(values), digits),
            "median": rnd(statistics.median(values), digits)}


def per_item(times: dict[str, list[float]], n: int) -> dict:
    """Rates of `n` items from one interleaved() entry: items/s (best = min time, median) and
    wall / CPU milliseconds per item (min, median)."""
    wall, cpu = times["wall"], times["cpu"]
    return {
        "repeats": len(wall),
        "items_per_repeat": n,
        "wall_s": summary(wall),
        "cpu_s": summary(cpu),
        "per_s_best": rnd(n / min(wall)),
        "per_s_median": rnd(n / statistics.median(wall)),
        "wall_ms_per_item_min": rnd(1000 * min(wall) / n),
        "wall_ms_per_item_median": rnd(1000 * statistics.median(wall) / n),
        "cpu_ms_per_item_min": rnd(1000 * min(cpu) / n),
        "cpu_ms_per_item_median": rnd(1000 * statistics.median(cpu) / n),
    }


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def load_average() -> list[float] | None:
    if hasattr(os, "getloadavg"):
        return [round(v, 2) for v in os.getloadavg()]
    return None


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform reports."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags(wanted=("avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma")) -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [w for w in wanted if w in have]
    except OSError:
        pass
    return []


def machine_info() -> dict:
    """What the numbers were measured on (imports TensorFlow)."""
    import numpy as np
    import tensorflow as tf

    info = {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "default (all cores)",
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads() or "default",
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }
    for mod in ("tensorflow", "keras", "librosa", "soundfile", "soxr"):
        try:
            info[mod] = importlib.import_module(mod).__version__
        except Exception:  # machine info is best effort
            info[mod] = None
    return info


def shared_note(load: list[float] | None, cpus: int) -> str | None:
    """A sentence saying the machine was busy, when the 1-minute load average says so."""
    if load and load[0] > 0.5 * cpus:
        return (f"The machine was shared with other work during this run (1-minute load average {load[0]} on "
                f"{cpus} CPUs): wall-clock rates are lower than on an idle machine; CPU time per item is the "
                f"steadier figure, and compared alternatives were run interleaved.")
    return None
