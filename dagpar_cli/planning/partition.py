"""Multiway number partitioning: weights into ``k`` bins with the smallest largest bin.

Pure functions over ``(weight, name)`` pairs, deterministic by construction: every choice
between equal weights falls back on the name, so the result does not depend on the input order.
The planner runs :func:`lpt` (and :func:`karmarkar_karp` when the problem is small enough for it
to pay off), keeps the better answer, then polishes it with :func:`refine`.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, insort
from collections.abc import Sequence

__all__ = ["Bins", "canonical_order", "fill", "karmarkar_karp", "loads", "lpt", "refine"]

#: ``bins[j]`` holds the indices (into the weights) placed in bin ``j``.
Bins = list[list[int]]

#: Above this many ``items * bins`` the differencing method costs more than it saves.
KK_LIMIT = 40_000

#: A largest bin this close to the lower bound is not worth more search (relative).
GOOD_ENOUGH = 1e-4


def canonical_order(weights: Sequence[float], names: Sequence[str]) -> list[int]:
    """Indices sorted heaviest first, ties by name, so any input order gives the same list."""
    order = sorted(range(len(weights)), key=names.__getitem__)
    # A stable sort keeps the name order among equal weights, even with reverse=True.
    order.sort(key=weights.__getitem__, reverse=True)
    return order


def lpt(weights: Sequence[float], names: Sequence[str], k: int) -> Bins:
    """Longest processing time first: each weight, heaviest first, to the lightest bin.

    :param weights: the weight of every item.
    :param names: a unique name per item, the tiebreak that makes the result order-independent.
    :param k: the number of bins (at least 1).
    """
    bins: Bins = [[] for _ in range(k)]
    append = [b.append for b in bins]
    # (load, bin index): equal loads go to the lower index, which is itself canonical.
    heap = [(0.0, j) for j in range(k)]
    replace = heapq.heapreplace
    for i in canonical_order(weights, names):
        load, j = heap[0]
        append[j](i)
        replace(heap, (load + weights[i], j))
    return bins


def fill(
    weights: Sequence[float],
    names: Sequence[str],
    targets: Sequence[float],
    pinned: Sequence[bool] | None = None,
    heads: int = 0,
) -> Bins:
    """Longest first into bins of unequal size: each weight to the bin with the most room left.

    With equal targets this is :func:`lpt`; the planner uses it for over-sliced plans, whose
    first slices are big and last ones small so that the executor can even out the end.

    :param weights: the weight of every item.
    :param names: a unique name per item (tiebreaks).
    :param targets: the intended total of every bin.
    :param pinned: per item, whether it must go to one of the first *heads* bins; pinned
        items are placed first.
    :param heads: how many leading bins pinned items may use.
    """
    bins: Bins = [[] for _ in targets]
    room = list(targets)
    order = canonical_order(weights, names)
    if pinned is not None and heads > 0 and any(pinned):
        rest = []
        for i in order:
            if not pinned[i]:
                rest.append(i)
                continue
            j = max(range(heads), key=lambda b: (room[b], -b))
            bins[j].append(i)
            room[j] -= weights[i]
        order = rest
    # (-room, bin index): the roomiest bin first, equal room to the lower index.
    heap = [(-r, j) for j, r in enumerate(room)]
    heapq.heapify(heap)
    for i in order:
        negative, j = heap[0]
        bins[j].append(i)
        heapq.heapreplace(heap, (negative + weights[i], j))
    return bins


def karmarkar_karp(weights: Sequence[float], names: Sequence[str], k: int) -> Bins:
    """The largest differencing method for ``k`` bins (Karmarkar and Karp's heuristic).

    Every item starts as a partial partition with its weight in one bin; the two partial
    partitions with the largest spread are merged, heaviest bin of one with the lightest of the
    other, until one is left. It beats longest-first on few, heavy-tailed weights.
    """
    # Each heap entry: (-spread, sequence, sums descending, members per sum).
    heap: list[tuple[float, int, list[float], list[list[int]]]] = []
    for seq, i in enumerate(canonical_order(weights, names)):
        sums = [weights[i]] + [0.0] * (k - 1)
        members: list[list[int]] = [[i]] + [[] for _ in range(k - 1)]
        heap.append((-weights[i], seq, sums, members))
    heapq.heapify(heap)
    seq = len(heap)
    while len(heap) > 1:
        _, _, sums_a, members_a = heapq.heappop(heap)
        _, _, sums_b, members_b = heapq.heappop(heap)
        merged = [
            (sums_a[j] + sums_b[k - 1 - j], members_a[j] + members_b[k - 1 - j]) for j in range(k)
        ]
        # Sort by sum, then by smallest member so ties are canonical.
        merged.sort(key=lambda pair: (-pair[0], min(pair[1], default=-1)))
        sums = [s for s, _ in merged]
        heapq.heappush(heap, (-(sums[0] - sums[-1]), seq, sums, [m for _, m in merged]))
        seq += 1
    if not heap:
        return [[] for _ in range(k)]
    return heap[0][3]


def loads(weights: Sequence[float], bins: Bins) -> list[float]:
    """The total weight of every bin, exactly rounded so it does not depend on item order."""
    return [math.fsum([weights[i] for i in b]) for b in bins]


def refine(weights: Sequence[float], names: Sequence[str], bins: Bins, budget: int) -> Bins:
    """Improve a partition by moves and swaps between the heaviest bin and the others.

    Each step takes the heaviest bin and, against the lightest bins first, moves one item or swaps
    two so that the transferred weight is as close as possible to half the gap; every step
    strictly lowers the sum of squared loads, so the search cannot cycle. It stops when no step
    helps, when the heaviest bin meets the lower bound, or after *budget* item comparisons (a
    count, never a clock, so every machine stops at the same plan).

    :param weights: the weight of every item.
    :param names: a unique name per item (tiebreaks).
    :param bins: the partition to improve; not modified.
    :param budget: how many comparisons the search may spend.
    :returns: the improved partition.
    """
    k = len(bins)
    if k < 2:
        return [list(b) for b in bins]
    # Per bin, its items as (weight, name, index), sorted, so bisect finds the best candidate.
    load = loads(weights, bins)
    total = sum(load)
    bound = max(total / k, max(weights, default=0.0))
    tolerance = 1e-9 * max(total, 1e-12)
    if max(load) <= bound * (1 + GOOD_ENOUGH):
        return [list(b) for b in bins]
    content = [sorted((weights[i], names[i], i) for i in b) for b in bins]
    spent = 0
    while spent < budget:
        m = max(range(k), key=lambda j: (load[j], -j))
        if load[m] <= bound * (1 + GOOD_ENOUGH) + tolerance:
            break
        cost, step = _best_step(content, load, m, tolerance)
        spent += cost
        if step is None:
            break
        o, give, take = step
        content[m].remove(give)
        insort(content[o], give)
        load[m] -= give[0]
        load[o] += give[0]
        if take is not None:
            content[o].remove(take)
            insort(content[m], take)
            load[m] += take[0]
            load[o] -= take[0]
    return [[i for _, _, i in c] for c in content]


_Entry = tuple[float, str, int]


def _best_step(
    content: list[list[_Entry]], load: list[float], m: int, tolerance: float
) -> tuple[int, tuple[int, _Entry, _Entry | None] | None]:
    """The best single move or swap out of bin *m*, as ``(cost, (other, give, take) | None)``."""
    cost = 0
    heavy = content[m]
    heavy_weights = [w for w, _, _ in heavy]
    others = sorted((j for j in range(len(load)) if j != m), key=lambda j: (load[j], j))
    for o in others:
        gap = load[m] - load[o]
        if gap <= tolerance:
            break
        half = gap / 2
        # Transferring d with 0 < d < gap lowers bin m; d near gap/2 lowers it the most.
        best: tuple[float, _Entry, _Entry | None] | None = None
        pos = bisect_left(heavy_weights, half)
        for p in (pos - 1, pos):
            if 0 <= p < len(heavy) and tolerance < heavy[p][0] < gap - tolerance:
                score = abs(heavy[p][0] - half)
                if best is None or score < best[0]:
                    best = (score, heavy[p], None)
        light = content[o]
        light_weights = [w for w, _, _ in light]
        cost += len(heavy) + len(light)
        for give in heavy:
            # Want take ≈ give - half.
            q = bisect_left(light_weights, give[0] - half)
            for p in (q - 1, q):
                if 0 <= p < len(light):
                    d = give[0] - light[p][0]
                    if tolerance < d < gap - tolerance:
                        score = abs(d - half)
                        if best is None or score < best[0]:
                            best = (score, give, light[p])
        if best is not None:
            return cost, (o, best[1], best[2])
    return cost + 1, None
