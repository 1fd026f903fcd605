"""Work units: longest first, unknown tests early, shrinking toward the end, each test once."""

from __future__ import annotations

from collections import Counter

from dagpar_cli.model import Item, Plan, SlicePlan, TestCase
from dagpar_cli.queue.units import Unit, listing_digest, make_units, retry_units, unit_plan


def _plan(files: dict[str, int], *, nested: bool = False) -> Plan:
    """One slice per file, each with *n* tests (``[file, test]`` items when *nested*)."""
    slices = []
    for index, (path, n) in enumerate(sorted(files.items()), start=1):
        tests = tuple(TestCase(path, f"test_{i}") for i in range(n))
        if nested:
            items = tuple(Item((path, t.name), path) for t in tests)
        else:
            items = (Item((path,), path),)
        slices.append(SlicePlan(index=index, items=items, predicted_seconds=n, tests=tests))
    return Plan(slices=tuple(slices), predicted_wall_seconds=1.0, workers=2)


def _every_test(units: list[Unit]) -> Counter[str]:
    return Counter(t for u in units for t in u.tests)


def test_units_hold_every_test_once_longest_first_and_shrink() -> None:
    files = {f"tests/test_{i:02d}.py": 2 for i in range(30)}
    plan = _plan(files)
    predicted = {
        f"tests/test_{i:02d}.py::test_{j}": float(1 + i % 7) for i in range(30) for j in range(2)
    }
    units = make_units(plan, predicted, slots=2)
    counts = _every_test(units)
    assert set(counts) == set(predicted) and max(counts.values()) == 1
    assert [u.number for u in units] == list(range(1, len(units) + 1))
    sizes = [u.predicted_seconds for u in units]
    # Guided self-scheduling: the first units are the biggest, the last ones the smallest.
    assert sizes[0] >= sizes[-1]
    assert max(sizes[-3:]) <= min(sizes[:3])
    assert sizes[-1] <= 2 * max(predicted.values())


def test_unknown_tests_go_out_early() -> None:
    plan = _plan({f"tests/test_{i:02d}.py": 1 for i in range(20)})
    predicted = {f"tests/test_{i:02d}.py::test_0": 1.0 for i in range(20) if i % 5}
    units = make_units(plan, predicted, slots=1)
    new = {f"tests/test_{i:02d}.py::test_0" for i in range(0, 20, 5)}
    positions = [n for n, u in enumerate(units) if new & set(u.tests)]
    assert len(positions) >= 1
    assert max(positions) < len(units) / 2


def test_nested_items_map_back_to_the_nodes_own_plan() -> None:
    plan = _plan({"tests/test_a.py": 3, "tests/test_b.py": 2}, nested=True)
    units = make_units(plan, {}, slots=1)
    assert sum(len(u.items) for u in units) == 5
    for unit in units:
        again = Unit.from_json(unit.to_json())
        assert again == unit
        sp = unit_plan(again, startup=0.5)
        assert sp.index == unit.number
        assert [t.id for t in sp.tests] == list(unit.tests)
        assert sp.items == unit.items and all(len(i.selector) == 2 for i in sp.items)
        assert sp.predicted_seconds == unit.predicted_seconds + 0.5


def test_listing_digest_changes_with_the_suite_not_with_the_cut() -> None:
    one = _plan({"tests/test_a.py": 2})
    # Another node's history may cut the same files into single tests: the same suite.
    assert listing_digest("p:test", one) == listing_digest(
        "p:test", _plan({"tests/test_a.py": 2}, nested=True)
    )
    two = _plan({"tests/test_a.py": 3})
    assert listing_digest("p:test", one) == listing_digest("p:test", _plan({"tests/test_a.py": 2}))
    assert listing_digest("p:test", one) != listing_digest("p:test", two)
    assert listing_digest("p:test", one) != listing_digest("q:test", one)


def test_matrix_items_travel_with_their_combination() -> None:
    items = tuple(Item(("f1",), "f1", (("python", version),)) for version in ("3.11", "3.12"))
    unit = Unit(number=1, items=items, tests=(), predicted_seconds=1.0)
    assert Unit.from_json(unit.to_json()) == unit
    grid = Plan(
        slices=(SlicePlan(index=1, items=items, predicted_seconds=2.0),),
        predicted_wall_seconds=2.0,
        workers=1,
    )
    one = Plan(slices=(SlicePlan(index=1, items=items[:1], predicted_seconds=1.0),),
               predicted_wall_seconds=1.0, workers=1)  # fmt: skip
    # A node that would run a smaller grid is not running the same build.
    assert listing_digest("g:run", grid) != listing_digest("g:run", one)


def test_reruns_hold_only_the_failed_tests_with_their_items() -> None:
    plan = _plan({"tests/test_a.py": 3, "tests/test_b.py": 2})
    units = {u.number: u for u in make_units(plan, {}, slots=1)}
    failed = {"tests/test_a.py::test_1": 0.5, "tests/test_b.py::test_0": 2.0}
    again = retry_units(units, failed, slots=1)
    assert sorted(t for u in again for t in u.tests) == sorted(failed)
    assert {i.path for u in again for i in u.items} == {"tests/test_a.py", "tests/test_b.py"}
    assert retry_units(units, {}, slots=1) == []
