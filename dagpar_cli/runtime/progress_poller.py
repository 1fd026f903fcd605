"""Live progress of running slices, read from their runners while the runners run.

A runner's results arrive when its command ends, which for a slice of a few hundred tests is
minutes of "0 done". A runner that streams its tests (``Runner.stream``) is followed test by
test: the count is the tests its stream has ended, over every run of the slice's runner (a
replacement after a crash goes on counting). Otherwise runner plugins that can tell how far a
running command has got answer ``Runner.progress``. One thread per run asks about twice a
second for every slice whose runner is running, and calls ``dagpar_slice_progress`` when a count
grows. The thread starts only when
some plugin listens (the live view does).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagpar_cli.registry import RunnerRegistry
    from dagpar_cli.runner_api import RunnerSpec
    from dagpar_cli.runtime.context import SliceContext

__all__ = ["POLL_SECONDS", "ProgressPoller"]

#: Seconds between two rounds of questions to the runners.
POLL_SECONDS = 0.5


@dataclass(slots=True)
class _Watched:
    slice: SliceContext
    spec: RunnerSpec
    done: int = 0


class ProgressPoller:
    """Asks the runner plugins how far each watched slice has got, and passes growth on.

    :param hook: the plugin manager's hook relay.
    :param runners: the run's runners (``Runner.progress``).
    """

    def __init__(self, hook: Any, runners: RunnerRegistry) -> None:
        self._hook = hook
        self._runners = runners
        self._watched: dict[int, _Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def wanted(self) -> bool:
        """Whether any plugin listens to ``dagpar_slice_progress``."""
        return bool(self._hook.dagpar_slice_progress.get_hookimpls())

    def watch(self, slice: SliceContext, spec: RunnerSpec) -> None:
        """Follow *slice* while its runner (*spec*) runs; :meth:`unwatch` stops it."""
        if not self.wanted:
            return
        with self._lock:
            if self._stop.is_set():
                return
            self._watched[id(slice)] = _Watched(slice, spec)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="dagpar-progress", daemon=True
                )
                self._thread.start()

    @contextmanager
    def following(self, slice: SliceContext, spec: RunnerSpec) -> Iterator[None]:
        """Follow *slice* while its runner (*spec*) runs, inside the ``with`` block."""
        self.watch(slice, spec)
        try:
            yield
        finally:
            self.unwatch(slice)

    def unwatch(self, slice: SliceContext) -> None:
        """Stop following *slice* (its runner ended; its results follow)."""
        with self._lock:
            self._watched.pop(id(slice), None)

    def poll(self) -> None:
        """Ask once for every watched slice (the thread's round; callable directly)."""
        with self._lock:
            watched = list(self._watched.values())
        for entry in watched:
            ctx = entry.slice
            tracker = ctx.tracker
            try:
                if tracker is not None and tracker.streaming:
                    done: int | None = tracker.poll()
                else:
                    done = self._runners.get(entry.spec.name).progress(entry.spec, ctx.report_dir)
            except Exception:  # a plugin's bug costs the live count, never the run
                done = None
            if done is None or done <= entry.done:
                continue
            entry.done = done
            self._hook.dagpar_slice_progress(check=ctx.call.name, slice=ctx.plan, done=done)

    def close(self) -> None:
        """Stop the thread (the run ended)."""
        with self._lock:
            self._stop.set()
            thread, self._thread = self._thread, None
            self._watched.clear()
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.poll()
