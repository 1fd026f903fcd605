"""Handing a running pytest slice's unstarted tests to another slice, against real pytest.

Each test starts the slice's command exactly as dagpar compiles it, in its own report directory,
and takes tests with ``PytestRunner.hand_over_tail`` from this process while pytest runs. Tests of
the fixture project wait on files, so what pytest has reached is known without timing anything:

- ``$REACHED`` appears when the first test starts, which then waits for ``$GATE``;
- every test appends its node id to ``$RUN_LOG`` as it starts, i.e. what pytest really ran.

Whatever pytest reports plus whatever was taken must be every test, each exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagpar_plugins.pytest as plugin
import pytest
from dagpar_plugins.pytest.files import ORDER_FILE, RUN_INFO_FILE

from dagpar_cli import (
    REPORT_DIR_PLACEHOLDER,
    Outcome,
    RunnerSpec,
    Selection,
    Status,
    TailChooser,
    TestCase,
    TestResult,
)
from dagpar_cli.testing import LocalRunnerHost, TailRecorder

PYTEST = (sys.executable, "-m", "pytest")
# The machine's third-party pytest plugins only slow the runs down (xdist is loaded by name).
FAST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
RUNNER = plugin.PytestRunner()
#: How long a test waits for a signal before it gives up (only reached when something broke).
PATIENCE = 60.0

CONFTEST = f"""\
import os
import time

import pytest


def wait_for(path):
    deadline = time.monotonic() + {PATIENCE}
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.002)


@pytest.fixture(autouse=True)
def _log(request):
    with open(os.environ["RUN_LOG"], "a", encoding="utf-8") as stream:
        stream.write(request.node.nodeid + "\\n")
    yield
"""

GATED = """\
import os

import pytest

from conftest import wait_for


def test_gate():
    open(os.environ["REACHED"], "w").close()
    wait_for(os.environ["GATE"])
"""

QUICK = """

@pytest.mark.parametrize("n", range({count}))
def test_n(n):
    pass
"""


def gated_project(root: Path, count: int, extra: str = "") -> RunnerSpec:
    """A workspace whose ``api`` toolchain has a gate test then *count* quick tests.

    ``pytest.ini`` sits at the workspace root, above the source: pytest's node ids are not
    source-relative, the tests dagpar sees must be.
    """
    (root / "api" / "tests").mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (root / "api" / "tests" / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    quick = QUICK.format(count=count) if count else ""
    (root / "api" / "tests" / "test_gated.py").write_text(GATED + quick + extra, encoding="utf-8")
    return RunnerSpec(name="pytest", workspace=root, source="api", command=PYTEST)


def wait_for(path: Path, proc: subprocess.Popen[str] | None = None) -> None:
    """Wait until *path* exists (failing early if *proc* ends first)."""
    deadline = time.monotonic() + PATIENCE
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"pytest ended before {path.name} appeared:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.002)


@dataclass
class Ran:
    """What one slice did."""

    results: list[TestResult]
    executed: list[str]  # node ids, as the fixture project logged them (rootdir-relative)
    progress: int | None
    stdout: str
    exit_code: int

    @property
    def tests(self) -> list[TestCase]:
        return [TestCase(r.path, r.name) for r in self.results]


@dataclass
class Slice:
    """One slice's pytest, started in the background as an executor would start it."""

    spec: RunnerSpec
    report_dir: Path
    proc: subprocess.Popen[str]
    log: Path
    gate: Path
    reached: Path

    @classmethod
    def start(
        cls,
        spec: RunnerSpec,
        selection: Selection,
        report_dir: Path,
        *,
        signals: Path,
        fast: bool = True,
    ) -> Slice:
        report_dir.mkdir(parents=True)
        commands = RUNNER.command(spec=spec, selection=selection)
        assert commands is not None and len(commands) == 1
        (command,) = commands

        def sub(value: str) -> str:
            return value.replace(REPORT_DIR_PLACEHOLDER, str(report_dir))

        for name, content in command.files.items():
            (report_dir / name).write_text(sub(content), encoding="utf-8")
        signals.mkdir(exist_ok=True)
        log, gate, reached = signals / "ran.log", signals / "gate", signals / "reached"
        env = {**os.environ, **{k: sub(v) for k, v in command.env.items()}}
        env.update(RUN_LOG=str(log), GATE=str(gate), REACHED=str(reached))
        if fast:
            env.update(FAST)
        proc = subprocess.Popen(
            [sub(a) for a in command.argv],
            cwd=spec.source_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return cls(spec, report_dir, proc, log, gate, reached)

    def hand_over(self, choose: TailChooser) -> list[TestCase] | None:
        return RUNNER.hand_over_tail(spec=self.spec, report_dir=self.report_dir, choose=choose)

    def open_gate(self) -> None:
        self.gate.touch()

    def wait(self) -> Ran:
        try:
            stdout, stderr = self.proc.communicate(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise
        assert self.proc.returncode in (0, 1), stdout[-3000:] + stderr
        outcome = Outcome(exit_code=self.proc.returncode, stdout=stdout, stderr=stderr)
        results = RUNNER.parse(spec=self.spec, report_dir=self.report_dir, outcome=outcome)
        assert results is not None
        executed = self.log.read_text(encoding="utf-8").splitlines() if self.log.exists() else []
        progress = RUNNER.progress(spec=self.spec, report_dir=self.report_dir)
        return Ran(results, executed, progress, stdout, self.proc.returncode)

    def order(self) -> list[TestCase]:
        data = json.loads((self.report_dir / ORDER_FILE).read_text(encoding="utf-8"))
        return [TestCase(path, name) for path, name in data]


def everything(spec: RunnerSpec) -> list[TestCase]:
    """The toolchain's tests as dagpar lists them."""
    listed = RUNNER.collect(
        spec=spec, host=LocalRunnerHost(spec.source_dir, {**FAST, "RUN_LOG": os.devnull})
    )
    assert listed is not None
    return listed


def start_and_reach_the_gate(
    spec: RunnerSpec, tmp_path: Path, selection: Selection | None = None, **kwargs: bool
) -> Slice:
    """Start a slice of the whole source and wait until its first test waits on the gate."""
    running = Slice.start(
        spec,
        selection or Selection(items=(("tests",),)),
        tmp_path / "report",
        signals=tmp_path / "signals",
        **kwargs,
    )
    wait_for(running.reached, running.proc)
    return running


def nodeid(test: TestCase) -> str:
    """The node id pytest logs for a test of the ``api`` source (rootdir is the workspace)."""
    return f"api/{test.path}::{test.name}"


def test_a_taken_tail_is_run_by_the_next_slice_and_nowhere_else(tmp_path: Path) -> None:
    spec = gated_project(tmp_path / "ws", 10)
    listed = everything(spec)
    running = start_and_reach_the_gate(spec, tmp_path)
    choose = TailRecorder(take=4)
    taken = running.hand_over(choose)
    running.open_gate()
    ran = running.wait()

    order = running.order()
    assert order == listed  # named and ordered exactly as dagpar listed them
    assert choose.calls == [(order[1:], 1)]  # the gate test had started, nothing else had
    assert taken == order[-4:]
    assert ran.tests == order[:-4]  # the JUnit report holds exactly the tests not taken
    assert ran.executed == [nodeid(t) for t in order[:-4]]
    assert ran.progress == len(order) - 4
    assert all(r.status is Status.PASSED for r in ran.results)
    assert ran.exit_code == 0
    assert "dagpar: 4 tests handed over to another slice" in ran.stdout

    # The next slice names the taken tests one by one, as the engine's new slice does.
    successor = Slice.start(
        spec,
        Selection(items=(), tests=tuple(taken)),
        tmp_path / "report2",
        signals=tmp_path / "signals",
    )
    second = successor.wait()
    assert second.tests == taken
    assert second.progress == 4
    # The run log is shared: every listed test ran exactly once over both slices.
    assert second.executed == [nodeid(t) for t in listed]


def test_the_running_test_is_named_with_the_seconds_it_has_run(tmp_path: Path) -> None:
    spec = gated_project(tmp_path / "ws", 3)
    running = start_and_reach_the_gate(spec, tmp_path)
    time.sleep(0.5)
    choose = TailRecorder(take=0)
    assert running.hand_over(choose) == []
    running.open_gate()
    ran = running.wait()
    order = running.order()
    (now,) = choose.running
    assert now is not None
    test, seconds = now
    # The gate test started before the wait above and was still running when dagpar asked.
    assert test == order[0]
    assert 0.5 <= seconds < PATIENCE
    assert ran.tests == order
    # Once it has ended, nothing is running: the slice is between tests or done.
    later = TailRecorder(take=0)
    assert running.hand_over(later) == []
    assert later.running in ([], [None])


def test_hand_overs_racing_the_runner_lose_and_repeat_nothing(tmp_path: Path) -> None:
    spec = gated_project(tmp_path / "ws", 200)
    running = start_and_reach_the_gate(spec, tmp_path)
    answers: list[list[TestCase] | None] = []
    offers: list[int] = []

    def take_one(
        pending: Sequence[TestCase], started: int, running: tuple[TestCase, float] | None = None
    ) -> int:
        offers.append(started)
        return 1

    def thief() -> None:
        try:
            while running.proc.poll() is None:
                answer = running.hand_over(take_one)
                answers.append(answer)
                if answer:
                    running.open_gate()  # pytest runs on from the front, tests go from the back
        finally:
            running.open_gate()

    thread = threading.Thread(target=thief)
    thread.start()
    try:
        ran = running.wait()
    finally:
        thread.join()

    assert None not in answers
    takes = [answer for answer in answers if answer]
    taken = [test for take in takes for test in take]
    assert takes and len(takes) == len(taken)  # one at a time, as asked
    order = running.order()
    reported = ran.tests
    assert set(reported).isdisjoint(taken)
    assert sorted(reported + taken, key=order.index) == order
    # Each take was the last test pytest had not started: together, a tail in reverse.
    assert taken[::-1] == order[len(order) - len(taken) :]
    assert ran.executed == [nodeid(t) for t in reported]
    assert ran.progress == len(reported)
    assert offers == sorted(offers)  # started never goes back


def test_after_the_run_nothing_is_left_to_take(tmp_path: Path) -> None:
    spec = gated_project(tmp_path / "ws", 3)
    running = start_and_reach_the_gate(spec, tmp_path)
    running.open_gate()
    ran = running.wait()
    choose = TailRecorder(take=2)
    assert running.hand_over(choose) == []
    assert choose.calls == [([], 4)]
    assert len(ran.results) == 4


def test_a_run_stopped_early_hands_nothing_over(tmp_path: Path) -> None:
    extra = "\n\ndef test_zz_fails():\n    assert False\n\n\ndef test_zz_after():\n    pass\n"
    spec = gated_project(tmp_path / "ws", 2, extra)
    spec = RunnerSpec(**{**_fields(spec), "args": ("-x",)})
    # The session's end waits on a second gate: between the last test and the session's end
    # nothing may be taken either.
    with (spec.source_dir / "tests" / "conftest.py").open("a", encoding="utf-8") as stream:
        stream.write(
            "\n\ndef pytest_sessionfinish(session):\n"
            "    open(os.environ['GATE'] + '.finishing', 'w').close()\n"
            "    wait_for(os.environ['GATE'] + '.finish')\n"
        )
    running = start_and_reach_the_gate(spec, tmp_path)
    running.open_gate()
    wait_for(running.gate.with_name("gate.finishing"), running.proc)
    choose = TailRecorder(take=1)
    assert running.hand_over(choose) == []
    # test_zz_after never started and never will, yet it is not there to take.
    assert choose.calls == [([], 4)]
    running.gate.with_name("gate.finish").touch()
    ran = running.wait()
    assert ran.exit_code == 1
    assert [r.name for r in ran.results] == ["test_gate", "test_n[0]", "test_n[1]", "test_zz_fails"]
    assert running.hand_over(choose) == []
    assert choose.calls[1:] == [([], 4)]


def test_choosing_none_takes_nothing(tmp_path: Path) -> None:
    spec = gated_project(tmp_path / "ws", 5)
    running = start_and_reach_the_gate(spec, tmp_path)
    choose = TailRecorder(take=0)
    assert running.hand_over(choose) == []
    assert running.hand_over(TailRecorder(take=-3)) == []  # clamped
    running.open_gate()
    ran = running.wait()
    assert ran.tests == running.order()
    assert len(ran.results) == 6 == ran.progress
    assert "handed over" not in ran.stdout
    assert choose.calls[0][1] == 1 and len(choose.calls[0][0]) == 5


def test_taking_more_than_is_pending_takes_what_there_is(tmp_path: Path) -> None:
    spec = gated_project(tmp_path / "ws", 3)
    running = start_and_reach_the_gate(spec, tmp_path)
    taken = running.hand_over(TailRecorder(take=99))
    assert running.hand_over(TailRecorder(take=99)) == []  # nothing is left
    running.open_gate()
    ran = running.wait()
    assert taken == running.order()[1:]
    assert [r.name for r in ran.results] == ["test_gate"]
    assert ran.progress == 1


def test_a_taken_next_test_tears_session_fixtures_down_with_the_last_run_test(
    tmp_path: Path,
) -> None:
    # Left to the end of the session, this teardown error would crash pytest unreported.
    extra = (
        "\n\n@pytest.fixture(scope='session')\n"
        "def shared():\n"
        "    yield\n"
        "    raise RuntimeError('shared teardown broke')\n\n\n"
        "def test_uses_shared(shared):\n    pass\n\n\n"
        "def test_uses_shared_too(shared):\n    pass\n"
    )
    spec = gated_project(tmp_path / "ws", 0, extra)
    running = start_and_reach_the_gate(spec, tmp_path)
    assert running.hand_over(TailRecorder(take=1)) == [
        TestCase("tests/test_gated.py", "test_uses_shared_too")
    ]
    running.open_gate()
    ran = running.wait()
    status = {r.name: r for r in ran.results}
    assert set(status) == {"test_gate", "test_uses_shared"}
    assert status["test_uses_shared"].status is Status.ERROR
    assert "shared teardown broke" in status["test_uses_shared"].details
    assert ran.exit_code == 1


CLOSES_EVERYTHING = """

_reused = []


def test_closes_every_descriptor():
    signals = os.path.dirname(os.environ["GATE"])
    os.closerange(3, 65536)
    # Files opened now take the numbers of every file the plugin kept open.
    for n in range(32):
        path = os.path.join(signals, "reused-%d" % n)
        _reused.append(open(path, "ab", buffering=0))
    open(os.path.join(signals, "closed"), "w").close()
    wait_for(os.path.join(signals, "gate2"))
"""


def test_a_test_closing_every_descriptor_loses_and_repeats_nothing(tmp_path: Path) -> None:
    # The plugin keeps its claim, event and progress files open across tests. A test that
    # closes every descriptor and opens files of its own, which take their numbers, must cost
    # neither a test nor a result, and must find nothing of dagpar's in its files.
    spec = gated_project(tmp_path / "ws", 0, CLOSES_EVERYTHING + QUICK.format(count=20))
    # Output is not captured (pytest's capture keeps descriptors of its own open).
    spec = RunnerSpec(**{**_fields(spec), "args": ("-s", "-p", "no:faulthandler")})
    listed = everything(spec)
    running = start_and_reach_the_gate(spec, tmp_path)
    first = running.hand_over(TailRecorder(take=2))
    running.open_gate()
    wait_for(running.gate.with_name("closed"), running.proc)
    second = running.hand_over(TailRecorder(take=3))  # the descriptors are closed by now
    running.gate.with_name("gate2").touch()
    ran = running.wait()

    order = running.order()
    assert order == listed
    assert first == order[-2:]
    assert second == order[-5:-2]
    reported = ran.tests
    assert reported == order[:-5]
    assert ran.executed == [nodeid(t) for t in reported]
    assert all(r.status is Status.PASSED for r in ran.results)
    assert ran.progress == len(reported)
    # Every test that ran has its end event: the results came from there, not the report.
    ends = [
        json.loads(line)
        for line in (running.report_dir / "dagpar_pytest_events.jsonl").read_text().splitlines()
    ]
    assert [(e["path"], e["name"]) for e in ends if e["e"] == "end"] == [
        (t.path, t.name) for t in reported
    ]
    # After the run, nothing is left to take.
    assert running.hand_over(TailRecorder(take=1)) == []
    reused = sorted(running.gate.parent.glob("reused-*"))
    assert len(reused) == 32
    assert all(path.stat().st_size == 0 for path in reused)


@pytest.mark.slow
def test_under_xdist_nothing_is_handed_over(tmp_path: Path) -> None:
    spec = gated_project(tmp_path / "ws", 4)
    spec = RunnerSpec(**{**_fields(spec), "args": ("-p", "xdist.plugin", "-n", "2")})
    assert RUNNER.can_hand_over(spec=spec) is False
    running = start_and_reach_the_gate(spec, tmp_path)
    info = json.loads((running.report_dir / RUN_INFO_FILE).read_text(encoding="utf-8"))
    assert info["handover"] is False
    choose = TailRecorder(take=2)
    assert running.hand_over(choose) is None
    running.open_gate()
    ran = running.wait()
    assert choose.calls == []
    assert not (running.report_dir / ORDER_FILE).exists()
    assert len(ran.results) == 5 == ran.progress
    assert sorted(ran.executed) == sorted(nodeid(t) for t in everything(spec))


def test_xdist_turned_off_by_zero_processes_still_hands_over(tmp_path: Path) -> None:
    spec = gated_project(tmp_path / "ws", 4)
    spec = RunnerSpec(**{**_fields(spec), "args": ("-p", "xdist.plugin", "-n", "0")})
    assert RUNNER.can_hand_over(spec=spec) is True
    running = start_and_reach_the_gate(spec, tmp_path)
    taken = running.hand_over(TailRecorder(take=2))
    running.open_gate()
    ran = running.wait()
    assert taken == running.order()[-2:]
    assert len(ran.results) == 3 == ran.progress


def _fields(spec: RunnerSpec) -> dict[str, object]:
    return {name: getattr(spec, name) for name in RunnerSpec.__dataclass_fields__}


def _other_pythons() -> list[str]:
    return [p for p in os.environ.get("DAGPAR_TEST_PYTEST_PYTHONS", "").split(os.pathsep) if p]


# DAGPAR_TEST_PYTEST_PYTHONS adds interpreters with other pytest versions (6 and up); without it
# the test runs on this interpreter's pytest, so it never skips.
@pytest.mark.parametrize("python", _other_pythons() or [sys.executable])
def test_other_pytest_versions_hand_over(python: str, tmp_path: Path) -> None:
    extra = (
        "\n\n@pytest.fixture(scope='module')\n"
        "def shared():\n"
        "    yield\n"
        "    raise RuntimeError('shared teardown broke')\n\n\n"
        "def test_uses_shared(shared):\n    pass\n\n\n"
        "def test_uses_shared_too(shared):\n    pass\n"
    )
    spec = gated_project(tmp_path / "ws", 3, extra)
    spec = RunnerSpec(**{**_fields(spec), "command": (python, "-m", "pytest")})
    running = start_and_reach_the_gate(spec, tmp_path)
    taken = running.hand_over(TailRecorder(take=1))
    running.open_gate()
    ran = running.wait()
    assert taken == [TestCase("tests/test_gated.py", "test_uses_shared_too")]
    assert ran.tests == running.order()[:-1]
    assert ran.progress == 5
    by_name = {r.name: r for r in ran.results}
    assert "shared teardown broke" in by_name["test_uses_shared"].details
