"""Queue mode end to end: real ``redis-server``, real ``dagpar`` processes, one workspace copy
per node, as CI nodes of one build would be.

Nodes are separate processes started with ``python -m dagpar_cli``; the tests wait on the state
of the queue in Redis (a unit reserved by a node, a queue filled), never on the clock.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

pytestmark = [pytest.mark.redis, pytest.mark.slow]

BUILD = "build-1"
CALL = "dagpar:{build-1}:call:pytest:test#1"
PATIENCE = 240.0

_TEST_FILE = """\
import os
import time


def _pause():
    # Injected slowness (the bench's slow node); 0.5 s per test otherwise.
    time.sleep(0.5 * float(os.environ.get("QUEUE_TEST_SLOWDOWN", "1")))


def test_one():
    _pause()


def test_two():
    _pause()
"""


def suite(root: Path, files: int = 16) -> Path:
    """*files* test files of two 0.5 s tests each."""
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    for i in range(files):
        (root / "tests" / f"test_{i:02d}.py").write_text(_TEST_FILE)
    return root


def node_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGPAR_")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["OTEL_SDK_DISABLED"] = "true"
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


class Node:
    """One ``dagpar check --queue`` process in its own session (SIGKILL takes its children)."""

    def __init__(
        self,
        workspace: Path,
        url: str,
        worker: str,
        *extra: str,
        env: dict[str, str] | None = None,
        command: tuple[str, ...] = ("check",),
    ) -> None:
        self.worker = worker
        argv = [sys.executable, "-m", "dagpar_cli", *command, "-C", str(workspace), "-j", "2"]
        argv += ["--queue", url, "--build", BUILD, "--worker", worker, "--json", *extra]
        self.out = workspace.parent / f"{worker}.out"
        self.err = workspace.parent / f"{worker}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=err,
                env={**node_env(), **(env or {})},
                start_new_session=True,
            )

    def wait(self) -> int:
        return self.proc.wait(timeout=PATIENCE)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def __repr__(self) -> str:
        return f"{self.worker}: exit {self.proc.returncode}\n{self.stderr()[-3000:]}"


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for node in started:
        if node.proc.poll() is None:
            node.kill()


def until(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, decode_responses=True)


def copies(tmp_path: Path, names: list[str], files: int = 16) -> dict[str, Path]:
    base = suite(tmp_path / "base", files)
    return {name: Path(shutil.copytree(base, tmp_path / name / "ws")) for name in names}


def report(
    tmp_path: Path, url: str, *extra: str, env: dict[str, str] | None = None
) -> tuple[int, str, Path]:
    junit = tmp_path / "junit.xml"
    ws = tmp_path / "report-ws"
    ws.mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "dagpar_cli", "queue", "report", "-C", str(ws), "--queue", url]
    argv += ["--build", BUILD, "--junit-xml", str(junit), "--timeout", "180", *extra]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env or node_env(),
        timeout=PATIENCE,
    )
    return proc.returncode, proc.stdout + proc.stderr, junit


def junit_cases(path: Path) -> list[tuple[str, str]]:
    """``(id, outcome)`` per ``testcase``: outcome is passed, failure, error or skipped."""
    cases = []
    for case in etree.parse(str(path)).iter("testcase"):
        bad = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        cases.append((f"{case.get('file')}::{case.get('name')}", bad[0] if bad else "passed"))
    return cases


def test_a_killed_node_and_a_late_one_still_run_every_test_once(
    tmp_path: Path, redis_server: Any, nodes: list[Node]
) -> None:
    ws = copies(tmp_path, ["a", "b", "c"])
    url = redis_server.url
    r = client(url)
    nodes.append(Node(ws["a"], url, "node-a", "--lease", "3"))
    nodes.append(Node(ws["b"], url, "node-b", "--lease", "3"))
    a, b = nodes
    # node-a dies (its machine with it) once it holds a unit.
    until(lambda: "node-a" in r.hvals(CALL + ":owner"), "node-a to reserve a unit")
    a.kill()
    # node-c joins late, while the queue still has work.
    until(lambda: r.hget(CALL + ":meta", "filled"), "the queue to be filled")
    nodes.append(Node(ws["c"], url, "node-c", "--lease", "3"))
    c = nodes[2]
    assert b.wait() == 0, b
    assert c.wait() == 0, c

    code, output, junit = report(tmp_path, url)
    assert code == 0, output
    cases = junit_cases(junit)
    counts = Counter(test for test, _ in cases)
    assert len(counts) == 32 and max(counts.values()) == 1, counts
    assert {outcome for _, outcome in cases} == {"passed"}
    workers = {__import__("json").loads(v)["worker"] for v in r.hvals(CALL + ":results")}
    assert "node-c" in workers  # the late node ran part of the work
    assert "node-a" not in r.hvals(CALL + ":owner")


def test_a_node_with_another_checkout_stops_and_the_others_go_on(
    tmp_path: Path, redis_server: Any, nodes: list[Node]
) -> None:
    ws = copies(tmp_path, ["good", "other"], files=4)
    (ws["other"] / "tests" / "test_extra.py").write_text("def test_more():\n    pass\n")
    url = redis_server.url
    r = client(url)
    nodes.append(Node(ws["good"], url, "good"))
    until(lambda: r.hget(CALL + ":meta", "filled"), "the queue to be filled")
    nodes.append(Node(ws["other"], url, "other"))
    good, other = nodes
    assert other.wait() == 2, other
    errors = [line for line in other.stderr().splitlines() if line.startswith("dagpar: error")]
    assert len(errors) == 1 and "lists a different suite" in errors[0], other
    assert good.wait() == 0, good
    code, output, junit = report(tmp_path, url)
    assert code == 0, output
    assert len(junit_cases(junit)) == 8


def test_redis_stopping_mid_build_ends_nodes_with_exit_4(
    tmp_path: Path, redis_server: Any, nodes: list[Node]
) -> None:
    ws = copies(tmp_path, ["a", "b"], files=8)
    url = redis_server.url
    r = client(url)
    junit = {name: tmp_path / f"{name}.xml" for name in ws}
    for name in ws:
        nodes.append(Node(ws[name], url, name, "--junit-xml", str(junit[name])))
    until(lambda: r.scard(CALL + ":done") >= 1, "a unit to finish")
    redis_server.stop()
    for node in nodes:
        assert node.wait() == 4, node
        errors = [line for line in node.stderr().splitlines() if "error" in line]
        assert len(errors) == 1 and errors[0].startswith("dagpar: error: queue redis://"), node
        # Nothing reported passed: no result document, no JUnit.
        assert node.out.read_text() == ""
        assert not junit[node.worker].exists()


def test_rejoining_a_drained_build_runs_nothing_and_keeps_its_status(
    tmp_path: Path, redis_server: Any, nodes: list[Node]
) -> None:
    ws = copies(tmp_path, ["n"], files=2)
    (ws["n"] / "tests" / "test_bad.py").write_text("def test_bad():\n    assert False\n")
    url = redis_server.url
    nodes.append(Node(ws["n"], url, "n"))
    assert nodes[0].wait() == 1, nodes[0]
    nodes.append(Node(ws["n"], url, "n"))  # the CI job, retried
    assert nodes[1].wait() == 1, nodes[1]
    assert "no work left for n" in nodes[1].stderr()
    nodes.append(Node(ws["n"], url, "fresh"))
    assert nodes[2].wait() == 0, nodes[2]
    ran = json.loads(nodes[2].out.read_text())
    assert [t for c in ran["checks"] for t in c["tests"]] == []
    code, output, _ = report(tmp_path, url)
    assert code == 1, output


_FLAKY = """\
import os


def test_flaky():
    mark = os.environ["FLAKY_MARK"]
    if not os.path.exists(mark):
        open(mark, "w").close()
        raise AssertionError("fails the first time")
"""


def test_retry_failed_reruns_only_the_failures_and_the_report_merges_them(
    tmp_path: Path, redis_server: Any, nodes: list[Node]
) -> None:
    ws = copies(tmp_path, ["first", "r1", "r2"], files=4)
    for root in ws.values():
        (root / "tests" / "test_flaky.py").write_text(_FLAKY)
    env = {"FLAKY_MARK": str(tmp_path / "mark")}
    url = redis_server.url
    nodes.append(Node(ws["first"], url, "first", env=env))
    assert nodes[0].wait() == 1, nodes[0]
    for name in ("r1", "r2"):
        nodes.append(Node(ws[name], url, name, "--retry-failed", env=env))
    rerun: list[str] = []
    for node in nodes[1:]:
        assert node.wait() == 0, node
        rerun += [t["id"] for c in json.loads(node.out.read_text())["checks"] for t in c["tests"]]
    assert rerun == ["tests/test_flaky.py::test_flaky"]

    html = tmp_path / "report.html"
    traced = {k: v for k, v in node_env().items() if k != "OTEL_SDK_DISABLED"}
    code, output, junit = report(tmp_path, url, "--report-html", str(html), env=traced)
    assert code == 0, output
    # The build's trace: a span per test case, the rerun one flaky.
    (trace,) = (tmp_path / "report-ws" / ".dagpar" / "traces").glob("*.jsonl")
    spans = [json.loads(line) for line in trace.read_text().splitlines()]
    names = {span["name"] for span in spans}
    assert "tests/test_flaky.py::test_flaky" in names and "tests/test_03.py::test_two" in names
    cases = dict(junit_cases(junit))
    assert len(cases) == 9 and set(cases.values()) == {"passed"}
    flaky = [c for c in etree.parse(str(junit)).iter("testcase") if c.get("name") == "test_flaky"]
    assert [child.tag for child in flaky[0]].count("flakyFailure") == 1
    assert html.stat().st_size > 0
    # The build's timings went into the report workspace's store.
    argv = [sys.executable, "-m", "dagpar_cli", "timings", "show", "--json", "--limit", "50"]
    shown = subprocess.run(
        [*argv, "-C", str(tmp_path / "report-ws")],
        capture_output=True,
        text=True,
        env=node_env(),
        check=True,
    )
    keys = {row["key"] for row in json.loads(shown.stdout)}
    assert keys == {f"tests/test_{i:02d}.py" for i in range(4)} | {"tests/test_flaky.py"}


def test_a_node_hands_a_running_units_tail_to_its_idle_slot(
    tmp_path: Path, redis_server: Any, nodes: list[Node]
) -> None:
    """The slow file's first test passes only once another slot of the node took the file's
    unstarted tests, which happens only when the queue has nothing left to give."""
    from test_handover import SLOW_TESTS, SUITE  # type: ignore[import-not-found]

    from dagpar_cli.testing import write_tree

    ws = write_tree(tmp_path / "n" / "ws", SUITE)
    log = tmp_path / "ran.log"
    nodes.append(Node(ws, redis_server.url, "n", env={"HANDOVER_LOG": str(log)}))
    assert nodes[0].wait() == 0, nodes[0]
    ran = Counter(line.split()[0] for line in log.read_text().splitlines())
    assert set(ran) == {*SLOW_TESTS, "test_quick"} and max(ran.values()) == 1, ran
    code, output, junit = report(tmp_path, redis_server.url)
    assert code == 0, output
    assert len(junit_cases(junit)) == len(SLOW_TESTS) + 1


def test_call_chains_share_a_build_too(
    tmp_path: Path, redis_server: Any, nodes: list[Node]
) -> None:
    ws = copies(tmp_path, ["a", "b"], files=4)
    chain = ("call", "pytest", "test-files", "test")
    for name in ws:
        nodes.append(Node(ws[name], redis_server.url, name, command=chain))
    ran: list[str] = []
    for node in nodes:
        assert node.wait() == 0, node
        ran += [t["id"] for c in json.loads(node.out.read_text())["checks"] for t in c["tests"]]
    assert len(ran) == len(set(ran)) == 8
    code, output, junit = report(tmp_path, redis_server.url)
    assert code == 0, output
    assert len(junit_cases(junit)) == 8


def test_an_interrupted_node_exits_130_and_its_work_runs_elsewhere(
    tmp_path: Path, redis_server: Any, nodes: list[Node]
) -> None:
    ws = copies(tmp_path, ["a", "b"], files=8)
    url = redis_server.url
    r = client(url)
    nodes.append(Node(ws["a"], url, "a"))
    until(lambda: "a" in r.hvals(CALL + ":owner"), "node a to reserve a unit")
    nodes.append(Node(ws["b"], url, "b"))
    a, b = nodes
    a.proc.send_signal(signal.SIGTERM)
    assert a.wait() == 130, a
    assert b.wait() == 0, b
    code, output, junit = report(tmp_path, url)
    assert code == 0, output
    counts = Counter(test for test, _ in junit_cases(junit))
    assert len(counts) == 16 and max(counts.values()) == 1, counts


GRID = """\
from __future__ import annotations
import time
from dagpar_cli import check, dag, field, object_type

@object_type
class Grid:
    pythons: list[str] = field(parallel=True, default_factory=lambda: ["3.11", "3.12"])
    files: list[str] = field(parallel=True, default_factory=lambda: [f"f{i}" for i in range(6)])

    # +parallel
    @check
    def run(self) -> None:
        for python in self.pythons:
            for name in self.files:
                with dag.parallel.task(name, pythons=python):
                    time.sleep(0.1)
"""


def test_a_matrix_is_shared_out_by_combination(
    tmp_path: Path, redis_server: Any, nodes: list[Node]
) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "grid.py").write_text(GRID)
    (base / "dagpar.yaml").write_text("toolchains:\n  grid: {use: grid.py}\n")
    for name in ("a", "b"):
        ws = Path(shutil.copytree(base, tmp_path / name / "ws"))
        nodes.append(Node(ws, redis_server.url, name))
    ran: list[str] = []
    for node in nodes:
        assert node.wait() == 0, node
        ran += [t["id"] for c in json.loads(node.out.read_text())["checks"] for t in c["tests"]]
    assert len(ran) == len(set(ran)) == 12
    code, output, junit = report(tmp_path, redis_server.url)
    assert code == 0, output
    suites = [s.get("name") for s in etree.parse(str(junit)).iter("testsuite")]
    assert suites == ["grid:run[pythons=3.11]", "grid:run[pythons=3.12]"]
    assert len(junit_cases(junit)) == 12
