"""A slice's JUnit report holds only what did not pass; dagpar's results stay the same.

pytest's JUnit writer is a large part of what a slice of many tiny tests costs over plain pytest.
The selection plugin keeps passing tests out of it (their end events hold everything dagpar
reads), unless the report would hold their captured output (``junit_logging``).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import dagpar_plugins.pytest as plugin
import dagpar_plugins.pytest.report as report
import pytest
from dagpar_plugins.pytest.files import REPORT_FILE

from dagpar_cli import RunnerSpec, Selection, Status, TestResult
from dagpar_cli.testing import run_runner_commands

PROJECT = Path(__file__).resolve().parents[1] / "data" / "projects" / "pytest-hostile"
RUNNER = plugin.PytestRunner()
FILES = ("check_classes.py", "check_names.py", "check_broken.py", "sub dir/check_sub.py")


def _run(
    report_dir: Path, *args: str, workspace: Path = PROJECT, source: str = "suite"
) -> tuple[list[TestResult], list[ET.Element]]:
    spec = RunnerSpec(
        name="pytest",
        workspace=workspace,
        source=source,
        command=(sys.executable, "-m", "pytest", *args),
    )
    files = FILES if source == "suite" else ("test_p.py",)
    commands = RUNNER.command(spec=spec, selection=Selection(items=tuple((f,) for f in files)))
    run = run_runner_commands(commands, spec, report_dir)
    results = RUNNER.parse(spec=spec, report_dir=report_dir, outcome=run.combined)
    cases = list(ET.parse(report_dir / REPORT_FILE).getroot().iter("testcase"))
    return results, cases


def _seen(results: list[TestResult]) -> list[tuple[str, Status, str, str, str]]:
    """What a reporter shows of each result, in order (seconds and start vary run to run)."""
    return [(r.id, r.status, r.message, r.details, r.stdout) for r in results]


def test_the_report_holds_only_what_did_not_pass_and_the_results_stay_the_same(
    tmp_path: Path,
) -> None:
    held, cases = _run(tmp_path / "held")
    # junit_logging puts captured output in the report: every test stays in it, as before.
    whole, whole_cases = _run(tmp_path / "whole", "-o", "junit_logging=system-err")
    assert len(whole_cases) == len(whole) + 1  # one test is reported twice (teardown error)
    assert any(r.status is Status.PASSED for r in held)
    # Only the tests that did not pass, and the collection error, are in the report.
    assert len(cases) == sum(r.status is not Status.PASSED for r in held) + 1
    assert all(len(case) > 1 or case.find("properties") is None for case in cases)
    # dagpar reads the same results, in the order the tests ran.
    assert _seen(held) == _seen(whole)
    assert [r.setup_seconds > 0 for r in held] == [r.setup_seconds > 0 for r in whole]
    assert sum(r.setup_seconds > 0 for r in held) == len(FILES) - 1  # one file is broken
    passed = [r for r in held if r.status is Status.PASSED]
    assert all(r.start is not None and r.seconds > 0 for r in passed)


def test_a_passing_test_s_output_stays_in_the_report_under_junit_logging(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_p.py").write_text(
        "def test_says():\n    print('hello from the test')\n\n\ndef test_fails():\n    assert 0\n"
    )
    results, cases = _run(
        tmp_path / "r", "-o", "junit_logging=system-out", workspace=project, source=""
    )
    by_name = {r.name: r for r in results}
    assert "hello from the test" in by_name["test_says"].stdout
    assert len(cases) == 2
    results, cases = _run(tmp_path / "r2", workspace=project, source="")
    assert [c.get("name") for c in cases] == ["test_fails"]
    assert {r.name: r.status for r in results} == {
        "test_says": Status.PASSED,
        "test_fails": Status.FAILED,
    }


def test_the_passes_come_from_the_slice_s_stream_and_match_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = RunnerSpec(
        name="pytest", workspace=PROJECT, source="suite", command=(sys.executable, "-m", "pytest")
    )
    runner = plugin.PytestRunner()  # the slice's runner: it opens the stream
    report_dir = tmp_path / "r"
    stream = runner.stream(spec, report_dir)
    assert stream is not None
    commands = runner.command(spec, Selection(items=tuple((f,) for f in FILES)))
    run = run_runner_commands(commands, spec, report_dir)
    events = stream.poll()  # the slice's last poll, once pytest is done
    assert any(e.kind == "end" and e.result.status is Status.PASSED for e in events if e.result)

    def read_again(report_dir: Path) -> list[TestResult]:
        raise AssertionError("the event file was decoded twice")

    monkeypatch.setattr(report, "_ended", read_again)
    from_stream = runner.parse(spec, report_dir, run.combined)
    monkeypatch.undo()
    from_file = RUNNER.parse(spec, report_dir, run.combined)  # no stream of its own: the file
    assert from_stream == from_file
    assert len({r.id for r in from_stream}) == len(from_stream)
    assert any(r.status is Status.PASSED for r in from_stream)
