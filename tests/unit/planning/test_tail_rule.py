"""The rule for how much of a running slice's unstarted tail an idle worker takes."""

from __future__ import annotations

import random

import pytest

from dagpar_cli.planning.tail_rule import MIN_STARTUPS, running_rest, tail_to_take


def _ends(pending: list[float], startup: float, k: int, running: float = 0.0) -> float:
    """When the later of the victim (running test, then front) and the new slice ends."""
    kept = running + sum(pending[: len(pending) - k])
    return max(kept, startup + sum(pending[len(pending) - k :])) if k else kept


def test_even_tests_are_shared_so_that_both_slices_end_together() -> None:
    # Ten 1-second tests, 0.2 s start-up: taking 5 ends at 5.2 s, taking 4 leaves 6 s.
    assert tail_to_take([1.0] * 10, 0.2) == 5


def test_a_tail_that_would_not_end_sooner_or_is_worth_too_little_stays() -> None:
    # Moving any of 0.5 s behind a 0.4 s start-up ends no sooner than keeping it.
    assert tail_to_take([0.1] * 5, 0.4) == 0
    # Moving the last 0.1 s ends 0.1 s sooner, but is worth less than MIN_STARTUPS start-ups.
    assert tail_to_take([3.0, 0.1], 1.0) == 0
    assert tail_to_take([], 0.3) == 0


def test_one_long_pending_test_is_taken_when_the_victim_has_more_to_do() -> None:
    # The victim keeps the short ones; the long last test goes to the idle worker.
    assert tail_to_take([1.0, 1.0, 1.0, 6.0], 0.5) == 1


def test_it_never_takes_everything() -> None:
    # The victim has already paid its start-up: taking all only moves the work later.
    for _ in range(200):
        rng = random.Random(_)
        pending = [rng.expovariate(1.0) for _ in range(rng.randint(1, 30))]
        assert tail_to_take(pending, rng.uniform(0.0, 2.0)) < len(pending)


def test_the_test_still_running_counts_before_the_front() -> None:
    # A 20 s test waits behind one with 23 s to go: alone it cannot gain from a 0.2 s start-up
    # elsewhere, but behind the running test it ends 20 s sooner there.
    assert tail_to_take([20.0], 0.2) == 0
    assert tail_to_take([20.0], 0.2, running=23.0) == 1
    # Everything behind a long running test can go: the victim still ends with that test.
    assert tail_to_take([1.0, 2.0, 3.0], 0.5, running=30.0) == 3


@pytest.mark.parametrize("seed", range(50))
def test_the_cut_is_the_best_tail(seed: int) -> None:
    rng = random.Random(seed)
    pending = [rng.lognormvariate(0, 1.5) for _ in range(rng.randint(1, 40))]
    startup = rng.uniform(0.05, 1.5)
    running = rng.choice([0.0, rng.lognormvariate(0, 1.5)])
    k = tail_to_take(pending, startup, running)
    ends = [_ends(pending, startup, j, running) for j in range(len(pending) + 1)]
    if k == 0:
        best = min(range(len(pending) + 1), key=lambda j: (ends[j], j))
        # Either no cut helps, or the best one moves too little to pay for a start-up.
        assert best == 0 or sum(pending[len(pending) - best :]) <= MIN_STARTUPS * startup
    else:
        assert sum(pending[len(pending) - k :]) > MIN_STARTUPS * startup
        assert ends[k] == pytest.approx(min(ends))


def test_a_running_test_counts_what_its_prediction_leaves() -> None:
    assert running_rest(10.0, 4.0) == 6.0
    # Past its prediction, or without one, nothing tells how much longer it runs.
    assert running_rest(10.0, 12.0) == 0.0
    assert running_rest(None, 3.0) == 0.0
