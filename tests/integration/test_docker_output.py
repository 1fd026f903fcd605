"""The docker executor streams a command's standard output to its report file from the host side,
live, and keeps only a bounded head and tail of it in memory."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_images import BASE_IMAGE, docker_client

from dagpar_cli.execution.api import ExecRequest, Mount, Outcome, OutputFile, SessionSpec
from dagpar_cli.execution.docker import DockerExecutor
from dagpar_cli.execution.output import cut_marker

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    yield from docker_client()


@pytest.fixture
def executor(client: Any) -> Iterator[DockerExecutor]:
    ex = DockerExecutor(run_id=f"test-{uuid.uuid4().hex[:10]}")
    yield ex
    ex.close()


def eventually(condition: Callable[[], bool], within: float = 60.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _spec(reports: Path) -> SessionSpec:
    mount = Mount(source=reports, target="/reports", read_only=False)
    return SessionSpec(label="check#1", image=BASE_IMAGE, mounts=(mount,))


def test_the_stdout_file_grows_while_the_command_runs(
    executor: DockerExecutor, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    script = "echo first; while [ ! -e /reports/go-on ]; do sleep 0.05; done; echo second"
    outcomes: list[Outcome] = []
    with executor.open(_spec(reports)) as session:
        request = ExecRequest(
            argv=("sh", "-c", script), cwd="/", stdout_file=OutputFile(reports, "go-1.json")
        )
        worker = threading.Thread(target=lambda: outcomes.append(session.run(request)))
        worker.start()
        report = reports / "go-1.json"
        try:
            assert eventually(lambda: report.exists() and report.read_text() == "first\n")
            assert worker.is_alive()
        finally:
            (reports / "go-on").touch()
            worker.join(120)
    assert report.read_text() == "first\nsecond\n"
    assert outcomes[0].stdout == "first\nsecond\n"


def test_a_planted_link_does_not_redirect_the_output_and_memory_stays_bounded(
    executor: DockerExecutor, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (reports / "go-1.json").symlink_to(victim)
    script = "printf HEAD; head -c 5000 /dev/zero | tr '\\0' .; printf TAIL; printf E1 >&2"
    with executor.open(_spec(reports)) as session:
        outcome = session.run(
            ExecRequest(
                argv=("sh", "-c", script),
                cwd="/",
                keep_output=6,
                stdout_file=OutputFile(reports, "go-1.json"),
            )
        )
    assert outcome.exit_code == 0, outcome
    assert victim.read_text() == "keep me"
    assert (reports / "go-1.json").read_text() == "HEAD" + "." * 5000 + "TAIL"
    assert outcome.stdout == "HEAD.." + cut_marker(4996) + "..TAIL"
    assert outcome.stdout_cut == 4996
    assert outcome.stderr == "E1"


GO_EXIT = Path(__file__).resolve().parents[1] / "data" / "projects" / "go-exit"


@pytest.mark.go
def test_go_in_a_container_streams_test_by_test_to_the_host(client: Any, tmp_path: Path) -> None:
    """The report of ``go test -json`` run in a container reaches the host's report directory
    as go writes it; the stream reads it there."""
    from dagpar_plugins.go import GoRunner
    from docker_images import toolchain_env, toolchain_mounts

    from dagpar_cli import RunnerSpec, Selection, Status

    workspace = Path(shutil.copytree(GO_EXIT, tmp_path / "ws"))
    reports = tmp_path / "reports"
    reports.mkdir()
    runner = GoRunner()
    spec = RunnerSpec(name="go", workspace=workspace, executor="docker")
    (command,) = runner.command(spec, Selection(items=(("exits",),)))
    for name, content in command.files.items():
        (reports / name).write_text(content)
    stream = runner.stream(spec, reports)
    assert stream is not None
    executor = DockerExecutor(
        run_id=f"test-{uuid.uuid4().hex[:10]}",
        extra_mounts=toolchain_mounts(),
        extra_env=toolchain_env(),
    )
    mounts = (
        Mount(source=workspace, target="/ws"),
        Mount(source=reports, target="/reports", read_only=False),
    )
    try:
        with executor.open(SessionSpec(label="go#1", image=BASE_IMAGE, mounts=mounts)) as session:
            assert command.stdout_file is not None
            outcome = session.run(
                ExecRequest(
                    argv=command.argv,
                    cwd="/ws",
                    env=dict(command.env),
                    timeout=300,
                    stdout_file=OutputFile(reports, command.stdout_file),
                )
            )
            events = stream.poll()
    finally:
        executor.close()
    assert outcome.exit_code == 1, outcome
    events += stream.poll()
    assert [(e.kind, e.test.name) for e in events] == [
        ("start", "TestFirst"),
        ("end", "TestFirst"),
        ("start", "TestExits"),
    ]
    assert events[1].result is not None and events[1].result.status is Status.PASSED


def test_without_bind_mounts_the_output_file_survives_the_copy_back(
    client: Any, tmp_path: Path
) -> None:
    """An engine that copies directories in and out: the host's output file stays as written,
    next to what the container wrote into the directory itself."""
    reports = tmp_path / "reports"
    reports.mkdir()
    executor = DockerExecutor(run_id=f"test-{uuid.uuid4().hex[:10]}", bind_mounts=False)
    try:
        with executor.open(_spec(reports)) as session:
            outcome = session.run(
                ExecRequest(
                    argv=("sh", "-c", "echo report; echo own > /reports/own.txt"),
                    cwd="/",
                    stdout_file=OutputFile(reports, "go-1.json"),
                )
            )
    finally:
        executor.close()
    assert outcome.exit_code == 0, outcome
    assert (reports / "go-1.json").read_text() == "report\n"
    assert (reports / "own.txt").read_text() == "own\n"
