"""The tail-stealing scheduler on its own: fake runners, plain ``run_slice`` callables.

A running slice offers its unstarted tests while its runner command runs; a worker with nothing
left to start takes the back part (:func:`~dagpar_cli.planning.tail_rule.tail_to_take`) and runs
it as a new slice of the same split call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pluggy
import pytest

from dagpar_cli import hookimpl, hookspecs
from dagpar_cli.execution.scheduler import tail_stealing
from dagpar_cli.execution.scheduler.api import SplitJob, TailSlices
from dagpar_cli.execution.scheduler.tail_stealing import TailStealingScheduler
from dagpar_cli.model import (
    Item,
    Plan,
    RunnerSpec,
    SlicePlan,
    SliceResult,
    TailChooser,
    TestCase,
)
from dagpar_cli.runtime.context import (
    CallContext,
    SliceContext,
    current_call,
    enter_call,
    leave_call,
)

CHECK = "api:test"
#: The file every test lives in, as the runner names it (relative to the source, ``api``).
FILE = "tests/test_a.py"
WS_FILE = f"api/{FILE}"
WHOLE = Item((FILE,), WS_FILE)
STARTUP = 0.2


def source_tests(n: int) -> list[TestCase]:
    return [TestCase(FILE, f"test_{i}") for i in range(n)]


def predictions(seconds: Sequence[float]) -> dict[str, float]:
    """Predicted seconds by workspace-relative id, for ``test_0``, ``test_1``..."""
    return {f"{WS_FILE}::test_{i}": s for i, s in enumerate(seconds)}


class Runners:
    """A runner that can hand over: it holds the pending tests and asks ``choose`` about them.

    Once it gave some tests away it starts all the others (so a test sees one tail, not many).
    """

    def __init__(self, pending: Sequence[TestCase], *, can: bool = True) -> None:
        self.pending = list(pending)
        self.can = can
        self.refuse = False
        self.started = 0
        self.running: tuple[TestCase, float] | None = None
        self.asked = 0
        self.given: list[list[TestCase]] = []
        #: Set when tests were given away.
        self.gave = threading.Event()

    def get(self, name: str) -> Runners:
        """Registry look-up: this one fake answers for every runner name."""
        return self

    def can_hand_over(self, spec: RunnerSpec) -> bool:
        return self.can and spec.name == "fake"

    def hand_over_tail(
        self, spec: RunnerSpec, report_dir: Path, choose: TailChooser
    ) -> list[TestCase] | None:
        self.asked += 1
        if self.refuse:
            return None
        k = choose(list(self.pending), self.started, self.running)
        if not k:
            return []
        taken = self.pending[len(self.pending) - k :]
        self.given.append(taken)
        self.started += len(self.pending) - k
        self.pending = []
        self.gave.set()
        return taken


class HandedOver:
    """Records ``dagpar_slice_handed_over``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, SlicePlan, list[TestCase], SlicePlan]] = []

    @hookimpl
    def dagpar_slice_handed_over(
        self, check: str, slice: SlicePlan, tests: list[TestCase], to: SlicePlan
    ) -> None:
        self.calls.append((check, slice, tests, to))


class World:
    """A tail-stealing scheduler with a fake runner and a recorder of the hand-over hook."""

    def __init__(self, tmp_path: Path, runners: Runners, workers: int = 2) -> None:
        self.tmp_path = tmp_path
        self.spec = RunnerSpec(name="fake", workspace=tmp_path, source="api")
        self.runners = runners
        self.recorder = HandedOver()
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        pm.register(self.recorder)
        self.scheduler = TailStealingScheduler(workers, hook=pm.hook, runners=runners)
        self.call = CallContext(
            runtime=cast(Any, None), name=CHECK, toolchain=cast(Any, SimpleNamespace())
        )

    def slice(
        self, sp: SlicePlan, job: SplitJob | None, *, shares_mounts: bool = True
    ) -> SliceContext:
        return SliceContext(
            call=self.call,
            plan=sp,
            total=1,
            function="test",
            report_dir=self.tmp_path,
            env={},
            deadline=None,
            runner="fake",
            prefix="api",
            narrowed=False,
            job=job,
            shares_mounts=shares_mounts,
        )


def job_of(
    plan: Plan, seconds: Sequence[float], *, hands_over: bool = True, run_slice: Any = None
) -> SplitJob:
    def never(sp: SlicePlan, total: int, narrowed: bool) -> tuple[SliceResult, Any]:
        raise AssertionError("no slice runs in this test")

    return SplitJob(
        check=CHECK,
        plan=plan,
        run_slice=run_slice or never,
        hands_over=hands_over,
        predicted=predictions(seconds),
        startup=STARTUP,
        tails=TailSlices(max((sp.index for sp in plan.slices), default=0)),
    )


def planned(*indexes: int, tests: int = 10) -> Plan:
    slices = tuple(
        SlicePlan(
            index=i,
            items=(WHOLE,),
            predicted_seconds=float(tests),
            tests=tuple(t.under("api") for t in source_tests(tests)),
        )
        for i in indexes
    )
    return Plan(slices=slices, predicted_wall_seconds=float(tests), workers=2)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path, Runners(source_tests(10)))
    yield world
    world.scheduler.close()


# ---------------------------------------------------------------------------------------------
# The whole flow: an idle worker takes a tail and runs it as a new slice
# ---------------------------------------------------------------------------------------------


def test_an_idle_worker_takes_the_tail_of_a_running_slice_and_runs_it(world: World) -> None:
    scheduler = world.scheduler
    offered = threading.Event()
    ran: list[tuple[int, int, bool, CallContext | None]] = []
    contexts: dict[int, SliceContext] = {}
    lock = threading.Lock()

    def run_slice(sp: SlicePlan, total: int, narrowed: bool) -> tuple[SliceResult, Any]:
        with lock:
            ran.append((sp.index, total, narrowed, current_call()))
        ctx = world.slice(sp, job)
        contexts[sp.index] = ctx
        with scheduler.attend(ctx):
            if sp.index == 1:
                # The victim: its runner command runs until a worker took its tail.
                with scheduler.offering(ctx, world.spec, world.tmp_path):
                    offered.set()
                    assert world.runners.gave.wait(20), "no idle worker took the tail"
            elif sp.index == 2:
                # Ends once the victim offers: its worker then has nothing left to start.
                assert offered.wait(20)
        return SliceResult(index=sp.index, items=sp.items, results=(), seconds=0.0), sp.index

    token = enter_call(world.call)
    try:
        job = job_of(planned(1, 2), [1.0] * 10, run_slice=run_slice)
    finally:
        leave_call(token)
    outcomes = scheduler.run(job)

    # Ten 1 s tests and a 0.2 s start-up: the back five go, so both end after about 5 s.
    tail = tuple(TestCase(WS_FILE, f"test_{i}") for i in range(5, 10))
    new = SlicePlan(
        index=3,
        items=tuple(Item((FILE, t.name), WS_FILE) for t in tail),
        predicted_seconds=STARTUP + 5.0,
        tests=tail,
    )
    assert [(sp, value) for sp, _, value in outcomes] == [
        (job.plan.slices[0], 1),
        (job.plan.slices[1], 2),
        (new, 3),
    ]
    # The tail slice is numbered after the plan, told it is narrowed, and runs in the split
    # call's own context.
    assert sorted(ran, key=lambda r: r[0])[2] == (3, 3, True, world.call)
    assert {index for index, *_ in ran} == {1, 2, 3}
    assert world.recorder.calls == [(CHECK, job.plan.slices[0], list(tail), new)]
    victim = contexts[1]
    assert victim.handed == list(tail)
    assert victim.handed_seconds == pytest.approx(5.0)
    assert job.tails.closed


def test_a_worker_the_plan_leaves_without_a_slice_waits_for_a_tail_to_take(world: World) -> None:
    # One slice for two workers: the other worker has only tails to look for, and the slice
    # reaches its runner a while after its worker started it (directories, hooks, set-up).
    scheduler = world.scheduler

    def run_slice(sp: SlicePlan, total: int, narrowed: bool) -> tuple[SliceResult, Any]:
        ctx = world.slice(sp, job)
        if sp.index == 1:
            while scheduler.queued:  # both workers have started their task
                time.sleep(0.001)
            time.sleep(0.03)
            with scheduler.attend(ctx), scheduler.offering(ctx, world.spec, world.tmp_path):
                assert world.runners.gave.wait(5), "the idle worker gave up before the offer"
        return SliceResult(index=sp.index, items=sp.items, results=(), seconds=0.0), None

    job = job_of(planned(1), [1.0] * 10, run_slice=run_slice)
    outcomes = scheduler.run(job)
    assert [sp.index for sp, _, _ in outcomes] == [1, 2]
    assert [len(sp.tests) for sp, _, _ in outcomes] == [10, 5]


# ---------------------------------------------------------------------------------------------
# Looking for a tail (find), one step at a time
# ---------------------------------------------------------------------------------------------


def test_find_cuts_where_both_slices_end_soonest(world: World) -> None:
    job = job_of(planned(1), [1.0] * 10)
    victim = world.slice(job.plan.slices[0], job)
    with world.scheduler.offering(victim, world.spec, world.tmp_path) as offer:
        assert world.scheduler.busy()
        tail = world.scheduler.find()
        assert tail is not None
        assert tail.offer is offer
    assert tail.tests == tuple(TestCase(WS_FILE, f"test_{i}") for i in range(5, 10))
    assert tail.selectors == tuple((FILE, f"test_{i}") for i in range(5, 10))
    assert tail.seconds == (1.0,) * 5
    assert victim.handed == list(tail.tests)
    # The split call now waits for the tail's slice; the idle worker releases it when done.
    job.tails.release()
    assert job.tails.close() == []


def test_the_test_a_slice_is_running_counts_before_its_pending_ones(world: World) -> None:
    # One 20 s test is pending; alone it is not worth moving, behind 23 s still to run it is.
    long_running = TestCase(FILE, "test_0")
    world.runners.pending = [TestCase(FILE, "test_1")]
    job = job_of(planned(1, tests=2), [30.0, 20.0])
    victim = world.slice(job.plan.slices[0], job)
    with world.scheduler.offering(victim, world.spec, world.tmp_path):
        assert world.scheduler.find() is None
        world.runners.running = (long_running, 7.0)
        tail = world.scheduler.find()
    assert tail is not None
    assert tail.tests == (TestCase(WS_FILE, "test_1"),)
    job.tails.release()


def test_nothing_is_taken_from_a_slice_that_does_not_share_its_report_directory(
    world: World,
) -> None:
    job = job_of(planned(1), [1.0] * 10)
    victim = world.slice(job.plan.slices[0], job, shares_mounts=False)
    with world.scheduler.offering(victim, world.spec, world.tmp_path):
        assert world.scheduler.find() is None
    assert world.runners.asked == 0
    assert victim.handed == []


def test_a_runner_that_refuses_is_not_asked_again(world: World) -> None:
    world.runners.refuse = True
    job = job_of(planned(1), [1.0] * 10)
    victim = world.slice(job.plan.slices[0], job)
    with world.scheduler.offering(victim, world.spec, world.tmp_path) as offer:
        assert world.scheduler.find() is None
        assert offer.refused
        assert not world.scheduler.busy()
        assert world.scheduler.find() is None
    assert world.runners.asked == 1


def test_a_slice_with_too_little_left_is_settled_for_good(world: World) -> None:
    # 3 x 0.03 s pending, all predicted: worth no more than half a 0.2 s start-up.
    world.runners.pending = source_tests(3)
    job = job_of(planned(1, tests=3), [0.03] * 3)
    victim = world.slice(job.plan.slices[0], job)
    with world.scheduler.offering(victim, world.spec, world.tmp_path) as offer:
        assert world.scheduler.find() is None
        assert offer.settled
        assert not world.scheduler.busy()
    assert world.runners.given == []


def test_a_slice_far_behind_its_predictions_still_hands_its_tail_over(world: World) -> None:
    # 10 tests predicted at 0.1 s, as if the runner's own work per test were left out; the
    # first 5 took 5 s. At that pace the other 5 are worth taking, whatever was predicted.
    world.runners.pending = source_tests(10)[5:]
    world.runners.started = 5
    job = job_of(planned(1, tests=10), [0.1] * 10)
    victim = world.slice(job.plan.slices[0], job)
    with world.scheduler.offering(victim, world.spec, world.tmp_path) as offer:
        offer.started = time.monotonic() - STARTUP - 5.0
        tail = world.scheduler.find()
        assert not offer.settled
    assert tail is not None
    assert len(tail.tests) >= 2
    assert sum(tail.seconds) > 10 * STARTUP
    job.tails.release()


@pytest.mark.parametrize(
    ("predicted", "ran"),
    [
        (0.1, 0.6),  # on its predictions (0.5 s started)
        (0.01, 5.0),  # far behind, but what started was predicted less than one start-up
    ],
)
def test_a_slice_on_its_predictions_or_too_early_to_tell_is_not_scaled(
    world: World, predicted: float, ran: float
) -> None:
    world.runners.pending = source_tests(10)[5:]
    world.runners.started = 5
    job = job_of(planned(1, tests=10), [predicted] * 10)
    victim = world.slice(job.plan.slices[0], job)
    with world.scheduler.offering(victim, world.spec, world.tmp_path) as offer:
        offer.started = time.monotonic() - STARTUP - ran
        seconds, known = offer.seconds(world.runners.pending, 5)
    assert known
    assert seconds == [predicted] * 5


def test_looking_at_a_slice_again_and_again_costs_o_1_per_look(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slice of n tests looked at every poll while it runs: O(n) lookups in all, not O(n) per
    look (which grows as n x polls, and polls grow with the slice's length)."""
    n, looks = 2000, 200
    lookups = 0
    original = tail_stealing.Offer._prediction

    def counted(self: tail_stealing.Offer, test: TestCase) -> float | None:
        nonlocal lookups
        lookups += 1
        return original(self, test)

    monkeypatch.setattr(tail_stealing.Offer, "_prediction", counted)
    world.runners.pending = source_tests(n)
    # Far more work predicted than the idle worker could take in one start-up: it only looks.
    job = job_of(planned(1, tests=n), [0.001] * n)
    victim = world.slice(job.plan.slices[0], job)
    totals = []
    with world.scheduler.offering(victim, world.spec, world.tmp_path) as offer:
        for _ in range(looks):
            totals.append(world.scheduler._peek(offer))
            # pytest moves on: the window of pending tests narrows from the front.
            world.runners.pending = world.runners.pending[5:]
            world.runners.started += 5
    assert lookups <= 2 * n
    assert totals[0] == pytest.approx(n * 0.001)
    assert totals[-1] == pytest.approx((n - 5 * (looks - 1)) * 0.001)


def test_a_closed_offer_gives_nothing(world: World) -> None:
    job = job_of(planned(1), [1.0] * 10)
    victim = world.slice(job.plan.slices[0], job)
    with world.scheduler.offering(victim, world.spec, world.tmp_path) as offer:
        pass
    assert offer.closed
    assert not world.scheduler.busy()
    assert world.scheduler.find() is None
    assert world.runners.asked == 0


@pytest.mark.parametrize("case", ["no job", "no hand-over", "collected"])
def test_offering_is_a_no_op_where_the_split_call_does_not_hand_over(
    world: World, case: str
) -> None:
    job = job_of(planned(1), [1.0] * 10, hands_over=case != "no hand-over")
    if case == "collected":
        job.tails.close()  # a rerun slice, after the split call collected its slices
    victim = world.slice(job.plan.slices[0], None if case == "no job" else job)
    with (
        world.scheduler.attend(victim),
        world.scheduler.offering(victim, world.spec, world.tmp_path) as offer,
    ):
        assert offer is None
        assert not world.scheduler.busy()
    assert world.runners.asked == 0


def test_a_slice_that_will_offer_keeps_idle_workers_looking_until_it_ends(world: World) -> None:
    job = job_of(planned(1), [1.0] * 10)
    victim = world.slice(job.plan.slices[0], job)
    assert not world.scheduler.busy()
    with world.scheduler.attend(victim):
        assert world.scheduler.busy()
    assert not world.scheduler.busy()


def test_hand_over_needs_a_runner_that_can_and_selectors_that_name_tests(world: World) -> None:
    assert world.scheduler.hands_over(world.spec, True)
    assert not world.scheduler.hands_over(world.spec, False)
    assert not world.scheduler.hands_over(None, True)
    other = RunnerSpec(name="other", workspace=world.tmp_path)
    assert not world.scheduler.hands_over(other, True)


def test_cancel_stops_idle_workers_looking(world: World) -> None:
    assert not world.scheduler.stopped.is_set()
    world.scheduler.cancel()
    assert world.scheduler.stopped.is_set()


def test_an_idle_worker_stops_looking_as_soon_as_the_last_slice_stops_offering(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A look that finds nothing worth taking waits for a change; the end of the last offer is
    # one, so the run's end never waits out a poll interval (made very long here).
    monkeypatch.setattr(tail_stealing, "POLL_SECONDS", 60.0)
    scheduler = world.scheduler

    def run_slice(sp: SlicePlan, total: int, narrowed: bool) -> tuple[SliceResult, Any]:
        ctx = world.slice(sp, job)
        with scheduler.attend(ctx):
            if sp.index == 1:
                with scheduler.offering(ctx, world.spec, world.tmp_path):
                    # The other worker, idle, looked (without predictions nothing is worth
                    # taking before a test started) and now waits.
                    while world.runners.asked < 2:
                        time.sleep(0.001)
        return SliceResult(index=sp.index, items=sp.items, results=(), seconds=0.0), None

    job = job_of(planned(1, 2), [], run_slice=run_slice)
    assert [sp.index for sp, _, _ in scheduler.run(job)] == [1, 2]
    closed = threading.Event()
    threading.Thread(target=lambda: (scheduler.close(), closed.set()), daemon=True).start()
    try:
        assert closed.wait(20), "the idle worker kept waiting after the last offer closed"
    finally:
        scheduler.cancel()
