"""The item a reported test belongs to: same answers as a scan in item order, without the scan."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from dagpar_cli.model import Item, Status, TestResult
from dagpar_cli.reporting.item_index import ItemIndex


def _scan(items: Sequence[Item], test: TestResult) -> str | None:
    """The reference answer: the first finer item, in item order, naming the test or a parent."""
    for item in items:
        name = item.name
        if name is None or item.path != test.path:
            continue
        if test.name == name or test.name.startswith((f"{name}/", f"{name}::", f"{name} ")):
            return item.key
    return next((i.key for i in items if i.name is None and i.path == test.path), None)


def _item(path: str, *names: str) -> Item:
    return Item(selector=(path, *names), path=path)


def _test(path: str, name: str) -> TestResult:
    return TestResult(path=path, name=name, status=Status.PASSED)


def test_exact_names_parents_and_whole_files() -> None:
    items = [
        _item("a.py"),
        _item("a.py", "test_x"),
        _item("a.py", "TestC", "test_y"),
        _item("pkg", "TestPut"),
        _item("b.test.js", "suite one"),
    ]
    index = ItemIndex(items)
    cases = {
        ("a.py", "test_x"): "a.py::test_x",
        ("a.py", "test_x[1]"): "a.py",  # not a separator: the whole file
        ("a.py", "TestC::test_y"): "a.py::TestC::test_y",
        ("a.py", "test_z"): "a.py",
        ("pkg", "TestPut/sub case"): "pkg::TestPut",
        ("pkg", "TestPutMore"): None,
        ("b.test.js", "suite one > adds"): "b.test.js::suite one",
        ("b.test.js", "suite once"): None,
        ("b.test.js", "suite one adds"): "b.test.js::suite one",
        ("c.py", "test_x"): None,
    }
    for (path, name), key in cases.items():
        assert index.find(_test(path, name)) == key, (path, name)
        assert _scan(items, _test(path, name)) == key, (path, name)


def test_of_several_matching_items_the_first_in_item_order_wins() -> None:
    items = [_item("t", "a/b"), _item("t", "a"), _item("t", "a/b/c"), _item("t", "a")]
    index = ItemIndex(items)
    assert index.find(_test("t", "a/b/c")) == "t::a/b"
    assert index.find(_test("t", "a/b/c/d")) == "t::a/b"
    assert index.find(_test("t", "a/x")) == "t::a"
    reordered = [_item("t", "a/b/c"), _item("t", "a/b")]
    assert ItemIndex(reordered).find(_test("t", "a/b/c/d")) == "t::a/b/c"


_NAMES = st.text(alphabet="ab/: ", max_size=6)


@given(
    items=st.lists(
        st.one_of(
            st.builds(lambda p: _item(p), st.sampled_from(["p", "q"])),
            st.builds(lambda p, n: _item(p, n), st.sampled_from(["p", "q"]), _NAMES),
        ),
        max_size=8,
    ),
    tests=st.lists(st.builds(_test, st.sampled_from(["p", "q"]), _NAMES), max_size=8),
)
def test_answers_match_a_scan_in_item_order(items: list[Item], tests: list[TestResult]) -> None:
    index = ItemIndex(items)
    for test in tests:
        assert index.find(test) == _scan(items, test)


class _CountedName(str):
    """A test name that counts the comparisons made with it."""

    compared = 0

    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        _CountedName.compared += 1
        return str.__eq__(self, other)

    def startswith(self, *args: object) -> bool:  # type: ignore[override]
        _CountedName.compared += 1
        return str.startswith(self, *args)  # type: ignore[arg-type]


def test_a_file_cut_into_single_test_items_costs_a_bounded_number_of_comparisons_per_test() -> None:
    count = 2000
    items = [_item("big.py", f"test_p[{i}]") for i in range(count)] + [_item("big.py")]
    index = ItemIndex(items)
    _CountedName.compared = 0
    for i in range(count):
        assert index.find(_test("big.py", _CountedName(f"test_p[{i}]"))) == f"big.py::test_p[{i}]"
    assert index.find(_test("big.py", _CountedName("test_other"))) == "big.py"
    # A scan compares each test with every item before its own: about count**2 / 2 in all.
    assert _CountedName.compared <= 4 * (count + 1)


class _WatchedItem(Item):
    """An item that counts how often its derived name and key are computed."""

    computed = 0

    @property
    def name(self) -> str | None:
        type(self).computed += 1
        return Item.name.__get__(self)  # type: ignore[attr-defined,no-any-return]

    @property
    def key(self) -> str:
        type(self).computed += 1
        return Item.key.__get__(self)  # type: ignore[attr-defined,no-any-return]


def test_the_index_is_built_from_the_selectors_without_deriving_names() -> None:
    items = [_WatchedItem(("a.py",), "a.py")] + [
        _WatchedItem(("b.py", f"test_p[{i}]"), "b.py") for i in range(100)
    ]
    index = ItemIndex(items)
    assert _WatchedItem.computed == 0  # a file cut into 40,000 tests: no 80,000 joins
    assert index.find(_test("b.py", "test_p[7]")) == "b.py::test_p[7]"
    assert index.find(_test("a.py", "t")) == "a.py"
    # A matrix combination's key has its label: that one is derived.
    combination = Item(("c.py", "t"), "c.py", matrix=(("python", "3.12"),))
    assert ItemIndex([combination]).find(_test("c.py", "t")) == combination.key
