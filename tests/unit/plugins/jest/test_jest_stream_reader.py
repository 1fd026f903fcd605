"""The Jest stream reader on its own, against files written here the way the reporter writes them.

The reporter itself, with real Jest, is tested in ``tests/integration/test_jest_stream.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dagpar_plugins import jest
from dagpar_plugins.jest.stream import JestStream, parse_record, reporter_source

from dagpar_cli import RunnerSpec, Selection, Status, TestCase, TestEvent

SPEC = RunnerSpec(name="jest", workspace=Path("/ws"), source="web", command=("jest",))
FILE = "__tests__/a.test.js"


def _line(**record: Any) -> str:
    return json.dumps({"file": FILE, "at": 1.0, **record}) + "\n"


def _append(report_dir: Path, text: str, index: int = 1) -> None:
    with open(report_dir / f"jest-{index}.events.jsonl", "a", encoding="utf-8") as handle:
        handle.write(text)


def _brief(events: list[TestEvent]) -> list[tuple[str, str, str, int, str | None]]:
    return [
        (
            e.kind,
            e.test.path,
            e.test.name,
            e.test.occurrence,
            e.result.status.value if e.result else None,
        )
        for e in events
    ]


def test_poll_reads_whole_lines_as_they_are_appended(tmp_path: Path) -> None:
    stream = JestStream(SPEC, tmp_path / "reports")
    assert stream.poll() == []  # no directory yet
    (tmp_path / "reports").mkdir()
    report_dir = tmp_path / "reports"
    assert stream.poll() == []  # no file yet
    start = _line(event="start", name="adds", occurrence=0, at=10.0)
    _append(report_dir, _line(event="file") + start[:20])
    assert stream.poll() == []  # the start line is half written
    _append(report_dir, start[20:])
    (event,) = stream.poll()
    assert (event.kind, event.test, event.at, event.result) == (
        "start",
        TestCase(FILE, "adds"),
        10.0,
        None,
    )
    assert stream.poll() == []
    _append(
        report_dir,
        _line(
            event="end",
            name="adds",
            occurrence=0,
            at=10.5,
            status="failed",
            start=10.0,
            duration=0.5,
            message="Error: boom",
        ),
    )
    (end,) = stream.poll()
    assert end.kind == "end" and end.at == 10.5 and end.result is not None
    assert (end.result.status, end.result.message) == (Status.FAILED, "Error: boom")
    assert (end.result.start, end.result.seconds, end.result.id) == (10.0, 0.5, f"{FILE}::adds")


def test_runs_are_read_in_order_and_garbage_is_skipped(tmp_path: Path) -> None:
    stream = JestStream(SPEC, tmp_path)
    _append(tmp_path, _line(event="end", name="b", occurrence=0, status="passed"), index=2)
    _append(
        tmp_path,
        "not json\n"
        "[1, 2]\n"
        + _line(event="start", name="a", occurrence=-1)
        + _line(event="start", name=3, occurrence=0)
        + _line(event="bogus", name="a", occurrence=0)
        + json.dumps({"event": "start", "name": "a", "occurrence": 0, "at": 1})
        + "\n"
        + _line(event="end", name="a", occurrence=1, status="weird")
        + _line(event="end", name="t", occurrence=0, status="todo"),
        index=10,
    )
    _append(tmp_path, _line(event="end", name="a", occurrence=0, status="passed"), index=1)
    events = stream.poll()
    assert _brief(events) == [
        ("end", FILE, "a", 0, "passed"),
        ("end", FILE, "b", 0, "passed"),
        ("end", FILE, "a", 1, "error"),
        ("end", FILE, "t", 0, "skipped"),
    ]
    assert events[2].result is not None
    assert events[2].result.message == "Jest reported an unknown status 'weird'"
    assert events[2].test.id == f"{FILE}::a::#2"
    assert events[3].result is not None and events[3].result.message == "todo"


def test_only_the_selected_tests_are_reported(tmp_path: Path) -> None:
    # The run asked for the second "same" only; Jest ran all of them, and "Same" too (its name
    # filter ignores case).
    selection = Selection(items=((FILE,),), tests=(TestCase(FILE, "same", 1),))
    (command,) = jest.JestRunner().command(SPEC, selection)
    for name, text in command.files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    stream = JestStream(SPEC, tmp_path)
    _append(
        tmp_path,
        "".join(
            _line(event=kind, name=name, occurrence=k, status="passed")
            for name, k in (("same", 0), ("same", 1), ("same", 2), ("Same", 0))
            for kind in ("start", "end")
        ),
    )
    assert _brief(stream.poll()) == [
        ("start", FILE, "same", 1, None),
        ("end", FILE, "same", 1, "passed"),
    ]


def test_absolute_paths_are_made_relative_and_restarts_noted(tmp_path: Path) -> None:
    spec = RunnerSpec(name="jest", workspace=tmp_path, source="web")
    (tmp_path / "web" / "__tests__").mkdir(parents=True)
    (tmp_path / "web" / FILE).write_text("")
    stream = JestStream(spec, tmp_path)
    outside = f"/app/web/{FILE}"  # where a container mounts the source
    _append(
        tmp_path,
        _line(event="start", name="x", occurrence=0, file=outside)
        + _line(event="restart", file=outside),
    )
    assert _brief(stream.poll()) == [("start", FILE, "x", 0, None)]
    assert stream.restarted == {(1, FILE)}


def test_the_reporter_ships_with_the_package() -> None:
    source = reporter_source()
    assert "onTestCaseStart" in source and "module.exports" in source


def test_parse_record_rejects_what_the_reporter_never_writes() -> None:
    assert parse_record(b'{"event": "start", "at": 1, "file": "f", "name": "n"}') is None
    assert parse_record(b'{"event": "start", "at": "1", "file": "f"}') is None
    assert parse_record(b'{"event": "file", "at": 1e999, "file": "f"}') is None
    assert parse_record(b"[" * 100_000) is None
    record = parse_record(b'{"event": "end", "at": 2, "file": "f", "name": "n", "occurrence": 0}')
    assert record is not None and (record.status, record.duration, record.start) == ("", None, None)


def test_a_start_that_may_be_a_retry_waits_for_its_end(tmp_path: Path) -> None:
    stream = JestStream(SPEC, tmp_path)
    _append(
        tmp_path,
        _line(event="start", name="a", occurrence=0)
        + _line(event="end", name="a", occurrence=0, status="failed")
        + _line(event="start", name="a", occurrence=1, retry_of=0, at=5.0),
    )
    assert _brief(stream.poll()) == [
        ("start", FILE, "a", 0, None),
        ("end", FILE, "a", 0, "failed"),
    ]
    # It was a retry of the first "a" (its second run).
    _append(tmp_path, _line(event="end", name="a", occurrence=0, status="passed", invocation=2))
    events = stream.poll()
    assert _brief(events) == [("start", FILE, "a", 0, None), ("end", FILE, "a", 0, "passed")]
    assert events[0].at == 5.0
    # Another start that may be a retry turns out to be a second test named "a".
    _append(
        tmp_path,
        _line(event="start", name="a", occurrence=1, retry_of=0, at=6.0)
        + _line(event="end", name="a", occurrence=1, status="passed"),
    )
    assert _brief(stream.poll()) == [("start", FILE, "a", 1, None), ("end", FILE, "a", 1, "passed")]


def test_a_test_never_ends_before_it_started(tmp_path: Path) -> None:
    """Jest measures a duration on its own clock; the end it implies may fall a hair before the
    start event. The start event is when the test started, and the end is never before it."""
    report_dir = tmp_path / "reports"
    report_dir.mkdir()
    stream = JestStream(SPEC, report_dir)
    _append(
        report_dir,
        _line(event="start", name="quick", occurrence=0, at=10.0000002)
        + _line(
            event="end",
            name="quick",
            occurrence=0,
            at=10.0,
            status="passed",
            start=9.999,
            duration=0.001,
        ),
    )
    start, end = stream.poll()
    assert start.at == 10.0000002
    assert end.at == start.at and end.result is not None and end.result.start == start.at
