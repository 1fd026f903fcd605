"""Reading a slice's ``go test -json`` reports while ``go test`` writes them (per-test events).

Each command of a slice writes its standard output, the ``go test -json`` event stream, to
``go-K.json`` in the report directory as it runs (:attr:`RunnerCommand.stdout_file`).
:class:`GoTestStream` reads what is new in each of them on every :meth:`~GoTestStream.poll`
(through :class:`dagpar_cli.untrusted.LineTail`: a half-written last line waits for the next
call; a file that does not exist yet is no error) and folds it with the report parser's own rules
(:func:`.report.read_line`), so that the stream and the end-of-slice report agree:

- a ``run`` event of a top-level test is its start (a test's printed ``=== RUN`` line, which
  ``go test -json`` also reads as an event, is not);
- its ``pass``, ``fail`` or ``skip`` is its end, with the result :func:`.report.test_result`
  gives: subtests fold into their top-level test, and a subtest failure under a passing test
  is output, not a failure;
- times are the events' own ``Time``.

A test binary that exits in a test (``os.Exit(3)``) or dies leaves that test started and never
ended, and the tests after it not started: exactly what dagpar needs to blame the test and run
the rest again. ``os.Exit(0)`` in a test is a panic since Go 1.16 ("unexpected call to
os.Exit(0) during test"): that test ends failed, and the tests after it do not start either. A
package that does not build runs no test; each test it was asked for starts and ends at once,
as the error the report gives it.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dagpar_cli import RunnerSpec, TestCase, TestEvent, untrusted

from .names import reported_name
from .report import (
    PACKAGE_PLACEHOLDER,
    GoPackageRun,
    GoStream,
    package_results,
    read_line,
    test_result,
)
from .source import import_path_of, module_of, package_scanner, path_of

__all__ = ["GoTestStream", "event_time"]

_REPORT = re.compile(r"^go-(\d+)\.json$")
_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")
#: Bytes read from a report at a time.
_READ = 1 << 22
#: A "line" longer than this without an end is no event; it is dropped rather than kept.
_LONGEST_LINE = 1 << 24


def event_time(value: object) -> float | None:
    """The ``Time`` of a ``go test -json`` event (RFC 3339, nanoseconds) as ``time.time()``."""
    if not isinstance(value, str):
        return None
    match = _TIME.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    fraction = float(match.group(7) or 0)
    zone = match.group(8)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds + fraction


@dataclass(slots=True)
class _Package:
    """One package of a report: where it is and what it was asked to run."""

    path: str
    #: Selected names (``TestX``, ``TestX/sub name``); None for the whole package.
    selected: list[str] | None


@dataclass(slots=True)
class _Report:
    """One ``go-K.json`` being read."""

    name: str
    #: The lines of the file; a new file of the name is read from its start.
    tail: untrusted.LineTail
    stream: GoStream = field(default_factory=GoStream)
    #: Import path → the package's place and selection, from the command's manifest.
    packages: dict[str, _Package] | None = None
    #: Top-level tests (import path, go name) started, with their start time.
    started: dict[tuple[str, str], float] = field(default_factory=dict)
    ended: set[tuple[str, str]] = field(default_factory=set)
    #: Packages whose build failure was reported.
    broken: set[str] = field(default_factory=set)


class GoTestStream:
    """The per-test events of one slice's ``go test -json`` commands (see the module doc)."""

    def __init__(self, spec: RunnerSpec, report_dir: Path) -> None:
        self.spec = spec
        self.report_dir = report_dir
        self._module = module_of(spec)
        self._reports: dict[str, _Report] = {}

    def poll(self) -> list[TestEvent]:
        """The events written since the last call, report by report in command order."""
        events: list[TestEvent] = []
        for name in self._names():
            report = self._reports.get(name)
            if report is None:
                tail = untrusted.LineTail(self.report_dir, name, chunk=_READ, longest=_LONGEST_LINE)
                report = self._reports[name] = _Report(name, tail)
            events.extend(self._poll(report))
        return events

    def _names(self) -> list[str]:
        found = [(int(m.group(1)), n) for n in _listdir(self.report_dir) if (m := _REPORT.match(n))]
        return [n for _, n in sorted(found)]

    def _poll(self, report: _Report) -> list[TestEvent]:
        generation = report.tail.generation
        lines = report.tail.lines()
        if report.tail.generation != generation:
            # The command ran again (a new file under the name): new tests, a fresh state.
            report = self._reports[report.name] = _Report(report.name, report.tail)
        events: list[TestEvent] = []
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            event = read_line(line, report.stream)
            events.extend(self._events(report, event, line))
        return events

    def _events(self, report: _Report, event: dict[str, Any] | None, line: str) -> list[TestEvent]:
        if event is None:
            # "FAIL pkg [build failed]" (before Go 1.24): every test of the package is done.
            return self._build_failures(report) if "[" in line else []
        package, test, action = event.get("Package"), event.get("Test"), event.get("Action")
        if not isinstance(package, str) or not isinstance(action, str):
            return []
        if not isinstance(test, str) or not test:
            return self._build_failures(report) if action in ("fail", "skip") else []
        if "/" in test:
            return []
        pkg = report.stream.packages.get(package)
        run = pkg.tests.get(test) if pkg is not None else None
        if pkg is None or run is None or test in pkg.printed:
            return []  # a line the running test printed
        key = (package, test)
        at = event_time(event.get("Time"))
        at = at if at is not None else time.time()
        if action == "run" and key not in report.started:
            report.started[key] = at
            return [
                TestEvent(kind="start", test=TestCase(path, name), at=at)
                for path, name in self._names_of(report, package, test)
            ]
        if action in ("pass", "fail", "skip") and key in report.started and key not in report.ended:
            if run.action != action:
                return []  # a verdict the running test printed about this one
            report.ended.add(key)
            start = report.started[key]
            return [
                TestEvent(
                    kind="end",
                    test=TestCase(path, name),
                    at=at,
                    result=replace(test_result(path, name, pkg), start=start),
                )
                for path, name in self._names_of(report, package, test)
            ]
        return []

    def _package(self, report: _Report, import_path: str) -> _Package:
        if report.packages is None:
            report.packages = self._manifest(report.name)
        known = report.packages.get(import_path)
        if known is None:
            known = report.packages[import_path] = _Package(
                path_of(self._module, import_path), None
            )
        return known

    def _names_of(self, report: _Report, import_path: str, test: str) -> list[tuple[str, str]]:
        """The (path, name) pairs dagpar knows top-level test *test* of *import_path* by: the
        selected subtests under it when only those were asked for, else the test itself."""
        package = self._package(report, import_path)
        names = [
            n
            for n in package.selected or ()
            if n != PACKAGE_PLACEHOLDER and reported_name(n).split("/", 1)[0] == test
        ]
        return [(package.path, n) for n in names or [test]]

    def _build_failures(self, report: _Report) -> list[TestEvent]:
        """Start and end, at once, every test of a package that failed before running any."""
        events: list[TestEvent] = []
        for import_path, pkg in report.stream.packages.items():
            if import_path in report.broken or not _never_ran(pkg):
                continue
            report.broken.add(import_path)
            package = self._package(report, import_path)
            now = time.time()
            results = package_results(
                package.path,
                pkg,
                package.selected,
                scanned=package_scanner(self.spec, package.path),
            )
            for result in results:
                test = result.case
                events.append(TestEvent(kind="start", test=test, at=now))
                events.append(TestEvent(kind="end", test=test, at=now, result=result))
        return events

    def _manifest(self, report: str) -> dict[str, _Package]:
        """The packages command K was asked to run (``go-K.selection.json``), by import path."""
        name = report.replace(".json", ".selection.json")
        try:
            data = json.loads(untrusted.read_text(self.report_dir, name, errors="replace"))
        except (OSError, ValueError, RecursionError):
            return {}
        entries = data.get("packages") if isinstance(data, dict) else None
        packages: dict[str, _Package] = {}
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                continue
            path = entry["path"]
            import_path = entry.get("import_path")
            if not isinstance(import_path, str) or not import_path:
                import_path = import_path_of(self._module, path) or path
            tests = entry.get("tests")
            selected = [t for t in tests if isinstance(t, str)] if isinstance(tests, list) else None
            packages[import_path] = _Package(path, selected)
        return packages


def _never_ran(pkg: GoPackageRun) -> bool:
    """Whether the package failed before its test binary ran a test (a build failure)."""
    return bool(pkg.build_failure) or (pkg.action == "fail" and not pkg.tests)


def _listdir(directory: Path) -> list[str]:
    try:
        return [entry.name for entry in directory.iterdir()]
    except OSError:
        return []
