"""Container running on its own: pipelines on the local executor, and their one-line errors."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace, TracebackType
from typing import Any, cast

import pytest

from dagpar_cli.errors import ExecutionError
from dagpar_cli.execution.api import (
    ExecFailedError,
    ExecRequest,
    ExecSession,
    Mount,
    Outcome,
    OutputFile,
    PipelineResult,
)
from dagpar_cli.execution.container import (
    PipelineRunner,
    output_file,
    raise_for_infrastructure,
    translator,
)
from dagpar_cli.execution.local import LocalExecutor
from dagpar_cli.model import SlicePlan
from dagpar_cli.runtime.context import CallContext, SliceContext
from dagpar_cli.sdk.container import Container
from dagpar_cli.sdk.directory import Directory


class Pipelines:
    """A PipelineRunner on the local executor, with its new directories and cancel state."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hints: list[str] = []
        self.cancelled: str | None = None
        self.runner = PipelineRunner(LocalExecutor(), self.new_dir, lambda: self.cancelled)

    def new_dir(self, hint: str) -> Path:
        self.hints.append(hint)
        path = self.root / f"new-{len(self.hints)}"
        path.mkdir()
        return path

    def run(self, container: Container, **kw: Any) -> PipelineResult:
        return self.runner.run(container, label="api:test#1", labels={}, **kw)


@pytest.fixture
def pipelines(tmp_path: Path) -> Pipelines:
    (tmp_path / "out").mkdir()
    return Pipelines(tmp_path / "out")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "sub" / "data.txt").write_text("payload")
    return work


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def mounted(work: Path) -> Container:
    return Container().with_directory("/w", Directory(work, "")).with_workdir("/w/sub")


def new_slice(tmp_path: Path, **kw: Any) -> SliceContext:
    options: dict[str, Any] = {
        "call": cast(CallContext, SimpleNamespace(name="api:test")),
        "plan": SlicePlan(index=1, items=(), predicted_seconds=0.0),
        "total": 1,
        "function": "run",
        "report_dir": tmp_path,
        "env": {},
        "deadline": None,
        "runner": None,
        "prefix": "",
        "narrowed": False,
    }
    options.update(kw)
    return SliceContext(**options)


def test_container_paths_become_host_paths_on_the_local_executor(
    pipelines: Pipelines, work: Path
) -> None:
    container = mounted(work).with_exec(
        ["sh", "-c", 'pwd; cat "$1"; echo; echo "$2"', "sh", "/w/sub/data.txt", "--out=/w/sub/x"]
    )
    result = pipelines.run(container)
    cwd, data, flag = result.outcomes[0].stdout.splitlines()
    assert Path(cwd).resolve() == (work / "sub").resolve()
    assert data == "payload"
    assert flag == f"--out={(work / 'sub' / 'x').resolve()}"


def test_commands_run_in_order_and_every_outcome_is_kept(pipelines: Pipelines, work: Path) -> None:
    container = (
        mounted(work)
        .with_exec(sh("echo one > order.txt"))
        .with_exec(sh("exit 3"), expect="any")
        .with_exec(sh("echo two >> order.txt; cat order.txt"))
    )
    result = pipelines.run(container)
    assert [o.exit_code for o in result.outcomes] == [0, 3, 0]
    assert result.outcomes[-1].stdout == "one\ntwo\n"


def test_a_command_expected_to_succeed_that_fails_stops_the_pipeline(
    pipelines: Pipelines, work: Path
) -> None:
    container = (
        mounted(work).with_exec(sh("echo broken >&2; exit 3")).with_exec(sh("touch never-made"))
    )
    with pytest.raises(ExecFailedError) as info:
        pipelines.run(container)
    assert info.value.message == "command failed with exit code 3: sh -c echo broken >&2; exit 3"
    assert list(info.value.errors) == ["broken"]
    # The argv as the toolchain wrote it; the outcome as it ran.
    assert info.value.argv == ("sh", "-c", "echo broken >&2; exit 3")
    assert info.value.outcome.exit_code == 3
    assert not (work / "sub" / "never-made").exists()


def test_a_program_that_does_not_exist_is_one_line_with_the_fix(
    pipelines: Pipelines, work: Path
) -> None:
    container = mounted(work).with_exec(["dagpar-no-such-program", "--version"], expect="any")
    with pytest.raises(ExecutionError) as info:
        pipelines.run(container)
    assert info.value.message == (
        "cannot start 'dagpar-no-such-program': dagpar-no-such-program: command not found; "
        "install it or set `runner:` for the toolchain in dagpar.yaml"
    )


def test_a_command_past_the_slice_deadline_is_killed_and_named(
    pipelines: Pipelines, work: Path, tmp_path: Path
) -> None:
    ctx = new_slice(tmp_path, deadline=time.monotonic() + 0.05)
    start = time.monotonic()
    with pytest.raises(
        ExecutionError, match=r"^timed out after \d+s \(--timeout\) running: sleep 30$"
    ):
        pipelines.run(mounted(work).with_exec(["sleep", "30"]), slice=ctx)
    assert time.monotonic() - start < 20  # killed, not waited for


def test_a_command_killed_by_a_signal_is_an_infrastructure_error(
    pipelines: Pipelines, work: Path
) -> None:
    with pytest.raises(ExecutionError, match=r"^killed by signal 9 running: sh -c 'kill -9 \$\$'$"):
        pipelines.run(mounted(work).with_exec(sh("kill -9 $$"), expect="any"))


def test_a_slice_gives_its_environment_and_learns_where_it_ran(
    pipelines: Pipelines, work: Path, tmp_path: Path
) -> None:
    ctx = new_slice(tmp_path, env={"DAGPAR_SLICE": "1/1", "SHARED": "slice"})
    container = mounted(work).with_env_variable("SHARED", "container")
    container = container.with_exec(sh('echo "$DAGPAR_SLICE $SHARED"'))
    result = pipelines.run(container, slice=ctx)
    assert result.outcomes[0].stdout == "1/1 container\n"
    assert ctx.wheres == ["local"]
    assert ctx.shares_mounts
    pipelines.run(container, slice=ctx)
    assert ctx.wheres == ["local"]


def test_copy_out_returns_a_fresh_directory_with_the_files(
    pipelines: Pipelines, work: Path
) -> None:
    container = mounted(work).with_exec(sh("mkdir -p dist && echo built > dist/app"))
    result = pipelines.run(container, copy_out=["/w/sub/dist"])
    (path,) = result.directories
    assert path == "/w/sub/dist"
    copied = result.directories[path]
    assert copied.read_text("app") == "built\n"
    assert copied.host_path != work / "sub" / "dist"
    assert pipelines.hints == ["out-api:test#1"]


def test_nothing_runs_once_the_run_is_cancelled(pipelines: Pipelines, work: Path) -> None:
    pipelines.cancelled = "--failfast"
    with pytest.raises(ExecutionError, match=r"^--failfast$"):
        pipelines.run(mounted(work).with_exec(sh("touch made")))
    assert not (work / "sub" / "made").exists()


# ---------------------------------------------------------------------------------------------
# raise_for_infrastructure and translator
# ---------------------------------------------------------------------------------------------

REQUEST = ExecRequest(argv=("pytest", "-q"), cwd="/w", timeout=12.4)


@pytest.mark.parametrize(
    ("outcome", "cancelled", "message"),
    [
        (Outcome(exit_code=0), "interrupted", "interrupted"),
        (
            Outcome(exit_code=-9, timed_out=True),
            None,
            "timed out after 12s (--timeout) running: pytest -q",
        ),
        (Outcome(exit_code=137, killed="out of memory"), None, "out of memory running: pytest -q"),
        (
            Outcome(exit_code=127, not_started=True, stderr="warn\nexec: pytest: not found\n"),
            None,
            "cannot start 'pytest': exec: pytest: not found; "
            "install it or set `runner:` for the toolchain in dagpar.yaml",
        ),
        (
            Outcome(exit_code=127, not_started=True),
            None,
            "cannot start 'pytest': not found; "
            "install it or set `runner:` for the toolchain in dagpar.yaml",
        ),
        (Outcome(exit_code=-15), None, "killed by signal 15 running: pytest -q"),
    ],
)
def test_what_did_not_really_run_is_one_line(
    outcome: Outcome, cancelled: str | None, message: str
) -> None:
    with pytest.raises(ExecutionError) as info:
        raise_for_infrastructure(REQUEST, outcome, cancelled)
    assert info.value.message == message


def test_a_timeout_without_a_limit_does_not_blame_the_timeout_option() -> None:
    request = ExecRequest(argv=("go", "test"), cwd="/w")
    with pytest.raises(ExecutionError, match=r"^timed out running: go test$"):
        raise_for_infrastructure(request, Outcome(exit_code=-9, timed_out=True), None)


@pytest.mark.parametrize("outcome", [Outcome(exit_code=0), Outcome(exit_code=1)])
def test_a_command_that_ran_is_no_infrastructure_error(outcome: Outcome) -> None:
    raise_for_infrastructure(REQUEST, outcome, "--failfast")


class MappedSession:
    """A session that mounts host directories elsewhere (as a container does)."""

    where = "elsewhere"

    def path(self, host_path: Path) -> str:
        return f"/mnt{host_path}"

    def run(self, request: ExecRequest) -> Outcome:
        raise AssertionError

    def copy_out(self, session_path: str, host_dir: Path) -> None:
        raise AssertionError

    def close(self) -> None:
        pass

    def __enter__(self) -> ExecSession:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass


def test_the_translator_maps_mounts_longest_first_and_leaves_the_rest() -> None:
    mounts = (Mount(Path("/src"), "/w"), Mount(Path("/cache"), "/w/cache"))
    translate = translator(MappedSession(), mounts)
    assert translate("/w") == "/mnt/src"
    assert translate("/w/a/b.py") == "/mnt/src/a/b.py"
    assert translate("/w/cache/x") == "/mnt/cache/x"
    assert translate("--report=/w/r.xml") == "--report=/mnt/src/r.xml"
    assert translate("/wx/y") == "/wx/y"
    assert translate("-k") == "-k"
    assert translate("name=/w/x") == "name=/w/x"  # only an option's value is a path


def test_the_translator_is_the_identity_where_mounts_are_where_they_say() -> None:
    class Same(MappedSession):
        def path(self, host_path: Path) -> str:
            return str(host_path)

    translate = translator(Same(), (Mount(Path("/w"), "/w"),))
    assert translate("--x=/w/a") == "--x=/w/a"


def test_redirect_stdout_lands_in_the_host_file_of_a_writable_mount(
    pipelines: Pipelines, work: Path, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    container = (
        Container()
        .with_directory("/src", Directory(work))
        .with_directory("/reports", Directory(reports), writable=True)
        .with_workdir("/src")
        .with_exec(
            ["sh", "-c", "printf 0123456789; echo oops >&2"],
            redirect_stdout="/reports/go-1.json",
            keep_output=2,
        )
    )
    (outcome,) = pipelines.run(container).outcomes
    assert (reports / "go-1.json").read_text() == "0123456789"
    assert outcome.stdout_cut == 6
    assert outcome.stdout.startswith("01") and outcome.stdout.endswith("89")
    assert outcome.stderr.startswith("oo") and outcome.stderr_cut == 1


def test_redirect_stdout_outside_a_writable_mount_is_a_one_line_error(
    pipelines: Pipelines, work: Path
) -> None:
    container = (
        Container()
        .with_directory("/src", Directory(work))
        .with_exec(["true"], redirect_stdout="/src/out.json")
    )
    with pytest.raises(ExecutionError, match="not in a writable directory"):
        pipelines.run(container)
    assert not (work / "out.json").exists()


def test_output_file_takes_the_deepest_mount(tmp_path: Path) -> None:
    outer = Mount(source=tmp_path / "a", target="/w", read_only=False)
    inner = Mount(source=tmp_path / "b", target="/w/reports", read_only=False)
    assert output_file([outer, inner], "/w/reports/x/go-1.json") == OutputFile(
        tmp_path / "b", "x/go-1.json"
    )
    assert output_file([outer, inner], "/w/other.json") == OutputFile(tmp_path / "a", "other.json")
    assert output_file([outer], None) is None


def test_with_exec_wants_an_absolute_redirect_path() -> None:
    with pytest.raises(ValueError, match="absolute"):
        Container().with_exec(["true"], redirect_stdout="out.json")
