"""The ``--dry-run`` output: every plan for a reader, the documented JSON for a machine."""

from __future__ import annotations

import json

from dagpar_cli.model import CheckResult, Item, Plan, RunResult, SlicePlan, TestCase
from dagpar_cli.reporting.plan import plan_json, render_dry_run
from dagpar_cli.reporting.summary import render_plan

A = Item(("api/tests/test_a.py",), "api/tests/test_a.py")
B = Item(("api/tests/test_b.py", "test_c"), "api/tests/test_b.py")


def plan(*slices: SlicePlan, wall: float, workers: int = 2, planner: str = "greedy") -> Plan:
    return Plan(slices=slices, predicted_wall_seconds=wall, workers=workers, planner=planner)


FIRST = plan(
    SlicePlan(index=1, items=(A,), predicted_seconds=1.25),
    SlicePlan(
        index=2,
        items=(B,),
        predicted_seconds=0.5,
        tests=(TestCase("api/tests/test_b.py", "test_c"),),
    ),
    wall=1.3,
)
#: A second split call of the same check: its slices are numbered on after the first call's.
SECOND = plan(SlicePlan(index=1, items=(A,), predicted_seconds=2.0), wall=2.0, planner="count")
RUN = RunResult(
    checks=(
        CheckResult(name="backend:test", plans=(FIRST, SECOND)),
        CheckResult(name="backend:lint"),
    ),
    seconds=0.0,
    shard=(2, 4),
)


def test_plan_json_is_the_documented_shape() -> None:
    assert plan_json(RUN) == {
        "checks": [
            {
                "name": "backend:test",
                "slices": [
                    {"index": 1, "items": ["api/tests/test_a.py"], "predicted_seconds": 1.25},
                    {
                        "index": 2,
                        "items": [["api/tests/test_b.py", "test_c"]],
                        "predicted_seconds": 0.5,
                        "tests": ["api/tests/test_b.py::test_c"],
                    },
                    {"index": 3, "items": ["api/tests/test_a.py"], "predicted_seconds": 2.0},
                ],
                "predicted_wall_seconds": 3.3,
                "workers": 2,
                "planner": "count,greedy",
            },
            {
                "name": "backend:lint",
                "slices": [],
                "predicted_wall_seconds": 0.0,
                "workers": 0,
                "planner": "",
            },
        ],
        "shard": "2/4",
    }


def test_an_unsharded_plan_has_no_shard_key() -> None:
    run = RunResult(checks=RUN.checks, seconds=0.0)
    assert "shard" not in plan_json(run)


def test_dry_run_json_is_indented_json_on_one_document() -> None:
    text = render_dry_run(RUN, as_json=True)
    assert text.endswith("}\n")
    assert json.loads(text) == plan_json(RUN)
    assert text == json.dumps(plan_json(RUN), indent=2) + "\n"


def test_dry_run_text_is_every_plan_separated_by_a_blank_line() -> None:
    text = render_dry_run(RUN, as_json=False)
    assert text == (
        render_plan("backend:test", FIRST) + "\n" + render_plan("backend:test", SECOND) + "\n"
    )
    assert render_dry_run(RunResult(checks=(), seconds=0.0), as_json=False) == ""
