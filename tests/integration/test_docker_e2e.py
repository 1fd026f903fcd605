"""``dagpar check --executor docker`` end to end, on a real engine with locally built images.

No image can be pulled here, so every toolchain runs in ``dagpar-test/base:latest`` (built from
the host by ``tests/docker_images.py``) with the host's Python, Go and Node mounted read-only:
the ``DAGPAR_PLUGINS`` variable loads that docker executor the way a user tries a plugin out.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_images import docker_client, run_toolchains_in_images  # type: ignore[import-not-found]

from dagpar_cli.testing import DagparResult, write_tree

pytestmark = pytest.mark.docker

TESTS = Path(__file__).resolve().parents[1]
EXAMPLE = TESTS.parent / "examples" / "shop"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    yield from docker_client()


@pytest.fixture
def in_docker(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    run_toolchains_in_images(monkeypatch)


def _shop(tmp_path: Path, **extra: str) -> Path:
    ws = tmp_path / "shop"
    shutil.copytree(EXAMPLE, ws, ignore=shutil.ignore_patterns(".dagpar", "__pycache__"))
    config = (ws / "dagpar.yaml").read_text()
    config = config.replace(
        "    use: pytest\n", "    use: pytest\n    image: dagpar-test/base:latest\n"
    )
    config = config.replace(
        "    source: docs\n", "    source: docs\n    image: dagpar-test/base:latest\n"
    )
    (ws / "dagpar.yaml").write_text(config)
    write_tree(ws, extra)
    return ws


def _junit(path: Path) -> dict[str, str]:
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        status = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                status = tag
        test_id = f"{case.get('file')}::{case.get('name')}"
        assert test_id not in cases
        cases[test_id] = status
    return cases


def _labelled(client: Any) -> list[Any]:
    # sparse: the list alone, without inspecting each container, which a run may be removing
    # at that very moment (the inspection would fail with "No such container").
    return list(client.containers.list(all=True, filters={"label": "dagpar.run"}, sparse=True))


@pytest.mark.usefixtures("in_docker")
def test_docker_gives_the_same_junit_as_local(
    dagpar_run: Callable[..., DagparResult], tmp_path: Path, client: Any
) -> None:
    ws = _shop(tmp_path)
    local, docker = tmp_path / "local.xml", tmp_path / "docker.xml"
    first = dagpar_run("check", "-C", ws, "-j", "2", "--junit-xml", local, "--json")
    assert first.exit_code == 0, first
    second = dagpar_run(
        "check", "-C", ws, "-j", "2", "--executor", "docker", "--junit-xml", docker, "--json"
    )
    assert second.exit_code == 0, second
    assert _junit(local) == _junit(docker)
    assert len(_junit(docker)) == 52
    wheres = {s["where"] for c in second.json()["checks"] for s in c["slices"]}
    assert wheres and all(w.startswith("docker@") for w in wheres), wheres
    assert _of_workspace(client, ws) == []


PROBE = """
from __future__ import annotations
from dagpar_cli import Directory, check, dag, field, object_type, parallel

@object_type
class Probes:
    workspace: Directory
    names: list[str] = field(parallel=True)

    @parallel
    def probe(self) -> Directory:
        out = dag.directory()
        ctr = (
            dag.container().from_("dagpar-test/base:latest")
            .with_directory("/out", out, writable=True)
        )
        for name in self.names:
            # /.dockerenv exists only inside a container; the host variable must not leak in.
            script = 'test -f /.dockerenv && echo "container ${PROBE_SECRET:-clean}" > "$2/$1"'
            ctr = ctr.with_exec(["sh", "-c", script, "sh", name, "/out"])
        return ctr.directory("/out")

@object_type
class Probe:
    source: Directory

    def probes(self) -> Probes:
        return Probes(workspace=self.source, names=["a", "b", "c", "d"])

    @check
    def probe(self) -> None:
        self.probes().probe()
"""


@pytest.mark.usefixtures("in_docker")
def test_slices_really_run_in_containers_without_the_host_environment(
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    client: Any,
) -> None:
    monkeypatch.setenv("PROBE_SECRET", "leaked")
    ws = write_tree(
        tmp_path / "probe",
        {"dagpar.yaml": "toolchains:\n  probe: {use: probe.py}\n", "probe.py": PROBE},
    )
    out = tmp_path / "out"
    result = dagpar_run(
        "call", "-C", ws, "-j", "2", "--executor", "docker", "probe", "probes", "probe", "-o", out
    )
    assert result.exit_code == 0, result
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        n: "container clean\n" for n in "abcd"
    }
    assert _of_workspace(client, ws) == []


@pytest.mark.usefixtures("in_docker")
def test_two_engines_both_receive_slices(
    dagpar_run: Callable[..., DagparResult], tmp_path: Path, client: Any
) -> None:
    from docker_engine2 import start_relay  # type: ignore[import-not-found]

    relay = start_relay()
    try:
        ws = _shop(tmp_path)
        result = dagpar_run(
            "check", "backend:test", "-C", ws, "-j", "4", "--executor", "docker",
            "--engine", "unix:///var/run/docker.sock#2", "--engine", f"{relay.url}#2", "--json",
        )  # fmt: skip
    finally:
        relay.stop()
    assert result.exit_code == 0, result
    checks = result.json()["checks"]
    wheres = [s["where"] for c in checks for s in c["slices"]]
    # The plan's four slices, and any tail a worker that finished early took over.
    assert len(wheres) >= 4
    assert {w.split("@", 1)[1] for w in wheres} == {"unix:///var/run/docker.sock", relay.url}
    # Every test once, from exactly one slice.
    ids = [t["id"] for c in checks for t in c["tests"]]
    assert len(ids) == len(set(ids)) == sum(s["tests"] for c in checks for s in c["slices"]) > 0
    assert _of_workspace(client, ws) == []


def test_sigint_during_a_docker_run_removes_every_container(
    in_docker: None, tmp_path: Path, client: Any
) -> None:
    hang = {
        "tests/test_hang.py": """
            import time

            def test_hangs():
                time.sleep(300)
        """
    }
    ws = _shop(tmp_path, **hang)
    junit = tmp_path / "junit.xml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagpar_cli", "check", "backend:test", "-C", str(ws), "-j", "3",
         "--executor", "docker", "--junit-xml", str(junit)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(_of_workspace(client, ws)) < 3:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the slices' containers never started"
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert _of_workspace(client, ws) == []
    cases = ET.parse(junit).getroot().findall(".//testcase")
    ids = [f"{c.get('file')}::{c.get('name')}" for c in cases]
    assert len(ids) == len(set(ids)) == 41
    hung = next(c for c in cases if c.get("name") == "test_hangs")
    error = hung.find("error")
    assert error is not None and "interrupted" in error.get("message", "")


def _of_workspace(client: Any, ws: Path) -> list[Any]:
    """The dagpar containers that mount *ws*: other runs (tests in parallel, other users) may
    share the engine, so a test counts only its own."""
    # The low-level listing: no inspect per container, which fails for one removed meanwhile.
    listed = client.api.containers(all=True, filters={"label": "dagpar.run"})
    return [c for c in listed if any(str(ws) in m.get("Source", "") for m in c.get("Mounts", []))]


def test_the_next_run_removes_the_containers_of_a_killed_dagpar(
    in_docker: None, tmp_path: Path, client: Any, dagpar_run: Callable[..., DagparResult]
) -> None:
    hang = {"tests/test_hang.py": "import time\n\ndef test_hangs():\n    time.sleep(300)\n"}
    ws = _shop(tmp_path, **hang)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagpar_cli", "check", "backend:test", "-C", str(ws),
         "--executor", "docker", "--filter", "tests/test_hang.py"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not any(c["State"] == "running" for c in _of_workspace(client, ws)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the slice's container never started"
            time.sleep(0.2)
        left = [c["Id"] for c in _of_workspace(client, ws)]
    finally:
        proc.kill()
        proc.communicate()
    assert left and proc.returncode == -signal.SIGKILL
    result = dagpar_run(
        "check", "backend:test", "-C", ws, "--executor", "docker", "--filter", "tests/test_cart.py"
    )
    assert result.exit_code == 0, result
    listed = client.api.containers(all=True, filters={"label": "dagpar.run"})
    remaining = {c["Id"] for c in listed}
    assert remaining.isdisjoint(left), "a container of the killed run is still there"


@pytest.mark.usefixtures("in_docker")
def test_unreachable_engine_exits_4_naming_it(
    dagpar_run: Callable[..., DagparResult], tmp_path: Path
) -> None:
    ws = _shop(tmp_path)
    result = dagpar_run(
        "check", "backend:test", "-C", ws, "--executor", "docker", "--engine", "tcp://127.0.0.1:9"
    )
    assert result.exit_code == 4, result
    assert "tcp://127.0.0.1:9" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.usefixtures("in_docker")
def test_missing_image_exits_4_naming_it(
    dagpar_run: Callable[..., DagparResult], tmp_path: Path
) -> None:
    ws = _shop(tmp_path)
    config = (
        (ws / "dagpar.yaml")
        .read_text()
        .replace("dagpar-test/base:latest", "dagpar-test/no-such-image:1", 1)
    )
    (ws / "dagpar.yaml").write_text(config)
    result = dagpar_run("check", "backend:test", "-C", ws, "--executor", "docker", "--json")
    assert result.exit_code == 4, result
    (check,) = result.json()["checks"]
    assert "dagpar-test/no-such-image:1" in check["error"]
    assert "\n" not in check["error"]
