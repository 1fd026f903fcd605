"""Reading the selection plugin's per-test events while pytest runs (``PytestRunner.stream``).

The plugin appends one ASCII JSON line per test start and end to
``{report_dir}/dagpar_pytest_events.jsonl`` (see *Events* in
:mod:`dagpar_plugins.pytest.pytest_select`). :class:`PytestStream` reads what was appended since
its last call through :class:`dagpar_cli.untrusted.LineTail`: one ``stat`` when nothing is new,
a half-written last line kept for the next call, read :data:`CHUNK` bytes at a time and a line
longer than :data:`MAX_LINE` skipped, so a hostile file cannot make dagpar hold it whole. A line
that is not an event is skipped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from dagpar_cli import Status, TestCase, TestEvent, TestResult, untrusted

from .files import EVENTS_FILE

__all__ = ["CHUNK", "MAX_LINE", "PytestStream", "event_of"]

#: Bytes read at a time.
CHUNK = 4 << 20
#: A line longer than this is no event of the plugin's: it is skipped, not buffered.
MAX_LINE = 1 << 20

_STATUS = {
    "passed": Status.PASSED,
    "failed": Status.FAILED,
    "error": Status.ERROR,
    "skipped": Status.SKIPPED,
}


class PytestStream:
    """The events of one pytest run writing under *report_dir* (the file may not exist yet)."""

    def __init__(self, report_dir: Path, name: str = EVENTS_FILE) -> None:
        self.report_dir = report_dir
        self.name = name
        self._tail = untrusted.LineTail(report_dir, name, chunk=CHUNK, longest=MAX_LINE)

    def poll(self) -> list[TestEvent]:
        """The events appended since the last call, in order."""
        return [event for line in self._tail.lines() if (event := event_of(line)) is not None]


def event_of(line: bytes) -> TestEvent | None:
    """The event one line of the file holds; None for anything else."""
    try:
        data: Any = json.loads(line)
        kind = data["e"]
        test = TestCase(str(data["path"]), str(data["name"]))
        at = _time(data["at"])
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if at is None or kind not in ("start", "end"):
        return None
    if kind == "start":
        return TestEvent(kind="start", test=test, at=at)
    status = _STATUS.get(data.get("status"))
    if status is None:
        return None
    seconds = _time(data.get("seconds")) or 0.0
    message = data.get("message")
    result = TestResult(
        path=test.path,
        name=test.name,
        status=status,
        seconds=max(seconds, 0.0),
        message=message[:1000] if isinstance(message, str) else "",
        start=_time(data.get("start")),
        setup_seconds=max(_time(data.get("setup")) or 0.0, 0.0),
    )
    return TestEvent(kind="end", test=test, at=at, result=result)


def _time(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
