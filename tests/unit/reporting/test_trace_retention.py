"""``.dagpar/traces`` keeps the last runs within a size cap, instead of growing every run."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from projects import LINT_TOOLCHAIN  # type: ignore[import-not-found]

from dagpar_cli.reporting.trace_retention import TraceRetention, prune_traces
from dagpar_cli.testing import DagparResult

WORKSPACE = {
    "dagpar.yaml": "toolchains:\n  lint: {use: ci/lint.py}\n",
    "ci/lint.py": LINT_TOOLCHAIN,
    "a.txt": "a\n",
    "b.txt": "b\n",
}


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Record traces (the test session turns the SDK off by default)."""
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)


def _traces(ws: Path) -> set[str]:
    directory = ws / ".dagpar" / "traces"
    return {p.name for p in directory.iterdir()} if directory.is_dir() else set()


@pytest.mark.usefixtures("traced")
def test_25_runs_leave_the_traces_of_the_last_10(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(WORKSPACE)
    newest: list[str] = []
    for n in range(1, 26):
        before = _traces(ws)
        result = dagpar_run("check", "-C", ws, "-j", "2", "--json")
        assert result.exit_code == 0, result
        after = _traces(ws)
        (mine,) = after - before
        newest.append(mine)
        assert len(after) == min(n, 10), (n, sorted(after))
    # The ones kept are the last ten runs'.
    assert _traces(ws) == set(newest[-10:])


@pytest.mark.usefixtures("traced")
def test_the_size_cap_drops_the_oldest_traces(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = make_workspace(WORKSPACE)
    assert dagpar_run("check", "-C", ws).exit_code == 0
    (first,) = (ws / ".dagpar" / "traces").iterdir()
    # Room for two traces of this size, not three.
    monkeypatch.setenv("DAGPAR_TRACES_MAX_MB", str(first.stat().st_size * 2.5 / 1_000_000))
    for _ in range(4):
        assert dagpar_run("check", "-C", ws).exit_code == 0
        assert len(_traces(ws)) <= 2
    assert first.name not in _traces(ws)


@pytest.mark.usefixtures("traced")
def test_the_number_kept_is_configurable(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DAGPAR_TRACES_KEEP", "3")
    ws = make_workspace(WORKSPACE)
    for _ in range(5):
        assert dagpar_run("check", "-C", ws).exit_code == 0
    assert len(_traces(ws)) == 3


@pytest.mark.usefixtures("traced")
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DAGPAR_TRACES_KEEP", "0"),
        ("DAGPAR_TRACES_KEEP", "ten"),
        ("DAGPAR_TRACES_MAX_MB", "-1"),
        ("DAGPAR_TRACES_MAX_MB", "nan"),
    ],
)
def test_a_bad_limit_is_one_usage_error(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
) -> None:
    monkeypatch.setenv(name, value)
    ws = make_workspace(WORKSPACE)
    result = dagpar_run("check", "-C", ws)
    assert result.exit_code == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dagpar: error: {name}={value!r}"), result


def _trace(directory: Path, name: str, size: int, age: int) -> Path:
    path = directory / name
    path.write_bytes(b"x" * size)
    os.utime(path, ns=(1_000_000_000_000 - age, 1_000_000_000_000 - age))
    return path


def test_pruning_keeps_the_newest_and_only_touches_traces(tmp_path: Path) -> None:
    for n in range(6):
        _trace(tmp_path, f"run{n}.jsonl", 10, age=n)  # run0 is the newest
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "notes.txt")
    removed = prune_traces(tmp_path, TraceRetention(keep=3, max_bytes=10_000))
    assert sorted(p.name for p in removed) == ["run3.jsonl", "run4.jsonl", "run5.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "link.jsonl",
        "notes.txt",
        "run0.jsonl",
        "run1.jsonl",
        "run2.jsonl",
    ]


def test_the_current_trace_is_kept_even_over_the_cap(tmp_path: Path) -> None:
    current = _trace(tmp_path, "now.jsonl", 500, age=5)  # an older clock than the others
    for n in range(3):
        _trace(tmp_path, f"run{n}.jsonl", 40, age=n)
    prune_traces(tmp_path, TraceRetention(keep=10, max_bytes=100), current=current)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["now.jsonl"]


def test_kept_traces_are_the_last_runs_without_gaps(tmp_path: Path) -> None:
    _trace(tmp_path, "new.jsonl", 40, age=0)
    _trace(tmp_path, "big.jsonl", 100, age=1)
    _trace(tmp_path, "old.jsonl", 10, age=2)  # would fit, but is older than one that did not
    prune_traces(tmp_path, TraceRetention(keep=10, max_bytes=100))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.jsonl"]


def test_a_missing_directory_prunes_nothing(tmp_path: Path) -> None:
    assert prune_traces(tmp_path / "none", TraceRetention()) == []


def test_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TraceRetention.from_env({}) == TraceRetention(keep=10, max_bytes=200_000_000)
    assert TraceRetention.from_env(
        {"DAGPAR_TRACES_KEEP": " 4 ", "DAGPAR_TRACES_MAX_MB": "0.5"}
    ) == TraceRetention(keep=4, max_bytes=500_000)
