"""`tf-scenes embed MODEL_DIR AUDIO.wav... [--out DIR]`: embeddings of a trained raw-waveform model.

    tf-scenes embed results/raw_waveform/runs/both_attention clip1.wav clip2.flac --out embeddings/

MODEL_DIR is a run folder of the raw-waveform study (it holds model.json).  Each audio file is read
as mono at the model's rate (16 kHz; other rates are resampled, stereo is averaged), pre-emphasised
over the whole file, cut into 2 s windows with a 1.5 s hop (the "raw" feature config, without the
5 s cut: every whole window of the file; a file shorter than one window is zero-padded to one)
and each window's mean is removed.  One ``<stem>.npz`` per file holds:

    window_embeddings  (windows, dim) float32   the model's audio embedding of every 2 s window
    window_start       (windows,) float64       window start, seconds from the file start
    window_end         (windows,) float64       window end, seconds
    clip_embedding     (dim,) float32           mean of the window embeddings
    coarse, fine       (classes,) float32       clip probabilities (mean of window scores), per head
    coarse_labels, fine_labels                  class names of those heads
    sample_rate, duration                       16000, the file's duration in seconds
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("model_dir", type=Path, help="a raw-waveform run folder (holds model.json)")
    parser.add_argument("audio", type=Path, nargs="+", help="audio files (wav, flac, ...)")
    parser.add_argument("--out", type=Path, default=Path("embeddings"), help="output folder (default ./embeddings)")
    parser.add_argument("--batch-size", type=int, default=32, help="windows per model call")


def run(args) -> int:
    written = embed_files(args.model_dir, args.audio, args.out, batch_size=args.batch_size)
    for path in written:
        print(path)
    return 0


def load_embedding_model(model_dir):
    """(Keras model on windows, model card) of a raw-waveform run folder."""
    from tf_scenes.errors import TFScenesError
    from tf_scenes.model_io import load_run_model, read_model_card

    card = read_model_card(model_dir)
    if card.get("family") != "raw_waveform" or card.get("input") != "waveform":
        raise TFScenesError(f"{model_dir}: model.json describes a {card.get('family')!r} model on "
                            f"{card.get('input')!r}; `embed` needs a raw-waveform run folder")
    return load_run_model(model_dir)


def window_signal(x: np.ndarray, card: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(samples,) waveform at the card's rate -> (windows (n, window_samples), starts s, ends s)."""
    from tf_scenes.features import extract, get_feature_config

    fcfg = get_feature_config(card["feature_config"]).replace(clip_samples=None)
    win, hop, sr = fcfg.raw_window_samples, fcfg.raw_hop_samples, fcfg.sample_rate
    if len(x) < win:
        log.warning("%d samples are shorter than one %d-sample window: zero-padding", len(x), win)
        x = np.pad(x, (0, win - len(x)))
    windows = extract(fcfg, x)[..., 0]  # (windows, window_samples)
    starts = np.arange(len(windows)) * hop / sr
    return windows, starts, starts + win / sr


def embed_waveform(model, card: dict, x: np.ndarray, batch_size: int = 32) -> dict[str, np.ndarray]:
    """Embeddings and clip scores of one mono waveform at the card's rate (see the module docstring)."""
    windows, starts, ends = window_signal(np.asarray(x, np.float32), card)
    out = model.predict(windows, batch_size=batch_size, verbose=0)
    emb = np.asarray(out["embedding"], np.float32)
    res = {"window_embeddings": emb, "window_start": starts, "window_end": ends,
           "clip_embedding": emb.mean(axis=0), "sample_rate": np.int64(card["sample_rate"]),
           "duration": np.float64(len(x) / card["sample_rate"])}
    for head, labels in card["outputs"].items():
        if head in out:
            res[head] = np.asarray(out[head], np.float32).mean(axis=0)
            res[f"{head}_labels"] = np.asarray(labels)
    return res


def embed_files(model_dir, audio_paths, out_dir, *, batch_size: int = 32) -> list[Path]:
    """Write ``out_dir/<stem>.npz`` for every file; returns the paths written."""
    from tf_scenes.audio import read_audio
    from tf_scenes.errors import ConfigError
    from tf_scenes.io_utils import atomic_path, ensure_writable_dir

    paths = [Path(p) for p in audio_paths]
    seen: dict[str, Path] = {}
    for p in paths:
        if p.stem in seen:
            raise ConfigError(f"{seen[p.stem]} and {p} would both write {p.stem}.npz: embed them into separate "
                              f"--out folders")
        seen[p.stem] = p
    model, card = load_embedding_model(model_dir)
    out_dir = ensure_writable_dir(out_dir)
    written = []
    for p in paths:
        x, _ = read_audio(p, sr=card["sample_rate"], mono=True)
        res = embed_waveform(model, card, x, batch_size)
        target = out_dir / f"{p.stem}.npz"
        with atomic_path(target, suffix=".npz") as tmp:
            np.savez(tmp, **res)
        log.info("%s: %d windows -> %s", p, len(res["window_start"]), target)
        written.append(target)
    return written
