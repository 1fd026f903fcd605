"""The fallback planner: a balanced split by item count, when no planner plugin answers."""

from __future__ import annotations

from dagpar_cli.model import Item, Plan, SlicePlan
from dagpar_cli.planning.api import PlanRequest, check_shard
from dagpar_cli.planning.dispatch import pays_to_split

__all__ = ["CountPlanner"]


class CountPlanner:
    """Cuts the items into ``workers`` consecutive runs of nearly equal length.

    What dagpar plans with when every planner plugin is disabled (``DAGPAR_DISABLED_PLUGINS``)
    or none answers ``dagpar_make_planner``.
    """

    name = "count"

    def plan(self, request: PlanRequest) -> Plan:
        """One slice per worker (fewer with fewer items), in the items' order.

        With history, one slice when the predicted work is too small to pay for the start-ups
        of more (:func:`~dagpar_cli.planning.dispatch.pays_to_split`). With
        ``request.shard = (i, n)`` the items are first cut the same way into ``n`` runs, and
        only run ``i`` is planned: the ``n`` CI nodes together run every item once.

        :raises UsageError: when ``request.shard`` is not ``(i, n)`` with ``1 <= i <= n``.
        """
        items = request.items
        check_shard(request.shard)
        if request.shard is not None:
            index, total = request.shard
            items = items[(index - 1) * len(items) // total : index * len(items) // total]
        if not items:
            return Plan(slices=(), predicted_wall_seconds=0.0, workers=1, planner=self.name)
        n = max(1, min(request.workers, len(items)))
        if request.has_history and not pays_to_split(
            [request.predictions.get(it.key, 0.0) for it in items], n, request.startup_seconds
        ):
            n = 1
        buckets: list[list[Item]] = [[] for _ in range(n)]
        for i, item in enumerate(items):
            buckets[i * n // len(items)].append(item)
        slices = tuple(
            SlicePlan(
                index=i + 1,
                items=tuple(b),
                predicted_seconds=request.startup_seconds
                + sum(request.predictions.get(it.key, 0.0) for it in b),
                tests=tuple(t for it in b for t in request.tests.get(it.key, ())),
            )
            for i, b in enumerate(buckets)
            if b
        )
        wall = max((s.predicted_seconds for s in slices), default=0.0)
        return Plan(slices=slices, predicted_wall_seconds=wall, workers=n, planner=self.name)
