"""Jest's per-test event stream: dagpar's reporter and the reader of what it writes.

Every Jest run of a slice loads ``stream_reporter.js`` (shipped with this package, written into
the report directory as :data:`REPORTER_FILE` so that it is there in a container too) with
``--reporters``. It appends one JSON line per test start and end to ``jest-K.events.jsonl``
(:func:`stream_file`) with synchronous writes, and one byte per finished test to
``jest-K.progress`` (:func:`progress_file`). The records, their fields and how the reporter
numbers same-named tests are described at the top of the reporter itself.

When a test starts
    Jest 29.6 and later call the reporter's ``onTestCaseStart`` as each test begins (after the
    test's ``beforeAll`` hooks, before its ``beforeEach`` hooks) with the test's own start time,
    ``startedAt``; that is the start event's time. A test that is still running when Jest dies
    is the one with a start and no end. Older Jest has no such hook: the stream then has only
    end events (with ``start`` = end - duration), and cannot name a running test.

Retries
    ``jest.retryTimes`` runs a failed test again after the other tests of its describe block;
    its start looks like that of a later test with the same name. Such a start (``retry_of`` in
    the record) is held back until the test's end says which test it was: a retry is started and
    ended again under its own id (its last end is its outcome), a later same-named test under its
    new one. While held, such a test is not known as running.

A worker that dies
    When a test ends its process (``process.exit``, a crash) in a Jest worker, jest-worker runs
    the file again in a new worker, up to three more times. The reporter sees a test start while
    another test of its file is still open, writes a ``restart`` record and ignores the file for
    the rest of the run: the test that was running stays open, the tests before it keep their
    results. When Jest runs in band (one file, or few fast ones), the whole run ends with the
    test, and the same holds.

The end-of-run ``--json`` report stays the cross-check (:mod:`dagpar_plugins.jest.report`).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from dagpar_cli import RunnerSpec, Status, TestCase, TestEvent, TestResult, untrusted

from .names import (
    PROGRESS_ENV,
    REPORTER_FILE,
    STREAM_ENV,
    progress_file,
    reporter_source,
    stream_file,
)
from .report import _STATUSES, Wanted, _relative_paths, read_selection

__all__ = [
    "PROGRESS_ENV",
    "REPORTER_FILE",
    "STREAM_ENV",
    "JestStream",
    "Record",
    "finished",
    "parse_record",
    "progress_file",
    "reporter_source",
    "stream_file",
]

_STREAM = re.compile(r"^jest-(\d+)\.events\.jsonl$")
_PROGRESS = re.compile(r"^jest-(\d+)\.progress$")


@dataclass(frozen=True, slots=True)
class Record:
    """One line the reporter wrote."""

    #: ``file``, ``start``, ``end`` or ``restart``.
    event: str
    #: Wall-clock seconds.
    at: float
    #: The test file, relative to Jest's working directory (or absolute, outside it).
    file: str
    #: The test's name (``start`` and ``end``).
    name: str = ""
    #: Which of the file's tests with this name it is.
    occurrence: int = 0
    #: Jest's status (``end``): ``passed``, ``failed``, ``pending``, ``todo``, ...
    status: str = ""
    #: When the test started (``end``), when known.
    start: float | None = None
    #: The test's own seconds (``end``), when known.
    duration: float | None = None
    #: The first line of its failure (``end``).
    message: str = ""
    #: For ``start``: the occurrence of a failed test of that name this may be a retry of
    #: (``jest.retryTimes``); the end record says which test it was.
    retry_of: int | None = None
    #: For ``end``: which run of the test this was (2 and on: a retry).
    invocation: int = 1


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_record(line: bytes) -> Record | None:
    """One reporter line, or None for anything that is not a well-formed record."""
    try:
        raw = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(raw, dict):
        return None
    event, at, file = raw.get("event"), _number(raw.get("at")), raw.get("file")
    if event not in ("file", "start", "end", "restart") or at is None or not isinstance(file, str):
        return None
    if event in ("file", "restart"):
        return Record(event=event, at=at, file=file)
    name, occurrence = raw.get("name"), raw.get("occurrence")
    if (
        not isinstance(name, str)
        or not isinstance(occurrence, int)
        or isinstance(occurrence, bool)
        or occurrence < 0
    ):
        return None
    status, message = raw.get("status", ""), raw.get("message", "")
    duration = _number(raw.get("duration"))
    retry_of, invocation = raw.get("retry_of"), raw.get("invocation", 1)
    return Record(
        event=event,
        at=at,
        file=file,
        name=name,
        occurrence=occurrence,
        status=status if isinstance(status, str) else "",
        start=_number(raw.get("start")),
        duration=duration if duration is not None and duration >= 0 else None,
        message=message if isinstance(message, str) else "",
        retry_of=retry_of if type(retry_of) is int and retry_of >= 0 else None,
        invocation=invocation if type(invocation) is int and invocation >= 1 else 1,
    )


def _result(path: str, record: Record) -> TestResult:
    status = _STATUSES.get(record.status)
    message = record.message
    if status is None:
        status, message = Status.ERROR, f"Jest reported an unknown status {record.status!r}"
    elif status is Status.SKIPPED and record.status == "todo":
        message = "todo"
    elif status is Status.FAILED and not message:
        message = "failed"
    return TestResult(
        path=path,
        name=record.name,
        occurrence=record.occurrence,
        status=status,
        seconds=record.duration or 0.0,
        message=message,
        start=record.start,
    )


class JestStream:
    """Reads a slice's ``jest-K.events.jsonl`` files as the reporter appends to them.

    Reads only whole lines past what it read before, through
    :class:`dagpar_cli.untrusted.LineTail` (a half-written last line is read on a later call, a
    link a test planted under the name is not followed); files that do not exist yet are simply
    not there. Events of run K come
    before those of run K+1 (the runs of a slice follow one another). Only the tests the run was
    asked for are reported: Jest's case-insensitive name filter may run a few more, and runs all
    the tests of a name when only some of them were selected.
    """

    def __init__(self, spec: RunnerSpec, report_dir: Path) -> None:
        self._spec = spec
        self._dir = report_dir
        self._tails: dict[int, untrusted.LineTail] = {}
        self._wanted: dict[int, dict[str, Wanted] | None] = {}
        self._paths: dict[str, str] = {}
        # Per (run, file): a start that may be a retry, until its end says what it was.
        self._held: dict[tuple[int, str], Record] = {}
        # Per (run, file): the test that started last, and when.
        self._began: dict[tuple[int, str], tuple[TestCase, float]] = {}
        #: Test files whose worker died and that Jest ran again (ignored after that), by run.
        self.restarted: set[tuple[int, str]] = set()

    def _files(self) -> list[tuple[int, str]]:
        try:
            with os.scandir(self._dir) as entries:
                found = [(m.group(1), e.name) for e in entries if (m := _STREAM.match(e.name))]
        except OSError:
            return []
        return sorted((int(index), name) for index, name in found)

    def _path(self, file: str, wanted: dict[str, Wanted] | None) -> str:
        path = self._paths.get(file)
        if path is None:
            if file.startswith("/"):
                path = _relative_paths([file], self._spec, wanted or ())[file]
            else:
                path = file
            self._paths[file] = path
        return path

    def _read(self, name: str, index: int) -> list[bytes]:
        tail = self._tails.get(index)
        if tail is None:
            tail = self._tails[index] = untrusted.LineTail(self._dir, name)
        return tail.lines()

    def _selection(self, index: int) -> dict[str, Wanted] | None:
        if self._wanted.get(index) is None:
            self._wanted[index] = read_selection(self._dir, str(index))
        return self._wanted[index]

    def poll(self) -> list[TestEvent]:
        """The events written since the last call, in order (see :class:`TestStream`)."""
        events: list[TestEvent] = []
        for index, name in self._files():
            lines = self._read(name, index)
            if not lines:
                continue
            wanted = self._selection(index)
            for line in lines:
                record = parse_record(line)
                if record is None:
                    continue
                path = self._path(record.file, wanted)
                if record.event == "restart":
                    self.restarted.add((index, path))
                if record.event not in ("start", "end"):
                    continue
                if record.event == "start" and record.retry_of is not None:
                    self._held[(index, path)] = record
                    continue
                # Tests of a file run one after another: an end closes whatever was held.
                held = self._held.pop((index, path), None) if record.event == "end" else None
                want = wanted.get(path) if wanted is not None else None
                if want is not None and not want.wants(record.name, record.occurrence):
                    continue
                test = TestCase(path, record.name, record.occurrence)
                if record.event == "start":
                    events.append(TestEvent(kind="start", test=test, at=record.at))
                    self._began[(index, path)] = (test, record.at)
                    continue
                if held is not None and held.name == record.name:
                    events.append(TestEvent(kind="start", test=test, at=held.at))
                    self._began[(index, path)] = (test, held.at)
                result, at = _result(path, record), record.at
                began = self._began.pop((index, path), None)
                if began is not None and began[0] == test:
                    # The start event is when the test started. Jest's duration, measured on
                    # another clock, may put the end a hair before it.
                    result = replace(result, start=began[1])
                    at = max(at, began[1])
                events.append(TestEvent(kind="end", test=test, at=at, result=result))
        return events


def finished(report_dir: Path) -> int:
    """How many tests the slice's Jest runs have finished so far: the progress files' sizes."""
    total = 0
    try:
        with os.scandir(report_dir) as entries:
            for entry in entries:
                if _PROGRESS.match(entry.name):
                    try:
                        total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
    except OSError:
        return 0
    return total
