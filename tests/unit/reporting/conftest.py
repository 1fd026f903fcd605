"""Builders of run results for the reporter tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from dagpar_cli.model import (
    Attempt,
    CheckResult,
    Item,
    Plan,
    RunResult,
    SlicePlan,
    SliceResult,
    Status,
    TestResult,
)

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="session")
def junit_schema() -> etree.XMLSchema:
    """The JUnit schema reports must validate against."""
    return etree.XMLSchema(etree.parse(str(DATA / "junit-10.xsd")))


@pytest.fixture
def sample_run() -> RunResult:
    """A two-check run: failures, an error, a skip, a flaky test and a test that failed on rerun."""
    backend_results = (
        TestResult(
            path="api/tests/test_a.py",
            name="test_ok",
            status=Status.PASSED,
            seconds=0.5,
            check="backend:test",
            slice=1,
        ),
        TestResult(
            path="api/tests/test_a.py",
            name="TestX::test_bad[1]",
            status=Status.FAILED,
            seconds=1.25,
            message="assert 1 == 2",
            details="Traceback\n  assert 1 == 2",
            stdout="printed by the test",
            check="backend:test",
            slice=1,
        ),
        TestResult(
            path="api/tests/test_b.py",
            name="test_skip",
            status=Status.SKIPPED,
            message="needs redis",
            check="backend:test",
            slice=2,
        ),
        TestResult(
            path="api/tests/test_b.py",
            name="test_flaky",
            status=Status.PASSED,
            seconds=0.2,
            check="backend:test",
            slice=2,
            attempts=(
                Attempt(Status.FAILED, 0.3, "timeout", "took too long"),
                Attempt(Status.ERROR, 0.1, "fixture broke", "ConnectionError"),
            ),
        ),
        TestResult(
            path="api/tests/test_b.py",
            name="test_always",
            status=Status.FAILED,
            seconds=0.4,
            message="still broken",
            details="final details",
            check="backend:test",
            slice=2,
            attempts=(Attempt(Status.FAILED, 0.4, "broken", "first details"),),
        ),
    )
    items = (
        Item(("api/tests/test_a.py",), "api/tests/test_a.py"),
        Item(("api/tests/test_b.py",), "api/tests/test_b.py"),
    )
    plan = Plan(
        slices=(
            SlicePlan(index=1, items=items[:1], predicted_seconds=2.0),
            SlicePlan(index=2, items=items[1:], predicted_seconds=1.5),
        ),
        predicted_wall_seconds=2.1,
        workers=2,
    )
    backend = CheckResult(
        name="backend:test",
        results=backend_results,
        slices=(
            SliceResult(
                index=1,
                items=items[:1],
                results=backend_results[:2],
                seconds=2.4,
                predicted_seconds=2.0,
            ),
            SliceResult(
                index=2,
                items=items[1:],
                results=backend_results[2:],
                seconds=1.1,
                predicted_seconds=1.5,
            ),
        ),
        plans=(plan,),
        seconds=2.6,
    )
    go_results = (
        TestResult(
            path="svc/store",
            name="TestPut",
            status=Status.PASSED,
            seconds=0.01,
            check="go:test",
            slice=1,
        ),
        TestResult(
            path="svc/store",
            name="TestGet/missing",
            status=Status.ERROR,
            message="panic: nil map",
            details="goroutine 1 [running]:",
            check="go:test",
            slice=1,
        ),
    )
    go = CheckResult(name="go:test", results=go_results, seconds=0.8, started=2.6)
    return RunResult(checks=(backend, go), seconds=3.5, predicted_seconds=3.0)
