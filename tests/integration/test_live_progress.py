"""Live progress: a running pytest slice says how many of its tests are done before it ends."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult

#: A plugin, loaded with DAGPAR_PLUGINS the way a user tries one out, that logs every progress
#: event it is told of.
LISTENER = """
    import os

    from dagpar_cli import hookimpl


    @hookimpl
    def dagpar_slice_progress(check, slice, done):
        with open(os.environ["PROGRESS_LOG"], "a") as log:
            log.write(f"{check} {slice.index} {done}\\n")
"""

SUITE = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "tests/test_live.py": """
        import os
        import time

        def test_first():
            pass

        def test_second():
            # Passes only once dagpar, while this very slice still runs, has said that one test
            # of it is done.
            log = os.environ["PROGRESS_LOG"]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if os.path.exists(log) and any(
                    line.split()[-1] == "1" for line in open(log).read().splitlines()
                ):
                    return
                time.sleep(0.05)
            raise AssertionError("no live progress while the slice ran")

        def test_third():
            pass
    """,
}


def test_a_running_slice_reports_its_tests_done_before_it_ends(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "progress_listener.py").write_text(textwrap.dedent(LISTENER))
    monkeypatch.syspath_prepend(str(plugins))
    monkeypatch.setenv("DAGPAR_PLUGINS", "progress_listener")
    log = tmp_path / "progress.log"
    monkeypatch.setenv("PROGRESS_LOG", str(log))
    ws = make_workspace(SUITE)

    result = dagpar_run("check", "-C", ws, "-j", "1", "--json")

    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    assert sorted((t["name"], t["status"]) for t in check["tests"]) == [
        ("test_first", "passed"),
        ("test_second", "passed"),
        ("test_third", "passed"),
    ]
    events = [line.split() for line in log.read_text().splitlines()]
    counts = [int(done) for _, index, done in events]
    assert counts[0] == 1  # seen while test_second waited for it
    assert counts == sorted(set(counts))  # it only grows, each count once
    assert all(index == "1" for _, index, _ in events)


@pytest.fixture
def in_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    from docker_images import build_base_image, run_toolchains_in_images  # type: ignore[import-not-found]

    build_base_image()
    run_toolchains_in_images(monkeypatch)


@pytest.mark.docker
def test_a_running_slice_in_a_warm_docker_container_reports_progress_too(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    in_docker: None,
) -> None:
    # The slice's report directory in the container is its warm container's exchange: dagpar
    # reads the runner's events there while the slice runs. The log is in the workspace, which
    # the container sees (read-only, live).
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "progress_listener.py").write_text(textwrap.dedent(LISTENER))
    monkeypatch.syspath_prepend(str(plugins))
    monkeypatch.setenv("DAGPAR_PLUGINS", f"{os.environ['DAGPAR_PLUGINS']},progress_listener")
    suite = dict(SUITE)
    suite["tests/test_live.py"] = suite["tests/test_live.py"].replace(
        'os.environ["PROGRESS_LOG"]',
        'os.path.join(os.path.dirname(os.path.dirname(__file__)), "progress.log")',
    )
    suite["dagpar.yaml"] = """
        toolchains:
          suite:
            use: pytest
            source: .
            image: dagpar-test/base:latest
    """
    ws = make_workspace(suite)
    log = ws / "progress.log"
    monkeypatch.setenv("PROGRESS_LOG", str(log))

    result = dagpar_run("check", "-C", ws, "-j", "1", "--executor", "docker", "--json")

    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    assert sorted((t["name"], t["status"]) for t in check["tests"]) == [
        ("test_first", "passed"),
        ("test_second", "passed"),
        ("test_third", "passed"),
    ]
    counts = [int(line.split()[-1]) for line in log.read_text().splitlines()]
    assert counts[0] == 1  # seen while test_second waited for it
