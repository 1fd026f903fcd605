"""The docker executor against a real Docker engine (and a second one started for the test)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from docker_engine2 import SecondEngine, start_relay, start_second_engine, unavailable
from docker_images import (
    BASE_IMAGE,
    ToolchainDockerPlugin,
    docker_client,
    ensure_base_image,
    toolchain_env,
    toolchain_mounts,
)

from dagpar_cli.config import Config, DockerEngine, RunOptions
from dagpar_cli.errors import ExecutionError, ExitCode
from dagpar_cli.execution.api import ExecRequest, ExecSession, Executor, Mount, SessionSpec
from dagpar_cli.execution.docker import (
    RUN_LABEL,
    SLICE_LABEL,
    DockerExecutor,
    DockerSession,
    cleanup_run,
    dagpar_make_executor,
)
from dagpar_cli.run_context import RunContext

pytestmark = pytest.mark.docker

DEFAULT_URL = "unix:///var/run/docker.sock"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A client of the default engine, with the base image built."""
    yield from docker_client()


def _labelled(client: Any, run_id: str) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}))


@pytest.fixture
def run_id() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def executor(client: Any, run_id: str) -> Iterator[DockerExecutor]:
    ex = DockerExecutor(run_id=run_id)
    yield ex
    ex.close()
    assert _labelled(client, run_id) == [], "closing the executor must remove its containers"


def _spec(label: str = "check#1", **kwargs: Any) -> SessionSpec:
    return SessionSpec(label=label, image=BASE_IMAGE, **kwargs)


def _sh(script: str, cwd: str = "/", **kwargs: Any) -> ExecRequest:
    return ExecRequest(argv=("sh", "-c", script), cwd=cwd, **kwargs)


def test_executor_and_session_satisfy_the_protocols(executor: DockerExecutor) -> None:
    assert isinstance(executor, Executor)
    with executor.open(_spec()) as session:
        assert isinstance(session, ExecSession)
        assert session.where == f"docker@{DEFAULT_URL}"


def test_run_captures_stdout_stderr_and_exit_status(executor: DockerExecutor) -> None:
    with executor.open(_spec()) as session:
        outcome = session.run(_sh("echo to-out; echo to-err >&2; exit 3"))
        assert (outcome.exit_code, outcome.stdout, outcome.stderr) == (3, "to-out\n", "to-err\n")
        assert not outcome.ok and not outcome.timed_out and not outcome.killed
        again = session.run(ExecRequest(argv=("echo", "second", "request"), cwd="/"))
        assert again.ok and again.stdout == "second request\n"


def test_host_environment_does_not_leak_and_request_env_wins(
    executor: DockerExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_ONLY_SECRET", "must-not-leak")
    spec = _spec(env={"FROM_SESSION": "s", "OVERRIDDEN": "session"})
    with executor.open(spec) as session:
        outcome = session.run(
            ExecRequest(argv=("env",), cwd="/", env={"FROM_REQUEST": "r", "OVERRIDDEN": "request"})
        )
    variables = dict(line.split("=", 1) for line in outcome.stdout.splitlines())
    assert "HOST_ONLY_SECRET" not in variables
    assert variables["FROM_SESSION"] == "s"
    assert variables["FROM_REQUEST"] == "r"
    assert variables["OVERRIDDEN"] == "request"


def test_mounts_read_only_and_writable_and_path_mapping(
    executor: DockerExecutor, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "data.txt").write_text("hello from the host\n")
    out = tmp_path / "out"
    out.mkdir()
    spec = _spec(
        mounts=(
            Mount(source=source, target="/workspace", read_only=True),
            Mount(source=out, target="/reports", read_only=False),
        )
    )
    with executor.open(spec) as session:
        inside = session.path(source / "pkg" / "data.txt")
        assert inside == "/workspace/pkg/data.txt"
        assert session.run(ExecRequest(argv=("cat", inside), cwd="/")).stdout == (
            "hello from the host\n"
        )
        denied = session.run(_sh("echo x > /workspace/new.txt"))
        assert denied.exit_code != 0 and "Read-only file system" in denied.stderr
        assert not (source / "new.txt").exists()
        written = session.run(_sh("echo report > report.txt", cwd=session.path(out)))
        assert written.ok, written.stderr
        assert (out / "report.txt").read_text() == "report\n"
        with pytest.raises(ExecutionError, match="not mounted"):
            session.path(tmp_path / "elsewhere")


def test_working_directory_is_per_request(executor: DockerExecutor, tmp_path: Path) -> None:
    spec = _spec(mounts=(Mount(source=tmp_path, target="/w", read_only=True),))
    (tmp_path / "sub").mkdir()
    with executor.open(spec) as session:
        assert session.run(ExecRequest(argv=("pwd",), cwd="/w/sub")).stdout == "/w/sub\n"
        assert session.run(ExecRequest(argv=("pwd",), cwd="/tmp")).stdout == "/tmp\n"


def test_missing_command_is_not_started(executor: DockerExecutor) -> None:
    with executor.open(_spec()) as session:
        plain = session.run(ExecRequest(argv=("no-such-runner",), cwd="/"))
        limited = session.run(ExecRequest(argv=("no-such-runner",), cwd="/", timeout=30))
    for outcome in (plain, limited):
        assert outcome.not_started and not outcome.ok
        assert "no-such-runner" in outcome.stderr
        assert outcome.stdout == ""


def test_timeout_kills_the_command_and_its_children(executor: DockerExecutor) -> None:
    with executor.open(_spec()) as session:
        outcome = session.run(_sh("sleep 300 & sleep 300; echo never", timeout=1))
        assert outcome.timed_out and not outcome.ok and not outcome.killed
        assert "never" not in outcome.stdout
        # Far sooner than the command's own 300 s: the limit, not the command, ended it.
        assert outcome.seconds < 300 / 10
        left = session.run(_sh("cat /proc/[0-9]*/cmdline | tr '\\0' ' '"))
        assert "sleep 300" not in left.stdout
        assert "dagpar-keepalive" in left.stdout, "the session's container must still be alive"
        assert session.run(ExecRequest(argv=("true",), cwd="/")).ok


def test_timeout_without_a_timeout_command_removes_the_container(
    executor: DockerExecutor, client: Any
) -> None:
    # No ``timeout`` on PATH: the host's watchdog must enforce the limit.
    session = executor.open(_spec(env={"PATH": "/nowhere"}))
    assert isinstance(session, DockerSession)
    outcome = session.run(ExecRequest(argv=("/bin/sleep", "300"), cwd="/", timeout=1))
    assert outcome.timed_out and not outcome.ok
    assert outcome.seconds < 300 / 10
    later = session.run(ExecRequest(argv=("/bin/true",), cwd="/"))
    assert later.killed.startswith("timed out") and not later.ok
    session.close()
    import docker.errors

    with pytest.raises(docker.errors.NotFound):
        client.containers.get(session.container_id)


def test_no_time_left_is_a_timeout_not_an_unlimited_run(executor: DockerExecutor) -> None:
    with executor.open(_spec()) as session:
        outcome = session.run(_sh("echo ran", timeout=0.0))
    assert outcome.timed_out and "ran" not in outcome.stdout


def test_oom_kill_sets_killed_not_an_exception(client: Any, run_id: str) -> None:
    executor = DockerExecutor(run_id=run_id, mem_limit="48m")
    try:
        with executor.open(_spec()) as session:
            hog = session.run(_sh("x=0123456789; while :; do x=$x$x; done"))
            assert hog.exit_code == 137
            assert hog.killed == "container OOM-killed (exit 137)"
            assert not hog.ok
            # The slice's container survives its test process's OOM kill.
            assert session.run(ExecRequest(argv=("true",), cwd="/")).ok
            # A plain SIGKILL is the command's business, not a kill of the session.
            self_kill = session.run(_sh("kill -9 $$"))
            assert self_kill.exit_code == 137 and self_kill.killed == ""
    finally:
        executor.close()
    assert _labelled(client, run_id) == []


def test_a_dead_container_gives_killed_outcomes(executor: DockerExecutor, client: Any) -> None:
    session = executor.open(_spec())
    assert isinstance(session, DockerSession)
    client.containers.get(session.container_id).kill()
    outcome = session.run(ExecRequest(argv=("true",), cwd="/"))
    assert outcome.killed and not outcome.ok
    later = session.run(ExecRequest(argv=("true",), cwd="/"))
    assert later.killed == outcome.killed
    session.close()


def test_copy_out_copies_a_directory_tree(executor: DockerExecutor, tmp_path: Path) -> None:
    with executor.open(_spec()) as session:
        made = session.run(
            _sh(
                "mkdir -p /out/reports/sub && echo '<xml/>' > /out/reports/junit.xml"
                " && echo deep > /out/reports/sub/deep.txt"
                " && ln -s junit.xml /out/reports/latest.xml"
            )
        )
        assert made.ok, made.stderr
        session.copy_out("/out/reports", tmp_path / "copied")
        with pytest.raises(ExecutionError, match="does not exist"):
            session.copy_out("/no/such/dir", tmp_path / "nothing")
    copied = tmp_path / "copied"
    assert (copied / "junit.xml").read_text() == "<xml/>\n"
    assert (copied / "sub" / "deep.txt").read_text() == "deep\n"
    assert (copied / "latest.xml").read_text() == "<xml/>\n"
    assert not (copied / "reports").exists(), "the directory's contents land in host_dir"


def test_copy_out_rejects_links_leaving_the_target(
    executor: DockerExecutor, tmp_path: Path
) -> None:
    with executor.open(_spec()) as session:
        assert session.run(_sh("mkdir /evil && ln -s /etc/passwd /evil/passwd")).ok
        with pytest.raises(ExecutionError, match="links outside the target"):
            session.copy_out("/evil", tmp_path / "copied")
    assert not (tmp_path / "copied" / "passwd").exists()


def test_labels_while_open_and_container_gone_after_close(
    executor: DockerExecutor, client: Any, run_id: str
) -> None:
    session = executor.open(_spec(label="unit:test#2", labels={"team": "qa"}))
    containers = _labelled(client, run_id)
    assert [c.id for c in containers] == [session.container_id]
    labels = containers[0].labels
    assert labels[RUN_LABEL] == run_id
    assert labels[SLICE_LABEL] == "unit:test#2"
    assert labels["team"] == "qa"
    session.close()
    session.close()  # idempotent
    assert _labelled(client, run_id) == []
    with pytest.raises(ExecutionError, match="closed"):
        session.run(ExecRequest(argv=("true",), cwd="/"))


def test_executor_close_removes_sessions_left_open(client: Any, run_id: str) -> None:
    executor = DockerExecutor(run_id=run_id)
    executor.open(_spec(label="a#1"))
    executor.open(_spec(label="a#2"))
    assert len(_labelled(client, run_id)) == 2
    executor.close()
    assert _labelled(client, run_id) == []


def test_containers_are_removed_when_dagpar_dies_of_an_exception(client: Any, run_id: str) -> None:
    script = f"""
from dagpar_cli.execution.api import SessionSpec
from dagpar_cli.execution.docker import DockerExecutor
executor = DockerExecutor(run_id={run_id!r})
executor.open(SessionSpec(label="crash#1", image={BASE_IMAGE!r}))
print("opened", flush=True)
raise RuntimeError("dagpar crashed before closing anything")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.stdout == "opened\n", proc.stderr
    assert "dagpar crashed" in proc.stderr
    assert _labelled(client, run_id) == []


def test_kill_all_from_another_thread_stops_running_commands_fast(client: Any, run_id: str) -> None:
    executor = DockerExecutor(run_id=run_id)
    sessions = [executor.open(_spec(label=f"k#{i}")) for i in (1, 2)]
    outcomes: list[Any] = []
    started = time.monotonic()

    def run(session: ExecSession) -> None:
        outcomes.append(session.run(ExecRequest(argv=("sleep", "300"), cwd="/")))

    workers = [threading.Thread(target=run, args=(s,)) for s in sessions]
    for w in workers:
        w.start()
    time.sleep(0.5)
    killer = threading.Thread(target=executor.kill_all)
    killer.start()
    killer.join()
    for w in workers:
        w.join(60)
    elapsed = time.monotonic() - started
    try:
        assert not any(w.is_alive() for w in workers)
        assert elapsed < 300 / 10
        assert [o.killed for o in outcomes] == ["interrupted", "interrupted"]
        assert _labelled(client, run_id) == []
        with pytest.raises(ExecutionError, match="stopped"):
            executor.open(_spec(label="k#3"))
    finally:
        executor.close()


def test_concurrent_sessions_keep_their_outputs_apart(executor: DockerExecutor) -> None:
    sessions = [executor.open(_spec(label=f"c#{i}")) for i in range(4)]
    mixed: list[str] = []

    def work(index: int, session: ExecSession) -> None:
        for round_ in range(5):
            token = f"{index}-{round_}"
            outcome = session.run(_sh(f"echo out-{token}; echo err-{token} >&2; exit {index}"))
            if (outcome.stdout, outcome.stderr, outcome.exit_code) != (
                f"out-{token}\n",
                f"err-{token}\n",
                index,
            ):
                mixed.append(f"{token}: {outcome}")

    threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in sessions:
        s.close()
    assert mixed == []


def test_cleanup_run_removes_leftover_containers(client: Any, run_id: str) -> None:
    leftover = client.containers.create(
        BASE_IMAGE, entrypoint=["sleep"], command=["infinity"], labels={RUN_LABEL: run_id}
    )
    leftover.start()
    assert cleanup_run(run_id, [DockerEngine(url=DEFAULT_URL)]) == 1
    assert _labelled(client, run_id) == []
    assert cleanup_run(run_id) == 0


def test_cleanup_removes_containers_whose_owner_is_gone_and_keeps_the_others(
    client: Any, run_id: str, dagpar_run: Any
) -> None:
    from dagpar_cli.execution.docker_owner import Owner

    gone = subprocess.Popen(["true"])
    gone.wait()
    me = Owner.current()
    owners = {"gone": Owner(me.host, me.boot, gone.pid, ""), "alive": me}
    containers = {
        name: client.containers.create(
            BASE_IMAGE,
            entrypoint=["sleep"],
            command=["infinity"],
            labels={RUN_LABEL: run_id, **owner.labels()},
        )
        for name, owner in owners.items()
    }
    try:
        for container in containers.values():
            container.start()
        result = dagpar_run("cleanup")
        assert result.exit_code == 0, result
        # Another run's killed dagpar may have left one on this engine as well, and another
        # run starting meanwhile may have swept the abandoned one first.
        assert re.search(r"removed \d+ abandoned container", result.stdout), result
        assert [c.id for c in _labelled(client, run_id)] == [containers["alive"].id]
    finally:
        cleanup_run(run_id)


def test_the_keepalive_ends_when_its_owner_stops_renewing_it(client: Any, run_id: str) -> None:
    from dagpar_cli.execution.docker_engines import EngineHandle
    from dagpar_cli.execution.docker_owner import keepalive_command, renew

    entrypoint, command = keepalive_command(4)
    container = client.containers.create(
        BASE_IMAGE, entrypoint=entrypoint, command=command, labels={RUN_LABEL: run_id}
    )
    engine = EngineHandle(DockerEngine(url=DEFAULT_URL))
    try:
        container.start()
        # Renewed again and again (far more often than every 4 s), it outlives its limit.
        renewed_until, beat = time.monotonic() + 12, 0
        while time.monotonic() < renewed_until:
            beat += 1
            renew(engine, container.id, beat)
            container.reload()
            assert container.status == "running", container.logs()
            time.sleep(0.1)
        deadline = time.monotonic() + 60
        while container.status == "running":
            assert time.monotonic() < deadline, "the keep-alive did not end by itself"
            time.sleep(0.2)
            container.reload()
        assert container.attrs["State"]["ExitCode"] == 0
    finally:
        engine.close()
        cleanup_run(run_id)


def test_the_executor_renews_the_keepalive_while_a_command_runs(
    executor: DockerExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagpar_cli.execution import docker as docker_module
    from dagpar_cli.execution import docker_owner

    # A keep-alive of 3 s renewed every 0.3 s: an 8 s command needs the renewals to finish.
    monkeypatch.setattr(docker_module, "KEEPALIVE", docker_owner.keepalive_command(3))
    monkeypatch.setattr(docker_owner, "RENEW_SECONDS", 0.3)
    with executor.open(_spec()) as session:
        outcome = session.run(_sh("sleep 8; echo done"))
    assert outcome.ok and outcome.stdout == "done\n", outcome


@pytest.fixture(scope="module", params=["dockerd", "relay"])
def second_engine(request: pytest.FixtureRequest, client: Any) -> Iterator[SecondEngine]:
    """A second dockerd (where this machine allows one), and a TCP endpoint to the first."""
    if request.param == "dockerd":
        reason = unavailable()
        if reason:
            pytest.skip(f"no second dockerd here: {reason}")
        engine = start_second_engine()
    else:
        engine = start_relay()
    import docker

    c = docker.DockerClient(base_url=engine.url)
    try:
        ensure_base_image(c)
        yield engine
    finally:
        c.close()
        engine.stop()


def test_sessions_spread_over_two_engines(
    client: Any, second_engine: SecondEngine, run_id: str
) -> None:
    import docker

    other = docker.DockerClient(base_url=second_engine.url)
    executor = DockerExecutor(
        [DockerEngine(url=DEFAULT_URL, slots=2), DockerEngine(url=second_engine.url, slots=2)],
        run_id=run_id,
    )
    try:
        assert executor.capacity() == 4
        sessions = [executor.open(_spec(label=f"s#{i}")) for i in range(4)]
        wheres = [s.where for s in sessions]
        assert wheres.count(f"docker@{DEFAULT_URL}") == 2
        assert wheres.count(f"docker@{second_engine.url}") == 2
        if second_engine.separate_daemon:
            # Each container really lives on its own engine.
            assert len(_labelled(client, run_id)) == 2
            assert len(_labelled(other, run_id)) == 2
        for s in sessions:
            assert s.run(_sh("echo $((6*7))")).stdout == "42\n"
        sessions[0].close()
        sessions[1].close()
        # Least loaded first: the engine with free slots gets the next slice.
        freed = {sessions[0].where, sessions[1].where}
        nxt = executor.open(_spec(label="s#5"))
        assert nxt.where in freed
    finally:
        executor.close()
        other.close()
    assert _labelled(client, run_id) == []


def test_capacity_defaults_to_the_engines_cpu_counts(
    client: Any, second_engine: SecondEngine, run_id: str
) -> None:
    ncpu = int(client.info()["NCPU"])
    executor = DockerExecutor(
        [DockerEngine(url=DEFAULT_URL), DockerEngine(url=second_engine.url, slots=3)],
        run_id=run_id,
    )
    try:
        assert executor.capacity() == ncpu + 3
    finally:
        executor.close()


@pytest.mark.parametrize("url", ["unix:///tmp/dagpar-no-such-engine.sock", "tcp://127.0.0.1:9"])
def test_unreachable_engine_is_a_one_line_execution_error(url: str, run_id: str) -> None:
    executor = DockerExecutor([DockerEngine(url=url)], run_id=run_id)
    try:
        with pytest.raises(ExecutionError) as info:
            executor.capacity()
        assert url in str(info.value) and "unreachable" in str(info.value)
        assert "\n" not in str(info.value)
        assert info.value.exit_code == ExitCode.EXECUTION_FAILED
        with pytest.raises(ExecutionError, match="unreachable"):
            executor.open(_spec())
    finally:
        executor.close()


def test_unknown_context_name_is_an_execution_error(run_id: str) -> None:
    executor = DockerExecutor([DockerEngine(url="no-such-context", slots=1)], run_id=run_id)
    try:
        with pytest.raises(ExecutionError, match="no-such-context"):
            executor.open(_spec())
    finally:
        executor.close()


def test_context_name_resolves_to_its_endpoint(client: Any, run_id: str) -> None:
    by_context = DockerExecutor([DockerEngine(url="default", slots=1)], run_id=run_id)
    try:
        with by_context.open(_spec()) as session:
            assert session.run(ExecRequest(argv=("true",), cwd="/")).ok
    finally:
        by_context.close()


def test_missing_image_names_the_image_and_the_fix(executor: DockerExecutor) -> None:
    spec = SessionSpec(label="x#1", image="dagpar-test/absent:1.0")
    with pytest.raises(ExecutionError) as info:
        executor.open(spec)
    message = str(info.value)
    assert "dagpar-test/absent:1.0" in message
    assert "docker pull dagpar-test/absent:1.0" in message and "image:" in message
    assert info.value.exit_code == ExitCode.EXECUTION_FAILED
    # The answer is remembered for the other slices (no second pull), with the same message.
    with pytest.raises(ExecutionError) as again:
        executor.open(spec)
    assert str(again.value) == message


def test_spec_without_image_is_an_execution_error(executor: DockerExecutor) -> None:
    with pytest.raises(ExecutionError, match="image:"):
        executor.open(SessionSpec(label="x#1"))


def test_copied_mounts_for_engines_without_our_filesystem(
    client: Any, run_id: str, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("copied in\n")
    reports = tmp_path / "reports"
    reports.mkdir()
    executor = DockerExecutor(run_id=run_id, bind_mounts=False)
    try:
        spec = _spec(
            mounts=(
                Mount(source=tmp_path, target="/src/ws"),
                Mount(source=reports, target="/reports", read_only=False),
            )
        )
        with executor.open(spec) as session:
            assert session.run(_sh("echo '<xml/>' > /reports/junit.xml")).ok
            outcome = session.run(
                ExecRequest(argv=("cat", session.path(tmp_path / "a.txt")), cwd="/")
            )
            assert outcome.stdout == "copied in\n"
            assert session.run(_sh("echo changed > /src/ws/a.txt")).ok
        assert (tmp_path / "a.txt").read_text() == "copied in\n"
        # Writable mounts come back when the session closes, as reports do through a mount.
        assert (reports / "junit.xml").read_text() == "<xml/>\n"
    finally:
        executor.close()


def _session(executor_name: str, engines: tuple[str, ...] = ()) -> RunContext:
    config = Config(workspace=Path.cwd(), file=None, toolchains=(), executor="local")
    return RunContext(
        config=config,
        options=RunOptions(executor=executor_name, engines=engines),
        pm=pluggy.PluginManager("dagpar"),
        run_id="hook-test",
    )


def test_hook_answers_only_for_docker() -> None:
    assert dagpar_make_executor(_session("local")) is None
    made = dagpar_make_executor(_session("docker", ("tcp://build-1:2376#3", "ci-box")))
    assert isinstance(made, DockerExecutor)
    try:
        assert made.run_id == "hook-test"
        assert [(e.url, e.config.slots) for e in made.engines] == [
            ("tcp://build-1:2376", 3),
            ("ci-box", None),
        ]
    finally:
        made.close()


def test_hook_uses_configured_engines_when_no_option() -> None:
    session = _session("docker")
    session.config = Config(
        workspace=Path.cwd(),
        file=None,
        toolchains=(),
        executor="docker",
        engines=(DockerEngine(url="unix:///a.sock", slots=2),),
    )
    made = dagpar_make_executor(session)
    assert isinstance(made, DockerExecutor)
    try:
        assert made.capacity() == 2
    finally:
        made.close()


@pytest.mark.go
@pytest.mark.node
def test_toolchains_run_in_the_base_image(executor: DockerExecutor, tmp_path: Path) -> None:
    """pytest, go test and jest run in the test image with the host toolchains mounted."""
    py = tmp_path / "py"
    py.mkdir()
    (py / "test_ok.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n")
    go = tmp_path / "go"
    go.mkdir()
    (go / "go.mod").write_text("module example.com/ok\n\ngo 1.19\n")
    (go / "ok_test.go").write_text(
        'package ok\n\nimport "testing"\n\nfunc TestOK(t *testing.T) {}\n'
    )
    js = tmp_path / "js"
    js.mkdir()
    (js / "package.json").write_text('{"name": "ok"}\n')
    (js / "ok.test.js").write_text("test('ok', () => expect(1 + 1).toBe(2));\n")
    deps = Path(__file__).resolve().parents[1] / "data" / "jest-deps" / "node_modules"
    spec = _spec(
        mounts=(
            *toolchain_mounts(),
            Mount(source=tmp_path, target="/work", read_only=False),
            Mount(source=deps, target="/deps/node_modules"),
        ),
        env=toolchain_env(),
    )
    with executor.open(spec) as session:
        pytest_run = session.run(
            ExecRequest(
                argv=("python", "-m", "pytest", "-q", "-p", "no:cacheprovider"), cwd="/work/py"
            )
        )
        assert pytest_run.ok, pytest_run.stdout + pytest_run.stderr
        assert "1 passed" in pytest_run.stdout
        go_run = session.run(ExecRequest(argv=("go", "test", "./..."), cwd="/work/go"))
        assert go_run.ok, go_run.stdout + go_run.stderr
        assert "ok" in go_run.stdout
        jest_run = session.run(
            ExecRequest(
                argv=("node", "/deps/node_modules/jest/bin/jest.js", "--ci"), cwd="/work/js"
            )
        )
        assert jest_run.ok, jest_run.stdout + jest_run.stderr
        assert "1 passed" in jest_run.stderr


def test_toolchain_plugin_gives_sessions_the_host_toolchains(client: Any) -> None:
    from dagpar_cli.pluginmanager import get_plugin_manager

    pm = get_plugin_manager(extra_plugins=(ToolchainDockerPlugin(),))
    session = _session("docker")
    session.pm = pm
    executor = pm.hook.dagpar_make_executor(session=session)
    assert isinstance(executor, DockerExecutor)
    try:
        # The spec's own variables win over the toolchain environment.
        with executor.open(_spec(env={"GOPATH": "/spec/gopath"})) as opened:
            outcome = opened.run(
                _sh('python -c "import sys; print(sys.version_info[0])"; echo $GOPATH')
            )
        assert outcome.stdout == "3\n/spec/gopath\n", outcome.stderr
    finally:
        executor.close()


def test_base_image_build_is_idempotent(client: Any) -> None:
    before = client.images.get(BASE_IMAGE).id
    assert ensure_base_image(client) == BASE_IMAGE
    assert client.images.get(BASE_IMAGE).id == before
