"""Predicting durations from the timing store's estimates: the maths, without the database.

Every kept key has an estimate, the median of its last samples (:func:`robust_estimate`). An item
``[file]`` is predicted as the sum of its tests when they are listed and at least one is known,
else the file's recorded total; a key without history is estimated from its siblings
(:class:`SiblingEstimator`): the same file's other tests, then the same directory and its parents,
then the whole instance. In a matrix (several ``+parallel`` fields), samples are kept per
combination, and a combination without history borrows from the same item under the other values
(:func:`borrow_across_matrix`).
"""

from __future__ import annotations

import math
import posixpath
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from dagpar_cli.model import Item, TestCase, TestResult

__all__ = [
    "DEFAULT_ITEM_SECONDS",
    "DEFAULT_TEST_SECONDS",
    "Prediction",
    "SiblingEstimator",
    "borrow_across_matrix",
    "outermost",
    "predict_items",
    "predict_tests",
    "robust_estimate",
]

#: Estimates when nothing at all is known about an instance's tests or items.
DEFAULT_TEST_SECONDS = 0.1
DEFAULT_ITEM_SECONDS = 1.0


def robust_estimate(samples: Sequence[float]) -> tuple[float, float]:
    """The median of *samples* and their relative spread (scaled median absolute deviation).

    :returns: ``(median, spread)``; spread is 0 for fewer than three samples.
    """
    if len(samples) == 1:
        return samples[0], 0.0  # most keys of a young store: no sort, no spread
    ordered = sorted(samples)
    middle = median(ordered)
    if len(ordered) < 3 or middle <= 0:
        return middle, 0.0
    mad = median(sorted(abs(s - middle) for s in ordered))
    # 1.4826 * MAD estimates a standard deviation without letting an outlier in.
    return middle, 1.4826 * mad / middle


@dataclass(frozen=True, slots=True)
class Prediction:
    """Everything :meth:`TimingStore.predict_detailed` knows about one split call's items."""

    #: Predicted seconds per ``Item.key``, for every item.
    seconds: dict[str, float]
    #: Keys whose prediction is an estimate from siblings rather than from their own history.
    estimated: frozenset[str]
    #: Whether the instance had any history at all.
    has_history: bool
    #: Typical relative run-to-run deviation of the instance's measured tests (None: unknown).
    spread: float | None


def predict_items(
    known_tests: Mapping[str, float],
    known_items: Mapping[str, float],
    items: Sequence[Item],
    tests: Mapping[str, Sequence[TestCase]],
    spreads: Iterable[float] = (),
) -> Prediction:
    """Predicted seconds for every item, which of them are estimates, and the spread.

    An item ``[file]`` is the sum of its tests' estimates when its tests are listed and at
    least one of them is known; otherwise the file's recorded total; otherwise an estimate
    from sibling items. A finer item ``[file, test]`` is its test's estimate.

    :param known_tests: the estimate per known test id.
    :param known_items: the estimate per known whole item (file or package).
    :param items: the items of one split call.
    :param tests: the tests each item selects, per ``Item.key``.
    :param spreads: the relative spreads of the tests with enough samples to have one.
    """
    has_history = bool(known_tests or known_items)
    test_guess = SiblingEstimator(known_tests, DEFAULT_TEST_SECONDS, by_test_id=True)
    item_guess = SiblingEstimator(known_items, DEFAULT_ITEM_SECONDS, by_test_id=False)
    seconds: dict[str, float] = {}
    estimated: set[str] = set()
    known_test = known_tests.get
    for item in items:
        key = item.key
        if item.name is not None:
            value = known_tests.get(key)
            if value is None:
                value = test_guess.estimate(key)
                estimated.add(key)
            seconds[key] = value
            continue
        listed = outermost(tests.get(key, ()))
        own: list[float] = []
        missing: list[str] = []  # ids (a test's id is computed anew on each access)
        for test_id in [t.id for t in listed]:
            value = known_test(test_id)
            if value is None:
                missing.append(test_id)
            else:
                own.append(value)
        if own:
            seconds[key] = math.fsum(own) + math.fsum(test_guess.estimate(i) for i in missing)
            if missing and len(missing) * 2 >= len(listed):
                estimated.add(key)
        elif key in known_items:
            seconds[key] = known_items[key]
        elif listed and known_tests:
            seconds[key] = math.fsum(test_guess.estimate(i) for i in missing)
            estimated.add(key)
        else:
            seconds[key] = item_guess.estimate(key)
            estimated.add(key)
    ordered = sorted(spreads)
    spread = median(ordered) if ordered else None
    return Prediction(seconds, frozenset(estimated), has_history, spread)


def borrow_across_matrix(
    items: Sequence[Item], seconds: Mapping[str, float], estimated: frozenset[str]
) -> tuple[dict[str, float], frozenset[str]]:
    """Predictions where a combination without history takes the mean of the same item's
    measured combinations (a new Python version starts from the other versions' times).

    :param items: the combinations of one split call (:attr:`Item.matrix` set).
    :param seconds: predicted seconds per ``Item.key``.
    :param estimated: the keys whose prediction is an estimate, not their own history.
    :returns: the predictions and the keys that are still estimates.
    """
    measured: dict[str, list[float]] = defaultdict(list)
    for item in items:
        if item.key not in estimated and item.key in seconds:
            measured[Item(item.selector, item.path).key].append(seconds[item.key])
    borrowed = dict(seconds)
    still: set[str] = set()
    for item in items:
        key = item.key
        if key not in estimated:
            continue
        same = measured.get(Item(item.selector, item.path).key)
        if same:
            borrowed[key] = math.fsum(same) / len(same)
        else:
            still.add(key)
    return borrowed, frozenset(still) | (estimated - {item.key for item in items})


def predict_tests(known: Mapping[str, float], tests: Sequence[TestCase]) -> dict[str, float]:
    """Predicted seconds per test id, unknown tests estimated from their siblings.

    :param known: the estimate per known test id.
    :param tests: the tests.
    """
    guess = SiblingEstimator(known, DEFAULT_TEST_SECONDS, by_test_id=True)
    found = known.get
    seconds: dict[str, float] = {}
    for test in tests:
        test_id = test.id  # computed on each access: once per test here
        value = found(test_id)
        seconds[test_id] = value if value is not None else guess.estimate(test_id)
    return seconds


class SiblingEstimator:
    """Estimates unknown keys from the medians of known neighbours: file, directories, all."""

    def __init__(self, known: Mapping[str, float], default: float, *, by_test_id: bool) -> None:
        self._known = known
        self._by_test_id = by_test_id
        self._default = default
        # Grouped on the first estimate: where every key is known (an established suite),
        # nothing is estimated, and grouping 50,000 known tests would be wasted.
        self._groups: dict[str, list[float]] | None = None
        self._all: float | None = None
        self._cache: dict[str, float] = {}

    def _group(self) -> dict[str, list[float]]:
        groups: dict[str, list[float]] = defaultdict(list)
        every: list[float] = []
        by_test_id = self._by_test_id
        for key, seconds in self._known.items():
            path = split_test_id(key)[0] if by_test_id else key
            if by_test_id:
                groups["f:" + path].append(seconds)
            for directory in ancestors(path):
                groups["d:" + directory].append(seconds)
            every.append(seconds)
        self._all = median(sorted(every)) if every else None
        self._groups = groups
        return groups

    def _median_of(self, group: str) -> float | None:
        if group not in self._cache:
            groups = self._groups if self._groups is not None else self._group()
            values = groups.get(group)
            if not values:
                return None
            self._cache[group] = median(sorted(values))
        return self._cache[group]

    def estimate(self, key: str) -> float:
        """The best sibling-based guess for *key* (a test id or an item path)."""
        path = split_test_id(key)[0] if self._by_test_id else key
        if self._by_test_id:
            same_file = self._median_of("f:" + path)
            if same_file is not None:
                return same_file
        for directory in ancestors(path):
            near = self._median_of("d:" + directory)
            if near is not None:
                return near
        if self._groups is None:
            self._group()
        return self._all if self._all is not None else self._default


_Named = TypeVar("_Named", TestCase, TestResult)


def outermost(tests: Iterable[_Named]) -> list[_Named]:
    """*tests* without the subtests of listed tests (Go's ``TestA/sub`` when ``TestA`` is there).

    A parent test's time already includes its subtests', so sums must count it once.
    """
    tests = list(tests)
    if not any("/" in t.name for t in tests):
        return tests  # no name can be a subtest's
    names = {(t.path, t.name) for t in tests}
    return [t for t in tests if "/" not in t.name or not _has_parent(t.path, t.name, names)]


def _has_parent(path: str, name: str, names: set[tuple[str, str]]) -> bool:
    while "/" in name:
        name = name.rsplit("/", 1)[0]
        if (path, name) in names:
            return True
    return False


def ancestors(path: str) -> Iterator[str]:
    """The directories containing *path*, nearest first, ending with ``""`` (the root)."""
    directory = posixpath.dirname(path)
    while directory:
        yield directory
        parent = posixpath.dirname(directory)
        if parent == directory:
            break
        directory = parent
    yield ""


def split_test_id(test_id: str) -> tuple[str, str]:
    """``(path, name)`` of a test id ``path::name``."""
    path, _, name = test_id.partition("::")
    return path, name


def median(ordered: Sequence[float]) -> float:
    """The median of the sorted *ordered* (0 when empty)."""
    n = len(ordered)
    if n == 0:
        return 0.0
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
