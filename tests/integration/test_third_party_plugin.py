"""A runner plugin installed from its own distribution is found through the entry points."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dagpar_cli.testing import write_tree

PACKAGE = Path(__file__).resolve().parents[1] / "data" / "plugin-package"


def test_an_installed_out_of_tree_plugin_runs_its_tests(tmp_path: Path) -> None:
    # Build from a copy: building writes into the package's directory.
    package = tmp_path / "package"
    shutil.copytree(PACKAGE, package)
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         str(package)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    ws = write_tree(
        tmp_path / "ws",
        {
            "dagpar.yaml": "toolchains:\n  scripts: {source: checks}\n",
            "checks/a.sh": "exit 0\n",
            "checks/b.sh": "exit 3\n",
            "checks/sub/c.sh": "true\n",
        },
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]),
    }
    listed = subprocess.run(
        [sys.executable, "-m", "dagpar_cli", "functions", "-C", str(ws)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "scripts  (scripts, source: checks)" in listed.stdout
    run = subprocess.run(
        [sys.executable, "-m", "dagpar_cli", "check", "-C", str(ws), "-j", "2", "--json"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    (check,) = json.loads(run.stdout)["checks"]
    assert {t["id"]: t["status"] for t in check["tests"]} == {
        "checks/a.sh::run": "passed",
        "checks/b.sh::run": "failed",
        "checks/sub/c.sh::run": "passed",
    }
    assert len(check["slices"]) == 2
