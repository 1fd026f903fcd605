"""The timing-driven planner: completeness, order, determinism, slice count, splitting, shards."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagpar_cli.errors import UsageError
from dagpar_cli.model import Item, Plan, TestCase
from dagpar_cli.planning.api import Planner, PlanRequest
from dagpar_cli.planning.count import CountPlanner
from dagpar_cli.planning.dispatch import wall_seconds
from dagpar_cli.planning.greedy import GreedyPlanner, dagpar_make_planner


def items_of(n: int, prefix: str = "tests/test_") -> tuple[Item, ...]:
    return tuple(Item((f"{prefix}{i:03d}.py",), f"{prefix}{i:03d}.py") for i in range(n))


def request_for(
    items: Sequence[Item],
    predictions: Mapping[str, float],
    *,
    workers: int = 4,
    **extra: object,
) -> PlanRequest:
    return PlanRequest(
        check="api:test",
        items=tuple(items),
        predictions=dict(predictions),
        has_history=bool(predictions),
        workers=workers,
        **extra,  # type: ignore[arg-type]
    )


def keys_of(plan: Plan) -> list[list[str]]:
    return [[item.key for item in s.items] for s in plan.slices]


def largest(plan: Plan) -> float:
    return max(s.predicted_seconds for s in plan.slices)


def test_the_hook_answers_a_planner() -> None:
    planner = dagpar_make_planner(session=None)  # type: ignore[arg-type]
    assert isinstance(planner, Planner)
    assert planner.name == "greedy"


@settings(max_examples=60, deadline=None)
@given(
    durations=st.lists(st.floats(0.0, 100.0), min_size=1, max_size=60),
    workers=st.integers(1, 9),
    extra=st.integers(0, 12),
    seed=st.integers(0, 1000),
)
def test_every_item_once_in_parent_order(
    durations: list[float], workers: int, extra: int, seed: int
) -> None:
    items = list(items_of(len(durations)))
    random.Random(seed).shuffle(items)  # the parent order is whatever the field holds
    predictions = {item.key: d for item, d in zip(items, durations, strict=True)}
    plan = GreedyPlanner().plan(
        request_for(items, predictions, workers=workers, max_slices=workers + extra)
    )
    position = {item.key: i for i, item in enumerate(items)}
    placed = [key for keys in keys_of(plan) for key in keys]
    assert Counter(placed) == Counter(item.key for item in items)
    for keys in keys_of(plan):
        assert [position[k] for k in keys] == sorted(position[k] for k in keys)
    assert [s.index for s in plan.slices] == list(range(1, len(plan.slices) + 1))
    assert len(plan.slices) <= workers + extra


def test_same_plan_whatever_the_input_order() -> None:
    rng = random.Random(7)
    items = list(items_of(300))
    # Many equal durations: ties are where an order-dependent planner gives itself away.
    predictions = {item.key: float(rng.choice([1, 1, 2, 3, 5, 8, 40])) for item in items}
    reference = GreedyPlanner().plan(request_for(items, predictions, workers=8))
    for _ in range(5):
        rng.shuffle(items)
        shuffled = GreedyPlanner().plan(
            request_for(items, dict(reversed(predictions.items())), workers=8)
        )
        assert [sorted(keys) for keys in keys_of(shuffled)] == [
            sorted(keys) for keys in keys_of(reference)
        ]
        assert [s.predicted_seconds for s in shuffled.slices] == [
            s.predicted_seconds for s in reference.slices
        ]


def test_balance_beats_plain_longest_first() -> None:
    # Longest-first puts 3+2+2 against 3+2 (7 vs 5); the optimum is 6 and 6.
    items = items_of(5)
    predictions = dict(zip((i.key for i in items), [3.0, 3.0, 2.0, 2.0, 2.0], strict=True))
    plan = GreedyPlanner().plan(request_for(items, predictions, workers=2))
    assert sorted(s.predicted_seconds for s in plan.slices) == [6.0, 6.0]


def test_near_optimal_on_a_heavy_tailed_suite() -> None:
    rng = random.Random(3)
    items = items_of(400)
    predictions = {item.key: rng.lognormvariate(0, 1.5) for item in items}
    for workers in (2, 8, 16):
        plan = GreedyPlanner().plan(request_for(items, predictions, workers=workers, spread=0.0))
        bound = max(sum(predictions.values()) / workers, max(predictions.values()))
        assert largest(plan) <= bound * 1.01


def test_slices_never_outnumber_items_or_workers() -> None:
    items = items_of(3)
    plan = GreedyPlanner().plan(request_for(items, {i.key: 1.0 for i in items}, workers=8))
    assert len(plan.slices) == 3
    items = items_of(100)
    plan = GreedyPlanner().plan(request_for(items, {i.key: 1.0 for i in items}, workers=8))
    assert len(plan.slices) == 8


def test_fewer_slices_when_one_item_dominates() -> None:
    # One 100 s item: eight slices cannot beat 100 s, and three slices reach it already.
    items = items_of(21)
    predictions = {item.key: 10.0 for item in items}
    predictions[items[0].key] = 100.0
    plan = GreedyPlanner().plan(
        request_for(items, predictions, workers=8, startup_seconds=1.0, spread=0.0)
    )
    assert len(plan.slices) == 3
    assert largest(plan) == pytest.approx(101.0)
    assert plan.predicted_wall_seconds == pytest.approx(101.0)


def test_a_long_item_is_split_into_its_tests() -> None:
    items = items_of(6)
    predictions = {item.key: 2.0 for item in items}
    long = items[2]
    predictions[long.key] = 40.0
    tests = {item.key: [TestCase(item.path, "test_only")] for item in items}
    tests[long.key] = [TestCase(long.path, f"test_{n}") for n in range(10)]
    finer = {long.key: [(Item((long.path, t.name), long.path), 4.0) for t in tests[long.key]]}
    plan = GreedyPlanner().plan(
        request_for(items, predictions, workers=4, finer=finer, tests=tests, spread=0.0)
    )
    placed = [item for s in plan.slices for item in s.items]
    assert long not in placed
    assert sorted(i.key for i in placed if i.path == long.path) == sorted(
        f"{long.path}::test_{n}" for n in range(10)
    )
    assert len(placed) == 5 + 10
    for s in plan.slices:
        # A finer item brings just its own test; a whole file all of its tests.
        expected = [t for item in s.items for t in tests[item.path] if item.name in (None, t.name)]
        assert list(s.tests) == expected
        # Finer selectors of one file keep their order inside a slice.
        names = [item.name for item in s.items if item.path == long.path]
        assert names == sorted(names, key=lambda n: int(str(n).split("_")[1]))
    # 50 s in pieces of 2 and 4 s: four slices of 12, 12, 12 and 14 s are the best there is.
    assert len(plan.slices) == 4
    assert largest(plan) == pytest.approx(14.0)


def test_a_long_item_without_finer_selectors_stays_whole() -> None:
    items = items_of(6)
    predictions = {item.key: 2.0 for item in items}
    predictions[items[2].key] = 40.0
    plan = GreedyPlanner().plan(request_for(items, predictions, workers=4))
    assert items[2] in [item for s in plan.slices for item in s.items]


def test_without_history_a_balanced_split_by_count() -> None:
    items = items_of(23)
    request = PlanRequest(check="api:test", items=items, workers=4, startup_seconds=0.5)
    plan = GreedyPlanner().plan(request)
    assert sorted(len(s.items) for s in plan.slices) == [5, 6, 6, 6]
    assert all(s.predicted_seconds == 0.5 for s in plan.slices)


@pytest.mark.parametrize("total", [2, 3, 5])
def test_shard_buckets_partition_the_whole_set(total: int) -> None:
    rng = random.Random(total)
    items = items_of(50)
    predictions = {item.key: rng.expovariate(1.0) for item in items}
    seen: list[str] = []
    loads = []
    for index in range(1, total + 1):
        shuffled = list(items)
        rng.shuffle(shuffled)  # every CI node may list the items in its own order
        plan = GreedyPlanner().plan(
            request_for(shuffled, predictions, workers=2, shard=(index, total))
        )
        assert len(plan.slices) <= 2
        keys = [k for slice_keys in keys_of(plan) for k in slice_keys]
        seen.extend(keys)
        loads.append(sum(predictions[k] for k in keys))
    assert sorted(seen) == sorted(item.key for item in items)
    assert max(loads) <= sum(predictions.values()) / total * 1.05


def test_a_shard_out_of_range_is_refused() -> None:
    items = items_of(3)
    with pytest.raises(UsageError, match="shard 4/3"):
        GreedyPlanner().plan(request_for(items, {i.key: 1.0 for i in items}, shard=(4, 3)))


def test_more_smaller_slices_when_durations_are_unknown() -> None:
    items = items_of(64)
    rng = random.Random(5)
    predictions = {item.key: rng.uniform(1, 3) for item in items}
    unknown = frozenset(item.key for item in items[::2])
    cheap = GreedyPlanner().plan(
        request_for(
            items,
            predictions,
            workers=4,
            max_slices=32,
            startup_seconds=0.05,
            estimated=unknown,
        )
    )
    assert len(cheap.slices) > 4
    # Exact history and an expensive start-up: one slice per worker.
    exact = GreedyPlanner().plan(
        request_for(items, predictions, workers=4, max_slices=32, startup_seconds=5.0, spread=0.0)
    )
    assert len(exact.slices) == 4


def test_finer_tests_fall_back_to_the_selector_name() -> None:
    items = items_of(2)
    predictions = {items[0].key: 50.0, items[1].key: 1.0}
    tests = {items[0].key: [TestCase(items[0].path, "TestA")], items[1].key: []}
    finer = {
        items[0].key: [
            (Item((items[0].path, "TestA/sub1"), items[0].path), 25.0),
            (Item((items[0].path, "TestA/sub2"), items[0].path), 25.0),
        ]
    }
    plan = GreedyPlanner().plan(
        request_for(items, predictions, workers=2, finer=finer, tests=tests, spread=0.0)
    )
    names = sorted(t.name for s in plan.slices for t in s.tests)
    assert names == ["TestA/sub1", "TestA/sub2"]


def heavy_tailed_with_new(
    count: int, new_count: int
) -> tuple[tuple[Item, ...], dict[str, float], frozenset[str], dict[str, float]]:
    """A suite of *count* tests with heavy-tailed durations, *new_count* of them new.

    :returns: the items, their true seconds, the new keys, and the predictions the store
        gives: each measured test its own seconds, each new one the suite's median.
    """
    rng = random.Random(3)
    items = items_of(count)
    durations = {item.key: 0.02 * rng.lognormvariate(0.0, 1.5) for item in items}
    new = frozenset(item.key for item in rng.sample(items, new_count))
    known = sorted(v for k, v in durations.items() if k not in new)
    median = known[len(known) // 2]
    predictions = {k: (median if k in new else v) for k, v in durations.items()}
    return items, durations, new, predictions


def test_estimates_on_a_heavy_tailed_suite_are_hedged_against() -> None:
    # 40 of 400 tests are new. Their true durations are drawn from the same suite, as new
    # tests' are.
    items, durations, new, predictions = heavy_tailed_with_new(400, 40)
    known = sorted(v for k, v in durations.items() if k not in new)
    workers, startup = 8, 0.05
    plan = GreedyPlanner().plan(
        request_for(
            items,
            predictions,
            workers=workers,
            max_slices=4 * workers,
            startup_seconds=startup,
            estimated=new,
            spread=0.0,
        )
    )
    # pytest-split's least_duration: unknown tests at the mean, longest first, one per worker.
    mean = sum(known) / len(known)
    filled = {k: (mean if k in new else v) for k, v in durations.items()}
    loads = [0.0] * workers
    baseline: list[list[str]] = [[] for _ in range(workers)]
    for key in sorted(filled, key=lambda k: (-filled[k], k)):
        j = loads.index(min(loads))
        baseline[j].append(key)
        loads[j] += filled[key]
    ours = [[item.key for item in s.items] for s in plan.slices]
    assert len(ours) > workers

    def wall(
        slices: list[list[str]], truth: Mapping[str, float], guess: Mapping[str, float]
    ) -> float:
        # Each plan's slices start in the order of its own predictions.
        order = [sum(guess[k] for k in s) for s in slices]
        return wall_seconds([startup + sum(truth[k] for k in s) for s in slices], workers, order)

    draws = random.Random(11)
    ratio = 0.0
    for _ in range(40):
        truth = dict(durations)
        for key in new:
            truth[key] = draws.choice(known)
        ratio += wall(ours, truth, predictions) / wall(baseline, truth, filled) / 40
    assert ratio < 0.97


def plan_with_new_tests(
    items: Sequence[Item], predictions: Mapping[str, float], new: frozenset[str], workers: int
) -> Plan:
    """The plan for a suite with *new* tests, allowed four slices per worker, exact history."""
    return GreedyPlanner().plan(
        request_for(
            items,
            predictions,
            workers=workers,
            max_slices=4 * workers,
            startup_seconds=0.05,
            estimated=new,
            spread=0.0,
        )
    )


def test_many_new_tests_start_first_in_slices_of_their_own() -> None:
    # A quarter of a heavy-tailed suite is new. The planner starts them first, in short slices
    # of their own: one that turns out far longer than its estimate holds up one worker while
    # the others share out the measured work, which follows in longer slices.
    items, _, new, predictions = heavy_tailed_with_new(400, 100)
    workers = 8
    plan = plan_with_new_tests(items, predictions, new, workers)
    assert len(plan.slices) > workers
    first = plan.slices[:workers]
    in_first = {item.key for s in first for item in s.items}
    assert new <= in_first
    assert len(in_first - new) < len(new) / 4
    # Numbered to start first, although some later slices are predicted to take longer.
    assert min(s.predicted_seconds for s in first) < max(
        s.predicted_seconds for s in plan.slices[workers:]
    )


def test_a_measured_test_too_long_for_later_slices_starts_in_the_first_wave() -> None:
    # New tests go first, in probe slices; a measured test longer than the slices that follow
    # them must not wait behind a probe, or the run ends late by the probe's length.
    items, durations, new, predictions = heavy_tailed_with_new(400, 100)
    workers = 8
    giant = next(item.key for item in items if item.key not in new)
    per_worker = sum(durations.values()) / workers
    predictions = {**predictions, giant: 0.9 * per_worker}
    plan = plan_with_new_tests(items, predictions, new, workers)
    assert len(plan.slices) > workers
    first = {item.key for s in plan.slices[:workers] for item in s.items}
    assert new <= first
    assert giant in first


def one_file(
    seconds: float, tests: int = 6
) -> tuple[Item, dict[str, list[TestCase]], dict[str, object]]:
    """One selected file of *tests* equal tests, *seconds* in all, with its finer selectors."""
    path = "tests/test_one.py"
    item = Item((path,), path)
    cases = [TestCase(path, f"test_{n}") for n in range(tests)]
    finer = {item.key: [(Item((path, t.name), path), seconds / tests) for t in cases]}
    return item, {item.key: cases}, {"finer": finer, "tests": {item.key: cases}}


def test_a_small_file_with_a_large_startup_runs_in_one_slice() -> None:
    # 0.3 s of tests against a 2 s start-up: any cut saves less than the start-up it costs.
    item, tests, extra = one_file(0.3)
    plan = GreedyPlanner().plan(
        request_for([item], {item.key: 0.3}, workers=4, startup_seconds=2.0, **extra)
    )
    assert len(plan.slices) == 1
    # Kept whole: one selector, not six.
    assert plan.slices[0].items == (item,)
    assert list(plan.slices[0].tests) == tests[item.key]
    assert plan.predicted_wall_seconds == pytest.approx(2.3)


def test_a_large_file_is_still_cut_into_several_slices() -> None:
    item, _, extra = one_file(30.0)
    plan = GreedyPlanner().plan(
        request_for([item], {item.key: 30.0}, workers=4, startup_seconds=2.0, **extra)
    )
    assert len(plan.slices) == 4


def test_a_few_small_files_are_not_spread_over_the_workers() -> None:
    items = items_of(3)
    plan = GreedyPlanner().plan(
        request_for(
            items, {i.key: 0.2 for i in items}, workers=4, max_slices=16, startup_seconds=1.0
        )
    )
    assert len(plan.slices) == 1
    assert plan.slices[0].items == items
    # Enough work to pay for the start-ups: one slice each.
    plan = GreedyPlanner().plan(
        request_for(
            items, {i.key: 5.0 for i in items}, workers=4, max_slices=16, startup_seconds=1.0
        )
    )
    assert len(plan.slices) == 3


def test_one_dominant_piece_leaves_nothing_worth_a_second_slice() -> None:
    # 10 s in one test and 0.5 s beside it: a second slice would save 0.5 s for 2 s of start-up.
    items = items_of(2)
    predictions = {items[0].key: 10.0, items[1].key: 0.5}
    plan = GreedyPlanner().plan(request_for(items, predictions, workers=2, startup_seconds=2.0))
    assert len(plan.slices) == 1


def test_a_shard_bucket_of_small_work_runs_in_one_slice() -> None:
    items = items_of(8)
    predictions = {i.key: 0.1 for i in items}
    for index in (1, 2):
        plan = GreedyPlanner().plan(
            request_for(items, predictions, workers=4, startup_seconds=1.0, shard=(index, 2))
        )
        assert len(plan.slices) == 1
        assert len(plan.slices[0].items) == 4


def test_one_selected_file_without_history_is_one_slice() -> None:
    item, tests, _ = one_file(0.0)
    request = PlanRequest(
        check="api:test", items=(item,), workers=4, startup_seconds=0.3, tests=tests
    )
    for planner in (GreedyPlanner(), CountPlanner()):
        plan = planner.plan(request)
        assert [s.items for s in plan.slices] == [(item,)]
