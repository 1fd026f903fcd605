"""The Go runner plugin's stages on their own: recorded ``go list`` / ``go test -json`` output,
no go binary.

The recordings under ``tests/data/go/`` come from go 1.19 on ``tests/data/projects/go-hostile``
(``list.json`` with its directories rewritten to ``/src``, as a container would see them;
``timeout.json`` from a one-test module run with ``-timeout 1s``).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from dagpar_plugins import go
from dagpar_plugins.go.report import (
    PACKAGE_PLACEHOLDER,
    compiler_output,
    read_events,
    rewrite_subtest_name,
)
from dagpar_plugins.go.source import builds_here, is_test_name, scan_test_source

from dagpar_cli import (
    ExecutionError,
    Outcome,
    RunnerCommand,
    RunnerRegistry,
    RunnerSpec,
    Selection,
    Status,
    TestCase,
    TestResult,
    ToolchainRegistry,
)
from dagpar_cli.testing import FakeRunnerHost

DATA = Path(__file__).resolve().parents[3] / "data"
RECORDED = DATA / "go"
PROJECT = DATA / "projects" / "go-hostile"
MODULE = "example.com/hostile"
RUNNER = go.GoRunner()


@pytest.fixture
def spec() -> RunnerSpec:
    return RunnerSpec(name="go", workspace=PROJECT)


# ------------------------------------------------------------------------------------------
# registration, detection, hook dispatch
# ------------------------------------------------------------------------------------------


def test_registers_the_go_toolchain() -> None:
    registry = ToolchainRegistry()
    go.dagpar_register_toolchains(registry)
    assert registry.get("go") == "dagpar_toolchains.go"


def test_is_installed_under_the_dagpar_entry_point_group() -> None:
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="dagpar") if e.name == "go"]
    assert entry.load() is go


def test_detects_root_and_direct_subdirectory_modules(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module a\n")
    for name in ("api", "Web Server", "node_modules", ".hidden"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "go.mod").write_text("module b\n")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "go.mod").write_text("module c\n")
    assert go.dagpar_detect_toolchains(tmp_path) == [
        {"instance": "go", "use": "go", "source": ".", "why": "go.mod"},
        {
            "instance": "go-web-server",
            "use": "go",
            "source": "Web Server",
            "why": "Web Server/go.mod",
        },
        {"instance": "go-api", "use": "go", "source": "api", "why": "api/go.mod"},
    ]


def test_a_lone_module_in_a_subdirectory_is_instance_go(tmp_path: Path) -> None:
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "go.mod").write_text("module b\n")
    assert go.dagpar_detect_toolchains(tmp_path) == [
        {"instance": "go", "use": "go", "source": "backend", "why": "backend/go.mod"}
    ]


def test_detects_nothing_without_go_mod(tmp_path: Path) -> None:
    assert go.dagpar_detect_toolchains(tmp_path) == []


def test_registers_one_runner_named_go_that_has_subtests() -> None:
    # dagpar asks a runner about its own name only: the plugin answers for no other runner.
    registry = RunnerRegistry()
    go.dagpar_register_runners(registry=registry)
    assert registry.names() == ["go"]
    runner = registry.get("go")
    assert isinstance(runner, go.GoRunner)
    assert runner.has_subtests
    assert not runner.can_hand_over(RunnerSpec(name="go", workspace=PROJECT))


# ------------------------------------------------------------------------------------------
# collect
# ------------------------------------------------------------------------------------------


def test_collect_reads_packages_from_go_list_and_tests_from_sources(spec: RunnerSpec) -> None:
    host = FakeRunnerHost(Outcome(exit_code=0, stdout=(RECORDED / "list.json").read_text()))
    tests = RUNNER.collect(spec=spec, host=host)
    assert tests is not None
    argv, env = host.calls[0].argv, host.calls[0].env
    assert argv == ["go", "list", "-e", "-json", ".", "./..."]
    assert env["GOTOOLCHAIN"] == "local"
    by_package: dict[str, list[str]] = {}
    for test in tests:
        by_package.setdefault(test.path, []).append(test.name)
    # Paths are relative to the source as go saw it (/src in the recording), not to the host.
    assert by_package == {
        ".": ["TestRoot", "FuzzReverse", "ExampleReverse"],
        # Platform-specific and tagged-out test files are not listed (go list leaves them out).
        "broken": ["TestBrokenA", "TestBrokenB", "TestNotWindows"],
        "crash": ["TestBeforePanic", "TestPanics", "TestAfterPanic"],
        "ext": ["TestInternal", "TestPut", "TestGet", "TestExternal", "ExampleDouble"],
        "failing": ["TestFails", "TestPasses", "TestFailsInSubtest"],
        "names": ["TestSubtests", "TestÜber", "TestParallel", "TestSubtests2"],
        "store": ["Test", "TestPut", "TestPutMany", "TestPut2", "TestGet", "TestSkipped"],
        "store/internal/deep": ["TestDeep", "TestDeeper"],
    }


def test_collect_uses_the_runner_override(spec: RunnerSpec) -> None:
    custom = RunnerSpec(name="go", workspace=PROJECT, command=("/opt/go1.22/bin/go",))
    host = FakeRunnerHost(Outcome(exit_code=0, stdout=""))
    assert go.collect_tests(custom, host) == []
    assert host.calls[0].argv[0] == "/opt/go1.22/bin/go"


def test_collect_lists_a_placeholder_for_a_package_that_does_not_load(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    records = [
        {"Dir": "/m", "ImportPath": "ex/m", "Match": ["."], "Error": {"Err": "no Go files"}},
        {
            "Dir": "/m/bad",
            "ImportPath": "ex/m/bad",
            "Match": ["./..."],
            "Error": {"Err": "import cycle not allowed"},
        },
    ]
    host = FakeRunnerHost(Outcome(exit_code=0, stdout="\n".join(json.dumps(r) for r in records)))
    tests = go.collect_tests(RunnerSpec(name="go", workspace=tmp_path), host)
    assert tests == [TestCase("bad", PACKAGE_PLACEHOLDER)]


def test_missing_go_is_an_execution_error_with_the_fix(spec: RunnerSpec) -> None:
    host = FakeRunnerHost(Outcome(exit_code=127, stderr="No such file", not_started=True))
    with pytest.raises(ExecutionError) as info:
        go.collect_tests(spec, host)
    message = str(info.value)
    assert "\n" not in message
    assert "install Go" in message and "runner:" in message


def test_no_go_mod_is_an_execution_error_with_the_fix(spec: RunnerSpec) -> None:
    stderr = (RECORDED / "list-no-go-mod.stderr").read_text()
    with pytest.raises(ExecutionError, match=r"go mod init"):
        go.collect_tests(spec, FakeRunnerHost(Outcome(exit_code=1, stderr=stderr)))


# ------------------------------------------------------------------------------------------
# source scanning
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "prefix", "expected"),
    [
        ("Test", "Test", True),
        ("TestX", "Test", True),
        ("Test_x", "Test", True),
        ("Test2", "Test", True),
        ("TestÜber", "Test", True),
        ("Testing", "Test", False),
        ("Testünïcode", "Test", False),
        ("Example_suffix", "Example", True),
        ("Fuzzy", "Fuzz", False),
    ],
)
def test_test_name_rule(name: str, prefix: str, expected: bool) -> None:
    assert is_test_name(name, prefix) is expected


def test_scanner_ignores_decoys_and_follows_go_doc_for_examples() -> None:
    source = """package p

import (
	"testing"
	. "testing"
	tst "testing"
)

func TestMain(m *testing.M) { m.Run() }

func TestA(t *testing.T) { s := "func TestInString(t *testing.T) {}"; _ = s }
func TestDot(t *T) {}
func TestAlias(t *tst.T) {
	f := func(t *testing.T) {}
	_ = f
}
func (s suite) TestMethod(t *testing.T) {}
func Testlower(t *testing.T) {}
var raw = `
func TestInRaw(t *testing.T) {}
`
var r = '}'
// func TestLineComment(t *testing.T) {}
/* func TestBlockComment(t *testing.T) {} */
func FuzzF(f *testing.F) {}
func BenchmarkB(b *testing.B) {}

func ExampleZ() {
	fmt.Println("z") // Output: z
}

func ExampleA() {
	fmt.Println("a")
	// Unordered output:
	// a
}

func ExampleNoOutput() { fmt.Println("x") }

func ExampleOutputNotLast() {
	// Output: x

	// a later comment group
}

func ExampleWithParams(x int) {
	// Output: x
}

func ExampleBlock() {
	/* output: y */
}
"""
    found = scan_test_source(source)
    assert found.tests == ("TestA", "TestDot", "TestAlias")
    assert found.fuzz == ("FuzzF",)
    assert found.examples == ("ExampleA", "ExampleBlock", "ExampleZ")
    assert found.names == [
        "TestA",
        "TestDot",
        "TestAlias",
        "FuzzF",
        "ExampleA",
        "ExampleBlock",
        "ExampleZ",
    ]


def test_scanner_counts_a_test_main_that_is_a_test() -> None:
    assert scan_test_source("package p\nfunc TestMain(t *testing.T) {}\n").tests == ("TestMain",)


def test_scanner_survives_unterminated_text() -> None:
    found = scan_test_source(
        'package p\nfunc TestA(t *testing.T) {\n s := "open\n}\n/* never closed'
    )
    assert found.tests == ("TestA",)


# ------------------------------------------------------------------------------------------
# command
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("TestPut", "TestPut"),
        ("a+b_(c)", r"a\+b_\(c\)"),
        ("[x]|y$", r"\[x\]\|y\$"),
        ("^a.b*c?{d}", r"\^a\.b\*c\?\{d\}"),
        ("back\\slash", "back\\\\slash"),
        ("ünïcödé_✓", "ünïcödé_✓"),
        ("dup#01", "dup#01"),
    ],
)
def test_quote_meta_escapes_what_go_regexp_escapes(text: str, quoted: str) -> None:
    assert go.quote_meta(text) == quoted


@pytest.mark.parametrize(
    ("part", "rewritten"),
    [
        ("with space", "with_space"),
        ("tab\there", "tab_here"),
        ("ideographic\u3000space", "ideographic_space"),
        ("nul\x00byte", "nul\\x00byte"),
        ("bell\a", "bell\\a"),
        ("ünïcödé ✓", "ünïcödé_✓"),
        ("already_rewritten", "already_rewritten"),
    ],
)
def test_subtest_names_are_rewritten_like_the_testing_package(part: str, rewritten: str) -> None:
    assert rewrite_subtest_name(part) == rewritten
    assert rewrite_subtest_name(rewritten) == rewritten


def test_run_pattern_anchors_every_name_and_level() -> None:
    assert go.run_pattern(["TestA", "TestB"]) == "^(TestA|TestB)$"
    assert go.run_pattern(["TestX/sub name"]) == "^TestX$/^sub_name$"
    assert go.run_pattern(["TestA", "TestX/a+b (c)", "TestY/l 1/l 2"]) == (
        r"^(TestA)$|^TestX$/^a\+b_\(c\)$|^TestY$/^l_1$/^l_2$"
    )


def _argv(command: RunnerCommand) -> list[str]:
    """The command line without the action-graph flag every command has."""
    return [a for a in command.argv if not a.startswith("-debug-actiongraph=")]


def test_whole_packages_share_one_command_without_run(spec: RunnerSpec) -> None:
    (command,) = go.compile_commands(spec, Selection(items=(("store",), (".",), ("a/b",))))
    assert _argv(command) == ["go", "test", "-json", "-count=1", "./store", ".", "./a/b"]
    assert "-debug-actiongraph={report_dir}/go-1.actions.json" in command.argv
    assert command.stdout_file == "go-1.json"
    assert command.ok_exit_codes == frozenset({0, 1, 2})
    assert command.env["GOTOOLCHAIN"] == "local"
    manifest = json.loads(command.files["go-1.selection.json"])
    assert manifest["report"] == "go-1.json"
    assert [p["path"] for p in manifest["packages"]] == ["store", ".", "a/b"]
    assert manifest["packages"][0]["import_path"] == f"{MODULE}/store"
    assert manifest["packages"][1]["import_path"] == MODULE
    assert all(p["tests"] is None for p in manifest["packages"])


def test_packages_with_different_selections_get_different_commands(spec: RunnerSpec) -> None:
    selection = Selection(
        items=(("store", "TestPut"), ("ext", "TestGet"), ("names",), ("deep", "TestPut"))
    )
    commands = go.compile_commands(spec, selection)
    assert [_argv(c)[4:] for c in commands] == [
        ["-run", "^(TestPut)$", "./store", "./deep"],
        ["-run", "^(TestGet)$", "./ext"],
        ["./names"],
    ]
    assert len({c.stdout_file for c in commands}) == 3
    assert len({name for c in commands for name in c.files}) == 3


def test_exact_tests_override_items_and_keep_subtest_names(spec: RunnerSpec) -> None:
    selection = Selection(
        items=(("names",),),
        tests=(TestCase("names", "TestSubtests/with space"), TestCase("names", "TestÜber")),
    )
    (command,) = go.compile_commands(spec, selection)
    assert _argv(command)[4:] == ["-run", "^(TestÜber)$|^TestSubtests$/^with_space$", "./names"]
    manifest = json.loads(command.files["go-1.selection.json"])
    assert manifest["packages"][0]["tests"] == ["TestSubtests/with space", "TestÜber"]


def test_item_selectors_with_several_name_parts_name_a_subtest(spec: RunnerSpec) -> None:
    (command,) = go.compile_commands(spec, Selection(items=(("store", "TestGet", "missing key"),)))
    assert _argv(command)[4:6] == ["-run", "^TestGet$/^missing_key$"]


def test_the_placeholder_selects_the_whole_package(spec: RunnerSpec) -> None:
    selection = Selection(items=(), tests=(TestCase("broken", PACKAGE_PLACEHOLDER),))
    (command,) = go.compile_commands(spec, selection)
    assert _argv(command)[4:] == ["./broken"]


def test_runner_override_and_args(spec: RunnerSpec) -> None:
    custom = RunnerSpec(
        name="go", workspace=PROJECT, command=("go1.22",), args=("-race", "-timeout=5m")
    )
    (command,) = go.compile_commands(custom, Selection(items=(("store", "TestPut"),)))
    assert _argv(command) == [
        "go1.22", "test", "-json", "-count=1", "-run", "^(TestPut)$", "-race", "-timeout=5m",
        "./store",
    ]  # fmt: skip


def test_long_selections_are_batched_under_the_limit(spec: RunnerSpec) -> None:
    tests = tuple(
        TestCase(f"pkg{p:03d}", f"TestCase{n:04d}_with_a_long_name")
        for p in range(2)
        for n in range(400)
    ) + tuple(TestCase(f"whole{p:04d}/sub/dir", PACKAGE_PLACEHOLDER) for p in range(1500))
    commands = go.compile_commands(spec, Selection(items=(), tests=tests), max_chars=5_000)
    assert len(commands) > 10
    for command in commands:
        assert sum(len(a) + 1 for a in command.argv) <= 5_000
    covered: set[tuple[str, str]] = set()
    for command in commands:
        argv = _argv(command)
        packages = [a for a in argv[4:] if a.startswith("./")]
        if "-run" in argv:
            pattern = argv[argv.index("-run") + 1]
            names = re.fullmatch(r"\^\((.*)\)\$", pattern)
            assert names is not None
            covered |= {(p[2:], n) for p in packages for n in names.group(1).split("|")}
        else:
            covered |= {(p[2:], PACKAGE_PLACEHOLDER) for p in packages}
    assert covered == {(t.path, t.name) for t in tests}
    assert len({c.stdout_file for c in commands}) == len(commands)


def test_environment_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOPROXY", raising=False)
    assert go.go_env() == {"GOTOOLCHAIN": "local", "GOPROXY": "off"}
    monkeypatch.setenv("GOPROXY", "https://goproxy.example")
    assert go.go_env()["GOPROXY"] == "https://goproxy.example"


# ------------------------------------------------------------------------------------------
# parse
# ------------------------------------------------------------------------------------------


def _report_dir(
    tmp_path: Path, recording: str, packages: Sequence[tuple[str, list[str] | None]]
) -> Path:
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    shutil.copy(RECORDED / recording, report_dir / "go-1.json")
    manifest = {
        "report": "go-1.json",
        "packages": [
            {"path": p, "import_path": MODULE if p == "." else f"{MODULE}/{p}", "tests": t}
            for p, t in packages
        ],
    }
    (report_dir / "go-1.selection.json").write_text(json.dumps(manifest))
    return report_dir


def _by_id(results: Sequence[TestResult] | None) -> dict[str, TestResult]:
    assert results is not None
    ids = [r.id for r in results]
    assert len(ids) == len(set(ids)), "a test reported twice"
    return {r.id: r for r in results}


ALL_PACKAGES = [".", "broken", "crash", "ext", "failing", "names", "store", "store/internal/deep"]


def test_parse_a_whole_module_run(spec: RunnerSpec, tmp_path: Path) -> None:
    report_dir = _report_dir(tmp_path, "all.json", [(p, None) for p in ALL_PACKAGES])
    stderr = (RECORDED / "all.stderr").read_text()
    results = _by_id(
        RUNNER.parse(spec=spec, report_dir=report_dir, outcome=Outcome(exit_code=2, stderr=stderr))
    )
    statuses = {k: r.status for k, r in results.items()}
    assert statuses == {
        ".::TestRoot": Status.PASSED,
        ".::FuzzReverse": Status.PASSED,
        ".::ExampleReverse": Status.PASSED,
        "broken::TestBrokenA": Status.ERROR,
        "broken::TestBrokenB": Status.ERROR,
        # Listed from the sources because go never listed them: build constraints honoured.
        "broken::TestNotWindows": Status.ERROR,
        "crash::TestBeforePanic": Status.PASSED,
        "crash::TestPanics": Status.FAILED,
        "crash::TestAfterPanic": Status.ERROR,
        "ext::TestInternal": Status.PASSED,
        "ext::TestPut": Status.PASSED,
        "ext::TestGet": Status.PASSED,
        "ext::TestExternal": Status.PASSED,
        "ext::ExampleDouble": Status.PASSED,
        "failing::TestFails": Status.FAILED,
        "failing::TestPasses": Status.PASSED,
        "failing::TestFailsInSubtest": Status.FAILED,
        "names::TestSubtests": Status.PASSED,
        "names::TestÜber": Status.PASSED,
        "names::TestParallel": Status.PASSED,
        "names::TestSubtests2": Status.PASSED,
        "store::Test": Status.PASSED,
        "store::TestPut": Status.PASSED,
        "store::TestPutMany": Status.PASSED,
        "store::TestPut2": Status.PASSED,
        "store::TestGet": Status.PASSED,
        "store::TestSkipped": Status.SKIPPED,
        "store/internal/deep::TestDeep": Status.PASSED,
        "store/internal/deep::TestDeeper": Status.PASSED,
    }
    broken = results["broken::TestBrokenA"]
    assert broken.message == (
        'build failed: broken/broken.go:4:18: cannot use "forty-two" (untyped string constant)'
        " as int value in variable declaration"
    )
    assert broken.details.startswith("# example.com/hostile/broken")
    assert results["failing::TestFails"].message == "failing_test.go:7: want 1, got 2"
    assert "some context first" in results["failing::TestFails"].details
    assert results["failing::TestFailsInSubtest"].message == (
        "TestFailsInSubtest/bad_one: failing_test.go:14: subtest broke"
    )
    assert (
        results["crash::TestPanics"].message == "panic: assignment to entry in nil map [recovered]"
    )
    assert "goroutine" in results["crash::TestPanics"].details
    assert "stopped early (panic: assignment" in results["crash::TestAfterPanic"].message
    assert results["store::TestSkipped"].message == "not on this platform"
    # Passing tests keep their output as stdout, subtests included.
    assert "TestGet/missing_key" in results["store::TestGet"].stdout
    assert results["store::TestGet"].details == ""


def test_parse_names_subtests_as_they_were_selected(spec: RunnerSpec, tmp_path: Path) -> None:
    report_dir = _report_dir(
        tmp_path,
        "subtests.json",
        [
            ("names", ["TestSubtests/with space", "TestSubtests/a+b (c)"]),
            ("store", ["TestGet/missing key"]),
        ],
    )
    results = _by_id(go.parse_reports(spec, report_dir, Outcome(exit_code=0)))
    assert {k: r.status for k, r in results.items()} == {
        "names::TestSubtests/with space": Status.PASSED,
        "names::TestSubtests/a+b (c)": Status.PASSED,
        "store::TestGet/missing key": Status.PASSED,
    }


def test_parse_a_panic_with_a_named_selection(spec: RunnerSpec, tmp_path: Path) -> None:
    report_dir = _report_dir(tmp_path, "crash.json", [("crash", ["TestPanics", "TestAfterPanic"])])
    results = _by_id(go.parse_reports(spec, report_dir, Outcome(exit_code=1)))
    assert results["crash::TestPanics"].status is Status.FAILED
    assert results["crash::TestAfterPanic"].status is Status.ERROR
    assert set(results) == {"crash::TestPanics", "crash::TestAfterPanic"}


def test_parse_a_timeout(tmp_path: Path) -> None:
    module = tmp_path / "slowmod"
    (module / "slow").mkdir(parents=True)
    (module / "go.mod").write_text("module example.com/slow\n\ngo 1.19\n")
    (module / "slow" / "slow_test.go").write_text(
        'package slow\n\nimport "testing"\n\nfunc TestQuick(t *testing.T) {}\n\n'
        "func TestSlow(t *testing.T) {}\n\nfunc TestNeverReached(t *testing.T) {}\n"
    )
    spec = RunnerSpec(name="go", workspace=module)
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    shutil.copy(RECORDED / "timeout.json", report_dir / "go-1.json")
    (report_dir / "go-1.selection.json").write_text(
        json.dumps({"report": "go-1.json", "packages": [{"path": "slow", "tests": None}]})
    )
    results = _by_id(go.parse_reports(spec, report_dir, Outcome(exit_code=1)))
    assert results["slow::TestQuick"].status is Status.PASSED
    slow = results["slow::TestSlow"]
    assert slow.status is Status.ERROR
    assert slow.message == "did not finish: panic: test timed out after 1s"
    assert "about to sleep" in slow.details
    assert results["slow::TestNeverReached"].status is Status.ERROR
    assert results["slow::TestNeverReached"].message.startswith("did not run")


def test_malformed_lines_are_skipped(spec: RunnerSpec, tmp_path: Path) -> None:
    good = (RECORDED / "subtests.json").read_text().splitlines()
    noise = [
        "",
        "not json at all",
        "{truncated",
        "[1, 2, 3]",
        '{"Action": 7, "Package": "example.com/hostile/store"}',
        '{"Action": "pass", "Package": null, "Test": "TestGet"}',
        '{"Action": "pass", "Package": "example.com/hostile/store", "Test": 5}',
        '{"Action": "pass", "Package": "example.com/hostile/store", "Test": "TestX",'
        ' "Elapsed": "x"}',
        '{"Action": "output", "Package": "example.com/hostile/store", "Output": null}',
        "\x00\xff garbage",
    ]
    mixed = (
        "\n".join(line for pair in zip(good, noise * 3, strict=False) for line in pair)
        + "\n{cut off"
    )
    report_dir = _report_dir(tmp_path, "subtests.json", [("store", ["TestGet/missing key"])])
    (report_dir / "go-1.json").write_text(mixed)
    results = _by_id(go.parse_reports(spec, report_dir, Outcome(exit_code=0)))
    assert results["store::TestGet/missing key"].status is Status.PASSED
    # The malformed "TestX" pass has a non-number Elapsed: still read, with 0 seconds.
    assert results["store::TestX"].seconds == 0.0


def test_a_missing_report_is_an_error_per_selected_test(spec: RunnerSpec, tmp_path: Path) -> None:
    report_dir = _report_dir(tmp_path, "subtests.json", [("store", ["TestPut", "TestGet"])])
    (report_dir / "go-1.json").unlink()
    outcome = Outcome(exit_code=1, stderr="go: something broke before any test ran\n")
    results = _by_id(go.parse_reports(spec, report_dir, outcome))
    assert set(results) == {"store::TestPut", "store::TestGet"}
    for result in results.values():
        assert result.status is Status.ERROR
        assert "something broke" in result.message


def test_a_selected_test_that_does_not_exist_is_an_error(spec: RunnerSpec, tmp_path: Path) -> None:
    report_dir = _report_dir(
        tmp_path, "subtests.json", [("store", ["TestGet/missing key", "TestGone"])]
    )
    results = _by_id(go.parse_reports(spec, report_dir, Outcome(exit_code=0)))
    assert results["store::TestGone"].status is Status.ERROR
    assert "no test of that name" in results["store::TestGone"].message


def test_setup_failure_with_build_output_events(spec: RunnerSpec, tmp_path: Path) -> None:
    # The newer form: compiler output as build-output events and FailedBuild on the fail event.
    events = [
        {
            "ImportPath": f"{MODULE}/broken [{MODULE}/broken.test]",
            "Action": "build-output",
            "Output": "# example.com/hostile/broken\nbroken/broken.go:4:18: cannot use\n",
        },
        {
            "Action": "output",
            "Package": f"{MODULE}/broken",
            "Output": f"FAIL\t{MODULE}/broken [build failed]\n",
        },
        {"Action": "fail", "Package": f"{MODULE}/broken", "FailedBuild": f"{MODULE}/broken.test"},
    ]
    report_dir = _report_dir(tmp_path, "subtests.json", [("broken", None)])
    (report_dir / "go-1.json").write_text("\n".join(json.dumps(e) for e in events))
    results = _by_id(go.parse_reports(spec, report_dir, Outcome(exit_code=1)))
    assert set(results) == {
        "broken::TestBrokenA",
        "broken::TestBrokenB",
        "broken::TestNotWindows",
    }
    assert all(r.status is Status.ERROR for r in results.values())
    assert (
        results["broken::TestBrokenA"].message == "build failed: broken/broken.go:4:18: cannot use"
    )


def test_placeholder_of_a_package_without_tests_gets_the_build_error(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module ex/m\n")
    (tmp_path / "bad").mkdir()
    spec = RunnerSpec(name="go", workspace=tmp_path)
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "go-1.json").write_text("FAIL\tex/m/bad [setup failed]\n")
    (report_dir / "go-1.selection.json").write_text(
        json.dumps({"report": "go-1.json", "packages": [{"path": "bad", "tests": None}]})
    )
    stderr = "# ex/m/bad\nbad/x.go:1:1: import cycle not allowed\n"
    (result,) = go.parse_reports(spec, report_dir, Outcome(exit_code=1, stderr=stderr))
    assert (result.path, result.name, result.status) == ("bad", PACKAGE_PLACEHOLDER, Status.ERROR)
    assert result.message == "setup failed: bad/x.go:1:1: import cycle not allowed"


def test_reports_without_manifests_are_read_whole(spec: RunnerSpec, tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    shutil.copy(RECORDED / "subtests.json", report_dir / "go-1.json")
    results = _by_id(go.parse_reports(spec, report_dir, Outcome(exit_code=0)))
    assert set(results) == {"names::TestSubtests", "store::TestGet"}


def test_compiler_output_is_split_per_package_under_test() -> None:
    stderr = (
        "# example.com/a [example.com/a.test]\na/x.go:1: bad\n"
        "# example.com/b\nb/y.go:2: worse\n  more\n"
        "# example.com/a_test [example.com/a.test]\na/x_test.go:3: external\n"
    )
    assert compiler_output(stderr) == {
        "example.com/a": (
            "# example.com/a [example.com/a.test]\na/x.go:1: bad\n"
            "# example.com/a_test [example.com/a.test]\na/x_test.go:3: external\n"
        ),
        "example.com/b": "# example.com/b\nb/y.go:2: worse\n  more\n",
    }


def test_event_stream_keeps_elapsed_and_order() -> None:
    stream = read_events((RECORDED / "all.json").read_text())
    store = stream.packages[f"{MODULE}/store"]
    assert list(store.tests)[:3] == ["Test", "TestPut", "TestPutMany"]
    assert store.tests["TestSkipped"].action == "skip"
    assert stream.packages[f"{MODULE}/broken"].build_failure == "build failed"
    assert stream.packages[f"{MODULE}/failing"].elapsed > 0


LINUX_AMD64 = frozenset({"linux", "amd64", "unix", "gc", "cgo"})


@pytest.mark.parametrize(
    ("name", "header", "builds"),
    [
        ("a_test.go", "", True),
        ("a_windows_test.go", "", False),
        ("a_linux_test.go", "", True),
        ("a_linux_arm64_test.go", "", False),
        ("a_linux_amd64_test.go", "", True),
        ("windows_test.go", "", True),  # the part before the first _ is not a suffix
        ("a_notanos_test.go", "", True),
        ("a_test.go", "//go:build ignore\n", False),
        ("a_test.go", "//go:build linux && !cgo\n", False),
        ("a_test.go", "//go:build !windows && (darwin || unix)\n", True),
        ("a_test.go", "//go:build go1.18\n", True),
        ("a_test.go", "// Copyright\n\n//go:build integration\n", False),
        ("a_test.go", "//go:build (((\n", True),  # malformed: go reports it, not us
        ("a_test.go", "// +build linux,amd64 windows\n", True),
        ("a_test.go", "// +build windows\n// +build linux\n", False),
        ("a_test.go", "package p\n//go:build ignore\n", True),  # after the package clause
    ],
)
def test_build_constraints(name: str, header: str, builds: bool) -> None:
    source = header if "package" in header else header + "\npackage p\n"
    assert builds_here(Path(name), source, LINUX_AMD64) is builds


def test_a_failed_example_says_what_differs(tmp_path: Path) -> None:
    spec = RunnerSpec(name="go", workspace=tmp_path)
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    shutil.copy(RECORDED / "example-fail.json", report_dir / "go-1.json")
    package = {"path": "x", "import_path": "ex.com/gz/x", "tests": ["ExampleBad"]}
    (report_dir / "go-1.selection.json").write_text(
        json.dumps({"report": "go-1.json", "packages": [package]})
    )
    (result,) = go.parse_reports(spec, report_dir, Outcome(exit_code=1))
    assert result.status is Status.FAILED
    assert result.message == "output differs: got 'four', want 'five'"


def test_without_go_mod_packages_are_matched_by_directory(tmp_path: Path) -> None:
    spec = RunnerSpec(name="go", workspace=tmp_path)  # no go.mod anywhere above
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    shutil.copy(RECORDED / "subtests.json", report_dir / "go-1.json")
    package = {"path": "store", "tests": ["TestGet/missing key"]}
    (report_dir / "go-1.selection.json").write_text(
        json.dumps({"report": "go-1.json", "packages": [package]})
    )
    (result,) = go.parse_reports(spec, report_dir, Outcome(exit_code=0))
    assert (result.path, result.name, result.status) == (
        "store",
        "TestGet/missing key",
        Status.PASSED,
    )


def test_a_panic_leaves_paused_parallel_tests_unfinished(tmp_path: Path) -> None:
    spec = RunnerSpec(name="go", workspace=tmp_path)
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    shutil.copy(RECORDED / "parallel-panic.json", report_dir / "go-1.json")
    package = {"path": "p", "import_path": "ex.com/gp/p", "tests": None}
    (report_dir / "go-1.selection.json").write_text(
        json.dumps({"report": "go-1.json", "packages": [package]})
    )
    results = _by_id(go.parse_reports(spec, report_dir, Outcome(exit_code=1)))
    assert results["p::TestBoom"].status is Status.FAILED
    assert results["p::TestBoom"].message.startswith("panic: boom")
    paused = results["p::TestParallelA"]
    assert paused.status is Status.ERROR
    assert paused.message.startswith("did not finish: panic: boom")


def test_parse_reads_no_report_or_manifest_through_a_planted_link(
    spec: RunnerSpec, tmp_path: Path
) -> None:
    # The report directory is the container's to write: links there point at host files.
    report_dir = _report_dir(tmp_path, "subtests.json", [("names", ["TestSubtests/with space"])])
    host = tmp_path / "host"
    host.mkdir()
    (report_dir / "go-1.json").rename(host / "go-1.json")
    (report_dir / "go-1.json").symlink_to(host / "go-1.json")
    results = _by_id(go.parse_reports(spec, report_dir, Outcome(exit_code=0)))
    assert results["names::TestSubtests/with space"].status is Status.ERROR
    (report_dir / "go-1.selection.json").rename(host / "go-1.selection.json")
    (report_dir / "go-1.selection.json").symlink_to(host / "go-1.selection.json")
    assert go.parse_reports(spec, report_dir, Outcome(exit_code=0)) == []
