"""What reaches a container's environment: the toolchain's variables, not the caller's.

The pytest runner puts its selection plugin on ``PYTHONPATH`` and, for a local slice, keeps the
caller's ``PYTHONPATH`` after it; a container must not get the caller's part (host paths, which
may even name other code inside the image).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_images import docker_client, run_toolchains_in_images  # type: ignore[import-not-found]

from dagpar_cli.testing import DagparResult, write_tree

pytestmark = pytest.mark.docker

#: A directory on the caller's PYTHONPATH only.
HOST_ONLY = "/nonexistent/dagpar-host-only"
#: The host's first process: a container has its own (the engine's init).
HOST_INIT = Path("/proc/1/comm").read_text(encoding="utf-8").strip()

SUITE = {
    "dagpar.yaml": (
        "toolchains:\n  py: {use: pytest, source: ., image: 'dagpar-test/base:latest'}\n"
    ),
    "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
    "tests/test_env.py": f"""
        import os

        def test_the_callers_pythonpath_reaches_local_slices_only():
            path = os.environ.get("PYTHONPATH", "")
            with open("/proc/1/comm") as init:
                in_container = init.read().strip() != {HOST_INIT!r}
            assert ({HOST_ONLY!r} in path) is not in_container, (in_container, path)
    """,
}


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    yield from docker_client()


@pytest.fixture
def in_docker(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    run_toolchains_in_images(monkeypatch, HOST_ONLY)


@pytest.mark.usefixtures("in_docker")
@pytest.mark.parametrize("executor", ["local", "docker"])
def test_the_callers_pythonpath_stays_out_of_containers(
    dagpar_run: Callable[..., DagparResult], tmp_path: Path, executor: str
) -> None:
    ws = write_tree(tmp_path / "ws", SUITE)
    result = dagpar_run("check", "-C", ws, "--executor", executor, "--json")
    assert result.exit_code == 0, str(result)
    (check,) = result.json()["checks"]
    assert [t["status"] for t in check["tests"]] == ["passed"], result
    wheres = {s["where"] for s in check["slices"]}
    assert all(w.startswith("docker@") for w in wheres) is (executor == "docker"), wheres


MATRIX_SUITE = {
    "dagpar.yaml": """
        toolchains:
          py:
            use: pytest
            source: .
            env: {SHARED: "from dagpar.yaml"}
            matrix:
              image: ["dagpar-test/base:latest", "dagpar-test/base:matrix-b"]
              env: [{FLAVOUR: a}, {FLAVOUR: b}]
    """,
    "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
    "tests/test_env.py": """
        import os

        def test_the_toolchain_env_reaches_the_container():
            assert os.environ["SHARED"] == "from dagpar.yaml"
            assert os.environ["FLAVOUR"] in ("a", "b")
    """,
}


@pytest.mark.usefixtures("in_docker")
def test_a_matrix_over_images_and_env_runs_in_containers(
    client: Any, dagpar_run: Callable[..., DagparResult], tmp_path: Path
) -> None:
    client.images.get("dagpar-test/base:latest").tag("dagpar-test/base", "matrix-b")
    ws = write_tree(tmp_path / "ws", MATRIX_SUITE)
    result = dagpar_run("check", "-C", ws, "--executor", "docker", "-j", "2", "--json")
    assert result.exit_code == 0, str(result)
    (check,) = result.json()["checks"]
    combos = sorted((t["matrix"]["image"], t["matrix"]["env"]) for t in check["tests"])
    assert combos == sorted(
        (image, f"FLAVOUR={f}")
        for image in ("dagpar-test/base:latest", "dagpar-test/base:matrix-b")
        for f in "ab"
    )
    assert all(s["where"].startswith("docker@") for s in check["slices"])
