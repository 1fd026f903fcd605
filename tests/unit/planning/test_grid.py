"""The grid planner on its own: sub-grids, every combination once, balanced by predicted time."""

from __future__ import annotations

import itertools
import random

import pytest

from dagpar_cli.errors import UsageError
from dagpar_cli.model import Item, Plan
from dagpar_cli.planning.grid import plan_grid
from dagpar_cli.timings.predict import borrow_across_matrix


def grid(rows: list[str], files: list[str], field: str = "py") -> list[Item]:
    return [Item((f,), f, ((field, r),)) for r, f in itertools.product(rows, files)]


def assert_sub_grids(plan: Plan, items: list[Item]) -> None:
    seen = [it for sp in plan.slices for it in sp.items]
    assert sorted(it.key for it in seen) == sorted(it.key for it in items)  # each exactly once
    for sp in plan.slices:
        rows = {it.matrix for it in sp.items}
        files = {it.selector for it in sp.items}
        assert len(sp.items) == len(rows) * len(files), sp  # a product of subsets
        assert list(sp.items) == [it for it in items if it in sp.items]  # parent order


def test_cheap_rows_share_a_slice_and_a_long_row_is_cut() -> None:
    items = grid(["a", "b", "c"], [f"f{i}" for i in range(6)])
    seconds = {it.key: (10.0 if it.matrix == (("py", "a"),) else 0.5) for it in items}
    plan = plan_grid(items, seconds, workers=3, max_slices=12, startup=0.1, merge_rows=True)
    assert_sub_grids(plan, items)
    heavy = [sp for sp in plan.slices if (("py", "a"),) in {it.matrix for it in sp.items}]
    assert len(heavy) >= 2  # row a (60 s) is cut
    lower = max(10.0, sum(seconds.values()) / 3)
    assert plan.predicted_wall_seconds <= 1.1 * lower + 0.2
    assert plan.planner == "grid"


def test_rows_are_not_merged_unless_allowed() -> None:
    items = grid(["a", "b", "c", "d"], ["x", "y"])
    seconds = dict.fromkeys((it.key for it in items), 0.1)
    plan = plan_grid(items, seconds, workers=1, max_slices=1, startup=1.0, merge_rows=False)
    assert_sub_grids(plan, items)
    assert all(len({it.matrix for it in sp.items}) == 1 for sp in plan.slices)
    merged = plan_grid(items, seconds, workers=1, max_slices=1, startup=1.0, merge_rows=True)
    assert_sub_grids(merged, items)
    assert len(merged.slices) == 1


@pytest.mark.parametrize("seed", range(5))
def test_random_grids_are_partitioned_into_sub_grids_deterministically(seed: int) -> None:
    rng = random.Random(seed)
    items = grid([f"r{i}" for i in range(rng.randint(1, 5))], [f"f{i}" for i in range(30)])
    seconds = {it.key: rng.paretovariate(1.5) for it in items}
    workers = rng.randint(1, 8)
    plan = plan_grid(items, seconds, workers=workers, max_slices=4 * workers, startup=0.3)
    assert_sub_grids(plan, items)
    shuffled = plan_grid(
        items,
        dict(reversed(list(seconds.items()))),
        workers=workers,
        max_slices=4 * workers,
        startup=0.3,
    )
    assert shuffled == plan


def test_shards_take_disjoint_sub_grids() -> None:
    items = grid(["a", "b"], [f"f{i}" for i in range(10)])
    seconds = {it.key: float(i % 4 + 1) for i, it in enumerate(items)}
    shards = [
        plan_grid(items, seconds, workers=2, max_slices=8, startup=0.2, shard=(i, 3))
        for i in (1, 2, 3)
    ]
    keys = [it.key for plan in shards for sp in plan.slices for it in sp.items]
    assert sorted(keys) == sorted(it.key for it in items)
    with pytest.raises(UsageError, match="--shard 4/3"):
        plan_grid(items, seconds, workers=2, max_slices=8, startup=0.2, shard=(4, 3))


def test_a_new_value_borrows_from_the_same_item_under_the_other_values() -> None:
    items = grid(["3.11", "3.12", "3.14"], ["slow.py", "fast.py"])
    known = {
        "slow.py[py=3.11]": 10.0,
        "slow.py[py=3.12]": 12.0,
        "fast.py[py=3.11]": 1.0,
        "fast.py[py=3.12]": 1.0,
    }
    guessed = {"slow.py[py=3.14]": 3.0, "fast.py[py=3.14]": 3.0}  # sibling guesses
    seconds, estimated = borrow_across_matrix(items, {**known, **guessed}, frozenset(guessed))
    assert seconds["slow.py[py=3.14]"] == 11.0
    assert seconds["fast.py[py=3.14]"] == 1.0
    assert estimated == frozenset()
