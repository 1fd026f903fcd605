"""The built-in, timing-driven planner.

:class:`GreedyPlanner` is what ``dagpar_make_planner`` answers when no plugin chose another
planner (the hook implementation here is ``trylast``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dagpar_cli.model import Item, Plan, SlicePlan, TestCase
from dagpar_cli.planning import partition
from dagpar_cli.planning.api import PlanRequest
from dagpar_cli.planning.dispatch import expected_wall_seconds, wall_seconds
from dagpar_cli.pluginmanager import hookimpl

if TYPE_CHECKING:
    from dagpar_cli.session import Session

__all__ = ["GreedyPlanner", "dagpar_make_planner"]

#: Slice counts above ``workers`` tried when over-slicing is allowed, as multiples of it.
OVERSLICING = (1.5, 2, 3, 4, 6, 8)

#: From this many items per slice on, a slice count is scored on the ideal partition.
IDEAL_ITEMS_PER_SLICE = 32


@dataclass(slots=True)
class _Units:
    """The schedulable pieces of one split call, as parallel lists in parent order.

    A piece is a selected item or one finer selector of a split item. Lists rather than one
    object per piece: a 50,000-item suite must plan in a fraction of a second.
    """

    items: list[Item] = field(default_factory=list)
    #: What balancing uses: predicted seconds, or a count share without history.
    weights: list[float] = field(default_factory=list)
    #: Predicted seconds, reported in the plan.
    seconds: list[float] = field(default_factory=list)
    #: Relative standard deviation expected of the true duration.
    spreads: list[float] = field(default_factory=list)
    #: A unique, input-order-independent name per piece (the tiebreak everywhere).
    names: list[str] = field(default_factory=list)
    #: The tests each piece selects.
    tests: list[Sequence[TestCase]] = field(default_factory=list)

    def add(
        self,
        item: Item,
        weight: float,
        seconds: float,
        spread: float,
        name: str,
        tests: Sequence[TestCase],
    ) -> None:
        """Append one piece."""
        self.items.append(item)
        self.weights.append(weight)
        self.seconds.append(seconds)
        self.spreads.append(spread)
        self.names.append(name)
        self.tests.append(tests)

    def take(self, indices: Sequence[int]) -> _Units:
        """The pieces at *indices*, in parent order."""
        chosen = sorted(indices)
        return _Units(
            [self.items[i] for i in chosen],
            [self.weights[i] for i in chosen],
            [self.seconds[i] for i in chosen],
            [self.spreads[i] for i in chosen],
            [self.names[i] for i in chosen],
            [self.tests[i] for i in chosen],
        )

    def __len__(self) -> int:
        return len(self.items)


class GreedyPlanner:
    """Longest-first balancing, polished by moves and swaps, with a chosen number of slices.

    The algorithm, for one split call:

    1. **Weights.** Each item weighs its predicted seconds; an item without a prediction weighs
       the median prediction and counts as *estimated*. Without any history every item weighs
       the same, which makes the plan a balanced split by count.
    2. **Finer selectors.** An item heavier than the ideal slice (total / slices) is replaced by
       its finer selectors (``request.finer``), their predictions scaled to the item's.
    3. **Shards.** With ``request.shard = (i, n)`` all units are first partitioned into ``n``
       buckets, numbered heaviest first (ties by name), and only bucket ``i`` is sliced further.
    4. **How many slices.** For the fewest slices whose ideal largest slice is within
       :attr:`tolerance` of the best possible, a neighbour, ``workers``, and (when
       ``max_slices`` allows and the predictions are uncertain enough to matter) a few counts
       above ``workers``, the units are partitioned and the plan's wall time is estimated by
       replaying the executor's longest-first dispatch over a fixed set of draws of the true
       durations. Measured items are assumed to be off by :attr:`known_spread` (or
       ``request.spread``), estimated ones by :attr:`unknown_spread`; more slices pay their
       start-up in the replay, so they win only when their better balance under error outweighs
       it. The fewest slices within :attr:`tolerance` of the best estimate win.
    5. **Balance.** Longest processing time first; on small problems also the Karmarkar-Karp
       differencing method, keeping the smaller largest slice; then moves and swaps between the
       largest slice and the others, within a budget of comparisons proportional to the items.
    6. **Order.** Slices are numbered heaviest first (ties by their smallest item name); items
       inside a slice keep the parent order.

    Every tiebreak goes through names, never through the input order, so every CI node that
    sees the same items and predictions computes the same plan.
    """

    #: Shown in ``--dry-run`` output.
    name = "greedy"

    def __init__(
        self,
        *,
        known_spread: float = 0.2,
        unknown_spread: float = 1.0,
        tolerance: float = 0.005,
        refine_budget: int = 40,
    ) -> None:
        """Create the planner.

        :param known_spread: relative error assumed for a measured prediction.
        :param unknown_spread: relative error assumed for an estimated one.
        :param tolerance: relative wall-time gain below which fewer slices are preferred.
        :param refine_budget: comparisons per unit the move-and-swap search may spend.
        """
        #: Relative error assumed for a measured prediction when the request gives none.
        self.known_spread = known_spread
        #: Relative error assumed for an estimated prediction (and for everything without history).
        self.unknown_spread = unknown_spread
        #: Relative wall-time gain below which the planner prefers fewer slices.
        self.tolerance = tolerance
        #: Comparisons per unit the move-and-swap search may spend.
        self.refine_budget = refine_budget

    # -----------------------------------------------------------------------------------------

    def plan(self, request: PlanRequest) -> Plan:
        """Cut *request*'s items into slices (see the class docstring for how).

        :param request: the items, predictions and capacity of one split call.
        :raises ValueError: when ``request.shard`` is not ``(i, n)`` with ``1 <= i <= n``.
        """
        workers = max(1, request.workers)
        max_slices = max(1, request.max_slices if request.max_slices is not None else workers)
        parallel = min(workers, max_slices)
        startup = max(0.0, request.startup_seconds)
        units = self._units(request)
        if request.shard is not None:
            index, total = request.shard
            if not 1 <= index <= total:
                raise ValueError(
                    f"shard {index}/{total} is not between 1/{total} and {total}/{total}"
                )
            units = self._split(units, request, total * parallel)
            buckets = self._ordered(units, self._balance(units, total))
            units = units.take(buckets[index - 1] if index <= len(buckets) else [])
        else:
            units = self._split(units, request, parallel)
        bins = self._choose(units, workers, max_slices, startup) if units else []
        return self._build(units, bins, workers, startup)

    # -----------------------------------------------------------------------------------------
    # units

    def _units(self, request: PlanRequest) -> _Units:
        """One piece per item, weighed by prediction (or by count without history)."""
        items = request.items
        # Item.key is computed on every access; big suites pay for it once only.
        keys = [item.path if len(item.selector) == 1 else item.key for item in items]
        predictions = request.predictions
        known = [predictions[key] for key in keys if key in predictions]
        fallback = _median(known) if known else 1.0
        spread = request.spread if request.spread is not None else self.known_spread
        names = keys
        if len(set(keys)) != len(keys):
            # Duplicate keys (should not happen) still need distinct names.
            seen: dict[str, int] = {}
            names = []
            for key in keys:
                count = seen[key] = seen.get(key, 0) + 1
                names.append(key if count == 1 else f"{key}\0{count}")
        seconds = [max(0.0, predictions.get(key, fallback)) for key in keys]
        if request.has_history:
            weights = seconds
            estimated = request.estimated
            spreads = [
                spread if key in predictions and key not in estimated else self.unknown_spread
                for key in keys
            ]
        else:
            weights = [1.0] * len(keys)
            seconds = [max(0.0, predictions.get(key, 0.0)) for key in keys]
            spreads = [self.unknown_spread] * len(keys)
        tests_of = request.tests
        empty: tuple[TestCase, ...] = ()
        tests: list[Sequence[TestCase]] = (
            [tests_of.get(key, empty) for key in keys] if tests_of else [empty] * len(keys)
        )
        return _Units(list(items), weights, seconds, spreads, names, tests)

    def _split(self, units: _Units, request: PlanRequest, slices: int) -> _Units:
        """Replace every piece heavier than the ideal slice by its finer selectors."""
        if not request.finer or slices < 2:
            return units
        target = sum(units.weights) / slices
        result = _Units()
        for i, item in enumerate(units.items):
            weight = units.weights[i]
            finer = request.finer.get(item.key, ()) if weight > target else ()
            if len(finer) < 2:
                result.add(
                    item, weight, units.seconds[i], units.spreads[i], units.names[i], units.tests[i]
                )
                continue
            total = sum(max(0.0, seconds) for _, seconds in finer)
            for sub, seconds in finer:
                # Scale the finer predictions to the item's own, the better-measured number.
                share = max(0.0, seconds) / total if total > 0 else 1.0 / len(finer)
                spread = units.spreads[i]
                if request.has_history and sub.key in request.estimated:
                    spread = max(spread, self.unknown_spread)
                result.add(
                    sub,
                    weight * share,
                    units.seconds[i] * share,
                    spread,
                    f"{units.names[i]}\0{sub.key}",
                    _finer_tests(sub, units.tests[i], request),
                )
        return result

    # -----------------------------------------------------------------------------------------
    # slice count and balance

    def _choose(
        self, units: _Units, workers: int, max_slices: int, startup: float
    ) -> partition.Bins:
        """Partition *units* into the number of slices with the best expected wall time."""
        n = len(units)
        weights = units.weights
        total = sum(weights)
        largest = max(weights)
        top = min(workers, max_slices, n)
        if total <= 0:
            return self._balance(units, top)
        best_ideal = max(total / top, largest)
        fewest = min(top, max(1, math.ceil(total / (best_ideal * (1 + self.tolerance)))))
        candidates = {fewest, min(fewest + 1, top), top}
        variance = sum((s * w) ** 2 for s, w in zip(units.spreads, weights, strict=True))
        over = min(max_slices, n)
        # Over-slicing can at best remove the error of one slice; skip it when that is too small
        # to pay for the start-ups (and spare the partitions on big, well-measured suites).
        if over > workers and 3 * math.sqrt(variance / workers) > max(
            0.5 * startup, self.tolerance * total / workers
        ):
            for factor in OVERSLICING:
                k = int(workers * factor)
                if k <= over:
                    candidates.add(k)
                if k >= over:
                    candidates.add(over)
                    break
        if len(candidates) == 1:
            return self._balance(units, top)
        scored: list[tuple[int, float]] = []
        for k in sorted(candidates):
            if n >= IDEAL_ITEMS_PER_SLICE * k and largest <= total / k:
                # Many small items per slice: longest-first balances them all but exactly, so
                # score the ideal partition instead of computing this one.
                share = total / k
                score = expected_wall_seconds(
                    [share] * k, [math.sqrt(variance / k) / share] * k, workers, startup
                )
            else:
                bins = partition.lpt(weights, units.names, k)
                score = self._score(units, bins, workers, startup)
            scored.append((k, score))
        best = min(score for _, score in scored)
        k = next(k for k, score in scored if score <= best * (1 + self.tolerance) + 1e-12)
        return self._balance(units, k)

    @staticmethod
    def _score(units: _Units, bins: partition.Bins, workers: int, startup: float) -> float:
        """The expected wall time of *bins* under prediction error."""
        loads = []
        spreads = []
        w, s = units.weights, units.spreads
        for b in bins:
            load = sum(w[i] for i in b)
            deviation = math.sqrt(sum((s[i] * w[i]) ** 2 for i in b))
            loads.append(load)
            spreads.append(deviation / load if load > 0 else 0.0)
        return expected_wall_seconds(loads, spreads, workers, startup)

    def _balance(self, units: _Units, k: int) -> partition.Bins:
        """The best partition of *units* into *k* bins this planner finds."""
        weights, names = units.weights, units.names
        k = max(1, min(k, len(units)))
        bins = partition.lpt(weights, names, k)
        if len(units) * k <= partition.KK_LIMIT and k > 1:
            other = partition.karmarkar_karp(weights, names, k)
            if max(partition.loads(weights, other)) < max(partition.loads(weights, bins)):
                bins = other
        return partition.refine(weights, names, bins, self.refine_budget * len(units) + 1000)

    # -----------------------------------------------------------------------------------------
    # the plan

    @staticmethod
    def _ordered(units: _Units, bins: partition.Bins) -> list[list[int]]:
        """Non-empty bins heaviest first (ties by smallest name), each in parent order."""
        w, names = units.weights, units.names
        keyed = [(-math.fsum([w[i] for i in b]), min(names[i] for i in b), b) for b in bins if b]
        keyed.sort(key=lambda t: (t[0], t[1]))
        # Pieces are kept in parent order, so an index sort restores it inside a slice.
        return [sorted(b) for _, _, b in keyed]

    def _build(self, units: _Units, bins: partition.Bins, workers: int, startup: float) -> Plan:
        """Number the slices and fill in their items, tests and predictions."""
        slices: list[SlicePlan] = []
        for members in self._ordered(units, bins):
            tests = [units.tests[i] for i in members]
            slices.append(
                SlicePlan(
                    index=len(slices) + 1,
                    items=tuple(units.items[i] for i in members),
                    predicted_seconds=startup + math.fsum([units.seconds[i] for i in members]),
                    tests=tuple(t for group in tests for t in group),
                )
            )
        return Plan(
            slices=tuple(slices),
            predicted_wall_seconds=wall_seconds([s.predicted_seconds for s in slices], workers),
            workers=workers,
            startup_seconds=startup,
            planner=self.name,
        )


def _finer_tests(
    item: Item, parent_tests: Sequence[TestCase], request: PlanRequest
) -> Sequence[TestCase]:
    """The tests a finer selector ``[file, test]`` selects: just that test."""
    own = request.tests.get(item.key)
    if own is not None:
        return own
    name = item.name
    matching = tuple(t for t in parent_tests if t.name == name)
    if matching or not parent_tests or name is None:
        return matching
    # The runner listed the file's tests but not under this exact name (a parametrised
    # family, a Go parent test): the selector still names one test.
    return (TestCase(item.path, name),)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@hookimpl(trylast=True)
def dagpar_make_planner(session: Session) -> GreedyPlanner:
    """The built-in planner, unless a plugin chose another.

    :param session: the run's session (unused: the history arrives in each request).
    """
    return GreedyPlanner()
