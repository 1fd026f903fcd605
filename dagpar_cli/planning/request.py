"""Stage 5's input and output around the planner: the request from history, the run order after.

:func:`plan_split` builds a :class:`~dagpar_cli.planning.api.PlanRequest` for one split call
from the timing store (predictions, the fixed part of the measured start-up, the tests of whole
items so a long file can be cut), asks the planner, and, where running slices hand their tails
over, orders each slice's items so that what is left to hand over late is short work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dagpar_cli.model import Item, Plan, TestCase
from dagpar_cli.planning.api import Planner, PlanRequest, item_key
from dagpar_cli.planning.count import CountPlanner
from dagpar_cli.planning.setup import cut_pays, startup_with_setup, with_per_test, with_setup

if TYPE_CHECKING:
    from dagpar_cli.timings import TimingStore

__all__ = ["DEFAULT_STARTUP", "OVERSLICE", "PlannedSplit", "longest_first", "plan_split"]

#: At most this many slices per worker (see :attr:`PlanRequest.max_slices`).
OVERSLICE = 4

#: Start-up seconds assumed for a slice before any was measured, per executor.
DEFAULT_STARTUP = {"local": 0.3, "docker": 1.0}


@dataclass(frozen=True, slots=True)
class PlannedSplit:
    """A split call's plan, with what its scheduler needs to hand tails over."""

    plan: Plan
    #: Predicted seconds per test id (empty without history or hand-over).
    predicted: dict[str, float]
    #: Predicted start-up seconds of one slice.
    startup: float


def plan_split(
    *,
    check: str,
    instance: str,
    items: Sequence[Item],
    tests_of: dict[str, list[TestCase]],
    runner: str | None,
    nested: bool,
    hands_over: bool,
    workers: int,
    executor: str,
    store: TimingStore | None,
    planner: Planner | None,
    shard: tuple[int, int] | None,
) -> PlannedSplit:
    """Cut one split call into slices.

    :param check: the check (``instance:function``).
    :param instance: the toolchain instance the timings are kept under.
    :param tests_of: each item's tests (workspace-relative), by item key.
    :param runner: the runner plugin's name, or None.
    :param nested: whether items are ``[file, test]`` selectors, so a file can be cut.
    :param hands_over: whether running slices hand unstarted tests to idle workers.
    :param executor: the executor's name (start-up defaults and history are per executor).
    :param planner: the planner the plugins chose (None: :class:`CountPlanner`).
    """
    predictions: dict[str, float] = {}
    estimated: frozenset[str] = frozenset()
    spread: float | None = None
    has_history = False
    startup = DEFAULT_STARTUP.get(executor, 0.5)
    finer: dict[str, list[tuple[Item, float]]] = {}
    per_test: dict[str, float] = {}
    if store is not None:
        with store.reading():  # items, then tests: one read of the estimates
            prediction = store.predict_detailed(instance, items, tests_of)
            predictions, has_history = prediction.seconds, prediction.has_history
            setup = store.setup_seconds(instance)
            predictions = with_setup(predictions, items, setup)
            estimated, spread = prediction.estimated, prediction.spread
            # The start-up a split costs is the fixed part of a slice's overhead; the part that
            # grows with the tests is paid wherever they run, so it goes into their predictions.
            model = store.startup_model(runner or "custom", executor, startup)
            overhead = 0.0
            if model is not None:
                startup = startup_with_setup(model.fixed, startup, setup)
                overhead = model.per_test
                predictions = with_per_test(predictions, items, tests_of, overhead)
            if nested and has_history:
                # Tests of whole items, so the planner can cut an item too long for one slice.
                keys = [item_key(item) for item in items]
                splittable = [
                    (item, key)
                    for item, key in zip(items, keys, strict=True)
                    if len(item.selector) <= 1 and len(tests_of.get(key, ())) > 1
                ]
                wanted = keys if hands_over else [key for _, key in splittable]
                per_test = store.predict_tests(
                    instance, [t for key in wanted for t in tests_of.get(key, ())]
                )
                if overhead > 0:
                    per_test = {test_id: s + overhead for test_id, s in per_test.items()}
                for item, key in splittable:
                    # One finer item per name: a name selects every test of the file that has it.
                    by_name: dict[str, float] = {}
                    predicted = per_test.get
                    for t in tests_of[key]:
                        name = t.name
                        by_name[name] = by_name.get(name, 0.0) + predicted(t.id, 0.0)
                    if not cut_pays(list(by_name.values()), workers, startup, setup.get(item.path)):
                        continue  # a second slice would pay more for the item's setup than it saves
                    head, path = item.selector[0], item.path
                    finer[key] = [
                        (Item((head, name), path), seconds) for name, seconds in by_name.items()
                    ]
    request = PlanRequest(
        check=check,
        items=tuple(items),
        predictions=predictions,
        has_history=has_history,
        workers=workers,
        # More, smaller slices than workers let free workers pick up the tail when the
        # predictions are off; the planner cuts them only when that pays for the start-up.
        # Without history there is nothing to weigh: one slice per worker, split by count.
        # Where running slices hand their tails to free workers, that does the same job
        # better, and each extra slice would only cost one more start-up.
        max_slices=OVERSLICE * workers if has_history and not hands_over else workers,
        startup_seconds=startup,
        finer=finer,
        tests=tests_of,
        shard=shard,
        estimated=estimated,
        spread=spread,
    )
    plan = (planner or CountPlanner()).plan(request)
    if not hands_over:
        return PlannedSplit(plan, {}, startup)
    # A file the planner cut into its tests has them as items: they go by their own times.
    seconds = {**per_test, **predictions}
    return PlannedSplit(longest_first(plan, seconds, estimated), per_test, startup)


def longest_first(plan: Plan, seconds: Mapping[str, float], estimated: frozenset[str]) -> Plan:
    """*plan* with each slice's items in the order they should run where tails are handed over.

    Unknown items first, then the longest: a surprise shows early, and what a slice has left
    when a worker comes free is short tests, which it can give away in even parts. Ties keep
    the plan's order, and a slice's tests follow its items.
    """

    def rank(item: Item) -> tuple[bool, float]:
        key = item_key(item)
        return key not in estimated, -seconds.get(key, 0.0)

    slices = []
    for sp in plan.slices:
        items = tuple(sorted(sp.items, key=rank))
        first: dict[str, int] = {}
        for position, item in enumerate(items):
            first.setdefault(item.path, position)
        tests = sp.tests
        if len({t.path for t in tests}) > 1:  # one path (a file cut into tests): in order
            tests = tuple(sorted(tests, key=lambda t: first.get(t.path, len(items))))
        slices.append(dataclasses.replace(sp, items=items, tests=tests))
    return dataclasses.replace(plan, slices=tuple(slices))
