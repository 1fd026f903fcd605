"""``dag``: what toolchain code asks of dagpar. Outside a run it stays out of the way; inside a
split call it names the slice and turns ``dag.parallel.task(item)`` blocks into reported tests."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

import pytest

from dagpar_cli import dag
from dagpar_cli.config import ToolchainConfig
from dagpar_cli.model import Item, SlicePlan, TestResult
from dagpar_cli.runtime.context import CallContext, Runtime, SliceContext, enter_slice, leave_slice
from dagpar_cli.testing import DagparResult

if TYPE_CHECKING:
    from dagpar_cli.discovery import Toolchain


def test_outside_a_run_there_is_no_slice() -> None:
    assert dag.current_slice() is None


def test_outside_a_run_directory_is_a_fresh_empty_directory() -> None:
    first, second = dag.directory(), dag.directory()
    try:
        assert first.host_path.is_dir() and first.entries() == []
        assert first.host_path != second.host_path
    finally:
        shutil.rmtree(first.host_path)
        shutil.rmtree(second.host_path)


def test_outside_a_run_a_task_only_runs_its_block() -> None:
    ran = []
    with dag.parallel.task("src/a.py"):
        ran.append("a")
    with dag.parallel.task(["pkg", "TestX"]):
        ran.append("b")
    with pytest.raises(KeyError), dag.parallel.task("src/c.py"):
        raise KeyError("c")
    assert ran == ["a", "b"]


TASKS = """
from __future__ import annotations
import json, os
from dagpar_cli import Directory, check, dag, field, object_type, parallel

@object_type
class Jobs:
    workspace: Directory
    jobs: list[str] = field(parallel=True)

    @parallel
    def run(self) -> None:
        info = dag.current_slice()
        report = info.report_dir / "seen.json"
        report.write_text(json.dumps({"jobs": self.jobs}))
        with open(os.path.join(os.environ["SEEN"], f"{info.index}-{info.total}"), "w") as out:
            json.dump({"jobs": self.jobs, "report_dir": str(info.report_dir)}, out)
        for job in self.jobs:
            try:
                with dag.parallel.task(job):
                    if job.startswith("bad"):
                        raise RuntimeError(f"{job} broke")
            except RuntimeError:
                pass  # the task reported the failure; go on with the next job
        if os.environ.get("STRAY"):
            with dag.parallel.task("not-mine"):
                pass

@object_type
class Tasks:
    source: Directory

    @check
    def run(self) -> None:
        Jobs(workspace=self.source, jobs=["ok1", "bad1", "ok2", "ok3"]).run()
"""


@pytest.fixture
def tasks(
    make_workspace: Callable[[Mapping[str, str]], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Path, Path]:
    seen = tmp_path / "seen"
    seen.mkdir()
    monkeypatch.setenv("SEEN", str(seen))
    ws = make_workspace(
        {"dagpar.yaml": "toolchains:\n  t: {use: ci/tasks.py}\n", "ci/tasks.py": TASKS}
    )
    return ws, seen


def test_inside_a_split_call_each_slice_knows_its_place_and_its_items(
    tasks: tuple[Path, Path], dagpar_run: Callable[..., DagparResult]
) -> None:
    ws, seen = tasks
    result = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert result.exit_code == 1, result
    slices = {p.name: json.loads(p.read_text()) for p in seen.iterdir()}
    assert sorted(slices) == ["1-2", "2-2"]
    assert sorted(j for s in slices.values() for j in s["jobs"]) == ["bad1", "ok1", "ok2", "ok3"]
    report_dirs = {s["report_dir"] for s in slices.values()}
    assert len(report_dirs) == 2  # a private report directory per slice


def test_each_task_is_reported_as_one_test_with_its_outcome(
    tasks: tuple[Path, Path], dagpar_run: Callable[..., DagparResult]
) -> None:
    ws, _ = tasks
    result = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert result.exit_code == 1, result
    tests = {t["id"]: t for t in result.json()["checks"][0]["tests"]}
    assert {k: t["status"] for k, t in tests.items()} == {
        "ok1::run": "passed",
        "bad1::run": "failed",
        "ok2::run": "passed",
        "ok3::run": "passed",
    }
    assert tests["bad1::run"]["message"] == "RuntimeError: bad1 broke"


def test_a_task_for_an_item_of_another_slice_is_an_error(
    tasks: tuple[Path, Path],
    dagpar_run: Callable[..., DagparResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws, _ = tasks
    monkeypatch.setenv("STRAY", "1")
    result = dagpar_run("check", "-C", ws, "-j", "1", "--json")
    assert result.exit_code == 1, result
    (only,) = result.json()["checks"][0]["slices"]
    assert "'not-mine' is not an item of this slice" in only["error"]


class _CountedItems(tuple[Item, ...]):
    """A slice's items that count how often they are walked."""

    walks = 0

    def __iter__(self) -> Iterator[Item]:
        type(self).walks += 1
        return super().__iter__()


class _Recorder:
    """The runtime a slice reports to: keeps every result, opens no span."""

    def __init__(self) -> None:
        self.results: list[TestResult] = []

    def report_tests(self, check: str, results: Sequence[TestResult]) -> None:
        self.results.extend(results)

    def task_span(self, slice: SliceContext, item_key: str) -> AbstractContextManager[object]:
        return nullcontext()


def test_tasks_in_a_large_slice_walk_its_items_once(tmp_path: Path) -> None:
    # A toolchain reporting each of a slice's items must not pay for the whole slice per item.
    items = _CountedItems(Item((f"job{k}",), f"job{k}") for k in range(2000))
    runtime = _Recorder()
    toolchain = cast("Toolchain", SimpleNamespace(config=ToolchainConfig(instance="j", use="x")))
    call = CallContext(runtime=cast(Runtime, runtime), name="j:run", toolchain=toolchain)
    ctx = SliceContext(
        call=call,
        plan=SlicePlan(index=1, items=items, predicted_seconds=1.0),
        total=1,
        function="run",
        report_dir=tmp_path,
        env={},
        deadline=None,
        runner=None,
        prefix="",
        narrowed=False,
    )
    _CountedItems.walks = 0
    token = enter_slice(ctx)
    try:
        for k in range(2000):
            with dag.parallel.task(f"job{k}"):
                pass
        with (
            pytest.raises(ValueError, match="not an item of this slice"),
            dag.parallel.task("job-unknown"),
        ):
            pass
    finally:
        leave_slice(token)
    assert _CountedItems.walks == 1
    assert [r.path for r in runtime.results] == [f"job{k}" for k in range(2000)]
