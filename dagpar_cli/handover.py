"""Idle workers taking over the unstarted tests of running slices (the engine's side).

A static plan ends when its slowest slice ends; with new tests and drifting durations that slice
is often far behind the others. When the runner can stop at a test boundary
(``dagpar_runner_hand_over``) and the slice's report directory is shared live with it, a worker
that has no slice left to start takes the back part of the running slice with the most predicted
work left and runs it as a new slice. The rule for how much to take is
:func:`dagpar_cli.planning.handover.tail_to_take`; it counts the predicted rest of the test the
slice is running, which the runner plugin names with the seconds it has run.

:class:`HandOver` keeps the running slices that may give tests up (:meth:`HandOver.offering`,
entered by :func:`dagpar_cli.runners.run_tests` while the runner command runs) and lets one idle
worker at a time look for a tail to take (:meth:`HandOver.find`). An offer is closed, under its
own lock, as soon as its runner command ends; a tail is taken only under that lock, so the
engine knows for certain which tests a finished slice gave up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagpar_cli.model import RunnerSpec, TestCase, join_path
from dagpar_cli.planning.handover import MIN_STARTUPS, running_rest, tail_to_take

if TYPE_CHECKING:
    from dagpar_cli.registry import RunnerRegistry

__all__ = ["HandOver", "Offer", "Tail"]

#: Seconds between two looks at running slices while none has a tail worth taking.
POLL_SECONDS = 0.25


@dataclass(eq=False, slots=True, kw_only=True)
class Offer:
    """A running slice whose runner may hand over the tests it has not started."""

    #: The split call the slice belongs to (the engine's ``_SplitCall``).
    split: Any
    #: The slice's :class:`~dagpar_cli.engine.SliceContext`.
    ctx: Any
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
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def predicted(self) -> dict[str, float]:
        """Predicted seconds per workspace-relative test id (empty: no history)."""
        predicted: dict[str, float] = self.split.predicted
        return predicted

    @property
    def startup(self) -> float:
        """Predicted start-up seconds of a slice of this runner."""
        return float(self.split.startup)

    def seconds(self, pending: Sequence[TestCase], started: int) -> tuple[list[float], bool]:
        """Predicted seconds of each pending test (source-relative), and whether all are known.

        A test without a prediction (a first run, with no history) is given the slice's own
        pace so far: seconds since its start-up per test started; none before any started.
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
        return out, known

    def remaining(self, running: tuple[TestCase, float] | None) -> float:
        """Predicted seconds until the test the slice is running ends.

        :param running: that test (source-relative) and the seconds it has run, as the runner
            plugin reported them; None between tests.
        :returns: :func:`~dagpar_cli.planning.handover.running_rest` of its prediction; 0
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
        seconds = self.predicted.get(f"{join_path(self.spec.source, test.path)}::{test.name}")
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


class HandOver:
    """The running slices that may hand tests over, and the search for a tail to take.

    :param runners: the run's runners (``Runner.hand_over_tail``).
    """

    def __init__(self, runners: RunnerRegistry) -> None:
        self._runners = runners
        self._offers: list[Offer] = []
        self._lock = threading.Lock()
        #: One idle worker looks at a time; the others wait for it.
        self._scout = threading.Lock()
        #: Set whenever an offer opens, so a waiting scout looks again at once.
        self._changed = threading.Event()
        #: Slices that will offer once their runner command starts (by ``id`` of the context).
        self._coming: set[int] = set()

    def expect(self, ctx: Any) -> None:
        """A slice that may offer has started: idle workers keep looking until it has."""
        with self._lock:
            self._coming.add(id(ctx))

    def withdraw(self, ctx: Any) -> None:
        """The slice *ctx* has ended (whether or not it offered)."""
        with self._lock:
            self._coming.discard(id(ctx))

    @contextmanager
    def offering(
        self,
        *,
        split: Any,
        ctx: Any,
        spec: RunnerSpec,
        report_dir: Path,
    ) -> Iterator[Offer]:
        """Let idle workers take tests from this slice while its runner command runs."""
        offer = Offer(
            split=split,
            ctx=ctx,
            spec=spec,
            report_dir=report_dir,
            started=time.monotonic(),
        )
        with self._lock:
            self._offers.append(offer)
            self._coming.discard(id(ctx))
        self._changed.set()
        try:
            yield offer
        finally:
            with offer.lock:
                offer.closed = True
            with self._lock:
                self._offers.remove(offer)

    def busy(self) -> bool:
        """Whether some running slice may still hand tests over."""
        with self._lock:
            return bool(self._coming) or any(not o.settled and not o.refused for o in self._offers)

    def find(
        self, reserve: Callable[[Offer], None], release: Callable[[Offer], None]
    ) -> Tail | None:
        """Take the tail worth most from the running slices, or return None (look again later).

        Only one caller looks at a time; others wait for it (at most :data:`POLL_SECONDS`) and
        return None. *reserve* is called, under the chosen slice's lock, before the runner is
        asked to give tests up (the split call must then wait for the new slice); *release* if
        it gave none.
        """
        if not self._scout.acquire(timeout=POLL_SECONDS):
            return None
        try:
            self._changed.clear()
            best: tuple[float, Offer] | None = None
            with self._lock:
                offers = [o for o in self._offers if not o.settled and not o.refused]
            for offer in offers:
                work = self._peek(offer)
                if work is not None and (best is None or work > best[0]):
                    best = (work, offer)
            if best is not None:
                tail = self._take(best[1], reserve, release)
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
            seconds, known = offer.seconds(pending, started)
            total = sum(seconds)
            seen.append(total)
            if known and total <= MIN_STARTUPS * offer.startup:
                offer.settled = True  # pending work only shrinks: it will never be worth it
            return 0

        with offer.lock:
            if offer.closed or not getattr(offer.ctx, "shares_mounts", False):
                return None
            answer = self._runners.get(offer.spec.name).hand_over_tail(
                offer.spec, offer.report_dir, look
            )
        if answer is None:
            offer.refused = True
            return None
        return seen[0] if seen and not offer.settled else None

    def _take(
        self, offer: Offer, reserve: Callable[[Offer], None], release: Callable[[Offer], None]
    ) -> Tail | None:
        taken: list[float] = []

        def cut(
            pending: Sequence[TestCase],
            started: int,
            running: tuple[TestCase, float] | None = None,
        ) -> int:
            seconds, _ = offer.seconds(pending, started)
            k = tail_to_take(seconds, offer.startup, offer.remaining(running))
            taken.extend(seconds[len(seconds) - k :] if k else ())
            return k

        with offer.lock:
            if offer.closed:
                return None
            reserve(offer)
            answer = self._runners.get(offer.spec.name).hand_over_tail(
                offer.spec, offer.report_dir, cut
            )
            if not answer:
                release(offer)
                return None
            prefix = offer.spec.source
            tests = tuple(TestCase(join_path(prefix, t.path), t.name) for t in answer)
            # Under the offer's lock: the slice reads what it gave up only after closing it.
            offer.ctx.handed.extend(tests)
            offer.ctx.handed_seconds += sum(taken)
        if len(taken) != len(tests):
            taken = [0.0] * len(tests)  # a plugin that took other than asked: no prediction
        return Tail(
            offer=offer,
            tests=tests,
            selectors=tuple((t.path, t.name) for t in answer),
            seconds=tuple(taken),
        )
