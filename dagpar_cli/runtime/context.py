"""The call and slice in progress, and the :class:`Runtime` the SDK calls into.

Toolchain code runs inside a check (a :class:`CallContext`) and, when a ``+parallel`` call was
split, inside a slice (a :class:`SliceContext`); both are context variables, so every thread a
slice starts sees its own. The SDK (``+parallel`` wrappers, ``dag.container()``, ``run_tests``)
reaches the run only through the :class:`Runtime` Protocol of the current call, which
:class:`~dagpar_cli.runtime.orchestrator.Orchestrator` implements; this module imports neither
the orchestrator nor any reporter.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dagpar_cli.model import Item, SlicePlan, TestCase, TestResult

if TYPE_CHECKING:
    from dagpar_cli.discovery import Toolchain
    from dagpar_cli.execution.api import PipelineResult
    from dagpar_cli.execution.scheduler.api import SplitJob
    from dagpar_cli.model import Plan, SliceResult
    from dagpar_cli.runner_api import Runner, RunnerSpec
    from dagpar_cli.sdk._stream import StreamTracker
    from dagpar_cli.sdk.container import Container
    from dagpar_cli.sdk.directory import Directory

__all__ = [
    "CallContext",
    "Runtime",
    "SliceContext",
    "current_call",
    "current_slice",
    "dispatch",
    "run_pipeline",
]


class Runtime(Protocol):
    """What toolchain code, through the SDK, may ask of the run in progress."""

    def split(
        self,
        call: CallContext,
        receiver: Any,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Run the ``+parallel`` call ``receiver.name(*args, **kwargs)``, split into slices."""

    def run_container(
        self,
        container: Container,
        call: CallContext | None,
        *,
        copy_out: tuple[str, ...] = (),
        always: bool = False,
    ) -> PipelineResult:
        """Run a ``dag.container()`` pipeline on the run's executor.

        :param always: run it under ``--dry-run`` too (a listing).
        """

    def new_dir(self, hint: str) -> Path:
        """A fresh, empty host directory that lives as long as the run."""

    def list_tests(self, call: CallContext, runner: str, directory: Directory) -> list[TestCase]:
        """Every test of *directory* as *runner* lists it (source-relative)."""

    def runner_spec(self, call: CallContext, runner: str, directory: Directory) -> RunnerSpec:
        """The :class:`~dagpar_cli.model.RunnerSpec` of *runner* on *directory*."""

    def runner(self, call: CallContext, name: str) -> Runner:
        """The registered runner *name* (it compiles commands and parses reports)."""

    def running(
        self, slice: SliceContext, spec: RunnerSpec, report_dir: Path
    ) -> AbstractContextManager[object]:
        """Entered while a slice's runner command runs (live progress, hand-over of its tail)."""

    def report_tests(self, check: str, results: Sequence[TestResult]) -> None:
        """Tell the plugins about per-test results as a slice reports them."""

    def task_span(self, slice: SliceContext, item_key: str) -> AbstractContextManager[object]:
        """A trace span around the work on one item (``dag.parallel.task``)."""

    def cancel_reason_now(self) -> str | None:
        """Why the run was cancelled (``interrupted``, ``--failfast``), or None while it goes on."""


@dataclass(slots=True, kw_only=True)
class CallContext:
    """One check (or one ``dagpar call`` chain) being executed."""

    runtime: Runtime
    #: ``instance:function``.
    name: str
    toolchain: Toolchain
    plans: list[Plan] = field(default_factory=list)
    slices: list[SliceResult] = field(default_factory=list)
    #: Results reported outside split calls, and every split call's merged results.
    results: list[TestResult] = field(default_factory=list)
    #: How many split calls ran (or were planned).
    splits: int = 0
    #: Whether an infrastructure failure happened in this call.
    infrastructure_error: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(slots=True, kw_only=True)
class SliceContext:
    """One slice being executed (set in its worker thread)."""

    call: CallContext
    plan: SlicePlan
    total: int
    #: The name of the ``+parallel`` function.
    function: str
    #: A fresh host directory for the slice's reports.
    report_dir: Path
    #: Environment every command of the slice gets.
    env: dict[str, str]
    #: ``time.monotonic()`` deadline from ``--timeout``, or None. A fresh run of the runner
    #: after a crash or timeout (:mod:`dagpar_cli.runtime.resume`) gets a fresh deadline.
    deadline: float | None
    #: The runner plugin of the split type, or None.
    runner: str | None
    #: The source prefix (workspace-relative) of the split receiver's directory.
    prefix: str
    #: Whether the filter narrowed whole items to some of their tests.
    narrowed: bool
    #: What the scheduler knows of the split call the slice belongs to.
    job: SplitJob | None = None
    results: list[TestResult] = field(default_factory=list)
    #: Where the slice's sessions ran (``local``, ``docker@unix:///var/run/docker.sock``).
    wheres: list[str] = field(default_factory=list)
    #: Whether the slice's latest session shares the mounted host directories live.
    shares_mounts: bool = False
    #: Tests the slice handed to other slices while it ran (workspace-relative), and their
    #: predicted seconds.
    handed: list[TestCase] = field(default_factory=list)
    handed_seconds: float = 0.0
    #: ``--timeout`` in seconds, or None: each run of the slice's runner gets this long.
    timeout: float | None = None
    #: The per-test streams of the slice's runner, read (None until its runner starts).
    tracker: StreamTracker | None = None
    #: Fresh runs of the runner the slice started after runs that died.
    replacements: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: The slice's items by selector, built on the first :meth:`items_named` call.
    _by_selector: dict[tuple[str, ...], list[Item]] | None = field(
        default=None, init=False, repr=False
    )

    def items_named(self, selector: tuple[str, ...]) -> list[Item]:
        """The slice's items whose selector is *selector* (several under a matrix).

        The index is built once per slice, so a toolchain reporting every item of a large
        slice through ``dag.parallel.task`` does work linear in the slice's items.
        """
        index = self._by_selector
        if index is None:
            index = {}
            for item in self.plan.items:
                index.setdefault(item.selector, []).append(item)
            self._by_selector = index
        return index.get(selector, [])

    @property
    def in_order(self) -> bool:
        """Whether the slice's items must run in the planned order (its tail may be taken)."""
        return self.job is not None and self.job.hands_over

    def remaining(self) -> float | None:
        """Seconds left before the slice's deadline (None: no deadline)."""
        return None if self.deadline is None else max(0.001, self.deadline - time.monotonic())

    def report(self, results: Sequence[TestResult]) -> None:
        """Record per-test results (workspace-relative) and tell the plugins.

        Each result gets the slice's check and index; one that has them already (the SDK
        stamps a runner's results as it places them under the workspace) is kept as it is.
        """
        check, index = self.call.name, self.plan.index
        results = [
            r if r.check == check and r.slice == index else r.replaced(check=check, slice=index)
            for r in results
        ]
        with self.lock:
            self.results.extend(results)
        self.call.runtime.report_tests(check, results)


_call_var: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar(
    "dagpar_call", default=None
)
_slice_var: contextvars.ContextVar[SliceContext | None] = contextvars.ContextVar(
    "dagpar_slice", default=None
)


def current_call() -> CallContext | None:
    """The check or call chain being executed in this thread, if any."""
    return _call_var.get()


def current_slice() -> SliceContext | None:
    """The slice being executed in this thread, if any."""
    return _slice_var.get()


def enter_call(call: CallContext) -> contextvars.Token[CallContext | None]:
    """Make *call* the current call; pass the token to :func:`leave_call`."""
    return _call_var.set(call)


def leave_call(token: contextvars.Token[CallContext | None]) -> None:
    """Restore the call that was current before :func:`enter_call`."""
    _call_var.reset(token)


def enter_slice(ctx: SliceContext) -> contextvars.Token[SliceContext | None]:
    """Make *ctx* the current slice; pass the token to :func:`leave_slice`."""
    return _slice_var.set(ctx)


def leave_slice(token: contextvars.Token[SliceContext | None]) -> None:
    """Restore the slice that was current before :func:`enter_slice`."""
    _slice_var.reset(token)


def dispatch(
    receiver: Any, name: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Call the ``+parallel`` function *fn* on *receiver*, split into slices when possible.

    Outside dagpar (no current call) and inside a slice the function runs as written.
    """
    call = _call_var.get()
    if call is None or _slice_var.get() is not None:
        return fn(receiver, *args, **kwargs)
    return call.runtime.split(call, receiver, name, fn, args, kwargs)


def run_pipeline(
    container: Container, *, copy_out: tuple[str, ...] = (), always: bool = False
) -> PipelineResult:
    """Run a ``dag.container()`` pipeline on the current run's executor.

    Outside dagpar (a toolchain's own unit tests) it runs on this machine.
    """
    call = _call_var.get()
    if call is None:
        from dagpar_cli.runtime.standalone import standalone_runtime

        return standalone_runtime().run_container(container, None, copy_out=copy_out, always=True)
    return call.runtime.run_container(container, call, copy_out=copy_out, always=always)
