"""The test kit: the fake executor keeps the executor contract, and the tool gating helpers."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from projects import SMALLEST_FIRST_PLANNER as SMALLEST_FIRST  # type: ignore[import-not-found]

from dagpar_cli.errors import ExecutionError
from dagpar_cli.execution.api import ExecRequest, ExecSession, Executor, Mount, Outcome, SessionSpec
from dagpar_cli.testing import (
    REQUIRE_TOOLS_ENV,
    DagparResult,
    FakeExecutor,
    skip_missing_tool,
    write_tree,
)


def request(*argv: str, cwd: str = "/", timeout: float | None = None) -> ExecRequest:
    return ExecRequest(argv=argv, cwd=cwd, timeout=timeout)


SPEC = SessionSpec(label="check#1")


def test_the_fake_keeps_the_executor_protocols() -> None:
    fake = FakeExecutor()
    assert isinstance(fake, Executor)
    with fake.open(SPEC) as session:
        assert isinstance(session, ExecSession)
        assert session.where == "fake"


def test_requests_are_recorded_and_answered_by_argv_prefix() -> None:
    fake = FakeExecutor()
    fake.on(["go", "test"], Outcome(exit_code=1, stdout="FAIL"))
    fake.on("echo", lambda r: Outcome(exit_code=0, stdout=" ".join(r.argv[1:]) + "\n"))
    with fake.open(SPEC) as session:
        assert session.run(request("go", "test", "./...")).stdout == "FAIL"
        assert session.run(request("echo", "hello", "world")).stdout == "hello world\n"
        # A prefix of the rule is not a match: `go` alone is not `go test`.
        missing = session.run(request("go", "vet"))
    assert missing.not_started and missing.exit_code == 127
    assert "no FakeExecutor rule matches go vet" in missing.stderr
    assert fake.argvs() == [("go", "test", "./..."), ("echo", "hello", "world"), ("go", "vet")]
    assert [c.spec.label for c in fake.calls] == ["check#1"] * 3
    assert fake.requests[0] == request("go", "test", "./...")


def test_the_newest_matching_rule_answers_and_times_limits_a_rule() -> None:
    fake = FakeExecutor(default=Outcome(exit_code=0, stdout="default"))
    fake.on("pytest", Outcome(exit_code=0, stdout="broad"))
    fake.on(lambda r: "--lf" in r.argv, Outcome(exit_code=5, stdout="narrow"), times=1)
    session = fake.open(SPEC)
    answers = [
        session.run(request("pytest", "--lf")).stdout,
        session.run(request("pytest", "--lf")).stdout,
        session.run(request("make")).stdout,
    ]
    assert answers == ["narrow", "broad", "default"]


def test_durations_are_simulated_without_sleeping() -> None:
    fake = FakeExecutor()
    fake.on("sleep", lambda r: Outcome(exit_code=0, seconds=float(r.argv[1])))
    fake.on("make", seconds=42.0)
    session = fake.open(SPEC)
    start = time.monotonic()
    assert session.run(request("sleep", "600")).seconds == 600.0
    assert session.run(request("make")).seconds == 42.0
    assert time.monotonic() - start < 0.5


def test_a_command_longer_than_its_timeout_times_out() -> None:
    fake = FakeExecutor().on("sleep", seconds=30)
    session = fake.open(SPEC)
    outcome = session.run(request("sleep", "30", timeout=5))
    assert outcome.timed_out and not outcome.ok
    assert outcome.seconds == 5
    assert session.run(request("sleep", "30", timeout=60)).ok


def test_kill_all_interrupts_running_commands_and_starts_no_more() -> None:
    fake = FakeExecutor(time_scale=1.0, max_sleep=10.0).on("sleep", seconds=10)
    session = fake.open(SPEC)
    outcomes: list[Outcome] = []
    worker = threading.Thread(target=lambda: outcomes.append(session.run(request("sleep"))))
    worker.start()
    while fake.max_running == 0:
        time.sleep(0.001)
    start = time.monotonic()
    fake.kill_all()
    worker.join(5)
    assert time.monotonic() - start < 2
    assert outcomes[0].killed == "interrupted" and outcomes[0].exit_code == -9
    late = fake.open(SPEC).run(request("sleep"))
    assert late.killed == "stopped before it started"
    assert fake.killed
    fake.reset()
    assert not fake.killed and fake.calls == []


def test_a_closed_session_starts_nothing() -> None:
    fake = FakeExecutor().on("true")
    session = fake.open(SPEC)
    session.close()
    assert session.run(request("true")).killed == "stopped before it started"


def test_the_simulated_wall_time_is_the_busiest_threads_share() -> None:
    fake = FakeExecutor().on("sleep", lambda r: Outcome(exit_code=0, seconds=float(r.argv[1])))
    assert fake.simulated_wall_seconds() == 0.0

    def worker(*naps: str) -> None:
        session = fake.open(SPEC)
        for nap in naps:
            session.run(request("sleep", nap))

    threads = [threading.Thread(target=worker, args=a) for a in (("1", "2"), ("4",), ("0.5",))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.simulated_wall_seconds() == 4.0


def test_the_plugin_makes_dagpar_use_the_fake_whatever_the_executor(tmp_path: Path) -> None:
    from dagpar_cli.config import Config, RunOptions
    from dagpar_cli.pluginmanager import get_plugin_manager
    from dagpar_cli.run_context import RunContext

    fake, fixed = FakeExecutor(), FakeExecutor(capacity=3)
    config = Config(workspace=tmp_path, file=None, toolchains=(), parallelism=6)
    for executor, options, capacity in (
        (fake, RunOptions(executor="docker"), 6),
        (fixed, RunOptions(parallelism=2), 3),
    ):
        pm = get_plugin_manager(extra_plugins=(executor.plugin(),))
        session = RunContext(config=config, options=options, pm=pm)
        assert pm.hook.dagpar_make_executor(session=session) is executor
        assert executor.capacity() == capacity


def test_capacity_and_an_unavailable_executor() -> None:
    assert FakeExecutor().capacity() == 2
    assert FakeExecutor(capacity=7).capacity() == 7
    down = FakeExecutor(unavailable="docker engine unix:///x is unreachable")
    with pytest.raises(ExecutionError, match="unreachable"):
        down.capacity()
    with pytest.raises(ExecutionError, match="unreachable"):
        down.open(SPEC)


def test_concurrent_requests_are_counted_and_kept_in_start_order() -> None:
    fake = FakeExecutor(time_scale=1.0, max_sleep=0.2).on("sleep", seconds=0.2)
    barrier = threading.Barrier(4)

    def one(n: int) -> None:
        barrier.wait()
        fake.open(SessionSpec(label=f"c#{n}")).run(request("sleep", str(n)))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.max_running == 4
    calls = fake.calls
    assert [c.index for c in calls] == [0, 1, 2, 3]
    assert all(a.started <= b.started for a, b in itertools.pairwise(calls))
    assert len({c.thread for c in calls}) == 4


def test_paths_are_host_paths_when_mounts_are_shared(tmp_path: Path) -> None:
    spec = SessionSpec(label="l", mounts=(Mount(source=tmp_path, target="/w"),))
    session = FakeExecutor().open(spec)
    assert session.path(tmp_path / "a") == str(tmp_path / "a")


def test_container_like_sessions_map_host_paths_to_mount_targets(tmp_path: Path) -> None:
    inner = tmp_path / "src" / "web"
    spec = SessionSpec(
        label="c",
        mounts=(Mount(source=tmp_path, target="/w"), Mount(source=inner, target="/web")),
    )
    session = FakeExecutor(shares_mounts=False).open(spec)
    assert session.path(tmp_path) == "/w"
    assert session.path(tmp_path / "src" / "a.py") == "/w/src/a.py"
    assert session.path(inner / "x") == "/web/x"  # the deepest mount wins
    with pytest.raises(ExecutionError, match="not mounted"):
        session.path(tmp_path.parent)


@pytest.mark.parametrize("shares_mounts", [True, False])
def test_writes_land_in_mounts_and_copy_out_collects_them(
    tmp_path: Path, shares_mounts: bool
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "existing.txt").write_text("before")
    fake = FakeExecutor(shares_mounts=shares_mounts)
    spec = SessionSpec(label="c", mounts=(Mount(source=out, target="/out", read_only=False),))
    session = fake.open(spec)
    cwd = session.path(out)
    fake.on("build", writes={"report.xml": "<xml/>", "/scratch/log.txt": b"bytes"})
    assert session.run(request("build", cwd=cwd)).ok
    # Inside the mount the file is on the host, as a real command's would be.
    assert (out / "report.xml").read_text() == "<xml/>"
    assert session.files == {"/scratch/log.txt": b"bytes"}

    dest = tmp_path / "copied"
    session.copy_out(cwd, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["existing.txt", "report.xml"]
    session.copy_out("/scratch", tmp_path / "scratch")
    assert (tmp_path / "scratch" / "log.txt").read_bytes() == b"bytes"
    assert fake.copied == [(cwd, dest), ("/scratch", tmp_path / "scratch")]
    with pytest.raises(FileNotFoundError):
        session.copy_out("/nowhere", tmp_path / "nothing")


def test_a_failed_or_missing_command_writes_nothing(tmp_path: Path) -> None:
    fake = FakeExecutor().on("build", Outcome(exit_code=0, not_started=True), writes={"a": "x"})
    spec = SessionSpec(label="c", mounts=(Mount(source=tmp_path, target=str(tmp_path)),))
    fake.open(spec).run(request("build", cwd=str(tmp_path)))
    assert not (tmp_path / "a").exists()


def test_the_session_environment_is_visible_on_each_call() -> None:
    fake = FakeExecutor().on("env")
    spec = SessionSpec(label="c", env={"DAGPAR_SLICE": "1", "A": "session"})
    fake.open(spec).run(ExecRequest(argv=("env",), cwd="/", env={"A": "request"}))
    assert fake.calls[0].env == {"DAGPAR_SLICE": "1", "A": "request"}


def test_skip_missing_tool_skips_or_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    # CI itself runs with the variable set; the laptop case needs it gone.
    monkeypatch.delenv(REQUIRE_TOOLS_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="go is not on PATH"):
        skip_missing_tool("go", "go is not on PATH")
    monkeypatch.setenv(REQUIRE_TOOLS_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=r"go is required here .*: not on PATH"):
        skip_missing_tool("go", "not on PATH")


# --------------------------------------------------------------------------------------------
# the fake behind an in-process dagpar run
# --------------------------------------------------------------------------------------------

NAPPER = """
from __future__ import annotations
from dagpar_cli import Directory, check, dag, field, object_type

@object_type
class Naps:
    workspace: Directory
    items: list[str] = field()  # +parallel

    # +parallel
    def run(self) -> None:
        ctr = dag.container().with_directory("/w", self.workspace).with_workdir("/w")
        for item in self.items:
            ctr = ctr.with_exec(["sleep", item.split("-")[1]])
        ctr.sync()

@object_type
class Napper:
    source: Directory
    count: int = 8

    # +check
    def sleep(self) -> None:
        Naps(workspace=self.source, items=[f"nap{i:02d}-30" for i in range(self.count)]).run()
"""


@pytest.fixture
def napper(make_workspace: Callable[[Mapping[str, str]], Path]) -> Path:
    return make_workspace(
        {"dagpar.yaml": "toolchains:\n  napper: {use: ci/napper.py}\n", "ci/napper.py": NAPPER}
    )


def test_dagpar_runs_its_slices_on_the_fake(
    napper: Path, fake_executor: FakeExecutor, dagpar_run: Callable[..., DagparResult]
) -> None:
    fake_executor.on("sleep", lambda r: Outcome(exit_code=0, seconds=float(r.argv[1])))
    fake_executor.time_scale = 0.002  # 30 simulated seconds: 60 ms
    start = time.monotonic()
    result = dagpar_run("check", "-C", napper, "-j", "4", "--json")
    assert result.exit_code == 0, result
    assert time.monotonic() - start < 10
    # Eight 30-second naps ran, four at a time, each in the workspace itself.
    assert fake_executor.argvs() == [("sleep", "30")] * 8
    assert fake_executor.max_running == 4
    assert fake_executor.capacity() == 4  # -j
    assert {c.request.cwd for c in fake_executor.calls} == {str(napper.resolve())}
    assert fake_executor.closed == 1
    check = json.loads(result.stdout)["checks"][0]
    assert check["status"] == "passed"
    assert [s["where"] for s in check["slices"]] == ["fake"] * len(check["slices"])


def test_a_failing_command_on_the_fake_fails_the_check(
    napper: Path, fake_executor: FakeExecutor, dagpar_run: Callable[..., DagparResult]
) -> None:
    fake_executor.on("sleep", Outcome(exit_code=0))
    fake_executor.on(["sleep", "30"], Outcome(exit_code=2, stderr="no sleep for you"), times=1)
    result = dagpar_run("check", "-C", napper, "-j", "1", "--json")
    assert result.exit_code == 1, result
    (only,) = result.json()["checks"][0]["slices"]
    assert only["error"] == "command failed with exit code 2: sleep 30"


def test_more_workers_shorten_the_simulated_wall_time(
    napper: Path, fake_executor: FakeExecutor, dagpar_run: Callable[..., DagparResult]
) -> None:
    # What tests/unit/test_engine.py measures with real sleeps, in a fraction of the time.
    fake_executor.on("sleep", lambda r: Outcome(exit_code=0, seconds=float(r.argv[1])))
    fake_executor.time_scale = 0.003  # 30 simulated seconds: 90 ms, so that slices overlap
    wall = {}
    for j in ("1", "4"):
        fake_executor.reset()
        result = dagpar_run("check", "-C", napper, "-j", j)
        assert result.exit_code == 0, result
        wall[j] = fake_executor.simulated_wall_seconds()
        assert fake_executor.max_running == int(j)
    assert wall["1"] == 8 * 30.0
    assert wall["4"] / wall["1"] < 0.45, wall


def test_the_order_slices_start_in_shows_in_the_calls(
    napper: Path,
    fake_executor: FakeExecutor,
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_tree(tmp_path / "plugins", {"smallest_first_kit.py": SMALLEST_FIRST})
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    # Added to the variable the fixture set, not in place of it.
    monkeypatch.setenv("DAGPAR_PLUGINS", os.environ["DAGPAR_PLUGINS"] + ",smallest_first_kit")
    fake_executor.on("sleep")
    napper.joinpath("dagpar.yaml").write_text(
        "toolchains:\n  napper: {use: ci/napper.py, count: 4}\n"
    )
    result = dagpar_run("check", "-C", napper, "-j", "1")
    assert result.exit_code == 0, result
    assert [c.spec.labels["dagpar.slice"] for c in fake_executor.calls] == [
        "1/4",
        "2/4",
        "3/4",
        "4/4",
    ]
    assert fake_executor.max_running == 1
