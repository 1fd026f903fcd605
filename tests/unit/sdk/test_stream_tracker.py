"""A slice's stream tracker folds a runner's events into started, running and ended tests."""

from __future__ import annotations

from dagpar_cli.model import Status, TestCase, TestResult
from dagpar_cli.runner_api import TestEvent
from dagpar_cli.sdk._stream import StreamTracker

A = TestCase("t.py", "test_a")
B = TestCase("t.py", "test_b")


class Events:
    """A stream that returns the batches it is given, one per poll."""

    def __init__(self, *batches: list[TestEvent]) -> None:
        self.batches = list(batches)

    def poll(self) -> list[TestEvent]:
        return self.batches.pop(0) if self.batches else []


def _end(test: TestCase, at: float, start: float | None) -> TestEvent:
    result = TestResult(path=test.path, name=test.name, status=Status.PASSED, start=start)
    return TestEvent(kind="end", test=test, at=at, result=result)


def test_an_end_whose_start_was_left_out_is_started_and_ended_never_running() -> None:
    tracker = StreamTracker()
    tracker.open(Events([_end(A, 2.0, 1.0), TestEvent(kind="start", test=B, at=3.0)]))
    assert tracker.poll() == 1
    assert tracker.started() == {A.id, B.id}
    assert tracker.running() == [(B, 3.0)]
    assert tracker.ended()[A.id].start == 1.0


def test_an_end_without_a_start_time_takes_its_start_event_s() -> None:
    tracker = StreamTracker()
    tracker.open(Events([TestEvent(kind="start", test=A, at=1.5)], [_end(A, 2.0, None)]))
    tracker.poll()
    assert tracker.running() == [(A, 1.5)]
    assert tracker.poll() == 1
    assert tracker.running() == []
    assert tracker.ended()[A.id] == _end(A, 2.0, 1.5).result
