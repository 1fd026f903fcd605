"""The Go runner's per-test stream on real ``go test -json`` runs.

``tests/data/projects/go-exit``: in package ``exits`` the second of four tests calls
``os.Exit(3)``; in ``exitzero`` the second of three calls ``os.Exit(0)``; in ``waits`` the
second of two waits for a file to appear.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from dagpar_plugins.go import GoRunner

from dagpar_cli import REPORT_DIR_PLACEHOLDER, RunnerSpec, Selection, Status, TestCase, TestEvent
from dagpar_cli.execution.api import ExecRequest, OutputFile, SessionSpec
from dagpar_cli.execution.local import LocalExecutor
from dagpar_cli.execution.output import KEEP_OUTPUT
from dagpar_cli.testing import DagparResult

pytestmark = pytest.mark.go

PROJECT = Path(__file__).resolve().parents[1] / "data" / "projects" / "go-exit"
RUNNER = GoRunner()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return Path(shutil.copytree(PROJECT, tmp_path / "ws"))


def run_slice(
    workspace: Path, selection: Selection, report_dir: Path
) -> tuple[list[TestEvent], list[int]]:
    """Run *selection*'s commands as dagpar does (standard output live into the report
    directory), polling the stream while they run and once after; the events and exit codes."""
    spec = RunnerSpec(name="go", workspace=workspace)
    report_dir.mkdir()
    stream = RUNNER.stream(spec, report_dir)
    assert stream is not None
    assert stream.poll() == []  # nothing written yet: no error either
    events: list[TestEvent] = []
    codes: list[int] = []
    executor = LocalExecutor()
    with executor.open(SessionSpec(label="go#1")) as session:
        for command in RUNNER.command(spec, selection):
            for name, content in command.files.items():
                (report_dir / name).write_text(content.replace(REPORT_DIR_PLACEHOLDER, ""))
            assert command.stdout_file is not None
            outcome = session.run(
                ExecRequest(
                    argv=[a.replace(REPORT_DIR_PLACEHOLDER, str(report_dir)) for a in command.argv],
                    cwd=str(workspace),
                    env={**command.env, "GOFLAGS": os.environ.get("GOFLAGS", "")},
                    timeout=300,
                    keep_output=KEEP_OUTPUT,
                    stdout_file=OutputFile(report_dir, command.stdout_file),
                )
            )
            codes.append(outcome.exit_code)
            events.extend(stream.poll())
    executor.close()
    events.extend(stream.poll())
    return events, codes


def starts(events: list[TestEvent]) -> list[str]:
    return [e.test.name for e in events if e.kind == "start"]


def ends(events: list[TestEvent]) -> dict[str, Status]:
    return {e.test.name: e.result.status for e in events if e.kind == "end" and e.result}


def test_a_test_that_exits_is_left_open_and_the_later_tests_unstarted(
    workspace: Path, tmp_path: Path
) -> None:
    events, codes = run_slice(workspace, Selection(items=(("exits",),)), tmp_path / "report")
    assert codes == [1]
    assert starts(events) == ["TestFirst", "TestExits"]
    assert ends(events) == {"TestFirst": Status.PASSED}
    first_start, first_end = (e for e in events if e.test.name == "TestFirst")
    assert {e.test.path for e in events} == {"exits"}
    assert first_end.result is not None and first_end.result.start == first_start.at
    assert first_start.at <= first_end.at
    exits_start = next(e for e in events if e.test.name == "TestExits")
    assert exits_start.at >= first_end.at


def test_a_selection_of_the_third_and_fourth_tests_runs_exactly_those(
    workspace: Path, tmp_path: Path
) -> None:
    tests = (TestCase("exits", "TestThird"), TestCase("exits", "TestFourth"))
    selection = Selection(items=(("exits",),), tests=tests)
    spec = RunnerSpec(name="go", workspace=workspace)
    (command,) = RUNNER.command(spec, selection)
    run = command.argv[command.argv.index("-run") + 1]
    assert run == "^(TestFourth|TestThird)$"
    events, codes = run_slice(workspace, selection, tmp_path / "report")
    assert codes == [0]
    assert sorted(starts(events)) == ["TestFourth", "TestThird"]
    assert ends(events) == {"TestThird": Status.PASSED, "TestFourth": Status.PASSED}
    results = RUNNER.parse(spec, tmp_path / "report", _outcome())
    assert sorted((r.name, r.status) for r in results) == [
        ("TestFourth", Status.PASSED),
        ("TestThird", Status.PASSED),
    ]


def test_os_exit_zero_fails_its_test_and_leaves_the_later_ones_unstarted(
    workspace: Path, tmp_path: Path
) -> None:
    events, codes = run_slice(workspace, Selection(items=(("exitzero",),)), tmp_path / "report")
    assert codes == [1]
    assert starts(events) == ["TestBefore", "TestExitsZero"]
    assert ends(events) == {"TestBefore": Status.PASSED, "TestExitsZero": Status.FAILED}
    failed = next(e.result for e in events if e.kind == "end" and e.test.name == "TestExitsZero")
    assert failed is not None
    assert "unexpected call to os.Exit(0) during test" in failed.message


def test_a_package_that_does_not_build_ends_every_selected_test_as_an_error(
    workspace: Path, tmp_path: Path
) -> None:
    path = workspace / "exits" / "exits_test.go"
    path.write_text(path.read_text() + "\nfunc broken() { undefined() }\n")
    tests = (TestCase("exits", "TestFirst"), TestCase("exits", "TestThird"))
    events, _ = run_slice(workspace, Selection(items=(), tests=tests), tmp_path / "report")
    assert sorted(starts(events)) == ["TestFirst", "TestThird"]
    assert ends(events) == {"TestFirst": Status.ERROR, "TestThird": Status.ERROR}
    messages = {e.result.message for e in events if e.result is not None}
    assert all(m.startswith("build failed") for m in messages), messages


def test_a_test_that_ended_is_seen_while_go_test_still_runs(
    workspace: Path, tmp_path: Path
) -> None:
    spec = RunnerSpec(name="go", workspace=workspace)
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    go_on = tmp_path / "go-on"
    (command,) = RUNNER.command(spec, Selection(items=(("waits",),)))
    for name, content in command.files.items():
        (report_dir / name).write_text(content)
    stream = RUNNER.stream(spec, report_dir)
    assert stream is not None and command.stdout_file is not None
    request = ExecRequest(
        argv=[a.replace(REPORT_DIR_PLACEHOLDER, str(report_dir)) for a in command.argv],
        cwd=str(workspace),
        env={**command.env, "DAGPAR_TEST_GO_ON": str(go_on)},
        timeout=600,
        stdout_file=OutputFile(report_dir, command.stdout_file),
    )
    executor = LocalExecutor()
    events: list[TestEvent] = []
    outcomes: list[object] = []
    with executor.open(SessionSpec(label="go#1")) as session:
        worker = threading.Thread(target=lambda: outcomes.append(session.run(request)))
        worker.start()
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and starts(events) != ["TestDone", "TestWaits"]:
                events.extend(stream.poll())
                time.sleep(0.05)
            assert worker.is_alive()
            assert starts(events) == ["TestDone", "TestWaits"]
            assert ends(events) == {"TestDone": Status.PASSED}
        finally:
            go_on.touch()
            worker.join(300)
    executor.close()
    events.extend(stream.poll())
    assert ends(events) == {"TestDone": Status.PASSED, "TestWaits": Status.PASSED}


def _outcome() -> object:
    from dagpar_cli import Outcome

    return Outcome(exit_code=0)


def test_dagpar_check_runs_the_tests_after_one_that_exits(
    workspace: Path, dagpar_run: Callable[..., DagparResult]
) -> None:
    shutil.rmtree(workspace / "exitzero")
    shutil.rmtree(workspace / "waits")
    result = dagpar_run("check", "-C", workspace, "--json")
    statuses = {t["id"]: t["status"] for c in result.json()["checks"] for t in c["tests"]}
    assert statuses == {
        "exits::TestFirst": "passed",
        "exits::TestExits": "error",
        "exits::TestThird": "passed",
        "exits::TestFourth": "passed",
    }, json.dumps(result.json(), indent=1)
    assert result.exit_code in (1, 4), result
