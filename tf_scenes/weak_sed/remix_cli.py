"""`tf-scenes remix`: mix FSDKaggle2018 events into acoustic scenes at given SNRs (weak-SED data).

    tf-scenes remix --events FSDKaggle2018/ --scenes TAU-urban-acoustic-scenes-2019-development/ \\
        --snr 0 10 20 --out data/weak_sed_remix [--seed 0] [--per-fold 2000] [--plan-only]

``--plan-only`` writes each SNR folder's mixture.yaml and manifest.json without the mixtures: the
weak-SED study makes them in its input pipeline (``--set data.remix=online``); running the
command again without it writes the mixtures of that plan.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", required=True, metavar="DIR",
                        help="FSDKaggle2018 root (train.csv, audio_train/); verified clips are used")
    parser.add_argument("--scenes", required=True, metavar="DIR",
                        help="TAU-format scene root (audio/*.wav)")
    parser.add_argument("--snr", type=float, nargs="+", default=[0.0, 10.0, 20.0], metavar="DB",
                        help="event-to-scene SNRs in dB (default: 0 10 20); one snr{S}/ folder each")
    parser.add_argument("--out", required=True, metavar="DIR", help="output root")
    parser.add_argument("--seed", type=int, default=0, help="seed of folds, scene order, event draws")
    parser.add_argument("--per-fold", type=int, default=None, metavar="N",
                        help="mixtures per fold (default: the paper's 2000, capped so that no event "
                             "clip is reused; give 2000 to reuse clips like the reference)")
    parser.add_argument("--folds", type=int, default=4, help="event folds (default 4)")
    parser.add_argument("--sr", type=int, default=32000, help="output sample rate (default 32000)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace SNR folders that hold a different remix")
    parser.add_argument("--plan-only", action="store_true",
                        help="write mixture.yaml and manifest.json only, no mixture audio (for "
                             "`tf-scenes reproduce weak_sed --set data.remix=online`)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from .remix import build_remix, read_remix

    folders = build_remix(args.events, args.scenes, args.out, snrs=args.snr, seed=args.seed,
                          mixtures_per_fold=args.per_fold, n_folds=args.folds, sr=args.sr,
                          overwrite=args.overwrite, progress=not args.no_progress, audio=not args.plan_only)
    for snr, folder in folders.items():
        records = read_remix(folder, check_files=not args.plan_only)
        folds = sorted({r.fold for r in records})
        what = "mixtures planned (no audio)" if args.plan_only else "mixtures"
        print(f"{folder}: {len(records)} {what}, SNR {snr:g} dB, folds {folds}")
    return 0
