"""The planner contract.

A planner turns the selected items of one split call, with a predicted duration for each, into a
:class:`~dagpar_cli.model.Plan`. Plans must be deterministic: the same items and predictions give
the same plan whatever order the items came in, so every CI node computes the same plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from dagpar_cli.errors import UsageError
from dagpar_cli.model import Item, Plan, TestCase

__all__ = ["PlanRequest", "Planner", "check_shard", "item_key"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRequest:
    """Everything a planner may use for one split call."""

    #: ``instance:function`` of the check (or the call chain) being split.
    check: str
    #: The selected items, in the parent field's order (slices keep this order inside).
    items: tuple[Item, ...]
    #: Predicted seconds per ``Item.key``; missing keys have no history (the timing store
    #: already filled in sibling-based estimates where it could).
    predictions: Mapping[str, float] = field(default_factory=dict)
    #: Whether ``predictions`` came from history (False: no timing data at all for this call).
    has_history: bool = False
    #: How many slices can run at once (``-j``, CPU count, or the engines' slots).
    workers: int = 1
    #: The most slices the planner may cut (``workers`` unless over-slicing is allowed).
    max_slices: int | None = None
    #: Measured (or assumed) start-up seconds of one slice on this runner and executor.
    startup_seconds: float = 0.0
    #: Finer selectors an item may be split into, per ``Item.key``: the item's tests as items
    #: (``[file, test]``) with their predictions. Empty when the runner cannot select finer.
    finer: Mapping[str, Sequence[tuple[Item, float]]] = field(default_factory=dict)
    #: The tests each item selects, per ``Item.key`` (to fill ``SlicePlan.tests``).
    tests: Mapping[str, Sequence[TestCase]] = field(default_factory=dict)
    #: ``(index, total)``: plan ``total`` buckets and keep bucket ``index`` (1-based) only.
    shard: tuple[int, int] | None = None
    #: Keys whose prediction is an estimate (from siblings, not from the item's own history);
    #: the planner expects these to be the most wrong.
    estimated: frozenset[str] = frozenset()
    #: The typical relative error of a measured prediction (how much durations drift from run
    #: to run, as the timing store saw it); None lets the planner assume its default.
    spread: float | None = None


@runtime_checkable
class Planner(Protocol):
    """Cuts items into slices; chosen by the ``dagpar_make_planner`` hook."""

    #: A short name shown in ``--dry-run`` output.
    name: str

    def plan(self, request: PlanRequest) -> Plan:
        """Return the plan for *request*.

        Every selected item (or all of its finer selectors, when it was split) appears in exactly
        one slice; slice ``index`` values are 1..len(slices), in the order the slices should
        start (the engine starts them in that order as workers free up); items inside a slice
        keep the parent order.
        """


def check_shard(shard: tuple[int, int] | None) -> None:
    """Refuse a ``--shard i/n`` that names no shard: a planner would silently plan nothing.

    :raises UsageError: when *shard* is not ``(i, n)`` with ``1 <= i <= n``.
    """
    if shard is not None and not 1 <= shard[0] <= shard[1]:
        index, total = shard
        raise UsageError(
            f"--shard {index}/{total}: the shard must be between 1/{total} and {total}/{total}"
        )


def item_key(item: Item) -> str:
    """``item.key``, at a fraction of its cost for a plain file or ``[file, test]`` selector
    (a file cut into its tests gives tens of thousands of them)."""
    selector = item.selector
    if item.matrix or len(selector) > 2:
        return item.key
    return item.path if len(selector) <= 1 else f"{item.path}::{selector[1]}"
