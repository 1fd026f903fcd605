"""The docker executor streams a command's standard output to its report file from the host side,
live, and keeps only a bounded head and tail of it in memory."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_images import BASE_IMAGE, ensure_base_image

from dagpar_cli.execution.api import ExecRequest, Mount, Outcome, OutputFile, SessionSpec
from dagpar_cli.execution.docker import DockerExecutor
from dagpar_cli.execution.output import cut_marker

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    import docker

    c = docker.from_env()
    ensure_base_image(c)
    yield c
    c.close()


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
