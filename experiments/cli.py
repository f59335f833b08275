"""The `tf-scenes` command.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so `tf-scenes --help` is fast.

Output: results on stdout; log lines (timestamped) and progress bars on stderr. Progress bars (tqdm,
Keras) are drawn only on a terminal; redirected, training logs one plain line per epoch instead.
TensorFlow's native start-up lines (oneDNN notice, "Could not find cuda drivers", absl's
"All log messages before absl::InitializeLog()") are held back as TF_CPP_MIN_LOG_LEVEL says
(default here: 3, errors included; TF_CPP_MIN_LOG_LEVEL=0 shows everything).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.util
import logging
import os
import subprocess
import sys

from tf_scenes.errors import TFScenesError

# name -> (module, one-line help); the families add their own commands (tf_scenes.families).
BASE_COMMANDS = {
    "synth": ("tf_scenes.synth.cli", "write a synthetic dataset in a real dataset's on-disk format"),
    "features": ("tf_scenes.features.cli", "features of audio files or folders under a named config, one .npy per file"),
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


def version() -> str:
    """The installed distribution's version (importlib.metadata), else the source tree's."""
    from importlib import metadata

    try:
        return metadata.version("tf-scenes")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        from tf_scenes import __version__

        return __version__


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to an option's help, except where the help already names its default,
    for flags (store_true) and for options whose default is None or empty (their help says what
    happens without them)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text.lower() or action.nargs == 0 or action.default is None \
                or action.default is argparse.SUPPRESS or action.default in ([], ()):
            return text
        return super()._get_help_string(action)


def _with_defaults(formatter_class):
    """`formatter_class` (a command may set its own, e.g. raw descriptions) showing defaults too."""
    if issubclass(formatter_class, HelpFormatter):
        return formatter_class
    return type(f"Defaults{formatter_class.__name__}", (HelpFormatter, formatter_class), {})


def build_parser(chosen: str | None = None) -> tuple[argparse.ArgumentParser, dict, set]:
    """The `tf-scenes` parser with every subcommand; only `chosen`'s module is imported and its
    arguments added (fast --help). Returns (parser, commands table, training commands)."""
    parser = argparse.ArgumentParser(prog="tf-scenes", description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"tf-scenes {version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    table, training = commands()
    for name, (module, help_text) in table.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        p.set_defaults(_module=module)
        if name == chosen:
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError as e:
                if e.name and module.startswith(e.name):
                    parser.error(f"command {name!r} is not available in this installation")
                raise
            mod.add_arguments(p)
            p.formatter_class = _with_defaults(p.formatter_class)
    return parser, table, training


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # TensorFlow's C++ log lines (oneDNN notices, graph attribute chatter) are noise for users;
    # real failures surface as Python exceptions. TF_CPP_MIN_LOG_LEVEL=0 brings them back.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    hook = _QuietTensorFlowImport.install()
    try:
        return _main(argv)
    finally:
        hook.uninstall()


def _main(argv: list[str]) -> int:
    # Only load the chosen subcommand's module (fast --help, no TensorFlow import for small commands).
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser, table, training = build_parser(chosen)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    level = logging.INFO - 10 * min(args.verbose, 1)
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt=LOG_DATE_FORMAT)
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


# ----------------------------------------------------------------------------- TensorFlow's start-up lines
#
# TensorFlow 2.21 loads its native libraries before absl::InitializeLog() runs, and their
# static initialisers log through absl, which then writes everything to stderr whatever
# TF_CPP_MIN_LOG_LEVEL says (measured: `TF_CPP_MIN_LOG_LEVEL=3 python -c "import tensorflow"` prints
# the oneDNN notice, "Could not find cuda drivers" and absl's preamble, twice; later lines, e.g.
# cpu_feature_guard or cuInit errors, do honour the level). So the first `import tensorflow` of a
# command runs with stderr (fd 2) going through a small filter process that drops the lines the
# level hides and passes everything else through. A process, not a thread: a FATAL line written
# just before TensorFlow aborts still reaches the terminal.

FILTER_SOURCE = r"""
import re, sys
level = int(sys.argv[1])
absl = re.compile(rb"([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] ")
older = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) ")
rank = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}
out = sys.stderr.buffer
for line in sys.stdin.buffer:
    if line.startswith(b"WARNING: All log messages before absl::InitializeLog() is called"):
        continue
    m = absl.match(line) or older.match(line)
    if m and rank[m.group(1)] < level:
        continue
    out.write(line)
    out.flush()
"""


def _min_log_level() -> int:
    try:
        return max(0, min(3, int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))))
    except ValueError:
        return 0


class _FilteredStderr:
    """Within the block, file descriptor 2 goes through the filter process (FILTER_SOURCE)."""

    def __init__(self, level: int):
        self.level = level
        self.proc = None
        self.saved = None

    def __enter__(self):
        try:
            sys.stderr.flush()
            self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", FILTER_SOURCE, str(self.level)],
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            self.saved = os.dup(2)
            os.dup2(self.proc.stdin.fileno(), 2)
        except (OSError, ValueError):  # no usable fd 2, no interpreter to start: plain import, lines and all
            self._close()
        return self

    def __exit__(self, *exc):
        self._close()
        return False

    def _close(self):
        if self.saved is not None:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(self.saved, 2)
            os.close(self.saved)
            self.saved = None
        if self.proc is not None:
            self.proc.stdin.close()
            try:  # the filter ends once its input closes: its last lines come before ours
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # a child of the import still holds the pipe
                pass
            self.proc = None


class _FilteringLoader(importlib.abc.Loader):
    """Runs the real loader of `tensorflow` with stderr filtered."""

    def __init__(self, loader, level: int):
        self.loader, self.level = loader, level

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        try:
            with _FilteredStderr(self.level):
                self.loader.exec_module(module)
        finally:
            module.__loader__ = self.loader
            if module.__spec__ is not None:
                module.__spec__.loader = self.loader

    def __getattr__(self, name):  # is_package, get_resource_reader, ...: the real loader's
        return getattr(self.loader, name)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """A meta-path finder that hands the first import of `name` (tensorflow) to
    :class:`_FilteringLoader`, wherever in a command it happens (commands that never need
    TensorFlow do not load it)."""

    def __init__(self, level: int, name: str = "tensorflow"):
        self.level, self.name = level, name

    @classmethod
    def install(cls, name: str = "tensorflow") -> "_QuietTensorFlowImport":
        hook = cls(_min_log_level(), name)
        if hook.level > 0 and name not in sys.modules:
            sys.meta_path.insert(0, hook)
        return hook

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        self.uninstall()  # once; and so that find_spec below finds the real one
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteringLoader(spec.loader, self.level)
        return spec


if __name__ == "__main__":
    sys.exit(main())
