"""Run results to record into a timing store, for the timing store's tests."""

from __future__ import annotations

import time
from collections.abc import Sequence

from dagpar_cli.model import CheckResult, Item, RunResult, SliceResult, Status, TestResult
from dagpar_cli.timings import TimingStore


def result(test_id: str, seconds: float, status: Status = Status.PASSED) -> TestResult:
    path, _, name = test_id.partition("::")
    return TestResult(path=path, name=name, status=status, seconds=seconds)


def run_of(
    check: str,
    slices: Sequence[tuple[Sequence[TestResult], float]],
    *,
    broken: Sequence[int] = (),
) -> RunResult:
    """A run of one check whose slices hold the given results and took the given seconds."""
    slice_results = []
    for index, (results, seconds) in enumerate(slices, start=1):
        paths = sorted({r.path for r in results})
        slice_results.append(
            SliceResult(
                index=index,
                items=tuple(Item((p,), p) for p in paths),
                results=tuple(results),
                seconds=seconds,
                error="killed" if index in broken else "",
                infrastructure_error=index in broken,
            )
        )
    everything = tuple(r for results, _ in slices for r in results)
    check_result = CheckResult(name=check, results=everything, slices=tuple(slice_results))
    return RunResult(checks=(check_result,), seconds=max(s for _, s in slices))


def record_runs(
    store: TimingStore, check: str, durations: Sequence[dict[str, float]], prefix: str = "run"
) -> None:
    """Record one single-slice run per mapping of test id to seconds, in order."""
    for number, tests in enumerate(durations):
        results = [result(test_id, seconds) for test_id, seconds in tests.items()]
        store.record(
            run_of(check, [(results, sum(tests.values()))]),
            runner_of={"api": "pytest"},
            executor="local",
            run_id=f"{prefix}-{number:03d}",
        )
        # Distinct wall-clock stamps so "the last K" is well defined.
        time.sleep(0.002)
