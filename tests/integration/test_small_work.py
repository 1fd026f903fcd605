"""Small work on real pytest: a file too quick to pay for a second start-up runs in one slice."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult

pytestmark = pytest.mark.slow

# Four files of six quick tests: with history, each file is far shorter than a pytest start-up.
SUITE = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    **{
        f"tests/test_{name}.py": "\n".join(
            f"def test_{name}_{i}():\n    pass\n\n" for i in range(6)
        )
        for name in ("one", "two", "three", "four")
    },
}


def test_one_quick_file_with_history_runs_in_one_slice(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(SUITE)
    first = dagpar_run("check", "-C", ws, "-j", "4", "--json")
    assert first.exit_code == 0, first
    (run1,) = first.json()["checks"]
    assert len(run1["slices"]) == 4  # no history yet: one file per worker
    junit = ws / "junit.xml"
    second = dagpar_run(
        "check", "-C", ws, "-j", "4", "--filter", "tests/test_one.py", "--json",
        "--junit-xml", junit,
    )  # fmt: skip
    assert second.exit_code == 0, second
    (run2,) = second.json()["checks"]
    assert len(run2["slices"]) == 1
    assert sorted(t["name"] for t in run2["tests"]) == [f"test_one_{i}" for i in range(6)]
    assert {t["slice"] for t in run2["tests"]} == {1}
    cases = ET.parse(junit).getroot().iter("testcase")
    assert sorted(c.get("name", "") for c in cases) == [f"test_one_{i}" for i in range(6)]
