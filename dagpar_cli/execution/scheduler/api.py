"""The scheduler contract: how a split call's planned slices get onto the worker pool.

A planner decides *what* each slice holds; a :class:`Scheduler` decides *when and where* the
slices run, once per run, for every split call of every check. dagpar has two strategies:

- :class:`~dagpar_cli.execution.scheduler.static.StaticScheduler` runs each planned slice as
  planned, in the plan's order, as workers come free;
- :class:`~dagpar_cli.execution.scheduler.tail_stealing.TailStealingScheduler` does the same and
  lets a worker with nothing left to start take the unstarted tail of a running slice.

The ``dagpar_make_scheduler`` hook chooses one (a plugin may answer with its own).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from dagpar_cli.model import Plan, SlicePlan, SliceResult
    from dagpar_cli.runner_api import RunnerSpec
    from dagpar_cli.runtime.context import SliceContext

__all__ = ["RunSlice", "Scheduler", "SliceOutcome", "SplitJob", "TailSlices"]

#: What running one slice gives: its plan, its result and the function's return value (not
#: an executor's command :class:`~dagpar_cli.execution.api.Outcome`).
SliceOutcome = tuple["SlicePlan", "SliceResult", Any]

#: Runs one slice of a split call: ``(slice, total, narrowed) -> (result, value)``; never raises.
RunSlice = Callable[["SlicePlan", int, bool], tuple["SliceResult", Any]]


class TailSlices:
    """The slices idle workers cut from one split call's running slices."""

    def __init__(self, first_index: int = 0) -> None:
        self._cond = threading.Condition()
        self._running = 0
        #: Set once the split call has collected its slices: later slices (reruns) do not offer.
        self.closed = False
        self._next_index = first_index
        self._done: list[SliceOutcome] = []

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
            self._next_index += 1
            return self._next_index

    def add(self, outcome: SliceOutcome) -> None:
        """Keep a tail slice's outcome."""
        with self._cond:
            self._done.append(outcome)

    def close(self) -> list[SliceOutcome]:
        """Wait until no tail slice runs, close, and return their outcomes by slice number."""
        with self._cond:
            while self._running:
                self._cond.wait()
            self.closed = True
            return sorted(self._done, key=lambda d: d[0].index)


@dataclass(frozen=True, slots=True, kw_only=True)
class SplitJob:
    """One split call, as its scheduler sees it."""

    #: The check it belongs to (``instance:function``).
    check: str
    plan: Plan
    run_slice: RunSlice
    #: Whether the filter narrowed whole items to some of their tests.
    narrowed: bool = False
    #: Whether its running slices may hand unstarted tests to idle workers.
    hands_over: bool = False
    #: Predicted seconds per workspace-relative test id (empty: no history).
    predicted: dict[str, float] = field(default_factory=dict)
    #: Predicted start-up seconds of one slice.
    startup: float = 0.0
    #: The context the split call runs in, for slices started from other threads.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    tails: TailSlices = field(default_factory=TailSlices)


class Scheduler(Protocol):
    """Runs the slices of every split call of a run on a pool of workers."""

    #: How many slices run at once.
    workers: int

    def hands_over(self, spec: RunnerSpec | None, nested: bool) -> bool:
        """Whether slices of a split call may give unstarted tests to idle workers.

        :param spec: the split type's runner, or None for a toolchain without one.
        :param nested: whether the ``+parallel`` field holds ``[file, test]`` selectors, which
            can name the tests handed over.
        """

    def run(self, job: SplitJob) -> list[SliceOutcome]:
        """Run every slice of *job*'s plan, and any cut from them; wait for all of them.

        :returns: every slice's outcome, by slice number.
        """

    def attend(self, slice: SliceContext) -> AbstractContextManager[object]:
        """Entered while *slice* runs its function (from start to end)."""

    def offering(
        self, slice: SliceContext, spec: RunnerSpec, report_dir: Path
    ) -> AbstractContextManager[object]:
        """Entered while *slice*'s runner command runs: idle workers may take its tail."""

    def cancel(self) -> None:
        """The run was cancelled (interrupt, ``--failfast``): start no more work of its own."""

    def close(self) -> None:
        """Stop the workers (pending slices are cancelled)."""
