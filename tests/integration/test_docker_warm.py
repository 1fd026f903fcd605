"""Warm containers of the docker executor, against a real Docker engine.

Slices that fit (same engine, image, mounts and labels) run in a container a previous slice left,
after the pool reset it; nothing a slice leaves outside its mounts reaches the next one, and the
run's end, an interrupt or a crash leaves no container behind.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_images import BASE_IMAGE, ensure_base_image

from dagpar_cli.execution.api import ExecRequest, Mount, SessionSpec
from dagpar_cli.execution.docker import RUN_LABEL, DockerExecutor, DockerSession

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    import docker

    c = docker.from_env()
    ensure_base_image(c)
    yield c
    c.close()


@pytest.fixture
def run_id() -> str:
    return f"test-warm-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def warm(client: Any, run_id: str) -> Iterator[DockerExecutor]:
    ex = DockerExecutor(run_id=run_id, warm=True)
    yield ex
    ex.close()
    assert _labelled(client, run_id) == [], "closing the executor must remove its containers"


def _labelled(client: Any, run_id: str) -> list[str]:
    found = client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
    return sorted(c.id for c in found)


def _spec(label: str, mounts: tuple[Mount, ...] = (), **kwargs: Any) -> SessionSpec:
    return SessionSpec(label=label, image=BASE_IMAGE, mounts=mounts, **kwargs)


def _sh(session: DockerSession, script: str) -> str:
    outcome = session.run(ExecRequest(argv=("sh", "-c", script), cwd="/"))
    assert outcome.exit_code == 0, outcome
    return outcome.stdout


def test_slices_run_in_one_warm_container(
    warm: DockerExecutor, client: Any, run_id: str, tmp_path: Path
) -> None:
    mounts = (Mount(source=tmp_path, target="/src"),)
    seen: set[str] = set()
    ids = []
    for i in range(5):
        with warm.open(_spec(f"w#{i}", mounts, labels={"dagpar.slice": f"{i}/5"})) as session:
            ids.append(session.container_id)
            seen.update(_labelled(client, run_id))
            assert _sh(session, "echo $DAGPAR_X") == "\n"
    assert len(set(ids)) == 1, "each slice started a container of its own"
    assert seen == {ids[0]}
    assert warm._pool is not None and warm._pool.reused == 4


def test_each_slice_gets_its_own_environment(warm: DockerExecutor) -> None:
    with warm.open(_spec("e#1", env={"WHO": "one"})) as first:
        assert _sh(first, "echo $WHO") == "one\n"
        used = first.container_id
    with warm.open(_spec("e#2", env={"WHO": "two"})) as second:
        assert second.container_id == used
        assert _sh(second, "echo $WHO") == "two\n"


def test_the_next_slice_sees_nothing_the_last_one_left(warm: DockerExecutor) -> None:
    with warm.open(_spec("t#1")) as first:
        _sh(
            first,
            "echo a > /tmp/left && mkdir -p /tmp/d/e && echo b > /var/tmp/left && "
            "echo c > /dev/shm/left && echo d > /tmp/.hidden && "
            "(nohup sleep 1000 >/dev/null 2>&1 &) && (sh -c 'sleep 999' &)",
        )
        used = first.container_id
    with warm.open(_spec("t#2")) as second:
        assert second.container_id == used
        listing = _sh(second, "ls -A /tmp /var/tmp /dev/shm")
        assert "left" not in listing and ".hidden" not in listing and "d\n" not in listing
        processes = _sh(second, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
        assert "sleep 1000" not in processes and "sleep 999" not in processes


def test_a_slice_that_wrote_outside_scratch_leaves_its_container(warm: DockerExecutor) -> None:
    with warm.open(_spec("o#1")) as first:
        _sh(first, "echo leaked > /root/marker")
        used = first.container_id
    with warm.open(_spec("o#2")) as second:
        assert second.container_id != used
        assert _sh(second, "cat /root/marker 2>/dev/null || echo clean") == "clean\n"


def test_different_mounts_or_labels_do_not_share_a_container(
    warm: DockerExecutor, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with warm.open(_spec("m#1", (Mount(source=tmp_path / "a", target="/src"),))) as first:
        used = first.container_id
    with warm.open(_spec("m#2", (Mount(source=tmp_path / "b", target="/src"),))) as other:
        assert other.container_id != used
        assert _sh(other, "ls /src") == ""
    with warm.open(_spec("m#3", labels={"dagpar.check": "x"})) as labelled:
        assert labelled.container_id != used


def test_after_a_timeout_the_next_slice_finds_no_leftover(warm: DockerExecutor) -> None:
    with warm.open(_spec("k#1")) as first:
        outcome = first.run(
            ExecRequest(argv=("sh", "-c", "sleep 777 & sleep 30"), cwd="/", timeout=0.5)
        )
        assert outcome.timed_out
    with warm.open(_spec("k#2")) as second:
        processes = _sh(second, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
        assert "sleep 777" not in processes and "sleep 30" not in processes


def test_a_session_whose_container_died_is_not_reused(warm: DockerExecutor, client: Any) -> None:
    with warm.open(_spec("d#1")) as first:
        used = first.container_id
        client.containers.get(used).kill()
        assert first.run(ExecRequest(argv=("true",), cwd="/")).killed
    with warm.open(_spec("d#2")) as second:
        assert second.container_id != used
        assert _sh(second, "echo ok") == "ok\n"


def test_idle_containers_are_renewed_by_the_heartbeat(warm: DockerExecutor) -> None:
    with warm.open(_spec("h#1")) as first:
        used = first.container_id
    assert used in [cid for _engine, cid in warm._open_containers()]


def test_kill_all_removes_warm_containers(client: Any, run_id: str) -> None:
    executor = DockerExecutor(run_id=run_id, warm=True)
    try:
        idle = executor.open(_spec("i#1"))
        busy = executor.open(_spec("i#2"))
        idle.close()
        executor.kill_all()
        assert _labelled(client, run_id) == []
        assert busy.run(ExecRequest(argv=("true",), cwd="/")).killed == "interrupted"
    finally:
        executor.close()
    assert _labelled(client, run_id) == []


def test_a_crash_leaves_no_warm_container(client: Any, run_id: str) -> None:
    script = f"""
from dagpar_cli.execution.api import SessionSpec
from dagpar_cli.execution.docker import DockerExecutor
executor = DockerExecutor(run_id={run_id!r}, warm=True)
for i in range(3):
    executor.open(SessionSpec(label=f"crash#{{i}}", image={BASE_IMAGE!r})).close()
print("opened", flush=True)
raise RuntimeError("dagpar crashed before closing anything")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.stdout == "opened\n", proc.stderr
    assert _labelled(client, run_id) == []


def test_idle_containers_beyond_the_slots_are_removed(client: Any, run_id: str) -> None:
    from dagpar_cli.config import DockerEngine

    engine = DockerEngine(url="unix:///var/run/docker.sock", slots=1)
    executor = DockerExecutor((engine,), run_id=run_id, warm=True)
    try:
        sessions = [executor.open(_spec(f"s#{i}", labels={"kind": str(i)})) for i in range(3)]
        for session in sessions:
            session.close()
        assert executor._pool is not None
        executor._pool.wait(60)
        assert _labelled(client, run_id) == [sessions[2].container_id]
    finally:
        executor.close()
    assert _labelled(client, run_id) == []


def test_a_mount_under_tmp_is_never_emptied(warm: DockerExecutor, tmp_path: Path) -> None:
    report = tmp_path / "report"
    report.mkdir()
    mounts = (Mount(source=report, target="/tmp/dagpar-report", read_only=False),)
    with warm.open(_spec("r#1", mounts)) as first:
        _sh(first, "echo kept > /tmp/dagpar-report/result.json")
        used = first.container_id
    assert warm._pool is not None
    warm._pool.wait(60)
    assert (report / "result.json").read_text() == "kept\n"
    with warm.open(_spec("r#2", mounts)) as second:
        assert second.container_id != used
