"""``dagpar check`` on Go gives ``go test``'s verdict when tests print ``--- FAIL:`` lines.

``tests/data/projects/go-phantom`` tests a small suite framework by running inner suites on a
mock T that print ``=== RUN`` and ``--- FAIL:`` lines; ``go test -json`` reads those as events
of failing tests, while ``go test ./...`` says ok.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult

pytestmark = pytest.mark.go

PROJECT = Path(__file__).resolve().parents[1] / "data" / "projects" / "go-phantom"
GO_ENV = {"GOPROXY": "off", "GOTOOLCHAIN": "local", "GOFLAGS": ""}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return Path(shutil.copytree(PROJECT, tmp_path / "ws"))


def test_go_test_passes_the_fixture(workspace: Path) -> None:
    proc = subprocess.run(
        ["go", "test", "./..."],
        cwd=workspace,
        env={**os.environ, **GO_ENV},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_printed_failures_do_not_fail_the_check(
    workspace: Path, dagpar_run: Callable[..., DagparResult]
) -> None:
    result = dagpar_run("check", "-C", workspace, "--json")
    assert result.exit_code == 0, result
    statuses = {t["id"]: t["status"] for c in result.json()["checks"] for t in c["tests"]}
    assert statuses == {
        "minisuite::TestBefore": "passed",
        "minisuite::TestReportsFailures": "passed",
        "minisuite::TestPrintsInSubtests": "passed",
        "minisuite::TestSkipped": "skipped",
        "minisuite::TestAfter": "passed",
    }


def test_printed_failures_of_selected_subtests_do_not_fail_the_call(
    workspace: Path, dagpar_run: Callable[..., DagparResult]
) -> None:
    result = dagpar_run(
        "check",
        "-C",
        workspace,
        "--json",
        "--filter",
        "minisuite::TestPrintsInSubtests/level/deeper",
    )
    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    assert [(t["id"], t["status"]) for t in check["tests"]] == [
        ("minisuite::TestPrintsInSubtests/level/deeper", "passed")
    ]
