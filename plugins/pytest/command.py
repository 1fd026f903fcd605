"""Compiling a slice's selection into one pytest command (see *Running* in the package doc)."""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterable
from typing import Any

from dagpar_cli import REPORT_DIR_PLACEHOLDER, RunnerCommand, RunnerSpec, Selection

from .collect import COLLECTION_ERROR
from .files import (
    CLAIMS_MODULE,
    JUNIT_MODULE,
    PLUGIN_MODULE,
    QUIET_MODULE,
    REPORT_FILE,
    SELECTION_FILE,
    claims_source,
    junit_source,
    plugin_source,
    quiet_source,
)
from .interpreter import find_pytest

__all__ = ["compile_command"]


def _selected(selection: Selection) -> tuple[list[str], list[tuple[str, str]]]:
    """The paths selected whole and the ``(path, name)`` tests selected one by one."""
    whole: list[str] = []
    tests: list[tuple[str, str]] = []
    if selection.tests is not None:
        pairs: Iterable[tuple[str, str]] = ((t.path, t.name) for t in selection.tests)
    else:
        pairs = (
            (item[0], "::".join(item[1:]) if len(item) > 1 else "")
            for item in selection.items
            if item
        )
    for path, name in pairs:
        path = posixpath.normpath(path)
        # Selecting the stand-in of a collection error means running the file, so pytest reports it.
        if not name or name == COLLECTION_ERROR:
            whole.append(path)
        else:
            tests.append((path, name))
    whole = list(dict.fromkeys(whole))
    covered = set(whole)
    tests = list(dict.fromkeys(t for t in tests if t[0] not in covered))
    return whole, tests


def compile_command(spec: RunnerSpec, selection: Selection) -> list[RunnerCommand]:
    """Compile a slice's selection into one pytest command (none for an empty selection)."""
    whole, tests = _selected(selection)
    if not whole and not tests:
        return []
    data: dict[str, Any] = {"paths": whole, "tests": [list(t) for t in tests]}
    if selection.in_order:
        data["order"] = list(dict.fromkeys(posixpath.normpath(i[0]) for i in selection.items if i))
    python_path = REPORT_DIR_PLACEHOLDER
    if os.environ.get("PYTHONPATH"):
        python_path += os.pathsep + os.environ["PYTHONPATH"]
    argv = (
        *find_pytest(spec),
        *spec.args,
        "-p",
        "no:cacheprovider",
        "-p",
        PLUGIN_MODULE,
        # No per-test progress: no one watches a slice's output (see pytest_quiet).
        "-p",
        QUIET_MODULE,
        f"--junit-xml={REPORT_DIR_PLACEHOLDER}/{REPORT_FILE}",
        "-o",
        "junit_family=xunit1",
        "--continue-on-collection-errors",
        "--color=no",
        # No path arguments: pytest starts exactly as the listing did (testpaths, initial
        # conftests), and the selection plugin keeps it out of everything not selected.
    )
    return [
        RunnerCommand(
            argv=argv,
            env={"PYTHONPATH": python_path},
            files={
                f"{PLUGIN_MODULE}.py": plugin_source(),
                f"{JUNIT_MODULE}.py": junit_source(),
                f"{CLAIMS_MODULE}.py": claims_source(),
                f"{QUIET_MODULE}.py": quiet_source(),
                SELECTION_FILE: _selection_json(data),
            },
        )
    ]


def _selection_json(data: dict[str, Any]) -> str:
    """The selection as JSON whose text never holds the ``{report_dir}`` placeholder.

    The engine substitutes the placeholder in written files; a test id that contains it
    literally must survive, so its brace is written as the JSON escape ``\\u007b``.
    """
    text = json.dumps(data, ensure_ascii=False)
    return text.replace(REPORT_DIR_PLACEHOLDER, "\\u007b" + REPORT_DIR_PLACEHOLDER[1:])
