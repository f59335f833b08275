"""Synthetic data generation (:mod:`tf_scenes.synth`): CPU time per item of every generator, and
the time the full-size sets need on this machine's CPUs.

Each generator's worker function (what one worker process runs on a chunk of items) is called in
this process on a fixed sample of items of the "small" plan, files written to a temporary folder:
asc segments (a scene, then every device's 10 s 24-bit recording of it), tag and events clips,
esc50 sources, sed mixtures (60 s, 4 channels, both formats).  The samples are spread over the
plan (every k-th item), so every scene / class family appears.  The room banks are built once
beforehand, as the generators do, and timed apart.  The kinds run interleaved, `repeats` times.

Projection: the full size's item count x the median CPU time per item / the usable CPUs.  It
assumes idle cores (the worker pool scales with them; on a shared machine the wall time grows with
the load) and leaves out the one-time start-up (planning, the room bank, worker start-up: seconds).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from .common import interleaved, md_table, per_item, rnd


def _every(items: list, count: int) -> list:
    """`count` items spread over `items` (every k-th)."""
    return items[:: max(len(items) // count, 1)][:count]


def _samples(quick: bool) -> dict:
    """{kind: (fn(root, items) -> None, sample items, files in the sample, full-size items, full-size files, unit)}."""
    from tf_scenes.synth import asc, esc50, events, scenes, sed, tag
    from tf_scenes.synth.rooms import RirBank

    n = (lambda quick_n, full_n: quick_n if quick else full_n)  # noqa: E731
    asc_bank = RirBank.build(asc.SR, 0, scenes.room_types())
    esc_bank = RirBank.build(esc50.SR, 0, ("small",))
    asc_items = _every(asc.plan(asc.SIZES["small"], 0), n(1, 40))
    asc_full = asc.plan(asc.SIZES["full"], 0)
    tag_items = _every(tag.plan(tag.SIZES["small"], 0)[0], n(2, 32))
    ev_items = _every(events.plan(events.SIZES["small"], 0), n(2, 32))
    esc_items = _every(esc50.plan(esc50.SIZES["small"], 0), n(1, 24))
    sed_items = _every(sed.mixture_names(sed.SIZES["small"]), n(1, 3))
    tag_max, ev_max = tag.SIZES["small"].max_seconds, events.SIZES["small"].max_seconds
    ev_full = events.SIZES["full"]
    return {
        "asc": (lambda root, items: asc._run_chunk(str(root), 0, 1.0, asc_bank, items), asc_items,
                sum(len(s.devices) for s in asc_items), len(asc_full), sum(len(s.devices) for s in asc_full),
                "segment"),
        "tag": (lambda root, items: tag._run_chunk(str(root), 0, tag_max, items), tag_items, len(tag_items),
                tag.SIZES["full"].curated + tag.SIZES["full"].noisy,
                tag.SIZES["full"].curated + tag.SIZES["full"].noisy, "clip"),
        "events": (lambda root, items: events._run_chunk(str(root), 0, ev_max, items), ev_items, len(ev_items),
                   len(events.CLASSES) * (ev_full.verified_per_class + ev_full.unverified_per_class),
                   len(events.CLASSES) * (ev_full.verified_per_class + ev_full.unverified_per_class), "clip"),
        "esc50": (lambda root, items: esc50._run_chunk(str(root), 0, esc_bank, items), esc_items,
                  sum(s["takes"] for s in esc_items), len(esc50.plan(esc50.SIZES["full"], 0)), 2000, "source"),
        "sed": (lambda root, items: sed._run_chunk(str(root), 0, items), sed_items, 2 * len(sed_items),
                len(sed.mixture_names(sed.SIZES["full"])), 2 * len(sed.mixture_names(sed.SIZES["full"])),
                "mixture"),
    }


_FOLDERS = ("audio", "audio_train", "train_curated", "train_noisy", "mic_dev", "foa_dev", "metadata_dev")


def run(out_dir: Path, repeats: int = 3, quick: bool = False) -> dict:
    from tf_scenes.synth.common import default_jobs

    t0 = time.perf_counter()
    samples = _samples(quick)
    setup_s = time.perf_counter() - t0
    cpus = default_jobs()
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        fns = {}
        for kind, (fn, items, *_) in samples.items():
            root = Path(tmp) / kind
            for sub in _FOLDERS:
                (root / sub).mkdir(parents=True, exist_ok=True)
            fns[kind] = (lambda fn=fn, root=root, items=items: fn(root, items))
        times = interleaved(fns, repeats)
    kinds, rows = {}, []
    for kind, (_, items, files, full_items, full_files, unit) in samples.items():
        r = per_item(times[kind], len(items))
        cpu_median = statistics.median(times[kind]["cpu"])
        minutes = full_items * r["cpu_ms_per_item_median"] / 1000 / cpus / 60
        kinds[kind] = {"unit": unit, "items": len(items), "files": files, **r,
                       "cpu_ms_per_file_median": rnd(1000 * cpu_median / files),
                       "full_items": full_items, "full_files": full_files,
                       "projected_full_minutes": rnd(minutes, 3)}
        rows.append([kind, f"{len(items)} {unit}s, {files} files", r["cpu_ms_per_item_min"],
                     r["cpu_ms_per_item_median"], kinds[kind]["cpu_ms_per_file_median"],
                     f"{full_items} ({full_files} files)", rnd(minutes, 3)])
    summary_md = "\n".join([
        f"Each generator's worker function on a sample of the small plan's items, in this process, files written; "
        f"{repeats} interleaved repeats. Projection: full-size items x median CPU per item / {cpus} usable CPUs "
        f"(idle cores, start-up not included). Room banks built in {rnd(setup_s, 3)} s (planning included).",
        "",
        md_table(["kind", "sample", "CPU ms per item (min)", "CPU ms per item (median)", "CPU ms per file (median)",
                  "full size", f"projected minutes, full size, {cpus} CPUs"], rows),
    ])
    return {"measured": ("CPU ms per item and per file of each synthetic-data generator's worker function (files "
                         "written), and the full-size time projected on the usable CPUs"),
            "quick": quick, "repeats": repeats, "cpus_usable": cpus, "setup_s": rnd(setup_s), "kinds": kinds,
            "summary_md": summary_md}
