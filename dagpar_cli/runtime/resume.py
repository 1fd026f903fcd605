"""When a slice's runner dies: what finished stands, the running test is named, the rest resume.

A runner that streams its tests (:meth:`Runner.stream <dagpar_cli.runner_api.Runner.stream>`)
tells dagpar which tests ended, with what result, and which one was running when the runner
died. :func:`death` decides whether a run of the runner died and why; :func:`reconcile` joins a
run's stream with its end-of-run report (the report is the cross-check: a test they disagree on
is an error naming both); :func:`died_running` is the error of the test that was running.

Tests the dead run never started resume in a fresh run of the runner that selects exactly them,
as pytest-xdist replaces a crashed worker, at most :data:`MAX_REPLACEMENTS` times per slice;
``--timeout`` bounds each run, so a test after a hanging one gets a run of its own. After an
interrupt (or ``--failfast``) nothing resumes: the unstarted tests are reported as not run.

The messages here are the contract :mod:`dagpar_cli.runtime.collect` reads for ``--retries``
(:func:`crashed`, :func:`collateral`).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dagpar_cli.model import Status, TestCase, TestResult

__all__ = [
    "INTERRUPTED_BEFORE_START",
    "MAX_REPLACEMENTS",
    "Death",
    "collateral",
    "crashed",
    "death",
    "died_running",
    "gave_up",
    "reconcile",
]

#: Fresh runs of the runner one slice may start after deaths, the first run not counted: enough
#: for a few crashing or hanging tests in one slice, few enough that a runner that dies at
#: every start (a broken environment) costs a handful of start-ups, not one per test.
MAX_REPLACEMENTS = 4

#: The message of a test an interrupt kept from starting.
INTERRUPTED_BEFORE_START = "interrupted before it started"

_CRASH_PREFIX = "crashed the runner"
_TIMEOUT_PREFIX = "timed out after"
_SIGNAL = re.compile(r"^killed by signal (\d+)")
_TIMEOUT = re.compile(r"^timed out after (\d+(?:\.\d+)?)s")


@dataclass(frozen=True, slots=True)
class Death:
    """Why a run of the runner ended before its tests did."""

    #: ``"crash"``, ``"timeout"`` or ``"stop"`` (interrupt, ``--failfast``: nothing resumes).
    kind: str
    #: What the test that was running gets as its message.
    message: str

    @property
    def before_start(self) -> str:
        """The message of a test the run never started, when nothing resumes (a stop)."""
        if self.message == "interrupted":
            return INTERRUPTED_BEFORE_START
        return f"not run: {self.message}"

    @property
    def resumes(self) -> bool:
        """Whether the tests the run never started run again in a fresh run."""
        return self.kind != "stop"


def death(
    *,
    error: str | None,
    exit_code: int | None,
    ok_exit_codes: frozenset[int],
    left_running: bool,
    cancelled: str | None,
) -> Death | None:
    """Whether, and why, a run of the runner died.

    :param error: the execution error its command raised (a kill, a timeout, an interrupt), or
        None when it ended by itself.
    :param exit_code: its exit code when it ended by itself.
    :param ok_exit_codes: the codes that mean "ran, some tests failed".
    :param left_running: whether a test started and never ended.
    :param cancelled: why the whole run was cancelled (``interrupted``, ``--failfast``), or None.
    """
    if cancelled is not None:
        return Death(
            "stop", "interrupted" if cancelled == "interrupted" else f"stopped ({cancelled})"
        )
    if error is not None:
        if error == "interrupted":
            return Death("stop", "interrupted")
        timeout = _TIMEOUT.match(error)
        if timeout:
            return Death("timeout", f"{_TIMEOUT_PREFIX} {float(timeout[1]):.0f} s (--timeout)")
        if error.startswith(_TIMEOUT_PREFIX):
            return Death("timeout", _TIMEOUT_PREFIX.replace(" after", ""))
        signal = _SIGNAL.match(error)
        cause = f"signal {signal[1]}" if signal else error.split(" running: ", 1)[0]
        return Death("crash", f"{_CRASH_PREFIX} ({cause})")
    if exit_code is not None and (exit_code not in ok_exit_codes or left_running):
        return Death("crash", f"{_CRASH_PREFIX} (exit code {exit_code}{_shell_signal(exit_code)})")
    return None


def _shell_signal(exit_code: int) -> str:
    """``, killed by signal 9 (SIGKILL)`` for 137: how a shell or ``docker exec`` reports a
    process a signal ended (128 + the signal), which otherwise reads as a plain failure."""
    if not 128 < exit_code < 128 + signal.NSIG:
        return ""
    number = exit_code - 128
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f", killed by signal {number}"
    return f", killed by signal {number} ({name})"


def died_running(test: TestCase, start: float, cause: Death, ended: float) -> TestResult:
    """The error of *test*, which was running from *start* until its runner died of *cause*
    (noticed at *ended*, wall-clock)."""
    return TestResult(
        path=test.path,
        name=test.name,
        occurrence=test.occurrence,
        status=Status.ERROR,
        seconds=max(ended - start, 0.0),
        message=cause.message,
        start=start,
    )


def gave_up(test: TestCase, cause: Death, replacements: int) -> TestResult:
    """The error of *test*, which never started: its run died of *cause*, and no fresh run
    follows (the slice used its *replacements*, or that run had started nothing)."""
    if replacements >= MAX_REPLACEMENTS:
        why = f"the slice replaced its runner {MAX_REPLACEMENTS} times, the most it may"
    else:
        why = "the runner started no test before it died"
    return TestResult(
        path=test.path,
        name=test.name,
        occurrence=test.occurrence,
        status=Status.ERROR,
        message=f"not run: {cause.message}; {why}",
    )


def reconcile(
    streamed: Mapping[str, TestResult], reported: Sequence[TestResult], runner: str
) -> list[TestResult]:
    """One result per test from a run's stream and its report.

    Where both hold a test, the report's result stands (it has the details), with the
    stream's start time; where they disagree on its status, the result is an error that says
    so. A test only one of them holds keeps that one's result.
    """
    results: list[TestResult] = []
    seen: set[str] = set()
    for result in reported:
        key = result.id
        seen.add(key)
        live = streamed.get(key)
        if live is None:
            results.append(result)
        elif live.status != result.status:
            results.append(
                result.replaced(
                    status=Status.ERROR,
                    message=(
                        f"{runner} disagrees with itself: its per-test stream says "
                        f"{live.status.value}, its report says {result.status.value}"
                        + (f" ({result.message})" if result.message else "")
                    ),
                    start=live.start if result.start is None else result.start,
                )
            )
        elif result.start is None and live.start is not None:
            results.append(result.replaced(start=live.start))
        else:
            results.append(result)
    results.extend(r for key, r in streamed.items() if key not in seen)
    return results


def crashed(result: TestResult) -> bool:
    """Whether *result* is a test that crashed its runner or ran past ``--timeout``."""
    return result.status is Status.ERROR and result.message.startswith(
        (_CRASH_PREFIX, _TIMEOUT_PREFIX)
    )


def collateral(result: TestResult) -> bool:
    """Whether *result* failed for another test's sake or dagpar's: it never ran to an end of
    its own (not run, interrupted, unreported)."""
    return result.status is Status.ERROR and (
        result.message.startswith(("not run", "interrupted"))
        or " report does not mention this test" in result.message
    )
