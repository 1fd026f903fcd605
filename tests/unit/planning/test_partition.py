"""The partitioning and dispatch-replay helpers under the planner."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagpar_cli.planning import partition
from dagpar_cli.planning.dispatch import FactorPool, Guesses, expected_wall_seconds, wall_seconds


def names_for(n: int) -> list[str]:
    return [f"item{i:04d}" for i in range(n)]


@settings(max_examples=80, deadline=None)
@given(
    weights=st.lists(st.floats(0.0, 50.0), min_size=1, max_size=40),
    k=st.integers(1, 8),
)
def test_every_method_places_every_item_once_and_refining_never_hurts(
    weights: list[float], k: int
) -> None:
    names = names_for(len(weights))
    for bins in (
        partition.lpt(weights, names, k),
        partition.karmarkar_karp(weights, names, k),
    ):
        assert sorted(i for b in bins for i in b) == list(range(len(weights)))
        refined = partition.refine(weights, names, bins, budget=10_000)
        assert sorted(i for b in refined for i in b) == list(range(len(weights)))
        assert max(partition.loads(weights, refined)) <= max(partition.loads(weights, bins)) + 1e-9


def test_refine_reaches_the_optimum_longest_first_misses() -> None:
    weights = [3.0, 3.0, 2.0, 2.0, 2.0]
    names = names_for(5)
    greedy = partition.lpt(weights, names, 2)
    assert sorted(partition.loads(weights, greedy)) == [5.0, 7.0]
    assert sorted(partition.loads(weights, partition.refine(weights, names, greedy, 100))) == [
        6.0,
        6.0,
    ]


def test_differencing_beats_longest_first_on_few_heavy_items() -> None:
    weights = [8.0, 7.0, 6.0, 5.0, 4.0]
    names = names_for(5)
    assert max(partition.loads(weights, partition.lpt(weights, names, 2))) == 17.0
    assert max(partition.loads(weights, partition.karmarkar_karp(weights, names, 2))) == 16.0


def test_the_canonical_order_ignores_the_input_order() -> None:
    weights = [1.0, 2.0, 1.0, 2.0]
    names = ["d", "c", "b", "a"]
    order = partition.canonical_order(weights, names)
    assert [names[i] for i in order] == ["a", "c", "b", "d"]


def test_fill_follows_the_targets_and_pins_to_the_head_bins() -> None:
    weights = [1.0] * 12
    names = names_for(12)
    bins = partition.fill(weights, names, [4.0, 4.0, 2.0, 2.0])
    assert [len(b) for b in bins] == [4, 4, 2, 2]
    pinned = [i >= 10 for i in range(12)]
    bins = partition.fill(weights, names, [4.0, 4.0, 2.0, 2.0], pinned, heads=2)
    assert {10, 11} <= set(bins[0]) | set(bins[1])


def test_wall_seconds_replays_longest_first_dispatch() -> None:
    # Longest first on two workers: 5 | 4, then 3 joins 4, then 2 joins 5: finish at 7.
    assert wall_seconds([2.0, 3.0, 4.0, 5.0], 2) == 7.0
    # Dispatching by a wrong prediction: the 5 s slice is believed short and starts last.
    assert wall_seconds([2.0, 3.0, 4.0, 5.0], 2, order=[4.0, 3.0, 2.0, 1.0]) == 8.0
    assert wall_seconds([1.0, 1.0], 8) == 1.0


def test_expected_wall_grows_with_uncertainty_and_is_deterministic() -> None:
    loads = [10.0] * 8
    exact = expected_wall_seconds(loads, [0.0] * 8, 4, 1.0)
    assert exact == pytest.approx(22.0)
    vague = expected_wall_seconds(loads, [0.5] * 8, 4, 1.0)
    assert vague > exact
    assert vague == expected_wall_seconds(loads, [0.5] * 8, 4, 1.0)


def test_small_tail_slices_absorb_drift() -> None:
    # The replay the planner scores by prefers a wave of big slices and small ones at the end
    # to the same work in equal slices, when slices are uncertain and start-up is cheap.
    equal = expected_wall_seconds([10.0] * 8, [0.3] * 8, 4, 0.1)
    tail = expected_wall_seconds([18.0] * 4 + [2.0] * 4, [0.3] * 4 + [0.3] * 4, 4, 0.1)
    assert tail < equal


def test_a_factor_pool_draws_sums_like_the_suite_it_came_from() -> None:
    # A heavy-tailed suite: most tests take 0.1 s, one in fifty takes 10 s.
    measured = [0.1] * 49 + [10.0]
    pool = FactorPool(measured, scale=1.0)
    sums = [pool.draw(5, u / 1000, 0.0) for u in range(1000)]
    # Factors are relative to the median (0.1 s): five typical tests sum to 5, and the mean
    # carries the rare slow one.
    assert sorted(sums)[500] == pytest.approx(5.0)
    assert sum(sums) / len(sums) == pytest.approx(5 * pool.mean, rel=0.15)
    assert max(sums) >= 100.0
    assert pool.draw(5, 0.25, 0.0) == pool.draw(5, 0.25, 0.0)
    assert pool.draw(0, 0.5, 0.0) == 0.0


def test_estimates_from_a_heavy_tailed_suite_make_a_slice_riskier() -> None:
    pool = FactorPool([0.1] * 49 + [10.0], scale=1.0)
    loads = [10.0] * 4
    measured_only = expected_wall_seconds(loads, [0.1] * 4, 4, 0.0)
    # The same expected seconds, but one slice's are 20 estimated tests that may each turn out
    # to be the suite's 10 s test.
    guessed = expected_wall_seconds(
        loads, [0.1] * 4, 4, 0.0, Guesses([2.0, 0, 0, 0], [20, 0, 0, 0], pool)
    )
    assert guessed > measured_only * 1.2
