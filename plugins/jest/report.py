"""Reading Jest's ``--json`` report: the shared ground of listing and result parsing.

Jest writes one aggregated JSON document (``--json``). Each entry of ``testResults`` is one test
file with an absolute ``name`` and its ``assertionResults``; a file that could not run at all (a
syntax error, a throw at the top level, no test in it) has ``status: "failed"``, no assertion
results and the formatted error in ``message``.

Test names follow :func:`test_name`: the describe titles and the test title joined by one space,
which is exactly the string Jest matches ``--testNamePattern`` against (``getTestID`` in
jest-circus), so a name read here can always be selected again.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SUITE_FAILED",
    "AssertionReport",
    "FileReport",
    "ReportError",
    "first_line",
    "load_report",
    "parse_report",
    "report_from_stdout",
    "strip_ansi",
    "test_name",
]

#: The name dagpar gives a test file that Jest could not load: it stands for the whole file, so
#: that a broken file is listed, selected, run and reported as an error instead of vanishing.
SUITE_FAILED = "(test suite failed to run)"

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
