"""The tail-stealing strategy: idle workers take over the unstarted tests of running slices.

A static plan ends when its slowest slice ends; with new tests and drifting durations that slice
is often far behind the others. When the runner can stop at a test boundary (its
``hand_over_tail``) and the slice's report directory is shared live with it, a worker that has no
slice left to start takes the back part of the running slice with the most predicted work left
and runs it as a new slice of the same split call. The rule for how much to take is
:func:`dagpar_cli.planning.tail_rule.tail_to_take`; it counts the predicted rest of the test the
slice is running, which the runner plugin names with the seconds it has run.

A slice opens an :class:`Offer` while its runner command runs
(:meth:`TailStealingScheduler.offering`, entered by :func:`dagpar_cli.sdk.runner.run_tests`);
one idle worker at a time looks for a tail to take. An offer is closed, under its own lock, as
soon as its runner command ends; a tail is taken only under that lock, so the orchestrator knows
for certain which tests a finished slice gave up.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dagpar_cli.errors import ExecutionError
from dagpar_cli.execution.scheduler.api import SliceOutcome, SplitJob
from dagpar_cli.execution.scheduler.static import StaticScheduler
from dagpar_cli.model import Item, SlicePlan, TestCase
from dagpar_cli.planning.tail_rule import MIN_STARTUPS, running_rest, tail_to_take
from dagpar_cli.runner_api import RunnerSpec

if TYPE_CHECKING:
    import pluggy

    from dagpar_cli.registry import RunnerRegistry
    from dagpar_cli.runtime.context import SliceContext

__all__ = ["Offer", "Tail", "TailStealingScheduler"]

#: Seconds between two looks at running slices while none has a tail worth taking.
POLL_SECONDS = 0.25
#: A slice whose started tests took more than this many times their predictions is behind:
#: its pending tests are weighed at its own pace (see :meth:`Offer.pace`).
BEHIND = 1.5


@dataclass(eq=False, slots=True, kw_only=True)
class Offer:
    """A running slice whose runner may hand over the tests it has not started."""

    #: The split call the slice belongs to.
    job: SplitJob
    #: The running slice.
    ctx: SliceContext
    spec: RunnerSpec
    report_dir: Path
    #: ``time.monotonic()`` when the runner command started.
    started: float
    #: Set, under :attr:`lock`, when the runner command ended: nothing more can be taken.
    closed: bool = False
    #: Nothing worth taking is left, for good (every pending test has a recorded prediction,
    #: and the pending work only shrinks).
    settled: bool = False
    #: The runner cannot hand over in this run (it answered None).
    refused: bool = False
    #: Predicted seconds by source-relative test, as looked up so far (None: no prediction).
    _memo: dict[TestCase, float | None] = field(default_factory=dict)
    #: The recorded predictions of the slice's tests, added up once (see :meth:`pace`).
    _planned: float | None = None
    #: Recorded predictions of the tests given away so far (not scaled by :meth:`pace`).
    given: float = 0.0
    #: Prefix sums over the pending tests as first seen, so that each look at a slice costs
    #: O(1), not a pass over its pending tests: ``(started then, those tests, running sums of
    #: their recorded predictions, running counts of tests without one)``.
    _prefix: tuple[int, list[TestCase], list[float], list[int]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def predicted(self) -> dict[str, float]:
        """Predicted seconds per workspace-relative test id (empty: no history)."""
        return self.job.predicted

    @property
    def startup(self) -> float:
        """Predicted start-up seconds of a slice of this runner."""
        return self.job.startup

    def seconds(self, pending: Sequence[TestCase], started: int) -> tuple[list[float], bool]:
        """Predicted seconds of each pending test (source-relative), and whether all are known.

        A test without a prediction (a first run, with no history) is given the slice's own
        pace so far: seconds since its start-up per test started; none before any started.
        When every test is predicted but the slice runs well behind its predictions, each is
        scaled by how far behind (:meth:`pace`).
        """
        out: list[float] = []
        known = True
        pace: float | None = None
        for test in pending:
            seconds = self._prediction(test)
            if seconds is None:
                known = False
                if pace is None:
                    running = time.monotonic() - self.started - self.startup
                    pace = max(running, 0.0) / started if started else 0.0
                seconds = pace
            out.append(seconds)
        if known and started:
            scale = self.pace(math.fsum(out))
            if scale > 1.0:
                return [seconds * scale for seconds in out], known
        return out, known

    def total(self, pending: Sequence[TestCase], started: int) -> tuple[float, bool]:
        """``sum(seconds(pending, started)[0])`` and whether all are known, in O(1) per look.

        The runner passes its pending tests as a window of one order that only narrows
        (``started`` grows, hand-over cuts the end): sums over the window first seen answer
        every later look. A window that does not line up with it is summed afresh.
        """
        prefix = self._prefix
        if prefix is not None:
            base, tests, sums, unknown = prefix
            lo = started - base
            hi = lo + len(pending)
            if 0 <= lo <= hi <= len(tests) and (
                not pending or (tests[lo] == pending[0] and tests[hi - 1] == pending[-1])
            ):
                return self._scaled(sums[hi] - sums[lo], unknown[hi] - unknown[lo], started)
        sums, unknown = [0.0], [0]
        for test in pending:
            seconds = self._prediction(test)
            sums.append(sums[-1] + (seconds or 0.0))
            unknown.append(unknown[-1] + (seconds is None))
        self._prefix = (started, list(pending), sums, unknown)
        return self._scaled(sums[-1], unknown[-1], started)

    def _scaled(self, recorded: float, unknown: int, started: int) -> tuple[float, bool]:
        """What :meth:`seconds` adds up to, from its recorded part and its unknown count."""
        if unknown:
            running = time.monotonic() - self.started - self.startup
            pace = max(running, 0.0) / started if started else 0.0
            return recorded + unknown * pace, False
        if started:
            return recorded * max(self.pace(recorded), 1.0), True
        return recorded, True

    def pace(self, pending: float) -> float:
        """How many times longer than predicted the slice's started tests take (1.0: on time).

        :param pending: the recorded predictions of the tests it has not started.
        :returns: the seconds it has run past its start-up over the predicted seconds of what
            it started (all it was planned, less *pending* and what it gave away), when that is
            above :data:`BEHIND` and what it started was predicted at least one start-up; else
            1.0. Predictions that leave out a runner's own work per
            test (reporting, bookkeeping) make a slice of many short tests run far behind: its
            tail is then worth taking after all.
        """
        if self._planned is None:
            tests = self.ctx.plan.tests
            self._planned = math.fsum(self.predicted.get(t.id, 0.0) for t in tests)
        done = self._planned - pending - self.given
        running = time.monotonic() - self.started - self.startup
        # Until the started tests were predicted at least one start-up, a start-up longer than
        # predicted would pass for a slow pace.
        if done < self.startup or done <= 0.0 or running <= BEHIND * done:
            return 1.0
        return running / done

    def remaining(self, running: tuple[TestCase, float] | None) -> float:
        """Predicted seconds until the test the slice is running ends.

        :param running: that test (source-relative) and the seconds it has run, as the runner
            plugin reported them; None between tests.
        :returns: :func:`~dagpar_cli.planning.tail_rule.running_rest` of its prediction; 0
            between tests.
        """
        if running is None:
            return 0.0
        test, seconds = running
        return running_rest(self._prediction(test), seconds)

    def _prediction(self, test: TestCase) -> float | None:
        """The recorded prediction of a source-relative *test*, or None."""
        # Each look goes over every pending test; the memo keeps it to one lookup each.
        memo = self._memo
        if test in memo:
            return memo[test]
        seconds = self.predicted.get(test.under(self.spec.source).id)
        memo[test] = seconds
        return seconds


@dataclass(frozen=True, slots=True)
class Tail:
    """Tests an idle worker took from a running slice."""

    offer: Offer
    #: Workspace-relative.
    tests: tuple[TestCase, ...]
    #: As the runner named them: ``(path relative to the toolchain's source, name)``.
    selectors: tuple[tuple[str, str], ...]
    #: Their predicted seconds, in order.
    seconds: tuple[float, ...]


class TailStealingScheduler(StaticScheduler):
    """Runs planned slices like :class:`StaticScheduler`; a worker with no slice left to start
    takes the unstarted tail of a running slice instead of sitting idle.

    :param workers: how many slices run at once.
    :param hook: the plugin manager's hook relay (``dagpar_slice_handed_over``).
    :param runners: the run's runners (``Runner.can_hand_over``, ``Runner.hand_over_tail``).
    """

    def __init__(self, workers: int, *, hook: pluggy.HookRelay, runners: RunnerRegistry) -> None:
        super().__init__(workers)
        self._hook = hook
        self._runners = runners
        self._offers: list[Offer] = []
        self._offers_lock = threading.Lock()
        #: One idle worker looks at a time; the others wait for it.
        self._scout = threading.Lock()
        #: Set whenever an offer opens, so a waiting scout looks again at once.
        self._changed = threading.Event()
        #: Slices that will offer once their runner command starts (by ``id`` of the context).
        self._coming: set[int] = set()
        #: Per split call that hands over (by ``id``), its planned slices that have not yet
        #: reached :meth:`attend`: a worker starts a slice well before that (set-up, hooks).
        self._unstarted: dict[int, set[int]] = {}
        #: Set when the run is cancelled: idle workers stop looking.
        self.stopped = threading.Event()

    def hands_over(self, spec: RunnerSpec | None, nested: bool) -> bool:
        """Where the runner can stop at a test boundary and ``[file, test]`` selectors can name
        the tests it gives up."""
        if spec is None or not nested:
            return False
        try:
            runner = self._runners.get(spec.name)
        except ExecutionError:
            return False  # listing it fails the split call, with the installed runners' names
        return runner.can_hand_over(spec)

    # ---------------------------------------------------------------- the split call's side

    def run(self, job: SplitJob) -> list[SliceOutcome]:
        """Run *job* like :meth:`StaticScheduler.run`, idle workers taking tails meanwhile."""
        if job.hands_over:
            # Until each planned slice says whether it will offer, "no offer yet" is not "none":
            # a worker left without a slice must keep looking, not leave.
            with self._offers_lock:
                self._unstarted[id(job)] = {sp.index for sp in job.plan.slices}
        try:
            return super().run(job)
        finally:
            with self._offers_lock:
                self._unstarted.pop(id(job), None)
            self._changed.set()

    def _started(self, job: SplitJob) -> None:
        if job.hands_over:
            # Workers the plan leaves without a slice wait for tails to take from the start.
            for _ in range(self.workers - len(job.plan.slices)):
                self.submit(_look_for_tails)

    def _finished(self, job: SplitJob) -> list[SliceOutcome]:
        return job.tails.close()

    @contextmanager
    def attend(self, slice: SliceContext) -> Iterator[object]:
        """While a slice that may offer runs, idle workers keep looking until it has offered."""
        job = slice.job
        expected = job is not None and job.hands_over and not job.tails.closed
        with self._offers_lock:
            if expected:
                self._coming.add(id(slice))
            if job is not None:
                unstarted = self._unstarted.get(id(job))
                if unstarted is not None:
                    unstarted.discard(slice.plan.index)
        try:
            yield None
        finally:
            with self._offers_lock:
                self._coming.discard(id(slice))
            self._changed.set()  # a waiting scout sees whether anything is left to look at

    @contextmanager
    def offering(self, slice: SliceContext, spec: RunnerSpec, report_dir: Path) -> Iterator[object]:
        """Let idle workers take tests from *slice* while its runner command runs.

        A no-op unless the slice's split call hands tails over and has not yet collected its
        slices (a rerun slice gives nothing away).
        """
        job = slice.job
        if job is None or not job.hands_over or job.tails.closed:
            yield None
            return
        offer = Offer(
            job=job, ctx=slice, spec=spec, report_dir=report_dir, started=time.monotonic()
        )
        with self._offers_lock:
            self._offers.append(offer)
            self._coming.discard(id(slice))
        self._changed.set()
        try:
            yield offer
        finally:
            with offer.lock:
                offer.closed = True
            with self._offers_lock:
                self._offers.remove(offer)
            # Wake a waiting scout: with this offer gone there may be nothing left to look at,
            # and the run's end must not wait out a poll interval for it to notice.
            self._changed.set()

    def cancel(self) -> None:
        """Idle workers stop looking for tails."""
        self.stopped.set()
        self._changed.set()

    # ---------------------------------------------------------------- the idle worker's side

    def _idle(self) -> None:
        """While no slice waits to start, take tails of running slices."""
        while not self.stopped.is_set() and self.queued == 0 and self.busy():
            tail = self.find()
            if tail is not None:
                self._run_tail(tail)

    def _run_tail(self, tail: Tail) -> None:
        """Run the tests *tail* took from a running slice as a new slice of the same split."""
        victim = tail.offer.ctx
        job = tail.offer.job
        try:
            index = job.tails.new_index()
            pairs = zip(tail.selectors, tail.tests, strict=True)
            items = tuple(Item((path, name), t.path) for (path, name), t in pairs)
            sp = SlicePlan(
                index=index,
                items=items,
                predicted_seconds=job.startup + sum(tail.seconds),
                tests=tail.tests,
            )
            self._hook.dagpar_slice_handed_over(
                check=job.check, slice=victim.plan, tests=list(tail.tests), to=sp
            )
            result, value = job.context.copy().run(job.run_slice, sp, index, True)
            job.tails.add((sp, result, value))
        finally:
            job.tails.release()

    def busy(self) -> bool:
        """Whether some running slice may still hand tests over."""
        with self._offers_lock:
            return (
                bool(self._coming)
                or any(self._unstarted.values())
                or any(not o.settled and not o.refused for o in self._offers)
            )

    def find(self) -> Tail | None:
        """Take the tail worth most from the running slices, or return None (look again later).

        Only one caller looks at a time; others wait for it (at most :data:`POLL_SECONDS`) and
        return None. Having found nothing, it waits until an offer opens or closes, a slice
        that would offer ends, or :data:`POLL_SECONDS` passed. The split call of the chosen
        slice is told, under that slice's lock, before the runner is asked to give tests up (it
        must then wait for the new slice).
        """
        if not self._scout.acquire(timeout=POLL_SECONDS):
            return None
        try:
            self._changed.clear()
            # Cleared first, checked next: a change from now on ends the wait below at once.
            if self.stopped.is_set() or not self.busy():
                return None
            best: tuple[float, Offer] | None = None
            with self._offers_lock:
                offers = [o for o in self._offers if not o.settled and not o.refused]
            for offer in offers:
                work = self._peek(offer)
                if work is not None and (best is None or work > best[0]):
                    best = (work, offer)
            if best is not None:
                tail = self._take(best[1])
                if tail is not None:
                    return tail
            # Nothing to take now: wait for a new offer or for the running ones to move on.
            self._changed.wait(POLL_SECONDS)
            return None
        finally:
            self._scout.release()

    def _peek(self, offer: Offer) -> float | None:
        """The predicted seconds of *offer*'s pending tests, or None when there is no use asking."""
        seen: list[float] = []

        def look(
            pending: Sequence[TestCase],
            started: int,
            running: tuple[TestCase, float] | None = None,
        ) -> int:
            total, known = offer.total(pending, started)
            seen.append(total)
            if known and total <= MIN_STARTUPS * offer.startup:
                offer.settled = True  # pending work only shrinks: it will never be worth it
            return 0

        with offer.lock:
            if offer.closed or not offer.ctx.shares_mounts:
                return None
            answer = self._runners.get(offer.spec.name).hand_over_tail(
                offer.spec, offer.report_dir, look
            )
        if answer is None:
            offer.refused = True
            return None
        return seen[0] if seen and not offer.settled else None

    def _take(self, offer: Offer) -> Tail | None:
        taken: list[float] = []
        recorded: list[float] = []

        def cut(
            pending: Sequence[TestCase],
            started: int,
            running: tuple[TestCase, float] | None = None,
        ) -> int:
            seconds, _ = offer.seconds(pending, started)
            k = tail_to_take(seconds, offer.startup, offer.remaining(running))
            taken.extend(seconds[len(seconds) - k :] if k else ())
            tail = pending[len(pending) - k :] if k else ()
            recorded.append(math.fsum(offer._prediction(t) or 0.0 for t in tail))
            return k

        with offer.lock:
            if offer.closed:
                return None
            offer.job.tails.reserve()
            answer = self._runners.get(offer.spec.name).hand_over_tail(
                offer.spec, offer.report_dir, cut
            )
            if not answer:
                offer.job.tails.release()
                return None
            prefix = offer.spec.source
            tests = tuple(t.under(prefix) for t in answer)
            # Under the offer's lock: the slice reads what it gave up only after closing it.
            offer.ctx.handed.extend(tests)
            offer.ctx.handed_seconds += sum(taken)
            offer.given += sum(recorded)
        if len(taken) != len(tests):
            taken = [0.0] * len(tests)  # a plugin that took other than asked: no prediction
        return Tail(
            offer=offer,
            tests=tests,
            selectors=tuple((t.path, t.name) for t in answer),
            seconds=tuple(taken),
        )


def _look_for_tails() -> None:
    """A pool task that only makes its worker look for tails to take."""
