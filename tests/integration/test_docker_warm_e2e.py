"""Warm containers in ``dagpar check --executor docker`` runs of the built-in pytest runner.

A matrix of three flavours over one image gives more slices than workers, all of one check, so
the run keeps one container per worker and runs slice after slice in it. The suite's tests try
to see and to spoil what earlier slices in their container left: files in ``/tmp``, their report
directories, their processes. Containers are counted from the engine's events, by the check's
label, which names this test's toolchain alone (other runs may share the engine).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_images import docker_client, run_toolchains_in_images  # type: ignore[import-not-found]

from dagpar_cli.testing import DagparResult, write_tree

pytestmark = pytest.mark.docker

FILES = 6

#: Each file: a test that checks nothing of another slice is in sight, then one that leaves
#: traces (a file in the working directory if it can, one in /tmp, files and a link in its
#: report directory, a process that keeps overwriting every other slice's report it can find).
TEST_FILE = """
import os
import pathlib
import subprocess

# The runner puts the slice's report directory first on PYTHONPATH (listing sets none).
REPORT = pathlib.Path(os.environ.get("PYTHONPATH", "/nowhere").split(os.pathsep)[0])
TOKEN = str(REPORT)


def test_nothing_of_another_slice_is_in_sight_{i}():
    assert not pathlib.Path("left-in-the-workdir").exists()
    for marker in pathlib.Path("/tmp").glob("dagpar-mark-*"):
        assert marker.read_text() == TOKEN, marker
    assert list(REPORT.parent.iterdir()) == [REPORT]
    for entry in REPORT.iterdir():
        if entry.name.startswith("planted-"):
            assert entry.read_text() == TOKEN
    for cmdline in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "dagpar-spoiler" in text:
            assert TOKEN in text, "a process of an earlier slice is still running"


def test_leaves_traces_{i}():
    try:
        pathlib.Path("left-in-the-workdir").write_text(TOKEN)
    except OSError:
        pass  # the workspace is mounted read-only
    pathlib.Path(f"/tmp/dagpar-mark-{i}-{{os.getpid()}}").write_text(TOKEN)
    (REPORT / "planted-{i}").write_text(TOKEN)
    os.symlink("/etc/passwd", REPORT / "link-{i}")
    spoil = (
        f"own={{TOKEN}}/pytest-junit.xml; while true; do "
        "for f in /tmp/*/*/pytest-junit.xml /.dagpar-exchange/*/*/pytest-junit.xml; do "
        '[ -e "$f" ] || continue; [ "$f" -ef "$own" ] && continue; '
        'echo broken > "$f" 2>/dev/null; done; '
        f"sleep 0.05; done # dagpar-spoiler {{TOKEN}}"
    )
    subprocess.Popen(
        ["sh", "-c", spoil],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
"""

HANG_FILE = """
import os
import time


def test_hangs_in_flavour_c():
    if os.environ["FLAVOUR"] == "c":
        time.sleep(300)
"""


def _suite(name: str, hang: bool = False) -> dict[str, str]:
    files = {
        "dagpar.yaml": f"""
            toolchains:
              {name}:
                use: pytest
                source: .
                image: dagpar-test/base:latest
                matrix:
                  env: [{{FLAVOUR: a}}, {{FLAVOUR: b}}, {{FLAVOUR: c}}]
        """,
        "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
    }
    for i in range(FILES):
        files[f"tests/test_slice_{i}.py"] = TEST_FILE.format(i=i)
    if hang:
        files["tests/test_hang.py"] = HANG_FILE
    return files


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    yield from docker_client()


@pytest.fixture
def name() -> str:
    """The toolchain's name: the containers' ``dagpar.check`` label starts with it."""
    return f"warm{uuid.uuid4().hex[:10]}"


def _created(client: Any, name: str, since: float) -> set[str]:
    """The containers created for the check of toolchain *name* since *since*."""
    events = client.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        filters={"type": "container", "event": "create", "label": "dagpar.check"},
        decode=True,
    )
    return {
        e["Actor"]["ID"]
        for e in events
        if e["Actor"]["Attributes"].get("dagpar.check", "").startswith(name)
    }


def _left(client: Any, name: str) -> list[str]:
    listed = client.api.containers(all=True, filters={"label": "dagpar.check"})
    return [c["Id"] for c in listed if c["Labels"].get("dagpar.check", "").startswith(name)]


def test_slices_of_a_run_share_warm_containers_and_see_nothing_of_each_other(
    client: Any,
    monkeypatch: pytest.MonkeyPatch,
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
    name: str,
) -> None:
    run_toolchains_in_images(monkeypatch)
    ws = write_tree(tmp_path / "ws", _suite(name))
    junit = tmp_path / "junit.xml"
    since = time.time()
    result = dagpar_run(
        "check", "-C", ws, "--executor", "docker", "-j", "2", "--json", "--junit-xml", junit
    )
    assert result.exit_code == 0, str(result)
    (check,) = result.json()["checks"]
    slices = check["slices"]
    assert len(slices) > 2, slices
    assert all(s["where"].startswith("docker@") for s in slices)
    # Every test exactly once per flavour, and passed: no slice spoiled another's report.
    ids = [(t["id"], t["matrix"]["env"]) for t in check["tests"]]
    assert len(ids) == len(set(ids)) == 3 * 2 * FILES
    assert {t["status"] for t in check["tests"]} == {"passed"}
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert len(cases) == 3 * 2 * FILES
    assert all(c.find(tag) is None for c in cases for tag in ("failure", "error", "skipped"))
    created = _created(client, name, since)
    assert 0 < len(created) <= 2 < len(slices), (created, len(slices))
    assert _left(client, name) == []


def _reset_seen(client: Any, name: str, since: float) -> bool:
    """Whether a container of the check was reset for the next slice since *since*."""
    events = client.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        filters={"type": "container", "event": "exec_start", "label": "dagpar.check"},
        decode=True,
    )
    return any(
        e["Actor"]["Attributes"].get("dagpar.check", "").startswith(name)
        and "x=$1; mounts=$2" in e.get("Action", "")
        for e in events
    )


def test_sigint_with_warm_containers_removes_every_container(
    client: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
) -> None:
    run_toolchains_in_images(monkeypatch)
    ws = write_tree(tmp_path / "ws", _suite(name, hang=True))
    since = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagpar_cli", "check", "-C", str(ws), "-j", "2",
         "--executor", "docker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    # Interrupt once a slice's container went back to the pool (being reset, or idle).
    while not _reset_seen(client, name, since):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no container was ever reset for another slice"
        time.sleep(0.1)
    assert _left(client, name)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert _left(client, name) == []
