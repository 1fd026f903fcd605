"""What a slice's runner said about each test while it ran: its per-test event streams, read.

:class:`StreamTracker` holds the streams (:meth:`Runner.stream
<dagpar_cli.runner_api.Runner.stream>`) of every run of a slice's runner (the first, and each
replacement after a crash) and folds their events into which tests started and which ended, with
what result. The live-progress thread and the slice's own thread both poll it; a lock keeps them
one at a time, as :class:`~dagpar_cli.runner_api.TestStream` asks. A stream that raises is
dropped: a plugin's bug costs the stream, never the run.
"""

from __future__ import annotations

import threading

from dagpar_cli.model import TestCase, TestResult
from dagpar_cli.runner_api import TestStream

__all__ = ["StreamTracker"]


class StreamTracker:
    """The per-test state of one slice, from the streams of its runner's runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stream: TestStream | None = None
        #: Test id -> (test, wall-clock start) for tests started in the current run, not ended.
        self._running: dict[str, tuple[TestCase, float]] = {}
        #: Test id -> result, for tests that ended in the current run.
        self._ended: dict[str, TestResult] = {}
        #: Tests that ended in any run of the slice (the live count).
        self._done = 0
        #: Ids of tests the current run started (ended or not).
        self._started: set[str] = set()

    @property
    def streaming(self) -> bool:
        """Whether the current run has a stream."""
        return self._stream is not None

    def open(self, stream: TestStream | None) -> None:
        """Follow *stream*, the stream of a new run of the runner (None: it has none)."""
        with self._lock:
            self._stream = stream
            self._running = {}
            self._ended = {}
            self._started = set()

    def poll(self) -> int:
        """Read what the current run's stream has new; the count of tests ended in any run."""
        with self._lock:
            stream = self._stream
            if stream is None:
                return self._done
            try:
                events = stream.poll()
            except Exception:  # a plugin's bug costs the stream, never the run
                self._stream = None
                return self._done
            for event in events:
                key = event.test.id
                if event.kind == "start":
                    self._started.add(key)
                    if key not in self._ended:
                        self._running[key] = (event.test, event.at)
                elif event.result is not None:
                    self._started.add(key)
                    begun = self._running.pop(key, None)
                    result = event.result
                    if result.start is None and begun is not None:
                        result = result.replaced(start=begun[1])
                    if key not in self._ended:
                        self._done += 1
                    self._ended[key] = result
            return self._done

    def ended(self) -> dict[str, TestResult]:
        """The current run's ended tests: id -> result, in the order they ended."""
        with self._lock:
            return dict(self._ended)

    def running(self) -> list[tuple[TestCase, float]]:
        """The current run's tests that started and did not end, with their starts."""
        with self._lock:
            return list(self._running.values())

    def started(self) -> set[str]:
        """Ids of the tests the current run started."""
        with self._lock:
            return set(self._started)
