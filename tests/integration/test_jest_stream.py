"""The Jest runner's per-test stream, read from real Jest while and after it runs.

Each test builds a small Jest project (its ``node_modules`` a link to the suite's Jest install),
compiles a slice with the plugin, runs the commands as the engine does, and reads the stream with
:meth:`JestRunner.stream`: what ``poll()`` returns is what the engine would see.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from dagpar_plugins import jest
from projects import JEST_DEPS  # type: ignore[import-not-found]

from dagpar_cli import RunnerSpec, Selection, Status, TestCase, TestEvent
from dagpar_cli.testing import LocalRunnerHost, run_runner_commands

pytestmark = [pytest.mark.node, pytest.mark.slow]

RUNNER = jest.JestRunner()

EXITS = """\
test("first", () => {});
test("second", () => { process.exit(3); });
test("third", () => {});
"""

SAME = """\
for (let i = 0; i < 3; i++) {
  test("same name", () => { expect(i).toBeLessThan(2); });
}
test("other", () => {});
"""


def _project(root: Path, files: dict[str, str]) -> RunnerSpec:
    web = root / "web"
    for name, text in files.items():
        (web / "__tests__").mkdir(parents=True, exist_ok=True)
        (web / "__tests__" / name).write_text(text, encoding="utf-8")
    (web / "package.json").write_text('{"name": "p", "private": true}', encoding="utf-8")
    (web / "node_modules").symlink_to(JEST_DEPS / "node_modules")
    return RunnerSpec(name="jest", workspace=root, source="web")


def _run(spec: RunnerSpec, selection: Selection, report_dir: Path) -> None:
    report_dir.mkdir()
    commands = RUNNER.command(spec, selection)
    run_runner_commands(commands, spec, report_dir, timeout=300, check=False)


def _brief(events: list[TestEvent]) -> list[tuple[str, str, int, str | None]]:
    return [
        (e.kind, e.test.name, e.test.occurrence, e.result.status.value if e.result else None)
        for e in events
    ]


def test_process_exit_leaves_the_running_test_open(tmp_path: Path) -> None:
    spec = _project(tmp_path, {"exits.test.js": EXITS})
    report_dir = tmp_path / "reports"
    stream = RUNNER.stream(spec, report_dir)
    assert stream.poll() == []  # nothing written yet, no directory even
    _run(spec, Selection(items=(("__tests__/exits.test.js",),)), report_dir)
    events = stream.poll()
    assert _brief(events) == [
        ("start", "first", 0, None),
        ("end", "first", 0, "passed"),
        ("start", "second", 0, None),
    ]
    assert {e.test.path for e in events} == {"__tests__/exits.test.js"}
    first_start, first_end, second_start = (e.at for e in events)
    assert first_start <= first_end <= second_start
    assert events[1].result is not None and events[1].result.start == first_start
    assert stream.poll() == []
    # Jest wrote no --json report: the stream is all there is.
    assert not (report_dir / "jest-1.json").exists()


def test_a_worker_that_exits_leaves_its_test_open_and_others_run(tmp_path: Path) -> None:
    # Two files and two workers: Jest runs each file in a worker; the one whose test exits is
    # retried by jest-worker, which the stream must not count as more tests.
    spec = _project(tmp_path, {"exits.test.js": EXITS, "same.test.js": SAME})
    spec = RunnerSpec(
        name="jest", workspace=spec.workspace, source=spec.source, args=("--maxWorkers=2",)
    )
    report_dir = tmp_path / "reports"
    stream = RUNNER.stream(spec, report_dir)
    items = (("__tests__/exits.test.js",), ("__tests__/same.test.js",))
    _run(spec, Selection(items=items), report_dir)
    events = stream.poll()
    exits = [e for e in events if e.test.path == "__tests__/exits.test.js"]
    assert _brief(exits) == [
        ("start", "first", 0, None),
        ("end", "first", 0, "passed"),
        ("start", "second", 0, None),
    ]
    assert stream.restarted == {(1, "__tests__/exits.test.js")}
    same = [e for e in events if e.test.path == "__tests__/same.test.js"]
    assert _brief(same) == [
        ("start", "same name", 0, None),
        ("end", "same name", 0, "passed"),
        ("start", "same name", 1, None),
        ("end", "same name", 1, "passed"),
        ("start", "same name", 2, None),
        ("end", "same name", 2, "failed"),
        ("start", "other", 0, None),
        ("end", "other", 0, "passed"),
    ]


def test_same_named_tests_stream_as_separate_tests_while_jest_runs(tmp_path: Path) -> None:
    slow = SAME.replace("() => { expect", "async () => { await new Promise((r) => r()); expect")
    gate = tmp_path / "gate"
    slow += f"""
test("waits", async () => {{
  const fs = require("fs");
  while (!fs.existsSync({str(gate)!r})) await new Promise((r) => setTimeout(r, 20));
}});
"""
    spec = _project(tmp_path, {"same.test.js": slow})
    report_dir = tmp_path / "reports"
    stream = RUNNER.stream(spec, report_dir)
    runner = threading.Thread(
        target=_run, args=(spec, Selection(items=(("__tests__/same.test.js",),)), report_dir)
    )
    runner.start()
    try:
        # While Jest waits in the last test, the stream already has everything before it.
        seen: list[TestEvent] = []
        while not any(e.kind == "start" and e.test.name == "waits" for e in seen):
            assert runner.is_alive(), "Jest ended before the gate opened"
            seen += stream.poll()
            threading.Event().wait(0.05)
        assert RUNNER.progress(spec, report_dir) == 4
    finally:
        gate.write_text("open")
        runner.join(timeout=300)
    seen += stream.poll()
    ends = [(e.test.id, e.result.status) for e in seen if e.kind == "end" and e.result]
    path = "__tests__/same.test.js"
    assert ends == [
        (f"{path}::same name", Status.PASSED),
        (f"{path}::same name::#2", Status.PASSED),
        (f"{path}::same name::#3", Status.FAILED),
        (f"{path}::other", Status.PASSED),
        (f"{path}::waits", Status.PASSED),
    ]
    failed = next(e.result for e in seen if e.result and e.result.status is Status.FAILED)
    assert failed.message.startswith("Error: expect(received).toBeLessThan(expected)")
    assert all(e.result.start is not None for e in seen if e.result)
    # The stream agrees with Jest's own report, test by test.
    parsed = RUNNER.parse(spec, report_dir, LocalRunnerHost(spec.source_dir).run(["true"]))
    assert [(r.id, r.status) for r in parsed] == ends


def test_the_stream_reports_only_the_selected_tests(tmp_path: Path) -> None:
    spec = _project(tmp_path, {"same.test.js": SAME})
    report_dir = tmp_path / "reports"
    stream = RUNNER.stream(spec, report_dir)
    path = "__tests__/same.test.js"
    # Only the second "same name": Jest runs all three, the stream reports the second.
    _run(spec, Selection(items=((path,),), tests=(TestCase(path, "same name", 1),)), report_dir)
    assert _brief(stream.poll()) == [
        ("start", "same name", 1, None),
        ("end", "same name", 1, "passed"),
    ]


RETRIES = """\
jest.retryTimes(2);
let n = 0;
test("flaky", () => { n += 1; expect(n).toBeGreaterThan(2); });
test("after", () => {});
for (let i = 0; i < 3; i++) test("same", () => { expect(i).not.toBe(1); });
"""


def test_a_retry_is_the_same_test_and_a_later_namesake_a_new_one(tmp_path: Path) -> None:
    # jest.retryTimes reruns "flaky" (passing on its third run) and the second "same" (failing
    # every time) after the other tests; the third "same", which follows a failed "same", is a
    # test of its own.
    spec = _project(tmp_path, {"retries.test.js": RETRIES})
    report_dir = tmp_path / "reports"
    stream = RUNNER.stream(spec, report_dir)
    _run(spec, Selection(items=(("__tests__/retries.test.js",),)), report_dir)
    events = stream.poll()
    assert _brief(events) == [
        ("start", "flaky", 0, None),
        ("end", "flaky", 0, "failed"),
        ("start", "after", 0, None),
        ("end", "after", 0, "passed"),
        ("start", "same", 0, None),
        ("end", "same", 0, "passed"),
        ("start", "same", 1, None),
        ("end", "same", 1, "failed"),
        ("start", "same", 2, None),
        ("end", "same", 2, "passed"),
        ("start", "flaky", 0, None),
        ("end", "flaky", 0, "failed"),
        ("start", "flaky", 0, None),
        ("end", "flaky", 0, "passed"),
        ("start", "same", 1, None),
        ("end", "same", 1, "failed"),
        ("start", "same", 1, None),
        ("end", "same", 1, "failed"),
    ]
    # Each test's last end is Jest's verdict, and each test counts once in the progress.
    last = {e.test.id: e.result.status for e in events if e.result is not None}
    parsed = RUNNER.parse(spec, report_dir, LocalRunnerHost(spec.source_dir).run(["true"]))
    assert last == {r.id: r.status for r in parsed}
    assert RUNNER.progress(spec, report_dir) == 5


def test_jest_knows_the_reporter_hooks_the_stream_relies_on() -> None:
    # onTestCaseStart is what names the running test; Jest has it from 29.6 on.
    out = subprocess.run(
        ["node", "-e", "console.log(require('jest/package.json').version)"],
        cwd=JEST_DEPS,
        capture_output=True,
        text=True,
        check=True,
    )
    major, minor = (int(p) for p in out.stdout.strip().split(".")[:2])
    assert (major, minor) >= (29, 6)
