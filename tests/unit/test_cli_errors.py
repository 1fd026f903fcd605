"""Bad command lines: one line naming the flag or value and the fix, the documented exit code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult

WORKSPACE = {
    "dagpar.yaml": "toolchains:\n  lint: {use: ci/lint.py}\n",
    "ci/lint.py": """
        from __future__ import annotations
        from dagpar_cli import Directory, check, field, object_type, parallel

        @object_type
        class Files:
            workspace: Directory
            files: list[str] = field(parallel=True)

            @parallel
            def run(self) -> None:
                pass

        @object_type
        class Lint:
            source: Directory

            def files(self, pattern: str = "*.txt", limit: int = 10) -> Files:
                return Files(workspace=self.source, files=self.source.glob(pattern)[:limit])

            @check
            def all(self) -> None:
                self.files().run()
    """,
    "a.txt": "a\n",
}

CASES = [
    (["check", "-j", "0"], 2, "-j/--parallelism '0': expected a positive number or 'auto'"),
    (["check", "-j", "many"], 2, "-j/--parallelism 'many'"),
    (["check", "--shard", "5/4"], 2, "--shard '5/4': shard index must be between 1 and 4"),
    (["check", "--retries", "-1"], 2, "--retries must be 0 or more"),
    (["check", "--timeout", "0"], 2, "--timeout must be a positive number of seconds"),
    (["check", "--filter", "lint:a.txt::"], 2, "empty test-name pattern after '::'"),
    (["check", "--filter", "lnt:a.txt"], 2, "no toolchain instance 'lnt'; did you mean 'lint'?"),
    (["check", "--filter", "nothing/here"], 5, "matched no test; closest paths: a.txt"),
    (["check", "lint:al"], 5, "no check matches 'lint:al'; did you mean lint:all?"),
    (["check", "--executor", "podman"], 2, "Invalid value for '--executor'"),
    (["call", "lnt", "files", "run"], 2, "no toolchain instance 'lnt'; did you mean 'lint'?"),
    (["call", "lint", "fils", "run"], 2, "Lint has no function 'fils'; did you mean 'files'?"),
    (["call", "lint", "files", "--limt", "2", "run"], 2, "has no argument --limt"),
    (["call", "lint", "files", "--limit", "two", "run"], 2, "--limit expects int, got 'two'"),
    (["call", "lint", "files", "run", "more"], 2, "nothing can follow it (remove 'more')"),
    (["call", "lint", "--limit", "2"], 2, "--limit comes before any function"),
    (["call", "lint"], 2, "name a function"),
]


@pytest.mark.parametrize(("args", "code", "message"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_line_with_the_documented_exit_code(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    args: list[str],
    code: int,
    message: str,
) -> None:
    ws = make_workspace(WORKSPACE)
    result = dagpar_run(*args, "-C", ws)
    assert result.exit_code == code, result
    err = result.stderr.strip()
    assert message in err, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("dagpar: error")]) <= 1


def test_missing_workspace_is_a_usage_error(dagpar_run: Callable[..., DagparResult]) -> None:
    result = dagpar_run("check", "-C", "/no/such/workspace")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "dagpar: error: workspace '/no/such/workspace' does not exist (-C/--workspace)"
    )


def test_debug_shows_the_traceback(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(WORKSPACE)
    result = dagpar_run("check", "-C", ws, "-j", "0", "--debug")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr


def test_a_call_chain_with_arguments_runs(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace({**WORKSPACE, "b.txt": "b\n", "c.md": "c\n"})
    result = dagpar_run(
        "call", "-C", ws, "--json", "lint", "files", "--pattern", "*.txt", "--limit", "1", "run"
    )
    assert result.exit_code == 0, result
    assert [t["id"] for t in result.json()["checks"][0]["tests"]] == ["a.txt::run"]


@pytest.mark.parametrize(
    "command",
    ["", "check", "call", "functions", "timings", "timings show", "timings export",
     "timings merge", "timings import", "junit", "junit merge"],
)  # fmt: skip
def test_every_command_help_shows_an_example(
    dagpar_run: Callable[..., DagparResult], command: str
) -> None:
    result = dagpar_run(*command.split(), "--help")
    assert result.exit_code == 0, result
    assert "Example" in result.stdout and "dagpar " in result.stdout.split("Example", 1)[1]
