"""The handled-error hierarchy and the exit codes of the ``dagpar`` command.

Every error a user can cause or fix derives from :class:`DagparError`; the CLI prints it as one line
and exits with its :attr:`~DagparError.exit_code`. Anything else is a bug in dagpar (exit 3, with
the traceback shown under ``--debug``).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "DagparError",
    "ExecutionError",
    "ExitCode",
    "Interrupted",
    "NothingSelectedError",
    "TestsFailedError",
    "ToolchainError",
    "UsageError",
]


@enum.unique
class ExitCode(enum.IntEnum):
    """Exit codes of ``dagpar`` (DESIGN.md §4)."""

    #: Every selected test passed.
    OK = 0
    #: At least one test failed (or a check raised).
    TESTS_FAILED = 1
    #: A usage, configuration or toolchain-definition error: fix the input and run again.
    USAGE_ERROR = 2
    #: A bug in dagpar itself.
    INTERNAL_ERROR = 3
    #: The execution infrastructure failed: runner missing, engine unreachable, slice crashed.
    EXECUTION_FAILED = 4
    #: The patterns and filters selected nothing.
    NOTHING_SELECTED = 5
    #: Interrupted by SIGINT or SIGTERM.
    INTERRUPTED = 130


class DagparError(Exception):
    """An error the user can act on; printed as one line, never with a traceback."""

    exit_code: ExitCode = ExitCode.INTERNAL_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(DagparError):
    """A bad command line: unknown option value, malformed filter, impossible shard."""

    exit_code = ExitCode.USAGE_ERROR


class ConfigError(DagparError):
    """A bad ``dagpar.yaml``; the message starts with the file and the key path.

    :param message: what is wrong and how to fix it.
    :param key: the dotted key path, e.g. ``toolchains.frontend.source``.
    :param file: the configuration file, when there is one.
    """

    exit_code = ExitCode.USAGE_ERROR

    def __init__(self, message: str, *, key: str = "", file: str | None = None) -> None:
        self.key = key
        self.file = file
        where = ": ".join(part for part in (file, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class ToolchainError(DagparError):
    """A toolchain file that cannot be loaded or defines something dagpar cannot run.

    :param message: what is wrong and how to fix it.
    :param file: the toolchain file.
    :param line: the 1-based line the problem is on, when known.
    """

    exit_code = ExitCode.USAGE_ERROR

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        where = f"{file}:{line}" if file and line else (file or "")
        super().__init__(f"{where}: {message}" if where else message)


class ExecutionError(DagparError):
    """The infrastructure failed: a runner is missing, an engine is unreachable, a slice crashed."""

    exit_code = ExitCode.EXECUTION_FAILED


class NothingSelectedError(DagparError):
    """Patterns or filters matched nothing; the message shows the closest candidates."""

    exit_code = ExitCode.NOTHING_SELECTED


class TestsFailedError(DagparError):
    """A check failed: tests failed, or the check's own code raised.

    Raised by a toolchain (or by the engine for a split call) and collected per check; it is not
    an error of dagpar and never ends the run early unless ``--failfast`` is given.

    :param message: a one-line summary.
    :param errors: every slice's error message, in slice order.
    """

    __test__ = False  # not a pytest test class, despite the name
    exit_code = ExitCode.TESTS_FAILED

    def __init__(self, message: str, errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.errors = tuple(errors)


class Interrupted(DagparError):
    """The run was interrupted (SIGINT or SIGTERM)."""

    exit_code = ExitCode.INTERRUPTED
