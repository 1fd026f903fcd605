"""With ``--json``, standard output carries the JSON document and nothing else.

A toolchain that prints (at import, or in a check) used to put its text in front of the
document, so ``dagpar check --json | jq`` failed; what it prints now goes to standard error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult

NOISY = """
    from __future__ import annotations
    import os
    import sys
    from dagpar_cli import Directory, check, field, object_type, parallel

    print("noise at import")
    sys.stdout.flush()
    os.system("echo noise from a child at import")

    @object_type
    class Files:
        workspace: Directory
        files: list[str] = field(parallel=True)

        @parallel
        def run(self) -> None:
            print("noise in a slice")

    @object_type
    class Noisy:
        source: Directory

        def files(self) -> Files:
            print("noise in a function")
            return Files(workspace=self.source, files=self.source.glob("*.txt"))

        @check
        def all(self) -> None:
            print("noise in a check")
            self.files().run()
"""

WORKSPACE = {
    "dagpar.yaml": "toolchains:\n  noisy: {use: ci/noisy.py}\n",
    "ci/noisy.py": NOISY,
    "a.txt": "a\n",
    "b.txt": "b\n",
}

COMMANDS = {
    "check": ["check", "--json"],
    "check -l": ["check", "-l", "--json"],
    "dry run": ["check", "--dry-run", "--json"],
    "call": ["call", "--json", "noisy", "files", "run"],
}


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_toolchain_prints_go_to_stderr(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    args: list[str],
) -> None:
    ws = make_workspace(WORKSPACE)
    result = dagpar_run(*args, "-C", ws)
    assert result.exit_code == 0, result
    document = json.loads(result.stdout)
    assert isinstance(document, dict), result
    assert "noise" not in result.stdout
    assert "noise at import" in result.stderr


def test_without_json_toolchain_prints_stay_on_stdout(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(WORKSPACE)
    result = dagpar_run("check", "-l", "-C", ws)
    assert result.exit_code == 0, result
    assert "noise at import" in result.stdout


@pytest.mark.parametrize("args", [COMMANDS["check"], COMMANDS["dry run"]], ids=["check", "dry"])
def test_a_child_process_printing_does_not_reach_stdout_either(
    make_workspace: Callable[[Mapping[str, str]], Path],
    args: list[str],
) -> None:
    ws = make_workspace(WORKSPACE)
    proc = subprocess.run(
        [sys.executable, "-m", "dagpar_cli", *args, "-C", str(ws)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc
    json.loads(proc.stdout)
    assert "noise" not in proc.stdout
    assert "noise from a child at import" in proc.stderr
    assert "noise at import" in proc.stderr
