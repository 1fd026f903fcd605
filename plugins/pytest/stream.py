"""Reading the selection plugin's per-test events while pytest runs (``PytestRunner.stream``).

The plugin appends one ASCII JSON line per test start and end to
``{report_dir}/dagpar_pytest_events.jsonl`` (see *Events* in
:mod:`dagpar_plugins.pytest.pytest_select`). :class:`PytestStream` reads what was appended since
its last call through :class:`dagpar_cli.untrusted.LineTail`: one ``stat`` when nothing is new,
a half-written last line kept for the next call, read :data:`CHUNK` bytes at a time and a line
longer than :data:`MAX_LINE` skipped, so a hostile file cannot make dagpar hold it whole. A line
that is not an event is skipped.

Cost per test
    dagpar's own process reads every line while the slices run, on the cores they run on, so a
    line costs as little as it can: a line exactly as the plugin writes it (a start; an end with
    no message; names without a character JSON escapes) is matched by one regular expression
    instead of decoded as JSON, and a start whose own end is the next line of the same read is
    not reported (the end says all the start would: the test started and ended, and when).
    Anything else is decoded in full, to the same event, or to none.

The results a stream read (:meth:`PytestStream.ended`) are what the slice's report reading
(:func:`dagpar_plugins.pytest.report.parse_report`) needs of the event file, so it need not read
and decode the file a second time.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from math import isfinite
from pathlib import Path
from typing import Any

from dagpar_cli import Status, TestCase, TestEvent, TestResult, untrusted

from .files import EVENTS_FILE

__all__ = ["CHUNK", "MAX_LINE", "PytestStream", "event_of", "events_of"]

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
_STATUS_BYTES = {key.encode(): status for key, status in _STATUS.items()}

# The lines the plugin writes for most tests, field for field (``json.dumps`` spacing). A JSON
# string without a backslash or control character is its own text; a JSON number is what
# ``float`` reads from its text (an integer part of at most 20 digits, so that the value is the
# one ``json`` gives, and no sign: no time or duration here is negative).
_STR = rb'"([^"\\\x00-\x1f\x7f-\xff]*)"'
_NUM = rb"((?:0|[1-9][0-9]{0,19})(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
_START = re.compile(
    rb'\{"e": "start", "path": ' + _STR + rb', "name": ' + _STR + rb', "at": ' + _NUM + rb"\}"
)
_END = re.compile(
    rb'\{"e": "end", "path": '
    + _STR
    + rb', "name": '
    + _STR
    + rb', "at": '
    + _NUM
    + rb', "start": '
    + _NUM
    + rb', "status": "(passed|failed|error|skipped)", "seconds": '
    + _NUM
    + rb', "message": ""(?:, "setup": '
    + _NUM
    + rb")?\}"
)
#: The bytes a start line begins with: ``{"e": "start", `` (its test's fields follow).
_START_HEAD = len(b'{"e": "start", ')


class PytestStream:
    """The events of one pytest run writing under *report_dir* (the file may not exist yet)."""

    def __init__(self, report_dir: Path, name: str = EVENTS_FILE) -> None:
        self.report_dir = report_dir
        self.name = name
        self._tail = untrusted.LineTail(report_dir, name, chunk=CHUNK, longest=MAX_LINE)
        self._lock = threading.Lock()
        #: The results of every end event of the file, as far as it was read, in order.
        self._ended: list[TestResult] = []
        #: Which file under the name ``_ended`` comes from (``LineTail.generation``).
        self._generation = 0
        #: Whether a read raised: what was read is then not known to be the file's.
        self._broken = False

    def poll(self) -> list[TestEvent]:
        """The events appended since the last call, in order."""
        with self._lock:
            return self._read()

    def ended(self) -> list[TestResult] | None:
        """The results of every end event the file holds, in order, read to its end now; None
        when a read failed (:func:`~dagpar_plugins.pytest.report.parse_report` then reads the
        file afresh).

        The events read here are not returned by a later :meth:`poll`: call it once the run is
        over and the stream has been polled for the last time.
        """
        with self._lock:
            while not self._broken and self._read():
                pass
            return None if self._broken else list(self._ended)

    def _read(self) -> list[TestEvent]:
        try:
            lines = self._tail.lines()
        except BaseException:
            self._broken = True
            raise
        if self._tail.generation != self._generation:
            # Another file under the name, read from its start: the earlier one's ends are gone.
            self._generation = self._tail.generation
            self._ended = []
        events = events_of(lines)
        self._ended.extend(e.result for e in events if e.result is not None)
        return events


def events_of(lines: Sequence[bytes]) -> list[TestEvent]:
    """The events *lines* hold, in order, but for a start whose own end follows at once.

    That start is left out when the end's result holds the test's start time: it would tell
    nothing the end does not (a reader that sees the end pops the test it started, or never
    knew it was running). Every other line is an event or nothing, as :func:`event_of` says.
    """
    events: list[TestEvent] = []
    append = events.append
    index, count = 0, len(lines)
    while index < count:
        line = lines[index]
        index += 1
        started = _START.fullmatch(line)
        if started is None:
            event = event_of(line)
            if event is not None:
                append(event)
            continue
        path, name = started[1].decode(), started[2].decode()
        nxt: TestEvent | None = None
        if index < count:
            # The plugin writes a test's start and end from one encoded string of its fields.
            follows = lines[index]
            if follows.startswith(b'{"e": "end", ' + line[_START_HEAD : started.end(2) + 1]):
                index += 1
                nxt = event_of(follows)
                if (
                    nxt is not None
                    and nxt.result is not None
                    and nxt.result.start is not None
                    and nxt.test.path == path
                    and nxt.test.name == name
                ):
                    append(nxt)
                    continue
        at = float(started[3])
        if isfinite(at):
            append(TestEvent(kind="start", test=TestCase(path, name), at=at))
        if nxt is not None:
            append(nxt)
    return events


def event_of(line: bytes) -> TestEvent | None:
    """The event one line of the file holds; None for anything else."""
    fast = _END.fullmatch(line)
    if fast is not None:
        return _fast_end(fast)
    try:
        text = line.decode()
    except UnicodeDecodeError:
        text = None
    try:
        try:
            data: Any = json.loads(line if text is None else text)
        except ValueError:
            if text is None:
                raise
            # JSON in another encoding (UTF-16, a byte-order mark): json finds it from bytes.
            data = json.loads(line)
        kind = data["e"]
        test = TestCase(str(data["path"]), str(data["name"]))
        at = _time(data["at"])
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
    except (ValueError, KeyError, TypeError, RecursionError, OverflowError):
        return None  # OverflowError: an integer too large for a float
    return TestEvent(kind="end", test=test, at=at, result=result)


def _fast_end(match: re.Match[bytes]) -> TestEvent | None:
    """The end event of a line :data:`_END` matched, as :func:`event_of` decodes it in full."""
    path, name, at_text, start_text, status, seconds_text, setup_text = match.groups()
    at = float(at_text)
    if not isfinite(at):
        return None
    start = float(start_text)
    seconds = float(seconds_text)
    setup = 0.0 if setup_text is None else float(setup_text)
    path_text, name_text = path.decode(), name.decode()
    result = TestResult(
        path=path_text,
        name=name_text,
        status=_STATUS_BYTES[status],
        seconds=seconds if isfinite(seconds) else 0.0,
        start=start if isfinite(start) else None,
        setup_seconds=setup if isfinite(setup) else 0.0,
    )
    return TestEvent(kind="end", test=TestCase(path_text, name_text), at=at, result=result)


def _time(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if isfinite(number) else None
