"""The Go runner plugin against the real ``go`` on the hostile fixture module.

Each selection goes through the plugin as the engine drives it: collect → commands → run (the
``{report_dir}`` placeholder substituted, ``files`` written, ``stdout_file`` captured, each command
a subprocess in the source directory) → parse. The tests go itself ran are read from its own
``-json`` events, and the expected set is computed here from ``go test -list`` and the
selection, independently of the plugin: the contract is that these sets are equal.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dagpar_plugins import go

from dagpar_cli import (
    Outcome,
    RunnerSpec,
    Selection,
    Status,
    TestCase,
    TestResult,
)
from dagpar_cli.testing import LocalRunnerHost, run_runner_commands

pytestmark = pytest.mark.go

PROJECT = Path(__file__).resolve().parents[1] / "data" / "projects" / "go-hostile"
MODULE = "example.com/hostile"
#: Packages whose test binary builds and runs every test it lists.
HEALTHY = (".", "ext", "failing", "names", "store", "store/internal/deep")
GO_ENV = {"GOPROXY": "off", "GOTOOLCHAIN": "local", "GOFLAGS": ""}


def _go(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["go", *args],
        cwd=PROJECT,
        env={**os.environ, **GO_ENV},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def listing() -> dict[str, list[str]]:
    """``go test -list`` per package, benchmarks left out (they never run without -bench)."""
    listed: dict[str, list[str]] = {}
    for package in (*HEALTHY, "crash"):
        proc = _go("test", "-list", ".*", "." if package == "." else f"./{package}")
        assert proc.returncode == 0, proc.stderr
        names = [
            line
            for line in proc.stdout.splitlines()
            if line and not line.startswith(("ok ", "ok\t", "Benchmark"))
        ]
        listed[package] = names
    return listed


@pytest.fixture(scope="module")
def spec() -> RunnerSpec:
    return RunnerSpec(name="go", workspace=PROJECT)


@dataclass
class Run:
    """What one selection did."""

    results: list[TestResult]
    #: (package dir, test name as go reports it) for every "run" event.
    ran: set[tuple[str, str]] = field(default_factory=set)
    commands: int = 0

    @property
    def ran_top(self) -> set[tuple[str, str]]:
        return {(p, n) for p, n in self.ran if "/" not in n}

    def by_id(self) -> dict[str, TestResult]:
        return {r.id: r for r in self.results}


def _dir_of(import_path: str) -> str:
    return "." if import_path == MODULE else import_path.removeprefix(MODULE + "/")


def run_selection(
    spec: RunnerSpec, selection: Selection, report_dir: Path, *, max_chars: int | None = None
) -> Run:
    """Compile, run and parse *selection* the way the engine does on the local executor."""
    kwargs = {} if max_chars is None else {"max_chars": max_chars}
    commands = go.compile_commands(spec, selection, **kwargs)
    report_dir.mkdir(parents=True)
    assert all(command.stdout_file is not None for command in commands)
    run = run_runner_commands(commands, spec, report_dir, timeout=300)
    results = go.parse_reports(spec, report_dir, run.combined)
    ran: set[tuple[str, str]] = set()
    for command in commands:
        assert command.stdout_file is not None
        for line in (report_dir / command.stdout_file).read_text().splitlines():
            if line.startswith("{"):
                event = json.loads(line)
                if event.get("Action") == "run":
                    ran.add((_dir_of(event["Package"]), event["Test"]))
    return Run(results=results, ran=ran, commands=len(commands))


# A selection: items (package, or package + test name parts), or exact tests (a narrowed
# filter), and the go names of subtests it must run (what t.Run's rewrite makes of them).
@dataclass(frozen=True)
class Case:
    id: str
    items: tuple[tuple[str, ...], ...] = ()
    tests: tuple[tuple[str, str], ...] | None = None
    subtests: tuple[tuple[str, str], ...] = ()
    min_commands: int = 1

    def selection(self) -> Selection:
        tests = None if self.tests is None else tuple(TestCase(p, n) for p, n in self.tests)
        return Selection(items=self.items, tests=tests)

    def selected(self) -> list[tuple[str, str | None]]:
        """(package, name) pairs; name None for a whole package."""
        if self.tests is not None:
            return [(p, n) for p, n in self.tests]
        return [(i[0], "/".join(i[1:]) if len(i) > 1 else None) for i in self.items]


CASES = [
    Case("root-package", items=((".",),)),
    Case("store-package", items=(("store",),)),
    Case("nested-package", items=(("store/internal/deep",),)),
    Case("external-test-package", items=(("ext",),)),
    Case("every-healthy-package", items=tuple((p,) for p in HEALTHY)),
    Case("prefix-TestPut-alone", items=(("store", "TestPut"),)),
    Case("prefix-Test-alone", items=(("store", "Test"),)),
    Case("prefix-siblings", items=(("store", "TestPut2"), ("store", "TestPutMany"))),
    Case("unicode-top-level", items=(("names", "TestÜber"),)),
    Case("example-only", items=(("ext", "ExampleDouble"),)),
    Case("fuzz-target-only", items=((".", "FuzzReverse"),)),
    Case("external-test-only", items=(("ext", "TestExternal"),)),
    Case(
        "same-name-different-packages",
        items=(("store", "TestGet"), ("ext", "TestPut")),
        min_commands=2,
    ),
    Case(
        "same-selection-two-packages",
        tests=(("store", "TestPut"), ("ext", "TestPut")),
    ),
    Case(
        "whole-package-and-named-test",
        items=(("names",), ("store", "TestPut")),
        min_commands=2,
    ),
    Case(
        "subtest-with-space",
        items=(("names", "TestSubtests", "with space"),),
        subtests=(("names", "TestSubtests/with_space"),),
    ),
    Case(
        "subtest-regexp-metacharacters",
        tests=(("names", "TestSubtests/a+b (c)"), ("names", "TestSubtests/[x]|y$")),
        subtests=(("names", "TestSubtests/a+b_(c)"), ("names", "TestSubtests/[x]|y$")),
    ),
    Case(
        "subtest-unicode",
        tests=(("names", "TestSubtests/ünïcödé ✓"),),
        subtests=(("names", "TestSubtests/ünïcödé_✓"),),
    ),
    Case(
        "subtest-more-metacharacters",
        tests=(
            ("names", "TestSubtests/dot.star*"),
            ("names", "TestSubtests/^anchored$"),
            ("names", "TestSubtests/back\\slash"),
            ("names", "TestSubtests/{brace}?"),
        ),
        subtests=(
            ("names", "TestSubtests/dot.star*"),
            ("names", "TestSubtests/^anchored$"),
            ("names", "TestSubtests/back\\slash"),
            ("names", "TestSubtests/{brace}?"),
        ),
    ),
    Case(
        "subtest-with-slash",
        tests=(("names", "TestSubtests/slash/inside"),),
        # One subtest whose name holds a "/": go splits its -run levels at that "/" too.
        subtests=(("names", "TestSubtests/slash/inside"),),
    ),
    Case(
        "subtest-tab-and-duplicate",
        tests=(("names", "TestSubtests/tab\there"), ("names", "TestSubtests/dup#01")),
        subtests=(("names", "TestSubtests/tab_here"), ("names", "TestSubtests/dup#01")),
    ),
    Case(
        "same-subtest-name-under-two-parents",
        tests=(("names", "TestSubtests2/with space"),),
        subtests=(("names", "TestSubtests2/with_space"),),
    ),
    Case(
        "table-subtest-and-whole-test",
        tests=(("store", "TestGet/missing key"), ("store", "TestPut")),
        subtests=(("store", "TestGet/missing_key"),),
    ),
    Case(
        "nested-subtest-two-levels",
        tests=(("store/internal/deep", "TestDeeper/level one/level two"),),
        subtests=(("store/internal/deep", "TestDeeper/level_one/level_two"),),
    ),
    Case(
        "parallel-subtest",
        tests=(("names", "TestParallel/two"),),
        subtests=(("names", "TestParallel/two"),),
    ),
    Case("failing-package", items=(("failing",),)),
    Case("skipped-test", items=(("store", "TestSkipped"),)),
]


def _expected_top(case: Case, listing: dict[str, list[str]]) -> set[tuple[str, str]]:
    """The top-level tests go must run, from ``go test -list`` and the selection alone."""
    expected: set[tuple[str, str]] = set()
    for package, name in case.selected():
        if name is None:
            expected |= {(package, n) for n in listing[package]}
        else:
            top = name.split("/")[0]
            assert top in listing[package], f"{top} is not a test of {package}"
            expected.add((package, top))
    return expected


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_go_runs_exactly_the_selection(
    case: Case, spec: RunnerSpec, listing: dict[str, list[str]], tmp_path: Path
) -> None:
    run = run_selection(spec, case.selection(), tmp_path / "report")

    assert run.commands >= case.min_commands
    expected_top = _expected_top(case, listing)
    assert run.ran_top == expected_top
    # Subtests: exactly the named ones ran below a parent that was selected only through them.
    parents_by_subtest = {(p, n.split("/")[0]) for p, n in case.subtests}
    whole_parents = {(p, n) for p, n in case.selected() if n is not None and "/" not in n}
    for package, parent in parents_by_subtest - whole_parents:
        ran_below = {n for p, n in run.ran if p == package and n.startswith(parent + "/")}
        wanted = {n for p, n in case.subtests if p == package}
        assert wanted <= ran_below
        # Besides them only their ancestors (which go must enter) and descendants ran.
        for name in ran_below:
            assert any(
                name == w or name.startswith(w + "/") or w.startswith(name + "/") for w in wanted
            ), name
    # The results name what was selected, in the selection's own spelling.
    reported = {(r.path, r.name) for r in run.results}
    wanted_results: set[tuple[str, str]] = set()
    for package, selected in case.selected():
        if selected is None:
            wanted_results |= {(package, n) for n in listing[package]}
        else:
            wanted_results.add((package, selected))
    assert reported == wanted_results
    assert len(run.results) == len(reported)
    assert all(r.status is not Status.ERROR for r in run.results)


def test_battery_is_large_enough() -> None:
    assert len(CASES) >= 20


def test_collect_lists_what_go_test_list_lists(
    spec: RunnerSpec, listing: dict[str, list[str]]
) -> None:
    tests = go.collect_tests(spec, LocalRunnerHost(PROJECT))
    by_package: dict[str, list[str]] = {}
    for test in tests:
        by_package.setdefault(test.path, []).append(test.name)
    for package, names in listing.items():
        assert sorted(by_package[package]) == sorted(names), package
    # The broken package still lists its tests; packages without tests and testdata do not.
    assert by_package["broken"] == ["TestBrokenA", "TestBrokenB", "TestNotWindows"]
    assert set(by_package) == {*listing, "broken"}


def test_collect_then_run_everything_reports_every_collected_test(
    spec: RunnerSpec, tmp_path: Path
) -> None:
    tests = go.collect_tests(spec, LocalRunnerHost(PROJECT))
    items = tuple(dict.fromkeys((t.path,) for t in tests))
    run = run_selection(spec, Selection(items=items), tmp_path / "report")
    assert {(r.path, r.name) for r in run.results} == {(t.path, t.name) for t in tests}


def test_failures_carry_the_failing_line(spec: RunnerSpec, tmp_path: Path) -> None:
    run = run_selection(spec, Selection(items=(("failing",),)), tmp_path / "report")
    results = run.by_id()
    assert results["failing::TestPasses"].status is Status.PASSED
    fails = results["failing::TestFails"]
    assert fails.status is Status.FAILED
    assert fails.message == "failing_test.go:7: want 1, got 2"
    assert "some context first" in fails.details
    sub = results["failing::TestFailsInSubtest"]
    assert sub.status is Status.FAILED
    assert sub.message == "TestFailsInSubtest/bad_one: failing_test.go:14: subtest broke"


def test_failing_subtest_selected_alone(spec: RunnerSpec, tmp_path: Path) -> None:
    selection = Selection(items=(), tests=(TestCase("failing", "TestFailsInSubtest/bad one"),))
    run = run_selection(spec, selection, tmp_path / "report")
    assert [(r.name, r.status) for r in run.results] == [
        ("TestFailsInSubtest/bad one", Status.FAILED)
    ]
    assert ("failing", "TestFailsInSubtest/good") not in run.ran


def test_skip_reason_is_the_message(spec: RunnerSpec, tmp_path: Path) -> None:
    run = run_selection(spec, Selection(items=(("store", "TestSkipped"),)), tmp_path / "report")
    (result,) = run.results
    assert (result.status, result.message) == (Status.SKIPPED, "not on this platform")


def test_build_failure_is_an_error_of_every_selected_test(spec: RunnerSpec, tmp_path: Path) -> None:
    selection = Selection(items=(("broken",), ("store", "TestPut")))
    run = run_selection(spec, selection, tmp_path / "report")
    results = run.by_id()
    assert results["store::TestPut"].status is Status.PASSED
    for name in ("TestBrokenA", "TestBrokenB", "TestNotWindows"):
        result = results[f"broken::{name}"]
        assert result.status is Status.ERROR
        assert result.message.startswith("build failed: broken/broken.go:4:")
        assert 'cannot use "forty-two"' in result.details
    # Test files this platform does not build (broken_windows_test.go, `//go:build ignore`)
    # are not blamed.
    assert len(run.results) == 4


def test_build_failure_of_one_named_test(spec: RunnerSpec, tmp_path: Path) -> None:
    selection = Selection(items=(), tests=(TestCase("broken", "TestBrokenB"),))
    run = run_selection(spec, selection, tmp_path / "report")
    assert [(r.name, r.status) for r in run.results] == [("TestBrokenB", Status.ERROR)]


def test_panic_fails_its_test_and_errors_the_tests_it_prevented(
    spec: RunnerSpec, tmp_path: Path
) -> None:
    run = run_selection(spec, Selection(items=(("crash",),)), tmp_path / "report")
    results = run.by_id()
    assert results["crash::TestBeforePanic"].status is Status.PASSED
    panicked = results["crash::TestPanics"]
    assert panicked.status is Status.FAILED
    assert panicked.message.startswith("panic: assignment to entry in nil map")
    after = results["crash::TestAfterPanic"]
    assert after.status is Status.ERROR
    assert after.message.startswith("did not run")
    assert ("crash", "TestAfterPanic") not in run.ran


def test_batched_selection_still_runs_exactly_the_selection(
    spec: RunnerSpec, listing: dict[str, list[str]], tmp_path: Path
) -> None:
    tests = tuple(TestCase(p, n) for p in HEALTHY for n in listing[p] if p != "failing")
    run = run_selection(spec, Selection(items=(), tests=tests), tmp_path / "report", max_chars=200)
    assert run.commands > 3
    assert run.ran_top == {(t.path, t.name) for t in tests}
    assert {(r.path, r.name) for r in run.results} == {(t.path, t.name) for t in tests}
    assert all(r.status in (Status.PASSED, Status.SKIPPED) for r in run.results)


def test_missing_go_binary_is_a_one_line_execution_error(tmp_path: Path) -> None:
    from dagpar_cli.errors import ExecutionError

    spec = RunnerSpec(name="go", workspace=PROJECT, command=("no-such-go-binary",))
    with pytest.raises(ExecutionError) as info:
        go.collect_tests(spec, LocalRunnerHost(PROJECT))
    assert "\n" not in str(info.value)
    assert "runner:" in str(info.value)


def test_workspace_without_go_mod_says_how_to_fix_it(tmp_path: Path) -> None:
    from dagpar_cli.errors import ExecutionError

    (tmp_path / "a_test.go").write_text("package a\n")
    spec = RunnerSpec(name="go", workspace=tmp_path)
    with pytest.raises(ExecutionError, match="go mod init"):
        go.collect_tests(spec, LocalRunnerHost(tmp_path))


def test_the_go_runner_is_found_through_the_plugin_manager(tmp_path: Path) -> None:
    from dagpar_cli.pluginmanager import get_plugin_manager
    from dagpar_cli.registry import build_runner_registry, toolchain_registry

    pm = get_plugin_manager()
    hook = pm.hook
    spec = RunnerSpec(name="go", workspace=PROJECT)
    assert toolchain_registry(pm).get("go") == "dagpar_toolchains.go"
    detected = [e for entries in hook.dagpar_detect_toolchains(workspace=PROJECT) for e in entries]
    assert {"instance": "go", "use": "go", "source": ".", "why": "go.mod"} in detected
    runner = build_runner_registry(pm).get("go")
    tests = runner.collect(spec, LocalRunnerHost(PROJECT))
    assert TestCase("store", "TestPutMany") in tests
    selection = Selection(items=(("store", "TestPutMany"),))
    commands = runner.command(spec, selection)
    report_dir = tmp_path / "report"
    run_runner_commands(commands, spec, report_dir, check=False)
    results = runner.parse(spec, report_dir, Outcome(exit_code=0))
    assert [(r.path, r.name, r.status) for r in results] == [
        ("store", "TestPutMany", Status.PASSED)
    ]


def test_a_source_below_the_workspace(tmp_path: Path) -> None:
    spec = RunnerSpec(name="go", workspace=PROJECT.parent, source=PROJECT.name)
    tests = go.collect_tests(spec, LocalRunnerHost(spec.source_dir))
    assert TestCase("store/internal/deep", "TestDeep") in tests
    selection = Selection(items=(("store/internal/deep",), (".", "TestRoot")))
    run = run_selection(spec, selection, tmp_path / "report")
    assert {(r.path, r.name, r.status) for r in run.results} == {
        ("store/internal/deep", "TestDeep", Status.PASSED),
        ("store/internal/deep", "TestDeeper", Status.PASSED),
        (".", "TestRoot", Status.PASSED),
    }
