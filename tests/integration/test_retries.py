"""``--retries``: failed tests rerun in a fresh slice; a pass on a rerun is reported flaky."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult

FLAKY = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "tests/test_flaky.py": """
        import os
        from pathlib import Path

        def test_fails_once_then_passes():
            # The marker file survives between attempts, so only the first attempt fails.
            marker = Path(os.environ["FLAKY_DIR"]) / "ran-once"
            if not marker.exists():
                marker.write_text("1")
                raise AssertionError("first attempt fails")

        def test_always_fails():
            assert False, "broken for good"

        def test_passes():
            pass
    """,
    "tests/test_other.py": """
        def test_other():
            pass
    """,
}


@pytest.fixture(autouse=True)
def flaky_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the flaky test remembers that it already ran once."""
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("FLAKY_DIR", str(state))
    return state


def test_flaky_test_is_reported_flaky_with_retries(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    ws = make_workspace(FLAKY)
    junit = tmp_path / "junit.xml"
    result = dagpar_run(
        "check", "-C", ws, "-j", "2", "--retries", "2", "--json", "--junit-xml", junit
    )
    assert result.exit_code == 1, result  # test_always_fails still fails
    tests = {t["name"]: t for t in result.json()["checks"][0]["tests"]}
    flaky = tests["test_fails_once_then_passes"]
    assert flaky["status"] == "passed" and flaky["flaky"] is True
    assert [a["status"] for a in flaky["attempts"]] == ["failed"]
    broken = tests["test_always_fails"]
    assert broken["status"] == "failed" and len(broken["attempts"]) == 2
    assert tests["test_passes"]["status"] == "passed" and "attempts" not in tests["test_passes"]
    assert "flaky" in result.stderr.lower()
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert cases["test_fails_once_then_passes"].find("flakyFailure") is not None
    assert cases["test_fails_once_then_passes"].find("failure") is None
    assert len(cases["test_always_fails"].findall("rerunFailure")) == 2
    assert len(cases) == 4


def test_without_retries_the_flaky_test_fails(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    ws = make_workspace(FLAKY)
    result = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert result.exit_code == 1, result
    tests = {t["name"]: t for t in result.json()["checks"][0]["tests"]}
    assert tests["test_fails_once_then_passes"]["status"] == "failed"
    assert "attempts" not in tests["test_fails_once_then_passes"]


def test_a_rerun_that_passes_everything_makes_the_check_pass(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    files = dict(FLAKY)
    files["tests/test_flaky.py"] = files["tests/test_flaky.py"].split("def test_always_fails")[0]
    ws = make_workspace(files)
    result = dagpar_run("check", "-C", ws, "-j", "2", "--retries", "1")
    assert result.exit_code == 0, result
