"""Per-outcome test counts, shared by the terminal summary and the HTML report."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dagpar_cli.model import Status, TestResult

__all__ = ["Counts"]


@dataclass(slots=True)
class Counts:
    """How many tests passed, failed, errored and were skipped; flaky ones also count as passed."""

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    flaky: int = 0

    @classmethod
    def of(cls, results: Iterable[TestResult]) -> Counts:
        """Count *results*."""
        counts = cls()
        for result in results:
            if result.status is Status.PASSED:
                counts.passed += 1
                counts.flaky += result.flaky
            elif result.status is Status.FAILED:
                counts.failed += 1
            elif result.status is Status.ERROR:
                counts.errors += 1
            else:
                counts.skipped += 1
        return counts
