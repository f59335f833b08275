"""Synthetic ESC-50 in the real layout, with a real class hierarchy in the audio::

    audio/{fold}-{clip}-{take}-{target}.wav   5 s, 44.1 kHz, PCM_16, mono
    meta/esc50.csv        filename,fold,target,category,esc10,src_file,take
    meta/class_map.csv    fine,coarse  (coarse: animals, natural, human, interior, exterior)
    SYNTHETIC_DATASET.json

Hierarchy (see :mod:`tf_scenes.synth.classes`): the ten fine classes of a coarse group come from
the same synthesiser family with different parameters, and each group shares a recording context:
animals outdoors (light wind), natural soundscapes as they are, human sounds close-miked in a
small room, interior sounds in a small reverberant room, exterior sounds at a distance (air
absorption, far traffic).  Coarse classification is therefore easier than fine.

Takes: like the real set, some source clips give two or three 5 s takes (A, B, C) - consecutive
excerpts of one longer rendering - which share src_file and fold.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from . import common, dsp, sounds
from .classes import ESC10, ESC50, ESC50_CATEGORIES, ESC50_GROUP_FAMILY, ESC50_GROUPS, esc50_group
from .rooms import RirBank, reverberate

log = logging.getLogger(__name__)

DATASET = "ESC-50"
SR = 44100
SUBTYPE = "PCM_16"
CLIP_SECONDS = 5.0
N_FOLDS = 5


@dataclass(frozen=True)
class EscSize:
    clips_per_class: int  # spread evenly over the 5 folds (tiny: one fold per class)
    take_prob: float = 0.3  # chance that a source gives more than one take


SIZES = MappingProxyType({"tiny": EscSize(clips_per_class=1), "small": EscSize(clips_per_class=10),
         "full": EscSize(clips_per_class=40)})  # real: 2,000 clips, 40 per class, 8 per fold


def plan(sz: EscSize, seed: int) -> list[dict]:
    """Sources: target, fold, src id, takes; fold sizes per class as even as possible."""
    rng = common.rng_for(seed, "esc50-plan")
    used: set[int] = set()
    sources = []
    for target, cat in enumerate(ESC50_CATEGORIES):
        per_fold = common.split_counts(sz.clips_per_class, N_FOLDS)
        shift = target % N_FOLDS  # tiny: classes spread over folds
        for f in range(N_FOLDS):
            fold = (f + shift) % N_FOLDS + 1
            left = per_fold[f]
            while left > 0:
                takes = 1
                if left > 1 and rng.random() < sz.take_prob:
                    takes = int(min(left, rng.choice([2, 2, 3])))
                src = int(rng.integers(1000, 300000))
                while src in used:
                    src = int(rng.integers(1000, 300000))
                used.add(src)
                sources.append({"target": target, "category": cat, "fold": fold, "src": src, "takes": takes})
                left -= takes
    return sources


def _group_context(rng, x: np.ndarray, group: str, bank: RirBank) -> np.ndarray:
    """Apply the coarse group's shared recording context to a 1-D signal of RMS 1."""
    n = x.shape[0]
    if group == "animals":
        bed = dsp.shaped_noise(rng, n, SR, dsp.tilt_fn(-6.0, 30.0, 4000.0))
        return x + 10 ** (rng.uniform(-28, -20) / 20) * bed * dsp.am_envelope(rng, n, SR, 0.3, 4.0)
    if group == "human":
        h, _ = bank.get("small", int(rng.integers(0, 4)))
        return reverberate(x, h[: int(0.15 * SR)], rng.uniform(0.05, 0.15))
    if group == "interior":
        h, _ = bank.get("small", int(rng.integers(0, 4)))
        y = reverberate(x, h, rng.uniform(0.3, 0.5))
        return y + 10 ** (rng.uniform(-34, -28) / 20) * dsp.shaped_noise(rng, n, SR, dsp.bandpass_fn(100.0, 2.0, -40))
    if group == "exterior":
        y = dsp.butter(x, SR, hi=rng.uniform(5000, 9000))  # distance: air absorption
        far = dsp.shaped_noise(rng, n, SR, dsp.bandpass_fn(200.0, 3.5, -40.0, -3.0))
        return y + 10 ** (rng.uniform(-20, -14) / 20) * far
    return x  # natural soundscapes: as they are


def _run_chunk(root: str, seed: int, bank: RirBank, sources: list[dict]) -> list[int]:
    out = []
    n = int(CLIP_SECONDS * SR)
    for s in sources:
        rng = common.rng_for(seed, "esc50-src", s["src"])
        spec = ESC50[s["category"]]
        group = esc50_group(s["target"])
        total = s["takes"] * CLIP_SECONDS
        x = sounds.render(rng, SR, total, spec.family, spec.params)
        x = _group_context(rng, x, group, bank)
        for t in range(s["takes"]):
            piece = x[t * n:(t + 1) * n]
            piece = dsp.fade(common.peak_normalize(piece, rng.uniform(-12, -1)), SR, 0.01)
            take = "ABC"[t]
            common.write_pcm(Path(root) / "audio" / f"{s['fold']}-{s['src']}-{take}-{s['target']}.wav", piece, SR,
                             SUBTYPE)
        out.append(s["takes"])
    return out


def generate(root, size: str = "tiny", seed: int = 0, *, jobs: int | None = None, progress: bool = True) -> dict:
    """Write the synthetic ESC-50 into `root`; returns the manifest (skips if complete)."""
    root = Path(root)
    sz = SIZES[size]
    params = {"sizes": asdict(sz), "sample_rate": SR, "subtype": SUBTYPE, "clip_seconds": CLIP_SECONDS,
              "groups": list(ESC50_GROUPS), "group_family": dict(ESC50_GROUP_FAMILY),
              "synthesisers": {c: {"family": s.family, **s.params} for c, s in ESC50.items()}}
    core = common.manifest_core("esc50", DATASET, size, seed, params)
    if not common.prepare_root(root, core):
        log.info("%s: complete synthetic dataset with the same parameters exists, skipping", root)
        return common.read_manifest(root)
    sources = plan(sz, seed)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    bank = RirBank.build(SR, seed, ("small",))  # the human and interior groups' rooms
    common.map_items(functools.partial(_run_chunk, str(root), seed, bank), sources, jobs=jobs, desc="esc50",
                     unit="src", progress=progress, chunk=16)
    rows = []
    for s in sources:
        for t in range(s["takes"]):
            take = "ABC"[t]
            rows.append((f"{s['fold']}-{s['src']}-{take}-{s['target']}.wav", s["fold"], s["target"], s["category"],
                         str(s["category"] in ESC10), s["src"], take))
    rows.sort()
    common.write_csv(root / "meta" / "esc50.csv", ("filename", "fold", "target", "category", "esc10", "src_file",
                                                   "take"), rows)
    common.write_csv(root / "meta" / "class_map.csv", ("fine", "coarse"),
                     [(c, esc50_group(i)) for i, c in enumerate(ESC50_CATEGORIES)])
    return common.finish_root(root, core, {"counts": {"clips": len(rows), "sources": len(sources)}})
