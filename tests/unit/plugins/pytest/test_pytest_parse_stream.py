"""A slice's report reading takes the passing tests from the stream that already read them.

The selection plugin leaves passing tests out of the JUnit report; their end events hold them.
The slice's stream decodes every event while pytest runs, so ``PytestRunner.parse`` takes the
stream's results (and reads the rest of the file through it) instead of decoding the whole
file a second time, and reads the file itself where no stream read it whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagpar_plugins.pytest.report as report
import pytest
from dagpar_plugins.pytest import PytestRunner
from dagpar_plugins.pytest.files import EVENTS_FILE, REPORT_FILE

from dagpar_cli import Outcome, RunnerSpec, Status, TestResult, untrusted

SPEC = RunnerSpec(name="pytest", workspace=Path("/nowhere"), command=("pytest",))
FAILED = (
    '<testsuites><testsuite><testcase name="test_f"><properties>'
    '<property name="dagpar.path" value="t.py"/><property name="dagpar.name" value="test_f"/>'
    '</properties><failure message="assert 0">E assert 0</failure></testcase>'
    "</testsuite></testsuites>"
)


def _lines(name: str, at: float, status: str = "passed") -> bytes:
    named = f'"path": "t.py", "name": {json.dumps(name)}'
    return (
        f'{{"e": "start", {named}, "at": {at!r}}}\n'
        f'{{"e": "end", {named}, "at": {at + 0.5!r}, "start": {at!r}, "status": "{status}", '
        f'"seconds": 0.5, "message": ""}}\n'
    ).encode()


@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    (tmp_path / REPORT_FILE).write_text(FAILED)
    (tmp_path / EVENTS_FILE).write_bytes(
        _lines("test_a", 1.0) + _lines("test_f", 2.0, "failed") + _lines("test_b", 3.0)
    )
    return tmp_path


def _from_file(report_dir: Path) -> list[TestResult]:
    """What ``parse`` gives where no stream read the events: the file read afresh."""
    return PytestRunner().parse(SPEC, report_dir, Outcome(exit_code=1))


def _file_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    def read_again(report_dir: Path) -> list[TestResult]:
        raise AssertionError("the event file was read again")

    monkeypatch.setattr(report, "_ended", read_again)


def test_parse_takes_the_passes_from_the_stream_that_read_them(
    report_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _from_file(report_dir)
    assert [(r.name, r.status) for r in expected] == [
        ("test_a", Status.PASSED),
        ("test_f", Status.FAILED),
        ("test_b", Status.PASSED),
    ]
    runner = PytestRunner()
    stream = runner.stream(SPEC, report_dir)
    assert stream is not None
    ended = [e.result for e in stream.poll() if e.result is not None]
    _file_not_read(monkeypatch)
    results = runner.parse(SPEC, report_dir, Outcome(exit_code=1))
    assert results == expected
    # The very results the stream decoded, not copies decoded again.
    assert results[0] is ended[0] and results[2] is ended[2]


def test_parse_reads_through_the_stream_what_was_written_after_its_last_poll(
    report_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = PytestRunner()
    stream = runner.stream(SPEC, report_dir)
    assert stream is not None
    stream.poll()
    with (report_dir / EVENTS_FILE).open("ab") as f:
        f.write(_lines("test_c", 4.0) + b'{"e": "end", "path": "t.py", "na')  # half a line
    expected = _from_file(report_dir)
    assert [r.name for r in expected] == ["test_a", "test_f", "test_b", "test_c"]
    _file_not_read(monkeypatch)
    assert runner.parse(SPEC, report_dir, Outcome(exit_code=1)) == expected


def test_parse_reads_the_file_where_no_stream_or_a_failed_one_read_it(
    report_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _from_file(report_dir)
    runner = PytestRunner()
    # A stream parsed once is forgotten: parsing again reads the file.
    runner.stream(SPEC, report_dir)
    assert runner.parse(SPEC, report_dir, Outcome(exit_code=1)) == expected
    assert runner.parse(SPEC, report_dir, Outcome(exit_code=1)) == expected
    # A stream whose read failed (the slice dropped it) may have lost lines.
    stream = runner.stream(SPEC, report_dir)
    assert stream is not None
    monkeypatch.setattr(untrusted.LineTail, "lines", _raise)
    with pytest.raises(RuntimeError):
        stream.poll()
    monkeypatch.undo()
    assert runner.parse(SPEC, report_dir, Outcome(exit_code=1)) == expected


def test_parse_reads_only_the_file_now_under_the_name(report_dir: Path) -> None:
    runner = PytestRunner()
    stream = runner.stream(SPEC, report_dir)
    assert stream is not None
    stream.poll()
    # The run wrote the events again, to a new file (a command run twice).
    events = report_dir / EVENTS_FILE
    events.unlink()
    events.write_bytes(_lines("test_b", 3.0) + _lines("test_f", 4.0, "failed"))
    expected = _from_file(report_dir)
    assert [r.name for r in expected] == ["test_b", "test_f"]
    assert runner.parse(SPEC, report_dir, Outcome(exit_code=1)) == expected


def test_a_report_dir_without_a_report_parses_to_nothing_with_a_stream_too(
    tmp_path: Path,
) -> None:
    (tmp_path / EVENTS_FILE).write_bytes(_lines("test_a", 1.0))
    runner = PytestRunner()
    stream = runner.stream(SPEC, tmp_path)
    assert stream is not None and stream.poll()
    assert runner.parse(SPEC, tmp_path, Outcome(exit_code=1)) == []


def _raise(self: object) -> list[bytes]:
    raise RuntimeError("a plugin's bug")


def test_a_test_that_ended_twice_stays_where_it_first_ended(tmp_path: Path) -> None:
    (tmp_path / REPORT_FILE).write_text("<testsuites><testsuite/></testsuites>")
    (tmp_path / EVENTS_FILE).write_bytes(
        _lines("test_x", 1.0, "failed") + _lines("test_y", 2.0) + _lines("test_x", 3.0)
    )
    results = _from_file(tmp_path)
    assert [(r.name, r.status) for r in results] == [
        ("test_x", Status.PASSED),
        ("test_y", Status.PASSED),
    ]
