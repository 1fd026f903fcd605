"""Jest tests as Jest counts them, through dagpar's whole pipeline, with real Jest.

- Same-named tests: a file registering ``test("same name", ...)`` three times and one other test
  is four tests from the listing (fresh and cached) through ``--filter``, the plan, the slices'
  results, ``--json``, the JUnit and the timing store.
- Odd file names: a test file whose name holds spaces, quotes, brackets, ``::``, a backslash,
  non-ASCII, a newline, a carriage return or a tab is listed, selected, run and reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from projects import JEST_DEPS  # type: ignore[import-not-found]

from dagpar_cli.testing import DagparResult
from dagpar_cli.timings import TimingStore

pytestmark = [pytest.mark.node, pytest.mark.slow]

DUP = "web/__tests__/dup.test.js"
SAME = """
for (let i = 0; i < 3; i++) {
  test("same name", () => { expect(i).not.toBe(1); });
}
test("other", () => {});
"""


def _workspace(make_workspace: Callable[[Mapping[str, str]], Path], files: dict[str, str]) -> Path:
    ws = make_workspace(
        {
            "dagpar.yaml": "toolchains:\n  web: {use: jest, source: web}\n",
            "web/package.json": '{"name": "web", "private": true}\n',
            **{f"web/__tests__/{name}": text for name, text in files.items()},
        }
    )
    (ws / "web" / "node_modules").symlink_to(JEST_DEPS / "node_modules")
    return ws


def _tests(result: DagparResult) -> list[dict[str, Any]]:
    """The run's tests, by file, name and occurrence."""
    tests = [t for check in result.json()["checks"] for t in check["tests"]]
    return sorted(tests, key=lambda t: (t["file"], t["name"], t.get("occurrence", 0)))


def _junit(path: Path) -> list[tuple[str, str, str]]:
    root = etree.parse(str(path)).getroot()
    return [
        (
            c.get("file") or "",
            c.get("name") or "",
            "failed" if c.find("failure") is not None else "passed",
        )
        for c in root.iter("testcase")
    ]


def test_same_named_tests_are_each_a_result(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    ws = _workspace(make_workspace, {"dup.test.js": SAME})
    junit = tmp_path / "junit.xml"
    first = dagpar_run("check", "-C", ws, "--json", "--junit-xml", junit)
    assert first.exit_code == 1, first  # the second "same name" fails
    tests = _tests(first)
    assert [(t["id"], t["name"], t["status"]) for t in tests] == [
        (f"{DUP}::other", "other", "passed"),
        (f"{DUP}::same name", "same name", "passed"),
        (f"{DUP}::same name::#2", "same name", "failed"),
        (f"{DUP}::same name::#3", "same name", "passed"),
    ]
    assert [t.get("occurrence", 0) for t in tests] == [0, 0, 1, 2]
    assert _junit(junit) == [
        (DUP, "other", "passed"),
        (DUP, "same name", "passed"),
        (DUP, "same name", "failed"),
        (DUP, "same name", "passed"),
    ]
    with TimingStore.open(ws) as store:
        samples = {s[2] for s in store.export_json()["samples"] if s[1] == "test"}
    assert {f"{DUP}::same name", f"{DUP}::same name::#2", f"{DUP}::same name::#3"} <= samples

    # Again, from the cached listing, with a filter by name: it selects all three.
    again = dagpar_run("call", "-C", ws, "web", "test-files", "test", "--json", "--filter",
                       "web/**::same name")  # fmt: skip
    assert again.exit_code == 1, again
    assert [(t["id"], t["status"]) for t in _tests(again)] == [
        (f"{DUP}::same name", "passed"),
        (f"{DUP}::same name::#2", "failed"),
        (f"{DUP}::same name::#3", "passed"),
    ]
    # A pasted id selects that test alone (Jest runs all three; dagpar reports the one).
    one = dagpar_run("check", "-C", ws, "--json", "--filter", f"{DUP}::same name::#3")
    assert one.exit_code == 0, one
    assert [(t["id"], t["status"]) for t in _tests(one)] == [(f"{DUP}::same name::#3", "passed")]
    # A rerun (--retries) runs the failed one again, and reports it as the same test.
    retried = dagpar_run("check", "-C", ws, "--json", "--retries", "1")
    assert retried.exit_code == 1, retried
    assert [(t["id"], len(t.get("attempts", []))) for t in _tests(retried)] == [
        (f"{DUP}::other", 0),
        (f"{DUP}::same name", 0),
        (f"{DUP}::same name::#2", 1),
        (f"{DUP}::same name::#3", 0),
    ]
    # With history, the planner may cut the file into single tests: still each once.
    third = dagpar_run("check", "-C", ws, "--json", "-j", "2")
    assert [t["id"] for t in _tests(third)] == [t["id"] for t in tests]


#: Test files named with what shells, regular expressions and dagpar's own ``::`` dislike.
ODD_NAMES = [
    "with space.test.js",
    'quote\'s "double".test.js',
    "brackets [1] (2) {3}.test.js",
    "colons::inside.test.js",
    "back\\slash.test.js",
    "ünïcødé ☃.test.js",
    "regex .*+?^$|.test.js",
    "new\nline.test.js",
    "carriage\rreturn.test.js",
    "tab\there.test.js",
]


def test_odd_file_names_are_listed_selected_run_and_reported(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    files = {name: f'test("in {i}", () => {{}});\n' for i, name in enumerate(ODD_NAMES)}
    # A file whose name is a regex prefix of another must not run that other one.
    files["plain.test.js"] = 'test("plain", () => {});\n'
    files["plain.test.js.extra.test.js"] = 'test("extra", () => { throw new Error("ran"); });\n'
    ws = _workspace(make_workspace, files)
    junit = tmp_path / "junit.xml"
    result = dagpar_run("check", "-C", ws, "--json", "--junit-xml", junit, "-j", "2")
    assert result.exit_code == 1, result  # the "extra" file fails on purpose
    statuses = {t["file"]: t["status"] for t in _tests(result)}
    for name in ODD_NAMES:
        assert statuses[f"web/__tests__/{name}"] == "passed", name
    assert {f for f, _, _ in _junit(junit)} == set(statuses)
    # Each odd file selected alone by a filter runs alone.
    for i, name in enumerate(ODD_NAMES):
        # Glob characters, and the colons of "::", as one-character classes.
        escaped = "".join(f"[{c}]" if c in "*?[]{}:\\" else c for c in name)
        one = dagpar_run("check", "-C", ws, "--json", "--filter", f"web/__tests__/{escaped}")
        assert one.exit_code == 0, (name, one)
        assert [(t["file"], t["name"]) for t in _tests(one)] == [
            (f"web/__tests__/{name}", f"in {i}")
        ]
    one = dagpar_run("check", "-C", ws, "--json", "--filter", "web/__tests__/plain.test.js")
    assert one.exit_code == 0, one
    assert [t["name"] for t in _tests(one)] == ["plain"]


def test_a_test_that_exits_jest_is_the_crash_and_the_tests_after_it_run(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    exits = """
test("first", () => {});
test("exits", () => { process.exit(3); });
test("third", () => {});
test("fourth", () => {});
"""
    ws = _workspace(make_workspace, {"exits.test.js": exits})
    result = dagpar_run("check", "-C", ws, "--json")
    assert result.exit_code in (1, 4), result
    path = "web/__tests__/exits.test.js"
    assert [(t["id"], t["status"], t.get("message", "")) for t in _tests(result)] == [
        (f"{path}::exits", "error", "crashed the runner (exit code 3)"),
        (f"{path}::first", "passed", ""),
        (f"{path}::fourth", "passed", ""),
        (f"{path}::third", "passed", ""),
    ]
    assert [s["replacements"] for c in result.json()["checks"] for s in c["slices"]] == [1]
