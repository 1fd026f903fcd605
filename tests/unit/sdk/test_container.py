"""``dag.container()``: an immutable pipeline builder; nothing runs until a terminal is called.

Outside a dagpar run (a toolchain's own unit tests) a pipeline runs on this machine; inside one it
runs on the run's executor, with container paths mapped to what the executor sees.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dagpar_cli import Directory, TestsFailedError, dag
from dagpar_cli.execution.api import Outcome
from dagpar_cli.sdk import ExecFailedError
from dagpar_cli.testing import DagparResult, FakeExecutor

# ------------------------------------------------------------------------------- building


def test_every_with_call_returns_a_new_pipeline_and_runs_nothing(tmp_path: Path) -> None:
    base = dag.container()
    built = (
        base.from_("python:3.12")
        .with_directory("/w", Directory(tmp_path))
        .with_workdir("/w")
        .with_env_variable("A", "1")
        .with_exec(["sh", "-c", f"touch {tmp_path}/ran"])
    )
    assert base == dag.container()
    assert built.image == "python:3.12"
    assert built.workdir == "/w"
    assert built.env == (("A", "1"),)
    assert not (tmp_path / "ran").exists()


def test_a_later_value_for_the_same_mount_or_variable_replaces_the_earlier(
    tmp_path: Path,
) -> None:
    a, b = Directory(tmp_path / "a"), Directory(tmp_path / "b")
    ctr = (
        dag.container()
        .with_directory("/w/", a)
        .with_directory("/w", b)
        .with_env_variable("X", "1")
        .with_env_variable("X", "2")
    )
    assert [(m.target, m.directory) for m in ctr.mounts] == [("/w", b)]
    assert ctr.env == (("X", "2"),)


def test_mistakes_in_building_are_caught_at_once(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="absolute path"):
        dag.container().with_directory("w", Directory(tmp_path))
    with pytest.raises(TypeError, match="list of arguments"):
        dag.container().with_exec("echo hi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'success' or 'any'"):
        dag.container().with_exec(["true"], expect="sometimes")


def test_host_path_finds_the_directory_behind_a_container_path(tmp_path: Path) -> None:
    src, web = tmp_path, tmp_path / "web"
    ctr = (
        dag.container()
        .with_directory("/w", Directory(src))
        .with_directory("/w/web", Directory(web))
    )
    assert ctr.host_path("/w") == src
    assert ctr.host_path("/w/api/x.py") == src / "api" / "x.py"
    assert ctr.host_path("/w/web/a.js") == web / "a.js"  # the deepest mount
    assert ctr.host_path("/wx") is None
    assert ctr.host_path("/etc") is None


# -------------------------------------------------------------- running outside a dagpar run


def test_outside_dagpar_a_pipeline_runs_here_with_container_paths_mapped(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("hello")
    ctr = (
        dag.container()
        .with_directory("/w", Directory(tmp_path), writable=True)
        .with_workdir("/w")
        .with_env_variable("GREETING", "hi")
        .with_exec(["sh", "-c", 'echo "$GREETING $(cat in.txt)" > /dev/stderr; pwd', "sh"])
    )
    assert ctr.stdout() == f"{tmp_path}\n"
    assert ctr.stderr() == "hi hello\n"
    assert ctr.exit_code() == 0
    # An argument that is a container path, or starts with one, is rewritten to the host path.
    assert (
        dag.container()
        .with_directory("/w", Directory(tmp_path))
        .with_exec(["cat", "/w/in.txt"])
        .stdout()
        == "hello"
    )


def test_a_failing_command_fails_the_pipeline_unless_any_exit_is_expected() -> None:
    failing = dag.container().with_exec(["sh", "-c", "echo first; echo why >&2; exit 3"])
    with pytest.raises(ExecFailedError) as info:
        failing.sync()
    assert isinstance(info.value, TestsFailedError)
    assert info.value.message.startswith("command failed with exit code 3: sh -c")
    assert info.value.errors == ("why",)
    assert info.value.outcome.exit_code == 3
    tolerant = dag.container().with_exec(["sh", "-c", "exit 3"], expect="any")
    assert tolerant.exit_code() == 3
    # Commands after a failure do not run.
    with pytest.raises(ExecFailedError):
        dag.container().with_exec(["false"]).with_exec(["sh", "-c", "echo never"]).stdout()


def test_an_empty_pipeline_has_empty_results() -> None:
    assert dag.container().stdout() == ""
    assert dag.container().exit_code() == 0
    assert dag.container().sync() == dag.container()


def test_directory_returns_a_copy_of_what_the_commands_wrote(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = (
        dag.container()
        .with_directory("/out", Directory(out), writable=True)
        .with_exec(["sh", "-c", 'mkdir -p "$1/sub" && echo a > "$1/sub/a.txt"', "sh", "/out"])
        .directory("/out")
    )
    assert result.host_path != out
    assert result.read_text("sub/a.txt") == "a\n"


# -------------------------------------------------------------- running inside a dagpar run

PIPELINE = """
from __future__ import annotations
from dagpar_cli import Directory, check, dag, object_type

@object_type
class Tool:
    source: Directory

    @check
    def build(self) -> None:
        out = (
            dag.container()
            .from_("builder:1")
            .with_directory("/src", self.source)
            .with_workdir("/src/app")
            .with_env_variable("MODE", "ci")
            .with_exec(["make", "-C", "/src/app", "--out=/src/dist"])
            .stdout()
        )
        assert out == "built", out
"""


@pytest.mark.parametrize("shares_mounts", [True, False])
def test_inside_a_run_the_pipeline_runs_on_the_executor_with_its_paths(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    fake_executor: FakeExecutor,
    shares_mounts: bool,
) -> None:
    ws = make_workspace(
        {"dagpar.yaml": "toolchains:\n  tool: {use: ci/tool.py}\n", "ci/tool.py": PIPELINE}
    )
    fake_executor.shares_mounts = shares_mounts
    fake_executor.on("make", Outcome(exit_code=0, stdout="built"))
    result = dagpar_run("check", "-C", ws, "--json")
    assert result.exit_code == 0, result
    (call,) = fake_executor.calls
    root = str(ws.resolve()) if shares_mounts else "/src"
    assert call.argv == ("make", "-C", f"{root}/app", f"--out={root}/dist")
    assert call.request.cwd == f"{root}/app"
    assert call.spec.image == "builder:1"
    assert call.spec.env["MODE"] == "ci"
    assert [(m.source, m.target) for m in call.spec.mounts] == [(ws.resolve(), "/src")]
    assert json.loads(result.stdout)["checks"][0]["status"] == "passed"
