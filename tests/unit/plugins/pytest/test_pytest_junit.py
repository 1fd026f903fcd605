"""Holding passing tests back from pytest's JUnit writer, and reading them from their events."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dagpar_plugins.pytest import PytestRunner
from dagpar_plugins.pytest.files import EVENTS_FILE, REPORT_FILE
from dagpar_plugins.pytest.pytest_junit import Holder

from dagpar_cli import Outcome, RunnerSpec, Status


@dataclass
class Report:
    """The parts of a pytest report the holder looks at."""

    nodeid: str
    when: str
    passed: bool = True


def _holder() -> tuple[Holder, list[tuple[str, str]]]:
    forwarded: list[tuple[str, str]] = []
    return Holder(lambda r: forwarded.append((r.nodeid, r.when))), forwarded


def _passing(holder: Holder, nodeid: str) -> None:
    for when in ("setup", "call", "teardown"):
        holder.report(Report(nodeid, when))


def test_a_test_that_passed_and_was_told_never_reaches_the_writer() -> None:
    holder, forwarded = _holder()
    _passing(holder, "t.py::a")
    holder.settle("t.py::a", told=True)
    assert forwarded == []
    assert holder.held == {}


def test_a_passing_test_whose_end_was_not_told_reaches_the_writer_in_order() -> None:
    holder, forwarded = _holder()
    _passing(holder, "t.py::a")
    assert forwarded == []
    holder.settle("t.py::a", told=False)
    assert forwarded == [("t.py::a", "setup"), ("t.py::a", "call"), ("t.py::a", "teardown")]


def test_a_phase_that_did_not_pass_sends_the_test_at_once() -> None:
    holder, forwarded = _holder()
    holder.report(Report("t.py::a", "setup"))
    holder.report(Report("t.py::a", "call", passed=False))
    assert forwarded == [("t.py::a", "setup"), ("t.py::a", "call")]
    holder.report(Report("t.py::a", "teardown"))
    holder.settle("t.py::a", told=True)
    assert forwarded[-1] == ("t.py::a", "teardown")
    # A setup that did not pass is never held.
    holder.report(Report("t.py::b", "setup", passed=False))
    assert forwarded[-1] == ("t.py::b", "setup")


def test_what_is_still_held_as_the_session_ends_reaches_the_writer() -> None:
    holder, forwarded = _holder()
    holder.report(Report("t.py::a", "setup"))
    holder.report(Report("t.py::b", "setup"))
    # A test told to have passed without its teardown report is not dropped either.
    holder.settle("t.py::b", told=True)
    holder.release_all()
    assert forwarded == [("t.py::b", "setup"), ("t.py::a", "setup")]


def _end(path: str, name: str, status: str = "passed", **more: object) -> str:
    event = {"e": "end", "path": path, "name": name, "at": 2.0, "start": 1.0}
    event.update(status=status, seconds=0.25, message="", **more)
    return json.dumps(event) + "\n"


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="" name="t/broken.py" file="t/broken.py" time="0.0">
<error message="collection failure">E   SyntaxError: bad</error></testcase>
<testcase classname="t.test_a" name="test_fails" file="t/test_a.py" time="0.1">
<properties><property name="dagpar.path" value="t/test_a.py" />
<property name="dagpar.name" value="test_fails" /></properties>
<failure message="assert 0">assert 0</failure></testcase>
</testsuite></testsuites>"""


def test_parse_reads_the_passing_tests_from_their_end_events_in_run_order(
    tmp_path: Path,
) -> None:
    (tmp_path / REPORT_FILE).write_text(JUNIT)
    (tmp_path / EVENTS_FILE).write_text(
        _end("t/test_a.py", "test_first", setup=0.5)
        + _end("t/test_a.py", "test_fails", "failed")
        + _end("t/test_a.py", "test_last")
    )
    spec = RunnerSpec(name="pytest", workspace=tmp_path)
    results = PytestRunner().parse(spec, tmp_path, Outcome(exit_code=1))
    assert [(r.name, r.status) for r in results] == [
        ("<collection error>", Status.ERROR),
        ("test_first", Status.PASSED),
        ("test_fails", Status.FAILED),
        ("test_last", Status.PASSED),
    ]
    first = results[1]
    assert (first.seconds, first.start, first.setup_seconds) == (0.25, 1.0, 0.5)
    assert results[2].details == "assert 0"


def test_parse_without_a_junit_report_still_reads_nothing(tmp_path: Path) -> None:
    # pytest died before writing its report: the stream, not parse, knows what ended.
    (tmp_path / EVENTS_FILE).write_text(_end("t/test_a.py", "test_first"))
    spec = RunnerSpec(name="pytest", workspace=tmp_path)
    assert PytestRunner().parse(spec, tmp_path, Outcome(exit_code=-9)) == []
