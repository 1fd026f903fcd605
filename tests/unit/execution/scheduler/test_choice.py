"""The default choice of scheduler (``dagpar_make_scheduler``), and how a plugin overrides it."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest

import dagpar_cli
from dagpar_cli import (
    Outcome,
    RunnerCommand,
    RunnerHost,
    RunnerRegistry,
    Selection,
    TestCase,
    TestResult,
    hookimpl,
    hookspecs,
)
from dagpar_cli.config import Config, RunOptions
from dagpar_cli.execution import scheduler as schedulers
from dagpar_cli.execution.api import ExecSession, SessionSpec
from dagpar_cli.execution.local import LocalExecutor
from dagpar_cli.execution.scheduler import (
    NO_HANDOVER_ENV,
    StaticScheduler,
    TailStealingScheduler,
    dagpar_make_scheduler,
)
from dagpar_cli.execution.scheduler.api import Scheduler
from dagpar_cli.model import RunnerSpec
from dagpar_cli.pluginmanager import get_plugin_manager
from dagpar_cli.registry import build_runner_registry
from dagpar_cli.run_context import RunContext


class RemoteExecutor:
    """An executor whose sessions do not see the host's directories live (no shares_mounts)."""

    name = "remote"

    def capacity(self) -> int:
        return 4

    def open(self, spec: SessionSpec) -> ExecSession:
        raise AssertionError("nothing runs here")

    def kill_all(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeRunner(dagpar_cli.Runner):
    """A runner that can hand tests over."""

    name = "fake"

    def can_hand_over(self, spec: RunnerSpec) -> bool:
        return True

    def collect(self, spec: RunnerSpec, host: RunnerHost) -> list[TestCase]:
        raise AssertionError("nothing is listed here")

    def command(self, spec: RunnerSpec, selection: Selection) -> list[RunnerCommand]:
        raise AssertionError("nothing runs here")

    def parse(self, spec: RunnerSpec, report_dir: Path, outcome: Outcome) -> list[TestResult]:
        raise AssertionError("nothing runs here")


class Runner:
    """The plugin that registers :class:`FakeRunner`."""

    @hookimpl
    def dagpar_register_runners(self, registry: RunnerRegistry) -> None:
        registry.add(FakeRunner())


def session(tmp_path: Path, *plugins: object) -> RunContext:
    pm = get_plugin_manager(extra_plugins=plugins)
    config = Config(workspace=tmp_path, file=None, toolchains=())
    return RunContext(config=config, options=RunOptions(), pm=pm, runners=build_runner_registry(pm))


def choose(session: RunContext, executor: object, workers: int = 3) -> Scheduler:
    chosen: Scheduler = session.pm.hook.dagpar_make_scheduler(
        session=session, executor=executor, workers=workers
    )
    return chosen


def test_tail_stealing_where_the_executor_shares_mounts(tmp_path: Path) -> None:
    run = session(tmp_path, Runner())
    chosen = choose(run, LocalExecutor())
    try:
        assert isinstance(chosen, TailStealingScheduler)
        assert chosen.workers == 3
        # It asks the runner plugins whether they can hand over.
        assert chosen.hands_over(RunnerSpec(name="fake", workspace=tmp_path), True)
        assert not chosen.hands_over(RunnerSpec(name="unknown", workspace=tmp_path), True)
    finally:
        chosen.close()


def test_static_where_the_executor_does_not_share_mounts(tmp_path: Path) -> None:
    chosen = choose(session(tmp_path), RemoteExecutor(), workers=5)
    assert type(chosen) is StaticScheduler
    assert chosen.workers == 5


@pytest.mark.parametrize(("value", "stealing"), [("1", False), ("0", True), ("", True)])
def test_no_handover_turns_tail_stealing_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, stealing: bool
) -> None:
    monkeypatch.setenv(NO_HANDOVER_ENV, value)
    chosen = choose(session(tmp_path), LocalExecutor())
    assert isinstance(chosen, TailStealingScheduler) is stealing
    assert isinstance(chosen, StaticScheduler)


def test_a_plugin_scheduler_wins_over_the_default(tmp_path: Path) -> None:
    mine = StaticScheduler(7)

    class Choice:
        @hookimpl
        def dagpar_make_scheduler(
            self, session: RunContext, executor: object, workers: int
        ) -> Scheduler | None:
            return mine

    assert choose(session(tmp_path, Choice()), LocalExecutor()) is mine


def test_the_default_is_registered_to_run_last() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(schedulers)
    (impl,) = pm.hook.dagpar_make_scheduler.get_hookimpls()
    assert impl.trylast
    assert impl.function is dagpar_make_scheduler
