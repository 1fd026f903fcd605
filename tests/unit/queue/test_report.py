"""The build's merged result: stored results as they were, lost and unfinished units as errors."""

from __future__ import annotations

from dagpar_cli.config import QueueOptions
from dagpar_cli.model import Attempt, Item, Status, TestResult
from dagpar_cli.queue.build import CallState
from dagpar_cli.queue.report import collect_build
from dagpar_cli.queue.results import dump_unit, load_unit
from dagpar_cli.queue.units import Unit

OPTIONS = QueueOptions(url="redis://h:1/0", build="b", worker="report")


def _unit(n: int, *tests: str) -> Unit:
    path = tests[0].split("::")[0]
    return Unit(number=n, items=(Item((path,), path),), tests=tests, predicted_seconds=1.0)


def test_results_travel_whole() -> None:
    result = TestResult(
        path="tests/test_a.py",
        name="C::test[1]",
        status=Status.FAILED,
        seconds=1.25,
        message="boom",
        details="x" * 100_000,
        stdout="out",
        attempts=(Attempt(Status.FAILED, 1.0, "first"),),
        check="p:test",
        slice=3,
        occurrence=1,
        start=1700000000.5,
        matrix=(("python", "3.12"),),
    )
    worker, seconds, (back,), end = load_unit(dump_unit("n1", 2.5, [result]))
    assert (worker, seconds) == ("n1", 2.5) and end > 0
    assert back.id == result.id and back.status is Status.FAILED
    assert back.attempts == result.attempts and back.start == result.start
    assert back.matrix == result.matrix  # the report's suite per combination
    assert len(back.details) < 70_000  # long output is cut, not stored whole


def test_lost_and_unfinished_units_are_errors_and_infrastructure_failures() -> None:
    ran = TestResult(path="t1.py", name="a", status=Status.PASSED, check="p:test")
    state = CallState(
        key="p:test#1",
        meta={"check": "p:test", "runner": "pytest", "filled": "1", "total": "3"},
        units={
            1: _unit(1, "t1.py::a"),
            2: _unit(2, "t2.py::a", "t2.py::b::#2"),
            3: _unit(3, "t3.py::a"),
        },
        results={1: dump_unit("n1", 1.0, [ran])},
        lost={2: "n2"},
    )
    merged = collect_build(OPTIONS, [state], timeout=5)
    (check,) = merged.run.checks
    assert merged.runner_of == {"p": "pytest"}
    by_id = {r.id: r for r in check.results}
    assert set(by_id) == {"t1.py::a", "t2.py::a", "t2.py::b::#2", "t3.py::a"}
    assert by_id["t1.py::a"].status is Status.PASSED
    assert by_id["t2.py::b::#2"].status is Status.ERROR
    assert by_id["t2.py::a"].message == "lost with worker n2"
    assert by_id["t3.py::a"].message.startswith("not run: no node finished it")
    assert merged.missing == 1
    assert check.infrastructure_error and "2 of 3 units failed" in check.error


def test_reruns_replace_first_results_as_attempts() -> None:
    first_fail = TestResult(path="t1.py", name="a", status=Status.FAILED, message="no")
    other = TestResult(path="t1.py", name="b", status=Status.PASSED)
    base = CallState(
        key="p:test#1",
        meta={"check": "p:test", "filled": "1", "total": "2"},
        units={1: _unit(1, "t1.py::a", "t1.py::b"), 2: _unit(2, "t2.py::a")},
        results={1: dump_unit("n1", 1.0, [first_fail, other])},
        lost={2: "n2"},
    )
    rerun = CallState(
        key="p:test#1/retry",
        meta={"check": "p:test", "filled": "1", "total": "2", "retry_of": "p:test#1"},
        units={1: _unit(1, "t1.py::a"), 2: _unit(2, "t2.py::a")},
        results={
            1: dump_unit("n3", 1.0, [TestResult(path="t1.py", name="a", status=Status.PASSED)]),
            2: dump_unit("n3", 1.0, [TestResult(path="t2.py", name="a", status=Status.PASSED)]),
        },
        lost={},
    )
    (check,) = collect_build(OPTIONS, [rerun, base], timeout=5).run.checks
    by_id = {r.id: r for r in check.results}
    assert len(check.results) == 3
    assert by_id["t1.py::a"].flaky and by_id["t1.py::a"].attempts[0].message == "no"
    assert by_id["t2.py::a"].status is Status.PASSED  # lost first, passed on the rerun
    assert check.passed and not check.infrastructure_error
    assert {s.index for s in check.slices} == {1, 2, 1001, 1002}
