"""``dagpar queue report``: the whole build's result, from what its nodes stored in Redis.

It waits until every unit of every split call is done (or ``--timeout`` passes), then turns
the stored results into one :class:`~dagpar_cli.model.RunResult`: tests of a unit given up as
lost are errors "lost with worker X", tests nobody finished in time are errors too, and both
make the check an infrastructure failure (exit 4). The run is reported through the reporters a
run uses (JUnit, HTML, OTel, the timing store of the workspace).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dagpar_cli.config import QueueOptions
from dagpar_cli.model import Attempt, CheckResult, RunResult, SliceResult, Status, TestResult
from dagpar_cli.queue.build import CallState, QueueBuild
from dagpar_cli.queue.client import QueueError
from dagpar_cli.queue.results import load_unit
from dagpar_cli.queue.units import test_case

__all__ = ["RERUN_OFFSET", "BuildReport", "collect_build", "failed_tests", "wait_for_build"]

#: Seconds the report waits on an unfinished build that no node is in any more.
IDLE_SECONDS = 60.0

#: How far rerun units' slice numbers start after the first round's (``--retry-failed``).
RERUN_OFFSET = 1000


@dataclass(frozen=True, slots=True)
class BuildReport:
    """The build's merged result and the runner of each toolchain instance in it."""

    run: RunResult
    runner_of: dict[str, str]
    #: Tests no node finished before the timeout.
    missing: int


def wait_for_build(
    build: QueueBuild,
    timeout: float,
    *,
    idle: float = IDLE_SECONDS,
    poll: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
) -> list[CallState]:
    """Every split call's state once all are complete and no node is left in the build (a
    node that died stops saying so after twice its lease); or as they are when *timeout*
    passes, or when no node has been in an unfinished build for *idle* seconds (nobody is
    left to run what remains).

    :raises QueueError: no node filled any queue of the build within *timeout*.
    """
    deadline = clock() + timeout
    seen = clock()
    while True:
        states = [build.state(call) for call in build.calls()]
        nodes = build.nodes()
        now = clock()
        if nodes:
            seen = now
        # A node still in the build may yet fill the queue of a split call it reaches late.
        if states and all(s.complete for s in states) and not nodes:
            return states
        if states and now - seen >= idle:
            return states
        if now >= deadline:
            if not states:
                raise QueueError(
                    f"queue build {build.options.build!r}: no node filled its queue within "
                    f"{timeout:g}s (--timeout); check --queue and --build"
                )
            return states
        time.sleep(poll)


def _errors(check: str, tests: Sequence[str], message: str, index: int) -> list[TestResult]:
    out = []
    for test in tests:
        case = test_case(test)
        out.append(
            TestResult(
                path=case.path,
                name=case.name,
                occurrence=case.occurrence,
                status=Status.ERROR,
                message=message,
                check=check,
                slice=index,
            )
        )
    return out


def failed_tests(state: CallState) -> dict[str, float]:
    """The tests of a drained queue that failed, errored or were lost: id -> seconds."""
    failed: dict[str, float] = {}
    for number, unit in state.units.items():
        if number in state.lost:
            share = unit.predicted_seconds / max(1, len(unit.tests))
            failed.update((t, share) for t in unit.tests)
        elif number in state.results:
            _, _, results, _ = load_unit(state.results[number])
            failed.update((r.id, r.seconds) for r in results if r.status.is_bad)
    return failed


@dataclass(slots=True)
class _Check:
    results: dict[str, TestResult] = field(default_factory=dict)
    slices: list[SliceResult] = field(default_factory=list)


def collect_build(
    options: QueueOptions, states: Sequence[CallState], timeout: float
) -> BuildReport:
    """Merge *states* into one result, check by check (a check may split several calls).

    The queues of ``--retry-failed`` come last: a rerun replaces the test's first result,
    which becomes an earlier attempt (a test that passes on the rerun is flaky).
    """
    checks: dict[str, _Check] = {}
    runner_of: dict[str, str] = {}
    started = min((float(s.meta.get("started", 0) or 0) for s in states), default=0.0)
    ended = started
    missing = 0
    for state in sorted(states, key=lambda s: bool(s.meta.get("retry_of"))):
        check = state.check
        rerun = bool(state.meta.get("retry_of"))
        if state.meta.get("runner"):
            runner_of[check.partition(":")[0]] = state.meta["runner"]
        merged = checks.setdefault(check, _Check())
        for number, unit in sorted(state.units.items()):
            index = number + (RERUN_OFFSET if rerun else 0)
            if number in state.results:
                worker, seconds, results, end = load_unit(state.results[number])
                ended = max(ended, end)
                results = [_over(merged.results.get(r.id), r) if rerun else r for r in results]
                merged.results.update((r.id, r) for r in results)
                merged.slices.append(
                    SliceResult(
                        index=index,
                        items=unit.items,
                        results=tuple(results),
                        seconds=seconds,
                        predicted_seconds=unit.predicted_seconds,
                        started=max(0.0, end - seconds - started) if end else 0.0,
                        where=worker,
                    )
                )
                continue
            if number in state.lost:
                error = f"lost with worker {state.lost[number] or 'an unknown worker'}"
            else:
                error = "not run: no node finished it before the report gave up waiting"
                missing += len(unit.tests)
            errors = _errors(check, unit.tests, error, index)
            if rerun:  # the first results stand
                errors = [e for e in errors if e.id not in merged.results]
            merged.results.update((e.id, e) for e in errors)
            merged.slices.append(
                SliceResult(
                    index=index,
                    items=unit.items,
                    results=tuple(errors),
                    seconds=0.0,
                    predicted_seconds=unit.predicted_seconds,
                    error=f"unit {number}: {error}",
                    infrastructure_error=True,
                    where=state.lost.get(number, ""),
                )
            )
    out = []
    for name, merged in sorted(checks.items()):
        final = merged.results
        # A unit that was lost counts unless every one of its tests was rerun since.
        failed = [
            s
            for s in merged.slices
            if s.infrastructure_error and any(final.get(r.id) is r for r in s.results)
        ]
        error = (
            f"{len(failed)} of {len(merged.slices)} units failed: {failed[0].error}"
            if failed
            else ""
        )
        out.append(
            CheckResult(
                name=name,
                results=tuple(final.values()),
                slices=tuple(sorted(merged.slices, key=lambda s: s.index)),
                error=error,
                infrastructure_error=bool(failed),
                seconds=max(0.0, ended - started),
            )
        )
    run = RunResult(checks=tuple(out), seconds=max(0.0, ended - started))
    return BuildReport(run=run, runner_of=runner_of, missing=missing)


def _over(first: TestResult | None, rerun: TestResult) -> TestResult:
    """*rerun* with *first* (and its own earlier attempts) as earlier attempts."""
    if first is None:
        return rerun
    earlier = (
        *first.attempts,
        Attempt(first.status, first.seconds, first.message, first.details),
        *rerun.attempts,
    )
    return dataclasses.replace(rerun, attempts=earlier)
