"""Split calls on real subprocesses: slices run concurrently, keep order, merge results."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from projects import SMALLEST_FIRST_PLANNER as SMALLEST_FIRST  # type: ignore[import-not-found]

from dagpar_cli.testing import DagparResult, write_tree

SLEEPER = """
from __future__ import annotations
import json, os, time
from dagpar_cli import Directory, check, dag, field, object_type

@object_type
class Naps:
    workspace: Directory
    items: list[str] = field()  # +parallel
    label: str = "unchanged"

    # +parallel
    def run(self) -> None:
        # Record what this slice saw, for the test to inspect.
        info = dag.current_slice()
        name = f"{info.index}-{info.total}" if info else "unsplit"
        log = os.path.join(os.environ["NAP_LOG"], name)
        with open(log, "w") as out:
            json.dump({"items": self.items, "label": self.label, "started": time.time()}, out)
        ctr = dag.container().with_directory("/w", self.workspace).with_workdir("/w")
        for item in self.items:
            ctr = ctr.with_exec(["sleep", item.split("-")[1]])
        ctr.sync()

    def naps(self) -> None:
        self.run()

@object_type
class Sleeper:
    source: Directory
    count: int = 8
    seconds: str = "1"

    def naps(self) -> Naps:
        items = [f"nap{i:02d}-{self.seconds}" for i in range(self.count)]
        return Naps(workspace=self.source, items=items, label="kept")

    # +check
    def sleep(self) -> None:
        self.naps().run()
"""


@pytest.fixture
def nap_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where each slice of the sleeper toolchain records what it saw (``NAP_LOG``)."""
    log = tmp_path / "log"
    log.mkdir()
    monkeypatch.setenv("NAP_LOG", str(log))
    return log


def _workspace(make: Callable[[Mapping[str, str]], Path], **overrides: object) -> Path:
    extra = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in overrides.items())
    return make(
        {
            "dagpar.yaml": "toolchains:\n  sleeper:\n    use: ci/sleeper.py\n" + extra,
            "ci/sleeper.py": SLEEPER,
        }
    )


@pytest.mark.serial
def test_four_workers_are_much_faster_than_one(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    nap_log: Path,
) -> None:
    ws = _workspace(make_workspace)
    seconds = {}
    for j in ("1", "4"):
        start = time.monotonic()
        result = dagpar_run("check", "-C", ws, "-j", j)
        seconds[j] = time.monotonic() - start
        assert result.exit_code == 0, result
    # 8 one-second items: ~8 s on one worker, ~2 s on four.
    assert seconds["4"] / seconds["1"] < 0.45, seconds


def test_slices_keep_parent_order_and_copy_other_fields(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    nap_log: Path,
) -> None:
    ws = _workspace(make_workspace, count=7, seconds="0")
    result = dagpar_run("call", "-C", ws, "-j", "3", "sleeper", "naps", "run")
    assert result.exit_code == 0, result
    seen = [json.loads(p.read_text()) for p in sorted(nap_log.iterdir())]
    assert len(seen) == 3
    assert all(s["label"] == "kept" for s in seen)
    everything = [item for s in seen for item in s["items"]]
    assert sorted(everything) == [f"nap{i:02d}-0" for i in range(7)]
    for s in seen:
        assert s["items"] == sorted(s["items"]), "a slice must keep the parent's order"


def test_slices_start_in_the_order_the_planner_numbered_them(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    nap_log: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A planner decides the start order: its slice 1 starts first even when a later slice is
    # predicted to take longer.
    write_tree(tmp_path / "plugins", {"smallest_first.py": SMALLEST_FIRST})
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    monkeypatch.setenv("DAGPAR_PLUGINS", "smallest_first")
    ws = _workspace(make_workspace, count=4, seconds="0")
    result = dagpar_run("call", "-C", ws, "-j", "1", "sleeper", "naps", "run")
    assert result.exit_code == 0, result
    started = {p.name: json.loads(p.read_text())["started"] for p in nap_log.iterdir()}
    assert sorted(started, key=started.__getitem__) == ["1-4", "2-4", "3-4", "4-4"]


def test_a_function_that_is_not_parallel_runs_once_as_written(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    nap_log: Path,
) -> None:
    """naps() is not +parallel: it runs once, as written; the run() it calls is split."""
    ws = _workspace(make_workspace, count=3, seconds="0")
    write_tree(ws, {"ci/sleeper.py": SLEEPER.replace("self.naps().run()", "self.naps().naps()")})
    result = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert result.exit_code == 0, result
    # naps() itself calls run(), which is split: the split happens once, at run().
    logs = sorted(p.name for p in nap_log.iterdir())
    assert logs == ["1-2", "2-2"]


MERGER = """
from __future__ import annotations
from dagpar_cli import Directory, check, dag, field, object_type, parallel

@object_type
class Parts:
    workspace: Directory
    names: list[str] = field(parallel=True)
    clash: bool = False

    @parallel
    def build(self) -> Directory:
        out = dag.directory()
        ctr = dag.container().with_directory("/out", out, writable=True).with_workdir("/out")
        for name in self.names:
            ctr = ctr.with_exec(["sh", "-c", 'echo "$1" > "$2/$1.txt"', "sh", name, "/out"])
        if self.clash:
            first = self.names[0]
            ctr = ctr.with_exec(["sh", "-c", 'echo "$1" > "$2/shared.txt"', "sh", first, "/out"])
        else:
            ctr = ctr.with_exec(["sh", "-c", 'echo same > "$1/shared.txt"', "sh", "/out"])
        return ctr.directory("/out")

@object_type
class Merger:
    source: Directory
    clash: bool = False

    def parts(self) -> Parts:
        return Parts(workspace=self.source, names=["a", "b", "c", "d"], clash=self.clash)

    # +check
    def build(self) -> None:
        self.parts().build()
"""


def test_directory_results_are_merged_as_an_overlay(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    ws = make_workspace(
        {"dagpar.yaml": "toolchains:\n  m: {use: ci/merger.py}\n", "ci/merger.py": MERGER}
    )
    out = tmp_path / "out"
    result = dagpar_run("call", "-C", ws, "-j", "2", "m", "parts", "build", "-o", out)
    assert result.exit_code == 0, result
    assert sorted(p.name for p in out.iterdir()) == [
        "a.txt",
        "b.txt",
        "c.txt",
        "d.txt",
        "shared.txt",
    ]
    assert (out / "c.txt").read_text() == "c\n"


def test_two_slices_writing_one_path_differently_is_an_error_naming_both(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(
        {
            "dagpar.yaml": "toolchains:\n  m: {use: ci/merger.py, clash: true}\n",
            "ci/merger.py": MERGER,
        }
    )
    result = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert result.exit_code == 1, result
    error = result.json()["checks"][0]["error"]
    assert "slice 1/2 and slice 2/2 both wrote 'shared.txt' with different content" in error


FAILING = """
from __future__ import annotations
from dagpar_cli import Directory, check, dag, field, object_type

@object_type
class Jobs:
    workspace: Directory
    jobs: list[str] = field()  # +parallel

    # +parallel
    def run(self) -> None:
        for job in self.jobs:
            with dag.parallel.task(job):
                dag.container().with_exec(["sh", "-c", f"exit {1 if 'bad' in job else 0}"]).sync()

@object_type
class Failing:
    source: Directory

    # +check
    def run(self) -> None:
        Jobs(workspace=self.source, jobs=["ok1", "bad1", "ok2", "bad2"]).run()
"""


def test_every_slice_error_is_collected_and_each_item_reported_once(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    ws = make_workspace(
        {"dagpar.yaml": "toolchains:\n  f: {use: ci/failing.py}\n", "ci/failing.py": FAILING}
    )
    junit = tmp_path / "junit.xml"
    result = dagpar_run("check", "-C", ws, "-j", "4", "--json", "--junit-xml", junit)
    assert result.exit_code == 1, result
    check = result.json()["checks"][0]
    statuses = {t["id"]: t["status"] for t in check["tests"]}
    assert statuses == {
        "ok1::run": "passed",
        "bad1::run": "failed",
        "ok2::run": "passed",
        "bad2::run": "failed",
    }
    assert "2 of 4 slices failed" in check["error"]
    assert junit.read_text().count("<testcase") == 4


ESCAPER = """
from __future__ import annotations
from dagpar_cli import Directory, check, dag, field, object_type, parallel

@object_type
class Outs:
    workspace: Directory
    names: list[str] = field(parallel=True)

    @parallel
    def build(self) -> Directory:
        out = dag.directory()
        ctr = dag.container().with_directory("/out", out, writable=True).with_workdir("/out")
        for name in self.names:
            ctr = ctr.with_exec(["ln", "-s", "/etc/passwd", f"/out/{name}"])
        return ctr.directory("/out")

@object_type
class Escaper:
    source: Directory

    # +check
    def build(self) -> None:
        Outs(workspace=self.source, names=["a", "b"]).build()
"""


def test_a_directory_result_linking_outside_itself_is_rejected(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(
        {"dagpar.yaml": "toolchains:\n  e: {use: ci/escaper.py}\n", "ci/escaper.py": ESCAPER}
    )
    result = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert result.exit_code == 1, result
    assert "returned a link escaping its directory" in result.json()["checks"][0]["error"]
