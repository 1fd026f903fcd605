"""Cutting a grid (several ``+parallel`` fields) into sub-grids balanced by predicted time.

A *row* is one value of every field but the last (:attr:`Item.matrix
<dagpar_cli.model.Item.matrix>`); its items are the last field's values. A slice is always a
sub-grid: a part of one row, or, when the grid has one other field and rows are cheap, several
whole rows over the same values of the last field. Every slice pays the start-up once.

:func:`plan_grid` tries several target sizes for a slice: each row longer than the target is
cut into balanced parts (longest first onto the lightest part), cheap rows are packed together
where that keeps a sub-grid, and the slices are simulated longest first on the workers. The
target with the shortest predicted wall time wins (fewer slices on a tie). Deterministic: ties
go by the items' order.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence

from dagpar_cli.errors import UsageError
from dagpar_cli.model import Item, Plan, SlicePlan, TestCase

__all__ = ["GRID_PLANNER", "PENALTIES", "TARGET_FACTORS", "plan_grid"]

#: The planner name plans from here carry.
GRID_PLANNER = "grid"
#: Slice sizes tried, as factors of the ideal share of one worker.
TARGET_FACTORS = (4.0, 2.0, 1.5, 1.2, 1.0, 0.9, 0.75, 0.5, 0.33)

#: Weights on the start-up a worker's first item of a row costs, when packing items.
PENALTIES = (0.0, 1.0, 2.0)

_Part = list[int]  # positions into the items


def plan_grid(
    items: Sequence[Item],
    seconds: Mapping[str, float],
    *,
    workers: int,
    max_slices: int,
    startup: float,
    tests: Mapping[str, Sequence[TestCase]] | None = None,
    merge_rows: bool = False,
    shard: tuple[int, int] | None = None,
) -> Plan:
    """Cut *items* (the combinations of a grid) into sub-grid slices.

    :param seconds: predicted seconds per ``Item.key``.
    :param workers: slices that run at once.
    :param max_slices: the most slices wanted (exceeded only when there are more rows).
    :param startup: predicted start-up seconds of one slice.
    :param tests: the tests of each item, per key (to fill ``SlicePlan.tests``).
    :param merge_rows: whether whole rows over the same last-field values may share a slice
        (true only when the grid has one other field and nothing tells rows apart at run time).
    :param shard: ``(i, n)``: cut for ``n`` CI nodes and keep node ``i``'s slices.
    :raises UsageError: *shard* is not ``(i, n)`` with ``1 <= i <= n``.
    """
    if shard is not None and not 1 <= shard[0] <= shard[1]:
        raise UsageError(
            f"--shard {shard[0]}/{shard[1]}: the shard must be between 1 and {shard[1]}"
        )
    lanes = shard[1] if shard is not None else max(1, workers)
    cost = [max(0.0, float(seconds.get(item.key, 0.0))) for item in items]
    rows = _rows(items)
    total = math.fsum(cost)
    ideal = max(max(cost, default=0.0), (total + startup * len(rows)) / lanes)
    candidates = []
    for factor in TARGET_FACTORS:
        parts = _cut(rows, items, cost, max(ideal * factor, 1e-9), merge_rows)
        candidates.append(sorted(parts, key=lambda p: (-_load(p, cost), p[0])))
    for weight in PENALTIES:
        candidates.append(_packed(rows, cost, startup, lanes, weight))
    best: tuple[float, int, list[_Part]] | None = None
    for parts in candidates:
        if len(parts) > max(max_slices, len(rows)) and best is not None:
            continue
        wall, _ = _simulate(parts, cost, startup, lanes)
        if best is None or (wall, len(parts)) < best[:2]:
            best = (wall, len(parts), parts)
    wall, _, ordered = best if best is not None else (0.0, 0, [])
    if shard is not None:
        _, lane_of = _simulate(ordered, cost, startup, lanes)
        ordered = [p for p, lane in zip(ordered, lane_of, strict=True) if lane == shard[0] - 1]
        wall = math.fsum(_load(p, cost) + startup for p in ordered)
    slices = []
    for index, part in enumerate(ordered, 1):
        chosen = [items[i] for i in sorted(part)]
        slices.append(
            SlicePlan(
                index=index,
                items=tuple(chosen),
                predicted_seconds=_load(part, cost) + startup,
                tests=tuple(t for item in chosen for t in (tests or {}).get(item.key, ())),
            )
        )
    return Plan(
        slices=tuple(slices),
        predicted_wall_seconds=wall,
        workers=workers,
        startup_seconds=startup,
        planner=GRID_PLANNER,
    )


def _rows(items: Sequence[Item]) -> list[_Part]:
    """Positions of the items of each row, rows in order of first appearance."""
    rows: dict[tuple[tuple[str, str], ...], _Part] = {}
    for position, item in enumerate(items):
        rows.setdefault(item.matrix, []).append(position)
    return list(rows.values())


def _load(part: _Part, cost: Sequence[float]) -> float:
    return math.fsum(cost[i] for i in part)


def _cut(
    rows: list[_Part], items: Sequence[Item], cost: Sequence[float], target: float, merge: bool
) -> list[_Part]:
    parts: list[_Part] = []
    whole: list[_Part] = []
    for row in rows:
        load = _load(row, cost)
        if load <= target or len(row) == 1:
            whole.append(row)
            continue
        count = min(len(row), math.ceil(load / target))
        parts.extend(_balance(row, cost, count))
    if not merge:
        return parts + whole
    # Whole rows over the same last-field values may share a slice: still a sub-grid.
    same: dict[tuple[tuple[str, ...], ...], list[_Part]] = {}
    for row in whole:
        same.setdefault(tuple(items[i].selector for i in row), []).append(row)
    for group in same.values():
        bins: list[tuple[float, _Part]] = []
        for row in sorted(group, key=lambda r: (-_load(r, cost), r[0])):
            load = _load(row, cost)
            for k, (filled, members) in enumerate(bins):
                if filled + load <= target:
                    bins[k] = (filled + load, members + row)
                    break
            else:
                bins.append((load, list(row)))
        parts.extend(members for _, members in bins)
    return parts


def _balance(row: _Part, cost: Sequence[float], count: int) -> list[_Part]:
    """*row* in *count* parts of near-equal load: longest item first onto the lightest part."""
    heap = [(0.0, k) for k in range(count)]
    parts: list[_Part] = [[] for _ in range(count)]
    for i in sorted(row, key=lambda i: (-cost[i], i)):
        load, k = heapq.heappop(heap)
        parts[k].append(i)
        heapq.heappush(heap, (load + cost[i], k))
    return [sorted(p) for p in parts if p]


def _packed(
    rows: list[_Part], cost: Sequence[float], startup: float, lanes: int, weight: float
) -> list[_Part]:
    """Longest item first onto the worker where it ends soonest, a worker's first item of a
    row costing a start-up (its slice of that row; weighed by *weight* when choosing); the
    slices in the order they would start."""
    row_of = {i: r for r, row in enumerate(rows) for i in row}
    loads = [0.0] * lanes
    groups: dict[tuple[int, int], _Part] = {}
    rows_on: list[list[int]] = [[] for _ in range(lanes)]
    # Lazy heaps of (load, lane): every lane, and per row the lanes holding that row already.
    every = [(0.0, lane) for lane in range(lanes)]
    holding: list[list[tuple[float, int]]] = [[] for _ in rows]

    def least(heap: list[tuple[float, int]]) -> tuple[float, int] | None:
        while heap and heap[0][0] != loads[heap[0][1]]:
            heapq.heappop(heap)
        return heap[0] if heap else None

    for i in sorted(row_of, key=lambda i: (-cost[i], i)):
        r = row_of[i]
        load, lane = least(every) or (0.0, 0)
        fresh = (lane, r) not in groups
        options = [(load + cost[i] + (weight * startup if fresh else 0.0), lane)]
        near = least(holding[r])
        if near is not None:
            options.append((near[0] + cost[i], near[1]))
        _, lane = min(options)
        fresh = (lane, r) not in groups
        loads[lane] += cost[i] + (startup if fresh else 0.0)
        groups.setdefault((lane, r), []).append(i)
        if fresh:
            rows_on[lane].append(r)
        heapq.heappush(every, (loads[lane], lane))
        for held in rows_on[lane]:
            heapq.heappush(holding[held], (loads[lane], lane))
    timed: list[tuple[float, int, _Part]] = []
    for lane in range(lanes):
        mine = sorted(
            (sorted(p) for (w, _), p in groups.items() if w == lane),
            key=lambda p: (-_load(p, cost), p[0]),
        )
        at = 0.0
        for part in mine:
            timed.append((at, lane, part))
            at += startup + _load(part, cost)
    return [part for _, _, part in sorted(timed, key=lambda t: (t[0], t[1]))]


def _simulate(
    parts: Sequence[_Part], cost: Sequence[float], startup: float, lanes: int
) -> tuple[float, list[int]]:
    """Wall seconds of running *parts* in the order given on *lanes* workers (each to the next
    free one, as the engine starts slices), and each part's lane."""
    free = [(0.0, lane) for lane in range(lanes)]
    lane_of = [0] * len(parts)
    wall = 0.0
    for k, part in enumerate(parts):
        at, lane = heapq.heappop(free)
        end = at + startup + _load(part, cost)
        lane_of[k] = lane
        wall = max(wall, end)
        heapq.heappush(free, (end, lane))
    return wall, lane_of
