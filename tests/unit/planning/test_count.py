"""The fallback planner on its own: a balanced split by item count."""

from __future__ import annotations

import pytest

from dagpar_cli.errors import UsageError
from dagpar_cli.model import Item, TestCase
from dagpar_cli.planning.api import PlanRequest
from dagpar_cli.planning.count import CountPlanner


def items(n: int) -> tuple[Item, ...]:
    return tuple(Item((f"t{i}.py",), f"api/t{i}.py") for i in range(n))


@pytest.mark.parametrize(
    ("n", "workers", "sizes"),
    [(10, 3, [4, 3, 3]), (7, 7, [1] * 7), (2, 5, [1, 1]), (9, 1, [9]), (5, 2, [3, 2])],
)
def test_items_are_cut_into_consecutive_runs_of_nearly_equal_length(
    n: int, workers: int, sizes: list[int]
) -> None:
    request = PlanRequest(check="api:test", items=items(n), workers=workers)
    plan = CountPlanner().plan(request)
    assert [len(sp.items) for sp in plan.slices] == sizes
    assert [it for sp in plan.slices for it in sp.items] == list(request.items)
    assert [sp.index for sp in plan.slices] == list(range(1, len(sizes) + 1))
    assert plan.workers == len(sizes)
    assert plan.planner == "count"


def test_a_slice_predicts_its_startup_and_its_items_and_holds_their_tests() -> None:
    a, b, c = items(3)
    tests = {a.key: [TestCase(a.path, "x"), TestCase(a.path, "y")], c.key: [TestCase(c.path, "z")]}
    request = PlanRequest(
        check="api:test",
        items=(a, b, c),
        workers=2,
        predictions={a.key: 2.0, b.key: 1.0},
        startup_seconds=0.5,
        tests=tests,
    )
    plan = CountPlanner().plan(request)
    first, second = plan.slices
    assert (first.items, first.predicted_seconds, first.tests) == ((a, b), 3.5, (*tests[a.key],))
    assert (second.items, second.predicted_seconds, second.tests) == ((c,), 0.5, (*tests[c.key],))
    assert plan.predicted_wall_seconds == 3.5


def test_no_items_is_an_empty_plan() -> None:
    plan = CountPlanner().plan(PlanRequest(check="api:test", items=(), workers=4))
    assert plan.slices == ()
    assert plan.predicted_wall_seconds == 0.0


def test_with_history_small_work_is_one_slice() -> None:
    some = items(3)
    small = PlanRequest(
        check="api:test",
        items=some,
        workers=3,
        predictions={it.key: 0.2 for it in some},
        has_history=True,
        startup_seconds=1.5,
    )
    plan = CountPlanner().plan(small)
    assert [sp.items for sp in plan.slices] == [some]
    large = PlanRequest(
        check="api:test",
        items=some,
        workers=3,
        predictions={it.key: 4.0 for it in some},
        has_history=True,
        startup_seconds=1.5,
    )
    assert len(CountPlanner().plan(large).slices) == 3


@pytest.mark.parametrize(("n", "total"), [(10, 3), (2, 4), (64, 7), (0, 2)])
def test_shards_together_plan_every_item_once(n: int, total: int) -> None:
    # CI nodes each plan their own shard: one item missing or twice is a test lost or rerun.
    every = items(n)
    planned = [
        it
        for index in range(1, total + 1)
        for sp in CountPlanner()
        .plan(PlanRequest(check="api:test", items=every, workers=2, shard=(index, total)))
        .slices
        for it in sp.items
    ]
    assert planned == list(every)


@pytest.mark.parametrize("shard", [(0, 2), (3, 2)])
def test_a_shard_outside_its_total_is_a_usage_error(shard: tuple[int, int]) -> None:
    request = PlanRequest(check="api:test", items=items(4), workers=2, shard=shard)
    with pytest.raises(UsageError, match=rf"--shard {shard[0]}/{shard[1]}"):
        CountPlanner().plan(request)
