"""The static scheduler on its own, with plain ``run_slice`` callables (no executor)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dagpar_cli.execution.scheduler.api import SplitJob, TailSlices
from dagpar_cli.execution.scheduler.static import StaticScheduler
from dagpar_cli.model import Item, Plan, RunnerSpec, SlicePlan, SliceResult


def plan_of(*indexes: int) -> Plan:
    """A plan whose slices carry *indexes*, in the order given."""
    slices = tuple(
        SlicePlan(index=i, items=(Item((f"t{i}.py",), f"t{i}.py"),), predicted_seconds=1.0)
        for i in indexes
    )
    return Plan(slices=slices, predicted_wall_seconds=1.0, workers=2)


class Recorder:
    """A ``run_slice`` that records every call, in the order the slices started."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, bool]] = []
        self.lock = threading.Lock()

    def __call__(self, sp: SlicePlan, total: int, narrowed: bool) -> tuple[SliceResult, Any]:
        with self.lock:
            self.calls.append((sp.index, total, narrowed))
        result = SliceResult(index=sp.index, items=sp.items, results=(), seconds=0.0)
        return result, f"value {sp.index}"


@pytest.fixture
def scheduler() -> Iterator[StaticScheduler]:
    scheduler = StaticScheduler(1)
    yield scheduler
    scheduler.close()


def test_slices_start_in_the_plans_numbering_and_each_runs_once(
    scheduler: StaticScheduler,
) -> None:
    run_slice = Recorder()
    job = SplitJob(check="api:test", plan=plan_of(3, 1, 2), run_slice=run_slice, narrowed=True)
    outcomes = scheduler.run(job)
    # One worker: the order they started is the order they ran in.
    assert run_slice.calls == [(1, 3, True), (2, 3, True), (3, 3, True)]
    assert [(sp.index, result.index, value) for sp, result, value in outcomes] == [
        (1, 1, "value 1"),
        (2, 2, "value 2"),
        (3, 3, "value 3"),
    ]
    assert [sp for sp, _, _ in outcomes] == sorted(job.plan.slices, key=lambda s: s.index)


def test_the_split_call_is_closed_to_tails_once_it_ran(scheduler: StaticScheduler) -> None:
    job = SplitJob(check="api:test", plan=plan_of(1), run_slice=Recorder(), tails=TailSlices(1))
    assert not job.tails.closed
    scheduler.run(job)
    assert job.tails.closed


def test_slices_run_on_as_many_workers_as_asked_and_no_more() -> None:
    scheduler = StaticScheduler(2)
    # Two slices can only pass the barrier together, so this ends only if both run at once.
    barrier = threading.Barrier(2, timeout=10)
    running = 0
    most = 0
    lock = threading.Lock()

    def run_slice(sp: SlicePlan, total: int, narrowed: bool) -> tuple[SliceResult, Any]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        if sp.index <= 2:
            barrier.wait()
        with lock:
            running -= 1
        return SliceResult(index=sp.index, items=sp.items, results=(), seconds=0.0), None

    try:
        outcomes = scheduler.run(SplitJob(check="c", plan=plan_of(1, 2, 3, 4), run_slice=run_slice))
    finally:
        scheduler.close()
    assert [sp.index for sp, _, _ in outcomes] == [1, 2, 3, 4]
    assert most == 2


def test_split_calls_of_several_checks_share_the_workers() -> None:
    scheduler = StaticScheduler(2)
    barrier = threading.Barrier(2, timeout=10)

    def meet(sp: SlicePlan, total: int, narrowed: bool) -> tuple[SliceResult, Any]:
        barrier.wait()  # one slice of each check: they must run at the same time
        return SliceResult(index=sp.index, items=sp.items, results=(), seconds=0.0), None

    results: dict[str, int] = {}

    def check(name: str) -> None:
        outcomes = scheduler.run(SplitJob(check=name, plan=plan_of(1), run_slice=meet))
        results[name] = len(outcomes)

    threads = [threading.Thread(target=check, args=(name,)) for name in ("a:x", "b:y")]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
    finally:
        scheduler.close()
    assert results == {"a:x": 1, "b:y": 1}


def test_a_run_slice_that_raises_does_not_leave_the_split_call_waiting(
    scheduler: StaticScheduler,
) -> None:
    def broken(sp: SlicePlan, total: int, narrowed: bool) -> tuple[SliceResult, Any]:
        raise RuntimeError("a bug in run_slice")

    with pytest.raises(RuntimeError, match="a bug in run_slice"):
        scheduler.run(SplitJob(check="c", plan=plan_of(1), run_slice=broken))


def test_static_never_hands_over_and_attending_or_offering_changes_nothing(
    scheduler: StaticScheduler, tmp_path: Path
) -> None:
    spec = RunnerSpec(name="pytest", workspace=tmp_path)
    assert not scheduler.hands_over(spec, True)
    assert not scheduler.hands_over(None, True)
    ctx: Any = object()  # neither context manager looks at the slice
    with scheduler.attend(ctx) as attended, scheduler.offering(ctx, spec, tmp_path) as offered:
        assert attended is None and offered is None
    scheduler.cancel()
    # Cancelling stops nothing of its own: slices still run (they end as not run themselves).
    assert len(scheduler.run(SplitJob(check="c", plan=plan_of(1), run_slice=Recorder()))) == 1


def test_at_least_one_worker() -> None:
    assert StaticScheduler(0).workers == 1
