"""The pytest runner plugin: list tests, compile a slice's selection, read the JUnit report.

Registers :class:`PytestRunner` under the name ``pytest``, and the built-in ``pytest`` toolchain.
Public behaviour:

Finding pytest
    As a user runs it by hand: the ``runner:`` override (``spec.command``); else
    ``.venv/bin/python -m pytest`` of the source directory, then of the workspace (paths relative
    to the source directory, so they hold inside a container that mounts the workspace); else
    ``$VIRTUAL_ENV/bin/python -m pytest``; else ``pytest`` on PATH. dagpar's own interpreter is
    never assumed to hold the project's dependencies.

Listing (:meth:`PytestRunner.collect`)
    ``<pytest> <args> --collect-only --verbosity=-1 --maxfail=0 -p no:cacheprovider
    --color=no -rfE`` in the source directory. Each node id becomes ``TestCase(path=<file
    relative to the source>, name=<node id after the file part>)``, e.g.
    ``TestCase("tests/test_a.py", "TestX::test_y[a b-1]")``, whatever pytest's rootdir. A file
    (or directory) pytest cannot collect becomes one test named ``"<collection error>"`` in
    that file, so that selecting it (or the whole file) reports the error as that test's
    ``error`` result instead of dropping the file.

What is installed (:meth:`PytestRunner.installed`)
    For the listing cache's key: the ``sys.path`` of the interpreter that runs pytest (the one
    before ``-m pytest``, or the one a ``pytest`` script's ``#!`` line names), asked once per
    run. Installing a package into any of those directories (a virtual environment outside the
    workspace, the system's ``site-packages``) lists the tests afresh. A ``runner:`` command
    that hides the interpreter (``poetry run pytest``) answers None.

Running (:meth:`PytestRunner.command`)
    One command: ``<pytest> <args> -p no:cacheprovider -p dagpar_pytest_select
    -p dagpar_pytest_quiet --junit-xml={report_dir}/pytest-junit.xml -o junit_family=xunit1
    --continue-on-collection-errors --color=no`` with ``PYTHONPATH={report_dir}`` (plus
    the caller's ``PYTHONPATH``; the engine substitutes ``{report_dir}`` in ``env`` too). The
    selection never goes on the command line: it is written to
    ``{report_dir}/dagpar_pytest_select.json`` (``RunnerCommand.files``, names relative to the
    report directory) and read by the small plugin ``{report_dir}/dagpar_pytest_select.py``
    (:mod:`dagpar_plugins.pytest.pytest_select`, for pytest >= 6, with the modules it imports,
    ``dagpar_pytest_junit.py`` and ``dagpar_pytest_claims.py``) that keeps exactly the selected
    node ids and never imports unselected files. A second small module, loaded with its own ``-p
    dagpar_pytest_quiet`` (:mod:`dagpar_plugins.pytest.pytest_quiet`), keeps pytest's terminal
    reporter from writing per-test progress (letters, ``-v`` lines, percentages, under xdist
    too) and from keeping passing setup and teardown reports no one reads: no one watches a
    slice's output, and on many tiny tests that work is about a tenth of each test's cost. The
    rest of the output is pytest's own (failures, errors, warnings, short summary, every
    plugin's ``pytest_terminal_summary``, the final counts line); dagpar quotes its last lines
    when pytest exits with a code it treats as broken. No path goes on the command line either:
    pytest starts as the listing did (its ``testpaths``, its initial conftests), so a directory
    whose ``conftest.py`` is broken is reported as that directory's collection error, as listed.
    When the selection is ``in_order``, the JSON also holds ``"order"``, the items' files in the
    slice's order, and the plugin runs whole files in that order (each file's tests in
    collection order, so module and class fixtures still set up once).

Progress (:meth:`PytestRunner.progress`)
    While pytest runs, the selection plugin appends one byte per finished test to
    ``{report_dir}/dagpar_pytest_progress`` (the controller only, under pytest-xdist); its size
    is the count of tests done, read with one ``stat``.

Streaming (:meth:`PytestRunner.stream`)
    The selection plugin also appends one JSON line per test start and end to
    ``{report_dir}/dagpar_pytest_events.jsonl`` (:mod:`dagpar_plugins.pytest.stream` reads it):
    dagpar keeps the results of the tests that finished when pytest dies, names the test that
    was running, and resumes the others. A start whose end is the next line of the same read is
    left out of the events: the end says all it would. Ids that XML 1.0 cannot hold (a control
    character in a file name, or in an id under pytest's option that disables id escaping) go
    into the JUnit report as one ``dagpar.id`` property holding ``[path, name]`` as ASCII JSON
    instead of ``dagpar.path``/``dagpar.name``, so the report stays well-formed and maps back one
    to one.

Handing over (:meth:`PytestRunner.can_hand_over`, :meth:`PytestRunner.hand_over_tail`)
    A running slice can give tests it has not started to another slice, on POSIX systems,
    unless pytest-xdist distributes them. ``args:`` that turn xdist on (``-n 2``, ``-n auto``,
    ``--dist load``, ``-d``, ``--tx``; not ``-n 0``, nor anything with ``-p no:xdist``) make
    ``can_hand_over`` False. As the run starts, the selection plugin checks pytest's
    own options too (xdist may come from ``addopts`` or ``PYTEST_ADDOPTS``) and records the
    answer as ``"handover"`` in ``{report_dir}/dagpar_pytest_run.json``; when it is false,
    ``hand_over_tail`` answers None. Otherwise, once collection has settled, the plugin
    writes the run order to ``{report_dir}/dagpar_pytest_order.json`` (``[[path, name], ...]``,
    named exactly as listed) and keeps ``{report_dir}/dagpar_pytest_claim``, one ASCII line
    ``<started> <limit>`` that both sides change only under ``flock``. pytest counts each test
    as started before running it, unless it lies at or beyond the limit: then pytest neither runs
    nor reports it (no JUnit entry, no progress), and says at the end of its output how many it
    gave up. ``hand_over_tail`` passes the tests in between to ``choose`` and lowers the
    limit by as many as it takes from the end; it names the running test too, with the seconds
    since the progress file last grew (pytest starts a test as the one before it is counted
    there). It answers ``[]`` without calling ``choose`` until pytest has written its run
    information and order. As a test tears down, pytest settles the
    next one the same way; when that one was taken, it tears every fixture down there and then,
    as after its last test, so that a teardown error is reported against the test. When pytest
    stops (``-x``, or the session ends) the limit drops to what has started: nothing more can be
    taken.

Parsing (:meth:`PytestRunner.parse`)
    ``{report_dir}/pytest-junit.xml`` → one :class:`~dagpar_cli.model.TestResult` per test, named
    exactly as listed (see :mod:`dagpar_plugins.pytest.report`); ``[]`` when pytest wrote no
    report. Unless ``junit_logging`` puts captured output in it (or pytest-xdist runs the
    tests), the report holds only the tests that did not pass: a passing test's result comes
    from its end event (:mod:`dagpar_plugins.pytest.pytest_junit`), which costs the slice far
    less than pytest's JUnit writer. A test's seconds are what it cost the slice: the wall time
    from the start of its run protocol to the end of its teardown, pytest's reporting and the
    plugin's bookkeeping included (the ``dagpar.seconds`` property, or the end event's seconds),
    so that a file of many tiny tests is not mistaken for a long start-up. The end events are
    those the stream of *report_dir* read (once the run is over, it reads the rest of its file),
    so dagpar decodes each line once; without a stream, or when its reading failed, ``parse``
    reads the file itself.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any

from dagpar_cli import (
    ExecutionError,
    Outcome,
    Runner,
    RunnerCommand,
    RunnerHost,
    RunnerRegistry,
    RunnerSpec,
    Selection,
    TailChooser,
    TestCase,
    TestResult,
    TestStream,
    ToolchainRegistry,
    hookimpl,
    untrusted,
)

from .collect import COLLECTION_ERROR, list_tests
from .command import compile_command
from .detect import detect
from .files import PROGRESS_FILE
from .handover import can_lock, distributes, hand_over
from .interpreter import find_pytest, import_paths, interpreter_of
from .report import parse_report
from .stream import PytestStream

__all__ = [
    "COLLECTION_ERROR",
    "NAME",
    "PytestRunner",
    "dagpar_detect_toolchains",
    "dagpar_register_runners",
    "dagpar_register_toolchains",
    "find_pytest",
]

#: The runner's name (``use: pytest``, ``RunnerSpec.name``).
NAME = "pytest"


class PytestRunner(Runner):
    """pytest, driven as the module documentation describes."""

    name = NAME

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: The stream opened on each report directory, while dagpar holds it.
        self._streams: weakref.WeakValueDictionary[Path, PytestStream] = (
            weakref.WeakValueDictionary()
        )

    def collect(self, spec: RunnerSpec, host: RunnerHost) -> list[TestCase]:
        """List every test of the source tree with ``pytest --collect-only``."""
        return list_tests(spec, host)

    def installed(self, spec: RunnerSpec) -> list[str] | None:
        """The ``sys.path`` of the interpreter that runs pytest."""
        try:
            command = find_pytest(spec)
        except ExecutionError:
            return None  # the listing will say so
        python = interpreter_of(command, spec.source_dir)
        return None if python is None else import_paths(python, spec.source_dir, spec.workspace)

    def progress(self, spec: RunnerSpec, report_dir: Path) -> int | None:
        """Tests finished so far: the size of the selection plugin's progress file."""
        try:
            return untrusted.lstat(report_dir, PROGRESS_FILE).st_size
        except OSError:
            return 0  # pytest has not started a test yet

    def stream(self, spec: RunnerSpec, report_dir: Path) -> TestStream | None:
        """The selection plugin's per-test events under *report_dir*."""
        stream = PytestStream(report_dir)
        with self._lock:
            self._streams[report_dir] = stream
        return stream

    def can_hand_over(self, spec: RunnerSpec) -> bool:
        """Yes, on POSIX systems, unless ``args:`` turn pytest-xdist on."""
        return can_lock() and not distributes(spec.args)

    def hand_over_tail(
        self, spec: RunnerSpec, report_dir: Path, choose: TailChooser
    ) -> list[TestCase] | None:
        """Take the unstarted tail ``choose`` asks for from a running slice."""
        return hand_over(report_dir, choose)

    def command(self, spec: RunnerSpec, selection: Selection) -> list[RunnerCommand]:
        """Compile a slice's selection into one pytest command."""
        return compile_command(spec, selection)

    def parse(self, spec: RunnerSpec, report_dir: Path, outcome: Outcome) -> list[TestResult]:
        """Read ``{report_dir}/pytest-junit.xml``; [] when pytest wrote no report (it crashed).

        The passing tests' end events come from the stream opened on *report_dir*, read to the
        end of its file now, where there is one that read without fault; else from the file.
        """
        with self._lock:
            stream = self._streams.pop(report_dir, None)
        ended = None if stream is None else stream.ended()
        return parse_report(report_dir, spec.source_dir, spec.args, ended)


@hookimpl
def dagpar_register_runners(registry: RunnerRegistry) -> None:
    """Register :class:`PytestRunner` as runner ``pytest``."""
    registry.add(PytestRunner())


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
