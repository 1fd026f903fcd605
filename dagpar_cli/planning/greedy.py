"""The built-in, timing-driven planner.

:class:`GreedyPlanner` is what ``dagpar_make_planner`` answers when no plugin chose another
planner (the hook implementation here is ``trylast``).
"""

from __future__ import annotations

import heapq
import math
import operator
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import TYPE_CHECKING, NamedTuple

from dagpar_cli.model import Item, Plan, SlicePlan, TestCase
from dagpar_cli.planning import partition
from dagpar_cli.planning.api import PlanRequest, check_shard, item_key
from dagpar_cli.planning.dispatch import (
    FactorPool,
    Guesses,
    expected_wall_seconds,
    pays_to_split,
    wall_seconds,
)
from dagpar_cli.plugin import hookimpl

if TYPE_CHECKING:
    from dagpar_cli.run_context import RunContext

__all__ = ["GreedyPlanner", "dagpar_make_planner"]

#: Measured items needed before estimates are weighed by the measured items' distribution.
MIN_MEASURED = 5
#: Bounds on how much an estimated item's weight and spread may grow from that distribution.
MAX_UNKNOWN_SCALE = 10.0
MAX_UNKNOWN_SPREAD = 3.0

#: How much better (relative) an over-sliced plan's expected wall time must be to be chosen.
OVERSLICING_MARGIN = 0.02
#: Extra waves of slices tried when over-slicing is allowed (``max_slices > workers``).
OVERSLICING_WAVES = (1, 2, 3)
#: Shares of the work left to the small slices of the extra waves.
OVERSLICING_TAIL = (0.1, 0.2, 0.35)
#: Each wave of a geometric probe shape is this size relative to the one before.
GEOMETRIC = 0.5

#: How strongly a hedged plan keeps other work away from its most uncertain pieces.
HEDGE = 2.0


class _Shape(NamedTuple):
    """A candidate plan's form."""

    #: How many slices.
    slices: int
    #: Every slice's intended size for over-sliced plans, in the order they start; None for
    #: balanced slices.
    targets: tuple[float, ...] | None = None
    #: How much balancing charges a piece for its uncertainty (0: balance expected seconds).
    hedge: float = 0.0
    #: How many leading slices hold the estimated pieces, and measured ones too long for a later
    #: slice (0: the slices of the largest target).
    heads: int = 0


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
    #: Whether the piece's prediction is an estimate rather than its own history.
    guessed: list[bool] = field(default_factory=list)
    #: What an estimated piece may turn out to be (resampled measured durations); None when
    #: too little is measured to tell, and estimates are then log-normal like the rest.
    pool: FactorPool | None = None

    def add(
        self,
        item: Item,
        weight: float,
        seconds: float,
        spread: float,
        name: str,
        tests: Sequence[TestCase],
        guessed: bool,
    ) -> None:
        """Append one piece."""
        self.items.append(item)
        self.weights.append(weight)
        self.seconds.append(seconds)
        self.spreads.append(spread)
        self.names.append(name)
        self.tests.append(tests)
        self.guessed.append(guessed)

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
            [self.guessed[i] for i in chosen],
            self.pool,
        )

    def __len__(self) -> int:
        return len(self.items)


class GreedyPlanner:
    """Longest-first balancing, polished by moves and swaps, with a chosen number of slices.

    The algorithm, for one split call:

    1. **Weights.** Each item weighs its expected seconds. A measured prediction is taken as
       it is; an estimate (a key in ``request.estimated``, or missing) stands for a draw from
       the measured items, so it is scaled by their mean-to-median ratio and expected to be off
       by their relative deviation. Without any history every item weighs the same, which
       makes the plan a balanced split by count.
    2. **Finer selectors.** An item heavier than the ideal slice (total / slices) is replaced by
       its finer selectors (``request.finer``), their predictions scaled to the item's.
    3. **Shards.** With ``request.shard = (i, n)`` all pieces are first partitioned into ``n``
       buckets, numbered heaviest first (ties by name), and only bucket ``i`` is sliced further.
    4. **Small work.** With history, when no cut can take more predicted work off the longest
       slice than a start-up (:func:`~dagpar_cli.planning.dispatch.pays_to_split`), the
       items run whole in one slice: extra start-ups would cost more than they save.
    5. **Candidate shapes.** The fewest slices whose ideal largest slice is within
       :attr:`tolerance` of the best possible, one more, and ``workers``; and, when
       ``max_slices`` allows and the predictions are uncertain enough to matter, over-sliced
       shapes: one or more extra waves of equal slices; a wave of big slices followed by
       small ones that let early finishers take over the end of the work (estimated pieces
       go to the big first slices, plain or *hedged*: each piece charged for its uncertainty,
       keeping other work away from the pieces likeliest to run long); or, with
       estimates, a short first wave of *probe* slices holding only the estimated pieces
       (and any measured piece too long for a later slice), then the measured work in equal
       waves, in big and small ones, or in waves that halve, so an estimate that runs far
       longer than expected holds up one worker while the others share out everything else.
    6. **Choice.** Each shape is partitioned and scored by replaying the executor's
       longest-first dispatch over a fixed set of draws of the true durations: measured pieces
       off by ``request.spread`` (what the timing store saw between runs; :attr:`known_spread`
       when unknown), estimated ones each turning out like a measured test drawn at random,
       relative to the measured median (so on a heavy-tailed suite a handful of estimates in
       one slice may hide the suite's slowest test). Start-ups are paid per slice in the replay. An
       over-sliced shape must beat the others by :data:`OVERSLICING_MARGIN`. Near ties go to
       fewer slices, or, with estimates in play, to more.
    7. **Balance.** Longest processing time first; on small problems also the Karmarkar-Karp
       differencing method, keeping the smaller largest slice; then moves and swaps between the
       largest slice and the others, within a budget of comparisons proportional to the pieces.
    8. **Order.** Slices are numbered in the order they should start: heaviest first (ties by
       their smallest item name), or an over-sliced shape's own order; items inside a slice
       keep the parent order. ``predicted_seconds`` is the slice's start-up plus
       its pieces' expected seconds.

    Every tiebreak goes through names, never through the input order, and every budget counts
    operations, never time, so every CI node that sees the same items and predictions computes
    the same plan.
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
        :raises UsageError: when ``request.shard`` is not ``(i, n)`` with ``1 <= i <= n``.
        """
        workers = max(1, request.workers)
        max_slices = max(1, request.max_slices if request.max_slices is not None else workers)
        parallel = min(workers, max_slices)
        startup = max(0.0, request.startup_seconds)
        units = whole = self._units(request)
        check_shard(request.shard)
        if request.shard is not None:
            index, total = request.shard
            units = self._split(units, request, total * parallel)
            buckets = self._ordered(units, self._balance(units, total))
            units = units.take(buckets[index - 1] if index <= len(buckets) else [])
        else:
            units = self._split(units, request, parallel)
        if units and request.has_history and not pays_to_split(units.weights, parallel, startup):
            # Small work: no cut saves what an extra slice's start-up costs, so one slice runs
            # it, its items whole.
            if request.shard is None:
                units = whole
            return self._build(units, [list(range(len(units)))], workers, startup)
        bins, in_order = self._choose(units, workers, max_slices, startup) if units else ([], False)
        return self._build(units, bins, workers, startup, in_order)

    # -----------------------------------------------------------------------------------------
    # units

    def _units(self, request: PlanRequest) -> _Units:
        """One piece per item, weighed by prediction (or by count without history)."""
        items = request.items
        # Item.key is computed on every access; big suites pay for it once only.
        keys = [item.path if len(item.selector) == 1 else item.key for item in items]
        predictions = request.predictions
        known = [predictions[key] for key in keys if key in predictions]
        fallback = statistics.median(known) if known and len(known) < len(keys) else 1.0
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
        pool = None
        if request.has_history and len(known) == len(keys) and not request.estimated:
            # Everything measured (the common case of a big, established suite): no estimates
            # to weigh.
            guessed = [False] * len(keys)
            weights = seconds
            spreads = [spread] * len(keys)
        elif request.has_history:
            estimated = request.estimated
            guessed = [key not in predictions or key in estimated for key in keys]
            measured = [s for s, g in zip(seconds, guessed, strict=True) if not g]
            scale, unknown, pool = self._unknown_model(measured)
            # Balance on expected seconds: an estimate (a median of siblings) stands for a
            # draw from the measured items, whose mean is higher on a heavy-tailed suite.
            weights = [s * scale if g else s for s, g in zip(seconds, guessed, strict=True)]
            seconds = weights
            spreads = [unknown if g else spread for g in guessed]
        else:
            guessed = [True] * len(keys)
            weights = [1.0] * len(keys)
            seconds = [max(0.0, predictions.get(key, 0.0)) for key in keys]
            spreads = [self.unknown_spread] * len(keys)
        tests_of = request.tests
        empty: tuple[TestCase, ...] = ()
        tests: list[Sequence[TestCase]] = (
            [tests_of.get(key, empty) for key in keys] if tests_of else [empty] * len(keys)
        )
        return _Units(list(items), weights, seconds, spreads, names, tests, guessed, pool)

    def _unknown_model(self, measured: Sequence[float]) -> tuple[float, float, FactorPool | None]:
        """How to weigh an estimated item, from the measured ones.

        :returns: ``(mean / median, relative spread, pool of what an estimate may turn out to
            be)``. With too few measured items to tell, an estimate is taken at face value with
            :attr:`unknown_spread` and no pool.
        """
        if len(measured) < MIN_MEASURED:
            return 1.0, self.unknown_spread, None
        mean = math.fsum(measured) / len(measured)
        median = statistics.median(measured)
        if mean <= 0 or median <= 0:
            return 1.0, self.unknown_spread, None
        deviation = math.sqrt(math.fsum((m - mean) ** 2 for m in measured) / len(measured))
        scale = min(MAX_UNKNOWN_SCALE, max(1.0, mean / median))
        spread = min(MAX_UNKNOWN_SPREAD, max(self.unknown_spread / 2, deviation / mean))
        return scale, spread, FactorPool(measured, scale)

    def _split(self, units: _Units, request: PlanRequest, slices: int) -> _Units:
        """Replace every piece heavier than the ideal slice by its finer selectors."""
        if not request.finer or slices < 2:
            return units
        target = sum(units.weights) / slices
        result = _Units(pool=units.pool)
        for i, item in enumerate(units.items):
            weight = units.weights[i]
            finer = request.finer.get(item.key, ()) if weight > target else ()
            if len(finer) < 2:
                result.add(
                    item,
                    weight,
                    units.seconds[i],
                    units.spreads[i],
                    units.names[i],
                    units.tests[i],
                    units.guessed[i],
                )
                continue
            total = sum(max(0.0, seconds) for _, seconds in finer)
            # One look-up per finer item, not a scan of the file's tests: a file cut into its
            # 20,000 tests would otherwise cost 20,000 x 20,000 comparisons.
            parent_tests = units.tests[i]
            by_name: dict[str, list[TestCase]] = {}
            for test in parent_tests:
                by_name.setdefault(test.name, []).append(test)
            parent_seconds, parent_spread = units.seconds[i], units.spreads[i]
            parent_guessed, parent_name = units.guessed[i], units.names[i]
            estimated, has_history = request.estimated, request.has_history
            for sub, seconds in finer:
                # Scale the finer predictions to the item's own, the better-measured number.
                share = max(0.0, seconds) / total if total > 0 else 1.0 / len(finer)
                spread = parent_spread
                key = item_key(sub)  # Item.key is computed on every access
                guessed = parent_guessed or key in estimated
                if has_history and guessed:
                    spread = max(spread, self.unknown_spread)
                result.add(
                    sub,
                    weight * share,
                    parent_seconds * share,
                    spread,
                    f"{parent_name}\0{key}",
                    _finer_tests(sub, key, parent_tests, by_name, request),
                    guessed,
                )
        return result

    # -----------------------------------------------------------------------------------------
    # slice count and balance

    def _choose(
        self, units: _Units, workers: int, max_slices: int, startup: float
    ) -> tuple[partition.Bins, bool]:
        """Partition *units* into the slice shape with the best expected wall time.

        :returns: the bins, and whether they must start in the order given (an over-sliced
            shape's) rather than heaviest first.
        """
        n = len(units)
        weights = units.weights
        total = math.fsum(weights)
        largest = max(weights)
        top = min(workers, max_slices, n)
        if total <= 0:
            return self._balance(units, top), False
        best_ideal = max(total / top, largest)
        fewest = min(top, max(1, math.ceil(total / (best_ideal * (1 + self.tolerance)))))
        shapes = [_Shape(k) for k in sorted({fewest, min(fewest + 1, top), top})]
        variance = 0.0
        if any(units.spreads):
            deviations = list(map(operator.mul, units.spreads, weights))
            variance = math.fsum(map(operator.mul, deviations, deviations))
        over = min(max_slices, n)
        # Over-slicing can at best remove the error of one slice; skip it when that is too small
        # to pay for the start-ups (and spare the partitions on big, well-measured suites).
        if over > top and 3 * math.sqrt(variance / top) > max(
            0.5 * startup, self.tolerance * total / top
        ):
            guessed = [w for w, g in zip(weights, units.guessed, strict=True) if g]
            share = (total - math.fsum(guessed)) / top
            giants = sorted(
                (w for w, g in zip(weights, units.guessed, strict=True) if not g and w > share),
                reverse=True,
            )
            shapes.extend(_overslicing(top, over, total, guessed, giants))
        if len(shapes) == 1:
            return self._balance(units, top), False
        scored: list[tuple[float, _Shape, partition.Bins | None]] = []
        estimates = units.pool is not None and any(units.guessed)
        for shape in shapes:
            k = shape.slices
            if (
                shape.targets is None
                and not estimates
                and n >= IDEAL_ITEMS_PER_SLICE * k
                and largest <= total / k
            ):
                # Many small items per slice: longest-first fills every slice all but exactly,
                # so score the ideal partition instead of computing this one.
                score = expected_wall_seconds(
                    [total / k] * k, _ideal_spreads(units, k, variance), workers, startup
                )
                scored.append((score, shape, None))
            else:
                bins = self._cut(units, shape)
                score = self._score(units, bins, workers, startup, shape.targets is not None)
                scored.append((score, shape, bins))
        pool = [entry for entry in scored if entry[1].slices <= top]
        best = min(score for score, _, _ in pool)
        over_sliced = [entry for entry in scored if entry[1].slices > top]
        if over_sliced and min(e[0] for e in over_sliced) < best * (1 - OVERSLICING_MARGIN):
            # More slices than workers must clearly pay: the replay's error model is coarse,
            # and their extra start-ups are certain.
            pool = over_sliced
            best = min(score for score, _, _ in pool)
        if any(units.guessed):
            # With estimates in play a tie goes to more slices: spreading the work thinner
            # costs nothing predicted and limits the damage of an estimate that was far off.
            ties = [entry for entry in pool if entry[0] <= best * (1 + 1e-9)]
            _, chosen, found = max(ties, key=lambda entry: entry[1].slices)
        else:
            # Fewer slices win a near tie: each one costs a start-up of machine time.
            _, chosen, found = next(e for e in pool if e[0] <= best * (1 + self.tolerance))
        if chosen.targets is not None:
            return (found if found is not None else self._cut(units, chosen)), True
        return self._balance(units, chosen.slices, found), False

    def _cut(self, units: _Units, shape: _Shape) -> partition.Bins:
        """A quick partition of *units* into *shape* (longest first; no polishing)."""
        if shape.hedge:
            units = _hedged(units, shape.slices, shape.hedge)
        if shape.targets is not None:
            # Estimated pieces go to the first slices: a surprise there is absorbed by the
            # slices that start later, whereas a surprise in a last slice ends the run late.
            heads = shape.heads or sum(1 for t in shape.targets if t >= shape.targets[0])
            pinned: Sequence[bool] = units.guessed
            if shape.heads and heads < len(shape.targets):
                # A measured piece too long for any later slice starts in the first wave too:
                # behind a probe it would end the run late.
                longest = max(shape.targets[heads:])
                pinned = [g or w > longest for g, w in zip(pinned, units.weights, strict=True)]
            return partition.fill(units.weights, units.names, shape.targets, pinned, heads)
        return partition.lpt(units.weights, units.names, shape.slices)

    @staticmethod
    def _score(
        units: _Units, bins: partition.Bins, workers: int, startup: float, in_order: bool = False
    ) -> float:
        """The expected wall time of *bins* under prediction error.

        :param in_order: the bins start in the order given, not heaviest first.
        """
        w = units.weights
        deviation = [d * d for d in map(operator.mul, units.spreads, w)]
        loads = [math.fsum([w[i] for i in b]) for b in bins]
        if units.pool is None or not any(units.guessed):
            spreads = [
                math.sqrt(math.fsum([deviation[i] for i in b])) / load if load > 0 else 0.0
                for b, load in zip(bins, loads, strict=True)
            ]
            return expected_wall_seconds(loads, spreads, workers, startup, in_order=in_order)
        # Estimated pieces are drawn from the pool; only measured ones scatter log-normally.
        guessed = units.guessed
        spreads = []
        guessed_loads = []
        counts = []
        for b, load in zip(bins, loads, strict=True):
            mine = [i for i in b if guessed[i]]
            estimated = math.fsum([w[i] for i in mine])
            measured = load - estimated
            variance = math.fsum([deviation[i] for i in b if not guessed[i]])
            spreads.append(math.sqrt(variance) / measured if measured > 0 else 0.0)
            guessed_loads.append(estimated)
            counts.append(len(mine))
        return expected_wall_seconds(
            loads,
            spreads,
            workers,
            startup,
            Guesses(guessed_loads, counts, units.pool),
            in_order=in_order,
        )

    def _balance(
        self, units: _Units, k: int, start: partition.Bins | None = None
    ) -> partition.Bins:
        """The best partition of *units* into *k* bins this planner finds.

        :param start: a longest-first partition already computed, to save computing it again.
        """
        weights, names = units.weights, units.names
        k = max(1, min(k, len(units)))
        bins = start if start is not None and len(start) == k else partition.lpt(weights, names, k)
        if len(units) * k <= partition.KK_LIMIT and k > 1:
            other = partition.karmarkar_karp(weights, names, k)
            if max(partition.loads(weights, other)) < max(partition.loads(weights, bins)):
                bins = other
        return partition.refine(weights, names, bins, self.refine_budget * len(units) + 1000)

    # -----------------------------------------------------------------------------------------
    # the plan

    @staticmethod
    def _ordered(units: _Units, bins: partition.Bins, in_order: bool = False) -> list[list[int]]:
        """Non-empty bins heaviest first (ties by smallest name), each in parent order.

        :param in_order: keep the bins' own order instead (an over-sliced shape's start order).
        """
        if in_order:
            return [sorted(b) for b in bins if b]
        w, names = units.weights, units.names
        full = [b for b in bins if b]
        loads = [math.fsum(map(w.__getitem__, b)) for b in full]
        counts: dict[float, int] = {}
        for load in loads:
            counts[load] = counts.get(load, 0) + 1
        # The smallest name breaks ties between equal loads; only tied bins need it.
        keyed = [
            (-load, min(map(names.__getitem__, b)) if counts[load] > 1 else "", b)
            for load, b in zip(loads, full, strict=True)
        ]
        keyed.sort(key=lambda t: (t[0], t[1]))
        # Pieces are kept in parent order, so an index sort restores it inside a slice.
        return [sorted(b) for _, _, b in keyed]

    def _build(
        self,
        units: _Units,
        bins: partition.Bins,
        workers: int,
        startup: float,
        in_order: bool = False,
    ) -> Plan:
        """Number the slices in their start order and fill in their items, tests, predictions."""
        slices: list[SlicePlan] = []
        for members in self._ordered(units, bins, in_order):
            slices.append(
                SlicePlan(
                    index=len(slices) + 1,
                    items=tuple(map(units.items.__getitem__, members)),
                    predicted_seconds=startup + math.fsum(map(units.seconds.__getitem__, members)),
                    tests=tuple(chain.from_iterable(map(units.tests.__getitem__, members))),
                )
            )
        return Plan(
            slices=tuple(slices),
            predicted_wall_seconds=wall_seconds(
                [s.predicted_seconds for s in slices], workers, in_order=True
            ),
            workers=workers,
            startup_seconds=startup,
            planner=self.name,
        )


def _ideal_spreads(units: _Units, slices: int, variance: float) -> list[float]:
    """Each slice's relative spread in an ideal partition of *units* into *slices* equal slices.

    Longest-first puts the heaviest pieces one to a slice before it spreads the rest, so slice
    ``j`` carries the variance of the ``j``-th heaviest piece and an equal share of the rest's.
    """
    w, spreads = units.weights, units.spreads
    size = math.fsum(w) / slices
    if size <= 0:
        return [0.0] * slices
    heaviest = heapq.nlargest(slices, range(len(w)), key=w.__getitem__)
    own = [(spreads[i] * w[i]) ** 2 for i in heaviest]
    rest = max(0.0, variance - math.fsum(own)) / slices
    own += [0.0] * (slices - len(own))
    return [math.sqrt(v + rest) / size for v in own]


def _hedged(units: _Units, slices: int, hedge: float) -> _Units:
    """*units* weighed by expected seconds plus a charge for their uncertainty.

    A slice's expected finish grows with the square root of its summed variances; linearised
    around the average slice, each piece adds its variance over twice the average deviation,
    and never more than its own deviation. Balancing these weights keeps other work away from
    the pieces most likely to run long.
    """
    deviations = [s * w for s, w in zip(units.spreads, units.weights, strict=True)]
    average = math.sqrt(math.fsum(d * d for d in deviations) / slices)
    twice = 2 * average
    weights = [
        w + hedge * (d * d / twice if d < twice else d)
        for w, d in zip(units.weights, deviations, strict=True)
    ]
    return replace(units, weights=weights)


def _overslicing(
    workers: int,
    most: int,
    total: float,
    guessed: Sequence[float] = (),
    giants: Sequence[float] = (),
) -> list[_Shape]:
    """Over-sliced shapes: equal slices, or one wave of big slices followed by small ones.

    The executor starts the slices in plan order; small slices at the end let the workers that
    finish early take over the work of those that were predicted wrong. With estimated pieces
    (*guessed*: their weights) there are also *probe* shapes: the estimates alone in a first,
    short wave, then the measured work in further waves, so an estimate that turns out to be
    very long holds up one worker while the others share out the rest. Measured pieces longer
    than a worker's share of the measured work (*giants*, heaviest first) start in the first
    wave as well and hold their workers throughout, so the later waves are cut for the others.
    """
    shapes: list[_Shape] = []
    probes = min(workers, len(guessed))
    estimated = math.fsum(guessed)
    held = min(len(giants), workers - 1)
    free = workers - held
    measured = total - estimated - math.fsum(giants[:held])
    if probes and measured > 0:
        probe = (estimated / probes,) * probes
        for waves in (0, *OVERSLICING_WAVES):
            k = probes + free * (1 + waves)
            if k > most:
                break
            rest = measured / (free * (1 + waves))
            shapes.append(_Shape(k, probe + (rest,) * (free * (1 + waves)), heads=probes))
            if not waves:
                # One slice per worker after the probes: the cheapest probe shape.
                continue
            # Waves that halve: if a probe holds up its worker for the whole run, the others
            # still end on small slices.
            sizes = [GEOMETRIC**w for w in range(1 + waves)]
            first = measured / (free * math.fsum(sizes))
            geometric = tuple(first * size for size in sizes for _ in range(free))
            shapes.append(_Shape(k, probe + geometric, heads=probes))
            for tail in OVERSLICING_TAIL:
                big = (1 - tail) * measured / free
                small = tail * measured / (waves * free)
                targets = probe + (big,) * free + (small,) * (waves * free)
                shapes.append(_Shape(k, targets, heads=probes))
    for waves in OVERSLICING_WAVES:
        k = workers * (1 + waves)
        if k > most:
            break
        shapes.append(_Shape(k))
        for tail in OVERSLICING_TAIL:
            head = (1 - tail) * total / workers
            small = tail * total / (waves * workers)
            targets = (head,) * workers + (small,) * (waves * workers)
            shapes.append(_Shape(k, targets))
            shapes.append(_Shape(k, targets, HEDGE))
    return shapes


def _finer_tests(
    item: Item,
    key: str,
    parent_tests: Sequence[TestCase],
    by_name: Mapping[str, Sequence[TestCase]],
    request: PlanRequest,
) -> Sequence[TestCase]:
    """The tests a finer selector ``[file, test]`` selects: just that test.

    :param key: *item*'s key.
    :param by_name: *parent_tests* by name.
    """
    own = request.tests.get(key)
    if own is not None:
        return own
    selector = item.selector
    name = selector[1] if len(selector) == 2 else item.name  # Item.name joins on each access
    matching = tuple(by_name.get(name, ())) if name is not None else ()
    if matching or not parent_tests or name is None:
        return matching
    # The runner listed the file's tests but not under this exact name (a parametrised
    # family, a Go parent test): the selector still names one test.
    return (TestCase(item.path, name),)


@hookimpl(trylast=True)
def dagpar_make_planner(session: RunContext) -> GreedyPlanner:
    """The built-in planner, unless a plugin chose another.

    :param session: the run's session (unused: the history arrives in each request).
    """
    return GreedyPlanner()
