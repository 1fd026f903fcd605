"""Stage 6: the engine — splitting ``+parallel`` calls into slices and running them.

When toolchain code calls a ``+parallel`` function on a receiver with a ``+parallel`` field, the
wrapper installed by ``@object_type`` calls :func:`dispatch`. The engine then:

1. turns the field's elements into :class:`~dagpar_cli.model.Item` values (workspace-relative);
2. lists the items' tests through the runner plugin, when the type names a runner;
3. applies ``--filter``;
4. asks the planner for slices;
5. runs the function once per slice, concurrently, each on a copy of the receiver whose field
   holds the slice's items (every other field unchanged), in its own context: report
   directory, environment (``DAGPAR_SLICE``, ``TRACEPARENT``), deadline;
6. collects every slice's results and errors — each selected test exactly once, missing ones
   filled in as errors with the cause — and merges ``Directory`` results as an overlay.

Calls that are not split (no ``+parallel`` pair, or already inside a slice) run once, as written.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import os
import re
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagpar_cli.errors import DagparError, ExecutionError, TestsFailedError
from dagpar_cli.execution.api import ExecRequest, ExecSession, Executor, Mount, Outcome, SessionSpec
from dagpar_cli.handover import HandOver, Offer, Tail
from dagpar_cli.listing_cache import ListingCache, ListingKey, cache_disabled
from dagpar_cli.model import (
    Attempt,
    CheckResult,
    Item,
    Plan,
    RunnerSpec,
    SlicePlan,
    SliceResult,
    Status,
    TestCase,
    TestResult,
    join_path,
)
from dagpar_cli.planning.api import Planner, PlanRequest
from dagpar_cli.sdk.container import ExecFailedError, PipelineResult
from dagpar_cli.sdk.directory import Directory, merge_overlay
from dagpar_cli.sdk.types import typedef_of
from dagpar_cli.slice_progress import ProgressPoller

if TYPE_CHECKING:
    from dagpar_cli.discovery import Toolchain
    from dagpar_cli.filtering import Filter
    from dagpar_cli.sdk.container import Container
    from dagpar_cli.session import Session

__all__ = ["CallContext", "Engine", "SliceContext", "current_call", "current_slice", "dispatch"]

#: At most this many slices per worker (see :attr:`PlanRequest.max_slices`).
OVERSLICE = 4

#: Set to ``1`` to keep every slice's tests in that slice (no hand-over to idle workers).
NO_HANDOVER_ENV = "DAGPAR_NO_HANDOVER"

#: Start-up seconds assumed for a slice before any was measured, per executor.
DEFAULT_STARTUP = {"local": 0.3, "docker": 1.0}


@dataclass(slots=True, kw_only=True)
class CallContext:
    """One check (or one ``dagpar call`` chain) being executed."""

    engine: Engine
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
    #: ``time.monotonic()`` deadline from ``--timeout``, or None.
    deadline: float | None
    #: The runner plugin of the split type, or None.
    runner: str | None
    #: The source prefix (workspace-relative) of the split receiver's directory.
    prefix: str
    #: Whether the filter narrowed whole items to some of their tests.
    narrowed: bool
    results: list[TestResult] = field(default_factory=list)
    #: Where the slice's sessions ran (``local``, ``docker@unix:///var/run/docker.sock``).
    wheres: list[str] = field(default_factory=list)
    #: The split call the slice belongs to (the engine's own bookkeeping).
    split: Any = None
    #: Whether the slice's latest session shares the mounted host directories live.
    shares_mounts: bool = False
    #: Tests the slice handed to other slices while it ran (workspace-relative), and their
    #: predicted seconds.
    handed: list[TestCase] = field(default_factory=list)
    handed_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def remaining(self) -> float | None:
        """Seconds left before the slice's deadline (None: no deadline)."""
        return None if self.deadline is None else max(0.001, self.deadline - time.monotonic())

    def report(self, results: Sequence[TestResult]) -> None:
        """Record per-test results (workspace-relative) and tell the plugins."""
        session = self.call.engine.session
        assert session is not None
        hook = session.pm.hook
        results = [
            dataclasses.replace(r, check=self.call.name, slice=self.plan.index) for r in results
        ]
        with self.lock:
            self.results.extend(results)
        for result in results:
            hook.dagpar_test_reported(check=self.call.name, result=result)


@dataclass(frozen=True, slots=True, kw_only=True)
class _SplitCall:
    """One ``+parallel`` call being split: what every slice of it shares."""

    call: CallContext
    receiver: Any
    #: The ``+parallel`` field's name, and whether it holds selectors (``list[list[str]]``).
    field_name: str
    nested: bool
    #: The function's name, and the undecorated function.
    function: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    runner: str | None
    #: The receiver's directory, workspace-relative.
    prefix: str
    #: ``check.function``, for directory names.
    label: str
    #: Per slice index, the listed tests its runner did not report (filled in as errors).
    unreported: dict[int, frozenset[str]] = field(default_factory=dict)
    #: The indexes of the slices whose report disagreed with the listing.
    disagreed: set[int] = field(default_factory=set)
    #: Whether running slices may hand unstarted tests to idle workers (see
    #: :mod:`dagpar_cli.handover`), with the predictions that guide it.
    handover: bool = False
    predicted: dict[str, float] = field(default_factory=dict)
    startup: float = 0.0
    #: The context the split call runs in, for slices started from other threads.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    #: Slices cut from running slices' tails.
    tails: _Tails = field(default_factory=lambda: _Tails())


class _Tails:
    """The slices idle workers cut from one split call's running slices."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0
        #: Set once the split call has collected its slices: later slices (reruns) do not offer.
        self.closed = False
        self.next_index = 0
        self.done: list[tuple[SlicePlan, SliceResult, Any]] = []

    def reserve(self) -> None:
        """A tail is about to be taken: the split call must wait for its slice."""
        with self._cond:
            self._running += 1

    def release(self) -> None:
        """A reserved tail's slice ended (or nothing was taken)."""
        with self._cond:
            self._running -= 1
            self._cond.notify_all()

    def new_index(self) -> int:
        """The next slice number, after the plan's."""
        with self._cond:
            self.next_index += 1
            return self.next_index

    def add(self, sp: SlicePlan, result: SliceResult, value: Any) -> None:
        """Keep a tail slice's outcome."""
        with self._cond:
            self.done.append((sp, result, value))

    def wait(self) -> list[tuple[SlicePlan, SliceResult, Any]]:
        """Wait until no tail slice runs, close, and return their outcomes by slice number."""
        with self._cond:
            while self._running:
                self._cond.wait()
            self.closed = True
            return sorted(self.done, key=lambda d: d[0].index)


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


def dispatch(
    receiver: Any, name: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Call the ``+parallel`` function *fn* on *receiver*, split into slices when possible.

    Outside dagpar (no current call) and inside a slice the function runs as written.
    """
    call = _call_var.get()
    if call is None or _slice_var.get() is not None:
        return fn(receiver, *args, **kwargs)
    return call.engine.split(call, receiver, name, fn, args, kwargs)


def run_pipeline(
    container: Container, *, copy_out: tuple[str, ...] = (), always: bool = False
) -> PipelineResult:
    """Run a ``dag.container()`` pipeline on the current executor (see :meth:`Engine.run`)."""
    call = _call_var.get()
    if call is None:
        return _standalone_engine().run(container, None, copy_out=copy_out, always=True)
    return call.engine.run(container, call, copy_out=copy_out, always=always)


_standalone: Engine | None = None


def _standalone_engine() -> Engine:
    """An engine for toolchain code called outside dagpar (a toolchain's own unit tests)."""
    global _standalone
    if _standalone is None:
        from dagpar_cli.execution.local import LocalExecutor

        _standalone = Engine(session=None, executor=LocalExecutor(), planner=None, filter=None)
    return _standalone


class Engine:
    """Runs calls, split calls and pipelines for one dagpar run.

    :param session: the run's session (None only for toolchain code run outside dagpar).
    :param executor: where commands run.
    :param planner: cuts split calls into slices.
    :param filter: the parsed ``--filter`` selectors (None or empty: everything).
    """

    def __init__(
        self,
        *,
        session: Session | None,
        executor: Executor,
        planner: Planner | None,
        filter: Filter | None,
    ) -> None:
        self.session = session
        self.executor = executor
        self.planner = planner
        self.filter = filter
        self.cancelled = threading.Event()
        #: Why the run was cancelled ("interrupted", "--failfast").
        self.cancel_reason = ""
        self._workdir = Path(tempfile.mkdtemp(prefix="dagpar-"))
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._collected: dict[tuple[str, str], list[TestCase]] = {}
        self._collect_locks: dict[tuple[str, str], threading.Lock] = {}
        #: Runner listings kept between runs (None outside a dagpar run).
        self._listings = ListingCache(session.config.workspace) if session is not None else None
        #: The listing cache's key of every listing this run used (None: the cache is off).
        self._listing_keys: dict[tuple[str, str], ListingKey | None] = {}
        #: The listings that came from the cache rather than from the runner.
        self._from_cache: set[tuple[str, str]] = set()
        #: Fresh listings taken because a cached one proved stale (at most one per key).
        self._relisted: dict[tuple[str, str], list[TestCase]] = {}
        self._counter = 0
        self._counter_lock = threading.Lock()
        #: Item paths the filter saw, for "did you mean" when it matched nothing.
        self.candidates: set[str] = set()
        #: Follows running slices' runners for live progress (None outside a dagpar run).
        self.progress = (
            ProgressPoller(session.pm.hook, session.runners) if session is not None else None
        )
        #: Running slices that may give their unstarted tests to idle workers.
        self.handover = HandOver(session.runners) if session is not None else None
        #: Slice tasks submitted to the pool and not yet started (idle workers help only at 0).
        self._queued = 0

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Stop the slice pool and remove the run's temporary files."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self.progress is not None:
            self.progress.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def cancel(self, reason: str) -> None:
        """Stop every running and pending slice (interrupt, ``--failfast``)."""
        if self.cancelled.is_set():
            return
        self.cancel_reason = reason
        self.cancelled.set()
        self.executor.kill_all()

    def new_dir(self, hint: str) -> Path:
        """A fresh, empty directory for this run (removed by :meth:`close`)."""
        with self._counter_lock:
            self._counter += 1
            n = self._counter
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", hint).strip("-")[:60] or "dir"
        path = self._workdir / f"{n:04d}-{slug}"
        path.mkdir(parents=True)
        return path

    @property
    def workers(self) -> int:
        """How many slices run at once."""
        options = self.session.options if self.session else None
        if options is not None and options.parallelism:
            return options.parallelism
        config = self.session.config if self.session else None
        if config is not None and config.parallelism:
            return config.parallelism
        return max(1, self.executor.capacity())

    def _slice_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="dagpar-slice"
                )
            return self._pool

    def _submit(self, fn: Callable[[], None]) -> None:
        """Run *fn* on a pool worker, in a copy of the caller's context."""
        with self._counter_lock:
            self._queued += 1
        ctx = contextvars.copy_context()
        self._slice_pool().submit(ctx.run, self._task, fn)

    def _task(self, fn: Callable[[], None]) -> None:
        with self._counter_lock:
            self._queued -= 1
        fn()
        self._help()

    def _help(self) -> None:
        """While no slice waits to start, take tails of running slices (see :mod:`.handover`)."""
        handover = self.handover
        if handover is None:
            return
        while not self.cancelled.is_set() and self._queued == 0 and handover.busy():
            tail = handover.find(_reserve, _release)
            if tail is not None:
                self._run_tail(tail)

    def offering_tail(
        self, ctx: SliceContext, spec: RunnerSpec, report_dir: Path
    ) -> AbstractContextManager[object]:
        """While the runner command runs, let idle workers take the slice's unstarted tests.

        A no-op unless the slice's split call hands tails over and has not yet collected its
        slices (a rerun slice gives nothing away).
        """
        split = ctx.split
        if self.handover is None or split is None or not split.handover or split.tails.closed:
            return nullcontext()
        return self.handover.offering(split=split, ctx=ctx, spec=spec, report_dir=report_dir)

    def _run_tail(self, tail: Tail) -> None:
        """Run the tests *tail* took from a running slice as a new slice of the same split."""
        assert self.session is not None
        victim = tail.offer.ctx
        split: _SplitCall = victim.split
        try:
            index = split.tails.new_index()
            pairs = zip(tail.selectors, tail.tests, strict=True)
            items = tuple(Item((path, name), t.path) for (path, name), t in pairs)
            sp = SlicePlan(
                index=index,
                items=items,
                predicted_seconds=split.startup + sum(tail.seconds),
                tests=tail.tests,
            )
            self.session.pm.hook.dagpar_slice_handed_over(
                check=split.call.name, slice=victim.plan, tests=list(tail.tests), to=sp
            )
            result, value = split.context.copy().run(self._run_slice, split, sp, index, True)
            split.tails.add(sp, result, value)
        finally:
            split.tails.release()

    # ---------------------------------------------------------------- calls

    def run_call(
        self, name: str, toolchain: Toolchain, body: Callable[[], Any]
    ) -> tuple[CheckResult, Any]:
        """Run *body* (a check, or a call chain) as the call *name*; never raises for its errors.

        :returns: the call's merged result and *body*'s return value (None when it raised).
        """
        call = CallContext(engine=self, name=name, toolchain=toolchain)
        token = _call_var.set(call)
        start = time.monotonic()
        started = start - (self.session.started if self.session else start)
        value: Any = None
        error = ""
        details = ""
        try:
            value = body()
        except ExecutionError as exc:
            error = exc.message
            call.infrastructure_error = True
        except TestsFailedError as exc:
            error = exc.message
            details = "\n".join(exc.errors)
        except DagparError:
            raise
        except Exception as exc:  # the toolchain's own bug: the check fails, the run goes on
            error = f"{type(exc).__name__}: {exc}"
            details = _short_traceback(exc)
        finally:
            _call_var.reset(token)
        results = _unique(call.results)
        if error and not call.splits:
            # An unsplit check that failed on its own: one result, so the failure is visible in
            # every report (JUnit, JSON) and not only in the summary.
            results.append(
                TestResult(
                    path=toolchain.config.source or ".",
                    name=name.split(":", 1)[1],
                    status=Status.ERROR if call.infrastructure_error else Status.FAILED,
                    seconds=time.monotonic() - start,
                    message=error,
                    details=details,
                    check=name,
                )
            )
        elif not error and not call.splits and not results:
            results.append(
                TestResult(
                    path=toolchain.config.source or ".",
                    name=name.split(":", 1)[1],
                    status=Status.PASSED,
                    seconds=time.monotonic() - start,
                    check=name,
                )
            )
        interrupted = self.cancelled.is_set() and self.cancel_reason == "interrupted"
        result = CheckResult(
            name=name,
            results=tuple(results),
            slices=tuple(sorted(call.slices, key=lambda s: s.index)),
            plans=tuple(call.plans),
            error=error,
            infrastructure_error=call.infrastructure_error,
            seconds=time.monotonic() - start,
            started=started,
            interrupted=interrupted,
        )
        if self.session is not None:
            self.session.pm.hook.dagpar_check_finished(result=result)
        return result, value

    # ---------------------------------------------------------------- splitting

    def split(
        self,
        call: CallContext,
        receiver: Any,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Split the call ``receiver.name(*args, **kwargs)`` into slices and run them."""
        typedef = typedef_of(receiver)
        pfield = typedef.parallel_field if typedef else None
        fdef = typedef.function(name) if typedef else None
        if typedef is None or pfield is None or fdef is None or not fdef.parallel:
            return fn(receiver, *args, **kwargs)
        assert self.session is not None
        with call.lock:
            call.splits += 1
        directory = _first_directory(receiver)
        prefix = directory.rel or "" if directory is not None else ""
        raw = list(getattr(receiver, pfield.name) or [])
        items = [_item(value, pfield.nested, prefix, pfield.name) for value in raw]
        runner = typedef.runner
        tests_of: dict[str, list[TestCase]] = {}
        if runner is not None and directory is not None:
            tests_of = self._tests_of_items(call, runner, directory, items, prefix)

        items, tests_of, narrowed = self._apply_filter(call, items, tests_of, runner)
        if not items:
            return None  # the filter selected nothing here; the pipeline reports it

        handover = self._hands_over(call.toolchain, runner, directory, pfield.nested)
        plan, predicted, startup = self._plan(
            call, items, tests_of, runner, pfield.nested, handover
        )
        with call.lock:
            call.plans.append(plan)
        if self.session.options.dry_run:
            return None

        split = _SplitCall(
            call=call,
            receiver=receiver,
            field_name=pfield.name,
            nested=pfield.nested,
            function=name,
            fn=fn,
            args=args,
            kwargs=kwargs,
            runner=runner,
            prefix=prefix,
            label=f"{call.name}.{name}",
            handover=handover,
            predicted=predicted,
            startup=startup,
        )
        total = len(plan.slices)
        split.tails.next_index = max((sp.index for sp in plan.slices), default=0)
        futures: list[tuple[SlicePlan, Future[tuple[SliceResult, Any]]]] = []
        # In the plan's order: the planner numbers the slices in the order they should start
        # (longest predicted first, or a first wave of slices holding estimated tests).
        for sp in sorted(plan.slices, key=lambda s: s.index):
            future: Future[tuple[SliceResult, Any]] = Future()
            self._submit(functools.partial(self._slice_job, future, split, sp, total, narrowed))
            futures.append((sp, future))
        if handover:
            # Workers the plan leaves without a slice wait for tails to take from the start.
            for _ in range(self.workers - len(plan.slices)):
                self._submit(_nothing)
        outcomes = [(sp, future.result()) for sp, future in futures]
        tails = split.tails.wait()
        if tails:
            outcomes += [(sp, (result, value)) for sp, result, value in tails]
            final = dataclasses.replace(plan, slices=(*plan.slices, *(sp for sp, _, _ in tails)))
            with call.lock:
                call.plans[call.plans.index(plan)] = final
            plan = final
        outcomes.sort(key=lambda o: o[0].index)

        slice_results = [res for _, (res, _) in outcomes]
        if split.disagreed:
            slice_results, plan = self._heal_stale_listing(split, items, plan, slice_results)
        merged: list[TestResult] = [r for s in slice_results for r in s.results]
        retries = self.session.options.retries
        if retries and not self.cancelled.is_set():
            merged, reruns = self._rerun_failed(split, plan, merged, retries)
        else:
            reruns = []
        with call.lock:
            call.slices.extend(slice_results + reruns)
            call.results.extend(merged)
            if any(s.infrastructure_error for s in slice_results):
                call.infrastructure_error = True

        still_bad = {r.id for r in merged if r.status.is_bad}

        def still_failing(s: SliceResult) -> bool:
            # A slice that failed only through tests that later passed on a rerun is fine now.
            return (
                s.infrastructure_error
                or any(r.id in still_bad for r in s.results)
                or not any(r.status.is_bad for r in s.results)
            )

        errors = [
            f"slice {s.index}/{total}: {s.error}"
            for s in slice_results
            if s.error and still_failing(s)
        ]
        if errors:
            bad = len(still_bad)
            summary = f"{len(errors)} of {total} slices failed"
            if bad:
                summary += f" ({bad} {'test' if bad == 1 else 'tests'} failed or errored)"
            if any(s.infrastructure_error for s in slice_results):
                raise ExecutionError(summary + ": " + errors[0])
            raise TestsFailedError(summary, errors)

        if fdef.returns == "Directory":
            parts = [
                (f"slice {sp.index}/{total}", value)
                for sp, (_, value) in outcomes
                if isinstance(value, Directory)
            ]
            return merge_overlay(parts, self.new_dir(f"{split.label}-merged"))
        return None

    def _slice_job(
        self,
        future: Future[tuple[SliceResult, Any]],
        split: _SplitCall,
        sp: SlicePlan,
        total: int,
        narrowed: bool,
    ) -> None:
        """Run one planned slice and hand its outcome to the split call as soon as it ends."""
        try:
            future.set_result(self._run_slice(split, sp, total, narrowed))
        except BaseException as exc:  # _run_slice does not raise; never leave the caller hanging
            future.set_exception(exc)
            raise

    def _hands_over(
        self, toolchain: Toolchain, runner: str | None, directory: Directory | None, nested: bool
    ) -> bool:
        """Whether slices of this split call may give unstarted tests to idle workers.

        It takes a runner that can stop at a test boundary, an executor whose sessions share
        the report directory live, and a ``list[list[str]]`` field, whose ``[file, test]``
        selectors can name the tests handed over. ``DAGPAR_NO_HANDOVER=1`` turns it off (for
        a suite whose tests rely on running in the process of the tests before them).
        """
        if runner is None or directory is None or not nested or self.session is None:
            return False
        if os.environ.get(NO_HANDOVER_ENV) == "1":
            return False
        if not getattr(self.executor, "shares_mounts", False):
            return False
        spec = self.runner_spec(toolchain, runner, directory)
        return self.session.runners.get(runner).can_hand_over(spec)

    def _rerun_failed(
        self, split: _SplitCall, plan: Plan, merged: list[TestResult], retries: int
    ) -> tuple[list[TestResult], list[SliceResult]]:
        """Rerun failed tests (``--retries``), each round in one fresh slice.

        A test that passes on a rerun is kept as passed with its failed attempts (flaky); one
        that never passes keeps its final failure and every earlier attempt.

        :returns: the final results (same order) and the rerun slices' own results.
        """
        runner, function, nested = split.runner, split.function, split.nested
        owner: dict[str, Item] = {}
        for sp in plan.slices:
            for item in sp.items:
                for test in sp.tests:
                    if test.path == item.path and (item.name is None or item.name == test.name):
                        owner.setdefault(test.id, item)
                if runner is None:
                    name = function if item.name is None else f"{function}::{item.name}"
                    owner.setdefault(f"{item.path}::{name}", item)
        final = {r.id: r for r in merged}
        reruns: list[SliceResult] = []
        index = len(plan.slices)
        for _ in range(retries):
            failed = [r for r in final.values() if r.status.is_bad and r.id in owner]
            if not failed or self.cancelled.is_set():
                break
            items: list[Item] = []
            tests: list[TestCase] = []
            for r in failed:
                item = owner[r.id]
                if runner is not None and nested and item.name is None:
                    item = Item((item.selector[0], r.name), item.path)
                if item not in items:
                    items.append(item)
                if runner is not None:
                    tests.append(TestCase(r.path, r.name))
            index += 1
            sp = SlicePlan(
                index=index, items=tuple(items), predicted_seconds=0.0, tests=tuple(tests)
            )
            result, _ = self._run_slice(split, sp, index, runner is not None)
            reruns.append(result)
            for again in result.results:
                before = final.get(again.id)
                if before is None or not before.status.is_bad:
                    continue
                attempt = Attempt(before.status, before.seconds, before.message, before.details)
                final[again.id] = dataclasses.replace(again, attempts=(*before.attempts, attempt))
        return [final[r.id] for r in merged], reruns

    def _tests_of_items(
        self,
        call: CallContext,
        runner: str,
        directory: Directory,
        items: Sequence[Item],
        prefix: str,
    ) -> dict[str, list[TestCase]]:
        """Map each item's key to its tests (workspace-relative), from the runner's listing."""
        listed = self.collect(call.toolchain, runner, directory)
        by_path: dict[str, list[TestCase]] = {}
        for test in listed:
            by_path.setdefault(test.path, []).append(test.under(prefix))
        tests_of: dict[str, list[TestCase]] = {}
        for item in items:
            source_path = item.selector[0]
            norm = os.path.normpath(source_path).replace(os.sep, "/")
            in_path = by_path.get(norm, by_path.get(source_path, []))
            if item.name is None:
                tests_of[item.key] = list(in_path)
            else:
                exact = [t for t in in_path if t.name == item.name]
                # A finer selector the listing does not know (a Go subtest) stands for itself.
                tests_of[item.key] = exact or [TestCase(item.path, item.name)]
        return tests_of

    def collect(self, toolchain: Toolchain, runner: str, directory: Directory) -> list[TestCase]:
        """Every test of *directory* as the runner lists it (source-relative).

        Kept for the run, and between runs in the listing cache while the source tree, the runner
        spec and dagpar are unchanged (see :mod:`dagpar_cli.listing_cache`).
        """
        key = (runner, str(directory.host_path))
        with self._counter_lock:
            lock = self._collect_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._collected:
                spec = self.runner_spec(toolchain, runner, directory)
                cache_key = self._listing_key(toolchain, spec)
                listed = self._listings.load(cache_key) if self._listings and cache_key else None
                if listed is not None:
                    self._from_cache.add(key)
                else:
                    # The key is taken before listing: a file edited while the runner lists
                    # makes the stored entry miss next time instead of hiding the edit.
                    listed = self._list_tests(toolchain, runner, spec)
                    if self._listings is not None and cache_key is not None:
                        self._listings.store(cache_key, listed)
                self._listing_keys[key] = cache_key
                self._collected[key] = listed
            return self._collected[key]

    def _list_tests(self, toolchain: Toolchain, runner: str, spec: RunnerSpec) -> list[TestCase]:
        """Ask the runner plugin for the listing (no cache)."""
        assert self.session is not None
        host = EngineRunnerHost(self, toolchain, spec)
        try:
            runner_plugin = self.session.runners.get(runner)
        except ExecutionError as exc:
            raise ExecutionError(f"toolchain {toolchain.config.instance!r}: {exc}") from None
        return list(runner_plugin.collect(spec, host))

    def _listing_key(self, toolchain: Toolchain, spec: RunnerSpec) -> ListingKey | None:
        """The listing cache's key for *spec*, or None when the cache is off."""
        if self.session is None or self._listings is None or cache_disabled():
            return None
        plugins = [
            f"{dist.project_name}=={dist.version}"
            for _, dist in self.session.pm.list_plugin_distinfo()
        ]
        options = self.session.options
        # The run's own reports land in the workspace as often as not; they are no tests.
        reports = [p for p in (options.junit_xml, options.report_html) if p is not None]
        installed = None
        if spec.executor == "local":
            # Inside a container the image holds what is installed, and it is in the key.
            installed = self.session.runners.get(spec.name).installed(spec)
        return self._listings.key(
            spec,
            image=toolchain.config.image,
            plugins=plugins,
            ignore=reports,
            installed=installed,
        )

    def _note_listing(
        self, split: _SplitCall, sp: SlicePlan, reported: Sequence[TestResult]
    ) -> None:
        """Compare what a slice reported with what the listing promised (a worker thread).

        A test reported but not listed, or listed but not reported, means the listing no longer
        matches the source tree: the cache entry it came from is dropped, so that the next run
        lists afresh, and the split call is marked for :meth:`_heal_stale_listing`.
        """
        runner = split.runner
        directory = _first_directory(split.receiver)
        if runner is None or directory is None or self.cancelled.is_set():
            return  # tests left out by --failfast or an interrupt say nothing about the listing
        expected = {t.id for t in sp.tests}
        seen = {r.id for r in reported}
        unreported = frozenset(expected - seen)
        split.unreported[sp.index] = unreported
        subtests = self.session is not None and self.session.runners.get(runner).has_subtests
        if not unreported and all(_listed(r, expected, subtests) for r in reported):
            return
        split.disagreed.add(sp.index)
        cache_key = self._listing_keys.get((runner, str(directory.host_path)))
        if cache_key is not None and self._listings is not None:
            self._listings.drop(cache_key)

    def _heal_stale_listing(
        self,
        split: _SplitCall,
        items: Sequence[Item],
        plan: Plan,
        slice_results: list[SliceResult],
    ) -> tuple[list[SliceResult], Plan]:
        """Make a run whose cached listing proved stale report what a fresh listing would.

        Only a listing that came from the cache is repaired (a fresh one that disagrees with
        the runner is reported as it always was). The runner is asked for a fresh listing, and:

        - listed tests that no longer exist are dropped: not errors, not results; a slice whose
          error came from selecting them (the runner refuses an unknown test) is cleared;
        - tests of the call's items that exist but that no slice reported (a test added where
          the planner had cut the file into single tests, say) run in one more slice;
        - tests reported but not listed were run and reported once already: they stay.

        :returns: the slice results to merge (with the extra slice, if any) and the plan that
            includes it (so ``--retries`` can rerun its failures too).
        """
        runner, call = split.runner, split.call
        directory = _first_directory(split.receiver)
        if runner is None or directory is None or self.cancelled.is_set():
            return slice_results, plan
        key = (runner, str(directory.host_path))
        if key not in self._from_cache:
            return slice_results, plan
        fresh = self._relist(call.toolchain, runner, directory, key)
        if fresh is None:
            return slice_results, plan
        # Workspace-relative ids, with the source-relative path a selector needs.
        source_path: dict[str, str] = {}
        by_path: dict[str, list[TestCase]] = {}
        for test in fresh:
            moved = test.under(split.prefix)
            source_path.setdefault(moved.id, test.path)
            by_path.setdefault(moved.path, []).append(moved)
        subtests = self.session is not None and self.session.runners.get(runner).has_subtests
        should: dict[str, TestCase] = {}
        for item in items:
            if item.name is None:
                should.update((t.id, t) for t in by_path.get(item.path, ()))
                continue
            named = TestCase(item.path, item.name)
            parent = TestCase(item.path, item.name.split("/", 1)[0])
            if named.id in source_path or (subtests and parent.id in source_path):
                should[named.id] = named
                source_path.setdefault(named.id, item.selector[0])
        if self.filter is not None and not self.filter.is_empty:
            selected, _ = self.filter.select_tests(
                call.toolchain.config.instance, list(should.values()), subtests=subtests
            )
            should = {t.id: t for t in selected}
        ran: set[str] = set()
        for result in slice_results:
            unreported = split.unreported.get(result.index, frozenset())
            for r in result.results:
                if r.id not in unreported:
                    ran.add(r.id)
                    if subtests:
                        ran.add(f"{r.path}::{r.name.split('/', 1)[0]}")
        missing = [t for t in should.values() if t.id not in ran]
        covered = {t.id for t in missing}
        healed: list[SliceResult] = []
        for result in slice_results:
            unreported = split.unreported.get(result.index, frozenset())
            gone = {i for i in unreported if i not in source_path}
            drop = gone | (unreported & covered)
            if not drop:
                healed.append(result)
                continue
            kept = tuple(r for r in result.results if r.id not in drop)
            # A runner asked for a test that no longer exists refuses the whole selection; when
            # everything it left unreported is gone or runs again, that error was the listing's.
            explained = bool(gone) and drop == unreported and not any(r.status.is_bad for r in kept)
            healed.append(
                dataclasses.replace(
                    result,
                    results=kept,
                    error="" if explained else result.error,
                    infrastructure_error=False if explained else result.infrastructure_error,
                )
            )
        if not missing:
            return healed, plan
        index = max((s.index for s in plan.slices), default=0) + 1
        if split.nested:
            extra_items = tuple(Item((source_path[t.id], t.name), t.path) for t in missing)
        else:
            by_ws = {t.path: source_path[t.id] for t in missing}
            extra_items = tuple(Item((source,), path) for path, source in by_ws.items())
        extra = SlicePlan(
            index=index, items=extra_items, predicted_seconds=0.0, tests=tuple(missing)
        )
        result, _ = self._run_slice(split, extra, index, True)
        healed.append(result)
        return healed, dataclasses.replace(plan, slices=(*plan.slices, extra))

    def _relist(
        self, toolchain: Toolchain, runner: str, directory: Directory, key: tuple[str, str]
    ) -> list[TestCase] | None:
        """A fresh listing, once per run and source, after a cached one proved stale."""
        with self._counter_lock:
            lock = self._collect_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._relisted:
                spec = self.runner_spec(toolchain, runner, directory)
                try:
                    self._relisted[key] = self._list_tests(toolchain, runner, spec)
                except DagparError:
                    return None  # cannot tell: the unreported tests stay errors
            return self._relisted[key]

    def runner_spec(self, toolchain: Toolchain, runner: str, directory: Directory) -> RunnerSpec:
        """The :class:`RunnerSpec` for *runner* on *directory* under *toolchain*'s config."""
        assert self.session is not None
        workspace = self.session.config.workspace
        source = directory.rel if directory.rel is not None else ""
        config = toolchain.config
        return RunnerSpec(
            name=runner,
            workspace=workspace,
            source=source,
            command=config.runner,
            args=config.args,
            executor=self.executor.name,
        )

    def _apply_filter(
        self,
        call: CallContext,
        items: list[Item],
        tests_of: dict[str, list[TestCase]],
        runner: str | None,
    ) -> tuple[list[Item], dict[str, list[TestCase]], bool]:
        """Narrow items (and their tests) to what ``--filter`` selects."""
        by_test = runner is not None
        assert self.session is not None
        instance = call.toolchain.config.instance
        hook = self.session.pm.hook
        if self.filter is None or self.filter.is_empty:
            if by_test:
                everything = [t for item in items for t in tests_of.get(item.key, [])]
                hook.dagpar_modify_tests(check=call.name, tests=everything, session=self.session)
            return items, tests_of, False
        self.candidates.update(item.path for item in items)
        if not by_test:
            selected_items, _ = self.filter.select_items(instance, items)
            return list(selected_items), tests_of, False
        everything = [t for item in items for t in tests_of.get(item.key, [])]
        # Only a runner with sub-tests (Go) names tests the listing cannot know; elsewhere a '/'
        # in a name pattern is just a character of the test's name.
        selected, deselected = self.filter.select_tests(
            instance,
            everything,
            subtests=runner is not None and self.session.runners.get(runner).has_subtests,
        )
        selected = list(selected)
        hook.dagpar_modify_tests(check=call.name, tests=selected, session=self.session)
        if deselected:
            hook.dagpar_deselected(check=call.name, tests=list(deselected))
        chosen = {t.id for t in selected}
        known = {t.id for t in everything}
        # Tests the filter made up (a Go subtest ``TestX/sub``) belong to their path's whole item.
        extra: dict[str, list[TestCase]] = {}
        for t in selected:
            if t.id not in known:
                extra.setdefault(t.path, []).append(t)
        kept: list[Item] = []
        new_tests: dict[str, list[TestCase]] = {}
        narrowed = False
        for item in items:
            listed = tests_of.get(item.key, [])
            mine = [t for t in listed if t.id in chosen]
            if item.name is None:
                mine += extra.get(item.path, [])
            if not mine:
                continue
            if len(mine) != len(listed) or (item.name is None and item.path in extra):
                narrowed = True
            kept.append(item)
            new_tests[item.key] = mine
        return kept, new_tests, narrowed

    def _plan(
        self,
        call: CallContext,
        items: list[Item],
        tests_of: dict[str, list[TestCase]],
        runner: str | None,
        nested: bool,
        handover: bool,
    ) -> tuple[Plan, dict[str, float], float]:
        """Cut the split call into slices.

        :returns: the plan, the predicted seconds per test id (for handing tails over; empty
            without history or hand-over) and the predicted start-up seconds of a slice.
        """
        assert self.session is not None
        instance = call.toolchain.config.instance
        store = self.session.timings
        predictions: dict[str, float] = {}
        estimated: frozenset[str] = frozenset()
        spread: float | None = None
        has_history = False
        startup = DEFAULT_STARTUP.get(self.executor.name, 0.5)
        finer: dict[str, list[tuple[Item, float]]] = {}
        per_test: dict[str, float] = {}
        if store is not None:
            prediction = store.predict_detailed(instance, items, tests_of)
            predictions, has_history = prediction.seconds, prediction.has_history
            estimated, spread = prediction.estimated, prediction.spread
            measured = store.startup_seconds(runner or "custom", self.executor.name)
            if measured is not None:
                startup = measured
            if nested and has_history:
                # Tests of whole items, so the planner can cut an item too long for one slice.
                splittable = [
                    item
                    for item in items
                    if item.name is None and len(tests_of.get(item.key, ())) > 1
                ]
                wanted = items if handover else splittable
                per_test = store.predict_tests(
                    instance, [t for item in wanted for t in tests_of.get(item.key, ())]
                )
                for item in splittable:
                    finer[item.key] = [
                        (Item((item.selector[0], t.name), item.path), per_test.get(t.id, 0.0))
                        for t in tests_of[item.key]
                    ]
        workers = self.workers
        request = PlanRequest(
            check=call.name,
            items=tuple(items),
            predictions=predictions,
            has_history=has_history,
            workers=workers,
            # More, smaller slices than workers let free workers pick up the tail when the
            # predictions are off; the planner cuts them only when that pays for the start-up.
            # Without history there is nothing to weigh: one slice per worker, split by count.
            # Where running slices hand their tails to free workers, that does the same job
            # better, and each extra slice would only cost one more start-up.
            max_slices=OVERSLICE * workers if has_history and not handover else workers,
            startup_seconds=startup,
            finer=finer,
            tests=tests_of,
            shard=self.session.options.shard,
            estimated=estimated,
            spread=spread,
        )
        planner = self.planner or _fallback_planner()
        plan = planner.plan(request)
        if not handover:
            return plan, {}, startup
        # A file the planner cut into its tests has them as items: they go by their own times.
        seconds = {**per_test, **predictions}
        return _longest_first(plan, seconds, estimated), per_test, startup

    def _run_slice(
        self, split: _SplitCall, sp: SlicePlan, total: int, narrowed: bool
    ) -> tuple[SliceResult, Any]:
        """Run one slice in a worker thread; never raises."""
        call, function, runner = split.call, split.function, split.runner
        assert self.session is not None
        hook = self.session.pm.hook
        start = time.monotonic()
        started = start - self.session.started
        if self.cancelled.is_set():
            reason = self.cancel_reason or "cancelled"
            results = _fill_missing(
                call, sp, [], function, runner, f"not run: {reason}", interrupted=True
            )
            return (
                SliceResult(
                    index=sp.index,
                    items=sp.items,
                    results=tuple(results),
                    seconds=0.0,
                    predicted_seconds=sp.predicted_seconds,
                    started=started,
                    error=f"not run: {reason}",
                    infrastructure_error=reason == "interrupted",
                    where=self.executor.name,
                ),
                None,
            )
        values = [list(it.selector) if split.nested else it.selector[0] for it in sp.items]
        copy = dataclasses.replace(split.receiver, **{split.field_name: values})
        env = {
            "DAGPAR_SLICE": f"{sp.index}/{total}",
            "DAGPAR_CHECK": call.name,
        }
        if self.session is not None:
            env["DAGPAR_RUN_ID"] = self.session.run_id
        for extra in hook.dagpar_slice_env(check=call.name, slice=sp):
            if extra:
                env.update(extra)
        timeout = self.session.options.timeout
        ctx = SliceContext(
            call=call,
            plan=sp,
            total=total,
            function=function,
            report_dir=self.new_dir(f"{split.label}-{sp.index}"),
            env=env,
            deadline=start + timeout if timeout else None,
            runner=runner,
            prefix=split.prefix,
            narrowed=narrowed,
            split=split,
        )
        if split.handover and self.handover is not None and not split.tails.closed:
            self.handover.expect(ctx)
        token = _slice_var.set(ctx)
        typedef = typedef_of(split.receiver)
        hook.dagpar_slice_started(
            check=call.name,
            slice=sp,
            total=total,
            field=f"{typedef.name}.{split.field_name}" if typedef else split.field_name,
        )
        error = ""
        infra = False
        value: Any = None
        try:
            value = split.fn(copy, *split.args, **split.kwargs)
        except ExecutionError as exc:
            error, infra = exc.message, True
        except TestsFailedError as exc:
            error = exc.message
        except Exception as exc:  # the toolchain's own bug: this slice fails, the others stand
            error = f"{type(exc).__name__}: {exc}"
        finally:
            _slice_var.reset(token)
            if self.handover is not None:
                self.handover.withdraw(ctx)
        if ctx.handed:
            # Another slice runs those now: this one neither reports nor misses them.
            gone = {t.id for t in ctx.handed}
            sp = dataclasses.replace(
                sp,
                tests=tuple(t for t in sp.tests if t.id not in gone),
                predicted_seconds=max(sp.predicted_seconds - ctx.handed_seconds, 0.0),
            )
        if self.cancelled.is_set() and self.cancel_reason == "interrupted":
            error, infra = "interrupted", True
        elif self.cancelled.is_set() and error:
            error = f"{error} ({self.cancel_reason})"
        seconds = time.monotonic() - start
        self._note_listing(split, sp, ctx.results)
        results = _fill_missing(
            call,
            sp,
            ctx.results,
            function,
            runner,
            error,
            interrupted=error == "interrupted",
            seconds=seconds,
        )
        result = SliceResult(
            index=sp.index,
            items=sp.items,
            results=tuple(results),
            seconds=seconds,
            predicted_seconds=sp.predicted_seconds,
            started=started,
            error=error,
            infrastructure_error=infra,
            where=", ".join(ctx.wheres) or self.executor.name,
        )
        hook.dagpar_slice_finished(check=call.name, slice=sp, result=result)
        if error and self.session.options.failfast and not self.cancelled.is_set():
            self.cancel("--failfast")
        return result, value

    # ---------------------------------------------------------------- pipelines

    def run(
        self,
        container: Container,
        call: CallContext | None,
        *,
        copy_out: tuple[str, ...] = (),
        always: bool = False,
    ) -> PipelineResult:
        """Run *container*'s commands in a fresh session of the executor.

        Outside a slice under ``--dry-run`` nothing runs (unless *always*, for listings).

        :raises ExecFailedError: a command expected to succeed exited non-zero.
        :raises ExecutionError: a command could not start, timed out or was killed.
        """
        slice_ctx = _slice_var.get()
        dry = self.session is not None and self.session.options.dry_run
        if dry and slice_ctx is None and not always:
            return PipelineResult(
                outcomes=(),
                directories={p: Directory(self.new_dir("dry-run")) for p in copy_out},
            )
        if self.cancelled.is_set():
            raise ExecutionError(self.cancel_reason or "cancelled")
        image = container.image
        if call is not None and call.toolchain.config.image:
            image = call.toolchain.config.image
        mounts = tuple(
            Mount(
                source=m.directory.host_path.resolve(),
                target=m.target,
                read_only=not m.writable,
            )
            for m in container.mounts
        )
        env = dict(slice_ctx.env) if slice_ctx is not None else {}
        env.update(dict(container.env))
        label = (
            f"{call.name}#{slice_ctx.plan.index}"
            if call is not None and slice_ctx is not None
            else (call.name if call is not None else "dagpar")
        )
        labels = {"dagpar.check": call.name} if call is not None else {}
        if slice_ctx is not None:
            labels["dagpar.slice"] = f"{slice_ctx.plan.index}/{slice_ctx.total}"
        spec = SessionSpec(label=label, image=image, mounts=mounts, env=env, labels=labels)
        outcomes: list[Outcome] = []
        directories: dict[str, Directory] = {}
        with self.executor.open(spec) as session:
            if slice_ctx is not None:
                if session.where not in slice_ctx.wheres:
                    slice_ctx.wheres.append(session.where)
                slice_ctx.shares_mounts = bool(getattr(session, "shares_mounts", False))
            translate = _translator(session, mounts)
            workdir = container.workdir or (mounts[0].target if mounts else "/")
            cwd = translate(workdir)
            for ex in container.execs:
                if self.cancelled.is_set():
                    raise ExecutionError(self.cancel_reason or "cancelled")
                timeout = slice_ctx.remaining() if slice_ctx is not None else None
                request = ExecRequest(
                    argv=tuple(translate(a) for a in ex.argv), cwd=cwd, timeout=timeout
                )
                outcome = session.run(request)
                outcomes.append(outcome)
                _raise_for_infrastructure(request, outcome, self)
                if ex.expect_success and outcome.exit_code != 0:
                    raise ExecFailedError(ex.argv, outcome)
            for path in copy_out:
                dest = self.new_dir(f"out-{label}")
                session.copy_out(translate(path), dest)
                directories[path] = Directory(dest)
        return PipelineResult(outcomes=tuple(outcomes), directories=directories)


class EngineRunnerHost:
    """A :class:`~dagpar_cli.runners.RunnerHost` that runs listings on the run's executor."""

    def __init__(self, engine: Engine, toolchain: Toolchain, spec: RunnerSpec) -> None:
        self.engine = engine
        self.toolchain = toolchain
        self.spec = spec

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """Run *argv* in the source directory; see :meth:`RunnerHost.run`."""
        from dagpar_cli.sdk.dag import dag

        workspace = self.spec.workspace.resolve()
        source = self.spec.source_dir.resolve()
        container = (
            dag.container()
            .with_directory(str(workspace), Directory(workspace, ""))
            .with_workdir(str(source))
        )
        for key, value in (env or {}).items():
            container = container.with_env_variable(key, value)
        container = container.with_exec(list(argv), expect="any")
        try:
            result = self.engine.run(container, _call_var.get(), always=True)
        except ExecutionError as exc:
            return Outcome(exit_code=127, stderr=exc.message, not_started=True)
        return result.outcomes[-1]


def _longest_first(plan: Plan, seconds: Mapping[str, float], estimated: frozenset[str]) -> Plan:
    """*plan* with each slice's items in the order they should run where tails are handed over.

    Unknown items first, then the longest: a surprise shows early, and what a slice has left
    when a worker comes free is short tests, which it can give away in even parts. Ties keep
    the plan's order, and a slice's tests follow its items.
    """

    def rank(item: Item) -> tuple[bool, float]:
        return item.key not in estimated, -seconds.get(item.key, 0.0)

    slices = []
    for sp in plan.slices:
        items = tuple(sorted(sp.items, key=rank))
        first: dict[str, int] = {}
        for position, item in enumerate(items):
            first.setdefault(item.path, position)
        tests = tuple(sorted(sp.tests, key=lambda t: first.get(t.path, len(items))))
        slices.append(dataclasses.replace(sp, items=items, tests=tests))
    return dataclasses.replace(plan, slices=tuple(slices))


def _nothing() -> None:
    """A pool task that only makes its worker look for tails to take."""


def _reserve(offer: Offer) -> None:
    offer.split.tails.reserve()


def _release(offer: Offer) -> None:
    offer.split.tails.release()


def _raise_for_infrastructure(request: ExecRequest, outcome: Outcome, engine: Engine) -> None:
    if engine.cancelled.is_set() and engine.cancel_reason == "interrupted":
        raise ExecutionError("interrupted")
    if outcome.timed_out:
        raise ExecutionError(
            f"timed out after {request.timeout:.0f}s (--timeout) running: {request.shell()}"
            if request.timeout
            else f"timed out running: {request.shell()}"
        )
    if outcome.killed:
        raise ExecutionError(f"{outcome.killed} running: {request.shell()}")
    if outcome.not_started:
        reason = outcome.stderr.strip().splitlines()[-1] if outcome.stderr.strip() else ""
        raise ExecutionError(
            f"cannot start {request.argv[0]!r}: {reason or 'not found'}; "
            "install it or set `runner:` for the toolchain in dagpar.yaml"
        )
    if outcome.exit_code < 0:
        raise ExecutionError(f"killed by signal {-outcome.exit_code} running: {request.shell()}")


def _translator(session: ExecSession, mounts: Sequence[Mount]) -> Callable[[str], str]:
    """Map container paths (in arguments, ``--opt=PATH`` values, cwd) to session paths."""
    pairs = sorted(((m.target, session.path(m.source)) for m in mounts), key=lambda p: -len(p[0]))
    if all(target == mapped for target, mapped in pairs):
        return lambda text: text

    def one(text: str) -> str:
        for target, mapped in pairs:
            if text == target:
                return mapped
            if text.startswith(target + "/"):
                return mapped + text[len(target) :]
        return text

    def translate(text: str) -> str:
        if text.startswith("-") and "=" in text:
            flag, _, value = text.partition("=")
            return f"{flag}={one(value)}"
        return one(text)

    return translate


def _item(value: Any, nested: bool, prefix: str, field_name: str) -> Item:
    if nested:
        if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
            raise TestsFailedError(
                f"+parallel field '{field_name}' holds {value!r}; "
                "a list[list[str]] field needs non-empty lists of strings"
            )
        selector = tuple(str(v) for v in value)
    else:
        if not isinstance(value, str):
            raise TestsFailedError(
                f"+parallel field '{field_name}' holds {value!r}; a list[str] field needs strings"
            )
        selector = (value,)
    return Item(selector, join_path(prefix, selector[0]))


def _first_directory(receiver: Any) -> Directory | None:
    for f in dataclasses.fields(receiver):
        value = getattr(receiver, f.name, None)
        if isinstance(value, Directory):
            return value
    return None


def _fill_missing(
    call: CallContext,
    sp: SlicePlan,
    reported: Sequence[TestResult],
    function: str,
    runner: str | None,
    error: str,
    *,
    interrupted: bool = False,
    seconds: float = 0.0,
) -> list[TestResult]:
    """Every test the slice was expected to run, exactly once, with a status.

    Tests the runner did not report become errors carrying the slice's error (a crash, a
    timeout, an interrupt); for toolchains without a runner each item is one result.
    """
    results = [
        r
        if r.check == call.name and r.slice == sp.index
        else dataclasses.replace(r, check=call.name, slice=sp.index)
        for r in _unique(reported)
    ]
    seen = {r.id for r in results}
    if sp.tests or runner is not None:
        for test in sp.tests:
            if test.id in seen:
                continue
            if interrupted:
                message = "interrupted before this test finished"
            elif error:
                message = f"not run: {error}"
            else:
                message = f"the {runner} report does not mention this test"
            results.append(
                TestResult(
                    path=test.path,
                    name=test.name,
                    status=Status.ERROR,
                    message=message,
                    check=call.name,
                    slice=sp.index,
                )
            )
        return results
    # No runner: one result per item, unless the toolchain reported per item itself.
    per_item = seconds / max(1, len(sp.items))
    for item in sp.items:
        name = function if item.name is None else f"{function}::{item.name}"
        if f"{item.path}::{name}" in seen:
            continue
        if interrupted:
            status, message = Status.ERROR, "interrupted"
        elif error:
            status, message = Status.FAILED, error
        else:
            status, message = Status.PASSED, ""
        results.append(
            TestResult(
                path=item.path,
                name=name,
                status=status,
                seconds=per_item,
                message=message,
                check=call.name,
                slice=sp.index,
            )
        )
    return results


def _listed(result: TestResult, expected: set[str], subtests: bool) -> bool:
    """Whether the reported *result* is one of the *expected* test ids (or a subtest of one).

    :param subtests: whether the runner reports sub-tests (``Runner.has_subtests``).
    """
    if result.id in expected:
        return True
    if subtests and "/" in result.name:
        # Go reports subtests (``TestX/sub``) that its listing, of top-level tests, cannot know.
        return f"{result.path}::{result.name.split('/', 1)[0]}" in expected
    return False


def _unique(results: Sequence[TestResult]) -> list[TestResult]:
    """Drop repeated reports of one test, keeping the worst status (a runner's double report)."""
    order: dict[str, TestResult] = {}
    rank = {Status.ERROR: 3, Status.FAILED: 2, Status.PASSED: 1, Status.SKIPPED: 0}
    for r in results:
        known = order.get(r.id)
        if known is None or rank[r.status] > rank[known.status]:
            order[r.id] = r
    return list(order.values())


def _short_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])


class _CountPlanner:
    """The fallback when no planner plugin answers: a balanced split by item count."""

    name = "count"

    def plan(self, request: PlanRequest) -> Plan:
        items = request.items
        n = max(1, min(request.workers, len(items)))
        buckets: list[list[Item]] = [[] for _ in range(n)]
        for i, item in enumerate(items):
            buckets[i * n // len(items)].append(item)
        slices = tuple(
            SlicePlan(
                index=i + 1,
                items=tuple(b),
                predicted_seconds=request.startup_seconds
                + sum(request.predictions.get(it.key, 0.0) for it in b),
                tests=tuple(t for it in b for t in request.tests.get(it.key, ())),
            )
            for i, b in enumerate(buckets)
            if b
        )
        wall = max((s.predicted_seconds for s in slices), default=0.0)
        return Plan(slices=slices, predicted_wall_seconds=wall, workers=n, planner=self.name)


def _fallback_planner() -> Planner:
    return _CountPlanner()
