"""The progress view on fake streams: what it counts and how it draws."""

from __future__ import annotations

import io
import re
import threading
import time

import pytest

from dagpar_cli.model import Item, SlicePlan, SliceResult, Status, TestCase, TestResult
from dagpar_cli.reporting import progress
from dagpar_cli.reporting.progress import ProgressView, wants_live_view


@pytest.fixture(autouse=True)
def _no_redraw_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests draw when they choose: the background redraw would race them."""
    monkeypatch.setattr(progress, "REDRAW_SECONDS", 3600.0)


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _plan(index: int, tests: int = 0, items: int = 2, predicted: float = 3.0) -> SlicePlan:
    return SlicePlan(
        index=index,
        items=tuple(
            Item((f"t/test_{index}_{i}.py",), f"t/test_{index}_{i}.py") for i in range(items)
        ),
        predicted_seconds=predicted,
        tests=tuple(TestCase(f"t/test_{index}_0.py", f"test_{n}") for n in range(tests)),
    )


def _result(index: int, name: str, status: Status = Status.PASSED) -> TestResult:
    return TestResult(path=f"t/test_{index}_0.py", name=name, status=status, seconds=0.01)


def _finished(plan: SlicePlan, results: list[TestResult], error: str = "") -> SliceResult:
    return SliceResult(
        index=plan.index,
        items=plan.items,
        results=tuple(results),
        seconds=3.25,
        predicted_seconds=plan.predicted_seconds,
        error=error,
    )


def test_live_view_needs_a_terminal_that_is_not_dumb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    assert wants_live_view(FakeTerminal())
    assert not wants_live_view(io.StringIO())
    monkeypatch.setenv("TERM", "dumb")
    assert not wants_live_view(FakeTerminal())


def test_no_color_turns_colour_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert progress._wants_color(FakeTerminal())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not progress._wants_color(FakeTerminal())


def test_tests_reported_from_many_threads_are_all_counted() -> None:
    view = ProgressView(io.StringIO(), started=time.monotonic(), live=True)
    plans = [_plan(i, tests=200) for i in range(1, 9)]
    barrier = threading.Barrier(len(plans))

    def slice_worker(plan: SlicePlan) -> None:
        view.dagpar_slice_started(check="api:test", slice=plan, total=len(plans))
        barrier.wait()
        for n in range(200):
            status = Status.FAILED if n == 7 else Status.PASSED
            view.dagpar_test_reported(check="api:test", result=_result(plan.index, f"t{n}", status))

    threads = [threading.Thread(target=slice_worker, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = view.lines(width=200, height=40)
    assert len(lines) == 9
    for index, line in enumerate(lines[:8], 1):
        assert f"slice {index}/8" in line and "200/200 tests, 1 failed" in line, line
        assert "/ 3.0s predicted" in line
    assert "0/8 slices" in lines[-1] and "1592 passed, 8 failed" in lines[-1]
    view.close()


def test_items_count_when_the_runner_cannot_list_tests() -> None:
    view = ProgressView(io.StringIO(), started=time.monotonic(), live=True)
    plan = _plan(2, tests=0, items=4)
    view.dagpar_slice_started(check="lint:check", slice=plan, total=3)
    view.dagpar_test_reported(check="lint:check", result=_result(2, "a"))
    (line, overall) = view.lines(width=120)
    assert "lint:check  slice 2/3  [##--------] 1/4 items" in line, line
    # The overall bar moves with the running slice's share: a quarter of one of three slices.
    assert overall.startswith("[#-------------------] 0/3 slices · 1 passed"), overall
    view.close()


def test_a_running_runner_moves_the_count_before_its_results_arrive() -> None:
    view = ProgressView(io.StringIO(), started=time.monotonic(), live=True)
    plan = _plan(1, tests=10)
    view.dagpar_slice_started(check="api:test", slice=plan, total=2)
    view.dagpar_slice_progress(check="api:test", slice=plan, done=4)
    (line, overall) = view.lines(width=120)
    assert "[####------] 4/10 tests" in line, line
    # The bar moves with it: 4/10 of one of two slices; nothing passed or failed yet.
    assert overall.startswith("[####----------------] 0/2 slices · "), overall
    assert "passed" not in overall
    # Results that arrive later are not counted on top of what the runner said.
    for n in range(3):
        view.dagpar_test_reported(check="api:test", result=_result(1, f"t{n}"))
    (line, _) = view.lines(width=120)
    assert "4/10 tests" in line, line
    # Progress of a slice that already ended is ignored.
    view.dagpar_slice_finished(check="api:test", slice=plan, result=_finished(plan, []))
    view.dagpar_slice_progress(check="api:test", slice=plan, done=9)
    assert "slice 1/2" not in "".join(view.lines(width=120))
    view.close()


def test_finished_slice_counts_its_final_results_once() -> None:
    out = io.StringIO()
    view = ProgressView(out, started=time.monotonic(), live=False)
    plan = _plan(1, tests=3)
    view.dagpar_slice_started(check="api:test", slice=plan, total=1)
    view.dagpar_test_reported(check="api:test", result=_result(1, "a"))
    # The engine fills in the two tests the runner never reported.
    final = [
        _result(1, "a"),
        _result(1, "b", Status.ERROR),
        _result(1, "c", Status.ERROR),
    ]
    view.dagpar_slice_finished(
        check="api:test", slice=plan, result=_finished(plan, final, "runner crashed\nmore")
    )
    (overall,) = view.lines(width=120)
    assert "1/1 slices · 1 passed, 2 errors" in overall
    started, done = out.getvalue().splitlines()
    assert re.fullmatch(
        r"\[\d\d:\d\d\.\d\] api:test slice 1/1 started: 2 items, 3 tests, predicted 3\.0s", started
    )
    assert re.fullmatch(
        r"\[\d\d:\d\d\.\d\] api:test slice 1/1 done: 1 passed, 2 errors in 3\.2s "
        r"\(predicted 3\.0s\) — runner crashed",
        done,
    ), done


def test_lines_never_wrap_a_narrow_terminal() -> None:
    view = ProgressView(io.StringIO(), started=time.monotonic(), live=True, color=True)
    long_check = "a-very-long-instance-name-for-a-monorepo:integration-tests-" + "x" * 80
    plan = _plan(1, tests=5)
    view.dagpar_slice_started(check=long_check, slice=plan, total=1)
    view.dagpar_test_reported(check=long_check, result=_result(1, "a", Status.FAILED))
    for width in (40, 60, 80):
        for line in view.lines(width=width):
            assert progress._visible_len(line) < width, (width, line)
    view.close()


def test_hostile_check_names_are_cleaned() -> None:
    out = io.StringIO()
    view = ProgressView(out, started=time.monotonic(), live=False)
    check = "x:\x1b[2Jevil\x07"
    view.dagpar_slice_started(check=check, slice=_plan(1), total=1)
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()
    assert all("\x1b[2J" not in line for line in view.lines(width=100))


def test_close_erases_the_view_it_drew() -> None:
    out = FakeTerminal()
    view = ProgressView(out, started=time.monotonic(), live=True)
    view.dagpar_slice_started(check="api:test", slice=_plan(1), total=2)
    view.redraw()
    drawn = out.getvalue()
    assert drawn.count("\n") == 2 and "slice 1/2" in drawn
    view.close()
    assert out.getvalue()[len(drawn) :] == "\x1b[2A\r\x1b[J"
    view.close()  # twice is harmless
    view.redraw()  # and nothing is drawn after the end
    assert out.getvalue()[len(drawn) :] == "\x1b[2A\r\x1b[J"


def test_clock_reads_minutes_seconds_then_hours() -> None:
    assert progress._clock(3.24) == "00:03.2"
    assert progress._clock(754.06) == "12:34.1"
    assert progress._clock(3725) == "1:02:05"
    assert progress._clock(-1) == "00:00.0"


def test_before_any_slice_starts_the_view_says_it_is_planning() -> None:
    out = FakeTerminal()
    view = ProgressView(out, started=time.monotonic(), live=True)
    (line,) = view.lines(width=80)
    assert line.startswith("dagpar: collecting and planning… 00:0")
    view.dagpar_slice_started(check="api:test", slice=_plan(1), total=1)
    assert "planning" not in "".join(view.lines(width=80))
    view.close()
