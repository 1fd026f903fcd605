"""The Jest runner plugin against recorded ``jest --json`` output: no node, no Jest.

The recordings under ``tests/data/jest/`` come from ``tests/data/projects/jest-hostile`` with the
project directory rewritten to ``/workspace/web``:

- ``list.json``: the listing run (name pattern that matches nothing);
- ``run-all.json``: every file run whole;
- ``run-narrowed.json``: regex.test.js, same-a.test.js, dup.test.js and throws.test.js with
  ``--testNamePattern=^(?:x|fails on purpose|skipped in source|todo: write this test|twice)$``.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from dagpar_plugins import jest
from dagpar_plugins.jest.command import (
    IN_BAND,
    JestRun,
    chooses_workers,
    escape_name,
    name_pattern,
    plan_runs,
)
from dagpar_plugins.jest.report import ReportError, report_from_stdout
from hypothesis import given, settings
from hypothesis import strategies as st

from dagpar_cli import (
    REPORT_DIR_PLACEHOLDER,
    ExecutionError,
    Outcome,
    RunnerRegistry,
    RunnerSpec,
    Selection,
    Status,
    TestCase,
    TestResult,
    ToolchainRegistry,
)
from dagpar_cli.testing import FakeRunnerHost

DATA = Path(__file__).resolve().parents[3] / "data" / "jest"
RUNNER = jest.JestRunner()
SPEC = RunnerSpec(name="jest", workspace=Path("/workspace"), source="web", command=("jest",))
REGEX = "__tests__/regex.test.js"
SAME_A = "__tests__/same-a.test.js"
SAME_B = "__tests__/same-b.test.js"
DUP = "__tests__/dup.test.js"
THROWS = "__tests__/throws.test.js"
BROKEN = "__tests__/broken.test.js"
SPACE = "__tests__/hostile names.test.js"
META = "metacharacters .*+?()[]{}|^$\\ galore"

HOSTILE_NAMES = [
    f"{META} dot . star * plus + question ?",
    f"{META} parens (a|b) brackets [x] braces {{2,3}}",
    f"{META} anchors ^start end$ and backslash \\d",
    "unicode ünïcödé 名前 🚀",
    "each length of x|y is 3",
    "  spaces   inside  and around  ",
    "file with a space tab\there",
    "a/b",
    "",
]


def _js_regex(pattern: str) -> re.Pattern[str]:
    # The escapes escape_name emits mean the same in Python's `re` as in a JavaScript RegExp
    # without the "u" flag; Jest always adds the "i" flag.
    return re.compile(pattern, re.IGNORECASE)


def _manifest(tmp_path: Path, index: int, files: Mapping[str, list[str] | None]) -> None:
    text = json.dumps({"files": [{"path": p, "names": n} for p, n in files.items()]})
    (tmp_path / f"jest-{index}.selection.json").write_text(text, encoding="utf-8")


def _by_id(results: Sequence[TestResult]) -> dict[str, TestResult]:
    ids = [r.id for r in results]
    assert len(ids) == len(set(ids)), f"duplicate results: {ids}"
    return {r.id: r for r in results}


# --------------------------------------------------------------------------------------------
# escaping
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_pattern_matches_exactly_the_name(name: str) -> None:
    regex = _js_regex(name_pattern([name]))
    assert regex.search(name)
    for near in (name + "x", "x" + name, name + " more", name[:-1]):
        if near.lower() != name.lower():
            assert not regex.search(near), near


def test_pattern_is_an_anchored_alternation() -> None:
    regex = _js_regex(name_pattern(["add", "pipe | alone"]))
    assert regex.search("add") and regex.search("pipe | alone")
    assert not regex.search("add more")
    assert not regex.search("pipe ")
    assert not regex.search(" alone")


# No deadline: a loaded CI machine must not turn a slow example into a failure.
@settings(deadline=None, derandomize=True)
@given(st.lists(st.text(min_size=0, max_size=20), min_size=1, max_size=5, unique=True))
def test_any_names_are_matched_literally(names: list[str]) -> None:
    regex = _js_regex(name_pattern(names))
    for name in names:
        assert regex.search(name)
    for other in (names[0] + "\x00", "\x00" + names[0]):
        assert not regex.search(other)


def test_escape_leaves_ordinary_text_alone() -> None:
    assert escape_name("ünïcödé 名前 ok") == "ünïcödé 名前 ok"
    assert escape_name("a.b") == "a\\.b"


# --------------------------------------------------------------------------------------------
# compiling a selection
# --------------------------------------------------------------------------------------------


def _selected(runs: Sequence[JestRun], listing: Sequence[TestCase]) -> list[TestCase]:
    """The tests of *listing* that *runs* select, each once per run that selects it."""
    chosen = []
    for run in runs:
        for test in listing:
            if test.path in run.files and (run.names is None or test.name in run.names):
                chosen.append(test)
    return chosen


LISTING = [
    TestCase(SAME_A, "x"),
    TestCase(SAME_A, "y"),
    TestCase(SAME_B, "x"),
    TestCase(SAME_B, "y"),
    TestCase(REGEX, "add"),
    TestCase(REGEX, "add more"),
    TestCase(BROKEN, jest.SUITE_FAILED),
]


def test_whole_files_share_one_run_without_a_pattern() -> None:
    runs = plan_runs(Selection(items=((SAME_A,), (REGEX,), (SPACE,))))
    assert runs == [JestRun(files=(SAME_A, REGEX, SPACE))]


def test_different_names_in_different_files_need_separate_runs() -> None:
    selection = Selection(
        items=((SAME_A,), (SAME_B,)), tests=(TestCase(SAME_A, "x"), TestCase(SAME_B, "y"))
    )
    runs = plan_runs(selection)
    assert sorted(_selected(runs, LISTING), key=str) == sorted(selection.tests or (), key=str)
    assert len(runs) == 2


def test_files_wanting_the_same_names_share_a_run() -> None:
    selection = Selection(
        items=((SAME_A,), (SAME_B,)), tests=(TestCase(SAME_B, "x"), TestCase(SAME_A, "x"))
    )
    assert plan_runs(selection) == [JestRun(files=(SAME_A, SAME_B), names=("x",))]


def test_whole_and_narrowed_files_do_not_share_a_run() -> None:
    selection = Selection(
        items=((SAME_A,), (REGEX,)),
        tests=(TestCase(SAME_A, "x"), TestCase(SAME_A, "y"), TestCase(REGEX, "add")),
    )
    runs = plan_runs(selection)
    assert sorted(_selected(runs, LISTING), key=str) == sorted(selection.tests or (), key=str)


def test_a_file_that_failed_to_load_runs_whole() -> None:
    selection = Selection(items=((BROKEN,),), tests=(TestCase(BROKEN, jest.SUITE_FAILED),))
    assert plan_runs(selection) == [JestRun(files=(BROKEN,))]


def test_finer_item_selectors_narrow_like_tests() -> None:
    runs = plan_runs(Selection(items=((SAME_A, "x"), (SAME_A, "y"), (SAME_B, "x"))))
    assert sorted(_selected(runs, LISTING), key=str) == sorted(
        [TestCase(SAME_A, "x"), TestCase(SAME_A, "y"), TestCase(SAME_B, "x")], key=str
    )


def test_an_empty_narrowing_runs_nothing() -> None:
    assert plan_runs(Selection(items=((SAME_A,),), tests=())) == []


def test_runs_keep_the_item_order() -> None:
    selection = Selection(
        items=((REGEX,), (SAME_B,), (SAME_A,)),
        tests=(TestCase(SAME_A, "x"), TestCase(SAME_B, "x"), TestCase(REGEX, "x")),
    )
    assert plan_runs(selection)[0].files == (REGEX, SAME_B, SAME_A)


def test_long_selections_are_cut_under_the_limit_and_run_each_test_once() -> None:
    files = [f"src/deeply/nested/dir/module_{i:04}.test.js" for i in range(120)]
    names = [f"describe {j} does (thing) number [{j}] with | pipes" for j in range(1500)]
    wanted = {(f, n) for f in files[:100] for n in names}
    selection = Selection(
        items=tuple((f,) for f in files), tests=tuple(TestCase(f, n) for f, n in sorted(wanted))
    )
    commands = RUNNER.command(spec=SPEC, selection=selection)
    assert commands is not None and len(commands) > 1
    for command in commands:
        assert sum(len(a.encode()) + 1 for a in command.argv) <= 100_000
    runs = plan_runs(selection, fixed_args=jest.run_args(SPEC, JestRun(files=()), 0))
    chosen = [(f, n) for run in runs for f in run.files for n in run.names or ()]
    assert len(chosen) == len(set(chosen)) == len(wanted)
    assert set(chosen) == wanted
    whole = plan_runs(Selection(items=tuple((f,) for f in files)), limit=2_000)
    assert len(whole) > 1 and [f for r in whole for f in r.files] == files


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------


def test_command_form() -> None:
    spec = RunnerSpec(
        name="jest",
        workspace=Path("/workspace"),
        source="web",
        command=("npx", "jest"),
        args=("--maxWorkers=2",),
    )
    selection = Selection(
        items=((SPACE,), (SAME_A,)), tests=(TestCase(SAME_A, "x"), TestCase(SPACE, "x"))
    )
    commands = RUNNER.command(spec=spec, selection=selection)
    assert commands is not None
    (command,) = commands
    assert command.argv == (
        "npx",
        "jest",
        "--ci",
        "--json",
        "--watchAll=false",
        "--no-bail",
        f"--outputFile={REPORT_DIR_PLACEHOLDER}/jest-1.json",
        f"--reporters={REPORT_DIR_PLACEHOLDER}/dagpar-jest-reporter.js",
        "--reporters=default",
        "--maxWorkers=2",
        "--runTestsByPath",
        "--testNamePattern=^(?:x)$",
        f"./{SPACE}",
        f"./{SAME_A}",
    )
    wanted = json.loads(command.files["jest-1.selection.json"])
    assert wanted == {
        "files": [
            {"path": SPACE, "names": ["x"], "tests": [["x", 0]]},
            {"path": SAME_A, "names": ["x"], "tests": [["x", 0]]},
        ]
    }
    assert command.ok_exit_codes == frozenset({0, 1})
    assert command.env == {
        "DAGPAR_JEST_STREAM": f"{REPORT_DIR_PLACEHOLDER}/jest-1.events.jsonl",
        "DAGPAR_JEST_PROGRESS": f"{REPORT_DIR_PLACEHOLDER}/jest-1.progress",
    }
    assert command.files["dagpar-jest-reporter.js"].startswith('"use strict";')


def test_a_slice_runs_in_band_by_default() -> None:
    (command,) = RUNNER.command(spec=SPEC, selection=Selection(items=((SAME_A,), (SAME_B,))))
    assert command.argv[:6] == ("jest", "--ci", "--json", "--watchAll=false", "--no-bail", IN_BAND)
    assert IN_BAND == "--maxWorkers=1"


@pytest.mark.parametrize(
    "args",
    [
        ("-w", "4"),
        ("-w=4",),
        ("-w4",),
        ("--maxWorkers", "50%"),
        ("--maxWorkers=3",),
        ("--max-workers=3",),
        ("-i",),
        ("--runInBand",),
        ("--run-in-band",),
    ],
)
def test_workers_chosen_by_the_toolchain_are_left_to_it(args: tuple[str, ...]) -> None:
    assert chooses_workers(args)
    spec = RunnerSpec(
        name="jest", workspace=Path("/workspace"), source="web", command=("jest",), args=args
    )
    (command,) = RUNNER.command(spec=spec, selection=Selection(items=((SAME_A,),)))
    assert IN_BAND not in command.argv


@pytest.mark.parametrize("args", [(), ("--silent",), ("--watchAll",), ("--", "-w"), ("-wx",)])
def test_other_arguments_do_not_choose_workers(args: tuple[str, ...]) -> None:
    assert not chooses_workers(args)


def test_each_command_writes_its_own_report() -> None:
    selection = Selection(
        items=((SAME_A,), (SAME_B,), (REGEX,)),
        tests=(TestCase(SAME_A, "x"), TestCase(SAME_B, "y"), TestCase(REGEX, "add")),
    )
    commands = RUNNER.command(spec=SPEC, selection=selection)
    assert commands is not None and len(commands) == 3
    outputs = [a for c in commands for a in c.argv if a.startswith("--outputFile=")]
    assert outputs == [f"--outputFile={REPORT_DIR_PLACEHOLDER}/jest-{i}.json" for i in (1, 2, 3)]
    assert [sorted(c.files) for c in commands] == [
        ["dagpar-jest-reporter.js", f"jest-{i}.selection.json"] for i in (1, 2, 3)
    ]
    streams = [c.env["DAGPAR_JEST_STREAM"] for c in commands]
    assert streams == [f"{REPORT_DIR_PLACEHOLDER}/jest-{i}.events.jsonl" for i in (1, 2, 3)]


def test_a_name_holding_the_report_dir_placeholder_survives_substitution() -> None:
    name = f"writes to {REPORT_DIR_PLACEHOLDER} literally"
    selection = Selection(items=((SAME_A,),), tests=(TestCase(SAME_A, name),))
    commands = RUNNER.command(spec=SPEC, selection=selection)
    assert commands is not None
    (command,) = commands
    # What the engine does to every file it writes for a command.
    text = command.files["jest-1.selection.json"].replace(REPORT_DIR_PLACEHOLDER, "/tmp/reports")
    assert json.loads(text) == {"files": [{"path": SAME_A, "names": [name], "tests": [[name, 0]]}]}
    pattern = next(a for a in command.argv if a.startswith("--testNamePattern="))
    assert REPORT_DIR_PLACEHOLDER not in pattern


def test_jest_is_found_in_the_nearest_node_modules(tmp_path: Path) -> None:
    web = tmp_path / "ws" / "web"
    (web / "node_modules" / ".bin").mkdir(parents=True)
    (tmp_path / "ws" / "node_modules" / ".bin").mkdir(parents=True)
    (tmp_path / "ws" / "node_modules" / ".bin" / "jest").touch()
    spec = RunnerSpec(name="jest", workspace=tmp_path / "ws", source="web")
    assert jest.find_jest(spec) == ("../node_modules/.bin/jest",)
    (web / "node_modules" / ".bin" / "jest").touch()
    assert jest.find_jest(spec) == ("./node_modules/.bin/jest",)
    override = RunnerSpec(name="jest", workspace=tmp_path / "ws", source="web", command=("j",))
    assert jest.find_jest(override) == ("j",)


def test_jest_above_the_workspace_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "node_modules" / ".bin").mkdir(parents=True)
    (tmp_path / "node_modules" / ".bin" / "jest").touch()
    (tmp_path / "ws" / "web").mkdir(parents=True)
    spec = RunnerSpec(name="jest", workspace=tmp_path / "ws", source="web")
    with pytest.raises(ExecutionError) as info:
        RUNNER.command(spec=spec, selection=Selection(items=(("a.test.js",),)))
    assert "run `npm ci` in web/" in str(info.value)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------
# collect
# --------------------------------------------------------------------------------------------


def _listing_stdout(noise: str = "") -> str:
    return noise + json.dumps(json.loads((DATA / "list.json").read_text(encoding="utf-8")))


def test_collect_lists_every_test_without_running_any() -> None:
    host = FakeRunnerHost(Outcome(exit_code=1, stdout=_listing_stdout()))
    tests = RUNNER.collect(spec=SPEC, host=host)
    assert tests is not None
    (call,) = host.calls
    argv = call.argv
    assert "--testNamePattern=(?!)" in argv and "--json" in argv and "--ci" in argv
    assert [t.path for t in tests] == sorted(t.path for t in tests)
    assert len({t.id for t in tests}) == len(tests)
    ids = {t.id for t in tests}
    assert f"{BROKEN}::{jest.SUITE_FAILED}" in ids
    assert f"{THROWS}::{jest.SUITE_FAILED}" in ids
    assert f"{REGEX}::level one level two level three deep test" in ids
    assert f"{REGEX}::each add(-1, 1) = 0" in ids
    assert f"{REGEX}::  spaces   inside  and around  " in ids
    assert f"{SPACE}::file with a space tab\there" in ids
    # Same-named tests are each a test, numbered in the file's order.
    assert [(t.name, t.occurrence) for t in tests if t.path == DUP] == [
        ("twice", 0),
        ("twice", 1),
        ("once", 0),
    ]
    assert f"{DUP}::twice::#2" in ids
    assert [t.name for t in tests if t.path == SAME_A] == ["x", "y", "shared name in two files"]
    assert len(tests) == 33


def test_collect_finds_the_report_behind_printed_noise() -> None:
    noisy = '{"numFailedTestSuites" oops\nprinted by a test file\n'
    host = FakeRunnerHost(Outcome(exit_code=0, stdout=_listing_stdout(noisy)))
    tests = RUNNER.collect(spec=SPEC, host=host)
    assert tests is not None and len(tests) == 33


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Outcome(exit_code=127, stderr="No such file", not_started=True), "cannot start Jest"),
        (Outcome(exit_code=-9, timed_out=True), "timed out"),
        (Outcome(exit_code=1, stderr="● Validation Error:\n  bad option"), "bad option"),
        (Outcome(exit_code=1, stdout='{"numFailedTestSuites": 1'), "truncated"),
    ],
)
def test_collect_failures_are_execution_errors(outcome: Outcome, expected: str) -> None:
    with pytest.raises(ExecutionError, match=re.escape(expected)):
        RUNNER.collect(spec=SPEC, host=FakeRunnerHost(outcome))


def test_report_from_stdout_rejects_other_json() -> None:
    with pytest.raises(ReportError):
        report_from_stdout('{"numFailedTestSuites": 0}')


# --------------------------------------------------------------------------------------------
# parse
# --------------------------------------------------------------------------------------------


def test_parse_a_whole_run(tmp_path: Path) -> None:
    shutil.copy(DATA / "run-all.json", tmp_path / "jest-1.json")
    results = RUNNER.parse(spec=SPEC, report_dir=tmp_path, outcome=Outcome(exit_code=1))
    assert results is not None
    by_id = _by_id(results)
    assert len(by_id) == 33
    failed = by_id[f"{REGEX}::fails on purpose"]
    assert failed.status is Status.FAILED
    assert failed.message == "Error: expect(received).toBe(expected) // Object.is equality"
    assert "Expected: 5" in failed.details and "Received: 4" in failed.details
    assert failed.seconds > 0
    assert by_id[f"{REGEX}::skipped in source"].status is Status.SKIPPED
    todo = by_id[f"{REGEX}::todo: write this test"]
    assert (todo.status, todo.message) == (Status.SKIPPED, "todo")
    assert by_id[f"{DUP}::twice"].status is Status.PASSED
    assert by_id[f"{DUP}::twice::#2"].status is Status.PASSED
    assert by_id[f"{DUP}::twice::#2"].occurrence == 1
    broken = by_id[f"{BROKEN}::{jest.SUITE_FAILED}"]
    assert broken.status is Status.ERROR
    assert broken.message.startswith("SyntaxError: ")
    assert "Unexpected token (5:0)" in broken.message
    throws = by_id[f"{THROWS}::{jest.SUITE_FAILED}"]
    assert (throws.status, throws.message) == (
        Status.ERROR,
        "this test file throws at the top level",
    )
    assert by_id[f"{SPACE}::file with a space runs"].status is Status.PASSED
    passed = [r for r in results if r.status is Status.PASSED]
    assert len(passed) == 28
    assert all(r.path in (REGEX, SAME_A, SAME_B, DUP, SPACE) for r in passed)


def test_parse_reports_only_the_wanted_tests_of_a_narrowed_run(tmp_path: Path) -> None:
    shutil.copy(DATA / "run-narrowed.json", tmp_path / "jest-1.json")
    _manifest(
        tmp_path,
        1,
        {
            REGEX: ["fails on purpose", "skipped in source", "todo: write this test"],
            SAME_A: ["x"],
            DUP: ["twice"],
            THROWS: ["defined before the throw"],
        },
    )
    results = RUNNER.parse(spec=SPEC, report_dir=tmp_path, outcome=Outcome(exit_code=1))
    assert results is not None
    statuses = {r.id: r.status for r in results}
    assert statuses == {
        f"{REGEX}::fails on purpose": Status.FAILED,
        f"{REGEX}::skipped in source": Status.SKIPPED,
        f"{REGEX}::todo: write this test": Status.SKIPPED,
        f"{SAME_A}::x": Status.PASSED,
        f"{DUP}::twice": Status.PASSED,
        f"{DUP}::twice::#2": Status.PASSED,
        f"{THROWS}::defined before the throw": Status.ERROR,
    }
    throws = _by_id(results)[f"{THROWS}::defined before the throw"]
    assert throws.message == "this test file throws at the top level"


def test_parse_keeps_duplicate_names_apart(tmp_path: Path) -> None:
    data = json.loads((DATA / "run-all.json").read_text(encoding="utf-8"))
    dup = next(f for f in data["testResults"] if f["name"].endswith(DUP))
    twice = [a for a in dup["assertionResults"] if a["title"] == "twice"]
    twice[1]["status"] = "failed"
    twice[1]["failureMessages"] = ["Error: second twice broke\n    at x.js:1"]
    twice[0]["duration"], twice[1]["duration"] = 5, 7
    (tmp_path / "jest-1.json").write_text(json.dumps(data), encoding="utf-8")
    results = RUNNER.parse(spec=SPEC, report_dir=tmp_path, outcome=Outcome(exit_code=1))
    assert results is not None
    first, second = _by_id(results)[f"{DUP}::twice"], _by_id(results)[f"{DUP}::twice::#2"]
    assert (first.status, first.occurrence, first.message) == (Status.PASSED, 0, "")
    assert first.seconds == pytest.approx(0.005)
    assert (second.status, second.occurrence) == (Status.FAILED, 1)
    assert second.message == "Error: second twice broke"
    assert second.seconds == pytest.approx(0.007)


def test_parse_reports_only_the_selected_occurrences(tmp_path: Path) -> None:
    # A selection holding the second "twice" alone: Jest runs both, dagpar reports the second.
    shutil.copy(DATA / "run-all.json", tmp_path / "jest-1.json")
    selection = Selection(items=((DUP,),), tests=(TestCase(DUP, "twice", 1),))
    (command,) = RUNNER.command(spec=SPEC, selection=selection)
    for name, text in command.files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    results = RUNNER.parse(spec=SPEC, report_dir=tmp_path, outcome=Outcome(exit_code=0))
    results = [r for r in results if r.path == DUP]  # the report holds other files too
    assert [(r.id, r.status) for r in results] == [(f"{DUP}::twice::#2", Status.PASSED)]
    # An occurrence the report does not have (removed since the listing) is an error.
    selection = Selection(items=((DUP,),), tests=(TestCase(DUP, "twice", 2),))
    (command,) = RUNNER.command(spec=SPEC, selection=selection)
    (tmp_path / "jest-1.selection.json").write_text(
        command.files["jest-1.selection.json"], encoding="utf-8"
    )
    results = RUNNER.parse(spec=SPEC, report_dir=tmp_path, outcome=Outcome(exit_code=0))
    results = [r for r in results if r.path == DUP]
    assert [(r.id, r.status) for r in results] == [(f"{DUP}::twice::#3", Status.ERROR)]


def test_parse_passing_tests_of_a_failed_file_are_errors(tmp_path: Path) -> None:
    data = json.loads((DATA / "run-all.json").read_text(encoding="utf-8"))
    same_a = next(f for f in data["testResults"] if f["name"].endswith(SAME_A))
    same_a["status"] = "failed"
    same_a["message"] = "  ● Test suite failed to run\n\n    late unhandled rejection\n"
    (tmp_path / "jest-1.json").write_text(json.dumps(data), encoding="utf-8")
    results = RUNNER.parse(spec=SPEC, report_dir=tmp_path, outcome=Outcome(exit_code=1))
    assert results is not None
    mine = [r for r in results if r.path == SAME_A]
    assert {(r.status, r.message) for r in mine} == {(Status.ERROR, "late unhandled rejection")}
    assert len(mine) == 3


@pytest.mark.parametrize(
    "text",
    ['{"numFailedTestSuites": 0, "testRes', "[]", '{"testResults": [{"nom": 1}]}', "\xff"],
)
def test_parse_a_malformed_report_gives_errors_not_exceptions(tmp_path: Path, text: str) -> None:
    (tmp_path / "jest-1.json").write_text(text, encoding="utf-8", errors="surrogateescape")
    _manifest(tmp_path, 1, {SAME_A: ["x"], REGEX: None})
    results = RUNNER.parse(
        spec=SPEC, report_dir=tmp_path, outcome=Outcome(exit_code=1, stderr="boom\nJest died")
    )
    assert results is not None
    assert {r.id for r in results} == {f"{SAME_A}::x", f"{REGEX}::{jest.SUITE_FAILED}"}
    for result in results:
        assert result.status is Status.ERROR
        assert result.message.startswith("Jest's report jest-1.json is unreadable")
        assert "Jest died" in result.details


def test_parse_a_missing_report_gives_errors(tmp_path: Path) -> None:
    _manifest(tmp_path, 2, {SAME_B: ["y"], BROKEN: None})
    crashed = Outcome(exit_code=1, stderr="● Validation Error:\n\n  Unknown option bogus\n")
    results = RUNNER.parse(spec=SPEC, report_dir=tmp_path, outcome=crashed)
    assert results is not None
    assert [(r.id, r.status) for r in results] == [
        (f"{SAME_B}::y", Status.ERROR),
        (f"{BROKEN}::{jest.SUITE_FAILED}", Status.ERROR),
    ]
    assert results[0].message == "Jest wrote no report jest-2.json (exit 1): Unknown option bogus"
    assert "Validation Error" in results[0].details


def test_parse_a_file_jest_did_not_run_gives_errors(tmp_path: Path) -> None:
    shutil.copy(DATA / "run-narrowed.json", tmp_path / "jest-1.json")
    _manifest(tmp_path, 1, {SAME_A: ["x"], "__tests__/gone.test.js": ["x"]})
    results = RUNNER.parse(spec=SPEC, report_dir=tmp_path, outcome=Outcome(exit_code=1))
    assert results is not None
    gone = _by_id(results)["__tests__/gone.test.js::x"]
    assert gone.status is Status.ERROR and "did not run this file" in gone.message


def test_parse_maps_container_paths_through_the_selection(tmp_path: Path) -> None:
    text = (DATA / "run-narrowed.json").read_text(encoding="utf-8")
    (tmp_path / "jest-1.json").write_text(
        text.replace("/workspace/web/", "/mnt/src/web/"), encoding="utf-8"
    )
    _manifest(tmp_path, 1, {SAME_A: ["x"]})
    results = RUNNER.parse(spec=SPEC, report_dir=tmp_path, outcome=Outcome(exit_code=1))
    assert results is not None
    assert [(r.id, r.status) for r in results if r.path == SAME_A] == [
        (f"{SAME_A}::x", Status.PASSED)
    ]


def _subset(recording: str, *paths: str) -> str:
    """A recorded report cut down to the files *paths*, as a run of just those files."""
    data = json.loads((DATA / recording).read_text(encoding="utf-8"))
    data["testResults"] = [f for f in data["testResults"] if f["name"].endswith(paths)]
    return json.dumps(data)


def test_parse_drops_a_case_variant_the_name_filter_could_not_exclude(tmp_path: Path) -> None:
    data = json.loads(_subset("run-all.json", SAME_A))
    x = next(a for a in data["testResults"][0]["assertionResults"] if a["title"] == "x")
    data["testResults"][0]["assertionResults"].append({**x, "title": "X", "fullName": "X"})
    (tmp_path / "jest-1.json").write_text(json.dumps(data), encoding="utf-8")
    _manifest(tmp_path, 1, {SAME_A: ["X"]})
    results = RUNNER.parse(spec=SPEC, report_dir=tmp_path, outcome=Outcome(exit_code=0))
    assert results is not None
    assert [(r.id, r.status) for r in results] == [(f"{SAME_A}::X", Status.PASSED)]


def test_collect_maps_container_paths_to_files_on_the_host(tmp_path: Path) -> None:
    for path in (SAME_A, SAME_B, "web/__tests__/same-a.test.js"):
        (tmp_path / "web" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "web" / path).touch()
    stdout = _subset("list.json", SAME_A, SAME_B).replace("/workspace/web/", "/app/web/")
    spec = RunnerSpec(name="jest", workspace=tmp_path, source="web", command=("jest",))
    tests = RUNNER.collect(spec=spec, host=FakeRunnerHost(Outcome(exit_code=0, stdout=stdout)))
    assert tests is not None
    assert {t.path for t in tests} == {SAME_A, SAME_B}


def test_parse_reads_every_report_of_the_slice(tmp_path: Path) -> None:
    (tmp_path / "jest-1.json").write_text(_subset("run-narrowed.json", SAME_A), encoding="utf-8")
    _manifest(tmp_path, 1, {SAME_A: ["x"]})
    (tmp_path / "jest-10.json").write_text(_subset("run-all.json", SAME_B, SPACE), "utf-8")
    _manifest(tmp_path, 10, {SAME_B: ["y"], SPACE: None})
    results = RUNNER.parse(spec=SPEC, report_dir=tmp_path, outcome=Outcome(exit_code=0))
    assert results is not None
    assert sorted(r.id for r in results) == sorted(
        [
            f"{SAME_A}::x",
            f"{SAME_B}::y",
            f"{SPACE}::file with a space runs",
            f"{SPACE}::file with a space tab\there",
        ]
    )


# --------------------------------------------------------------------------------------------
# registration, detection, other runners
# --------------------------------------------------------------------------------------------


def test_registers_the_jest_toolchain() -> None:
    registry = ToolchainRegistry()
    jest.dagpar_register_toolchains(registry=registry)
    assert registry.get("jest") == "dagpar_toolchains.jest"


def test_registers_one_runner_named_jest(tmp_path: Path) -> None:
    # dagpar asks a runner about its own name only: the plugin answers for no other runner.
    registry = RunnerRegistry()
    jest.dagpar_register_runners(registry=registry)
    assert registry.names() == ["jest"]
    runner = registry.get("jest")
    assert isinstance(runner, jest.JestRunner)
    assert not runner.has_subtests
    spec = RunnerSpec(name="jest", workspace=tmp_path)
    assert not runner.can_hand_over(spec)
    # Progress: one byte per finished test in each run's progress file.
    assert runner.progress(spec, tmp_path) == 0
    (tmp_path / "jest-1.progress").write_text("...")
    (tmp_path / "jest-2.progress").write_text(".")
    assert runner.progress(spec, tmp_path) == 4
    assert runner.progress(spec, tmp_path / "missing") == 0


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_detects_a_jest_project_in_a_subdirectory(tmp_path: Path) -> None:
    _write(tmp_path / "web" / "package.json", '{"devDependencies": {"jest": "^29"}}')
    _write(tmp_path / "api" / "package.json", '{"dependencies": {"express": "^4"}}')
    _write(tmp_path / "node_modules" / "x" / "package.json", '{"jest": {}}')
    assert jest.dagpar_detect_toolchains(workspace=tmp_path) == [
        {"instance": "jest", "use": "jest", "source": "web", "why": "web/package.json"}
    ]


def test_detects_every_kind_of_jest_project_with_unique_names(tmp_path: Path) -> None:
    _write(tmp_path / "package.json", '{"jest": {"testEnvironment": "node"}}')
    _write(tmp_path / "Web App" / "jest.config.ts", "export default {};")
    _write(tmp_path / "web-app" / "package.json", '{"dependencies": {"jest": "29"}}')
    _write(tmp_path / "broken" / "package.json", "{not json")
    _write(tmp_path / ".hidden" / "jest.config.js", "")
    entries = jest.dagpar_detect_toolchains(workspace=tmp_path)
    assert entries is not None
    assert [(e["instance"], e["source"], e["why"]) for e in entries] == [
        ("jest", ".", "package.json"),
        ("jest-web-app", "Web App", "Web App/jest.config.ts"),
        ("jest-web-app-2", "web-app", "web-app/package.json"),
    ]
    assert {e["use"] for e in entries} == {"jest"}


def test_detects_nothing_without_jest(tmp_path: Path) -> None:
    _write(tmp_path / "package.json", '{"devDependencies": {"mocha": "^10"}}')
    assert jest.dagpar_detect_toolchains(workspace=tmp_path) == []


def test_parse_reads_no_report_through_a_planted_link(tmp_path: Path) -> None:
    # The report directory is the container's to write: a link there points at a host file.
    host = tmp_path / "host.json"
    shutil.copy(DATA / "run-all.json", host)
    report_dir = tmp_path / "reports"
    report_dir.mkdir()
    (report_dir / "jest-1.json").symlink_to(host)
    (result,) = RUNNER.parse(spec=SPEC, report_dir=report_dir, outcome=Outcome(exit_code=0)) or []
    assert result.status is Status.ERROR
    assert result.message == (
        f"Jest's report jest-1.json is unreadable: {report_dir / 'jest-1.json'} is a symbolic "
        "link, not a regular file; dagpar does not follow it"
    )
