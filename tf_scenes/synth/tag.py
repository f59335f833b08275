"""Synthetic FSDKaggle2019 (DCASE 2019 Task 2, audio tagging) in the real layout::

    train_curated/{8 hex}.wav   44.1 kHz, PCM_16, mono, 0.3-30 s
    train_noisy/{8 hex}.wav     same format, noisy labels
    train_curated.csv, train_noisy.csv   fname,labels (several labels: comma-joined, double-quoted)
    sample_submission.csv       fname + the 80 class columns (rows: test fnames, no audio, as the
                                real release; values 0)
    SYNTHETIC_DATASET.json

Curated clips carry correct labels (about 15 % carry two, the audio then mixes both classes);
noisy clips have a wrong label 40 % of the time and an unlabelled extra sound 30 % of the time.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType

from . import common
from .classes import FSD2019
from .clips import draw_duration, event_clip

log = logging.getLogger(__name__)

DATASET = "FSDKaggle2019"
SR = 44100
SUBTYPE = "PCM_16"
CLASSES = tuple(FSD2019)


@dataclass(frozen=True)
class TagSize:
    curated: int
    noisy: int
    test_rows: int
    max_seconds: float
    multi_label: float = 0.15
    noisy_wrong: float = 0.4
    noisy_extra: float = 0.3


SIZES = MappingProxyType({
    "tiny": TagSize(curated=80, noisy=16, test_rows=4, max_seconds=3.0),
    "small": TagSize(curated=480, noisy=160, test_rows=40, max_seconds=12.0),
    # Real counts: 4,970 curated, 19,815 noisy, 3,361 test rows in sample_submission.csv.
    "full": TagSize(curated=4970, noisy=19815, test_rows=3361, max_seconds=30.0),
})


def plan(sz: TagSize, seed: int) -> tuple[list[dict], list[str]]:
    """Clips (subset, fname, labels in csv order, audio classes with the dominant first) and the
    test fnames of sample_submission.csv."""
    rng = common.rng_for(seed, "tag-plan")
    names = common.hex_names(rng, sz.curated + sz.noisy + sz.test_rows)
    items = []
    k = len(CLASSES)
    for i in range(sz.curated):
        first = CLASSES[i % k] if i < k * max(sz.curated // k, 1) else CLASSES[rng.integers(k)]
        labels = [first]
        if rng.random() < sz.multi_label:
            labels.append(CLASSES[(CLASSES.index(first) + 1 + rng.integers(k - 1)) % k])
        items.append({"subset": "curated", "fname": names[i] + ".wav", "labels": labels, "audio": list(labels)})
    for j in range(sz.noisy):
        label = CLASSES[j % k]
        audio = [label]
        if rng.random() < sz.noisy_wrong:
            audio = [CLASSES[(CLASSES.index(label) + 1 + rng.integers(k - 1)) % k]]
        if rng.random() < sz.noisy_extra:
            audio.append(CLASSES[rng.integers(k)])
        items.append({"subset": "noisy", "fname": names[sz.curated + j] + ".wav", "labels": [label],
                      "audio": audio})
    test = sorted(n + ".wav" for n in names[sz.curated + sz.noisy:])
    return items, test


def _run_chunk(root: str, seed: int, max_seconds: float, items: list[dict]) -> list[float]:
    durs = []
    for it in items:
        rng = common.rng_for(seed, "tag-clip", it["fname"])
        specs = [FSD2019[c] for c in it["audio"]]
        dur = draw_duration(rng, specs[0], 0.3, max_seconds)
        x = event_clip(rng, SR, dur, specs)
        common.write_pcm(Path(root) / f"train_{it['subset']}" / it["fname"], x, SR, SUBTYPE)
        durs.append(dur)
    return durs


def generate(root, size: str = "tiny", seed: int = 0, *, jobs: int | None = None, progress: bool = True) -> dict:
    """Write the synthetic FSDKaggle2019 into `root`; returns the manifest (skips if complete)."""
    root = Path(root)
    sz = SIZES[size]
    params = {"sizes": asdict(sz), "sample_rate": SR, "subtype": SUBTYPE, "classes": list(CLASSES),
              "synthesisers": {c: {"family": s.family, **s.params} for c, s in FSD2019.items()}}
    core = common.manifest_core("tag", DATASET, size, seed, params)
    if not common.prepare_root(root, core):
        log.info("%s: complete synthetic dataset with the same parameters exists, skipping", root)
        return common.read_manifest(root)
    items, test = plan(sz, seed)
    (root / "train_curated").mkdir(parents=True, exist_ok=True)
    (root / "train_noisy").mkdir(parents=True, exist_ok=True)
    fn = functools.partial(_run_chunk, str(root), seed, sz.max_seconds)
    common.map_items(fn, items, jobs=jobs, desc="tag", progress=progress, chunk=32)
    for subset in ("curated", "noisy"):
        rows = sorted((it["fname"], ",".join(it["labels"])) for it in items if it["subset"] == subset)
        common.write_csv(root / f"train_{subset}.csv", ("fname", "labels"), rows)
    common.write_csv(root / "sample_submission.csv", ("fname",) + CLASSES, [(t,) + (0,) * len(CLASSES) for t in test])
    return common.finish_root(root, core, {"counts": {"curated": sz.curated, "noisy": sz.noisy,
                                                      "multi_label_curated": sum(len(i["labels"]) > 1 for i in items
                                                                                 if i["subset"] == "curated")}})
