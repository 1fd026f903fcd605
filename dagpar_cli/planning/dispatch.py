"""How long a set of slices takes on a number of workers, as the executor runs them.

The engine hands a plan's slices to free workers in the plan's order (the built-in planner numbers
them longest-predicted first, except in over-sliced shapes that start small slices of estimated
tests first). :func:`wall_seconds` replays that for known durations; :func:`expected_wall_seconds`
averages it over a fixed set of deterministic draws of the slices' true durations, which is how the
planner weighs cutting more, smaller slices (better balance when predictions are wrong) against
their extra start-up.

Two kinds of error are modelled. A measured prediction is off by a log-normal factor (the drift
the timing store saw between runs). An estimated one (a test without history) is off like a test
drawn at random from the suite: :class:`Guesses` resamples the measured durations, so one
estimate in a slice can turn out to be the suite's slowest test, as happens on heavy-tailed
suites.
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate

__all__ = [
    "SPLIT_STARTUPS",
    "FactorPool",
    "Guesses",
    "expected_wall_seconds",
    "pays_to_split",
    "wall_seconds",
]

#: How many draws :func:`expected_wall_seconds` averages at least (fixed, never random: the
#: plan must be deterministic), at most, and the slices times draws it may spend beyond the least.
DRAWS = 32
MAX_DRAWS = 256
DRAW_BUDGET = 8192
#: A split must take more than this many slice start-ups of predicted work off the longest slice.
#: Slices start side by side, but their start-ups are not free: each is machine time (a runner's
#: start-up is mostly CPU: imports, transforms, compiling), and start-ups that run at once slow
#: one another down. Measured on a 2-core machine, one pytest slice of a small file took 1.1 s,
#: two at once 1.6 s each, four at once 2.9 s each.
SPLIT_STARTUPS = 1.0
#: How many resampled factors a :class:`FactorPool` holds; sums of more estimates than half of
#: this are drawn from the normal approximation instead.
POOL_SIZE = 8192


class FactorPool:
    """Sums of random duration factors, each drawn in constant time.

    The factors are a suite's measured durations divided by their median: an estimate is a
    median of similar tests (the timing store's sibling estimate), and its test may turn out to
    be any of them, so its true seconds are the estimate times a factor. The pool holds every
    quantile of the factors in equal share, shuffled with a fixed seed, and keeps running sums:
    the sum of ``k`` factors is the difference of two running sums ``k`` apart, so a slice
    holding a thousand estimates costs no more to draw than one.
    """

    def __init__(self, measured: Sequence[float], scale: float) -> None:
        """Build the pool from *measured* durations (their median must be positive).

        :param measured: the measured seconds the estimates are taken to resemble.
        :param scale: how much more than its raw estimate the planner weighs an estimated piece
            (so a piece's raw estimate is its weight divided by this).
        """
        ordered = sorted(measured)
        median = statistics.median(ordered)
        factors = [m / median for m in ordered]
        #: The planner's weight per second of raw estimate.
        self.scale = scale
        # Every quantile in its share, the slowest tests included: a random resample of a big
        # suite would mostly leave out the few tests that make a heavy tail dangerous.
        n = len(factors)
        drawn = [factors[min(n - 1, (2 * i + 1) * n // (2 * POOL_SIZE))] for i in range(POOL_SIZE)]
        random.Random(8147).shuffle(drawn)
        #: ``sums[i]``: the sum of the first ``i`` pooled factors.
        self.sums = [0.0, *accumulate(drawn)]
        #: The mean and standard deviation of one factor (for the normal approximation).
        self.mean = math.fsum(factors) / len(factors)
        self.deviation = math.sqrt(math.fsum((f - self.mean) ** 2 for f in factors) / len(factors))

    def draw(self, count: int, u: float, z: float) -> float:
        """The sum of *count* factors, chosen by the uniform *u* (and *z* when *count* is large).

        :param count: how many factors to add.
        :param u: a uniform number in [0, 1) that picks the run of pooled factors.
        :param z: a standard normal number, used instead when *count* exceeds half the pool.
        """
        if count <= 0:
            return 0.0
        if 2 * count > POOL_SIZE:
            return max(0.0, count * self.mean + z * self.deviation * math.sqrt(count))
        start = int(u * (POOL_SIZE - count + 1))
        return self.sums[start + count] - self.sums[start]


@dataclass(frozen=True, slots=True)
class Guesses:
    """The estimated part of every slice, drawn from a :class:`FactorPool`."""

    #: Per slice, the weight of its estimated pieces (included in its prediction).
    loads: Sequence[float]
    #: Per slice, how many estimated pieces it holds.
    counts: Sequence[int]
    #: What an estimate may turn out to be.
    pool: FactorPool


def wall_seconds(
    durations: Sequence[float],
    workers: int,
    order: Sequence[float] | None = None,
    *,
    in_order: bool = False,
) -> float:
    """The finish time of *durations* dispatched to the next free of *workers* workers.

    :param durations: each slice's true seconds, start-up included.
    :param workers: how many slices run at once.
    :param order: the predicted seconds that decide the start order (longest first); defaults
        to *durations* themselves.
    :param in_order: start the slices in the order given instead (as the engine does with a
        plan's slices); *order* is then ignored.
    """
    if in_order:
        sequence: Sequence[int] = range(len(durations))
    else:
        keys = durations if order is None else order
        sequence = sorted(range(len(durations)), key=lambda j: (-keys[j], j))
    if workers >= len(durations):
        return max(durations, default=0.0)
    free = [0.0] * workers
    for j in sequence:
        heapq.heapreplace(free, free[0] + durations[j])
    return max(free)


def pays_to_split(seconds: Sequence[float], slices: int, startup: float) -> bool:
    """Whether cutting pieces of predicted *seconds* into up to *slices* slices can pay.

    The most a cut can save over one slice is the work it takes off the longest slice: the
    total less the larger of an even share and the largest piece. When that is no more than
    :data:`SPLIT_STARTUPS` start-ups, the extra slices' start-ups cost more than they save,
    and one slice is faster (a single small file: the inner loop of editing one test).

    :param seconds: the predicted seconds of the pieces (the finest they may be cut into).
    :param slices: how many slices may run at once.
    :param startup: the predicted start-up seconds of one slice.
    """
    if slices < 2 or len(seconds) < 2:
        return False
    if startup <= 0:
        return True
    total = math.fsum(seconds)
    saving = total - max(total / slices, max(seconds))
    return saving > SPLIT_STARTUPS * startup


@cache
def _normal_draws(count: int, width: int) -> tuple[tuple[float, ...], ...]:
    """``count`` rows of ``width`` standard normal numbers from a fixed seed."""
    rng = random.Random(20240611)
    return tuple(tuple(rng.gauss(0.0, 1.0) for _ in range(width)) for _ in range(count))


@cache
def _uniform_draws(count: int, width: int) -> tuple[tuple[float, ...], ...]:
    """``count`` rows of ``width`` uniform numbers in [0, 1) from a fixed seed."""
    rng = random.Random(5501)
    return tuple(tuple(rng.random() for _ in range(width)) for _ in range(count))


def expected_wall_seconds(
    predicted: Sequence[float],
    spread: Sequence[float],
    workers: int,
    startup: float,
    guesses: Guesses | None = None,
    *,
    in_order: bool = False,
) -> float:
    """The mean wall time of slices whose true durations scatter around the predictions.

    Each slice's measured work is drawn as a log-normal around its prediction with the given
    relative spread (a sum of independent item errors, so it shrinks as a slice holds more
    items); its estimated work, when *guesses* says it has some, is a sum of factors from the
    pool. The slices start longest predicted first, or in the order given (*in_order*).

    :param predicted: each slice's predicted work, start-up excluded (estimates included).
    :param spread: each slice's relative standard deviation of its measured work.
    :param workers: how many slices run at once.
    :param startup: seconds every slice pays before its first test.
    :param guesses: the estimated part of each slice; None when every prediction is measured.
    :param in_order: the slices start in the order given, not longest predicted first.
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
    if guesses is None or not any(guesses.counts):
        for row in _normal_draws(draws, width):
            true = [
                startup + p * math.exp(sg * row[j % width] - sg * sg / 2)
                for j, (p, sg) in enumerate(zip(predicted, sigmas, strict=True))
            ]
            total += wall_seconds(true, workers, order, in_order=in_order)
        return total / draws
    pool = guesses.pool
    measured = [p - g for p, g in zip(predicted, guesses.loads, strict=True)]
    # A slice's mean raw estimate: what one drawn factor multiplies.
    per_factor = [
        g / (c * pool.scale) if c else 0.0
        for g, c in zip(guesses.loads, guesses.counts, strict=True)
    ]
    for row, uniforms in zip(
        _normal_draws(draws, width), _uniform_draws(draws, width), strict=True
    ):
        true = []
        for j, (m, sg) in enumerate(zip(measured, sigmas, strict=True)):
            z = row[j % width]
            work = m * math.exp(sg * z - sg * sg / 2) if m > 0 else 0.0
            count = guesses.counts[j]
            if count:
                work += per_factor[j] * pool.draw(count, uniforms[j % width], z)
            true.append(startup + work)
        total += wall_seconds(true, workers, order, in_order=in_order)
    return total / draws
