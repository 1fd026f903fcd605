"""A path's setup as part of its items' cost: what a slice pays before the path's tests run.

Some runners spend time per file or package before its first test, in every slice that runs any
of its tests: Go compiles, links and vets a package's test binary in each ``go test`` (test
binaries are never cached). The runner reports it (``TestResult.setup_seconds``), the timing
store keeps it per path (:meth:`~dagpar_cli.timings.TimingStore.setup_seconds`), and
:func:`with_setup` adds it to the prediction of every whole item, so the planner weighs a package
with its build and the slice's measured start-up no longer holds the builds of all its packages.
A cut of one such item into pieces for several slices pays the setup again in each of them:
:func:`cut_pays` offers the cut to the planner only when it can save more than that.

A slice's own overhead grows with the tests it runs too (pytest's session end walks every item),
and that part is paid by whichever slice runs the test: :func:`with_per_test` adds it to the
items' predictions, so the planner's start-up is the fixed part alone, what a split costs
(:class:`~dagpar_cli.timings.startup.StartupModel`).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from dagpar_cli.model import Item
from dagpar_cli.planning.dispatch import pays_to_split

__all__ = ["cut_pays", "startup_with_setup", "with_per_test", "with_setup"]


def with_setup(
    predictions: Mapping[str, float], items: Sequence[Item], setup: Mapping[str, float]
) -> dict[str, float]:
    """*predictions* with each whole item's setup seconds added.

    An item whose path has no setup sample yet (a new package) gets the median of the known
    ones; items that name one test (``[file, test]``) are left alone, and so is everything when
    no path has a setup sample.

    :param predictions: predicted seconds per ``Item.key``.
    :param items: the split call's items.
    :param setup: measured setup seconds per path.
    """
    out = dict(predictions)
    if not setup:
        return out
    typical = statistics.median(setup.values())
    for item in items:
        if item.name is not None or item.key not in out:
            continue
        out[item.key] += setup.get(item.path, typical)
    return out


def with_per_test(
    predictions: Mapping[str, float],
    items: Sequence[Item],
    tests: Mapping[str, Sequence[object]],
    per_test: float,
) -> dict[str, float]:
    """*predictions* with *per_test* seconds added for every test an item selects.

    An item whose tests are not listed (a custom toolchain's item) counts as one test, as its
    slice's sample counted its one result.

    :param predictions: predicted seconds per ``Item.key``.
    :param items: the split call's items.
    :param tests: the tests each item selects, per ``Item.key``.
    :param per_test: a slice's overhead seconds per test it runs.
    """
    out = dict(predictions)
    if per_test <= 0:
        return out
    for item in items:
        key = item.key
        if key in out:
            out[key] += per_test * max(1, len(tests.get(key, ())))
    return out


def cut_pays(seconds: Sequence[float], workers: int, startup: float, setup: float | None) -> bool:
    """Whether cutting one item into pieces of predicted *seconds* can pay for its setup again.

    Each extra slice that holds a piece pays a start-up and the item's setup (Go links the
    package's test binary once more), so the cut must save more than both
    (:func:`~dagpar_cli.planning.dispatch.pays_to_split`). Without a setup sample the planner
    decides alone, as for any item.

    :param seconds: the predicted seconds of the item's pieces.
    :param workers: how many slices may run at once.
    :param startup: the predicted start-up seconds of one slice.
    :param setup: the item's measured setup seconds, or None.
    """
    if not setup:
        return True
    return pays_to_split(seconds, workers, startup + setup)


def startup_with_setup(measured: float, default: float, setup: Mapping[str, float]) -> float:
    """The start-up to plan with, given the measured one and whether setups were recorded.

    A slice's measured start-up is its seconds less its tests' and setups' seconds. A runner
    that reports setups builds and runs several items at once inside a slice (``go test -p``),
    so tests and builds overlap and that difference is often nothing at all, though starting
    ``go test`` costs a few tenths of a second: without a floor the planner would cut many small
    slices for free. With setups recorded, the start-up is never taken below the default.

    :param measured: the timing store's start-up seconds.
    :param default: the executor's assumed start-up seconds.
    :param setup: the instance's setup seconds per path.
    """
    return max(measured, default) if setup else measured
