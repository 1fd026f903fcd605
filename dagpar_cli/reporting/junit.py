"""The JUnit XML report: one file for the whole run (``--junit-xml``), and merging per-node files.

Shape (what Jenkins, GitLab, GitHub test reporters and ``dagpar timings import`` read)::

    <testsuites name="dagpar" tests=.. failures=.. errors=.. skipped=.. time=..>
      <testsuite name="backend:test" tests=.. failures=.. errors=.. skipped=.. time=.. timestamp=..>
        <testcase classname="api.tests.test_a" name="test_x" file="api/tests/test_a.py" time="0.1">
          <failure message=".." type="failed">details</failure>
          <rerunFailure message=".." type="failed"><stackTrace>..</stackTrace></rerunFailure>
          <system-out>..</system-out>
        </testcase>

One ``testsuite`` per check (per combination of a matrix: ``name="check[field=value]"``, with
``matrix.FIELD`` properties), one ``testcase`` per test (each test exactly once). Tests that
share a file and a name (Jest's same-named tests) are as many ``testcase`` elements with the same
attributes, in the order of their occurrence; readers tell them apart by that order. Reruns
(``--retries``) follow Maven Surefire: a flaky test (passed after failing) carries one
``flakyFailure``/``flakyError`` per failed attempt; a test that failed every time carries its final
``failure``/``error`` plus one ``rerunFailure``/``rerunError`` per earlier attempt, oldest first.

Everything a runner said is cleaned first (see :mod:`dagpar_cli.reporting._text`), so the file is
well-formed XML and valid against the JUnit schema whatever the tests printed.
"""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from dagpar_cli._fs import write_through
from dagpar_cli.errors import UsageError
from dagpar_cli.model import (
    Attempt,
    CheckResult,
    RunResult,
    Status,
    TestResult,
    matrix_label,
    sorted_results,
)
from dagpar_cli.plugin import hookimpl
from dagpar_cli.reporting._text import clean_text, truncate
from dagpar_cli.reporting.files import write_report

if TYPE_CHECKING:
    from dagpar_cli.run_context import RunContext

__all__ = [
    "classname_for",
    "dagpar_report",
    "merge_junit",
    "render_junit",
    "write_junit",
]

#: Bytes kept of a ``message`` attribute (a one-line summary; CI UIs show it in a list).
MESSAGE_LIMIT = 8 * 1024
#: Bytes kept of a failure's details or a test's output (head and tail).
TEXT_LIMIT = 1024 * 1024

#: File suffixes stripped when a classname is derived from a test file's path.
_SOURCE_SUFFIXES = frozenset(
    {".py", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".go", ".rb", ".java"}
)

#: The ``type`` attribute of each bad status (JUnit leaves it free-form; CI UIs display it).
_TYPES = {Status.FAILED: "failed", Status.ERROR: "error"}


def classname_for(result: TestResult) -> str:
    """The JUnit ``classname`` of *result*: its own, else one derived from its path.

    A test file's path becomes a dotted module name (``api/tests/test_a.py`` →
    ``api.tests.test_a``, ``web/src/a.test.ts`` → ``web.src.a.test``); a package directory (Go)
    stays as it is (``svc/store``), since that is how ``go test`` names it.

    :param result: the test.
    """
    if result.classname:
        return result.classname
    path = PurePosixPath(result.path)
    if path.suffix in _SOURCE_SUFFIXES:
        return ".".join(path.with_suffix("").parts)
    return result.path


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _timestamp(epoch: float) -> str:
    # The schema's timestamp is ISO 8601 without a zone (Ant's format); UTC is the only
    # unambiguous choice on machines whose local zone differs from the CI server's.
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _message(text: str) -> str:
    return truncate(clean_text(text), MESSAGE_LIMIT)


def _long_text(text: str) -> str:
    return truncate(clean_text(text), TEXT_LIMIT, keep_tail=True)


def _problem(tag: str, status: Status, message: str, details: str) -> ET.Element:
    """A ``failure``/``error`` element: message and type as attributes, details as text."""
    element = ET.Element(tag, {"message": _message(message), "type": _TYPES.get(status, "failed")})
    if details:
        element.text = _long_text(details)
    return element


def _rerun(tag: str, attempt: Attempt) -> ET.Element:
    """A Surefire rerun element (``flakyFailure``, ``rerunError``, ...) for one earlier attempt."""
    element = ET.Element(
        tag, {"message": _message(attempt.message), "type": _TYPES.get(attempt.status, "failed")}
    )
    if attempt.details:
        ET.SubElement(element, "stackTrace").text = _long_text(attempt.details)
    return element


def _rerun_tag(prefix: str, attempt: Attempt) -> str:
    return f"{prefix}Error" if attempt.status is Status.ERROR else f"{prefix}Failure"


def _testcase(result: TestResult) -> ET.Element:
    case = ET.Element(
        "testcase",
        {
            "classname": clean_text(classname_for(result)),
            "name": clean_text(result.name),
            "file": clean_text(result.path),
            "time": _seconds(result.seconds),
        },
    )
    if result.status is Status.SKIPPED:
        skipped = ET.SubElement(case, "skipped", {"message": _message(result.message)})
        if result.details:
            skipped.text = _long_text(result.details)
    elif result.status.is_bad:
        tag = "error" if result.status is Status.ERROR else "failure"
        case.append(_problem(tag, result.status, result.message, result.details))
        for attempt in result.attempts:
            case.append(_rerun(_rerun_tag("rerun", attempt), attempt))
    else:
        # Passed; with attempts it is flaky and each failed attempt is recorded.
        for attempt in result.attempts:
            case.append(_rerun(_rerun_tag("flaky", attempt), attempt))
    if result.stdout:
        ET.SubElement(case, "system-out").text = _long_text(result.stdout)
    return case


def _check_error_case(check: CheckResult) -> ET.Element:
    """A stand-in test case for a check that failed without any failed test.

    Without it a check whose own code raised (or whose slices crashed before reporting) would
    look green in a CI test view.
    """
    case = ET.Element(
        "testcase",
        {"classname": clean_text(check.name), "name": "(check error)", "time": "0.000"},
    )
    case.append(_problem("error", Status.ERROR, check.error.splitlines()[0], check.error))
    return case


def _counts(cases: Sequence[ET.Element]) -> dict[str, int]:
    counts = {"tests": len(cases), "failures": 0, "errors": 0, "skipped": 0}
    for case in cases:
        if case.find("failure") is not None:
            counts["failures"] += 1
        elif case.find("error") is not None:
            counts["errors"] += 1
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
    return counts


def _set_counts(element: ET.Element, counts: dict[str, int], seconds: float) -> None:
    for key in ("tests", "failures", "errors", "skipped"):
        element.set(key, str(counts[key]))
    element.set("time", _seconds(seconds))


def _testsuites(check: CheckResult, started_wall: float, hostname: str) -> list[ET.Element]:
    """The check's suite; for a matrix, one suite per combination (``check[field=value]``)."""
    groups: dict[tuple[tuple[str, str], ...], list[TestResult]] = {}
    for result in check.results:
        groups.setdefault(result.matrix, []).append(result)
    if not groups:
        groups[()] = []
    suites = []
    for position, (matrix, results) in enumerate(sorted(groups.items())):
        cases = [_testcase(r) for r in sorted_results(results)]
        if position == 0 and check.error and not any(r.status.is_bad for r in check.results):
            cases.append(_check_error_case(check))
        seconds = check.seconds or sum(r.seconds for r in results)
        name = f"{check.name}[{matrix_label(matrix)}]" if matrix else check.name
        suite = ET.Element("testsuite", {"name": clean_text(name)})
        _set_counts(suite, _counts(cases), seconds)
        suite.set("timestamp", _timestamp(started_wall + check.started))
        suite.set("hostname", clean_text(hostname))
        if matrix:
            properties = ET.SubElement(suite, "properties")
            for field, value in matrix:
                ET.SubElement(
                    properties, "property", {"name": f"matrix.{field}", "value": clean_text(value)}
                )
        suite.extend(cases)
        suites.append(suite)
    return suites


def _totals(root: ET.Element, seconds: float) -> None:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    # The top-level suites only: a merged test case may carry anything, even a <testsuite>.
    for suite in root.findall("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    _set_counts(root, totals, seconds)


def _serialize(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def render_junit(run: RunResult, *, started_wall: float | None = None) -> bytes:
    """The JUnit XML document of *run*, UTF-8 encoded.

    :param run: the merged result.
    :param started_wall: ``time.time()`` at the start of the run, for the suites' timestamps;
        defaults to now minus the run's duration.
    """
    if started_wall is None:
        started_wall = time.time() - run.seconds
    hostname = socket.gethostname()
    root = ET.Element("testsuites", {"name": "dagpar"})
    for check in run.checks:
        root.extend(_testsuites(check, started_wall, hostname))
    _totals(root, run.seconds)
    return _serialize(root)


def write_junit(run: RunResult, path: Path, *, started_wall: float | None = None) -> None:
    """Write *run* as JUnit XML to *path*, creating its parent directories.

    The file is written next to its final name and renamed, so a reader never sees half a file;
    a link is written through, a device or FIFO in place
    (:func:`~dagpar_cli._fs.write_through`).

    :param run: the merged result.
    :param path: the report file.
    :param started_wall: see :func:`render_junit`.
    """
    write_through(path, render_junit(run, started_wall=started_wall))


@hookimpl
def dagpar_report(run: RunResult, session: RunContext) -> None:
    """Write ``--junit-xml`` when it was given.

    :param run: the merged result.
    :param session: the run's session (its options name the file).
    """
    path = session.options.junit_xml
    if path is not None:
        data = render_junit(run, started_wall=session.started_wall)
        write_report(session, "--junit-xml", path, data)


# --------------------------------------------------------------------------------------------
# merging per-node reports
# --------------------------------------------------------------------------------------------


def _read_suites(path: Path) -> list[ET.Element]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise UsageError(f"{path}: not a JUnit XML file: {exc}") from None
    except (LookupError, ValueError) as exc:
        # An XML declaration naming an encoding expat cannot use ("x-bogus", "utf-32").
        raise UsageError(f"{path}: not a JUnit XML file: unsupported encoding: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if root.tag == "testsuite":
        return [root]
    if root.tag == "testsuites":
        return list(root.iter("testsuite"))
    raise UsageError(f"{path}: not a JUnit XML file: the root element is <{root.tag}>")


def merge_junit(paths: Sequence[Path]) -> tuple[bytes, list[str]]:
    """Combine JUnit files (one per CI node or shard) into one document.

    Suites with the same name (the same check, run in parts on several nodes) become one suite
    holding every node's test cases; its counts are recomputed and its time is the longest
    node's, since the nodes ran at the same time.

    :param paths: the files, in the order their suites should appear.
    :returns: the merged document and warnings (a file without test cases, say).
    :raises UsageError: when a file cannot be read or parsed, or when one test (same suite,
        classname, name and file) appears twice; the message names the test and both files.
        Within one file, test cases with the same attributes are distinct tests (Jest's
        same-named tests), told apart by their order: the N-th of them is the same test as the
        N-th in another file.
    """
    warnings: list[str] = []
    merged: dict[str, ET.Element] = {}
    seconds: dict[str, float] = {}
    seen: dict[tuple[str, str, str, str, int], Path] = {}
    for path in paths:
        suites = _read_suites(path)
        # Per (suite, classname, name, file): how many such cases this file has had so far.
        occurrences: dict[tuple[str, str, str, str], int] = {}
        if not suites:
            warnings.append(f"{path}: holds no test suites")
        elif not any(suite.find("testcase") is not None for suite in suites):
            warnings.append(f"{path}: holds no test cases")
        for suite in suites:
            name = suite.get("name", "")
            target = merged.get(name)
            if target is None:
                target = merged[name] = ET.Element("testsuite", dict(suite.attrib))
                properties = suite.find("properties")
                if properties is not None:
                    target.append(properties)
                seconds[name] = 0.0
            try:
                suite_seconds = float(suite.get("time", "0") or 0)
            except ValueError:
                warnings.append(f"{path}: suite {name!r} has a malformed time; taken as 0")
                suite_seconds = 0.0
            seconds[name] = max(seconds[name], suite_seconds)
            for case in suite.findall("testcase"):
                attrs = (
                    name,
                    case.get("classname", ""),
                    case.get("name", ""),
                    case.get("file", ""),
                )
                occurrence = occurrences.get(attrs, 0)
                occurrences[attrs] = occurrence + 1
                key = (*attrs, occurrence)
                first = seen.get(key)
                if first is not None:
                    test = f"{key[1]}::{key[2]}" if key[1] else key[2]
                    raise UsageError(
                        f"test {test!r} of suite {name!r} appears twice: in {first} and in {path}; "
                        "merge the reports of one run's nodes only, each once"
                    )
                seen[key] = path
                target.append(case)
    root = ET.Element("testsuites", {"name": "dagpar"})
    for name, suite in merged.items():
        cases = suite.findall("testcase")
        _set_counts(suite, _counts(cases), seconds[name])
        root.append(suite)
    _totals(root, sum(seconds.values()))
    for element in root.iter():
        # Re-indenting from scratch keeps the merged file as readable as a fresh one.
        if len(element) and element.text is not None and not element.text.strip():
            element.text = None
        if element.tail is not None and not element.tail.strip():
            element.tail = None
    return _serialize(root), warnings
