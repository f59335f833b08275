"""The `tf-scenes` command.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so `tf-scenes --help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from tf_scenes.errors import TFScenesError

# name -> (module, one-line help); the families add their own commands (tf_scenes.families).
BASE_COMMANDS = {
    "synth": ("tf_scenes.synth.cli", "write a synthetic dataset in a real dataset's on-disk format"),
    "features": ("tf_scenes.features.cli", "compute the features of one audio file under a named config"),
    "reproduce": ("tf_scenes.experiments.reproduce", "run a paper's study end to end (tf-scenes reproduce STUDY)"),
    "saliency": ("tf_scenes.saliency_cli", "draw CAM / Grad-CAM saliency of a model on an audio file"),
    "export": ("tf_scenes.export_cli", "export a trained run as a SavedModel taking waveforms"),
    "predict": ("tf_scenes.predict_cli",
                "run an exported SavedModel on audio files, print JSON lines (or DCASE event lists)"),
}


def commands() -> tuple[dict, set]:
    """Every subcommand: the base ones, each family's library commands and each study's commands
    (study commands train models); returns (name -> (module, help), names of training commands)."""
    import importlib

    from tf_scenes.families import all_families, study_module

    table, training = dict(BASE_COMMANDS), {"reproduce"}
    for family in all_families():
        table.update(family.commands)
        study = importlib.import_module(study_module(family.name)).STUDY
        table.update(study.commands)
        training.update(study.commands)
    return table, training


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # TensorFlow's C++ log lines (oneDNN notices, graph attribute chatter) are noise for users;
    # real failures surface as Python exceptions. TF_CPP_MIN_LOG_LEVEL=0 brings them back.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Only load the chosen subcommand's module (fast --help, no TensorFlow import for small commands).
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(prog="tf-scenes", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    table, training = commands()
    for name, (module, help_text) in table.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if name == chosen:
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError as e:
                if e.name and module.startswith(e.name):
                    parser.error(f"command {name!r} is not available in this installation")
                raise
            mod.add_arguments(p)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    level = logging.INFO - 10 * min(args.verbose, 1)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose == 0:  # tf.function retracing notices between models are expected here
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    mod = importlib.import_module(args._module)
    if args.command in training:
        # Before TensorFlow's runtime starts: bit-reproducible CPU training (see serial_inter_op).
        from tf_scenes.training.trainer import serial_inter_op

        serial_inter_op()
    try:
        if args.command in training:
            # With TF_CONFIG set, join the workers' cluster now: a multi-worker strategy can only be
            # made before TensorFlow runs its first op (docs/distributed.md).
            from tf_scenes.training.distribute import start_multi_worker_from_env

            start_multi_worker_from_env()
        return int(mod.run(args) or 0)
    except TFScenesError as e:
        print(f"tf-scenes {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tf-scenes {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
