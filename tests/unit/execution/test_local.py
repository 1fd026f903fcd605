"""The ``local`` executor: commands are subprocesses in their own process group, and stopping one
(timeout, interrupt, end of session) stops everything it started."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from dagpar_cli.config import Config, RunOptions
from dagpar_cli.execution.api import (
    ExecRequest,
    ExecSession,
    Executor,
    Outcome,
    OutputFile,
    SessionSpec,
)
from dagpar_cli.execution.local import LocalExecutor
from dagpar_cli.execution.output import cut_marker
from dagpar_cli.pluginmanager import get_plugin_manager
from dagpar_cli.run_context import RunContext

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")

SPEC = SessionSpec(label="check#1", env={"FROM_SESSION": "s", "BOTH": "session"})


def sh(script: str, cwd: Path | str = "/", **kwargs: object) -> ExecRequest:
    return ExecRequest(argv=("sh", "-c", script), cwd=str(cwd), **kwargs)  # type: ignore[arg-type]


def gone(pid: int, within: float = 5.0) -> bool:
    """Whether process *pid* ended (or is a zombie nobody reaped yet) within *within* seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def executor() -> LocalExecutor:
    return LocalExecutor()


def test_the_local_executor_keeps_the_executor_protocols(executor: LocalExecutor) -> None:
    assert isinstance(executor, Executor)
    with executor.open(SPEC) as session:
        assert isinstance(session, ExecSession)
        assert session.where == "local"


def test_a_command_runs_in_its_directory_with_the_session_and_request_environment(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    request = ExecRequest(
        argv=("sh", "-c", 'pwd; echo "$FROM_SESSION $BOTH"; echo oops >&2; exit 3'),
        cwd=str(tmp_path),
        env={"BOTH": "request"},
    )
    with executor.open(SPEC) as session:
        outcome = session.run(request)
    assert outcome.exit_code == 3 and not outcome.ok
    assert outcome.stdout.splitlines() == [str(tmp_path), "s request"]
    assert outcome.stderr == "oops\n"
    assert outcome.seconds > 0
    assert not (outcome.timed_out or outcome.not_started or outcome.killed)


def test_output_that_is_not_utf8_is_decoded_with_replacement(executor: LocalExecutor) -> None:
    with executor.open(SPEC) as session:
        outcome = session.run(sh(r"printf 'caf\351'"))
    assert outcome.ok and outcome.stdout == "caf\ufffd"


def test_a_missing_command_did_not_start(executor: LocalExecutor, tmp_path: Path) -> None:
    with executor.open(SPEC) as session:
        outcome = session.run(ExecRequest(argv=("no-such-command-xyz",), cwd=str(tmp_path)))
    assert outcome.not_started and outcome.exit_code == 127
    assert outcome.stderr == "no-such-command-xyz: command not found"


def test_a_file_that_is_not_executable_did_not_start(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    with executor.open(SPEC) as session:
        outcome = session.run(ExecRequest(argv=(str(script),), cwd=str(tmp_path)))
    assert outcome.not_started and outcome.exit_code == 126


def test_a_missing_working_directory_did_not_start(executor: LocalExecutor, tmp_path: Path) -> None:
    with executor.open(SPEC) as session:
        outcome = session.run(ExecRequest(argv=("true",), cwd=str(tmp_path / "gone")))
    assert outcome.not_started
    assert "command not found" not in outcome.stderr


def test_a_timeout_kills_the_command_and_everything_it_started(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    start = time.monotonic()
    with executor.open(SPEC) as session:
        outcome = session.run(
            sh(f"sleep 30 & echo $! > {pids}; sleep 30", cwd=tmp_path, timeout=0.3)
        )
    assert time.monotonic() - start < 10
    assert outcome.timed_out and not outcome.ok
    assert gone(int(pids.read_text()))


def test_children_left_behind_by_a_finished_command_are_stopped(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    with executor.open(SPEC) as session:
        outcome = session.run(sh("sleep 30 >/dev/null 2>&1 & echo $!"))
    assert outcome.ok
    assert gone(int(outcome.stdout))


def started(marker: Path) -> None:
    """Wait until the command that touches *marker* has started."""
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_kill_all_interrupts_running_commands_and_starts_no_more(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    session = executor.open(SPEC)
    outcomes: list[Outcome] = []
    marker = tmp_path / "started"
    worker = threading.Thread(
        target=lambda: outcomes.append(session.run(sh(f"touch {marker}; sleep 30")))
    )
    worker.start()
    started(marker)
    executor.kill_all()
    worker.join(10)
    assert not worker.is_alive()
    assert outcomes[0].killed == "interrupted" and not outcomes[0].ok
    later = executor.open(SPEC).run(sh("echo never"))
    assert later.killed == "stopped before it started" and later.stdout == ""


def test_closing_a_session_stops_its_command(executor: LocalExecutor, tmp_path: Path) -> None:
    session = executor.open(SPEC)
    outcomes: list[Outcome] = []
    marker = tmp_path / "started"
    worker = threading.Thread(
        target=lambda: outcomes.append(session.run(sh(f"touch {marker}; sleep 30")))
    )
    worker.start()
    started(marker)
    session.close()
    session.close()  # idempotent
    worker.join(10)
    assert not worker.is_alive()
    assert outcomes[0].exit_code != 0
    assert session.run(sh("echo never")).killed == "stopped before it started"


def test_paths_are_host_paths_and_copy_out_copies_the_directory(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    source = tmp_path / "out"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "a.txt").write_text("a")
    (source / "link").symlink_to("sub/a.txt")
    with executor.open(SPEC) as session:
        assert session.path(source) == str(source)
        session.copy_out(str(source), tmp_path / "copy")
        with pytest.raises(FileNotFoundError):
            session.copy_out(str(tmp_path / "missing"), tmp_path / "nothing")
    assert (tmp_path / "copy" / "sub" / "a.txt").read_text() == "a"
    assert os.readlink(tmp_path / "copy" / "link") == "sub/a.txt"


def test_capacity_is_the_slots_given_or_the_usable_cpus() -> None:
    assert LocalExecutor(3).capacity() == 3
    assert LocalExecutor().capacity() >= 1


def test_the_plugin_makes_the_local_executor_only_for_local(tmp_path: Path) -> None:
    pm = get_plugin_manager()
    config = Config(workspace=tmp_path, file=None, toolchains=(), parallelism=5)

    def made(options: RunOptions) -> object:
        return pm.hook.dagpar_make_executor(
            session=RunContext(config=config, options=options, pm=pm)
        )

    local = made(RunOptions())
    assert isinstance(local, LocalExecutor) and local.capacity() == 5
    j2 = made(RunOptions(parallelism=2))
    assert isinstance(j2, LocalExecutor) and j2.capacity() == 2
    assert not isinstance(made(RunOptions(executor="docker")), LocalExecutor)


# A command that starts ``sleep 300`` in a session of its own (out of reach of its process
# group), writes that process's pid to argv[1], and, given argv[2], waits until that file exists.
ESCAPE = """
import os, subprocess, sys, time
child = subprocess.Popen(["sleep", "300"], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(child.pid))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while len(sys.argv) > 2 and not os.path.exists(sys.argv[2]):
    time.sleep(0.02)
"""


def escape(pid_file: Path, *release: Path, timeout: float | None = None) -> ExecRequest:
    argv = (sys.executable, "-c", ESCAPE, str(pid_file), *map(str, release))
    return ExecRequest(argv=argv, cwd=str(pid_file.parent), timeout=timeout)


def reaped(pid: int, within: float = 10.0) -> bool:
    """Whether *pid* is gone entirely (killed and reaped, not a zombie) within *within* s."""
    deadline = time.monotonic() + within
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def wait_for(path: Path, within: float = 30.0) -> int:
    deadline = time.monotonic() + within
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return int(path.read_text())


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl")


@linux_only
def test_a_process_in_a_session_of_its_own_is_stopped_and_reaped_when_its_command_ends(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    pid_file = tmp_path / "escaped"
    with executor.open(SPEC) as session:
        outcome = session.run(escape(pid_file))
        assert outcome.ok, outcome
        assert reaped(wait_for(pid_file))
    executor.close()


@linux_only
def test_a_process_in_a_session_of_its_own_is_stopped_when_its_command_times_out(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    pid_file, never = tmp_path / "escaped", tmp_path / "never"
    start = time.monotonic()
    with executor.open(SPEC) as session:
        outcome = session.run(escape(pid_file, never, timeout=2))
    assert outcome.timed_out
    assert time.monotonic() - start < 20
    assert reaped(wait_for(pid_file))
    executor.close()


@linux_only
def test_each_command_stops_only_what_it_started_itself(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    import subprocess

    # A process of the machine's own, in its own session, that no command started.
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    a_pid, b_pid, release = tmp_path / "a", tmp_path / "b", tmp_path / "release"
    outcomes: list[Outcome] = []
    try:
        with executor.open(SPEC) as a, executor.open(SPEC) as b:
            slice_b = threading.Thread(
                target=lambda: outcomes.append(b.run(escape(b_pid, release)))
            )
            slice_b.start()
            b_escaped = wait_for(b_pid)
            assert a.run(escape(a_pid)).ok
            assert reaped(wait_for(a_pid))
            # B still runs: what B started lives on.
            assert running(b_escaped)
            release.write_text("")
            slice_b.join(30)
            assert outcomes and outcomes[0].ok, outcomes
            assert reaped(b_escaped)
        executor.close()
        assert running(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait()


@linux_only
def test_kill_all_stops_the_processes_a_command_put_in_other_sessions(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    pid_file, never = tmp_path / "escaped", tmp_path / "never"
    session = executor.open(SPEC)
    worker = threading.Thread(target=session.run, args=(escape(pid_file, never),))
    worker.start()
    escaped = wait_for(pid_file)
    executor.kill_all()
    worker.join(20)
    assert not worker.is_alive()
    assert reaped(escaped)
    executor.close()


@linux_only
def test_a_process_holding_the_output_open_does_not_keep_an_ended_command_waiting(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    # The escaped process keeps the command's stdout and stderr pipes open.
    script = ESCAPE.replace("stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL", "")
    pid_file = tmp_path / "escaped"
    start = time.monotonic()
    with executor.open(SPEC) as session:
        outcome = session.run(
            ExecRequest(argv=(sys.executable, "-c", script, str(pid_file)), cwd=str(tmp_path))
        )
    assert outcome.ok, outcome
    assert time.monotonic() - start < 60
    assert reaped(wait_for(pid_file))
    executor.close()


def eventually(condition: object, within: float = 60.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_the_stdout_file_grows_while_the_command_runs(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    go_on = tmp_path / "go-on"
    script = f'echo first; while [ ! -e "{go_on}" ]; do sleep 0.02; done; echo second'
    outcomes: list[Outcome] = []
    with executor.open(SPEC) as session:
        request = sh(script, tmp_path, stdout_file=OutputFile(reports, "out/go-1.json"))
        worker = threading.Thread(target=lambda: outcomes.append(session.run(request)))
        worker.start()
        report = reports / "out" / "go-1.json"
        try:
            assert eventually(lambda: report.exists() and report.read_text() == "first\n")
            assert worker.is_alive()
        finally:
            go_on.touch()
            worker.join(60)
    assert report.read_text() == "first\nsecond\n"
    assert outcomes[0].stdout == "first\nsecond\n"
    assert outcomes[0].exit_code == 0


def test_a_bounded_request_keeps_head_and_tail_and_the_file_keeps_everything(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    script = "printf 'HEAD'; i=0; while [ $i -lt 100 ]; do printf '..........'; i=$((i+1)); done;"
    script += " printf 'TAIL'; printf 'E1' >&2; i=0; while [ $i -lt 50 ]; do printf '-' >&2;"
    script += " i=$((i+1)); done; printf 'E2' >&2"
    with executor.open(SPEC) as session:
        outcome = session.run(
            sh(script, tmp_path, keep_output=6, stdout_file=OutputFile(tmp_path, "out.txt"))
        )
    assert outcome.stdout == "HEAD.." + cut_marker(996) + "..TAIL"
    assert outcome.stdout_cut == 996
    assert outcome.stderr == "E1----" + cut_marker(54 - 12) + "----E2"
    assert outcome.stderr_cut == 42
    assert (tmp_path / "out.txt").read_text() == "HEAD" + "." * 1000 + "TAIL"


def test_a_command_that_cannot_start_leaves_an_empty_stdout_file(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    with executor.open(SPEC) as session:
        outcome = session.run(
            ExecRequest(
                argv=("no-such-command-dagpar",),
                cwd=str(tmp_path),
                stdout_file=OutputFile(tmp_path, "out.txt"),
            )
        )
    assert outcome.not_started
    assert (tmp_path / "out.txt").read_text() == ""
