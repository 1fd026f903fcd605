"""Progress lines while slices run: one line per finished slice, on standard error.

Plain, timestamp-free lines keep CI logs readable; the final summary comes from
:mod:`dagpar_cli.reporting.summary`.
"""

from __future__ import annotations

import sys
import threading

from dagpar_cli.model import SlicePlan, SliceResult, Status
from dagpar_cli.pluginmanager import hookimpl
from dagpar_cli.session import Session

__all__ = ["ProgressLines"]


class ProgressLines:
    """Prints ``[check] slice i/N: 12 passed, 1 failed in 3.2s (predicted 3.0s)`` lines."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @hookimpl
    def dagpar_slice_finished(self, check: str, slice: SlicePlan, result: SliceResult) -> None:
        """Print one line for the finished slice."""
        counts: dict[Status, int] = {}
        for r in result.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        parts = [f"{n} {status.value}" for status, n in counts.items() if n]
        line = (
            f"[{check}] slice {result.index}: {', '.join(parts) or 'no tests'} "
            f"in {result.seconds:.1f}s (predicted {result.predicted_seconds:.1f}s)"
        )
        if result.error:
            line += f" — {result.error.splitlines()[0][:200]}"
        with self._lock:
            print(line, file=sys.stderr, flush=True)


@hookimpl
def dagpar_configure(session: Session) -> None:
    """Register the progress printer unless the output is JSON or a dry run."""
    if session.options.dry_run or session.options.json:
        return
    if not session.pm.has_plugin("dagpar-progress"):
        session.pm.register(ProgressLines(), name="dagpar-progress")
