"""``--shard I/N``: CI nodes computing the same plan cover the suite exactly once between them."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from projects import three_runner_workspace  # type: ignore[import-not-found]

from dagpar_cli.testing import DagparResult


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return three_runner_workspace(tmp_path / "ws")


def _ids(result: DagparResult) -> list[str]:
    return [t["id"] for c in result.json()["checks"] for t in c["tests"]]


@pytest.mark.go
@pytest.mark.node
def test_four_shards_cover_every_test_exactly_once(
    workspace: Path, dagpar_run: Callable[..., DagparResult]
) -> None:
    whole = dagpar_run("check", "-C", workspace, "-j", "2", "--json")
    assert whole.exit_code in (1, 4), whole  # the fixtures fail on purpose
    everything = _ids(whole)
    assert len(everything) == len(set(everything)) > 60

    # Now with history (the run above recorded timings), and before it in a fresh copy.
    fresh = workspace.parent / "fresh"
    shutil.copytree(workspace, fresh, symlinks=True, ignore=shutil.ignore_patterns(".dagpar"))
    for root in (fresh, workspace):
        planned: Counter[str] = Counter()
        ran: Counter[str] = Counter()
        for i in range(1, 5):
            dry = dagpar_run(
                "check", "-C", root, "-j", "2", "--shard", f"{i}/4", "--dry-run", "--json"
            )
            assert dry.exit_code == 0, dry
            assert dry.json()["shard"] == f"{i}/4"
            planned.update(t for c in dry.json()["checks"] for s in c["slices"] for t in s["tests"])
            result = dagpar_run("check", "-C", root, "-j", "2", "--shard", f"{i}/4", "--json")
            assert result.exit_code in (0, 1, 4), result
            ran.update(_ids(result))
        assert set(ran) == set(everything), root
        assert max(ran.values()) == 1, [t for t, n in ran.items() if n > 1]
        assert planned == ran

    # Each node left its samples in its own file; merging them gives the next run its history.
    shard_files = sorted((fresh / ".dagpar").glob("timings-shard-*-of-4.json"))
    assert len(shard_files) == 4
    merged = dagpar_run("timings", "merge", "-C", fresh, *shard_files)
    assert merged.exit_code == 0, merged
    shown = dagpar_run("timings", "show", "-C", fresh, "--limit", "500", "--json")
    assert shown.exit_code == 0, shown
    assert {row["instance"] for row in shown.json()} == {"api", "web", "svc"}
    assert len(shown.json()) > 12


def test_shard_is_detected_from_ci_variables(
    workspace: Path, dagpar_run: Callable[..., DagparResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIRCLE_NODE_INDEX", "1")
    monkeypatch.setenv("CIRCLE_NODE_TOTAL", "3")
    result = dagpar_run("check", "api:test", "-C", workspace, "--dry-run", "--json")
    assert result.exit_code == 0, result
    assert result.json()["shard"] == "2/3"
    assert "shard 2/3 (from CIRCLE_NODE_INDEX/CIRCLE_NODE_TOTAL)" in result.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5/4", "between 1 and 4"),
        ("0/4", "between 1 and 4"),
        ("2", "expected I/N"),
        ("a/b", "expected I/N"),
    ],
)
def test_bad_shards_are_usage_errors(
    workspace: Path, dagpar_run: Callable[..., DagparResult], value: str, message: str
) -> None:
    result = dagpar_run("check", "-C", workspace, "--shard", value)
    assert result.exit_code == 2, result
    assert f"--shard {value!r}" in result.stderr and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
