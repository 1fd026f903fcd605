"""Live progress on standard error while slices run.

Two forms, chosen once per run from standard error:

- **a terminal**: a view redrawn in place about five times a second, one line per running slice
  (check, slice i/N, tests done/total, elapsed against predicted) under an overall bar; a line
  for each finished slice is printed above the view and stays in the scrollback. The view is
  erased when the run ends, before the summary.
- **anything else** (a CI log, a file, ``TERM=dumb``): plain timestamped lines, one when a slice
  starts and one when it ends::

      [00:00.4] backend:test slice 2/4 started: 3 items, 13 tests, predicted 3.0s
      [00:03.6] backend:test slice 2/4 done: 12 passed, 1 failed in 3.2s (predicted 3.0s)

Colour follows the terminal and ``NO_COLOR``. With ``--json`` the view still goes to standard
error (standard output carries the JSON); a dry run shows nothing. The slice hooks are called
from the slices' worker threads, so every piece of state is guarded by one lock.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from dagpar_cli.model import SlicePlan, SliceResult, Status, TestCase, TestResult
from dagpar_cli.plugin import hookimpl
from dagpar_cli.reporting._text import clean_text

if TYPE_CHECKING:
    from dagpar_cli.model import RunResult
    from dagpar_cli.run_context import RunContext

__all__ = ["PLUGIN_NAME", "ProgressView", "dagpar_configure", "wants_live_view"]

#: The name the view registers under in the plugin manager.
PLUGIN_NAME = "dagpar-progress"
#: Seconds between two redraws of the live view.
REDRAW_SECONDS = 0.2
#: Cells of the bars.
BAR_WIDTH = 20

_RESET = "\x1b[0m"
_STYLES = {"red": "\x1b[31m", "green": "\x1b[32m", "yellow": "\x1b[33m", "dim": "\x1b[2m"}
#: Cursor up N lines / erase from the cursor to the end of the screen.
_UP = "\x1b[{n}A"
_ERASE_DOWN = "\x1b[J"


def wants_live_view(stream: TextIO) -> bool:
    """Whether *stream* is a terminal that can be redrawn in place (not ``TERM=dumb``).

    :param stream: where the progress goes (standard error).
    """
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a closed or fake stream
        return False
    return tty and os.environ.get("TERM", "") != "dumb"


def _wants_color(stream: TextIO) -> bool:
    # https://no-color.org: any non-empty NO_COLOR turns colour off.
    return wants_live_view(stream) and not os.environ.get("NO_COLOR")


def _clock(seconds: float) -> str:
    """``MM:SS.s`` (``H:MM:SS`` past an hour): a short, sortable time since the run started."""
    seconds = max(seconds, 0.0)
    if seconds >= 3600:
        whole = int(seconds)
        return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


def _bar(fraction: float, width: int = BAR_WIDTH) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    full = int(fraction * width)
    return "[" + "#" * full + ("-" * (width - full)) + "]"


@dataclass(slots=True)
class _Running:
    """What the view knows about one running slice."""

    check: str
    index: int
    total: int
    #: Tests the slice is expected to report, or 0 when the runner cannot list them.
    tests: int
    items: int
    predicted: float
    started: float
    done: int = 0
    bad: int = 0
    counts: _Counts = field(default_factory=lambda: _Counts())
    #: Tests the runner says it has finished while it runs (its results come at the end).
    running_done: int = 0

    @property
    def expected(self) -> int:
        """What ``done`` counts towards: the listed tests, else the items."""
        return self.tests or self.items

    @property
    def shown(self) -> int:
        """Tests done as far as anyone knows: reported, or finished by the running runner."""
        return max(self.done, self.running_done)


@dataclass(slots=True)
class _Counts:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0

    def merge(self, other: _Counts) -> _Counts:
        """A new count of both."""
        return _Counts(
            self.passed + other.passed,
            self.failed + other.failed,
            self.errors + other.errors,
            self.skipped + other.skipped,
        )

    def add(self, status: Status) -> None:
        if status is Status.PASSED:
            self.passed += 1
        elif status is Status.FAILED:
            self.failed += 1
        elif status is Status.ERROR:
            self.errors += 1
        else:
            self.skipped += 1

    def text(self, paint: _Paint) -> str:
        parts = []
        if self.passed:
            parts.append(paint(f"{self.passed} passed", "green"))
        if self.failed:
            parts.append(paint(f"{self.failed} failed", "red"))
        if self.errors:
            parts.append(paint(f"{self.errors} error" + ("s" * (self.errors > 1)), "red"))
        if self.skipped:
            parts.append(paint(f"{self.skipped} skipped", "yellow"))
        return ", ".join(parts) or "no tests"


@dataclass(frozen=True, slots=True)
class _Paint:
    color: bool

    def __call__(self, text: str, style: str) -> str:
        return f"{_STYLES[style]}{text}{_RESET}" if self.color else text


class ProgressView:
    """Shows slices as they run; registered by :func:`dagpar_configure` for real runs.

    :param stream: where to write (standard error).
    :param started: ``time.monotonic()`` at the start of the run; timestamps count from it.
    :param live: redraw a view in place (a terminal) instead of printing plain lines.
    :param color: use ANSI colours.
    """

    def __init__(self, stream: TextIO, *, started: float, live: bool, color: bool = False) -> None:
        self._stream = stream
        self._started = started
        self._live = live
        self._paint = _Paint(color)
        self._lock = threading.Lock()
        #: Running slices by (check, index), in start order.
        self._running: dict[tuple[str, int], _Running] = {}
        #: The running slice of each worker thread: runners report tests without their slice.
        self._by_thread: dict[int, tuple[str, int]] = {}
        #: The most slices any split call of each check announced.
        self._totals: dict[str, int] = {}
        self._finished = 0
        #: Counts of the finished slices' tests (running slices keep their own).
        self._counts = _Counts()
        self._drawn = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------ hooks

    @hookimpl
    def dagpar_slice_started(self, check: str, slice: SlicePlan, total: int) -> None:
        """Start showing *slice*."""
        now = time.monotonic()
        state = _Running(
            check=check,
            index=slice.index,
            total=total,
            tests=len(slice.tests),
            items=len(slice.items),
            predicted=slice.predicted_seconds,
            started=now,
        )
        with self._lock:
            self._running[(check, slice.index)] = state
            self._by_thread[threading.get_ident()] = (check, slice.index)
            self._totals[check] = max(self._totals.get(check, 0), total)
            if not self._live:
                tests = f", {state.tests} test" + "s" * (state.tests != 1) if state.tests else ""
                items = f"{state.items} item" + ("s" * (state.items != 1))
                self._print(
                    f"[{_clock(now - self._started)}] {clean_text(check)} slice "
                    f"{slice.index}/{total} started: {items}{tests}, "
                    f"predicted {slice.predicted_seconds:.1f}s"
                )
            else:
                self._ensure_thread()

    @hookimpl
    def dagpar_test_reported(self, check: str, result: TestResult) -> None:
        """Count one reported test towards its slice."""
        with self._lock:
            state = self._slice_of(check, result)
            if state is not None:
                state.done += 1
                state.bad += result.status.is_bad
                state.counts.add(result.status)

    @hookimpl
    def dagpar_slice_progress(self, check: str, slice: SlicePlan, done: int) -> None:
        """Move a running slice's count on before its results arrive."""
        with self._lock:
            state = self._running.get((check, slice.index))
            if state is not None:
                state.running_done = max(state.running_done, done)

    @hookimpl
    def dagpar_slice_handed_over(
        self, check: str, slice: SlicePlan, tests: list[TestCase], to: SlicePlan
    ) -> None:
        """The slice now expects fewer tests; say where the others went (CI log only)."""
        now = time.monotonic()
        with self._lock:
            state = self._running.get((check, slice.index))
            if state is not None and state.tests:
                state.tests = max(state.tests - len(tests), 1)
            if not self._live:
                n = len(tests)
                self._print(
                    f"[{_clock(now - self._started)}] {clean_text(check)} slice "
                    f"{slice.index} handed {n} unstarted test{'s' * (n != 1)} to slice {to.index}"
                )

    @hookimpl
    def dagpar_slice_finished(self, check: str, slice: SlicePlan, result: SliceResult) -> None:
        """Print the finished slice's line (above the live view on a terminal)."""
        counts = _Counts()
        for r in result.results:
            counts.add(r.status)
        with self._lock:
            state = self._running.pop((check, slice.index), None)
            ident = threading.get_ident()
            if self._by_thread.get(ident) == (check, slice.index):
                del self._by_thread[ident]
            self._finished += 1
            # The slice's final results, including tests the engine filled in for a runner
            # that never reported them, replace what was counted while it ran.
            self._counts = self._counts.merge(counts)
            total = state.total if state is not None else self._totals.get(check, 0)
            line = (
                f"[{_clock(time.monotonic() - self._started)}] {clean_text(check)} slice "
                f"{result.index}/{total} done: {counts.text(self._paint)} in "
                f"{result.seconds:.1f}s (predicted {result.predicted_seconds:.1f}s)"
            )
            if result.error:
                first = (clean_text(result.error).splitlines() or [""])[0][:200]
                line += " — " + self._paint(first, "red")
            self._print(line)

    @hookimpl
    def dagpar_sessionfinish(self, run: RunResult | None, exitcode: int) -> None:
        """Stop redrawing and erase the live view, so the summary starts on a clean line."""
        self.close()

    # ------------------------------------------------------------------------------ state

    def _slice_of(self, check: str, result: TestResult) -> _Running | None:
        if result.slice:
            return self._running.get((check, result.slice))
        key = self._by_thread.get(threading.get_ident())
        if key is not None and key[0] == check:
            return self._running.get(key)
        # Reported from a thread of the toolchain's own: the engine knows the slice.
        from dagpar_cli.runtime.context import current_slice

        ctx = current_slice()
        if ctx is not None:
            return self._running.get((check, ctx.plan.index))
        return None

    # ------------------------------------------------------------------------------ drawing

    def lines(self, width: int, height: int = 24) -> list[str]:
        """The live view as it would be drawn now, without colour codes cut in half.

        :param width: the terminal's columns; every line is shorter, so none wraps.
        :param height: the terminal's rows; running slices that do not fit are counted.
        """
        now = time.monotonic()
        with self._lock:
            # Sorted, so that a slice keeps its row while others start and end around it.
            running = sorted(self._running.values(), key=lambda s: (s.check, s.index))
            expected = max(sum(self._totals.values()), self._finished + len(running), 1)
            finished = self._finished
            counts = self._counts
            for state in running:
                counts = counts.merge(state.counts)
        if not running and not finished:
            # Runners list their tests and the planner cuts slices before anything starts: say so,
            # rather than leaving the terminal silent for the seconds a large suite takes.
            return [_fit(f"dagpar: collecting and planning… {_clock(now - self._started)}", width)]
        rows: list[str] = []
        room = max(height - 3, 1)
        name_width = min(max((len(s.check) for s in running), default=0), 30)
        for state in running[:room]:
            rows.append(self._slice_line(state, now, name_width, width))
        if len(running) > room:
            rows.append(f"  … and {len(running) - room} more running slices")
        # Running slices count by their share of tests done, so the bar moves between slices.
        partial = sum(min(s.shown / s.expected, 1.0) for s in running if s.expected)
        overall = (
            f"{_bar((finished + partial) / expected)} {finished}/{expected} slices · "
            f"{counts.text(self._paint)} · {_clock(now - self._started)}"
        )
        rows.append(_fit(overall, width))
        return rows

    def _slice_line(self, state: _Running, now: float, name_width: int, width: int) -> str:
        elapsed = now - state.started
        noun = "tests" if state.tests else "items"
        done = min(state.shown, state.expected) if state.expected else state.shown
        progress = f"{_bar(done / state.expected, 10)} " if state.expected else ""
        of = f"{done}/{state.expected} {noun}" if state.expected else f"{done} done"
        if state.bad:
            of += ", " + self._paint(f"{state.bad} failed", "red")
        timing = f"{elapsed:.1f}s"
        if state.predicted > 0:
            timing += f" / {state.predicted:.1f}s predicted"
            if elapsed > state.predicted * 1.2 + 1:
                timing = self._paint(timing, "yellow")
        name = clean_text(state.check)
        if len(name) > name_width:
            name = name[: max(name_width - 1, 1)] + "…"
        line = (
            f"  {name:<{name_width}}  slice {state.index}/{state.total}  {progress}{of}  {timing}"
        )
        return _fit(line, width)

    def start(self) -> None:
        """Start redrawing (a live view only); :meth:`close` stops it."""
        if self._live:
            with self._lock:
                self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(
                target=self._redraw_loop, name="dagpar-progress", daemon=True
            )
            self._thread.start()

    def _redraw_loop(self) -> None:
        while not self._stop.wait(REDRAW_SECONDS):
            self.redraw()

    def redraw(self) -> None:
        """Draw the live view now (the redraw thread calls this about five times a second)."""
        if not self._live:
            return
        size = _terminal_size(self._stream)
        rows = self.lines(size.columns, size.lines)
        with self._lock:
            if self._stop.is_set():
                return
            self._write(self._erase_text() + "".join(r + "\n" for r in rows))
            self._drawn = len(rows)

    def close(self) -> None:
        """Stop the redraw thread and erase the view; lines already printed stay."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=2)
        with self._lock:
            if self._live and self._drawn:
                self._write(self._erase_text())
                self._drawn = 0

    def _erase_text(self) -> str:
        return (_UP.format(n=self._drawn) + "\r" + _ERASE_DOWN) if self._drawn else ""

    def _print(self, line: str) -> None:
        """Print a lasting line (lock held): above the view on a terminal, plainly otherwise."""
        if not self._live:
            self._write(line + "\n")
            return
        width = _terminal_size(self._stream).columns
        # The view is erased and drawn again on the next tick, below the new line.
        self._write(self._erase_text() + _fit(line, width) + "\n")
        self._drawn = 0

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # the terminal went away; the run goes on
            pass


def _terminal_size(stream: TextIO) -> os.terminal_size:
    try:
        return os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size((100, 24))


def _visible_len(text: str) -> int:
    for code in (*_STYLES.values(), _RESET):
        text = text.replace(code, "")
    return len(text)


def _fit(line: str, width: int) -> str:
    """*line* shortened to fewer than *width* visible columns, so the terminal never wraps it.

    A wrapped line would make the view taller than it counts, and the next redraw would leave
    its first row behind.
    """
    limit = max(width - 1, 10)
    if _visible_len(line) <= limit:
        return line
    plain = line
    for code in (*_STYLES.values(), _RESET):
        plain = plain.replace(code, "")
    return plain[: limit - 1] + "…"


@hookimpl
def dagpar_configure(session: RunContext) -> None:
    """Register the progress view for a real run (not a dry run), on standard error."""
    options = session.options
    if options.dry_run or options.list_only or session.pm.has_plugin(PLUGIN_NAME):
        return
    stream = sys.stderr
    view = ProgressView(
        stream,
        started=session.started,
        live=wants_live_view(stream),
        color=_wants_color(stream),
    )
    session.pm.register(view, name=PLUGIN_NAME)
    view.start()
