"""Stage 7: from what the slices reported to every selected test exactly once, with a verdict.

- :func:`fill_missing` — a slice's results: what its runner reported, and every test it was
  expected to run but did not report, as an error that carries the cause;
- :func:`rerun_failed` — ``--retries``: failed tests again, in fresh slices that isolate a
  test that crashed its runner or hung;
- :func:`raise_for_slices` — the split call's verdict from its slices' errors;
- :func:`call_results` — a check's results, with one result for a check that was not split.
"""

from __future__ import annotations

import contextvars
import dataclasses
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dagpar_cli.errors import ExecutionError, TestsFailedError
from dagpar_cli.model import (
    Attempt,
    Item,
    Plan,
    SlicePlan,
    SliceResult,
    Status,
    TestCase,
    TestResult,
)
from dagpar_cli.runtime.resume import collateral, crashed

__all__ = [
    "call_results",
    "fill_missing",
    "raise_for_slices",
    "rerun_failed",
    "short_traceback",
    "unique",
]

#: Failed tests rerun together, at least as long as that keeps the rerun slices within the
#: workers (a test that crashed or hung its runner reruns alone). A test that crashes only on
#: its rerun costs its group nothing more than a replacement run (:mod:`.resume`).
RETRY_GROUP = 10

#: How bad a status is, for keeping the worst of a runner's double report.
_RANK = {Status.ERROR: 3, Status.FAILED: 2, Status.PASSED: 1, Status.SKIPPED: 0}


def fill_missing(
    check: str,
    sp: SlicePlan,
    reported: Sequence[TestResult],
    function: str,
    runner: str | None,
    error: str,
    *,
    interrupted: bool = False,
    seconds: float = 0.0,
) -> list[TestResult]:
    """Every test the slice was expected to run, exactly once, with a status.

    Tests the runner did not report become errors carrying the slice's error (a crash, a
    timeout, an interrupt); for toolchains without a runner each item is one result.
    """
    results = [
        r
        if r.check == check and r.slice == sp.index
        else dataclasses.replace(r, check=check, slice=sp.index)
        for r in unique(reported)
    ]
    seen = {r.id for r in results}
    if sp.tests or runner is not None:
        for test in sp.tests:
            if test.id in seen:
                continue
            if interrupted:
                message = "interrupted before this test finished"
            elif error:
                message = f"not run: {error}"
            else:
                message = f"the {runner} report does not mention this test"
            results.append(
                TestResult(
                    path=test.path,
                    name=test.name,
                    occurrence=test.occurrence,
                    status=Status.ERROR,
                    message=message,
                    check=check,
                    slice=sp.index,
                )
            )
        return results
    # No runner: one result per item, unless the toolchain reported per item itself.
    per_item = seconds / max(1, len(sp.items))
    for item in sp.items:
        name = function if item.name is None else f"{function}::{item.name}"
        if f"{item.path}::{name}" in seen:
            continue
        if interrupted:
            status, message = Status.ERROR, "interrupted"
        elif error:
            status, message = Status.FAILED, error
        else:
            status, message = Status.PASSED, ""
        results.append(
            TestResult(
                path=item.path,
                name=name,
                status=status,
                seconds=per_item,
                message=message,
                check=check,
                slice=sp.index,
            )
        )
    return results


def unique(results: Sequence[TestResult]) -> list[TestResult]:
    """Drop repeated reports of one test, keeping the worst status (a runner's double report)."""
    order: dict[str, TestResult] = {}
    for r in results:
        known = order.get(r.id)
        if known is None or _RANK[r.status] > _RANK[known.status]:
            order[r.id] = r
    return list(order.values())


def rerun_failed(
    plan: Plan,
    merged: list[TestResult],
    *,
    retries: int,
    runner: str | None,
    function: str,
    nested: bool,
    run_slice: Callable[[SlicePlan, int, bool], tuple[SliceResult, Any]],
    cancelled: Callable[[], bool],
    parallelism: int = 1,
) -> tuple[list[TestResult], list[SliceResult]]:
    """Rerun failed tests (``--retries``) in fresh slices.

    Each round reruns every test still failing: a test that crashed its runner or ran past
    ``--timeout`` in a slice of its own, the others in small groups (:func:`_groups`) that
    never hold such a test; up to *parallelism* slices at once. A test that passes on a
    rerun is kept as passed with its failed attempts (flaky) when it had failed on its own; a
    test that had only errored for another's sake (not run, interrupted) is simply passed. One
    that never passes keeps its final failure and every earlier attempt.

    :returns: the final results (same order) and the rerun slices' own results.
    """
    owner: dict[str, Item] = {}
    for sp in plan.slices:
        # The slice's tests by file and by (file, name): each item looks only at its own, not
        # at every test of the slice (a file cut into one item per test would be quadratic).
        by_path: dict[str, list[TestCase]] = {}
        by_name: dict[tuple[str, str], list[TestCase]] = {}
        for test in sp.tests:
            by_path.setdefault(test.path, []).append(test)
            by_name.setdefault((test.path, test.name), []).append(test)
        for item in sp.items:
            name = item.name
            selected = (
                by_path.get(item.path, ()) if name is None else by_name.get((item.path, name), ())
            )
            for test in selected:
                owner.setdefault(test.id, item)
            if runner is None:
                name = function if item.name is None else f"{function}::{item.name}"
                owner.setdefault(f"{item.path}::{name}", item)
    final = {r.id: r for r in merged}
    reruns: list[SliceResult] = []
    index = len(plan.slices)
    for _ in range(retries):
        failed = [r for r in final.values() if r.status.is_bad and r.id in owner]
        if not failed or cancelled():
            break
        slices: list[SlicePlan] = []
        for group in _groups(failed, isolate=runner is not None, parallelism=parallelism):
            items: dict[Item, None] = {}  # an ordered set
            tests: list[TestCase] = []
            for r in group:
                item = owner[r.id]
                if runner is not None and nested and item.name is None:
                    item = Item((item.selector[0], r.name), item.path)
                items.setdefault(item)
                if runner is not None:
                    tests.append(r.case)
            index += 1
            slices.append(
                SlicePlan(
                    index=index, items=tuple(items), predicted_seconds=0.0, tests=tuple(tests)
                )
            )
        for result in _run_all(slices, index, runner is not None, run_slice, parallelism):
            reruns.append(result)
            for again in result.results:
                before = final.get(again.id)
                if before is None or not before.status.is_bad:
                    continue
                if not again.status.is_bad and not before.attempts and collateral(before):
                    final[again.id] = again  # it never failed on its own: not flaky
                    continue
                attempt = Attempt(before.status, before.seconds, before.message, before.details)
                final[again.id] = dataclasses.replace(again, attempts=(*before.attempts, attempt))
    return [final[r.id] for r in merged], reruns


def _groups(
    failed: Sequence[TestResult], *, isolate: bool, parallelism: int
) -> list[list[TestResult]]:
    """The rerun slices of one round: each crashing test alone, the rest in groups of
    :data:`RETRY_GROUP`, or larger where more groups than workers would only queue."""
    if not isolate:
        return [list(failed)]
    alone = [[r] for r in failed if crashed(r)]
    rest = [r for r in failed if not crashed(r)]
    size = max(RETRY_GROUP, -(-len(rest) // max(parallelism, 1)))
    return alone + [rest[i : i + size] for i in range(0, len(rest), size)]


def _run_all(
    slices: Sequence[SlicePlan],
    total: int,
    narrowed: bool,
    run_slice: Callable[[SlicePlan, int, bool], tuple[SliceResult, Any]],
    parallelism: int,
) -> list[SliceResult]:
    """Run *slices*, up to *parallelism* at once, each in a copy of this thread's context (the
    call in progress); their results in slice order."""
    if len(slices) <= 1 or parallelism <= 1:
        return [run_slice(sp, total, narrowed)[0] for sp in slices]
    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="dagpar-rerun") as pool:
        futures = [
            pool.submit(contextvars.copy_context().run, run_slice, sp, total, narrowed)
            for sp in slices
        ]
        return [future.result()[0] for future in futures]


def raise_for_slices(
    slice_results: Sequence[SliceResult], merged: Sequence[TestResult], total: int
) -> None:
    """Fail the split call when a slice failed and still counts after the reruns.

    :raises ExecutionError: a slice failed for want of infrastructure (runner missing, killed).
    :raises TestsFailedError: a slice failed through its tests, or its function raised.
    """
    still_bad = {r.id for r in merged if r.status.is_bad}

    def still_failing(s: SliceResult) -> bool:
        # A slice that failed only through tests that later passed on a rerun is fine now.
        return (
            s.infrastructure_error
            or any(r.id in still_bad for r in s.results)
            or not any(r.status.is_bad for r in s.results)
        )

    errors = [
        f"slice {s.index}/{total}: {s.error}" for s in slice_results if s.error and still_failing(s)
    ]
    if not errors:
        return
    bad = len(still_bad)
    summary = f"{len(errors)} of {total} slices failed"
    if bad:
        summary += f" ({bad} {'test' if bad == 1 else 'tests'} failed or errored)"
    if any(s.infrastructure_error for s in slice_results):
        raise ExecutionError(summary + ": " + errors[0])
    raise TestsFailedError(summary, errors)


def call_results(
    reported: Sequence[TestResult],
    *,
    check: str,
    path: str,
    split: bool,
    error: str,
    details: str,
    infrastructure_error: bool,
    seconds: float,
    interrupted: bool = False,
) -> list[TestResult]:
    """A check's results: everything reported once, and for a check that was not split and
    reported nothing of its own, one result, so its outcome shows in every report, unless an
    interrupt stopped it (before its listing ended, say): it has no result to make up then, and
    its error says what happened.

    :param path: where the one result is placed (the toolchain's source).
    :param split: whether the check made a split call.
    :param error: why the check failed ("" if it passed).
    """
    results = unique(reported)
    if split or (results and not error) or interrupted:
        return results
    name = check.split(":", 1)[1]
    status = Status.PASSED
    if error:
        status = Status.ERROR if infrastructure_error else Status.FAILED
    results.append(
        TestResult(
            path=path,
            name=name,
            status=status,
            seconds=seconds,
            message=error,
            details=details,
            check=check,
        )
    )
    return results


def short_traceback(exc: BaseException) -> str:
    """The last frames of *exc*'s traceback: enough to find a toolchain's own bug."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
