"""How much of a running slice's unstarted tail an idle worker should take over.

When a runner can hand over tests it has not started (see ``dagpar_runner_hand_over``), a worker
that runs out of slices takes the back part of the running slice with the most predicted work
left. It pays one slice start-up for that, so it takes work only when the cut makes the two
slices end sooner and the tail is worth more than :data:`MIN_STARTUPS` start-ups; it cuts where
the two slices are predicted to end soonest: the victim finishes the test it is running and then
the front of its pending tests, the new slice starts up and runs the back.

The tail-stealing scheduler and ``bench/planner_bench.py`` share this rule, so the benchmark
scores what dagpar does.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MIN_STARTUPS", "running_rest", "tail_to_take"]

#: A tail is taken only when its predicted seconds exceed this many slice start-ups, a margin
#: for start-ups and predictions that turn out longer than measured. On the planner benchmark
#: every lower margin did better (2: worst 1.41 on lognormal-5000 with a 1.5 s start-up and
#: 64 workers; 1: 1.28; 0.5: 1.22; 0: 1.22), so the margin is small.
MIN_STARTUPS = 0.5


def running_rest(predicted: float | None, elapsed: float) -> float:
    """Predicted seconds the test a slice is running still needs (``running`` of the cut).

    Its prediction less the *elapsed* seconds it has run; 0 without a prediction, and once it
    has run past its prediction, since nothing then tells how much longer it takes.
    """
    return max(predicted - elapsed, 0.0) if predicted is not None else 0.0


def tail_to_take(pending: Sequence[float], startup: float, running: float = 0.0) -> int:
    """How many tests to take from the end of *pending* (0: leave the slice alone).

    :param pending: predicted seconds of the tests the running slice has not started, in the
        order it would run them.
    :param startup: predicted start-up seconds of a new slice.
    :param running: predicted seconds until the test the slice is running ends (0 when it is
        between tests, or when that test has run past its prediction): the slice starts its
        front only after it.
    :returns: the count ``k`` whose tail ``pending[-k:]`` makes the later of the two finishing
        times (the victim's running test and remaining front, the new slice's start-up plus the
        tail) smallest; ties go to the smaller ``k``. 0 when that tail is worth no more than
        :data:`MIN_STARTUPS` start-ups.
    """
    total = sum(pending)
    best_k, best_end = 0, running + total
    taken = 0.0
    for k in range(1, len(pending) + 1):
        taken += pending[-k]
        end = max(running + total - taken, startup + taken)
        if end < best_end:
            best_k, best_end = k, end
        if running + total - taken <= startup + taken:
            break  # taking more only makes the new slice later
    if best_k == 0:
        return 0
    if sum(pending[-best_k:]) <= MIN_STARTUPS * startup:
        return 0
    return best_k
