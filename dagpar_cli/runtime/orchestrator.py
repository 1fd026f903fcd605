"""Stages 4 to 7 for one run: the :class:`~dagpar_cli.runtime.context.Runtime` the SDK calls.

When toolchain code calls a ``+parallel`` function on a receiver with a ``+parallel`` field, the
wrapper installed by ``@object_type`` calls :func:`~dagpar_cli.runtime.context.dispatch`, and
:meth:`Orchestrator.split` runs the split call in named stages:

1. **itemize** — the field's elements become :class:`~dagpar_cli.model.Item` values;
2. **list** — the items' tests, through the runner plugin (:mod:`.listing`);
3. **filter** — ``--filter`` and ``dagpar_modify_tests`` (:meth:`Filter.narrow
   <dagpar_cli.filtering.Filter.narrow>`);
4. **plan** — slices from the timing history (:mod:`dagpar_cli.planning.request`);
5. **schedule** — the slices on the run's workers (:mod:`dagpar_cli.execution.scheduler`); each
   runs the function on a copy of the receiver whose field holds the slice's items, in its own
   context (report directory, environment, deadline);
6. **collect** — every selected test exactly once, retries, the verdict (:mod:`.collect`), and
   ``Directory`` results merged as an overlay.

Calls that are not split (no ``+parallel`` pair, or already inside a slice) run once, as written.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagpar_cli.errors import DagparError, ExecutionError, TestsFailedError
from dagpar_cli.execution.api import PipelineResult
from dagpar_cli.execution.container import PipelineRunner
from dagpar_cli.execution.scheduler.api import SplitJob, TailSlices
from dagpar_cli.interrupts import SignalInterrupt
from dagpar_cli.model import (
    CheckResult,
    Item,
    SlicePlan,
    SliceResult,
    TestCase,
    TestResult,
)
from dagpar_cli.planning.request import plan_split
from dagpar_cli.runner_api import RunnerSpec
from dagpar_cli.runtime import collect
from dagpar_cli.runtime.context import (
    CallContext,
    SliceContext,
    current_slice,
    enter_call,
    enter_slice,
    leave_call,
    leave_slice,
)
from dagpar_cli.runtime.grid import Grid, MatrixFilter, item_of, matrix_config
from dagpar_cli.runtime.listing import Lister, ListingCheck
from dagpar_cli.runtime.progress_poller import ProgressPoller
from dagpar_cli.runtime.runner_host import ExecutorRunnerHost
from dagpar_cli.sdk.container import Container
from dagpar_cli.sdk.directory import Directory, merge_overlay
from dagpar_cli.sdk.types import typedef_of

if TYPE_CHECKING:
    from dagpar_cli.config.model import ToolchainConfig
    from dagpar_cli.discovery import Toolchain
    from dagpar_cli.execution.api import Executor
    from dagpar_cli.execution.scheduler.api import Scheduler
    from dagpar_cli.filtering import Filter
    from dagpar_cli.planning.api import Planner
    from dagpar_cli.run_context import RunContext
    from dagpar_cli.runner_api import Runner

__all__ = ["Orchestrator"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
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
    #: ``Type.field``, for the hooks.
    field_label: str
    #: The listing the slices are checked against (None without a runner).
    listing: ListingCheck | None
    #: The combinations, when the type has several ``+parallel`` fields.
    grid: Grid | None = None


class Orchestrator:
    """Runs the calls, split calls and pipelines of one dagpar run.

    :param session: the run's session.
    :param executor: where commands run.
    :param scheduler: how slices get onto the workers.
    :param planner: cuts split calls into slices (None: a split by count).
    :param filter: the parsed ``--filter`` selectors.
    """

    def __init__(
        self,
        *,
        session: RunContext,
        executor: Executor,
        scheduler: Scheduler,
        planner: Planner | None,
        filter: Filter,
    ) -> None:
        self.session = session
        self.executor = executor
        self.scheduler = scheduler
        self.planner = planner
        self.filter = filter
        self.cancelled = threading.Event()
        #: Why the run was cancelled ("interrupted", "--failfast").
        self.cancel_reason = ""
        self._workdir = Path(tempfile.mkdtemp(prefix="dagpar-"))
        self._counter = 0
        self._counter_lock = threading.Lock()
        #: Item paths the filter saw, for "did you mean" when it matched nothing.
        self.candidates: set[str] = set()
        #: ``--matrix``: the combinations to keep.
        self.matrix = MatrixFilter(session.options.matrix)
        #: Follows running slices' runners for live progress.
        self.progress = ProgressPoller(session.pm.hook, session.runners)
        self.lister = Lister(session, executor.name, self._runner_host, self.cancelled.is_set)
        self.pipelines = PipelineRunner(executor, self.new_dir, self._cancel_state)

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Stop the workers and remove the run's temporary files."""
        self.scheduler.close()
        self.progress.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def cancel(self, reason: str) -> None:
        """Stop every running and pending slice (interrupt, ``--failfast``)."""
        if self.cancelled.is_set():
            return
        self.cancel_reason = reason
        self.cancelled.set()
        self.scheduler.cancel()
        self.executor.kill_all()

    @property
    def interrupted(self) -> bool:
        """Whether the run was interrupted (Ctrl-C, SIGTERM)."""
        return self.cancelled.is_set() and self.cancel_reason == "interrupted"

    def _cancel_state(self) -> str | None:
        return (self.cancel_reason or "cancelled") if self.cancelled.is_set() else None

    def new_dir(self, hint: str) -> Path:
        """A fresh, empty directory for this run (removed by :meth:`close`)."""
        with self._counter_lock:
            self._counter += 1
            n = self._counter
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", hint).strip("-")[:60] or "dir"
        path = self._workdir / f"{n:04d}-{slug}"
        path.mkdir(parents=True)
        return path

    # ---------------------------------------------------------------- calls

    def run_call(
        self, name: str, toolchain: Toolchain, body: Callable[[], Any]
    ) -> tuple[CheckResult, Any]:
        """Run *body* (a check, or a call chain) as the call *name*; never raises for its errors.

        :returns: the call's merged result and *body*'s return value (None when it raised).
        """
        call = CallContext(runtime=self, name=name, toolchain=toolchain)
        token = enter_call(call)
        start = time.monotonic()
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
        except (DagparError, SignalInterrupt):
            raise
        except BaseException as exc:  # the toolchain's own bug: the check fails, the run goes on
            # Even SystemExit or KeyboardInterrupt: toolchain code never decides dagpar's exit.
            error = _describe(exc)
            details = collect.short_traceback(exc)
        finally:
            leave_call(token)
        seconds = time.monotonic() - start
        results = collect.call_results(
            call.results,
            check=name,
            path=toolchain.config.source or ".",
            split=bool(call.splits),
            error=error,
            details=details,
            infrastructure_error=call.infrastructure_error,
            seconds=seconds,
            interrupted=self.interrupted,
        )
        result = CheckResult(
            name=name,
            results=tuple(results),
            slices=tuple(sorted(call.slices, key=lambda s: s.index)),
            plans=tuple(call.plans),
            error=error,
            infrastructure_error=call.infrastructure_error,
            seconds=seconds,
            started=start - self.session.started,
            interrupted=self.interrupted,
        )
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
        with call.lock:
            call.splits += 1
        instance = call.toolchain.config.instance
        runner = typedef.runner
        directory = _first_directory(receiver)
        prefix = directory.rel or "" if directory is not None else ""
        workspace = self.session.config.workspace
        grid = Grid.of(typedef, receiver, prefix, workspace, call.toolchain.config)
        toolchain = self._toolchain(call)
        # Go's filters may name subtests (``TestX/sub``) that its listing cannot know.
        subtests = runner is not None and self.runner(call, runner).has_subtests
        listing = spec = None
        if runner is not None and directory is not None:
            spec = self.lister.spec(toolchain, runner, directory)
            listing = self.lister.check(
                toolchain,
                runner,
                directory,
                prefix=prefix,
                nested=pfield.nested,
                subtests=subtests,
            )

        if grid is not None and grid.configured:
            listing = None  # its results carry their matrix values: not the listing's names
        # itemize (several +parallel fields or a matrix: every combination; runtime/grid.py)
        if grid is not None:
            items = grid.items()
        else:
            raw = list(getattr(receiver, pfield.name) or [])
            items = [item_of(value, pfield.nested, prefix, pfield.name) for value in raw]
        items = self.matrix.narrow(items, grid)
        # list
        tests_of: dict[str, list[TestCase]] = {}
        if runner is not None and directory is not None:
            # Under a matrix:, each combination lists its tests under its own values.
            for part in grid.by_value(items) if grid is not None else [items]:
                under = self._toolchain(call, part)
                tests_of.update(self.lister.tests_of_items(under, runner, directory, part, prefix))
        # filter
        if not self.filter.is_empty:
            self.candidates.update(item.path for item in items)
        hook = self.session.pm.hook
        kept = self.filter.narrow(
            instance,
            items,
            tests_of,
            by_test=runner is not None,
            subtests=subtests,
            modify=lambda tests: hook.dagpar_modify_tests(
                check=call.name, tests=tests, session=self.session
            ),
            deselected=lambda tests: hook.dagpar_deselected(check=call.name, tests=tests),
        )
        if not kept.items:
            return None  # the filter selected nothing here; the pipeline reports it
        # plan
        hands_over = grid is None and self.scheduler.hands_over(spec, pfield.nested)
        if grid is not None:
            by_runner = runner is not None
            planned = grid.plan(
                kept.items,
                grid.labelled(kept.tests_of, kept.items)
                if by_runner
                else grid.tests(kept.items, name),
                slice_tests=kept.tests_of if by_runner else None,
                function=name,
                instance=instance,
                runner=runner,
                workers=self.scheduler.workers,
                executor=self.executor.name,
                store=self.session.timings,
                shard=self.session.options.shard,
            )
        else:
            planned = plan_split(
                check=call.name,
                instance=instance,
                items=kept.items,
                tests_of=kept.tests_of,
                runner=runner,
                nested=pfield.nested,
                hands_over=hands_over,
                workers=self.scheduler.workers,
                executor=self.executor.name,
                store=self.session.timings,
                planner=self.planner,
                shard=self.session.options.shard,
            )
        plan = planned.plan
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
            field_label=f"{typedef.name}.{pfield.name}",
            listing=listing,
            grid=grid,
        )
        job = SplitJob(
            check=call.name,
            plan=plan,
            run_slice=lambda sp, total, narrowed: self._run_slice(split, job, sp, total, narrowed),
            narrowed=kept.narrowed,
            hands_over=hands_over,
            predicted=planned.predicted,
            startup=planned.startup,
            tails=TailSlices(max((sp.index for sp in plan.slices), default=0)),
        )
        # schedule
        outcomes = self.scheduler.run(job)
        if tuple(sp for sp, _, _ in outcomes) != plan.slices:  # tails cut, or queue units
            final = dataclasses.replace(plan, slices=tuple(sp for sp, _, _ in outcomes))
            with call.lock:
                call.plans[call.plans.index(plan)] = final
            plan = final

        # collect
        slice_results = [result for _, result, _ in outcomes]
        if listing is not None:
            slice_results, plan = listing.heal(
                kept.items, plan, slice_results, self.filter, job.run_slice
            )
        merged: list[TestResult] = [r for s in slice_results for r in s.results]
        reruns: list[SliceResult] = []
        retries = self.session.options.retries
        if retries and grid is not None and not self.cancelled.is_set():
            merged, reruns = grid.rerun_failed(
                plan,
                merged,
                retries=retries,
                runner=runner,
                function=name,
                run_slice=job.run_slice,
                cancelled=self.cancelled.is_set,
            )
        elif retries and not self.cancelled.is_set():
            merged, reruns = collect.rerun_failed(
                plan,
                merged,
                retries=retries,
                runner=runner,
                function=name,
                nested=pfield.nested,
                run_slice=job.run_slice,
                cancelled=self.cancelled.is_set,
                parallelism=self.scheduler.workers,
            )
        with call.lock:
            call.slices.extend(slice_results + reruns)
            call.results.extend(merged)
            if any(s.infrastructure_error for s in slice_results):
                call.infrastructure_error = True
        collect.raise_for_slices(slice_results, merged, len(job.plan.slices))

        if fdef.returns == "Directory":
            total = len(job.plan.slices)
            parts = [
                (f"slice {sp.index}/{total}", value)
                for sp, _, value in outcomes
                if isinstance(value, Directory)
            ]
            return merge_overlay(parts, self.new_dir(f"{split.label}-merged"))
        return None

    def _run_slice(
        self, split: _SplitCall, job: SplitJob, sp: SlicePlan, total: int, narrowed: bool
    ) -> tuple[SliceResult, Any]:
        """Run one slice in a worker thread; never raises."""
        call, function, runner = split.call, split.function, split.runner
        hook = self.session.pm.hook
        start = time.monotonic()
        started = start - self.session.started
        if self.cancelled.is_set():
            reason = self.cancel_reason or "cancelled"
            results = collect.fill_missing(
                call.name, sp, [], function, runner, f"not run: {reason}", interrupted=True
            )
            if split.grid is not None and runner is not None:
                results = split.grid.relabel(results, sp)
            result = SliceResult(
                index=sp.index,
                items=sp.items,
                results=tuple(results),
                seconds=0.0,
                predicted_seconds=sp.predicted_seconds,
                started=started,
                error=f"not run: {reason}",
                infrastructure_error=reason == "interrupted",
                where=self.executor.name,
            )
            return result, None
        if split.grid is not None:
            copy = dataclasses.replace(split.receiver, **split.grid.receiver_fields(sp.items))
        else:
            values = [list(it.selector) if split.nested else it.selector[0] for it in sp.items]
            copy = dataclasses.replace(split.receiver, **{split.field_name: values})
        env = {
            "DAGPAR_SLICE": f"{sp.index}/{total}",
            "DAGPAR_CHECK": call.name,
            "DAGPAR_RUN_ID": self.session.run_id,
        }
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
            timeout=timeout or None,
            runner=runner,
            prefix=split.prefix,
            narrowed=narrowed,
            job=job,
        )
        hook.dagpar_slice_started(check=call.name, slice=sp, total=total, field=split.field_label)
        error = ""
        infra = False
        value: Any = None
        with self.scheduler.attend(ctx):
            token = enter_slice(ctx)
            try:
                value = split.fn(copy, *split.args, **split.kwargs)
            except ExecutionError as exc:
                error, infra = exc.message, True
            except TestsFailedError as exc:
                error = exc.message
            except SignalInterrupt:
                raise
            except BaseException as exc:  # the toolchain's bug: this slice fails, others stand
                error = _describe(exc)
            finally:
                leave_slice(token)
        if ctx.handed:
            # Another slice runs those now: this one neither reports nor misses them.
            gone = {t.id for t in ctx.handed}
            sp = dataclasses.replace(
                sp,
                tests=tuple(t for t in sp.tests if t.id not in gone),
                predicted_seconds=max(sp.predicted_seconds - ctx.handed_seconds, 0.0),
            )
        if self.interrupted:
            error, infra = "interrupted", True
        elif self.cancelled.is_set() and error:
            error = f"{error} ({self.cancel_reason})"
        seconds = time.monotonic() - start
        if split.listing is not None:
            split.listing.note(sp, ctx.results)
        reported = ctx.results
        if split.grid is not None and runner is None:
            reported = split.grid.complete(
                sp, reported, function, error, interrupted=error == "interrupted", seconds=seconds
            )
        results = collect.fill_missing(
            call.name,
            sp,
            reported,
            function,
            runner,
            error,
            interrupted=error == "interrupted",
            seconds=seconds,
        )
        if split.grid is not None and runner is not None:
            results = split.grid.relabel(results, sp)
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
            replacements=ctx.replacements,
        )
        hook.dagpar_slice_finished(check=call.name, slice=sp, result=result)
        if error and self.session.options.failfast and not self.cancelled.is_set():
            self.cancel("--failfast")
        return result, value

    # ---------------------------------------------------------------- the SDK's side

    def run_container(
        self,
        container: Container,
        call: CallContext | None,
        *,
        copy_out: tuple[str, ...] = (),
        always: bool = False,
        under: ToolchainConfig | None = None,
    ) -> PipelineResult:
        """Run *container*'s commands in a fresh session of the executor.

        Outside a slice under ``--dry-run`` nothing runs (unless *always*, for listings).
        The toolchain's ``image:`` and ``env:`` apply (*under* one combination of its
        ``matrix:``, or the running slice's).

        :raises ExecFailedError: a command expected to succeed exited non-zero.
        :raises ExecutionError: a command could not start, timed out or was killed.
        """
        slice_ctx = current_slice()
        if self.session.options.dry_run and slice_ctx is None and not always:
            return PipelineResult(
                outcomes=(),
                directories={p: Directory(self.new_dir("dry-run")) for p in copy_out},
            )
        config = under or (self._toolchain(call).config if call is not None else None)
        if config is not None and config.image:
            container = dataclasses.replace(container, image=config.image)
        if config is not None and config.env:
            # The toolchain's variables, under what the pipeline sets itself.
            set_here = {k for k, _ in container.env}
            extra = tuple((k, v) for k, v in config.env.items() if k not in set_here)
            container = dataclasses.replace(container, env=extra + container.env)
        if call is None:
            label, labels = "dagpar", {}
        elif slice_ctx is None:
            label, labels = call.name, {"dagpar.check": call.name}
        else:
            label = f"{call.name}#{slice_ctx.plan.index}"
            labels = {
                "dagpar.check": call.name,
                "dagpar.slice": f"{slice_ctx.plan.index}/{slice_ctx.total}",
            }
        return self.pipelines.run(
            container, label=label, labels=labels, slice=slice_ctx, copy_out=copy_out
        )

    def list_tests(self, call: CallContext, runner: str, directory: Directory) -> list[TestCase]:
        """Every test of *directory* as *runner* lists it (source-relative)."""
        return self.lister.tests(self._toolchain(call), runner, directory)

    def runner_spec(self, call: CallContext, runner: str, directory: Directory) -> RunnerSpec:
        """The :class:`RunnerSpec` of *runner* on *directory* under *call*'s toolchain."""
        return self.lister.spec(self._toolchain(call), runner, directory)

    def runner(self, call: CallContext, name: str) -> Runner:
        """The registered runner *name*.

        :raises ExecutionError: no plugin provides it (naming the toolchain and the runners
            that are installed).
        """
        try:
            return self.session.runners.get(name)
        except ExecutionError as exc:
            raise ExecutionError(f"toolchain {call.toolchain.config.instance!r}: {exc}") from None

    @contextmanager
    def running(self, slice: SliceContext, spec: RunnerSpec, report_dir: Path) -> Iterator[None]:
        """While a slice's runner runs: live progress, and idle workers may take its tail."""
        with self.progress.following(slice, spec), self.scheduler.offering(slice, spec, report_dir):
            yield

    def report_tests(self, check: str, results: Sequence[TestResult]) -> None:
        """Tell the plugins about each result as a slice reports it."""
        hook = self.session.pm.hook
        for result in results:
            hook.dagpar_test_reported(check=check, result=result)

    def task_span(self, slice: SliceContext, item_key: str) -> AbstractContextManager[object]:
        """The span a tracing plugin opens for one item's work, or a no-op."""
        span: AbstractContextManager[object] | None = self.session.pm.hook.dagpar_task_span(
            check=slice.call.name, slice=slice.plan, item=item_key
        )
        return span if span is not None else nullcontext()

    def cancel_reason_now(self) -> str | None:
        """Why the run was cancelled, or None while it goes on."""
        return self._cancel_state()

    def _toolchain(self, call: CallContext, items: Sequence[Item] | None = None) -> Toolchain:
        """*call*'s toolchain under the ``matrix:`` values of *items* (default: the running
        slice's; the first values outside a slice)."""
        config = call.toolchain.config
        if not config.matrix:
            return call.toolchain
        if items is None:
            ctx = current_slice()
            items = ctx.plan.items if ctx is not None and ctx.call is call else ()
        return dataclasses.replace(call.toolchain, config=matrix_config(config, items))

    def _runner_host(self, toolchain: Toolchain, spec: RunnerSpec) -> ExecutorRunnerHost:
        return ExecutorRunnerHost(self.run_container, spec, toolchain.config)


def _describe(exc: BaseException) -> str:
    """``Type: message`` for an exception toolchain code raised."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) raised by toolchain code"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else f"{type(exc).__name__} raised"


def _first_directory(receiver: Any) -> Directory | None:
    for f in dataclasses.fields(receiver):
        value = getattr(receiver, f.name, None)
        if isinstance(value, Directory):
            return value
    return None
