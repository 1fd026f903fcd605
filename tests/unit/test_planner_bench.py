"""The planner benchmark's executor simulation with hand-over of unstarted tests."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "planner_bench.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """``bench/planner_bench.py``, which is a script rather than part of the package."""
    spec = importlib.util.spec_from_file_location("planner_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up by name while the module runs.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def case_of(
    bench: ModuleType,
    seconds: Sequence[float],
    *,
    workers: int,
    startup: float,
    recorded: dict[int, float] | None = None,
) -> object:
    """A case whose recorded seconds are the true ones (or *recorded*, by item index)."""
    paths = tuple(f"tests/test_{i:02d}.py" for i in range(len(seconds)))
    history = dict(enumerate(seconds)) if recorded is None else recorded
    return bench.Case(
        paths=paths,
        true=tuple(seconds),
        recorded={paths[i]: s for i, s in history.items()},
        startup=startup,
        workers=workers,
        spread=0.0,
    )


def assert_each_once(runs: Sequence[Sequence[int]], count: int) -> None:
    ran = Counter(i for run in runs for i in run)
    assert sorted(ran) == list(range(count))
    assert set(ran.values()) == {1}


def test_an_idle_worker_takes_over_the_tail_of_the_slice_with_the_long_items(
    bench: ModuleType,
) -> None:
    seconds = [5.0] * 4 + [0.1] * 4
    case = case_of(bench, seconds, workers=2, startup=0.2)
    # Given out of collection order: equal predictions run in the plan's order.
    slices = [[3, 2, 1, 0], [4, 5, 6, 7]]

    static = bench.simulate(case, slices)
    handed = bench.simulate_handover(case, slices)

    assert static == pytest.approx(0.2 + 20.0)
    # The short slice ends at 0.6 while item 3 runs (4.6 s to go) and 2, 1, 0 wait: the best
    # cut of (5, 5, 5) behind it takes two (4.6 + 5 s left against 0.2 + 10 s).
    assert handed.hand_overs == 1
    assert handed.runs == ((3, 2), (4, 5, 6, 7), (1, 0))
    assert handed.makespan == pytest.approx(0.6 + 0.2 + 10.0)
    assert handed.makespan < static
    assert_each_once(handed.runs, len(seconds))


def test_a_tail_worth_too_little_stays_where_it_is(bench: ModuleType) -> None:
    seconds = [1.0, 1.0]
    case = case_of(bench, seconds, workers=2, startup=1.5)
    slices = [[0, 1]]

    handed = bench.simulate_handover(case, slices)

    # The idle worker would pay 1.5 s of start-up to win at most 1 s.
    assert handed.hand_overs == 0
    assert handed.runs == ((0, 1),)
    assert handed.makespan == pytest.approx(bench.simulate(case, slices))
    assert_each_once(handed.runs, len(seconds))


def test_a_slice_still_starting_up_is_not_taken_from(bench: ModuleType) -> None:
    # The second worker is idle from the start, but the slice publishes its order only after
    # its start-up. At 0 s the cut of (4, 4, 4, 4) would take two items and end both slices
    # at 9 s; at 1 s item 0 runs (4 s to go), the cut of (4, 4, 4) behind it takes two, and
    # the new slice's start-up begins only then.
    seconds = [4.0, 4.0, 4.0, 4.0]
    case = case_of(bench, seconds, workers=2, startup=1.0)

    handed = bench.simulate_handover(case, [[0, 1, 2, 3]])

    assert handed.hand_overs == 1
    assert handed.runs == ((0, 1), (2, 3))
    assert handed.makespan == pytest.approx(1.0 + 1.0 + 8.0)
    assert_each_once(handed.runs, len(seconds))


def test_the_cut_follows_the_predictions_the_planner_got(bench: ModuleType) -> None:
    # Items 1 to 3 have no history: the planner and the cut see them at the median (1 s), so
    # their true 6 s each stay with the victim until it is too late to move them.
    seconds = [1.0, 6.0, 6.0, 6.0, 1.0, 1.0]
    recorded = {0: 1.0, 4: 1.0, 5: 1.0}
    case = case_of(bench, seconds, workers=2, startup=0.5, recorded=recorded)

    handed = bench.simulate_handover(case, [[0, 1, 2, 3, 4, 5]])

    # The estimates run first. At 0.5 s item 1 starts (1 s to go, by its estimate); behind it,
    # pending (2, 3, 0, 4, 5), all at 1 s, is best cut 1 + 2 s against 0.5 + 3 s. When that
    # tail ends (4 s), item 1 has run past its estimate, and the cut of (2, 3) takes item 3:
    # by the predictions, one 1 s item. In truth item 3 takes 6 s, so the run ends with the
    # victim's two 6 s items, not three.
    assert handed.runs == ((1, 2), (0, 4, 5), (3,))
    assert handed.makespan == pytest.approx(0.5 + 12.0)
    assert_each_once(handed.runs, len(seconds))


def test_a_slice_runs_estimates_first_then_longest_first_ties_in_plan_order(
    bench: ModuleType,
) -> None:
    # Item 3 has no history (predicted at the median, 2 s); 0 and 4 tie at 1 s.
    seconds = [1.0, 3.0, 2.0, 9.0, 1.0]
    recorded = {0: 1.0, 1: 3.0, 2: 2.0, 4: 1.0}
    case = case_of(bench, seconds, workers=1, startup=0.1, recorded=recorded)

    handed = bench.simulate_handover(case, [[4, 2, 0, 3, 1]])

    assert handed.runs == ((3, 1, 2, 4, 0),)
    assert handed.makespan == pytest.approx(0.1 + 16.0)


def test_an_unknown_item_runs_first_and_stays_out_of_the_tail(bench: ModuleType) -> None:
    # Item 4 has no history: predicted at the median (2 s), it really takes 8 s.
    seconds = [2.0, 2.0, 2.0, 2.0, 8.0]
    recorded = {0: 2.0, 1: 2.0, 2: 2.0, 3: 2.0}
    case = case_of(bench, seconds, workers=2, startup=0.5, recorded=recorded)

    handed = bench.simulate_handover(case, [[0, 1, 2, 3, 4]])

    # It starts at 0.5 s, when the slice's start-up ends: the idle worker takes (2, 3), the
    # best cut of the pending (2, 2, 2, 2), and ends at 5 s; it then takes 1, and item 0
    # ends the victim at 8.5 + 2 s. Last in collection order, item 4 would have gone with the
    # first tail and ended it at 1 + 2 + 8 s.
    assert handed.runs[0][0] == 4
    assert handed.runs == ((4, 0), (2, 3), (1,))
    assert handed.hand_overs == 2
    assert handed.makespan == pytest.approx(0.5 + 8.0 + 2.0)
    assert_each_once(handed.runs, len(seconds))


def test_worse_than_least_needs_a_difference_larger_than_chance(bench: ModuleType) -> None:
    # Draw-by-draw differences that scatter around a small positive mean are chance, not a loss.
    noisy = bench.paired_z([1.02, 1.00, 1.05, 1.01], [1.00, 1.03, 1.01, 1.03])
    assert 0 < noisy < bench.SIGNIFICANT
    # The same small loss on every draw is a real one.
    assert bench.paired_z([1.02, 1.01, 1.05, 1.04], [1.01, 1.00, 1.04, 1.03]) > bench.SIGNIFICANT
    # Equal or better on average is never a loss, however the draws scatter.
    assert bench.paired_z([1.0, 1.2], [1.1, 1.1]) == 0.0
    assert bench.paired_z([1.0, 1.0], [1.2, 1.1]) == 0.0
