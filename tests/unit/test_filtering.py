"""The unified ``--filter``: grammar, globs, parents, negation, instances, subtests, scale."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from dagpar_cli import filtering
from dagpar_cli.errors import UsageError
from dagpar_cli.filtering import Filter, Selector, parse_selector
from dagpar_cli.model import Item, TestCase

# ---------------------------------------------------------------------------------------------
# Grammar
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "negate", "instance", "path", "name"),
    [
        ("api", False, None, "api", None),
        ("!api", True, None, "api", None),
        ("backend:api", False, "backend", "api", None),
        ("!backend:api/tests", True, "backend", "api/tests", None),
        ("a::b", False, None, "a", "b"),
        ("api/test_a.py::TestC::test_x[1-2]", False, None, "api/test_a.py", "TestC::test_x[1-2]"),
        ("backend:api::test_*", False, "backend", "api", "test_*"),
        ("backend:::test_login", False, "backend", "**", "test_login"),
        ("::test_login", False, None, "**", "test_login"),
        ("backend:", False, "backend", "**", None),
        ("!go:", True, "go", "**", None),
        ("./api/", False, None, "api", None),
        ("././api//x", False, None, "api/x", None),
        ("api/./x/.", False, None, "api/x", None),
        (".", False, None, "**", None),
        ("./tests:x", False, None, "tests:x", None),
        ("C:/code/x", False, None, "C:/code/x", None),
        ("C:\\code", False, None, "C:\\code", None),
        ("web:C:/x", False, "web", "C:/x", None),
        ("my-app_2:src", False, "my-app_2", "src", None),
        ("2fast:src", False, None, "2fast:src", None),
        ("a:b:c", False, "a", "b:c", None),
        ("svc::TestX/sub one", False, None, "svc", "TestX/sub one"),
        ("::!not-negated", False, None, "**", "!not-negated"),
    ],
)
def test_grammar(
    text: str, negate: bool, instance: str | None, path: str, name: str | None
) -> None:
    assert parse_selector(text) == Selector(
        negate=negate, instance=instance, path_glob=path, name_glob=name, text=text
    )


def test_an_unbalanced_bracket_is_a_literal_character() -> None:
    assert parse_selector("api/[ab").matches_path("api/[ab")
    assert not parse_selector("api/[ab").matches_path("api/a")
    name = "metacharacters .*+?()[]{}|^$\\ galore pipe | alone"
    assert parse_selector(f"web/x.test.js::{name}").matches_name(name)
    assert parse_selector("api::test_x[1").matches_name("test_x[1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a::", "--filter 'a::': empty test-name pattern after '::'"),
        ("!backend:api::", "--filter '!backend:api::': empty test-name pattern after '::'"),
        ("", "--filter '': empty selector"),
        ("   ", "--filter '   ': empty selector"),
        ("!", "--filter '!': nothing after '!'"),
        (
            "/home/me/api",
            "--filter '/home/me/api': path patterns are relative to the workspace root; "
            "drop the leading '/'",
        ),
        ("api/../x", "--filter 'api/../x': path patterns cannot leave the workspace ('..')"),
    ],
)
def test_grammar_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_selector(text)
    assert str(info.value) == message


def test_filter_parse_reports_the_bad_selector() -> None:
    with pytest.raises(UsageError, match=r"^--filter 'x::': "):
        Filter.parse(["api", "x::", "web"])


def test_a_bare_string_is_one_selector() -> None:
    assert Filter.parse("api").selectors == (parse_selector("api"),)


# ---------------------------------------------------------------------------------------------
# Path globs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "path", "expected"),
    [
        # parents: a pattern selects everything under a matching directory
        ("api", "api/tests/test_a.py", True),
        ("api", "api", True),
        ("api", "apiary/x.py", False),
        ("api", "web/api/x.py", False),
        ("svc/store", "svc/store", True),
        ("svc/store", "svc/storefront", False),
        ("svc/store", "svc/store/inner", True),
        # `*` stays in one segment
        ("api/*.py", "api/a.py", True),
        ("api/*.py", "api/sub/a.py", False),
        ("*.py", "a.py", True),
        ("*.py", "api/a.py", False),
        ("api/*", "api/sub/a.py", True),  # `api/*` matches the parent api/sub
        ("a*", "api/x.py", True),
        ("a*", "web/api.py", False),
        # `**` spans any depth, zero directories included
        ("**/test_*.py", "test_a.py", True),
        ("**/test_*.py", "x/y/test_a.py", True),
        ("**/test_*.py", "x/y/a_test.py", False),
        ("api/**/test_*.py", "api/test_a.py", True),
        ("api/**/test_*.py", "api/a/b/test_a.py", True),
        ("api/**/test_*.py", "web/api/test_a.py", False),
        ("api/**", "api", True),
        ("api/**", "api/x/y", True),
        ("api/**", "apix", False),
        ("**", "anything/at/all", True),
        ("**", ".", True),
        ("**/store", "svc/store", True),
        ("**/store", "svc/storefront", False),
        ("src/**.ts", "src/a/b.ts", True),
        # `?` and classes
        ("test_?.py", "test_a.py", True),
        ("test_?.py", "test_ab.py", False),
        ("a?b", "a/b", False),
        ("test_[ab].py", "test_b.py", True),
        ("test_[ab].py", "test_c.py", False),
        ("test_[!ab].py", "test_c.py", True),
        ("test_[!ab].py", "test_a.py", False),
        ("test_[a-c].py", "test_b.py", True),
        ("test_[]].py", "test_].py", True),
        ("test_[!]].py", "test_].py", False),
        ("test_[[].py", "test_[.py", True),
        ("test_[-x].py", "test_-.py", True),
        ("test_[c-a].py", "test_b.py", False),
        # regex characters are literal
        ("a+b(c)|d$.py", "a+b(c)|d$.py", True),
        ("a.b", "axb", False),
        ("dir with space/ü.py", "dir with space/ü.py", True),
        ("./tests:x", "tests:x/y", True),
    ],
)
def test_path_globs(glob: str, path: str, expected: bool) -> None:
    assert parse_selector(glob).matches_path(path) is expected


# ---------------------------------------------------------------------------------------------
# Name globs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "name", "expected"),
    [
        ("test_login", "test_login", True),
        ("test_login", "test_login_fails", False),
        ("test_*", "test_login", True),
        ("*login*", "TestAuth::test_login[admin]", True),
        ("TestAuth::*", "TestAuth::test_login", True),
        ("*", "describe a/b with spaces :: more", True),
        ("auth *", "auth logs in", True),
        ("auth ?ogs in", "auth logs in", True),
        ("Test[AB]", "TestA", True),
        ("Test[AB]", "TestC", False),
        ("Test[!AB]", "Test/", True),  # names have no separator to protect
        # pasting a pytest node id whose parameters look like a class matches it exactly
        ("test_x[a-1]", "test_x[a-1]", True),
        ("test_x[a-1]", "test_xa", False),
        ("test_x[1-2]", "test_x[1-2]", True),
        ("test_x[1-2]", "test_x1", True),
        ("test_q[?]", "test_q[?]", True),
        ("test_s[*]", "test_s[*]", True),
        # regex characters and unicode are literal
        ("a.b", "axb", False),
        ("(x+y)|z^$", "(x+y)|z^$", True),
        ("\\d", "\\d", True),
        ("\\d", "5", False),
        ("résumé ✓ 🚀", "résumé ✓ 🚀", True),
        ("line*", "line one\nline two", True),
    ],
)
def test_name_globs(glob: str, name: str, expected: bool) -> None:
    assert parse_selector(f"::{glob}").matches_name(name) is expected


# ---------------------------------------------------------------------------------------------
# Selection
# ---------------------------------------------------------------------------------------------

TESTS = [
    TestCase("api/tests/test_a.py", "test_one"),
    TestCase("api/tests/test_a.py", "TestC::test_two[1-2]"),
    TestCase("api/tests/test_b.py", "test_slow"),
    TestCase("api/tests/sub/test_c.py", "test_three"),
    TestCase("tools/test_t.py", "test_tool"),
]


def names(tests: Sequence[TestCase]) -> list[str]:
    return [f"{t.path}::{t.name}" for t in tests]


def select(filters: list[str], instance: str = "backend", tests: Sequence[TestCase] = TESTS) -> Any:
    selected, deselected = Filter.parse(filters).select_tests(instance, tests)
    assert sorted(names(selected) + names(deselected)) == sorted(names(tests))
    return [t.name for t in selected]


def test_empty_filter_selects_everything() -> None:
    f = Filter.parse([])
    assert f.is_empty
    assert f.select_tests("backend", TESTS) == (TESTS, [])


SAME = [
    *(TestCase("web/a.test.js", "same name", k) for k in range(3)),
    TestCase("web/a.test.js", "other"),
    TestCase("web/b.test.js", "same name"),
]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        # A name selects every test of a file with that name.
        (["web/a.test.js::same name"], ["web/a.test.js::same name", "::#2", "::#3"]),
        (["web::same*"], ["web/a.test.js::same name", "::#2", "::#3", "web/b.test.js::same name"]),
        # A pasted id selects that test alone; a glob may reach the number too.
        (["web/a.test.js::same name::#2"], ["::#2"]),
        (["web::*::#3"], ["::#3"]),
        (
            ["!web/a.test.js::same name::#2", "!web/b.test.js"],
            ["web/a.test.js::same name", "::#3", "web/a.test.js::other"],
        ),
    ],
)
def test_same_named_tests(filters: list[str], expected: list[str]) -> None:
    selected, deselected = Filter.parse(filters).select_tests("web", SAME)
    assert len(selected) + len(deselected) == len(SAME)
    ids = [t.id.replace("web/a.test.js::same name::", "::") for t in selected]
    assert ids == expected


def test_directory_selects_everything_under_it() -> None:
    assert select(["api/tests/sub"]) == ["test_three"]
    assert select(["api"]) == ["test_one", "TestC::test_two[1-2]", "test_slow", "test_three"]


def test_positives_are_ored_and_order_is_kept() -> None:
    assert select(["tools", "api/tests/test_b.py"]) == ["test_slow", "test_tool"]


def test_negation_applies_after_the_or() -> None:
    assert select(["api", "!api/tests/test_b.py", "!**::*three"]) == [
        "test_one",
        "TestC::test_two[1-2]",
    ]


def test_only_negations_start_from_everything() -> None:
    assert select(["!api/tests/sub", "!::test_tool"]) == [
        "test_one",
        "TestC::test_two[1-2]",
        "test_slow",
    ]


def test_a_node_id_pasted_from_pytest_selects_that_test() -> None:
    assert select(["api/tests/test_a.py::TestC::test_two[1-2]"]) == ["TestC::test_two[1-2]"]


def test_instance_prefix_limits_a_selector() -> None:
    assert select(["backend:tools"], instance="backend") == ["test_tool"]
    # A selector for another instance does not apply; with no positive selector left for this
    # instance, nothing of it is selected.
    assert select(["frontend:tools"], instance="backend") == []
    assert select(["frontend:tools", "api/tests/test_b.py"], instance="backend") == ["test_slow"]
    # A negation for another instance does not remove anything here.
    assert select(["!frontend:tools"], instance="backend") == [t.name for t in TESTS]


def test_whole_instance_selector() -> None:
    assert select(["backend:"], instance="backend") == [t.name for t in TESTS]
    assert select(["backend:"], instance="frontend") == []
    assert select(["!backend:"], instance="backend") == []


def test_wants_tells_which_instances_can_be_skipped() -> None:
    f = Filter.parse(["backend:api", "!frontend:x"])
    assert f.wants("backend")
    assert not f.wants("frontend")
    assert Filter.parse(["!frontend:x"]).wants("frontend")
    assert Filter.parse([]).wants("anything")
    assert Filter.parse(["api"]).wants("anything")


def test_deselected_keeps_order() -> None:
    selected, deselected = Filter.parse(["::test_s*"]).select_tests("b", TESTS)
    assert names(selected) == ["api/tests/test_b.py::test_slow"]
    assert deselected == [t for t in TESTS if t.name != "test_slow"]


HOSTILE = [
    TestCase("web/src/a b.test.ts", "describe [weird] name with spaces"),
    TestCase("web/src/a b.test.ts", "handles (x+y)*z | $PATH ^caret"),
    TestCase("web/src/ünï/çødé.test.ts", "ünïcödé ✓ 🚀 test"),
    TestCase("web/src/[id].test.ts", "renders :: route"),
    TestCase("api/test_p.py", "test_param[a-1]"),
    TestCase("api/test_p.py", "test_param[x::y/z]"),
    TestCase("api/test_p.py", 'test_param["quoted" \\ back]'),
]


@pytest.mark.parametrize("test", HOSTILE, ids=lambda t: t.name)
def test_hostile_names_are_selectable_by_their_exact_id(test: TestCase) -> None:
    path = re.sub(r"([\[\]])", r"[\1]", test.path)  # a path glob escapes brackets as classes
    selected, _ = Filter.parse([f"{path}::{test.name}"]).select_tests("web", HOSTILE)
    assert selected == [test]


def test_hostile_names_by_glob() -> None:
    f = Filter.parse(["web::*[[]weird[]]*", "::*$PATH*", "::ünï*"])
    selected, _ = f.select_tests("web", HOSTILE)
    assert [t.name for t in selected] == [
        "describe [weird] name with spaces",
        "handles (x+y)*z | $PATH ^caret",
        "ünïcödé ✓ 🚀 test",
    ]


def test_bracket_path_needs_escaping_as_a_class() -> None:
    # `[id]` in a path glob is a class matching "i" or "d": escape the brackets to match them.
    assert not parse_selector("web/src/[id].test.ts").matches_path("web/src/[id].test.ts")
    assert parse_selector("web/src/[[]id[]].test.ts").matches_path("web/src/[id].test.ts")
    assert parse_selector("web/src/*.test.ts").matches_path("web/src/[id].test.ts")


# ---------------------------------------------------------------------------------------------
# Go subtests
# ---------------------------------------------------------------------------------------------

GO = [
    TestCase("svc/store", "TestPut"),
    TestCase("svc/store", "TestGet"),
    TestCase("svc/api", "TestPut"),
    TestCase(".", "TestRoot"),
]


def test_subtest_pattern_selects_the_subtest_of_a_listed_test() -> None:
    selected, deselected = Filter.parse(["svc/store::TestPut/sub one"]).select_tests("go", GO)
    assert selected == [TestCase("svc/store", "TestPut/sub one")]
    # Part of TestPut runs, so it is not reported as deselected.
    assert deselected == GO[1:]


def test_subtest_head_may_be_a_glob() -> None:
    selected, _ = Filter.parse(["svc::Test*/empty key"]).select_tests("go", GO)
    assert selected == [
        TestCase("svc/store", "TestPut/empty key"),
        TestCase("svc/store", "TestGet/empty key"),
        TestCase("svc/api", "TestPut/empty key"),
    ]


def test_subtest_rest_is_verbatim() -> None:
    selected, _ = Filter.parse(["::TestRoot/a/b [c]*"]).select_tests("go", GO)
    assert selected == [TestCase(".", "TestRoot/a/b [c]*")]


def test_whole_test_wins_over_its_subtest() -> None:
    selected, _ = Filter.parse(["::TestPut/x", "svc/store::TestPut", "::TestPut/x"]).select_tests(
        "go", GO
    )
    assert selected == [TestCase("svc/store", "TestPut"), TestCase("svc/api", "TestPut/x")]


def test_two_subtests_of_one_test_are_kept_once_each() -> None:
    f = Filter.parse(["svc/api::TestPut/a", "svc/api::TestPut/b", "svc/api::TestPut/a"])
    selected, _ = f.select_tests("go", GO)
    assert selected == [TestCase("svc/api", "TestPut/a"), TestCase("svc/api", "TestPut/b")]


def test_negation_removes_whole_tests_only() -> None:
    selected, _ = Filter.parse(["::TestPut/a", "!svc/api"]).select_tests("go", GO)
    assert selected == [TestCase("svc/store", "TestPut/a")]
    # A negated subtest pattern cannot remove part of a listed test: it removes nothing.
    selected, _ = Filter.parse(["!::TestPut/a"]).select_tests("go", GO)
    assert selected == GO


def test_subtests_can_be_turned_off_for_runners_without_levels() -> None:
    jest = [TestCase("a.test.ts", "api"), TestCase("a.test.ts", "api/users works")]
    selected, _ = Filter.parse(["::api/*"]).select_tests("web", jest, subtests=False)
    assert selected == [TestCase("a.test.ts", "api/users works")]
    selected, _ = Filter.parse(["::api/x"]).select_tests("web", jest, subtests=False)
    assert selected == []


def test_a_listed_name_containing_a_slash_matches_itself() -> None:
    tests = [TestCase("pkg", "TestX"), TestCase("pkg", "TestX/listed")]
    selected, _ = Filter.parse(["::TestX/listed"]).select_tests("go", tests)
    assert selected == [TestCase("pkg", "TestX/listed")]


# ---------------------------------------------------------------------------------------------
# Items (runners that cannot list tests)
# ---------------------------------------------------------------------------------------------

ITEMS = [
    Item(("src/a.ts",), "web/src/a.ts"),
    Item(("src/b.ts",), "web/src/b.ts"),
    Item(("lib/c.ts",), "web/lib/c.ts"),
]


def test_items_select_by_path() -> None:
    selected, deselected = Filter.parse(["web/src", "!**/b.ts"]).select_items("lint", ITEMS)
    assert selected == [ITEMS[0]]
    assert deselected == ITEMS[1:]


def test_items_name_selector_for_this_instance_is_an_error() -> None:
    with pytest.raises(UsageError) as info:
        Filter.parse(["lint:web::test_x"]).select_items("lint", ITEMS)
    assert str(info.value) == (
        "--filter 'lint:web::test_x': toolchain 'lint' cannot select by test name "
        "(its runner does not list tests); select by path instead"
    )


def test_items_unprefixed_name_selector_selects_nothing_here() -> None:
    # Meant for instances whose runners list tests; it must not break a path-only one.
    f = Filter.parse(["::test_login"])
    assert f.select_items("lint", ITEMS) == ([], ITEMS)
    f = Filter.parse(["!::test_login"])
    assert f.select_items("lint", ITEMS) == (ITEMS, [])


def test_items_with_finer_selectors_match_names() -> None:
    items = [
        Item(("pkg/store", "TestPut"), "svc/pkg/store"),
        Item(("pkg/store", "TestGet"), "svc/pkg/store"),
        Item(("pkg/api",), "svc/pkg/api"),
    ]
    selected, _ = Filter.parse(["go:svc::TestP*"]).select_items("go", items)
    assert selected == [items[0]]


# ---------------------------------------------------------------------------------------------
# Narrowing one split call (Filter.narrow)
# ---------------------------------------------------------------------------------------------

WHOLE_A = Item(("tests/test_a.py",), "api/tests/test_a.py")
WHOLE_B = Item(("tests/test_b.py",), "api/tests/test_b.py")
A1, A2 = TestCase(WHOLE_A.path, "test_one"), TestCase(WHOLE_A.path, "test_two")
B1 = TestCase(WHOLE_B.path, "test_three")
LISTED = {WHOLE_A.key: [A1, A2], WHOLE_B.key: [B1]}


class Hooks:
    """Records what narrow tells the ``dagpar_modify_tests``/``dagpar_deselected`` callbacks."""

    def __init__(self, drop: Sequence[TestCase] = ()) -> None:
        self.drop = set(drop)
        self.modified: list[list[TestCase]] = []
        self.deselected: list[list[TestCase]] = []

    def modify(self, tests: list[TestCase]) -> None:
        self.modified.append(list(tests))
        tests[:] = [t for t in tests if t not in self.drop]

    def record_deselected(self, tests: list[TestCase]) -> None:
        self.deselected.append(list(tests))


def narrow(selectors: Sequence[str], hooks: Hooks, **kwargs: Any) -> filtering.Narrowed:
    return Filter.parse(selectors).narrow(
        "api",
        [WHOLE_A, WHOLE_B],
        LISTED,
        by_test=True,
        modify=hooks.modify,
        deselected=hooks.record_deselected,
        **kwargs,
    )


def test_narrow_without_selectors_keeps_everything_and_asks_the_modify_hook() -> None:
    hooks = Hooks()
    kept = narrow([], hooks)
    assert hooks.modified == [[A1, A2, B1]]
    assert hooks.deselected == []
    assert kept.items == [WHOLE_A, WHOLE_B]
    assert kept.tests_of == LISTED
    assert not kept.narrowed


@pytest.mark.parametrize("selectors", [[], ["api"]], ids=["no-filter", "filter"])
def test_narrow_honours_what_the_modify_hook_deselects(selectors: list[str]) -> None:
    # Dropping a file's only test drops the file; dropping one of two narrows the file.
    kept = narrow(selectors, Hooks(drop=[B1]))
    assert kept.items == [WHOLE_A]
    assert kept.tests_of == {WHOLE_A.key: [A1, A2]}
    assert not kept.narrowed
    kept = narrow(selectors, Hooks(drop=[A2]))
    assert kept.items == [WHOLE_A, WHOLE_B]
    assert kept.tests_of == {WHOLE_A.key: [A1], WHOLE_B.key: [B1]}
    assert kept.narrowed


def test_narrow_with_selectors_shows_the_hook_only_what_they_selected() -> None:
    hooks = Hooks()
    kept = narrow(["::test_t*"], hooks)
    assert hooks.modified == [[A2, B1]]
    assert hooks.deselected == [[A1]]
    assert kept.items == [WHOLE_A, WHOLE_B]
    assert kept.tests_of == {WHOLE_A.key: [A2], WHOLE_B.key: [B1]}
    assert kept.narrowed
    # The hook can deselect further what the filter selected.
    kept = narrow(["::test_t*"], Hooks(drop=[A2]))
    assert kept.items == [WHOLE_B]
    assert not kept.narrowed


def test_narrow_selecting_nothing_keeps_no_item() -> None:
    hooks = Hooks()
    kept = narrow(["nowhere"], hooks)
    assert kept.items == []
    assert kept.tests_of == {}
    assert hooks.modified == [[]]
    assert hooks.deselected == [[A1, A2, B1]]


def test_narrow_keeps_items_whose_runner_lists_no_tests_when_nothing_is_filtered() -> None:
    # A directory item, or a file the runner lists nothing for: with no selector there is
    # nothing to select it by, and it runs as given (the runner reports what it finds).
    directory = Item(("tests/unit",), "api/tests/unit")
    hooks = Hooks()
    kept = Filter.parse([]).narrow(
        "api",
        [directory, WHOLE_B],
        {directory.key: [], WHOLE_B.key: [B1]},
        by_test=True,
        modify=hooks.modify,
    )
    assert kept.items == [directory, WHOLE_B]
    assert kept.tests_of == {directory.key: [], WHOLE_B.key: [B1]}
    assert not kept.narrowed
    # A selector selects tests, and such an item has none to select.
    kept = Filter.parse(["api"]).narrow(
        "api", [directory, WHOLE_B], {directory.key: [], WHOLE_B.key: [B1]}, by_test=True
    )
    assert kept.items == [WHOLE_B]


def test_made_up_subtests_belong_to_the_whole_item() -> None:
    # A Go filter may name a subtest the listing of top-level tests cannot know.
    pkg = Item(("store",), "svc/store")
    listed = {pkg.key: [TestCase("svc/store", "TestPut"), TestCase("svc/store", "TestGet")]}
    hooks = Hooks()
    kept = Filter.parse(["svc/store::TestPut/empty"]).narrow(
        "go", [pkg], listed, by_test=True, subtests=True, modify=hooks.modify
    )
    assert hooks.modified == [[TestCase("svc/store", "TestPut/empty")]]
    assert kept.items == [pkg]
    assert kept.tests_of == {pkg.key: [TestCase("svc/store", "TestPut/empty")]}
    assert kept.narrowed


def test_made_up_subtests_of_a_listed_test_with_its_parent_narrow_the_item() -> None:
    pkg = Item(("store",), "svc/store")
    put, get = TestCase("svc/store", "TestPut"), TestCase("svc/store", "TestGet")
    kept = Filter.parse(["svc/store::TestGet", "svc/store::TestPut/empty"]).narrow(
        "go", [pkg], {pkg.key: [put, get]}, by_test=True, subtests=True
    )
    # Both listed tests are still there, and one made-up subtest on top: not the whole item.
    assert kept.tests_of == {pkg.key: [get, TestCase("svc/store", "TestPut/empty")]}
    assert kept.narrowed


def test_narrow_without_a_listing_selects_items_by_path_and_skips_the_hook() -> None:
    hooks = Hooks()
    kept = Filter.parse(["web/src"]).narrow(
        "lint", ITEMS, {}, by_test=False, modify=hooks.modify, deselected=hooks.record_deselected
    )
    assert kept.items == ITEMS[:2]
    assert not kept.narrowed
    assert hooks.modified == [] and hooks.deselected == []
    kept = Filter.parse([]).narrow("lint", ITEMS, {}, by_test=False, modify=hooks.modify)
    assert kept.items == ITEMS
    assert hooks.modified == []


# ---------------------------------------------------------------------------------------------
# Bookkeeping and suggestions
# ---------------------------------------------------------------------------------------------


def test_unmatched_selectors_are_reported_across_instances() -> None:
    f = Filter.parse(["api/tests/test_a.py", "web", "!tools", "frontend:src", "::nope"])
    f.select_tests("backend", TESTS)
    assert [s.text for s in f.unmatched()] == ["web", "frontend:src", "::nope"]
    f.select_items("frontend", [Item(("src/a.ts",), "src/a.ts")])
    assert [s.text for s in f.unmatched()] == ["web", "::nope"]
    assert f.hits(f.selectors[0]) == 2
    assert f.hits(f.selectors[2]) == 1
    assert f.matched_any(f.selectors[3])
    assert not f.matched_any(f.selectors[1])
    assert f.matched_any()


def test_matched_any_is_false_before_anything_matched() -> None:
    f = Filter.parse(["web"])
    assert not f.matched_any()
    f.select_tests("backend", TESTS)
    assert not f.matched_any()


def test_closest_suggests_paths_and_directories() -> None:
    f = Filter.parse(["api/tests/tset_a.py", "toolz"])
    f.select_tests("backend", TESTS)
    suggestions = f.closest((t.path for t in TESTS), n=3)
    assert suggestions[0] in ("api/tests/test_a.py", "tools")
    assert {"api/tests/test_a.py", "tools"} <= set(suggestions)


def test_closest_ignores_wildcards_and_falls_back_to_top_level_paths() -> None:
    f = Filter.parse(["ap/**"])
    f.select_tests("backend", TESTS)
    assert f.closest(t.path for t in TESTS)[0] == "api"
    f = Filter.parse(["zzzzzzzz"])
    f.select_tests("backend", TESTS)
    top = sorted({t.path.split("/")[0] for t in TESTS})
    assert f.closest(t.path for t in TESTS) == top[:5]


def test_check_instances_suggests_the_closest() -> None:
    f = Filter.parse(["bakend:api", "tools"])
    with pytest.raises(UsageError) as info:
        f.check_instances(["backend", "frontend"])
    assert str(info.value) == (
        "--filter 'bakend:api': no toolchain instance 'bakend'; did you mean 'backend'? "
        "(instances: backend, frontend; for a path containing ':' write './bakend:api')"
    )
    Filter.parse(["backend:api", "!frontend:x", "tools"]).check_instances(["backend", "frontend"])
    with pytest.raises(UsageError, match=r"write '!\./tests:x'\)$"):
        Filter.parse(["!tests:x"]).check_instances(["backend"])


# ---------------------------------------------------------------------------------------------
# Scale
# ---------------------------------------------------------------------------------------------


def _suite(n_tests: int) -> list[TestCase]:
    # 10 tests per file, 20 files per directory, like a large real suite.
    return [
        TestCase(f"pkg{i // 200}/sub{i // 50 % 4}/test_mod{i // 10}.py", f"TestK{i % 7}::test_{i}")
        for i in range(n_tests)
    ]


SCALE_FILTERS = [
    *(f"pkg{k}/**" for k in range(0, 200, 20)),
    "**/sub2/test_mod1*.py",
    "::*test_1?",
    "pkg1::TestK3::*",
    "!**/sub3",
    "!::*_99*",
    "backend:pkg7",
    "frontend:pkg8",
    "pkg2[0-9]/sub[01]",
    "::TestK[!5]::test_4*",
    "**/test_mod4?.py::*",
]


def _best_of(runs: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def test_scale_compiles_each_pattern_once(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(SCALE_FILTERS) == 20
    filtering._path_matcher.cache_clear()
    filtering._name_matcher.cache_clear()
    filtering._subtest_matcher.cache_clear()
    compiles = 0
    real_compile = re.compile

    def counting_compile(*args: Any, **kwargs: Any) -> Any:
        nonlocal compiles
        compiles += 1
        return real_compile(*args, **kwargs)

    monkeypatch.setattr(re, "compile", counting_compile)
    f = Filter.parse(SCALE_FILTERS)
    f.select_tests("backend", _suite(50_000))
    f.select_tests("backend", _suite(50_000))
    assert compiles <= 2 * len(SCALE_FILTERS)  # a path and a name pattern each, at most


def test_scale_is_linear_in_the_number_of_tests() -> None:
    f = Filter.parse(SCALE_FILTERS)
    small, large = _suite(5_000), _suite(50_000)
    f.select_tests("backend", small)  # warm the pattern cache
    t_small = _best_of(3, lambda: f.select_tests("backend", small))
    t_large = _best_of(3, lambda: f.select_tests("backend", large))
    # Ten times the tests must cost about ten times the time, not a hundred.
    assert t_large / t_small < 30, (t_small, t_large)
    selected, deselected = f.select_tests("backend", large)
    assert len(selected) + len(deselected) == 50_000
    assert 0 < len(selected) < 50_000


class _WatchedTest(TestCase):
    """A listed test that counts how often its id is computed."""

    ids = 0

    @property
    def id(self) -> str:
        type(self).ids += 1
        return TestCase.id.__get__(self)  # type: ignore[attr-defined,no-any-return]


def test_narrow_without_selectors_or_changes_computes_no_test_id() -> None:
    listed = {WHOLE_A.key: [_WatchedTest(WHOLE_A.path, f"test_{i}") for i in range(100)]}
    kept = Filter.parse([]).narrow("api", [WHOLE_A], listed, by_test=True)
    assert kept.tests_of == listed
    assert not kept.narrowed
    assert _WatchedTest.ids == 0  # 20,000 listed tests: no 80,000 ids to build and compare
    # A hook that reorders them still keeps every one, in the listing's order.
    kept = Filter.parse([]).narrow(
        "api", [WHOLE_A], listed, by_test=True, modify=lambda tests: tests.reverse()
    )
    assert kept.tests_of == listed
    assert not kept.narrowed
