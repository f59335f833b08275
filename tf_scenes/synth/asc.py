"""Synthetic TAU Urban Acoustic Scenes 2020 Mobile, development set (DCASE 2020 Task 1a format).

Layout written under ``root`` (= ``.../TAU-urban-acoustic-scenes-2020-mobile-development``)::

    audio/{scene}-{city}-{location}-{segment}-{device}.wav   mono, 44.1 kHz, PCM_24, 10 s
    meta.csv                         TAB: filename, scene_label, identifier, source_label (LF)
    evaluation_setup/fold1_train.csv     TAB: filename, scene_label (LF, no final newline)
    evaluation_setup/fold1_evaluate.csv  TAB: filename, scene_label (CRLF, as in the wild)
    evaluation_setup/fold1_test.csv      filename (LF)
    SYNTHETIC_DATASET.json

Structure (as the real set's README, https://zenodo.org/record/3819968, describes it): every
segment is recorded by device a; some segments are recorded at the same time by b, c, s1-s3
(training and evaluation) and s4-s6 (evaluation only), i.e. parallel recordings share
``{scene}-{city}-{location}-{segment}``.  Training and evaluation use disjoint locations (the real
split is by location).  Device a dominates training.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from . import common, dsp
from .devices import DEVICE_TABLE, DEVICES, TRAIN_DEVICES, record_spectrum
from .rooms import RirBank
from .scenes import BROAD, CITIES, SCENES, Location, room_types, scene_spectrum

log = logging.getLogger(__name__)

DATASET = "TAU-urban-acoustic-scenes-2020-mobile-development"
SR = 44100
CLIP_SECONDS = 10.0
SUBTYPE = "PCM_24"
OTHER_TRAIN_DEVICES = TRAIN_DEVICES[1:]


@dataclass(frozen=True)
class AscSize:
    """Counts of one size (totals over the 10 scenes, split evenly).

    train_a: device-a training clips; train_other: training clips per device b, c, s1-s3 (each a
    parallel recording of a device-a training segment); eval_per_device: evaluation clips per
    device a..s6; train_locations / eval_locations: locations per scene; eval_pool_factor: the
    evaluation segments of a scene number eval_pool_factor x the per-device count, so devices
    overlap (parallel recordings) in evaluation too; device_totals: files per device over the
    whole set (unlisted extra segments fill up to them, as the real set's 14,400 / 1,080).
    """

    train_a: int
    train_other: int
    eval_per_device: int
    train_locations: int
    eval_locations: int
    eval_pool_factor: float = 2.0
    location_strength: float = 1.0
    device_totals: dict = field(default_factory=dict)


SIZES = MappingProxyType({
    "tiny": AscSize(train_a=20, train_other=2, eval_per_device=2, train_locations=2, eval_locations=1),
    "small": AscSize(train_a=700, train_other=60, eval_per_device=40, train_locations=10, eval_locations=4),
    # Real counts (the real set's README and its fold1 csvs): train a 10,215, b-s3 750 each;
    # evaluate 330 per device; per device overall: a 14,400, others 1,080.
    "full": AscSize(train_a=10215, train_other=750, eval_per_device=330, train_locations=26,
                    eval_locations=10,
                    device_totals={"a": 14400, **{d: 1080 for d in DEVICES[1:]}}),
})


@dataclass(frozen=True)
class Segment:
    scene: str
    city: str
    location: int
    segment: int
    devices: tuple[str, ...]   # every device that records this segment (a first)
    train: tuple[str, ...]     # devices whose clip is listed in fold1_train
    evaluate: tuple[str, ...]  # devices whose clip is listed in fold1_evaluate

    def filename(self, device: str) -> str:
        return f"audio/{self.scene}-{self.city}-{self.location}-{self.segment}-{device}.wav"


def plan(size: AscSize, seed: int) -> list[Segment]:
    """All segments of the dataset with their devices and fold membership (deterministic)."""
    rng = common.rng_for(seed, "asc-plan")
    segments: list[Segment] = []
    next_loc, next_seg = 0, 0
    n_a = common.split_counts(size.train_a, len(SCENES))
    n_o = {d: common.split_counts(size.train_other, len(SCENES)) for d in OTHER_TRAIN_DEVICES}
    n_e = common.split_counts(size.eval_per_device, len(SCENES))
    for si, scene in enumerate(SCENES):
        # Rotate which scenes get the remainders so small sizes stay balanced over devices.
        k_a = n_a[si]
        k_e = n_e[(si * 3) % len(SCENES)]
        cities = list(rng.permutation(CITIES))
        n_locs = size.train_locations + size.eval_locations
        locs = []
        for j in range(n_locs):
            locs.append((cities[j % len(cities)], next_loc))
            next_loc += 1
        train_locs, eval_locs = locs[: size.train_locations], locs[size.train_locations:]

        # Training: k_a device-a segments spread over the training locations.
        train_segs = []
        for j, cnt in enumerate(common.split_counts(k_a, len(train_locs))):
            city, loc = train_locs[j]
            for _ in range(cnt):
                train_segs.append([city, loc, next_seg, ["a"]])
                next_seg += 1
        for d in OTHER_TRAIN_DEVICES:
            k = min(n_o[d][(si + OTHER_TRAIN_DEVICES.index(d)) % len(SCENES)], len(train_segs))
            for idx in rng.choice(len(train_segs), size=k, replace=False):
                train_segs[idx][3].append(d)
        for city, loc, seg, devs in train_segs:
            segments.append(Segment(scene, city, loc, seg, tuple(devs), tuple(devs), ()))

        # Evaluation: a pool of segments at the evaluation locations; each device picks k_e.
        pool_n = max(k_e, int(math.ceil(k_e * size.eval_pool_factor)))
        pool = []
        for j, cnt in enumerate(common.split_counts(pool_n, len(eval_locs))):
            city, loc = eval_locs[j]
            for _ in range(cnt):
                pool.append([city, loc, next_seg, set(), set()])  # devices recorded, listed
                next_seg += 1
        for d in DEVICES:
            for idx in rng.choice(len(pool), size=min(k_e, len(pool)), replace=False):
                pool[idx][3].add(d)
                pool[idx][4].add(d)
        # Unlisted extra recordings (full size): fill devices up to their real totals.
        extra = []
        if size.device_totals:
            per_scene = {d: common.split_counts(t, len(SCENES))[si] for d, t in size.device_totals.items()}
            have = {d: sum(d in s[3] for s in train_segs) + sum(d in p[3] for p in pool) for d in DEVICES}
            for d in DEVICES[1:]:
                for _ in range(max(0, per_scene.get(d, 0) - have[d])):
                    city, loc = eval_locs[len(extra) % len(eval_locs)]
                    extra.append([city, loc, next_seg, {d}, set()])
                    next_seg += 1
            have_a = have["a"] + sum(1 for p in pool if p[3] and "a" not in p[3]) + len(extra)
            for _ in range(max(0, per_scene.get("a", 0) - have_a)):
                city, loc = eval_locs[len(extra) % len(eval_locs)]
                extra.append([city, loc, next_seg, {"a"}, set()])
                next_seg += 1
        for city, loc, seg, devs, listed in pool + extra:
            if not devs:
                continue
            devs = set(devs) | {"a"}  # every segment has its device-a recording
            ordered = tuple(d for d in DEVICES if d in devs)
            segments.append(Segment(scene, city, loc, seg, ordered, (),
                                    tuple(d for d in DEVICES if d in listed)))
    return segments


def _run_chunk(root: str, seed: int, strength: float, bank: RirBank, segs: list[Segment]) -> list[int]:
    """Worker: synthesise a chunk of segments, write every device's recording; returns file counts.

    Each segment's scene is made once, in the frequency domain (mix -> location EQ -> room), and
    each device's recording is one multiplication and one inverse FFT of that spectrum.
    """
    memo = dsp.Memo()  # device responses and RIR spectra, for the whole chunk
    counts = []
    for sg in segs:
        loc = Location.draw(seed, sg.scene, sg.city, sg.location, strength)
        rng = common.rng_for(seed, "asc-segment", sg.segment)
        spec, nfft, n = scene_spectrum(rng, SR, CLIP_SECONDS, loc, bank, memo)
        level_db = rng.uniform(-34.0, -20.0)  # the scene's loudness at the microphones
        spec *= np.float32(10 ** (level_db / 20))
        for dev in sg.devices:
            y = record_spectrum(spec, nfft, n, SR, dev, common.rng_for(seed, "asc-device", sg.segment, dev), memo)
            common.write_pcm(Path(root) / sg.filename(dev), y, SR, SUBTYPE)
        counts.append(len(sg.devices))
    return counts


def write_metadata(root: Path, segments: list[Segment]) -> None:
    """meta.csv and evaluation_setup/ from the plan (formats of the real release)."""
    meta, train, evaluate = [], [], []
    dev_order = {d: i for i, d in enumerate(DEVICES)}
    for sg in segments:
        for d in sg.devices:
            meta.append((sg.filename(d), sg.scene, f"{sg.city}-{sg.location}", d))
        for d in sg.train:
            train.append((SCENES.index(sg.scene), dev_order[d], sg.filename(d), sg.scene))
        for d in sg.evaluate:
            evaluate.append((SCENES.index(sg.scene), dev_order[d], sg.filename(d), sg.scene))
    meta.sort()
    train.sort(key=lambda r: (sorted(SCENES).index(SCENES[r[0]]), r[1], r[2]))
    evaluate.sort(key=lambda r: (sorted(SCENES).index(SCENES[r[0]]), r[1], r[2]))
    common.write_table(root / "meta.csv", ("filename", "scene_label", "identifier", "source_label"), meta)
    es = root / "evaluation_setup"
    common.write_table(es / "fold1_train.csv", ("filename", "scene_label"), [r[2:] for r in train],
                       final_newline=False)
    common.write_table(es / "fold1_evaluate.csv", ("filename", "scene_label"), [r[2:] for r in evaluate],
                       newline="\r\n")
    common.write_table(es / "fold1_test.csv", ("filename",), [(r[2],) for r in evaluate])


def generate(root, size: str = "tiny", seed: int = 0, *, jobs: int | None = None, progress: bool = True,
             size_override: AscSize | None = None) -> dict:
    """Write the synthetic TAU 2020 Mobile development set into `root`; returns the manifest.

    Skips the work (and returns the existing manifest) if `root` already holds a complete set made
    with the same size, seed and generator version.  jobs: worker processes (None: every usable
    CPU); the files do not depend on it.
    """
    root = Path(root)
    sz = size_override or SIZES[size]
    params = {"sizes": asdict(sz), "sample_rate": SR, "clip_seconds": CLIP_SECONDS, "subtype": SUBTYPE,
              "devices": {d: DEVICE_TABLE[d].to_dict() for d in DEVICES}, "scenes": list(SCENES),
              "broad": dict(BROAD), "cities": list(CITIES)}
    core = common.manifest_core("asc", DATASET, size, seed, params)
    if not common.prepare_root(root, core):
        log.info("%s: complete synthetic dataset with the same parameters exists, skipping", root)
        return common.read_manifest(root)
    segments = plan(sz, seed)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    n_files = sum(len(s.devices) for s in segments)
    log.info("%s: %d segments, %d files", root, len(segments), n_files)
    # The room impulse responses: one bank per dataset, made here and shipped with every chunk.
    bank = RirBank.build(SR, seed, room_types())
    fn = functools.partial(_run_chunk, str(root), seed, sz.location_strength, bank)
    common.map_items(fn, segments, jobs=jobs, desc="asc", unit="seg", progress=progress, chunk=16)
    write_metadata(root, segments)
    counts = {"segments": len(segments),
              "train": {d: sum(d in s.train for s in segments) for d in TRAIN_DEVICES},
              "evaluate": {d: sum(d in s.evaluate for s in segments) for d in DEVICES},
              "files": {d: sum(d in s.devices for s in segments) for d in DEVICES}}
    return common.finish_root(root, core, {"counts": counts})
