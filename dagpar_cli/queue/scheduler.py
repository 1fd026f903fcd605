"""The queue strategy: this node's slots pull work units of the build from Redis.

For each split call, the first node fills the queue from its plan (:mod:`.units`); every node,
that one included, then runs one *driver* per ``-j`` slot: reserve a unit, run it as a slice on
the node's own scheduler (so a running unit can still hand its unstarted tail to an idle slot of
the same node, once the queue has nothing left to give), store its results, and go again.
While a unit runs, its lease is renewed; a node that dies stops renewing, and the next node to
reserve puts its units back in the queue.

Each test is reported exactly once by the build: the first node to finish a unit stores its
results, a later one (its lease ran out meanwhile) is discarded, and this node's own result then
leaves that unit out as well.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dagpar_cli.errors import DagparError
from dagpar_cli.execution.scheduler.api import SliceOutcome, SplitJob, TailSlices
from dagpar_cli.execution.scheduler.static import StaticScheduler
from dagpar_cli.execution.scheduler.tail_stealing import TailStealingScheduler
from dagpar_cli.queue.build import QueueBuild
from dagpar_cli.queue.report import RERUN_OFFSET, failed_tests
from dagpar_cli.queue.results import dump_unit
from dagpar_cli.queue.units import Unit, listing_digest, make_units, retry_units, unit_plan

if TYPE_CHECKING:
    import pluggy

    from dagpar_cli.registry import RunnerRegistry
    from dagpar_cli.runner_api import RunnerSpec
    from dagpar_cli.runtime.context import SliceContext

__all__ = ["RETRY_SUFFIX", "QueueScheduler", "QueueTailStealing"]

#: The split call whose queue holds another's failed tests (``--retry-failed``).
RETRY_SUFFIX = "/retry"


class QueueTailStealing(TailStealingScheduler):
    """Tail stealing that waits for the queue: a slot takes a tail only when no unit is left
    to reserve (a unit costs one start-up; a tail costs one more)."""

    def __init__(
        self,
        workers: int,
        *,
        hook: pluggy.HookRelay,
        runners: RunnerRegistry,
        starved: threading.Event,
    ) -> None:
        super().__init__(workers, hook=hook, runners=runners)
        self._starved = starved

    def _started(self, job: SplitJob) -> None:
        """Slots are the drivers' to fill: none waits for tails of a one-unit job."""

    def _idle(self) -> None:
        if self._starved.is_set():
            super()._idle()


class _Numbers(TailSlices):
    """The tails of one unit, numbered from one counter for every unit of a split call; each
    number is announced (*numbered*) so that the tail's slice is known as the unit's."""

    def __init__(
        self, counter: Iterator[int], lock: threading.Lock, numbered: Callable[[int], None]
    ) -> None:
        super().__init__()
        self._counter = counter
        self._counter_lock = lock
        self._numbered = numbered

    def new_index(self) -> int:
        with self._counter_lock:
            index = next(self._counter)
        self._numbered(index)
        return index


@dataclass(eq=False, slots=True, kw_only=True)
class _Round:
    """One queue a split call's units come from on this node (the build's, or its reruns)."""

    call: str
    total: int
    narrowed: bool
    #: Added to unit numbers for slice numbers (reruns come after the first round's units).
    offset: int = 0
    outcomes: list[SliceOutcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Slice numbers for tails cut from the round's units (after its own).
    numbers: Iterator[int] = field(init=False)

    def __post_init__(self) -> None:
        self.numbers = itertools.count(self.offset + self.total + 1)


class QueueScheduler:
    """Runs the units of every split call this node reserves from the build's queue.

    :param workers: this node's slots (``-j``): one unit each at a time.
    :param build: the build's queue.
    :param inner: the node's own scheduler, which runs each reserved unit as a slice.
    :param starved: set while a driver finds the queue empty (lets *inner* steal tails).
    """

    def __init__(
        self,
        workers: int,
        build: QueueBuild,
        inner: StaticScheduler,
        starved: threading.Event,
        *,
        runner_of: Mapping[str, str] | None = None,
        poll: float | None = None,
    ) -> None:
        self.workers = max(1, workers)
        #: The runner of each toolchain instance (the report records timings by it).
        self.runner_of = runner_of if runner_of is not None else {}
        self.build = build
        self.inner = inner
        self._starved = starved
        lease = build.options.lease
        self._poll = poll if poll is not None else min(0.2, lease / 6)
        self._slots = threading.Semaphore(self.workers)
        self._lock = threading.Lock()
        self._ordinals: dict[str, int] = {}
        #: Units this node holds, per split call (their leases are renewed).
        self._held: dict[str, set[int]] = {}
        #: (split call's job, slice number) -> the job of the unit the slice belongs to.
        self._units: dict[tuple[int, int], SplitJob] = {}
        self._failure: DagparError | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        #: Whether this node ran any unit (a rejoining node that ran none keeps its old status).
        self.ran_units = 0

    # ---------------------------------------------------------------- Scheduler

    def hands_over(self, spec: RunnerSpec | None, nested: bool) -> bool:
        """As the node's own scheduler decides (inside one unit)."""
        return self.inner.hands_over(spec, nested)

    def attend(self, slice: SliceContext) -> AbstractContextManager[object]:
        """The node's own scheduler attends its slices, each as part of its unit's job.

        The orchestrator made the slice for the split call's job; hand-over must see the
        unit's (whose tails the unit collects), so the slice is moved to it here, before it
        can offer anything.
        """
        if slice.job is not None:
            with self._lock:
                sub = self._units.get((id(slice.job), slice.plan.index))
            if sub is not None:
                slice.job = sub
        return self.inner.attend(slice)

    def offering(
        self, slice: SliceContext, spec: RunnerSpec, report_dir: Path
    ) -> AbstractContextManager[object]:
        """A running unit offers its tail to the node's idle slots."""
        return self.inner.offering(slice, spec, report_dir)

    def cancel(self) -> None:
        """Reserve nothing more; the node's scheduler stops its own work."""
        self._stop.set()
        self.inner.cancel()

    def close(self) -> None:
        """Stop renewing leases, leave the build and stop the workers."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        try:
            self.build.leave()
        except DagparError:
            pass  # Redis is gone: the heartbeat runs out by itself
        self.inner.close()

    def run(self, job: SplitJob) -> list[SliceOutcome]:
        """Join the split call's queue, run the units this node reserves, return their outcomes.

        With ``--retry-failed``, once the queue is drained, the node joins a second queue
        holding the tests that failed in it, and its outcomes hold the reruns instead.

        :raises QueueError: Redis failed (after the units running here ended).
        :raises UsageError: the queue was filled from another listing.
        """
        self._raise_failure()
        if not job.plan.slices:
            return []
        call = self._call_id(job.check)
        plan = job.plan
        digest = listing_digest(job.check, plan)
        instance = job.check.partition(":")[0]
        meta = {"check": job.check, "runner": self.runner_of.get(instance, "")}
        try:
            self.build.join(
                call,
                digest,
                lambda: make_units(plan, job.predicted, slots=self.workers, startup=job.startup),
                meta,
            )
        except DagparError as exc:
            # Another checkout (or Redis gone): this node takes no more work in any split call.
            self._fail(exc)
            self._stop.set()
            raise
        self._start_renewer()
        try:
            return self._rounds(job, call, digest, meta)
        finally:
            # Slices the orchestrator runs after this (a stale listing's extra slice) keep
            # their tests: nobody would collect a tail cut from them.
            job.tails.close()

    def _rounds(
        self, job: SplitJob, call: str, digest: str, meta: dict[str, str]
    ) -> list[SliceOutcome]:
        """The queue's round, and with ``--retry-failed`` the reruns' round after it."""
        first = _Round(call=call, total=self.build.total(call), narrowed=job.narrowed)
        self._drive(job, first)
        if not self.build.options.retry_failed:
            return sorted(first.outcomes, key=lambda o: o[0].index)
        state = self.build.state(call)
        again = call + RETRY_SUFFIX
        self.build.join(
            again,
            digest,
            lambda: retry_units(
                state.units, failed_tests(state), slots=self.workers, startup=job.startup
            ),
            {**meta, "retry_of": call},
        )
        # Rerun slices are numbered after the first round's units and any tails cut from them.
        offset = RERUN_OFFSET
        retry = _Round(call=again, total=self.build.total(again), narrowed=True, offset=offset)
        self._drive(job, retry)
        return _rerun_over(first.outcomes, retry.outcomes)

    def _drive(self, job: SplitJob, round: _Round) -> None:
        """Run *round*'s units on this node's slots until its queue is done."""

        def drive() -> None:
            waiting = False
            try:
                while not self._stop.is_set() and self._failure is None:
                    got = self._one_unit(job, round)
                    if got is None:
                        return
                    if not got and not waiting:
                        # This slot has nothing to reserve: it may take a running unit's tail.
                        self.inner.submit(_look_for_tails)
                    waiting = not got
            except DagparError as exc:
                self._fail(exc)

        drivers = [
            threading.Thread(target=job.context.copy().run, args=(drive,), daemon=True)
            for _ in range(self.workers)
        ]
        for t in drivers:
            t.start()
        for t in drivers:
            t.join()
        self._raise_failure()

    # ---------------------------------------------------------------- drivers

    def _one_unit(self, job: SplitJob, round: _Round) -> bool | None:
        """Reserve and run one unit: True when it ran one, False when there was none to take
        (yet), None when the split call's queue is done."""
        with self._slots:
            got = self.build.reserve(round.call)
            if got.unit is not None:
                self._starved.clear()
                self._run_unit(job, round, got.unit)
                return True
        self._starved.set()
        if got.done >= round.total:
            return None
        # Units are running elsewhere: wait, in case a lease runs out and one comes back.
        self._stop.wait(self._poll)
        return False

    def _run_unit(self, job: SplitJob, round: _Round, unit: Unit) -> None:
        sp = unit_plan(unit, job.startup, index=round.offset + unit.number)
        everything = round.offset + round.total
        sub = dataclasses.replace(
            job,
            plan=dataclasses.replace(job.plan, slices=(sp,)),
            # A tail cut from the unit runs narrowed to its tests whatever the round says.
            run_slice=lambda s, _total, narrowed: job.run_slice(
                s, everything, narrowed or round.narrowed
            ),
            narrowed=round.narrowed,
            tails=_Numbers(round.numbers, round.lock, lambda n: self._belongs(job, n, sub)),
        )
        self._belongs(job, sp.index, sub)
        with self._lock:
            self._held.setdefault(round.call, set()).add(unit.number)
        start = time.monotonic()
        try:
            ran = self.inner.run(sub)
        finally:
            with self._lock:
                self._held[round.call].discard(unit.number)
                for key in [k for k, v in self._units.items() if v is sub]:
                    del self._units[key]
        results = [r for _, result, _ in ran for r in result.results]
        payload = dump_unit(self.build.options.worker, time.monotonic() - start, results)
        if self._stop.is_set() and not self._failure and _cancelled(ran):
            # Interrupted here: another node runs the unit (and this one reports none of it).
            self.build.release(round.call, unit.number)
            return
        if self.build.complete(round.call, unit.number, payload):
            with round.lock:
                round.outcomes.extend(ran)
            with self._lock:
                self.ran_units += 1

    def _belongs(self, job: SplitJob, index: int, sub: SplitJob) -> None:
        with self._lock:
            self._units[(id(job), index)] = sub

    # ---------------------------------------------------------------- leases

    def start(self) -> None:
        """Say this node is in the build (a heartbeat the report waits on) and keep its leases
        renewed until :meth:`close`."""
        self.build.heartbeat()
        self._start_renewer()

    def _start_renewer(self) -> None:
        with self._lock:
            if self._renewer is not None:
                return
            self._renewer = threading.Thread(
                target=self._renew_loop, name="dagpar-queue-lease", daemon=True
            )
            self._renewer.start()

    def _renew_loop(self) -> None:
        every = self.build.options.lease / 3
        while not self._stop.wait(every):
            with self._lock:
                held = {call: sorted(units) for call, units in self._held.items() if units}
            try:
                self.build.heartbeat()
                for call, units in held.items():
                    self.build.renew(call, units)
            except DagparError as exc:
                self._fail(exc)
                return

    # ---------------------------------------------------------------- bookkeeping

    def _call_id(self, check: str) -> str:
        """``CHECK#N``: the N-th split call of *check* (the same on every node)."""
        with self._lock:
            n = self._ordinals[check] = self._ordinals.get(check, 0) + 1
        return f"{check}#{n}"

    def _fail(self, exc: DagparError) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = exc

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure


def _rerun_over(first: list[SliceOutcome], reruns: list[SliceOutcome]) -> list[SliceOutcome]:
    """This node's outcomes with the tests it reran dropped from its first-round slices."""
    again = {r.id for _, result, _ in reruns for r in result.results}
    kept: list[SliceOutcome] = []
    for sp, result, value in first:
        if any(r.id in again for r in result.results):
            left = tuple(r for r in result.results if r.id not in again)
            result = dataclasses.replace(result, results=left, error="" if left else result.error)
        kept.append((sp, result, value))
    return sorted(kept + reruns, key=lambda o: o[0].index)


def _look_for_tails() -> None:
    """A pool task that does nothing: its worker then looks for tails (``_idle``)."""


def _cancelled(ran: list[SliceOutcome]) -> bool:
    return any(
        result.error.startswith("not run:") or result.error == "interrupted" for _, result, _ in ran
    )
