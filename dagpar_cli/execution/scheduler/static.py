"""The static strategy: each planned slice runs as planned, in the plan's order."""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagpar_cli.execution.scheduler.api import SliceOutcome, SplitJob

if TYPE_CHECKING:
    from dagpar_cli.model import SlicePlan, SliceResult
    from dagpar_cli.runner_api import RunnerSpec
    from dagpar_cli.runtime.context import SliceContext

__all__ = ["StaticScheduler"]


class StaticScheduler:
    """Runs planned slices on a pool of *workers* threads, in the order the planner numbered
    them (longest predicted first, or a first wave of slices holding estimated tests).

    Every split call of the run shares the pool, so that one check's slow slice does not leave
    workers idle while another check's slices wait.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        #: Tasks submitted and not yet started.
        self._queued = 0

    def hands_over(self, spec: RunnerSpec | None, nested: bool) -> bool:
        """Never: a slice runs everything it was planned with."""
        return False

    def run(self, job: SplitJob) -> list[SliceOutcome]:
        """Run *job*'s planned slices; see :meth:`Scheduler.run`."""
        total = len(job.plan.slices)
        futures: list[tuple[SlicePlan, Future[tuple[SliceResult, Any]]]] = []
        for sp in sorted(job.plan.slices, key=lambda s: s.index):
            future: Future[tuple[SliceResult, Any]] = Future()
            self.submit(functools.partial(_slice_job, future, job, sp, total))
            futures.append((sp, future))
        self._started(job)
        outcomes: list[SliceOutcome] = [(sp, *future.result()) for sp, future in futures]
        outcomes += self._finished(job)
        return sorted(outcomes, key=lambda o: o[0].index)

    def attend(self, slice: SliceContext) -> AbstractContextManager[object]:
        """Nothing to do while a slice runs."""
        return nullcontext()

    def offering(
        self, slice: SliceContext, spec: RunnerSpec, report_dir: Path
    ) -> AbstractContextManager[object]:
        """A running slice keeps all of its tests."""
        return nullcontext()

    def cancel(self) -> None:
        """Nothing of its own to stop: cancelled slices end as not run."""

    def close(self) -> None:
        """Stop the pool (pending tasks are cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    # ---------------------------------------------------------------- for subclasses

    def submit(self, fn: Callable[[], None]) -> None:
        """Run *fn* on a pool worker, in a copy of the caller's context."""
        with self._lock:
            self._queued += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="dagpar-slice"
                )
            pool = self._pool
        ctx = contextvars.copy_context()
        pool.submit(ctx.run, self._task, fn)

    @property
    def queued(self) -> int:
        """Tasks submitted and not yet started."""
        return self._queued

    def _task(self, fn: Callable[[], None]) -> None:
        with self._lock:
            self._queued -= 1
        fn()
        self._idle()

    def _idle(self) -> None:
        """A worker finished a task (a subclass may give it more to do)."""

    def _started(self, job: SplitJob) -> None:
        """Every planned slice of *job* is submitted."""

    def _finished(self, job: SplitJob) -> list[SliceOutcome]:
        """Every planned slice of *job* ended; more outcomes (slices cut from them)."""
        job.tails.closed = True
        return []


def _slice_job(
    future: Future[tuple[SliceResult, Any]], job: SplitJob, sp: SlicePlan, total: int
) -> None:
    """Run one planned slice and hand its outcome to the split call as soon as it ends."""
    try:
        future.set_result(job.run_slice(sp, total, job.narrowed))
    except BaseException as exc:  # run_slice does not raise; never leave the caller hanging
        future.set_exception(exc)
        raise
