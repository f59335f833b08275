"""Exceptions with messages that name the file, the place and the problem."""

from __future__ import annotations


class TFScenesError(Exception):
    """Base class of every error tf-scenes raises on purpose."""


class DataFormatError(TFScenesError, ValueError):
    """A metadata file (csv, yaml) is malformed.

    The message always names the file and, when known, the 1-based line number.
    """

    def __init__(self, path, problem: str, line: int | None = None, hint: str | None = None):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        msg = f"{where}: {problem}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class AudioError(TFScenesError, ValueError):
    """An audio file cannot be used: unreadable, wrong format, non-finite samples, too short..."""

    def __init__(self, path, problem: str, hint: str | None = None):
        self.path = str(path)
        self.problem = problem
        msg = f"{self.path}: {problem}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class ConfigError(TFScenesError, ValueError):
    """A configuration has unknown keys, wrong types or invalid values.

    ``key``: the dotted config key at fault, when known (the loader uses it to name the
    command-line override that set it)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class OutputDirError(TFScenesError, OSError):
    """An output directory is not writable or the disk is full."""
