"""The runtime context on its own: the current call and slice, dispatch and run_pipeline."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

from dagpar_cli.config import ToolchainConfig
from dagpar_cli.execution.api import Outcome, PipelineResult
from dagpar_cli.execution.scheduler.api import SplitJob
from dagpar_cli.model import Item, Plan, SlicePlan, SliceResult, Status, TestResult
from dagpar_cli.runtime.context import (
    CallContext,
    Runtime,
    SliceContext,
    current_call,
    current_slice,
    dispatch,
    enter_call,
    enter_slice,
    leave_call,
    leave_slice,
    run_pipeline,
)
from dagpar_cli.sdk.container import Container
from dagpar_cli.sdk.directory import Directory

if TYPE_CHECKING:
    from dagpar_cli.discovery import Toolchain


class FakeRuntime:
    """The part of :class:`Runtime` these tests reach, recording every call."""

    def __init__(self) -> None:
        self.splits: list[tuple[Any, ...]] = []
        self.pipelines: list[tuple[Container, CallContext | None, tuple[str, ...], bool]] = []
        self.reported: list[tuple[str, list[TestResult]]] = []

    def split(
        self,
        call: CallContext,
        receiver: Any,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        self.splits.append((call, receiver, name, fn, args, kwargs))
        return "split"

    def run_container(
        self,
        container: Container,
        call: CallContext | None,
        *,
        copy_out: tuple[str, ...] = (),
        always: bool = False,
    ) -> PipelineResult:
        self.pipelines.append((container, call, copy_out, always))
        return PipelineResult(outcomes=(Outcome(exit_code=0, stdout="faked"),), directories={})

    def report_tests(self, check: str, results: Sequence[TestResult]) -> None:
        self.reported.append((check, list(results)))


@pytest.fixture(autouse=True)
def _no_context_left_behind() -> None:
    """A test that leaks a current call or slice would change what the next one sees."""
    assert current_call() is None
    assert current_slice() is None


def new_call(runtime: FakeRuntime) -> CallContext:
    toolchain = cast("Toolchain", SimpleNamespace(config=ToolchainConfig(instance="api", use="x")))
    return CallContext(runtime=cast(Runtime, runtime), name="api:test", toolchain=toolchain)


def new_slice(call: CallContext, tmp_path: Path, **kw: Any) -> SliceContext:
    options: dict[str, Any] = {
        "call": call,
        "plan": SlicePlan(index=3, items=(Item(("a.py",), "a.py"),), predicted_seconds=1.0),
        "total": 4,
        "function": "run",
        "report_dir": tmp_path,
        "env": {},
        "deadline": None,
        "runner": "pytest",
        "prefix": "",
        "narrowed": False,
    }
    options.update(kw)
    return SliceContext(**options)


def parallel(receiver: object, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    """A ``+parallel`` function's body, as written."""
    return ("as written", receiver, args, kwargs)


def test_outside_dagpar_a_parallel_function_runs_as_written() -> None:
    assert current_call() is None and current_slice() is None
    assert dispatch("me", "run", parallel, (1,), {"k": 2}) == ("as written", "me", (1,), {"k": 2})


def test_inside_a_call_a_parallel_function_is_split_by_the_runtime(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    call = new_call(runtime)
    token = enter_call(call)
    try:
        assert current_call() is call
        assert dispatch("me", "run", parallel, (1,), {"k": 2}) == "split"
    finally:
        leave_call(token)
    assert current_call() is None
    assert runtime.splits == [(call, "me", "run", parallel, (1,), {"k": 2})]


def test_inside_a_slice_a_parallel_function_runs_as_written(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    call = new_call(runtime)
    call_token = enter_call(call)
    ctx = new_slice(call, tmp_path)
    slice_token = enter_slice(ctx)
    try:
        assert current_slice() is ctx
        assert dispatch("me", "run", parallel, (), {}) == ("as written", "me", (), {})
    finally:
        leave_slice(slice_token)
        leave_call(call_token)
    assert current_slice() is None
    assert runtime.splits == []


def test_each_thread_sees_the_slice_it_entered() -> None:
    runtime = FakeRuntime()
    call = new_call(runtime)
    barrier = threading.Barrier(2, timeout=10)
    seen: dict[int, SliceContext | None] = {}
    contexts = {
        i: new_slice(call, Path("."), plan=SlicePlan(index=i, items=(), predicted_seconds=0.0))
        for i in (1, 2)
    }

    def worker(i: int) -> None:
        token = enter_slice(contexts[i])
        try:
            barrier.wait()  # both slices are current at once, each in its own thread
            seen[i] = current_slice()
        finally:
            leave_slice(token)

    threads = [threading.Thread(target=worker, args=(i,)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == contexts
    assert current_slice() is None


def test_a_pipeline_inside_a_call_goes_to_the_runtime() -> None:
    runtime = FakeRuntime()
    call = new_call(runtime)
    container = Container().with_exec(["true"])
    token = enter_call(call)
    try:
        result = run_pipeline(container, copy_out=("/out",), always=True)
        assert container.stdout() == "faked"
    finally:
        leave_call(token)
    assert result.outcomes[0].stdout == "faked"
    assert runtime.pipelines == [
        (container, call, ("/out",), True),
        (container, call, (), False),
    ]


def test_a_pipeline_outside_dagpar_runs_on_this_machine(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hi")
    container = (
        Container()
        .with_directory("/w", Directory(tmp_path, ""))
        .with_workdir("/w")
        .with_exec(["cat", "hello.txt"])
    )
    assert run_pipeline(container).outcomes[0].stdout == "hi"


def test_a_slice_reports_results_stamped_with_its_check_and_number(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    ctx = new_slice(new_call(runtime), tmp_path)
    ctx.report([TestResult(path="a.py", name="t", status=Status.PASSED, check="x", slice=9)])
    stamped = TestResult(path="a.py", name="t", status=Status.PASSED, check="api:test", slice=3)
    assert ctx.results == [stamped]
    assert runtime.reported == [("api:test", [stamped])]


def test_a_result_stamped_already_is_reported_as_it_is(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    ctx = new_slice(new_call(runtime), tmp_path)
    stamped = TestResult(path="a.py", name="t", status=Status.PASSED, check="api:test", slice=3)
    other = TestResult(path="a.py", name="u", status=Status.PASSED, check="api:test", slice=2)
    ctx.report([stamped, other])
    assert ctx.results[0] is stamped  # not copied again
    assert ctx.results[1] == dataclasses.replace(other, slice=3)


def test_a_slice_counts_down_to_its_deadline_and_never_below_a_millisecond(
    tmp_path: Path,
) -> None:
    call = new_call(FakeRuntime())
    assert new_slice(call, tmp_path).remaining() is None
    remaining = new_slice(call, tmp_path, deadline=time.monotonic() + 60).remaining()
    assert remaining is not None and 50 < remaining <= 60
    assert new_slice(call, tmp_path, deadline=time.monotonic() - 5).remaining() == 0.001


def test_a_slice_runs_in_order_only_where_its_tail_may_be_handed_over(tmp_path: Path) -> None:
    call = new_call(FakeRuntime())

    def run_slice(sp: SlicePlan, total: int, narrowed: bool) -> tuple[SliceResult, Any]:
        raise AssertionError("not run here")

    plan = Plan(slices=(), predicted_wall_seconds=0.0, workers=1)
    assert not new_slice(call, tmp_path).in_order
    static = SplitJob(check=call.name, plan=plan, run_slice=run_slice)
    assert not new_slice(call, tmp_path, job=static).in_order
    stealing = SplitJob(check=call.name, plan=plan, run_slice=run_slice, hands_over=True)
    assert new_slice(call, tmp_path, job=stealing).in_order
