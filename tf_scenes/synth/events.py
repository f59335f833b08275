"""Synthetic FSDKaggle2018 (DCASE 2018 Task 2) in the real layout::

    audio_train/{8 hex}.wav   44.1 kHz, PCM_16, mono, 0.3-10 s
    train.csv                 fname,label,manually_verified (1 / 0)
    SYNTHETIC_DATASET.json

Manually verified clips have correct labels; unverified ones have a wrong label 30 % of the time
(the real set's unverified labels are noisy too).  The weak-SED remix draws verified clips only.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import MappingProxyType

from . import common
from .classes import FSD2018
from .clips import draw_duration, event_clip

log = logging.getLogger(__name__)

DATASET = "FSDKaggle2018"
SR = 44100
SUBTYPE = "PCM_16"
CLASSES = tuple(FSD2018)


@dataclass(frozen=True)
class EventsSize:
    verified_per_class: int
    unverified_per_class: int
    max_seconds: float
    unverified_wrong: float = 0.3


SIZES = MappingProxyType({
    "tiny": EventsSize(verified_per_class=1, unverified_per_class=0, max_seconds=3.0),
    "small": EventsSize(verified_per_class=8, unverified_per_class=4, max_seconds=10.0),
    # Real: 9,473 clips, 3,710 manually verified (about 90 / 141 per class).
    "full": EventsSize(verified_per_class=90, unverified_per_class=141, max_seconds=10.0),
})


def plan(sz: EventsSize, seed: int) -> list[dict]:
    rng = common.rng_for(seed, "events-plan")
    k = len(CLASSES)
    n = k * (sz.verified_per_class + sz.unverified_per_class)
    names = common.hex_names(rng, n)
    items = []
    i = 0
    for c, label in enumerate(CLASSES):
        for v in range(sz.verified_per_class + sz.unverified_per_class):
            verified = v < sz.verified_per_class
            audio = label
            if not verified and rng.random() < sz.unverified_wrong:
                audio = CLASSES[(c + 1 + rng.integers(k - 1)) % k]
            items.append({"fname": names[i] + ".wav", "label": label, "verified": int(verified), "audio": audio})
            i += 1
    return items


def _run_chunk(root: str, seed: int, max_seconds: float, items: list[dict]) -> list[float]:
    durs = []
    for it in items:
        rng = common.rng_for(seed, "events-clip", it["fname"])
        spec = FSD2018[it["audio"]]
        dur = draw_duration(rng, spec, 0.3, max_seconds)
        x = event_clip(rng, SR, dur, [spec])
        common.write_pcm(Path(root) / "audio_train" / it["fname"], x, SR, SUBTYPE)
        durs.append(dur)
    return durs


def generate(root, size: str = "tiny", seed: int = 0, *, jobs: int | None = None, progress: bool = True,
             verified_per_class: int | None = None) -> dict:
    """Write the synthetic FSDKaggle2018 into `root`; returns the manifest (skips if complete).

    verified_per_class: manually verified clips per class instead of the size's count (the
    manifest records it, so a set of another count is never taken for this one).
    """
    from ..errors import ConfigError

    root = Path(root)
    sz = SIZES[size]
    if verified_per_class is not None:
        if isinstance(verified_per_class, bool) or not isinstance(verified_per_class, int) or verified_per_class < 1:
            raise ConfigError(f"verified_per_class must be a whole number >= 1, got {verified_per_class!r}")
        sz = replace(sz, verified_per_class=verified_per_class)
    params = {"sizes": asdict(sz), "sample_rate": SR, "subtype": SUBTYPE, "classes": list(CLASSES),
              "synthesisers": {c: {"family": s.family, **s.params} for c, s in FSD2018.items()}}
    core = common.manifest_core("events", DATASET, size, seed, params)
    if not common.prepare_root(root, core):
        log.info("%s: complete synthetic dataset with the same parameters exists, skipping", root)
        return common.read_manifest(root)
    items = plan(sz, seed)
    (root / "audio_train").mkdir(parents=True, exist_ok=True)
    fn = functools.partial(_run_chunk, str(root), seed, sz.max_seconds)
    common.map_items(fn, items, jobs=jobs, desc="events", progress=progress, chunk=32)
    rows = sorted((it["fname"], it["label"], it["verified"]) for it in items)
    common.write_csv(root / "train.csv", ("fname", "label", "manually_verified"), rows)
    return common.finish_root(root, core, {"counts": {"clips": len(items),
                                                      "verified": sum(i["verified"] for i in items)}})
