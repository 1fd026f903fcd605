"""Deciding why a run of the runner died, and joining its stream with its report."""

from __future__ import annotations

from dagpar_cli.model import Status, TestCase, TestResult
from dagpar_cli.runtime.resume import (
    MAX_REPLACEMENTS,
    collateral,
    crashed,
    death,
    died_running,
    gave_up,
    reconcile,
)

OK = frozenset({0, 1})


def _death(**kw: object) -> tuple[str, str] | None:
    args: dict[str, object] = {
        "error": None,
        "exit_code": None,
        "ok_exit_codes": OK,
        "left_running": False,
        "cancelled": None,
    }
    args.update(kw)
    found = death(**args)  # type: ignore[arg-type]
    return None if found is None else (found.kind, found.message)


def test_each_way_a_run_dies_is_named() -> None:
    assert _death(error="killed by signal 9 running: pytest -q") == (
        "crash",
        "crashed the runner (signal 9)",
    )
    assert _death(error="timed out after 30s (--timeout) running: pytest") == (
        "timeout",
        "timed out after 30 s (--timeout)",
    )
    assert _death(error="interrupted") == ("stop", "interrupted")
    assert _death(error="killed by signal 9 running: x", cancelled="interrupted") == (
        "stop",
        "interrupted",
    )
    assert _death(exit_code=-9, cancelled="--failfast") == ("stop", "stopped (--failfast)")
    assert _death(error="out of memory (container OOM-killed) running: x") == (
        "crash",
        "crashed the runner (out of memory (container OOM-killed))",
    )
    # A bad exit code, or an ok one with a test left running (os._exit(0) mid-test).
    assert _death(exit_code=3) == ("crash", "crashed the runner (exit code 3)")
    assert _death(exit_code=0, left_running=True) == ("crash", "crashed the runner (exit code 0)")
    assert _death(exit_code=1) is None
    # A shell's or docker exec's 128 + N: the runner was killed by signal N.
    assert _death(exit_code=137) == (
        "crash",
        "crashed the runner (exit code 137, killed by signal 9 (SIGKILL))",
    )
    assert _death(exit_code=255) == ("crash", "crashed the runner (exit code 255)")


def test_only_stops_keep_the_unstarted_tests_from_resuming() -> None:
    assert (
        death(
            error="interrupted", exit_code=None, ok_exit_codes=OK, left_running=True, cancelled=None
        ).resumes
        is False
    )  # type: ignore[union-attr]
    assert death(
        error=None, exit_code=3, ok_exit_codes=OK, left_running=True, cancelled=None
    ).resumes  # type: ignore[union-attr]


def _r(name: str, status: Status, **kw: object) -> TestResult:
    return TestResult(path="t.py", name=name, status=status, **kw)  # type: ignore[arg-type]


def test_the_report_stands_with_the_stream_s_start_and_a_disagreement_is_an_error() -> None:
    streamed = {
        "t.py::a": _r("a", Status.PASSED, start=10.0),
        "t.py::b": _r("b", Status.PASSED, start=11.0),
        "t.py::only_streamed": _r("only_streamed", Status.PASSED, start=12.0),
    }
    reported = [
        _r("a", Status.PASSED, details="report details"),
        _r("b", Status.FAILED, message="assert 1 == 2"),
        _r("only_reported", Status.SKIPPED),
    ]
    results = {r.name: r for r in reconcile(streamed, reported, "pytest")}
    assert results["a"].status is Status.PASSED and results["a"].start == 10.0
    assert results["a"].details == "report details"
    assert results["b"].status is Status.ERROR
    assert results["b"].message == (
        "pytest disagrees with itself: its per-test stream says passed, its report says "
        "failed (assert 1 == 2)"
    )
    assert results["only_streamed"].start == 12.0
    assert results["only_reported"].status is Status.SKIPPED
    assert len(results) == 4


def test_crashed_and_collateral_results_are_told_apart() -> None:
    cause = death(
        error="killed by signal 9 running: x",
        exit_code=None,
        ok_exit_codes=OK,
        left_running=True,
        cancelled=None,
    )
    assert cause is not None
    crash = died_running(TestCase("t.py", "k"), 5.0, cause, 7.5)
    assert crashed(crash) and not collateral(crash)
    assert (crash.start, crash.seconds) == (5.0, 2.5)
    skipped = gave_up(TestCase("t.py", "later"), cause, MAX_REPLACEMENTS)
    assert collateral(skipped) and not crashed(skipped)
    assert skipped.message == (
        f"not run: crashed the runner (signal 9); the slice replaced its runner "
        f"{MAX_REPLACEMENTS} times, the most it may"
    )
    early = gave_up(TestCase("t.py", "later"), cause, 0)
    assert early.message.endswith("the runner started no test before it died")
    assert collateral(_r("x", Status.ERROR, message="interrupted before it started"))
    assert not collateral(_r("x", Status.ERROR, message="fixture 'db' not found"))
    assert not crashed(_r("x", Status.FAILED, message="crashed the runner (signal 9)"))
