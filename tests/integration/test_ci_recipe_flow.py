"""The GitLab recipe's scripts, run for real: two shard jobs and the merge job, each in its own copy
of a pytest workspace (as on separate CI machines), with only the reports passed between them."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import junitparser
import pytest
import yaml

from dagpar_cli.testing import DagparResult

pytestmark = pytest.mark.slow

RECIPE = Path(__file__).resolve().parents[2] / "docs" / "ci" / "gitlab-ci.yml"

SUITE = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    **{
        f"tests/test_{name}.py": f"""
            import pytest

            @pytest.mark.parametrize("n", range(3))
            def test_{name}(n):
                assert not ({name!r} == "d" and n == 1), "d1 is broken"
        """
        for name in "abcdef"
    },
}


def _script(job: dict[str, object]) -> str:
    lines = job["script"]
    assert isinstance(lines, list)
    # dagpar is installed here already; everything else runs as the CI would run it.
    return "\n".join(line for line in lines if "pip install" not in line)


def _run_job(script: str, cwd: Path, **env: str) -> int:
    full_env = {**os.environ, **env}
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "command not found" not in proc.stderr, proc.stderr
    return proc.returncode


def _junit_cases(path: Path) -> list[str]:
    return [
        f"{case._elem.get('file')}::{case.name}"
        for suite in junitparser.JUnitXml.fromfile(str(path))
        for case in suite
    ]


def test_two_shards_and_the_merge_job_cover_every_test_once(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    assert shutil.which("dagpar"), "the dagpar command is installed (pip install -e .)"
    recipe = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    source = make_workspace(SUITE)
    everything = sorted(f"tests/test_{x}.py::test_{x}[{n}]" for x in "abcdef" for n in range(3))

    codes = {}
    artifacts = tmp_path / "artifacts"
    for node in ("1", "2"):
        machine = tmp_path / f"node-{node}"
        shutil.copytree(source, machine)
        codes[node] = _run_job(
            _script(recipe["dagpar"]), machine, CI_NODE_INDEX=node, CI_NODE_TOTAL="2"
        )
        shutil.copytree(machine / "reports", artifacts / "reports", dirs_exist_ok=True)
    # Exactly one node ran the broken test, and its job failed after keeping its timings.
    assert sorted(codes.values()) == [0, 1], codes
    assert sorted(p.name for p in (artifacts / "reports").iterdir()) == [
        "junit-1.xml",
        "junit-2.xml",
        "timings-shard-1-of-2.json",
        "timings-shard-2-of-2.json",
    ]
    per_node = [_junit_cases(artifacts / "reports" / f"junit-{n}.xml") for n in ("1", "2")]
    assert per_node[0] and per_node[1], "both shards ran something"

    merger = tmp_path / "merge"
    shutil.copytree(source, merger)
    shutil.copytree(artifacts / "reports", merger / "reports")
    assert _run_job(_script(recipe["dagpar-merge"]), merger) == 0
    merged = _junit_cases(merger / "junit.xml")
    assert sorted(merged) == everything, "every test exactly once"

    # The merged store knows every test file, so the next pipeline plans from history.
    shown = dagpar_run("timings", "show", "-C", merger, "--json", "--limit", "100")
    assert shown.exit_code == 0, shown
    assert len(shown.json()) >= 6, shown.stdout
