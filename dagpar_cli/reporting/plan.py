"""The ``--dry-run`` plan as a user reads it and as ``--dry-run --json`` prints it.

The JSON form is a contract (DESIGN.md §4)::

    {"checks": [{"name": "backend:test",
                 "slices": [{"index": 1, "items": ["api/tests/test_a.py",
                                                   ["api/tests/test_b.py", "test_c"]],
                             "predicted_seconds": 1.25}],
                 "predicted_wall_seconds": 1.3, "workers": 2, "planner": "greedy"}],
     "shard": "2/4"}

An item of a matrix (several ``+parallel`` fields, or ``matrix:`` in dagpar.yaml) is
``{"item": "tests/test_a.py", "matrix": {"pythons": "3.12"}}``.

A check whose function split several times has one entry: its slices are numbered on from one
split call to the next, and its predicted wall time is their sum. ``shard`` is there for a
sharded run only.
"""

from __future__ import annotations

import json
from typing import Any

from dagpar_cli.model import RunResult
from dagpar_cli.reporting.summary import render_plan

__all__ = ["plan_json", "render_dry_run"]


def plan_json(run: RunResult) -> dict[str, Any]:
    """The ``--dry-run --json`` document of *run* (see the module docstring).

    :param run: a dry run's result: its checks hold plans and no results.
    """
    checks = []
    for c in run.checks:
        slices: list[dict[str, Any]] = []
        wall = 0.0
        for plan in c.plans:
            offset = len(slices)
            for s in plan.slices:
                entry = s.to_json()
                entry["index"] = s.index + offset
                slices.append(entry)
            wall += plan.predicted_wall_seconds
        checks.append(
            {
                "name": c.name,
                "slices": slices,
                "predicted_wall_seconds": round(wall, 3),
                "workers": max((p.workers for p in c.plans), default=0),
                "planner": ",".join(sorted({p.planner for p in c.plans})),
            }
        )
    data: dict[str, Any] = {"checks": checks}
    if run.shard:
        data["shard"] = f"{run.shard[0]}/{run.shard[1]}"
    return data


def render_dry_run(run: RunResult, *, as_json: bool) -> str:
    """What ``--dry-run`` prints on standard output: every plan, or the JSON document.

    :param run: a dry run's result.
    :param as_json: ``--json``: the :func:`plan_json` document, indented.
    :returns: the text, ending with a newline unless it is empty (no plan at all).
    """
    if as_json:
        return json.dumps(plan_json(run), indent=2) + "\n"
    return "".join(
        render_plan(check.name, plan) + "\n" for check in run.checks for plan in check.plans
    )
