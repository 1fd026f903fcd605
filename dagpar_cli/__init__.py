"""dagpar: split test suites into slices, run them in parallel, report one merged result.

Toolchain files import their building blocks from here::

    from dagpar_cli import Directory, check, dag, field, object_type, parallel

Plugins import :data:`hookimpl`.
"""

from __future__ import annotations

from dagpar_cli._version import __version__ as __version__
from dagpar_cli.errors import DagparError, ExitCode, TestsFailedError
from dagpar_cli.model import Item, Status, TestCase, TestResult
from dagpar_cli.pluginmanager import hookimpl
from dagpar_cli.sdk import Container, Directory, check, dag, field, object_type, parallel
from dagpar_cli.sdk.runner import collect_items, run_tests

__all__ = [
    "Container",
    "DagparError",
    "Directory",
    "ExitCode",
    "Item",
    "Status",
    "TestCase",
    "TestResult",
    "TestsFailedError",
    "check",
    "collect_items",
    "dag",
    "field",
    "hookimpl",
    "object_type",
    "parallel",
    "run_tests",
]
