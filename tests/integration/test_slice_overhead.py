"""A slice's overhead that grows with its tests is not a start-up: such a suite is still split.

pytest's session end costs time per test (garbage collection, the JUnit report, plugins that
walk every item). The timing store books it with the slice's start-up; were it all start-up, a
suite of quick tests would look too small to pay for a second slice, though two slices each pay
only half of that session end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult

pytestmark = pytest.mark.slow

#: Seconds the session end costs per test the session ran: on a loaded machine a slice's fixed
#: start-up alone may take 4 s, and half of the suite's session end must clearly exceed it.
PER_TEST = 0.08

# Files of unequal sizes, so that the first run's two slices (cut by count) differ in tests.
SIZES = {"big": 120, "mid": 40, "small": 20}

SUITE = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "tests/conftest.py": f"""
import time


def pytest_sessionfinish(session):
    # Work at the session's end that grows with the tests it ran.
    time.sleep({PER_TEST} * len(session.items))
""",
    **{
        f"tests/test_{name}.py": f"""
import pytest


@pytest.mark.parametrize("i", range({size}))
def test_{name}(i):
    pass
"""
        for name, size in SIZES.items()
    },
}


def test_a_session_end_that_grows_with_the_tests_is_split_across_the_workers(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(SUITE)
    first = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert first.exit_code == 0, first
    (run1,) = first.json()["checks"]
    sizes = sorted(s["tests"] for s in run1["slices"])
    assert len(sizes) == 2 and sizes[1] >= 2 * sizes[0], run1["slices"]  # no history: by count
    # With history the tests' own seconds are tiny, but each slice's session end takes
    # PER_TEST per test: two slices take half as long.
    plan = dagpar_run("check", "-C", ws, "-j", "2", "--dry-run", "--json")
    assert plan.exit_code == 0, plan
    (planned,) = plan.json()["checks"]
    assert len(planned["slices"]) == 2, planned
    second = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert second.exit_code == 0, second
    (run2,) = second.json()["checks"]
    assert len(run2["slices"]) == 2, run2["slices"]
    assert len(run2["tests"]) == sum(SIZES.values())
    assert all(t["status"] == "passed" for t in run2["tests"])
