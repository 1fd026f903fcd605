"""A slice's overhead as a fixed start-up plus a part that grows with the tests it runs.

The timing store books per slice what its tests and setups do not explain: the runner's start
(interpreter, imports, configuration) but also work that grows with the slice's tests (pytest's
session end collects garbage, writes the JUnit report, and plugins walk every item). Only the
fixed part is what one more slice costs: the per-test part is paid by whichever slice runs the
test. :func:`fit_startup` tells the two apart from slices of differing sizes; when every slice
held about as many tests (the usual even split), the data cannot tell them apart, and the
difference from what is typical is shared out by how large each part plausibly is at that size
(:data:`PER_TEST_PRIOR`, and the executor's assumed start-up): a small slice's overhead is mostly
fixed, a slice of thousands of tests' mostly per test.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MIN_SIZE_RATIO", "PER_TEST_PRIOR", "StartupModel", "fit_startup"]

#: Two samples tell the fixed part from the per-test part only when one slice ran at least this
#: many times the tests of the other (closer sizes turn noise into a slope).
MIN_SIZE_RATIO = 2.0
#: Seconds of overhead per test assumed when the sizes cannot tell: pytest's session end on a
#: 2-core machine (garbage collection, the JUnit report, plugins' hooks over every item).
PER_TEST_PRIOR = 0.0003


@dataclass(frozen=True, slots=True)
class StartupModel:
    """A slice's predicted overhead: ``fixed + per_test * tests``."""

    #: Seconds every slice pays, whatever it runs: what a split costs.
    fixed: float
    #: Seconds per test the slice runs, beyond the test's own recorded seconds.
    per_test: float = 0.0

    def seconds(self, tests: int) -> float:
        """The overhead of a slice of *tests* tests."""
        return self.fixed + self.per_test * max(0, tests)


def fit_startup(samples: Sequence[tuple[float, float | None]], prior: float) -> StartupModel | None:
    """The overhead model of *samples* ``(seconds, tests)``; None without samples.

    Samples whose test count is unknown (recorded before counts were kept) are all fixed
    start-up, as they were then, unless some samples have counts: those alone are fitted.

    With sizes far enough apart (:data:`MIN_SIZE_RATIO`), the slope is the median of the
    slopes between such pairs (one odd run moves nothing) and the fixed part the median of
    what each sample leaves over; neither is ever negative. Otherwise (one sample, one size)
    the typical seconds are split between the parts in proportion to their prior variances.

    :param samples: per slice, its overhead seconds and how many tests it ran (None: unknown).
    :param prior: the start-up seconds assumed before anything was measured (the executor's).
    """
    if not samples:
        return None
    counted = [(max(0.0, s), max(0.0, float(n))) for s, n in samples if n is not None]
    if not counted:
        return StartupModel(statistics.median(max(0.0, s) for s, _ in samples))
    slopes = [
        (y2 - y1) / (x2 - x1)
        for i, (y1, x1) in enumerate(counted)
        for y2, x2 in counted[i + 1 :]
        if max(x1, x2) >= MIN_SIZE_RATIO * min(x1, x2) and x1 != x2
    ]
    seconds = statistics.median(y for y, _ in counted)
    if slopes:
        per_test = max(0.0, statistics.median(slopes))
        fixed = statistics.median(y - per_test * x for y, x in counted)
        top = max(y for y, _ in counted)
        return StartupModel(min(max(0.0, fixed), top), per_test)
    tests = statistics.median(x for _, x in counted)
    if tests <= 0:
        return StartupModel(seconds)
    # One size: seconds = fixed + per_test * tests is all the data says. Share out the
    # difference from the priors by each part's prior variance at this size.
    fixed_prior, variable_prior = max(0.0, prior), PER_TEST_PRIOR * tests
    excess = seconds - fixed_prior - variable_prior
    weights = fixed_prior**2 + variable_prior**2
    fixed = fixed_prior + excess * fixed_prior**2 / weights if weights > 0 else seconds
    fixed = min(max(0.0, fixed), seconds)
    return StartupModel(fixed, (seconds - fixed) / tests)
