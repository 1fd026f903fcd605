"""Predictions from estimates: medians, spreads, sibling estimates, subtests counted once."""

from __future__ import annotations

import pytest

from dagpar_cli.model import Item, TestCase
from dagpar_cli.timings.predict import (
    DEFAULT_ITEM_SECONDS,
    DEFAULT_TEST_SECONDS,
    SiblingEstimator,
    outermost,
    predict_items,
    predict_tests,
    robust_estimate,
)


def test_robust_estimate_reports_spread() -> None:
    median, spread = robust_estimate([1.0, 1.1, 0.9, 1.0, 50.0])
    assert median == 1.0
    assert 0.05 < spread < 0.2


def test_a_test_without_history_takes_its_nearest_siblings_median() -> None:
    known = {"api/a/test_x.py::t1": 4.0, "api/a/test_x.py::t2": 6.0, "api/b/test_y.py::t": 1.0}
    guess = SiblingEstimator(known, DEFAULT_TEST_SECONDS, by_test_id=True)
    assert guess.estimate("api/a/test_x.py::t3") == 5.0  # same file
    assert guess.estimate("api/a/test_new.py::t") == 5.0  # same directory
    assert guess.estimate("api/c/test_z.py::t") == 4.0  # parent directory: all three
    assert SiblingEstimator({}, DEFAULT_TEST_SECONDS, by_test_id=True).estimate("x::t") == (
        DEFAULT_TEST_SECONDS
    )


def test_subtests_of_a_listed_test_are_counted_once() -> None:
    tests = [TestCase("pkg", "TestA"), TestCase("pkg", "TestA/sub"), TestCase("pkg", "TestB/x")]
    assert outermost(tests) == [TestCase("pkg", "TestA"), TestCase("pkg", "TestB/x")]


def test_items_are_predicted_from_tests_then_totals_then_siblings() -> None:
    whole = Item(("api/test_a.py",), "api/test_a.py")
    total_only = Item(("api/test_b.py",), "api/test_b.py")
    unknown = Item(("web/x.test.ts",), "web/x.test.ts")
    finer = Item(("api/test_a.py", "t9"), "api/test_a.py")
    listed = {whole.key: [TestCase(whole.path, "t1"), TestCase(whole.path, "t2")]}
    prediction = predict_items(
        {"api/test_a.py::t1": 1.0, "api/test_a.py::t2": 2.0},
        {"api/test_b.py": 7.0},
        [whole, total_only, unknown, finer],
        listed,
        spreads=[0.3, 0.1, 0.2],
    )
    assert prediction.seconds == {
        "api/test_a.py": pytest.approx(3.0),
        "api/test_b.py": 7.0,
        "web/x.test.ts": 7.0,  # the only known item's total
        "api/test_a.py::t9": 1.5,  # its file's median
    }
    assert prediction.estimated == {"web/x.test.ts", "api/test_a.py::t9"}
    assert prediction.has_history
    assert prediction.spread == pytest.approx(0.2)


def test_nothing_known_gives_the_defaults() -> None:
    item = Item(("a.py",), "a.py")
    prediction = predict_items({}, {}, [item], {})
    assert prediction.seconds == {"a.py": DEFAULT_ITEM_SECONDS}
    assert not prediction.has_history and prediction.spread is None
    assert predict_tests({}, [TestCase("a.py", "t")]) == {"a.py::t": DEFAULT_TEST_SECONDS}


class _CountingKnown(dict[str, float]):
    """Known estimates that count how often all of them are walked."""

    walks = 0

    def items(self):  # type: ignore[override]
        self.walks += 1
        return super().items()


def test_siblings_are_grouped_only_when_something_is_estimated() -> None:
    known = _CountingKnown({f"t.py::t{i}": float(i) for i in range(5)})
    listed = {"t.py": [TestCase("t.py", f"t{i}") for i in range(5)]}
    prediction = predict_items(known, {}, [Item(("t.py",), "t.py")], listed)
    assert prediction.seconds == {"t.py": pytest.approx(10.0)}
    assert predict_tests(known, listed["t.py"])["t.py::t4"] == 4.0
    assert known.walks == 0  # every test known: no sibling needed
    assert predict_tests(known, [TestCase("t.py", "new")]) == {"t.py::new": 2.0}
    assert known.walks == 1
