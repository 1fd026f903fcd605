"""Whether a container's owning dagpar is gone, from its labels: this host's processes decide,
and elsewhere only the expiry can."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dagpar_cli.execution.docker_owner import (
    CONTAINER_LIFETIME,
    EXPIRES_LABEL,
    OWNER_PID_LABEL,
    OWNER_START_LABEL,
    Owner,
    keepalive_command,
    owner_gone,
    process_alive,
    process_start,
)

ME = Owner(host="ci-1", boot="boot-a pid:[1]", pid=100, start="5000")
NOW = 1_000_000.0


def labels(owner: Owner, now: float = NOW) -> dict[str, str]:
    return owner.labels(now)


def never_asked(pid: int, start: str) -> bool:
    raise AssertionError("the owner's process must not be asked")


def test_this_process_owns_its_own_containers() -> None:
    assert not owner_gone(labels(ME), me=ME, now=NOW, alive=never_asked)


def test_an_owner_on_this_host_is_gone_when_its_process_is() -> None:
    other = Owner(ME.host, ME.boot, 200, "7000")
    asked: list[tuple[int, str]] = []

    def alive(pid: int, start: str) -> bool:
        asked.append((pid, start))
        return pid == 300

    assert owner_gone(labels(other), me=ME, now=NOW, alive=alive)
    assert asked == [(200, "7000")]
    living = Owner(ME.host, ME.boot, 300, "7000")
    assert not owner_gone(labels(living), me=ME, now=NOW, alive=alive)


def test_on_this_host_a_live_owner_keeps_its_containers_past_the_expiry() -> None:
    other = Owner(ME.host, ME.boot, 300, "7000")
    later = NOW + CONTAINER_LIFETIME + 1
    assert not owner_gone(labels(other), me=ME, now=later, alive=lambda pid, start: True)


def test_a_reused_pid_is_not_the_owner() -> None:
    # Our pid, started at another time: an earlier process that had our pid, and is gone.
    earlier = Owner(ME.host, ME.boot, ME.pid, "1234")
    assert owner_gone(labels(earlier), me=ME, now=NOW, alive=lambda pid, start: start == "5000")


@pytest.mark.parametrize(
    "owner",
    [
        Owner("ci-2", ME.boot, 200, "7000"),  # another machine
        Owner(ME.host, "boot-b pid:[1]", 200, "7000"),  # rebooted, or another pid namespace
    ],
)
def test_an_owner_elsewhere_is_gone_only_after_the_expiry(owner: Owner) -> None:
    assert not owner_gone(labels(owner), me=ME, now=NOW + 60, alive=never_asked)
    later = NOW + CONTAINER_LIFETIME + 1
    assert owner_gone(labels(owner), me=ME, now=later, alive=never_asked)


@pytest.mark.parametrize("pid", ["x", "", "-"])
def test_an_unreadable_pid_leaves_the_container_alone_until_its_expiry(pid: str) -> None:
    text = {**labels(Owner(ME.host, ME.boot, 200, "7000")), OWNER_PID_LABEL: pid}
    assert not owner_gone(text, me=ME, now=NOW + 60, alive=never_asked)
    assert owner_gone(text, me=ME, now=NOW + CONTAINER_LIFETIME + 1, alive=never_asked)


def test_an_unreadable_expiry_never_expires() -> None:
    text = {**labels(Owner("ci-2", ME.boot, 200, "7000")), EXPIRES_LABEL: "soon"}
    assert not owner_gone(text, me=ME, now=NOW + 10 * CONTAINER_LIFETIME, alive=never_asked)


def test_a_container_without_a_pid_goes_after_its_expiry_only() -> None:
    text = labels(Owner(ME.host, ME.boot, 200, "7000"))
    del text[OWNER_PID_LABEL]
    assert not owner_gone(text, me=ME, now=NOW, alive=never_asked)
    assert owner_gone(text, me=ME, now=NOW + CONTAINER_LIFETIME + 1, alive=never_asked)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_process_alive_knows_a_process_by_its_start_time() -> None:
    me = Owner.current()
    assert me.pid == os.getpid() and me.start == process_start(os.getpid()) != ""
    assert process_alive(me.pid, me.start)
    assert process_alive(me.pid, "")
    assert not process_alive(me.pid, str(int(me.start) + 1))
    child = subprocess.Popen(["true"])
    child.wait()
    assert not process_alive(child.pid, "")
    zombie = subprocess.Popen(["true"])
    try:
        stat = Path(f"/proc/{zombie.pid}/stat")
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            pass
        assert not process_alive(zombie.pid, "")
    finally:
        zombie.wait()


def test_the_labels_name_the_owner_and_an_expiry() -> None:
    text = ME.labels(NOW)
    assert text[OWNER_PID_LABEL] == "100" and text[OWNER_START_LABEL] == "5000"
    assert float(text[EXPIRES_LABEL]) == NOW + CONTAINER_LIFETIME


def test_the_keepalive_ends_when_the_heartbeat_stops(tmp_path: Path) -> None:
    entrypoint, command = keepalive_command(0.2)
    script = command[0].replace("/tmp/.dagpar-heartbeat", f"{tmp_path}/beat")
    proc = subprocess.run([*entrypoint, script, command[1]], timeout=30)
    assert proc.returncode == 0


def test_cleanup_names_an_unreachable_engine_in_one_line(dagpar_run: Any) -> None:
    result = dagpar_run("cleanup", "--engine", "tcp://127.0.0.1:9")
    assert result.exit_code == 4, result
    assert result.stderr.count("\n") == 1
    assert "docker engine tcp://127.0.0.1:9 is unreachable" in result.stderr


def test_cleanup_refuses_an_empty_engine(dagpar_run: Any) -> None:
    result = dagpar_run("cleanup", "--engine", "")
    assert result.exit_code == 2, result
    assert result.stderr.startswith("dagpar: error: --engine ''")
