"""The scheduler loop on real runs: run 1 records per-test timings, run 2 splits by them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from dagpar_cli.testing import DagparResult

# One slow file of eight 1.5-second tests and four quick files: a split by count leaves the slow
# file whole in one slice; with history the planner cuts it into its tests.
UNEVEN = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "tests/test_slow.py": "import time\n\n"
    + "\n".join(f"def test_slow_{i}():\n    time.sleep(1.5)\n\n" for i in range(8)),
    **{
        f"tests/test_quick_{k}.py": "import time\n\n"
        + "\n".join(f"def test_quick_{i}():\n    time.sleep(0.05)\n\n" for i in range(3))
        for k in range(4)
    },
}


def _walls(check: dict[str, Any]) -> tuple[float, float]:
    """(predicted, actual) wall seconds of a check's slices."""
    slices = check["slices"]
    predicted = float(check["predicted_wall_seconds"])
    start = min(s["started"] for s in slices)
    actual = max(s["started"] + s["seconds"] for s in slices) - start
    return predicted, actual


@pytest.mark.serial
def test_second_run_is_faster_and_as_predicted(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(UNEVEN)
    # The first run is a plain split by count: no history, and no hand-over to even it out.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGPAR_NO_HANDOVER", "1")
        first = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert first.exit_code == 0, first
    second = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert second.exit_code == 0, second
    (run1,) = first.json()["checks"]
    (run2,) = second.json()["checks"]
    assert len(run1["tests"]) == len(run2["tests"]) == 20

    _, actual1 = _walls(run1)
    predicted2, actual2 = _walls(run2)
    # The slow file was cut into its tests, across both slices.
    slow_slices = {t["slice"] for t in run2["tests"] if "test_slow" in t["id"]}
    assert len(slow_slices) >= 2
    assert actual2 < actual1, (actual1, actual2)
    assert abs(actual2 - predicted2) <= 0.15 * predicted2, (predicted2, actual2)
