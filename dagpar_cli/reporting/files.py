"""Where the report files go: checked before the run, written after it without losing the rest.

``--junit-xml`` and ``--report-html`` are checked before any test runs (:func:`check_paths`), so
that a path dagpar cannot write is a usage error at once rather than a failure after the whole
run. A report that still cannot be written at the end (:func:`write_report`) does not stop the
other reports or the summary: the failure is noted on the session, and the command prints it as
one line and exits with ``ExitCode.EXECUTION_FAILED`` (:func:`failures`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dagpar_cli._fs import unwritable_reason, write_through
from dagpar_cli.errors import UsageError

if TYPE_CHECKING:
    from dagpar_cli.config import RunOptions
    from dagpar_cli.run_context import RunContext

__all__ = ["check_paths", "failures", "write_report"]

#: The session stash key of the reports that could not be written.
_FAILURES = "dagpar.report-failures"


def _reports(options: RunOptions) -> list[tuple[str, Path]]:
    given = (("--junit-xml", options.junit_xml), ("--report-html", options.report_html))
    return [(flag, path) for flag, path in given if path is not None]


def check_paths(options: RunOptions) -> None:
    """Check that every report file of *options* can be written.

    :raises UsageError: naming the flag, the path and why not.
    """
    for flag, path in _reports(options):
        reason = unwritable_reason(path)
        if reason is not None:
            raise UsageError(
                f"{flag} {path}: cannot write the report there: {reason}; choose a writable path"
            )


def write_report(
    session: RunContext, flag: str, path: Path, data: bytes | str, *, errors: str = "strict"
) -> None:
    """Write one report through links and into devices (see :func:`~dagpar_cli._fs.write_through`).

    A failure is noted for :func:`failures` instead of raised, so the other reports are still
    written and the summary still printed.
    """
    try:
        write_through(path, data, errors=errors)
    except OSError as exc:
        failed = session.stash.setdefault(_FAILURES, [])
        assert isinstance(failed, list)
        failed.append(f"{flag} {path}: could not write the report: {exc.strerror or exc}")


def failures(session: RunContext) -> list[str]:
    """One line for each report :func:`write_report` could not write."""
    failed = session.stash.get(_FAILURES, [])
    assert isinstance(failed, list)
    return [str(line) for line in failed]
