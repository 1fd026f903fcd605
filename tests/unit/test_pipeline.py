"""Stage 1 and the session's life: ``dagpar_configure`` before discovery, one ``sessionfinish``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pluggy
import pytest
from click.testing import CliRunner

from dagpar_cli.cli import cli
from dagpar_cli.config import RunOptions
from dagpar_cli.errors import ExitCode, ToolchainError
from dagpar_cli.model import RunResult
from dagpar_cli.pipeline import close_session, open_session, session_scope
from dagpar_cli.pluginmanager import get_plugin_manager, hookimpl
from dagpar_cli.run_context import RunContext
from dagpar_cli.testing import write_tree

LINT = """
    from dagpar_cli import check, object_type

    @object_type
    class Lint:
        @check
        def style(self) -> None:
            pass

        @check
        def types(self) -> None:
            pass
    """


class Recorder:
    """Records the session hooks, and detection, in the order they fire."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def dagpar_configure(self, session: RunContext) -> None:
        self.calls.append(("configure", session.options.list_only))

    @hookimpl
    def dagpar_detect_toolchains(self, workspace: Path) -> list[dict[str, Any]] | None:
        self.calls.append(("detect", None))
        return None

    @hookimpl
    def dagpar_sessionfinish(self, run: RunResult | None, exitcode: int) -> None:
        self.calls.append(("finish", exitcode))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def pm(recorder: Recorder) -> pluggy.PluginManager:
    return get_plugin_manager(extra_plugins=(recorder,))


@pytest.fixture
def lint_ws(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "ws",
        {"dagpar.yaml": "toolchains:\n  lint: {use: ci/lint.py}\n", "ci/lint.py": LINT},
    )


def invoke(pm: pluggy.PluginManager, *args: str | Path) -> Any:
    """``dagpar ARGS`` with *pm* as click's context object, as :func:`main` passes it."""
    return CliRunner().invoke(cli, [str(a) for a in args], obj=pm, catch_exceptions=False)


def test_configure_fires_before_detection(
    tmp_path: Path, pm: pluggy.PluginManager, recorder: Recorder
) -> None:
    with session_scope(tmp_path, RunOptions(), pm=pm) as session:
        assert session.config.detect is False
        assert recorder.calls == [("configure", False), ("detect", None)]
    assert recorder.calls[-1] == ("finish", 0)


def test_a_session_finishes_once(
    tmp_path: Path, pm: pluggy.PluginManager, recorder: Recorder
) -> None:
    session = open_session(tmp_path, RunOptions(), pm=pm)
    close_session(session, exit_code=ExitCode.TESTS_FAILED)
    close_session(session)
    assert [c for c in recorder.calls if c[0] == "finish"] == [("finish", 1)]


def test_a_failure_after_configure_still_finishes_the_session(
    lint_ws: Path, pm: pluggy.PluginManager, recorder: Recorder
) -> None:
    (lint_ws / "ci" / "lint.py").write_text("def broken(:\n")
    with (
        pytest.raises(ToolchainError, match="syntax error"),
        session_scope(lint_ws, RunOptions(), pm=pm) as session,
    ):
        from dagpar_cli.discovery import discover

        discover(session.config, session.pm)
    assert recorder.calls == [("configure", False), ("finish", int(ExitCode.USAGE_ERROR))]


def test_functions_configures_lists_and_finishes(
    lint_ws: Path,
    pm: pluggy.PluginManager,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SDK_DISABLED")  # tracing on: a listing must still record nothing
    result = invoke(pm, "functions", "-C", lint_ws)
    assert result.exit_code == 0, result.output
    assert "style" in result.stdout
    assert recorder.calls == [("configure", True), ("finish", 0)]
    assert not (lint_ws / ".dagpar").exists()


def test_check_list_configures_lists_and_finishes(
    lint_ws: Path, pm: pluggy.PluginManager, recorder: Recorder
) -> None:
    result = invoke(pm, "check", "-l", "--json", "-C", lint_ws)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"checks": ["lint:style", "lint:types"]}
    assert recorder.calls == [("configure", True), ("finish", 0)]


def test_check_list_with_a_pattern_that_matches_nothing_finishes_with_its_exit_code(
    lint_ws: Path, pm: pluggy.PluginManager, recorder: Recorder
) -> None:
    result = invoke(pm, "check", "-l", "lint:nope", "-C", lint_ws)
    assert result.exit_code == ExitCode.NOTHING_SELECTED
    assert recorder.calls == [("configure", True), ("finish", int(ExitCode.NOTHING_SELECTED))]


def test_a_run_configures_once_and_finishes_once(
    lint_ws: Path, pm: pluggy.PluginManager, recorder: Recorder
) -> None:
    result = invoke(pm, "check", "-C", lint_ws)
    assert result.exit_code == 0, result.output
    assert recorder.calls == [("configure", False), ("finish", 0)]
    assert " 2 passed in " in result.stdout
