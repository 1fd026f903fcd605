"""The progress poller: asks runners how far running slices are, passes on only growth."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pluggy

from dagpar_cli import (
    Outcome,
    Runner,
    RunnerCommand,
    RunnerHost,
    RunnerRegistry,
    RunnerSpec,
    Selection,
    Status,
    TestCase,
    TestEvent,
    TestResult,
    hookimpl,
    hookspecs,
)
from dagpar_cli.model import SlicePlan
from dagpar_cli.runtime.progress_poller import ProgressPoller
from dagpar_cli.sdk._stream import StreamTracker


class ScriptedRunner(Runner):
    """A runner whose progress answers are scripted, one per question."""

    name = "pytest"

    def __init__(self, answers: list[int | Exception | None]) -> None:
        self.answers = answers

    def progress(self, spec: RunnerSpec, report_dir: Path) -> int | None:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def collect(self, spec: RunnerSpec, host: RunnerHost) -> list[TestCase]:
        raise NotImplementedError

    def command(self, spec: RunnerSpec, selection: Selection) -> list[RunnerCommand]:
        raise NotImplementedError

    def parse(self, spec: RunnerSpec, report_dir: Path, outcome: Outcome) -> list[TestResult]:
        raise NotImplementedError


def registry(runner: Runner) -> RunnerRegistry:
    runners = RunnerRegistry()
    runners.add(runner)
    return runners


class Listener:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []

    @hookimpl
    def dagpar_slice_progress(self, check: str, slice: SlicePlan, done: int) -> None:
        self.events.append((check, slice.index, done))


def manager(*plugins: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for plugin in plugins:
        pm.register(plugin)
    return pm


def running_slice(tmp_path: Path, index: int = 3, tracker: StreamTracker | None = None) -> Any:
    """What the poller reads of a slice context: its report directory, call, plan and the
    tracker of its runner's streams."""
    plan = SlicePlan(index=index, items=(), predicted_seconds=1.0)
    return SimpleNamespace(
        report_dir=tmp_path, call=SimpleNamespace(name="api:test"), plan=plan, tracker=tracker
    )


class ListStream:
    """A stream whose events are handed out as they are put in."""

    def __init__(self) -> None:
        self.pending: list[TestEvent] = []

    def poll(self) -> list[TestEvent]:
        events, self.pending = self.pending, []
        return events


def _end(name: str) -> TestEvent:
    result = TestResult(path="t.py", name=name, status=Status.PASSED)
    return TestEvent(kind="end", test=TestCase("t.py", name), at=1.0, result=result)


def test_a_streaming_runner_is_followed_test_by_test_across_its_replacements(
    tmp_path: Path,
) -> None:
    listener = Listener()
    runner = ScriptedRunner([])  # never asked: the stream answers
    poller = ProgressPoller(manager(listener).hook, registry(runner))
    tracker = StreamTracker()
    first, second = ListStream(), ListStream()
    tracker.open(first)
    ctx = running_slice(tmp_path, tracker=tracker)
    with poller.following(ctx, RunnerSpec(name="pytest", workspace=tmp_path)):
        first.pending = [TestEvent(kind="start", test=TestCase("t.py", "a"), at=0.5), _end("a")]
        poller.poll()
        first.pending = [TestEvent(kind="start", test=TestCase("t.py", "b"), at=1.5)]
        poller.poll()  # b never ends: its runner died
        tracker.open(second)  # the replacement run
        second.pending = [_end("c")]
        poller.poll()
    assert listener.events == [("api:test", 3, 1), ("api:test", 3, 2)]
    poller.close()


def test_only_growth_is_passed_on_and_a_broken_plugin_costs_nothing(tmp_path: Path) -> None:
    listener = Listener()
    runner = ScriptedRunner([0, 2, 2, None, RuntimeError("plugin bug"), 1, 5])
    poller = ProgressPoller(manager(listener).hook, registry(runner))
    ctx = running_slice(tmp_path)
    spec = RunnerSpec(name="pytest", workspace=tmp_path)
    with poller.following(ctx, spec):
        for _ in range(7):
            poller.poll()
    assert listener.events == [("api:test", 3, 2), ("api:test", 3, 5)]
    assert runner.answers == []
    poller.poll()  # no longer following: the runner is not asked again
    poller.close()


def test_nothing_is_followed_when_no_plugin_listens(tmp_path: Path) -> None:
    runner = ScriptedRunner([1])
    poller = ProgressPoller(manager().hook, registry(runner))
    assert not poller.wanted
    with poller.following(running_slice(tmp_path), RunnerSpec(name="pytest", workspace=tmp_path)):
        poller.poll()
    assert runner.answers == [1]  # never asked
    poller.close()
