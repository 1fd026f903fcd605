"""The plan request on its own: what the planner is asked, and the run order after it."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import pytest

from dagpar_cli.model import Item, Plan, SlicePlan, TestCase
from dagpar_cli.planning.api import PlanRequest, item_key
from dagpar_cli.planning.greedy import GreedyPlanner
from dagpar_cli.planning.request import (
    DEFAULT_STARTUP,
    OVERSLICE,
    PlannedSplit,
    longest_first,
    plan_split,
)
from dagpar_cli.timings import Prediction, StartupModel

if TYPE_CHECKING:
    from dagpar_cli.timings import TimingStore

A = Item(("tests/test_a.py",), "api/tests/test_a.py")
B = Item(("tests/test_b.py",), "api/tests/test_b.py")
C = Item(("tests/test_c.py", "test_c"), "api/tests/test_c.py")
A1, A2 = TestCase(A.path, "test_one"), TestCase(A.path, "test_two")
B1 = TestCase(B.path, "test_b")
C1 = TestCase(C.path, "test_c")
TESTS = {A.key: [A1, A2], B.key: [B1], C.key: [C1]}


class Store:
    """A timing store with fixed answers, recording what it was asked."""

    def __init__(
        self,
        items: Mapping[str, float],
        tests: Mapping[str, float],
        *,
        startup: float | None = 0.7,
        estimated: frozenset[str] = frozenset(),
        setup: Mapping[str, float] | None = None,
        per_test: float = 0.0,
    ) -> None:
        self.per_test = per_test
        self.setup = dict(setup or {})
        self.items = dict(items)
        self.tests = dict(tests)
        self.startup = startup
        self.estimated = estimated
        self.asked_startup: list[tuple[str, str]] = []
        self.asked_tests: list[list[TestCase]] = []

    def reading(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    def predict_detailed(
        self, instance: str, items: Sequence[Item], tests: Mapping[str, Sequence[TestCase]]
    ) -> Prediction:
        assert instance == "api"
        return Prediction(
            {i.key: self.items[i.key] for i in items if i.key in self.items},
            self.estimated,
            bool(self.items),
            0.1,
        )

    def startup_seconds(self, runner: str, executor: str) -> float | None:
        self.asked_startup.append((runner, executor))
        return self.startup

    def startup_model(self, runner: str, executor: str, prior: float) -> StartupModel | None:
        self.asked_startup.append((runner, executor))
        if self.startup is None:
            return None
        return StartupModel(self.startup, self.per_test)

    def setup_seconds(self, instance: str) -> dict[str, float]:
        assert instance == "api"
        return self.setup

    def predict_tests(self, instance: str, tests: Sequence[TestCase]) -> dict[str, float]:
        self.asked_tests.append(list(tests))
        return {t.id: self.tests.get(t.id, 0.0) for t in tests}


class Planner:
    """Keeps the request and plans one slice per item, in the items' order."""

    name = "recording"

    def __init__(self) -> None:
        self.requests: list[PlanRequest] = []

    def plan(self, request: PlanRequest) -> Plan:
        self.requests.append(request)
        slices = tuple(
            SlicePlan(
                index=i,
                items=(item,),
                predicted_seconds=request.predictions.get(item.key, 0.0),
                tests=tuple(request.tests.get(item.key, ())),
            )
            for i, item in enumerate(request.items, start=1)
        )
        return Plan(slices=slices, predicted_wall_seconds=1.0, workers=request.workers)


def split(store: Store | None, planner: Any = None, **kw: Any) -> PlannedSplit:
    options: dict[str, Any] = {
        "check": "api:test",
        "instance": "api",
        "items": [A, B, C],
        "tests_of": TESTS,
        "runner": "pytest",
        "nested": True,
        "hands_over": False,
        "workers": 3,
        "executor": "local",
        "store": cast("TimingStore | None", store),
        "planner": planner,
        "shard": None,
    }
    options.update(kw)
    return plan_split(**options)


HISTORY = {A.key: 5.0, B.key: 1.0, C.key: 2.0}
PER_TEST = {A1.id: 4.0, A2.id: 1.0, B1.id: 1.0, C1.id: 2.0}


def test_without_history_the_planner_gets_one_slice_per_worker_and_the_default_startup() -> None:
    planner = Planner()
    planned = split(None, planner, executor="docker", shard=(1, 2))
    (request,) = planner.requests
    assert request.check == "api:test"
    assert request.items == (A, B, C)
    assert request.tests == TESTS
    assert (request.has_history, request.predictions, request.finer) == (False, {}, {})
    assert request.max_slices == request.workers == 3
    assert request.startup_seconds == DEFAULT_STARTUP["docker"] == planned.startup
    assert request.shard == (1, 2)
    assert planned.predicted == {}


def test_an_executor_without_a_default_assumes_half_a_second() -> None:
    assert split(None, executor="elsewhere").startup == 0.5


def test_with_history_more_slices_than_workers_may_be_cut_and_long_files_split() -> None:
    store = Store(HISTORY, PER_TEST, estimated=frozenset({C.key}))
    planner = Planner()
    planned = split(store, planner)
    (request,) = planner.requests
    assert request.has_history
    assert request.predictions == HISTORY
    assert request.estimated == frozenset({C.key})
    assert request.spread == 0.1
    assert request.max_slices == OVERSLICE * 3
    assert request.startup_seconds == 0.7 == planned.startup
    assert store.asked_startup == [("pytest", "local")]
    # Only a whole file with more than one test can be cut into its tests.
    assert request.finer == {
        A.key: [
            (Item(("tests/test_a.py", "test_one"), A.path), 4.0),
            (Item(("tests/test_a.py", "test_two"), A.path), 1.0),
        ]
    }
    # Without hand-over the slices keep the planner's order, and no test times are needed.
    assert planned.plan == Planner().plan(request)
    assert planned.predicted == {}


def test_same_named_tests_make_one_finer_item_with_their_seconds_added() -> None:
    # A Jest file with three tests named "same": a name selects all three, so one item does.
    same = [TestCase(A.path, "same", k) for k in range(3)]
    tests = {**TESTS, A.key: [*same, A1]}
    per_test = {same[0].id: 1.0, same[1].id: 2.0, same[2].id: 3.0, A1.id: 4.0}
    planner = Planner()
    split(Store(HISTORY, per_test), planner, tests_of=tests)
    assert planner.requests[0].finer[A.key] == [
        (Item(("tests/test_a.py", "same"), A.path), 6.0),
        (Item(("tests/test_a.py", "test_one"), A.path), 4.0),
    ]


def test_a_flat_field_cannot_be_cut_finer() -> None:
    planner = Planner()
    split(Store(HISTORY, PER_TEST), planner, nested=False)
    assert planner.requests[0].finer == {}


def test_an_unmeasured_startup_keeps_the_default() -> None:
    assert split(Store(HISTORY, PER_TEST, startup=None)).startup == DEFAULT_STARTUP["local"]


def test_without_a_planner_the_count_planner_cuts_by_count() -> None:
    planned = split(None, workers=2)
    assert planned.plan.planner == "count"
    assert [sp.items for sp in planned.plan.slices] == [(A, B), (C,)]


def test_with_hand_over_one_slice_per_worker_longest_first_and_test_times_kept() -> None:
    store = Store(HISTORY, PER_TEST)

    class OneSlice(Planner):
        def plan(self, request: PlanRequest) -> Plan:
            self.requests.append(request)
            sp = SlicePlan(
                index=1,
                items=request.items,
                predicted_seconds=8.0,
                tests=(A1, A2, B1, C1),
            )
            return Plan(slices=(sp,), predicted_wall_seconds=8.0, workers=request.workers)

    planner = OneSlice()
    planned = split(store, planner, items=[B, C, A], hands_over=True)
    (request,) = planner.requests
    assert request.max_slices == 3
    # Every test's time, so a running slice's tail can be weighed.
    assert store.asked_tests == [[B1, C1, A1, A2]]
    assert planned.predicted == {t: PER_TEST[t] for t in (B1.id, C1.id, A1.id, A2.id)}
    (sp,) = planned.plan.slices
    assert sp.items == (A, C, B)
    assert sp.tests == (A1, A2, C1, B1)


def test_longest_first_puts_estimated_items_first_then_the_longest() -> None:
    d = Item(("tests/test_d.py",), "api/tests/test_d.py")
    d1 = TestCase(d.path, "test_d")
    plan = Plan(
        slices=(
            SlicePlan(index=1, items=(A, B, d), predicted_seconds=9.0, tests=(A1, A2, B1, d1)),
            SlicePlan(index=2, items=(C,), predicted_seconds=2.0, tests=(C1,)),
        ),
        predicted_wall_seconds=9.0,
        workers=2,
    )
    seconds = {A.key: 1.0, B.key: 3.0, d.key: 1.0, C.key: 2.0}
    ordered = longest_first(plan, seconds, frozenset({d.key}))
    first, second = ordered.slices
    # d has only an estimate: it runs first, where a surprise shows early; A and (the
    # longer) B follow, longest first; a tie would keep the plan's order.
    assert first.items == (d, B, A)
    assert first.tests == (d1, B1, A1, A2)
    assert second == plan.slices[1]
    assert (first.index, first.predicted_seconds) == (1, 9.0)


@pytest.mark.parametrize("estimated", [frozenset(), frozenset({A.key, B.key})])
def test_longest_first_breaks_ties_by_the_plan_order(estimated: frozenset[str]) -> None:
    plan = Plan(
        slices=(SlicePlan(index=1, items=(A, B), predicted_seconds=2.0, tests=(A1, B1)),),
        predicted_wall_seconds=2.0,
        workers=1,
    )
    ordered = longest_first(plan, {A.key: 1.0, B.key: 1.0}, estimated)
    assert ordered.slices[0].items == (A, B)


def test_a_small_selected_file_with_history_is_planned_as_one_slice() -> None:
    # A filter that kept one file: 0.5 s of tests against a measured 2 s start-up.
    store = Store({A.key: 0.5}, {A1.id: 0.25, A2.id: 0.25}, startup=2.0)
    planned = split(store, GreedyPlanner(), items=[A], workers=4)
    assert [sp.items for sp in planned.plan.slices] == [(A,)]
    # The same file at 20 s is cut into its tests, one slice each.
    store = Store({A.key: 20.0}, {A1.id: 10.0, A2.id: 10.0}, startup=2.0)
    planned = split(store, GreedyPlanner(), items=[A], workers=4)
    assert len(planned.plan.slices) == 2


def test_a_paths_setup_is_part_of_its_whole_items_prediction() -> None:
    planner = Planner()
    split(Store(HISTORY, PER_TEST, setup={A.path: 0.5}), planner)
    (request,) = planner.requests
    # A pays its build in whole; B, with no setup sample yet, the typical one; C names a test.
    assert request.predictions == {A.key: 5.5, B.key: 1.5, C.key: 2.0}


def test_an_item_is_offered_cut_only_when_the_cut_pays_for_its_setup_again() -> None:
    planner = Planner()
    # A's tests (4 s and 1 s) save 1 s when cut: more than a 0.7 s start-up alone, less than a
    # start-up plus A's second 0.5 s build.
    split(Store(HISTORY, PER_TEST, setup={A.path: 0.5}), planner)
    (request,) = planner.requests
    assert A.key not in request.finer
    split(Store(HISTORY, PER_TEST), planner)
    assert A.key in planner.requests[1].finer


def test_with_setups_recorded_a_measured_start_up_of_nothing_is_planned_as_the_default() -> None:
    planner = Planner()
    split(Store(HISTORY, PER_TEST, startup=0.0, setup={A.path: 0.5}), planner)
    split(Store(HISTORY, PER_TEST, startup=0.0), planner)
    assert [r.startup_seconds for r in planner.requests] == [DEFAULT_STARTUP["local"], 0.0]


def test_a_file_of_many_tiny_tests_and_one_long_test_is_cut_into_balanced_slices() -> None:
    """20,000 tests of 1 ms (pytest's own work per test included) and one of 2 s in one file:
    two slices that end together, whichever holds the long test."""
    big = Item(("tests/test_big.py",), "api/tests/test_big.py")
    tests = [TestCase(big.path, f"test_p[{i}]") for i in range(20000)]
    tests.append(TestCase(big.path, "test_slow"))
    per_test = {t.id: 0.001 for t in tests} | {tests[-1].id: 2.0}
    store = Store({big.key: sum(per_test.values())}, per_test, startup=1.5)
    planned = split(
        store,
        GreedyPlanner(),
        items=[big],
        tests_of={big.key: tests},
        hands_over=True,
        workers=2,
    )
    slices = planned.plan.slices
    assert len(slices) == 2
    assert sum(len(sp.tests) for sp in slices) == len(tests)
    first, second = sorted(sp.predicted_seconds for sp in slices)
    assert second - first <= 0.02 * second, [sp.predicted_seconds for sp in slices]


def _files_of_tiny_tests(count: int, size: int) -> tuple[list[Item], dict[str, list[TestCase]]]:
    files = [Item((f"tests/test_{n}.py",), f"api/tests/test_{n}.py") for n in range(count)]
    return files, {f.key: [TestCase(f.path, f"test_{i}") for i in range(size)] for f in files}


def test_a_split_costs_the_fixed_start_up_and_the_per_test_part_goes_to_the_tests() -> None:
    """10,000 tests in 200 files, 0.27 ms each, and a session end of 0.4 ms per test: a slice
    of all of them pays 4 s there, two slices 2 s each, besides a fixed 0.5 s."""
    files, tests = _files_of_tiny_tests(200, 50)
    items = {f.key: 50 * 0.00027 for f in files}
    per_test = {t.id: 0.00027 for ts in tests.values() for t in ts}
    for hands_over in (False, True):
        planner = Planner()
        store = Store(items, per_test, startup=0.5, per_test=0.0004)
        split(store, planner, items=files, tests_of=tests, workers=2, hands_over=hands_over)
        (request,) = planner.requests
        assert request.startup_seconds == 0.5
        assert request.predictions == {f.key: pytest.approx(50 * 0.00067) for f in files}
        planned = split(
            Store(items, per_test, startup=0.5, per_test=0.0004),
            GreedyPlanner(),
            items=files,
            tests_of=tests,
            workers=2,
            hands_over=hands_over,
        )
        assert len(planned.plan.slices) == 2
        assert planned.startup == 0.5
        if hands_over:
            # A running slice's tail is weighed with its tests' share of the overhead too.
            assert len(planned.predicted) == 10000
            assert all(s == pytest.approx(0.00067) for s in planned.predicted.values())
    # The same 2.5 s taken as a fixed start-up of each slice: one slice, as before.
    store = Store(items, per_test, startup=0.5 + 5000 * 0.0004)
    planned = split(store, GreedyPlanner(), items=files, tests_of=tests, workers=2)
    assert len(planned.plan.slices) == 1


def test_a_per_test_overhead_does_not_cut_a_small_file_a_fixed_start_up_keeps_whole() -> None:
    # The inner loop: one file of 8 quick tests against a runner's 0.55 s start-up.
    files, tests = _files_of_tiny_tests(1, 8)
    per_test = {t.id: 0.02 for t in tests[files[0].key]}
    store = Store({files[0].key: 0.16}, per_test, startup=0.55, per_test=0.0004)
    planned = split(store, GreedyPlanner(), items=files, tests_of=tests, workers=2)
    assert len(planned.plan.slices) == 1


def test_an_item_without_listed_tests_counts_as_one_test() -> None:
    planner = Planner()
    split(Store(HISTORY, PER_TEST, per_test=0.25), planner, tests_of={A.key: [A1, A2]})
    (request,) = planner.requests
    assert request.predictions == {A.key: 5.5, B.key: 1.25, C.key: 2.25}


@pytest.mark.parametrize(
    "item",
    [
        Item(("a.py",), "a.py"),
        Item(("a.py", "test_x[1]"), "a.py"),
        Item(("pkg", "TestA", "sub"), "pkg"),
        Item(("a.py",), "src/a.py"),
        Item(("a.py", "t"), "a.py", matrix=(("python", "3.12"),)),
        Item((), "."),
    ],
)
def test_item_key_is_the_items_key(item: Item) -> None:
    assert item_key(item) == item.key
