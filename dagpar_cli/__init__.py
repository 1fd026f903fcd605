"""dagpar: split test suites into slices, run them in parallel, report one merged result.

Toolchain files import their building blocks from here::

    from dagpar_cli import Directory, check, dag, field, object_type, parallel

Plugins import :data:`hookimpl` and, for a runner plugin, the runner contract: subclass
:class:`Runner` and register it (see :mod:`dagpar_cli.plugin` for a quick start). Nothing a
plugin needs lives outside this package's top level and :mod:`dagpar_cli.testing`.
"""

from __future__ import annotations

from dagpar_cli._version import __version__ as __version__
from dagpar_cli.errors import DagparError, ExecutionError, ExitCode, TestsFailedError
from dagpar_cli.execution.api import Outcome
from dagpar_cli.model import Item, Status, TestCase, TestResult
from dagpar_cli.plugin import hookimpl
from dagpar_cli.registry import RunnerRegistry, ToolchainRegistry
from dagpar_cli.runner_api import (
    REPORT_DIR_PLACEHOLDER,
    Runner,
    RunnerCommand,
    RunnerHost,
    RunnerSpec,
    Selection,
    TailChooser,
    TestEvent,
    TestStream,
)
from dagpar_cli.sdk import Container, Directory, check, dag, field, object_type, parallel
from dagpar_cli.sdk.runner import collect_items, run_tests
from dagpar_cli.statedir import state_dir

__all__ = [
    "REPORT_DIR_PLACEHOLDER",
    "Container",
    "DagparError",
    "Directory",
    "ExecutionError",
    "ExitCode",
    "Item",
    "Outcome",
    "Runner",
    "RunnerCommand",
    "RunnerHost",
    "RunnerRegistry",
    "RunnerSpec",
    "Selection",
    "Status",
    "TailChooser",
    "TestCase",
    "TestEvent",
    "TestResult",
    "TestStream",
    "TestsFailedError",
    "ToolchainRegistry",
    "check",
    "collect_items",
    "dag",
    "field",
    "hookimpl",
    "object_type",
    "parallel",
    "run_tests",
    "state_dir",
]
