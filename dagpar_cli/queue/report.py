"""``dagpar queue report``: the whole build's result, from what its nodes stored in Redis.

It waits until every unit of every split call is done (or ``--timeout`` passes), then turns
the stored results into one :class:`~dagpar_cli.model.RunResult`: tests of a unit given up as
lost are errors "lost with worker X", tests nobody finished in time are errors too, and both
make the check an infrastructure failure (exit 4). The run is reported through the reporters a
run uses (JUnit, HTML, OTel, the timing store of the workspace).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dagpar_cli.config import QueueOptions
from dagpar_cli.model import CheckResult, RunResult, SliceResult, Status, TestResult
from dagpar_cli.queue.build import CallState, QueueBuild
from dagpar_cli.queue.client import QueueError
from dagpar_cli.queue.results import load_unit
from dagpar_cli.queue.units import test_case

__all__ = ["BuildReport", "collect_build", "wait_for_build"]


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
    poll: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
) -> list[CallState]:
    """Every split call's state once all are complete, or as they are when *timeout* passes.

    :raises QueueError: no node filled any queue of the build within *timeout*.
    """
    deadline = clock() + timeout
    while True:
        states = [build.state(call) for call in build.calls()]
        if states and all(s.complete for s in states):
            return states
        if clock() >= deadline:
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


def collect_build(
    options: QueueOptions, states: Sequence[CallState], timeout: float
) -> BuildReport:
    """Merge *states* into one result, check by check (a check may split several calls)."""
    by_check: dict[str, list[SliceResult]] = {}
    problems: dict[str, list[str]] = {}
    runner_of: dict[str, str] = {}
    started = min((float(s.meta.get("started", 0) or 0) for s in states), default=0.0)
    ended = started
    missing = 0
    for state in states:
        check = state.check
        if state.meta.get("runner"):
            runner_of[check.partition(":")[0]] = state.meta["runner"]
        slices = by_check.setdefault(check, [])
        for number, unit in sorted(state.units.items()):
            items = unit.items
            if number in state.results:
                worker, seconds, results, end = load_unit(state.results[number])
                ended = max(ended, end)
                slices.append(
                    SliceResult(
                        index=number,
                        items=items,
                        results=tuple(results),
                        seconds=seconds,
                        predicted_seconds=unit.predicted_seconds,
                        started=max(0.0, end - seconds - started) if end else 0.0,
                        where=worker,
                    )
                )
                continue
            if number in state.lost:
                worker = state.lost[number] or "an unknown worker"
                error = f"lost with worker {worker}"
            else:
                error = f"not run: no node finished it within {timeout:g}s (--timeout)"
                missing += len(unit.tests)
            problems.setdefault(check, []).append(f"unit {number}: {error}")
            slices.append(
                SliceResult(
                    index=number,
                    items=items,
                    results=tuple(_errors(check, unit.tests, error, number)),
                    seconds=0.0,
                    predicted_seconds=unit.predicted_seconds,
                    error=error,
                    infrastructure_error=True,
                    where=state.lost.get(number, ""),
                )
            )
    checks = []
    for check, slices in sorted(by_check.items()):
        errors = problems.get(check, [])
        error = ""
        if errors:
            error = f"{len(errors)} of {len(slices)} units failed: {errors[0]}"
        checks.append(
            CheckResult(
                name=check,
                results=tuple(r for s in slices for r in s.results),
                slices=tuple(slices),
                error=error,
                infrastructure_error=bool(errors),
                seconds=max(0.0, ended - started),
            )
        )
    run = RunResult(checks=tuple(checks), seconds=max(0.0, ended - started))
    return BuildReport(run=run, runner_of=runner_of, missing=missing)
