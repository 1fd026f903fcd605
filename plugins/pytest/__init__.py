"""The pytest runner plugin: list tests, compile a slice's selection, read the JUnit report.

Public behaviour (``spec.name == "pytest"``; every hook answers None for other runners):

Finding pytest
    As a user runs it by hand: the ``runner:`` override (``spec.command``); else
    ``.venv/bin/python -m pytest`` of the source directory, then of the workspace (paths relative
    to the source directory, so they hold inside a container that mounts the workspace); else
    ``$VIRTUAL_ENV/bin/python -m pytest``; else ``pytest`` on PATH. dagpar's own interpreter is
    never assumed to hold the project's dependencies.

Listing (:func:`dagpar_runner_collect`)
    ``<pytest> <args> --collect-only --verbosity=-1 --maxfail=0 -p no:cacheprovider
    --color=no -rfE`` in the source directory. Each node id becomes ``TestCase(path=<file
    relative to the source>, name=<node id after the file part>)``, e.g.
    ``TestCase("tests/test_a.py", "TestX::test_y[a b-1]")``, whatever pytest's rootdir. A file
    (or directory) pytest cannot collect becomes one test named ``"<collection error>"`` in
    that file, so that selecting it (or the whole file) reports the error as that test's
    ``error`` result instead of dropping the file.

What is installed (:func:`dagpar_runner_installed`)
    For the listing cache's key: the ``sys.path`` of the interpreter that runs pytest (the one
    before ``-m pytest``, or the one a ``pytest`` script's ``#!`` line names), asked once per
    run. Installing a package into any of those directories (a virtual environment outside the
    workspace, the system's ``site-packages``) lists the tests afresh. A ``runner:`` command
    that hides the interpreter (``poetry run pytest``) answers None.

Running (:func:`dagpar_runner_command`)
    One command: ``<pytest> <args> -p no:cacheprovider -p dagpar_pytest_select
    --junit-xml={report_dir}/pytest-junit.xml -o junit_family=xunit1
    --continue-on-collection-errors --color=no`` with ``PYTHONPATH={report_dir}`` (plus
    the caller's ``PYTHONPATH``; the engine substitutes ``{report_dir}`` in ``env`` too). The
    selection never goes on the command line: it is written to
    ``{report_dir}/dagpar_pytest_select.json`` (``RunnerCommand.files``, names relative to the
    report directory) and read by the small plugin ``{report_dir}/dagpar_pytest_select.py``
    (:mod:`dagpar_plugins.pytest.pytest_select`, for pytest >= 6) that keeps exactly the selected
    node ids and never imports unselected files. No path goes on the command line either: pytest
    starts as the listing did (its ``testpaths``, its initial conftests), so a directory whose
    ``conftest.py`` is broken is reported as that directory's collection error, as listed.
    When the selection is ``in_order``, the JSON also holds ``"order"``, the items' files in the
    slice's order, and the plugin runs whole files in that order (each file's tests in
    collection order, so module and class fixtures still set up once).

Progress (:func:`dagpar_runner_progress`)
    While pytest runs, the selection plugin appends one byte per finished test to
    ``{report_dir}/dagpar_pytest_progress`` (the controller only, under pytest-xdist); its size
    is the count of tests done, read with one ``stat``.

Handing over (:func:`dagpar_runner_hands_over`, :func:`dagpar_runner_hand_over`)
    A running slice can give tests it has not started to another slice, on POSIX systems,
    unless pytest-xdist distributes them. ``args:`` that turn xdist on (``-n 2``, ``-n auto``,
    ``--dist load``, ``-d``, ``--tx``; not ``-n 0``, nor anything with ``-p no:xdist``) make
    ``dagpar_runner_hands_over`` False. As the run starts, the selection plugin checks pytest's
    own options too (xdist may come from ``addopts`` or ``PYTEST_ADDOPTS``) and records the
    answer as ``"handover"`` in ``{report_dir}/dagpar_pytest_run.json``; when it is false,
    ``dagpar_runner_hand_over`` answers None. Otherwise, once collection has settled, the plugin
    writes the run order to ``{report_dir}/dagpar_pytest_order.json`` (``[[path, name], ...]``,
    named exactly as listed) and keeps ``{report_dir}/dagpar_pytest_claim``, one ASCII line
    ``<started> <limit>`` that both sides change only under ``flock``. pytest counts each test
    as started before running it, unless it lies at or beyond the limit: then pytest neither runs
    nor reports it (no JUnit entry, no progress), and says at the end of its output how many it
    gave up. ``dagpar_runner_hand_over`` passes the tests in between to ``choose`` and lowers the
    limit by as many as it takes from the end; it names the running test too, with the seconds
    since the progress file last grew (pytest starts a test as the one before it is counted
    there). It answers ``[]`` without calling ``choose`` until pytest has written its run
    information and order. As a test tears down, pytest settles the
    next one the same way; when that one was taken, it tears every fixture down there and then,
    as after its last test, so that a teardown error is reported against the test. When pytest
    stops (``-x``, or the session ends) the limit drops to what has started: nothing more can be
    taken.

Parsing (:func:`dagpar_runner_parse`)
    ``{report_dir}/pytest-junit.xml`` → one :class:`~dagpar_cli.model.TestResult` per test, named
    exactly as listed (see :mod:`dagpar_plugins.pytest.report`); ``[]`` when pytest wrote no
    report.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagpar_cli.errors import ExecutionError
from dagpar_cli.model import (
    REPORT_DIR,
    RunnerCommand,
    RunnerSpec,
    Selection,
    TailChooser,
    TestCase,
)
from dagpar_cli.pluginmanager import ToolchainRegistry, hookimpl

from .collect import COLLECTION_ERROR, parse_collect_output
from .detect import detect
from .files import (
    PLUGIN_MODULE,
    PROGRESS_FILE,
    REPORT_FILE,
    SELECTION_FILE,
    plugin_source,
)
from .handover import can_lock, distributes, hand_over
from .interpreter import import_paths, interpreter_of
from .paths import RootdirMap
from .report import parse_report

if TYPE_CHECKING:
    from dagpar_cli.execution.api import Outcome
    from dagpar_cli.model import TestResult
    from dagpar_cli.runners import RunnerHost

__all__ = [
    "COLLECTION_ERROR",
    "NAME",
    "dagpar_detect_toolchains",
    "dagpar_register_toolchains",
    "dagpar_runner_collect",
    "dagpar_runner_command",
    "dagpar_runner_hand_over",
    "dagpar_runner_hands_over",
    "dagpar_runner_installed",
    "dagpar_runner_parse",
    "dagpar_runner_progress",
    "find_pytest",
]

#: The runner name this plugin answers for.
NAME = "pytest"
#: Seconds the listing may take before it counts as hung.
COLLECT_TIMEOUT = 600.0

# pytest exit codes (pytest.ExitCode): OK, INTERRUPTED (collection errors; the listing is still
# printed), NO_TESTS_COLLECTED.
_EXIT_OK, _EXIT_INTERRUPTED, _EXIT_NO_TESTS = 0, 2, 5


def _venv_python(venv: Path) -> Path | None:
    for candidate in (venv / "bin" / "python", venv / "Scripts" / "python.exe"):
        if candidate.is_file():
            return candidate
    return None


def find_pytest(spec: RunnerSpec) -> tuple[str, ...]:
    """The command that starts the project's pytest, found the way a user runs it.

    :param spec: the runner spec (``command`` overrides the search).
    :raises ExecutionError: when no pytest can be found.
    """
    if spec.command:
        return tuple(spec.command)
    source_dir = spec.source_dir
    for venv in (source_dir / ".venv", spec.workspace / ".venv"):
        python = _venv_python(venv)
        if python is not None:
            # Relative to the source directory (the command's working directory), so the same
            # command works in a container that mounts the workspace elsewhere.
            rel = os.path.relpath(python, source_dir).replace(os.sep, "/")
            return (rel, "-m", "pytest")
    if spec.executor != "local":
        # The host's virtual environment and PATH mean nothing inside the image: use its Python.
        return ("python", "-m", "pytest")
    virtual_env = os.environ.get("VIRTUAL_ENV")
    if virtual_env:
        python = _venv_python(Path(virtual_env))
        if python is not None:
            return (str(python), "-m", "pytest")
    if shutil.which("pytest"):
        return ("pytest",)
    where = spec.source or "."
    raise ExecutionError(
        f"pytest not found for {where!r}: create {where}/.venv with pytest installed, "
        "activate a virtual environment that has it, put pytest on PATH, "
        "or set `runner:` for this toolchain in dagpar.yaml"
    )


def _tail(text: str, lines: int = 5) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)


@hookimpl
def dagpar_register_toolchains(registry: ToolchainRegistry) -> None:
    """Register the built-in ``pytest`` toolchain (``use: pytest``)."""
    registry.add(NAME, "dagpar_toolchains.pytest")


@hookimpl
def dagpar_detect_toolchains(workspace: Path) -> list[dict[str, Any]] | None:
    """Detect pytest projects at the workspace root and in its direct subdirectories.

    :returns: e.g. ``[{"instance": "pytest", "use": "pytest", "source": "api", "why":
        "api/pyproject.toml [tool.pytest.ini_options]"}]``; instances are named ``pytest`` when
        there is one, after their directory when there are several.
    """
    return detect(workspace) or None


@hookimpl
def dagpar_runner_collect(spec: RunnerSpec, host: RunnerHost) -> list[TestCase] | None:
    """List every test of the source tree with ``pytest --collect-only``; see the module doc."""
    if spec.name != NAME:
        return None
    argv = (
        *find_pytest(spec),
        *spec.args,
        "--collect-only",
        # After the user's arguments, so that theirs cannot change the listing's form
        # (``-v``), stop it at the first broken file (``-x``), or colour it.
        "--verbosity=-1",
        "--maxfail=0",
        "-p",
        "no:cacheprovider",
        "--color=no",
        "-rfE",
    )
    outcome = host.run(argv, timeout=COLLECT_TIMEOUT)
    command = " ".join(argv)
    if outcome.not_started:
        raise ExecutionError(
            f"cannot start pytest ({command}): {_tail(outcome.stderr, 1)}; "
            "install pytest or set `runner:` for this toolchain in dagpar.yaml"
        )
    if outcome.timed_out:
        raise ExecutionError(f"listing tests timed out after {COLLECT_TIMEOUT:.0f}s: {command}")
    tests = parse_collect_output(outcome.stdout, RootdirMap(spec.source_dir, spec.args))
    code = outcome.exit_code
    if code in (_EXIT_OK, _EXIT_NO_TESTS) or (code == _EXIT_INTERRUPTED and tests):
        return tests
    if "No module named pytest" in outcome.stderr:
        raise ExecutionError(
            f"{argv[0]} has no pytest: install pytest into that environment, "
            "or set `runner:` for this toolchain in dagpar.yaml"
        )
    detail = _tail(outcome.stderr) or _tail(outcome.stdout)
    raise ExecutionError(f"listing tests failed (pytest exit code {code}): {command}: {detail}")


@hookimpl
def dagpar_runner_installed(spec: RunnerSpec) -> list[str] | None:
    """The ``sys.path`` of the interpreter that runs pytest (see the module doc)."""
    if spec.name != NAME:
        return None
    try:
        command = find_pytest(spec)
    except ExecutionError:
        return None  # the listing will say so
    python = interpreter_of(command, spec.source_dir)
    return None if python is None else import_paths(python, spec.source_dir)


@hookimpl
def dagpar_runner_progress(spec: RunnerSpec, report_dir: Path) -> int | None:
    """Tests finished so far: the size of the selection plugin's progress file."""
    if spec.name != NAME:
        return None
    try:
        return os.stat(report_dir / PROGRESS_FILE).st_size
    except OSError:
        return 0  # pytest has not started a test yet


@hookimpl
def dagpar_runner_hands_over(spec: RunnerSpec) -> bool | None:
    """Whether a slice can hand over tests: yes, unless ``args:`` turn pytest-xdist on."""
    if spec.name != NAME:
        return None
    return can_lock() and not distributes(spec.args)


@hookimpl
def dagpar_runner_hand_over(
    spec: RunnerSpec, report_dir: Path, choose: TailChooser
) -> list[TestCase] | None:
    """Take the unstarted tail ``choose`` asks for from a running slice; see the module doc."""
    if spec.name != NAME:
        return None
    return hand_over(report_dir, choose)


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


@hookimpl
def dagpar_runner_command(spec: RunnerSpec, selection: Selection) -> list[RunnerCommand] | None:
    """Compile a slice's selection into one pytest command; see the module doc."""
    if spec.name != NAME:
        return None
    whole, tests = _selected(selection)
    if not whole and not tests:
        return []
    data: dict[str, Any] = {"paths": whole, "tests": [list(t) for t in tests]}
    if selection.in_order:
        data["order"] = list(dict.fromkeys(posixpath.normpath(i[0]) for i in selection.items if i))
    python_path = REPORT_DIR
    if os.environ.get("PYTHONPATH"):
        python_path += os.pathsep + os.environ["PYTHONPATH"]
    argv = (
        *find_pytest(spec),
        *spec.args,
        "-p",
        "no:cacheprovider",
        "-p",
        PLUGIN_MODULE,
        f"--junit-xml={REPORT_DIR}/{REPORT_FILE}",
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
    return text.replace(REPORT_DIR, "\\u007b" + REPORT_DIR[1:])


@hookimpl
def dagpar_runner_parse(
    spec: RunnerSpec, report_dir: Path, outcome: Outcome
) -> list[TestResult] | None:
    """Read ``{report_dir}/pytest-junit.xml``; [] when pytest wrote no report (it crashed)."""
    if spec.name != NAME:
        return None
    return parse_report(report_dir, spec.source_dir, spec.args)
