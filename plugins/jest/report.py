"""Reading Jest's ``--json`` report: the shared ground of listing and result parsing.

Jest writes one aggregated JSON document (``--json``). Each entry of ``testResults`` is one test
file with an absolute ``name`` and its ``assertionResults``; a file that could not run at all (a
syntax error, a throw at the top level, no test in it) has ``status: "failed"``, no assertion
results and the formatted error in ``message``.

Test names follow :func:`test_name`: the describe titles and the test title joined by one space,
which is exactly the string Jest matches ``--testNamePattern`` against (``getTestID`` in
jest-circus), so a name read here can always be selected again. Several tests of one file may
share a name; each is a test of its own, numbered by its ``occurrence`` (0, 1, ... in the order
Jest reports them, which is the order the file defines and runs them).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from dagpar_cli import Outcome, RunnerSpec, Status, TestCase, TestResult, untrusted

from .names import SUITE_FAILED

__all__ = [
    "SUITE_FAILED",
    "AssertionReport",
    "FileReport",
    "ReportError",
    "Wanted",
    "first_line",
    "load_report",
    "numbered",
    "parse_report",
    "parse_reports",
    "read_selection",
    "report_from_stdout",
    "strip_ansi",
    "test_name",
    "tests_of",
]


_REPORT = re.compile(r"^jest-(\d+)\.json$")

#: Jest's aggregated report always starts with this key (``formatTestResults``).
_REPORT_START = '{"numFailedTestSuites"'

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class ReportError(ValueError):
    """A Jest report that is missing, truncated or not shaped like Jest's ``--json``."""


@dataclass(frozen=True, slots=True)
class AssertionReport:
    """One test as Jest reported it."""

    #: The test's name (:func:`test_name`).
    name: str
    #: Jest's status: ``passed``, ``failed``, ``pending``, ``todo``, ``skipped``, ``disabled``.
    status: str
    #: Wall seconds (0 when Jest did not time it, e.g. skipped tests).
    seconds: float
    #: Jest's failure messages (assertion diff and stack), ANSI colours removed.
    failures: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FileReport:
    """One test file as Jest reported it."""

    #: The file's path exactly as Jest wrote it (absolute, in the runner's file system).
    path: str
    #: The file's tests in definition order (duplicates kept).
    tests: tuple[AssertionReport, ...]
    #: Jest's status for the file: ``passed``, ``failed`` or ``skipped`` (every test skipped).
    status: str
    #: The file-level message (for a file that failed to run), ANSI colours removed.
    message: str
    #: Wall seconds Jest spent on the file.
    seconds: float

    @property
    def failed_to_run(self) -> bool:
        """Whether Jest could not run the file (it reports no test for it)."""
        return self.status == "failed" and not self.tests


def strip_ansi(text: str) -> str:
    """*text* without terminal colour codes (Jest colours messages when it sees a TTY)."""
    return _ANSI.sub("", text)


def first_line(text: str, *, skip: Sequence[str] = ()) -> str:
    """The first non-blank line of *text*, stripped, ignoring lines equal to one in *skip*."""
    for line in text.splitlines():
        stripped = line.strip().lstrip("●").strip()
        if stripped and stripped not in skip:
            return stripped
    return ""


def test_name(assertion: Mapping[str, Any]) -> str:
    """The name of one entry of ``assertionResults``: describe titles and title, one space apart.

    This is Jest's ``fullName`` except for a test whose own title is empty: ``fullName`` then
    drops the trailing separator, while ``--testNamePattern`` is matched against the form with
    it. dagpar uses the form the pattern sees, so every listed name can be selected exactly.
    """
    ancestors = assertion.get("ancestorTitles")
    title = assertion.get("title")
    if isinstance(ancestors, list) and isinstance(title, str):
        return " ".join([*(str(a) for a in ancestors), title])
    full = assertion.get("fullName")
    if isinstance(full, str):
        return full
    raise ReportError(f"a test entry has neither ancestorTitles/title nor fullName: {assertion!r}")


def _seconds(milliseconds: object) -> float:
    """Non-negative finite seconds; 0 for anything else (the planner adds these up)."""
    if not isinstance(milliseconds, (int, float)) or isinstance(milliseconds, bool):
        return 0.0
    try:
        seconds = float(milliseconds) / 1000.0
    except OverflowError:  # an integer beyond float's range
        return 0.0
    return seconds if math.isfinite(seconds) and seconds >= 0 else 0.0


def _assertion(raw: object) -> AssertionReport:
    if not isinstance(raw, Mapping):
        raise ReportError(f"a test entry is not an object: {raw!r:.80}")
    failures = raw.get("failureMessages") or []
    return AssertionReport(
        name=test_name(raw),
        status=str(raw.get("status", "")),
        seconds=_seconds(raw.get("duration")),
        failures=tuple(strip_ansi(str(f)) for f in failures) if isinstance(failures, list) else (),
    )


def _file(raw: object) -> FileReport:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise ReportError(f"a testResults entry has no file name: {raw!r:.80}")
    assertions = raw.get("assertionResults") or []
    if not isinstance(assertions, list):
        raise ReportError(f"{raw['name']}: assertionResults is not a list")
    start, end = raw.get("startTime"), raw.get("endTime")
    seconds = _seconds(end - start) if isinstance(start, int) and isinstance(end, int) else 0.0
    message = raw.get("message") or ""
    exec_error = raw.get("testExecError")
    if not message and isinstance(exec_error, Mapping):
        message = str(exec_error.get("message") or exec_error.get("stack") or "")
    return FileReport(
        path=raw["name"],
        tests=tuple(_assertion(a) for a in assertions),
        status=str(raw.get("status", "")),
        message=strip_ansi(str(message)),
        seconds=seconds,
    )


def parse_report(data: object) -> list[FileReport]:
    """The file reports of a decoded Jest ``--json`` document.

    :raises ReportError: when *data* is not shaped like Jest's report.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("testResults"), list):
        raise ReportError("not a Jest --json report (no testResults list)")
    return [_file(entry) for entry in data["testResults"]]


def load_report(text: str) -> list[FileReport]:
    """Decode and parse a Jest ``--json`` document.

    :raises ReportError: when *text* is not valid JSON or not Jest's report.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ReportError("not a Jest report (JSON nested too deeply)") from None
    return parse_report(data)


def report_from_stdout(stdout: str) -> list[FileReport]:
    """Find and parse the report in the standard output of ``jest --json``.

    Test files may print to standard output too (a ``process.stdout.write`` at the top level),
    so the report is the last document that starts the way Jest's report starts.

    :raises ReportError: when no report is found.
    """
    start = stdout.rfind(_REPORT_START)
    if start < 0:
        raise ReportError("Jest printed no --json report")
    try:
        data, _ = json.JSONDecoder().raw_decode(stdout, start)
    except json.JSONDecodeError as exc:
        raise ReportError(f"Jest's --json report is truncated or invalid ({exc.msg})") from None
    except RecursionError:
        raise ReportError("Jest's --json report is invalid (JSON nested too deeply)") from None
    return parse_report(data)


# ------------------------------------------------------------------------------------------
# paths
# ------------------------------------------------------------------------------------------


def _relative_paths(
    paths: Iterable[str], spec: RunnerSpec, known: Iterable[str] = ()
) -> dict[str, str]:
    """Jest's absolute *paths*, each relative to the source directory.

    Jest may report real paths (symlinks resolved), or, when it runs in a container, paths under
    wherever the container mounts the source. A path under neither form of the source directory
    loses the same number of leading parts as the others: the number under which the most paths
    name a *known* file or a file of the source directory on the host (so a stray
    ``web/__tests__/a.test.js`` in the source cannot capture ``/app/web/__tests__/a.test.js``).
    A path that matches nothing stays as Jest wrote it, visible rather than guessed.
    """
    roots = [spec.source_dir.as_posix(), spec.source_dir.resolve().as_posix()]
    known_set = set(known)

    def exists(candidate: str) -> bool:
        try:
            return candidate in known_set or (spec.source_dir / candidate).is_file()
        except OSError:  # a name the OS rejects: a part over 255 bytes
            return False

    mapped: dict[str, str] = {}
    foreign: list[tuple[str, tuple[str, ...]]] = []
    for path in paths:
        pure = PurePosixPath(path)
        for root in roots:
            if pure.is_relative_to(root):
                mapped[path] = pure.relative_to(root).as_posix()
                break
        else:
            foreign.append((path, pure.parts))
    if foreign:
        depth = max(len(parts) for _, parts in foreign)
        hits = {
            drop: sum(1 for _, parts in foreign if exists("/".join(parts[drop:])))
            for drop in range(1, depth)
        }
        best = max(hits, key=lambda drop: (hits[drop], -drop)) if hits else 1
        for path, parts in foreign:
            candidate = "/".join(parts[best:])
            if not exists(candidate):
                found = (
                    c for c in ("/".join(parts[d:]) for d in range(1, len(parts))) if exists(c)
                )
                candidate = next(found, path)
            mapped[path] = candidate
    return mapped


def numbered(tests: Iterable[AssertionReport]) -> list[tuple[int, AssertionReport]]:
    """*tests* of one file, each with its occurrence among the tests of the same name."""
    counts: dict[str, int] = {}
    out: list[tuple[int, AssertionReport]] = []
    for test in tests:
        occurrence = counts.get(test.name, 0)
        counts[test.name] = occurrence + 1
        out.append((occurrence, test))
    return out


def tests_of(files: list[FileReport], spec: RunnerSpec) -> list[TestCase]:
    """The tests of a listing run, files by path, tests in definition order.

    Tests of one file that share a name are listed each, numbered by ``occurrence``.
    """
    cases: list[TestCase] = []
    relative = _relative_paths((f.path for f in files), spec)
    for path, report in sorted(((relative[f.path], f) for f in files), key=lambda pf: pf[0]):
        if report.failed_to_run:
            cases.append(TestCase(path, SUITE_FAILED))
            continue
        cases.extend(TestCase(path, t.name, n) for n, t in numbered(report.tests))
    return cases


# ------------------------------------------------------------------------------------------
# a slice's results
# ------------------------------------------------------------------------------------------

_STATUSES = {
    "passed": Status.PASSED,
    "failed": Status.FAILED,
    "pending": Status.SKIPPED,
    "skipped": Status.SKIPPED,
    "disabled": Status.SKIPPED,
    "todo": Status.SKIPPED,
}


_SUITE_HEADERS = ("Test suite failed to run",)


def _suite_message(text: str) -> str:
    """The one line that says why a file failed to run.

    For a file Jest cannot parse, the first line is a generic "Jest encountered an unexpected
    token" and the real cause (``SyntaxError: file: Unexpected token (5:0)``) follows
    ``Details:``; prefer it.
    """
    _, details, after = text.partition("\n    Details:\n")
    return first_line(after if details else text, skip=_SUITE_HEADERS) or "test file failed"


def _result(path: str, occurrence: int, test: AssertionReport, file_error: str) -> TestResult:
    """The result of one test of one file."""
    status = _STATUSES.get(test.status)

    def make(status: Status, message: str = "", details: str = "") -> TestResult:
        return TestResult(
            path=path,
            name=test.name,
            occurrence=occurrence,
            status=status,
            seconds=test.seconds,
            message=message,
            details=details,
        )

    if status is None:
        return make(Status.ERROR, f"Jest reported an unknown status {test.status!r}")
    if status is Status.FAILED:
        details = "\n\n".join(test.failures)
        return make(Status.FAILED, first_line(details) or "failed", details)
    if status is Status.PASSED:
        if file_error:
            # The test passed but the file failed (an error after it, e.g. an unhandled
            # rejection): Jest fails the run, so must dagpar.
            return make(Status.ERROR, _suite_message(file_error), file_error)
        return make(Status.PASSED)
    return make(Status.SKIPPED, "todo" if test.status == "todo" else "")


@dataclass(frozen=True, slots=True)
class Wanted:
    """What one run of a slice was asked to run in one file (its ``jest-K.selection.json``)."""

    #: The names its name pattern selects; None when the file runs whole.
    names: tuple[str, ...] | None = None
    #: The exact ``(name, occurrence)`` tests to report; None for every test of *names*. Jest
    #: cannot run one of several same-named tests alone: it runs them all, and dagpar reports
    #: the ones selected.
    tests: frozenset[tuple[str, int]] | None = None

    def wants(self, name: str, occurrence: int) -> bool:
        """Whether the test *name* (its *occurrence*-th of that name) is to be reported."""
        if self.tests is not None:
            return (name, occurrence) in self.tests
        return self.names is None or name in self.names

    def expected(self) -> list[tuple[str, int]]:
        """The tests that must be reported, when the selection names them (else ``[]``)."""
        if self.tests is not None:
            return sorted(self.tests)
        return [(name, 0) for name in sorted(set(self.names or ()))]


def _errors(
    path: str, wanted: Wanted | None, message: str, details: str = "", seconds: float = 0.0
) -> list[TestResult]:
    """Error results for a file that did not run: its wanted tests, or the file itself."""
    tests = wanted.expected() if wanted is not None else []
    return [
        TestResult(
            path=path,
            name=name,
            occurrence=occurrence,
            status=Status.ERROR,
            seconds=seconds,
            message=message,
            details=details,
        )
        for name, occurrence in (tests or [(SUITE_FAILED, 0)])
    ]


def _wanted_file(entry: object) -> tuple[str, Wanted]:
    """One entry of a selection file (TypeError, KeyError: not what dagpar wrote)."""
    if not isinstance(entry, dict):
        raise TypeError("not an object")
    path, names, tests = entry["path"], entry["names"], entry.get("tests")
    if not isinstance(path, str):
        raise TypeError("path is not a string")
    if names is not None and not (
        isinstance(names, list) and all(isinstance(n, str) for n in names)
    ):
        raise TypeError("names is not a list of strings")
    pairs: set[tuple[str, int]] | None = None
    if tests is not None:
        if not isinstance(tests, list):
            raise TypeError("tests is not a list")
        pairs = set()
        for pair in tests:
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not isinstance(pair[0], str)
                or not isinstance(pair[1], int)
            ):
                raise TypeError("not a [name, occurrence] pair")
            pairs.add((pair[0], pair[1]))
    return path, Wanted(
        names=None if names is None else tuple(names),
        tests=None if pairs is None else frozenset(pairs),
    )


def read_selection(report_dir: Path, index: str) -> dict[str, Wanted] | None:
    """What run *index* was asked for (path → :class:`Wanted`), or None when unknown."""
    try:
        data = json.loads(untrusted.read_text(report_dir, f"jest-{index}.selection.json"))
        return dict(_wanted_file(entry) for entry in data["files"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None


def _file_results(report: FileReport, path: str, wanted: Wanted | None) -> list[TestResult]:
    """The results of one file of one report, restricted to what the run was asked for."""
    if report.failed_to_run:
        message = _suite_message(report.message)
        return _errors(path, wanted, message, report.message, report.seconds)
    file_error = report.message if report.status == "failed" else ""
    if file_error and any(t.status == "failed" for t in report.tests):
        file_error = ""  # the message is the formatted test failures themselves
    results: list[TestResult] = []
    seen: set[tuple[str, int]] = set()
    for occurrence, test in numbered(report.tests):
        # Tests outside the wanted names were skipped by the name filter, not by the project.
        if wanted is None or wanted.wants(test.name, occurrence):
            seen.add((test.name, occurrence))
            results.append(_result(path, occurrence, test, file_error))
    for name, occurrence in wanted.expected() if wanted is not None else []:
        if (name, occurrence) not in seen:
            results.append(
                TestResult(
                    path=path,
                    name=name,
                    occurrence=occurrence,
                    status=Status.ERROR,
                    message="Jest did not report this test (renamed or removed since it was "
                    "listed?)",
                )
            )
    return results


def _parse_one(
    report_dir: Path, index: str, spec: RunnerSpec, outcome: Outcome
) -> list[TestResult]:
    report_file = report_dir / f"jest-{index}.json"
    wanted = read_selection(report_dir, index)
    try:
        files = load_report(untrusted.read_text(report_dir, report_file.name))
    except FileNotFoundError:
        reason = f"Jest wrote no report {report_file.name} (exit {outcome.exit_code})"
        tail = outcome.stderr.strip()
        last = tail.splitlines()[-1].strip() if tail else ""
        reason = f"{reason}: {last}" if last else reason
    except (OSError, UnicodeDecodeError, ReportError) as exc:
        reason = f"Jest's report {report_file.name} is unreadable: {exc}"
        tail = outcome.stderr.strip()
    else:
        return _results(files, wanted, spec)
    if wanted is None:
        return _errors(report_file.name, None, reason, tail)
    return [r for path, want in wanted.items() for r in _errors(path, want, reason, tail)]


def _results(
    files: list[FileReport], wanted: dict[str, Wanted] | None, spec: RunnerSpec
) -> list[TestResult]:
    """The results of one parsed report, restricted to what its run was asked for."""
    results: list[TestResult] = []
    reported: set[str] = set()
    relative = _relative_paths((f.path for f in files), spec, wanted or ())
    for report in files:
        path = relative[report.path]
        reported.add(path)
        results.extend(_file_results(report, path, wanted.get(path) if wanted else None))
    for path, want in (wanted or {}).items():
        if path not in reported:
            results.extend(
                _errors(path, want, "Jest did not run this file (not a test file for Jest?)")
            )
    return results


def parse_reports(spec: RunnerSpec, report_dir: Path, outcome: Outcome) -> list[TestResult]:
    """Read every ``jest-K.json`` of the slice into per-test results.

    A run that wrote no report (Jest crashed, bad configuration) yields error results for what it
    was asked to run, with the end of Jest's output as the message.
    """
    indexes: set[str] = set()
    if report_dir.is_dir():
        for entry in report_dir.iterdir():
            match = _REPORT.match(entry.name)
            if match:
                indexes.add(match.group(1))
            elif entry.name.endswith(".selection.json") and entry.name.startswith("jest-"):
                indexes.add(entry.name[len("jest-") : -len(".selection.json")])
    results: list[TestResult] = []
    for index in sorted(indexes, key=lambda i: (len(i), i)):
        results.extend(_parse_one(report_dir, index, spec, outcome))
    return results
