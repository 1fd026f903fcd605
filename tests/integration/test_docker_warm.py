"""Warm containers of the docker executor, against a real Docker engine.

Slices that fit (same engine, image, mounts and labels) run in a container a previous slice left,
after the pool reset it; nothing a slice leaves outside its mounts reaches the next one, and the
run's end, an interrupt or a crash leaves no container behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_images import BASE_IMAGE, ensure_base_image

from dagpar_cli.execution.api import ExecRequest, Mount, OutputFile, SessionSpec
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


def test_a_writable_mount_under_tmp_keeps_its_files_and_the_container(
    warm: DockerExecutor, tmp_path: Path
) -> None:
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
        assert second.container_id == used
        assert _sh(second, "cat /tmp/dagpar-report/result.json") == "kept\n"
    assert (report / "result.json").read_text() == "kept\n"


def _reports(tmp_path: Path, n: int) -> list[Path]:
    """*n* report directories as the engine makes them: one per slice, under one run directory,
    mounted writable at their own host path."""
    run = tmp_path / "run"
    dirs = [run / f"{i:04d}-check-{i}" for i in range(n)]
    for d in dirs:
        d.mkdir(parents=True)
    return dirs


def _with_report(label: str, report: Path, source: Path) -> SessionSpec:
    mounts = (
        Mount(source=source, target=str(source)),
        Mount(source=report, target=str(report), read_only=False),
    )
    return _spec(label, mounts, labels={"dagpar.slice": label})


def test_slices_with_report_directories_of_their_own_share_a_container(
    warm: DockerExecutor, client: Any, run_id: str, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    reports = _reports(tmp_path, 4)
    ids = set()
    for i, report in enumerate(reports):
        (report / "given.txt").write_text(f"host {i}\n")
        with warm.open(_with_report(f"p#{i}", report, source)) as session:
            ids.add(session.container_id)
            assert session.shares_mounts
            assert _sh(session, f"cat {report}/given.txt") == f"host {i}\n"
            _sh(session, f"mkdir -p {report}/sub && echo slice {i} > {report}/sub/result.txt")
        assert (report / "sub" / "result.txt").read_text() == f"slice {i}\n"
        assert (report / "given.txt").read_text() == f"host {i}\n"
    assert len(ids) == 1 and _labelled(client, run_id) == sorted(ids)
    assert warm._pool is not None and warm._pool.reused == 3


def test_a_slice_cannot_see_or_change_what_an_earlier_slice_left(
    warm: DockerExecutor, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    first_dir, second_dir = _reports(tmp_path, 2)
    with warm.open(_with_report("x#1", first_dir, source)) as first:
        _sh(
            first,
            f"cd {first_dir} && echo mine > report.json && mkdir sub && echo deep > sub/x && "
            "ln -s /etc/passwd passwd && ln -s /etc etc && "
            # A process the slice leaves behind keeps rewriting the report.
            "(nohup sh -c 'while true; do echo tampered > report.json; "
            f"echo tampered > {second_dir}/planted 2>/dev/null; sleep 0.05; done' "
            ">/dev/null 2>&1 &)",
        )
        used = first.container_id
        # The image has no mkfifo: the FIFO is made where the container writes the directory.
        assert first._warm is not None
        os.mkfifo(first._warm[0].exchange / first_dir.name / "fifo")
    # The host read the report when the slice ended, and followed none of the planted entries.
    assert (first_dir / "report.json").read_text() == "mine\n"
    assert (first_dir / "sub" / "x").read_text() == "deep\n"
    assert sorted(p.name for p in first_dir.iterdir()) == ["report.json", "sub"]
    with warm.open(_with_report("x#2", second_dir, source)) as second:
        assert second.container_id == used
        assert _sh(second, f"ls -A {second_dir}") == ""
        assert _sh(second, f"test -e {first_dir} || echo gone") == "gone\n"
        assert _sh(second, f"ls -A {second_dir.parent}") == f"{second_dir.name}\n"
        _sh(second, f"echo second > {second_dir}/report.json")
        processes = _sh(second, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
        assert "tampered" not in processes
    assert (first_dir / "report.json").read_text() == "mine\n"
    assert sorted(p.name for p in second_dir.iterdir()) == ["report.json"]
    assert (second_dir / "report.json").read_text() == "second\n"


def test_the_host_and_a_running_slice_see_each_others_writes_live(
    warm: DockerExecutor, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (report,) = _reports(tmp_path, 1)
    with warm.open(_with_report("o#1", report, source)) as session:
        assert session.shares_mounts
        outcome = session.run(
            ExecRequest(
                argv=("sh", "-c", f"echo streamed; echo live > {report}/events.jsonl"),
                cwd="/",
                stdout_file=OutputFile(root=report, name="out.log"),
            )
        )
        assert outcome.exit_code == 0
        # Before the session closes: what the slice wrote, and the host's output file.
        assert (report / "events.jsonl").read_text() == "live\n"
        assert (report / "out.log").read_text() == "streamed\n"
        (report / "taken.lock").write_text("host")
        assert _sh(session, f"cat {report}/taken.lock") == "host"
        _sh(session, f"ln -s /etc/passwd {report}/planted")
    assert not report.is_symlink()
    assert sorted(p.name for p in report.iterdir()) == ["events.jsonl", "out.log", "taken.lock"]


def test_a_directory_is_copied_out_of_a_writable_mount(
    warm: DockerExecutor, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (report,) = _reports(tmp_path, 1)
    out = tmp_path / "out"
    with warm.open(_with_report("c#1", report, source)) as session:
        _sh(session, f"mkdir -p {report}/d/e && echo x > {report}/d/e/f && ln -s /etc {report}/d/l")
        session.copy_out(f"{report}/d", out)
    assert (out / "e" / "f").read_text() == "x\n"
    assert sorted(p.name for p in out.iterdir()) == ["e"]


def test_a_writable_target_the_image_has_gets_a_container_of_its_own(
    warm: DockerExecutor, client: Any, run_id: str, tmp_path: Path
) -> None:
    report = tmp_path / "var"
    report.mkdir()
    mounts = (Mount(source=report, target="/var", read_only=False),)
    with warm.open(_spec("v#1", mounts)) as session:
        _sh(session, "echo kept > /var/result")
        assert session.shares_mounts
        # The container the link failed in is gone or going: it served no one.
        assert warm._pool is not None
        warm._pool.wait(60)
        assert _labelled(client, run_id) == [session.container_id]
    assert (report / "result").read_text() == "kept\n"


def test_kill_all_during_a_reset_removes_the_container(client: Any, run_id: str) -> None:
    executor = DockerExecutor(run_id=run_id, warm=True)
    try:
        session = executor.open(_spec("z#1"))
        _sh(session, "for i in $(seq 300); do mkdir -p /tmp/d$i && touch /tmp/d$i/f; done")
        session.close()
        assert executor._pool is not None and executor._pool.containers()
        executor.kill_all()
        assert _labelled(client, run_id) == []
        assert executor._pool.containers() == []
    finally:
        executor.close()
    assert _labelled(client, run_id) == []
