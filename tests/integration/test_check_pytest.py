"""``dagpar check`` on real pytest suites: the example, and JUnit that agrees with pytest."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path

import junitparser

from dagpar_cli.testing import DagparResult

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shop"

MIXED = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "tests/test_math.py": """
        import pytest

        def test_adds():
            assert 1 + 1 == 2

        def test_fails():
            assert 2 * 2 == 5, "arithmetic is broken"

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass

        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_param(n):
            assert n != 2
    """,
    "tests/test_classes.py": """
        import pytest

        class TestThing:
            def test_ok(self):
                pass

            def test_error(self, missing_fixture):
                pass

        @pytest.fixture
        def broken():
            raise RuntimeError("fixture exploded")

        def test_setup_error(broken):
            pass
    """,
    "tests/sub/test_more.py": """
        def test_more_1():
            pass

        def test_more_2():
            raise ValueError("nope")
    """,
}


def _pytest_outcomes(root: Path, tmp_path: Path) -> dict[str, str]:
    """What pytest itself reports for *root*, as node id -> status (from its own JUnit)."""
    report = tmp_path / "pytest-own.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-o",
            "junit_family=xunit1",
            f"--junit-xml={report}",
            "-q",
        ],
        cwd=root,
        capture_output=True,
        check=False,
    )
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        file = case.get("file", "")
        module = file[:-3].replace("/", ".")
        classname = case.get("classname", "")
        inner = classname[len(module) :].lstrip(".")
        parts = [file, *([p for p in inner.split(".") if p]), case.get("name", "")]
        status = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                status = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                break
        outcomes["::".join(parts)] = status
    return outcomes


def _dagpar_outcomes(junit: Path) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    xml = junitparser.JUnitXml.fromfile(str(junit))
    for suite in xml:
        for case in suite:
            test_id = f"{case._elem.get('file')}::{case.name}"
            assert test_id not in outcomes, f"{test_id} reported twice"
            status = "passed"
            if case.result:
                kind = type(case.result[0]).__name__
                status = {"Failure": "failed", "Error": "error", "Skipped": "skipped"}[kind]
            outcomes[test_id] = status
    return outcomes


def test_merged_junit_agrees_with_pytest(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    ws = make_workspace(MIXED)
    junit = tmp_path / "junit.xml"
    result = dagpar_run("check", "-C", ws, "-j", "3", "--junit-xml", junit)
    assert result.exit_code == 1, result
    assert "3 slices" in result.stdout, result
    mine = _dagpar_outcomes(junit)
    theirs = _pytest_outcomes(ws, tmp_path)
    assert mine == theirs
    assert sorted(set(mine.values())) == ["error", "failed", "passed", "skipped"]
    # Failures carry pytest's message, so they are readable in any JUnit viewer.
    text = junit.read_text()
    assert "arithmetic is broken" in text
    assert "fixture exploded" in text


def test_example_check_passes_in_several_slices(
    dagpar_run: Callable[..., DagparResult], tmp_path: Path
) -> None:
    import shutil

    ws = tmp_path / "shop"
    shutil.copytree(EXAMPLE, ws, ignore=shutil.ignore_patterns(".dagpar", "__pycache__"))
    result = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert result.exit_code == 0, result
    data = result.json()
    backend = next(c for c in data["checks"] if c["name"] == "backend:test")
    assert len(backend["slices"]) == 2
    assert len(backend["tests"]) == 40
    assert {t["status"] for t in backend["tests"]} == {"passed", "skipped"}

    # A fresh copy: with the first run's history the planner may rightly keep this small suite
    # in one slice, and how many it plans then depends on how fast this machine ran it.
    fresh = tmp_path / "fresh"
    shutil.copytree(EXAMPLE, fresh, ignore=shutil.ignore_patterns(".dagpar", "__pycache__"))
    chained = dagpar_run("call", "-C", fresh, "-j", "2", "--json", "backend", "test-files", "test")
    assert chained.exit_code == 0, chained
    call = chained.json()["checks"][0]
    assert len(call["slices"]) == 2
    assert sorted(t["id"] for t in call["tests"]) == sorted(t["id"] for t in backend["tests"])
