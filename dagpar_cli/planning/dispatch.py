"""How long a set of slices takes on a number of workers, as the executor runs them.

The executor hands slices to free workers longest-predicted first. :func:`wall_seconds` replays
that for known durations; :func:`expected_wall_seconds` averages it over a fixed set of
deterministic draws of the slices' true durations, which is how the planner weighs cutting more,
smaller slices (better balance when predictions are wrong) against their extra start-up.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from functools import cache

__all__ = ["expected_wall_seconds", "wall_seconds"]

#: How many draws :func:`expected_wall_seconds` averages at least (fixed, never random: the
#: plan must be deterministic), at most, and the slices times draws it may spend beyond the least.
DRAWS = 32
MAX_DRAWS = 256
DRAW_BUDGET = 8192


def wall_seconds(
    durations: Sequence[float], workers: int, order: Sequence[float] | None = None
) -> float:
    """The finish time of *durations* dispatched to the next free of *workers* workers.

    :param durations: each slice's true seconds, start-up included.
    :param workers: how many slices run at once.
    :param order: the predicted seconds the executor sorts by (longest first); defaults to
        *durations* themselves.
    """
    keys = durations if order is None else order
    sequence = sorted(range(len(durations)), key=lambda j: (-keys[j], j))
    if workers >= len(durations):
        return max(durations, default=0.0)
    free = [0.0] * workers
    for j in sequence:
        heapq.heapreplace(free, free[0] + durations[j])
    return max(free)


@cache
def _normal_draws(count: int, width: int) -> tuple[tuple[float, ...], ...]:
    """``count`` rows of ``width`` standard normal numbers from a fixed seed."""
    rng = random.Random(20240611)
    return tuple(tuple(rng.gauss(0.0, 1.0) for _ in range(width)) for _ in range(count))


def expected_wall_seconds(
    predicted: Sequence[float],
    spread: Sequence[float],
    workers: int,
    startup: float,
) -> float:
    """The mean wall time of slices whose true durations scatter around the predictions.

    Each slice's true work is drawn as a log-normal around its predicted work with the given
    relative spread (a sum of independent item errors, so it shrinks as a slice holds more
    items); the slices are dispatched by prediction as the executor does.

    :param predicted: each slice's predicted work, start-up excluded.
    :param spread: each slice's relative standard deviation of its true work.
    :param workers: how many slices run at once.
    :param startup: seconds every slice pays before its first test.
    """
    n = len(predicted)
    if n == 0:
        return 0.0
    order = [p + startup for p in predicted]
    sigmas = [math.sqrt(math.log1p(s * s)) for s in spread]
    total = 0.0
    width = 64
    while width < min(n, 4096):
        width *= 2
    # More draws where they are cheap: few slices are where one unlucky draw weighs most.
    draws = max(DRAWS, min(MAX_DRAWS, DRAW_BUDGET // n))
    for row in _normal_draws(draws, width):
        true = [
            startup + p * math.exp(sg * row[j % width] - sg * sg / 2)
            for j, (p, sg) in enumerate(zip(predicted, sigmas, strict=True))
        ]
        total += wall_seconds(true, workers, order)
    return total / draws
