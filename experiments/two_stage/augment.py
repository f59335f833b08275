"""`tf-scenes augment KIND IN.wav --out OUT.wav`: one augmented clip, to listen to an augmentation.

    tf-scenes augment pitch_shift clip.wav --out shifted.wav --seed 3
    tf-scenes augment spectrum_correction audio/bus-lyon-1-1-a.wav --out sc.wav --data TAU-ROOT
    tf-scenes augment same_class_mix clip.wav --out mix.wav --data TAU-ROOT --scene park
    tf-scenes augment reverb_drc clip.wav --out rev.wav --mode offline

KIND: spectrum_correction, reverb_drc, pitch_shift, speed_change, noise, same_class_mix (the
two-stage augmentations, Hu et al. 2021, Sec. 3.2).  The input is read as mono at 44.1 kHz (other
rates are resampled) and the output has the same length, 24-bit PCM, scaled down only if it
would clip (as the offline files).

``--mode online`` (default) runs :mod:`tf_scenes.pipelines.waveform_augment` (the TensorFlow functions of the
training pipeline; its "fixed" copy of this clip); ``--mode offline`` runs
:mod:`tf_scenes.pipelines.offline_augment` with the per-clip seed that the offline augmentation
gives the file of this name, so it writes what the study would write.  The same seed gives the
same file.

``--data DATASET_ROOT`` (a TAU 2020 Mobile development folder) is needed by two kinds:
spectrum_correction (the device ratio from the training split's parallel recordings, computed
once and cached under ``--cache-dir``) and same_class_mix (a partner from the training clips of
the input's scene, found by the input's file name in the dataset, else given by ``--scene``).
Online reverb draws from a bank of simulated rooms built once and cached under ``--cache-dir``.
One JSON line describing what was drawn is printed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

KINDS = ("spectrum_correction", "reverb_drc", "pitch_shift", "speed_change", "noise", "same_class_mix")
NEEDS_DATA = {"spectrum_correction": "the device ratio comes from the dataset's parallel recordings",
              "same_class_mix": "the mixing partner is a training clip of the same scene"}


def _cache(args) -> Path:
    from ..study import cache_root

    return cache_root(args.cache_dir)


def add_arguments(parser) -> None:
    parser.add_argument("kind", choices=KINDS, help="the augmentation")
    parser.add_argument("input", type=Path, help="audio file (wav, flac, ...)")
    parser.add_argument("--out", type=Path, required=True, help="output .wav file")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--data", type=Path, default=None,
                        help="TAU 2020 Mobile development root (spectrum_correction, same_class_mix)")
    parser.add_argument("--scene", default=None, help="the input's scene when the dataset does not list the file")
    parser.add_argument("--mode", choices=("online", "offline"), default="online",
                        help="online: the tf.data functions (default); offline: the wav-writing implementation")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="cache root for the device ratio and the room bank (default: $TF_SCENES_CACHE, "
                             "else ~/.cache/tf-scenes)")
    parser.add_argument("--rir-bank-size", type=int, default=None,
                        help="rooms in the online reverb bank (default 128; built once)")
    parser.add_argument("--rt60", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                        help="RT60 range of the simulated rooms in seconds (default 0.2 1.0)")


def run(args) -> int:
    from tf_scenes.audio import read_audio, write_audio
    from tf_scenes.errors import AudioError, ConfigError
    from tf_scenes.io_utils import ensure_writable_dir
    from tf_scenes.pipelines import offline_augment as oa

    out = Path(args.out)
    if out.suffix.lower() != ".wav":
        raise ConfigError(f"--out {out}: the output must be a .wav file")
    if args.kind in NEEDS_DATA and args.data is None:
        raise ConfigError(f"{args.kind} needs --data DATASET_ROOT ({NEEDS_DATA[args.kind]})")
    if args.rir_bank_size is not None and args.rir_bank_size < 1:
        raise ConfigError(f"--rir-bank-size must be >= 1, got {args.rir_bank_size}")
    rt60 = tuple(args.rt60) if args.rt60 else (0.2, 1.0)
    if not 0 < rt60[0] <= rt60[1]:
        raise ConfigError(f"--rt60 {rt60[0]} {rt60[1]}: need 0 < MIN <= MAX")
    x, sr = read_audio(args.input, sr=oa.SR)
    if len(x) < oa.N_FFT:
        raise AudioError(args.input, f"too short for augmentation: {len(x)} samples ({len(x) / sr:.3f} s), "
                         f"need at least {oa.N_FFT} (one STFT frame)")
    ensure_writable_dir(out.parent if str(out.parent) else Path("."))

    data = _Dataset(args.data, args.input, args.scene) if args.data is not None else None
    filename = data.filename if data is not None else f"audio/{Path(args.input).name}"
    ratio = None
    if args.kind == "spectrum_correction":
        from tf_scenes.pipelines.waveform_augment import correction_ratio

        ratio = correction_ratio(data.train, _cache(args) / "augment")
    if args.mode == "offline":
        y, drawn = _offline(args.kind, x, sr, args.seed, filename, ratio, data, rt60)
    else:
        y, drawn = _online(args, x, filename, ratio, data, rt60)
    top = float(np.max(np.abs(y))) if len(y) else 0.0
    gain = oa_peak_gain(top)
    write_audio(out, y * gain, sr, subtype="PCM_24")
    print(json.dumps({"out": str(out), "kind": args.kind, "mode": args.mode, "seed": args.seed,
                      "clip": filename, **drawn, "write_gain": gain}, default=str))
    return 0


def oa_peak_gain(top: float, limit: float = 0.999) -> float:
    """The offline files' rule: scale down only what would clip."""
    return limit / top if top > limit else 1.0


class _Dataset:
    """The TAU dataset at `root`: training records and the input's record (by file name)."""

    def __init__(self, root, input_path, scene):
        from tf_scenes.datasets import tau2020
        from tf_scenes.errors import ConfigError

        self.train = tau2020.load(root, split="train")
        everything = tau2020.load(root, split="all", check_files=False)
        name = Path(input_path).name
        match = [r for r in everything if Path(r.filename).name == name]
        self.record = match[0] if match else None
        if self.record is not None:
            self.filename, self.scene, self.clip_id = self.record.filename, self.record.scene, self.record.clip_id
            if scene is not None and scene != self.scene:
                raise ConfigError(f"--scene {scene}: the dataset lists {name} as {self.scene}")
        else:
            if scene is not None and scene not in tau2020.SCENES:
                raise ConfigError(f"--scene {scene!r}: not a TAU scene; choose one of {', '.join(tau2020.SCENES)}")
            self.filename, self.scene, self.clip_id = f"audio/{name}", scene, f"input:{name}"

    def require_scene(self) -> str:
        from tf_scenes.errors import ConfigError

        if self.scene is None:
            raise ConfigError(f"{self.filename}: not in the dataset; give its scene with --scene")
        return self.scene

    def partners(self) -> list:
        """Training clips of the input's scene outside its recording, sorted by filename."""
        scene = self.require_scene()
        others = sorted((r for r in self.train if r.scene == scene and r.clip_id != self.clip_id),
                        key=lambda r: r.filename)
        if not others:
            from tf_scenes.errors import DataFormatError

            raise DataFormatError(self.train[0].path.parent.parent if self.train else "dataset",
                                  f"no training clip of scene {scene} from another recording to mix with")
        return others


def _read(path):
    from tf_scenes.audio import read_audio
    from tf_scenes.pipelines.offline_augment import SR

    return read_audio(path, sr=SR)[0]


def _offline(kind, x, sr, seed, filename, ratio, data, rt60):
    """The offline implementation with the seed generate_augmented_set gives this file and kind."""
    from tf_scenes.pipelines import offline_augment as oa

    rng = np.random.default_rng(oa._clip_seed(seed, kind, filename))
    if kind == "spectrum_correction":
        return oa.apply_spectrum_correction(x, ratio), {}
    if kind == "reverb_drc":
        y, p = oa.reverb_drc(x, sr, rng, rt60_range=rt60)
        return y, {k: p[k] for k in ("rt60", "room_dim", "curve", "direct_path_index")}
    if kind == "pitch_shift":
        return oa.pitch_shift(x, sr, rng)
    if kind == "speed_change":
        return oa.speed_change(x, sr, rng)
    if kind == "noise":
        return oa.add_noise(x, rng)
    others = data.partners()  # same_class_mix: the partner rule of generate_augmented_set
    partner = others[int(rng.integers(len(others)))]
    y, p = oa.same_class_mix(x, _read(partner.path), rng)
    return y, {**p, "partner": partner.filename}


def _online(args, x, filename, ratio, data, rt60):
    """The tf.data functions, with the seed of this clip's fixed copy (mode "fixed")."""
    import tensorflow as tf

    from tf_scenes.pipelines import waveform_augment as wa

    cfg = wa.WaveAugmentConfig(rt60_range=rt60, rir_bank_size=args.rir_bank_size or wa.WaveAugmentConfig.rir_bank_size)
    bank = None
    if args.kind == "reverb_drc":
        bank = wa.rir_bank(cfg.rir_bank_size, cfg.rt60_range, cfg.sample_rate, cfg.rir_bank_seed,
                           _cache(args) / "augment", progress=True)
    params = wa.AugmentParams(cfg=cfg, ratio=ratio, bank=bank)
    seed = wa.clip_seed(args.seed, int(wa.clip_keys([filename])[0]), args.kind, "fixed")
    partner, extra = None, {}
    if args.kind == "same_class_mix":
        data.partners()  # one clear error when the scene has no other recording
        pool = list(data.train)
        if data.record is None or all(r.filename != data.filename for r in pool):
            pool.append(_InputRecord(data.filename, data.require_scene(), data.clip_id))
        me = next(i for i, r in enumerate(pool) if r.filename == data.filename)
        idx = int(wa.ScenePartners.from_records(pool).draw(me, wa.fold_seed(seed, wa._PARTNER)))
        partner = _read(pool[idx].path)
        extra["partner"] = pool[idx].filename
    y, drawn = wa.augment(args.kind, tf.constant(x), seed, params, partner=partner, return_drawn=True)
    drawn = wa.params_json(drawn)
    if bank is not None:
        drawn["rt60"] = bank.params[int(drawn["rir_index"])]["rt60"]
        drawn["curve"] = cfg.curves[int(drawn["curve_index"])]
    return y.numpy(), {**drawn, **extra}


class _InputRecord:
    """The input clip as a partner-table entry when the dataset does not list it."""

    def __init__(self, filename, scene, clip_id):
        self.filename, self.scene, self.clip_id, self.path = filename, scene, clip_id, None
