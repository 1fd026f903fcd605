"""Unit tests of the pytest runner plugin on recorded pytest output (no pytest run here)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

import dagpar_plugins.pytest as plugin
import pytest
from dagpar_plugins.pytest import files as _pytest_files
from dagpar_plugins.pytest import pytest_quiet, pytest_select
from dagpar_plugins.pytest.collect import COLLECTION_ERROR, parse_collect_output
from dagpar_plugins.pytest.files import (
    CLAIM_FILE,
    HANDOVER_KEY,
    ORDER_FILE,
    PLUGIN_MODULE,
    RUN_INFO_FILE,
    SELECTION_FILE,
)
from dagpar_plugins.pytest.handover import hand_over
from dagpar_plugins.pytest.paths import RootdirMap

from dagpar_cli import (
    REPORT_DIR_PLACEHOLDER,
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
from dagpar_cli.testing import FakeRunnerHost, TailRecorder

DATA = Path(__file__).resolve().parents[3] / "data"
RECORDED = DATA / "pytest"
PROJECT = DATA / "projects" / "pytest-hostile"
SUITE = PROJECT / "suite"
RUNNER = plugin.PytestRunner()

# What `pytest --collect-only` lists in the hostile suite, source-relative (spot checks).
EXPECTED_SAMPLE = {
    TestCase("check_classes.py", "CheckOuter::CheckInner::CheckInnermost::test_deeper"),
    TestCase("check_names.py", "test_hostile[.*+?()[]{}|^$\\\\]"),
    TestCase("check_names.py", "test_hostile[a::b]"),
    TestCase("check_names.py", "test_hostile[\\u65e5\\u672c]"),
    TestCase("sub dir/check_sub.py", "test_sub[a::b::c]"),
    TestCase("sub dir/deeper/données_check.py", "test_unicode_file"),
    TestCase("check_broken.py", COLLECTION_ERROR),
    TestCase("check_import_error.py", COLLECTION_ERROR),
}


def suite_spec(**kwargs: object) -> RunnerSpec:
    return RunnerSpec(
        name="pytest",
        workspace=PROJECT,
        source="suite",
        command=("pytest",),
        **kwargs,  # type: ignore[arg-type]
    )


def recorded_tests() -> list[TestCase]:
    stdout = (RECORDED / "collect-suite-rootdir-above.txt").read_text(encoding="utf-8")
    return parse_collect_output(stdout, RootdirMap(SUITE))


# ------------------------------------------------------------------------------------------
# collect
# ------------------------------------------------------------------------------------------


def test_collect_maps_rootdir_above_the_source_to_source_relative_paths() -> None:
    tests = recorded_tests()
    assert len(tests) == 34  # 32 tests + 2 files that fail to collect
    assert set(tests) >= EXPECTED_SAMPLE
    assert not any(t.path.startswith("suite/") for t in tests)
    # pytest's order is kept; collection errors come last.
    assert tests[0] == TestCase("check_classes.py", "CheckOuter::test_a")
    assert [t.name for t in tests[-2:]] == [COLLECTION_ERROR, COLLECTION_ERROR]


def test_collect_from_the_project_root_keeps_the_full_paths() -> None:
    stdout = (RECORDED / "collect-project.txt").read_text(encoding="utf-8")
    tests = parse_collect_output(stdout, RootdirMap(PROJECT))
    assert {TestCase(f"suite/{t.path}", t.name) for t in EXPECTED_SAMPLE} <= set(tests)
    assert len(tests) == 34


def test_rootdir_below_the_source_is_found_from_path_arguments(tmp_path: Path) -> None:
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "test_a.py").write_text("")
    # No configuration file: pytest's rootdir is the common ancestor of the path arguments.
    stdout = "unit/test_a.py::test_x\n\n1 test collected in 0.01s\n"
    tests = parse_collect_output(stdout, RootdirMap(tmp_path, ("-x", "tests")))
    assert tests == [TestCase("tests/unit/test_a.py", "test_x")]


def test_collect_ignores_stray_lines_and_sections() -> None:
    stdout = (
        "some plugin says hello\n"
        "tests/test_a.py::test_x[a b]\n"
        "\n"
        "=============== warnings summary ===============\n"
        "tests/test_a.py::test_x[a b]\n"
        "  DeprecationWarning: tests/test_a.py::bogus\n"
        "1 test collected in 0.01s\n"
    )
    tests = parse_collect_output(stdout, RootdirMap(Path("/nonexistent")))
    assert tests == [TestCase("tests/test_a.py", "test_x[a b]")]


def test_collect_hook_builds_the_listing_command_and_parses_it() -> None:
    stdout = (RECORDED / "collect-suite-rootdir-above.txt").read_text(encoding="utf-8")
    host = FakeRunnerHost(Outcome(exit_code=2, stdout=stdout))
    spec = suite_spec(args=("-m", "not slow"))
    tests = RUNNER.collect(spec=spec, host=host)
    assert tests == recorded_tests()
    assert host.argv[:3] == ["pytest", "-m", "not slow"]
    assert "--collect-only" in host.argv and "--verbosity=-1" in host.argv
    # The user's arguments come first: dagpar's listing options must win over -v or -x.
    assert host.argv.index("--verbosity=-1") > 2 and "--maxfail=0" in host.argv
    assert host.argv[host.argv.index("-p") + 1] == "no:cacheprovider"


def test_collect_of_an_empty_tree_is_empty() -> None:
    outcome = Outcome(exit_code=5, stdout="\nno tests collected in 0.01s\n")
    assert RUNNER.collect(spec=suite_spec(), host=FakeRunnerHost(outcome)) == []


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Outcome(exit_code=127, stderr="No such file", not_started=True), "cannot start pytest"),
        (
            Outcome(exit_code=4, stderr="ImportError while loading conftest 'conftest.py'."),
            "ImportError while loading conftest",
        ),
        (Outcome(exit_code=2, stdout="!!! Interrupted: bad !!!\n"), "exit code 2"),
        (Outcome(exit_code=1, stderr="/x/python: No module named pytest"), "has no pytest"),
        (Outcome(exit_code=1, stdout="\nno tests ran\n"), "exit code 1"),
        (Outcome(exit_code=-9, timed_out=True), "timed out"),
    ],
)
def test_collect_failures_raise_execution_errors(outcome: Outcome, expected: str) -> None:
    with pytest.raises(ExecutionError, match=expected):
        RUNNER.collect(spec=suite_spec(), host=FakeRunnerHost(outcome))


def test_registers_one_runner_named_pytest() -> None:
    # dagpar asks a runner about its own name only: the plugin answers for no other runner.
    registry = RunnerRegistry()
    plugin.dagpar_register_runners(registry=registry)
    assert registry.names() == ["pytest"]
    runner = registry.get("pytest")
    assert isinstance(runner, plugin.PytestRunner)
    assert not runner.has_subtests  # a "/" in a pytest name is part of the name


# ------------------------------------------------------------------------------------------
# handing over
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "hands_over"),
    [
        ((), True),
        (("-x", "-k", "not slow", "-m", "n"), True),
        (("-n", "2"), False),
        (("-n2",), False),
        (("-nauto",), False),
        (("-n", "logical"), False),
        (("-xvn", "4"), False),
        (("--numprocesses=3",), False),
        (("--numprocesses", "auto"), False),
        (("-n", "0"), True),
        (("-n0",), True),
        (("--numprocesses=0", "--dist", "load"), True),
        (("--dist", "load"), False),
        (("--dist=loadscope",), False),
        (("--dist", "no"), True),
        (("-d",), False),
        (("--tx", "popen"), False),
        (("-f",), False),
        (("--looponfail",), False),
        (("-n", "2", "-p", "no:xdist"), True),
        (("-pno:xdist", "-n2"), True),
        # Option values are not options: -k's "n", -p's plugin, -W's filter.
        (("-kn",), True),
        (("-k", "-n"), True),
        (("-p", "no:randomly"), True),
        (("-pno:cacheprovider", "-W", "ignore::DeprecationWarning"), True),
        (("-rfEd",), True),
        (("--", "-n", "2"), True),
    ],
)
def test_hands_over_unless_the_arguments_turn_xdist_on(
    args: tuple[str, ...], hands_over: bool
) -> None:
    assert RUNNER.can_hand_over(spec=suite_spec(args=args)) is hands_over


def _running(report_dir: Path, order: list[list[str]], claim: str = "0 -1\n") -> RunnerSpec:
    """Files as the selection plugin writes them in a run that can hand over."""
    report_dir.mkdir(exist_ok=True)
    (report_dir / _pytest_files.RUN_INFO_FILE).write_text('{"handover": true}', encoding="utf-8")
    (report_dir / _pytest_files.CLAIM_FILE).write_text(claim, encoding="utf-8")
    (report_dir / "order.tmp").write_text(json.dumps(order), encoding="utf-8")
    (report_dir / "order.tmp").replace(report_dir / _pytest_files.ORDER_FILE)
    return suite_spec()


def _hand_over(spec: RunnerSpec, report_dir: Path, choose: TailRecorder) -> list[TestCase] | None:
    return RUNNER.hand_over_tail(spec=spec, report_dir=report_dir, choose=choose)


def test_hand_over_asks_again_until_pytest_publishes_its_order(tmp_path: Path) -> None:
    choose = TailRecorder(1)
    # Not started yet: no run information.
    assert _hand_over(suite_spec(), tmp_path, choose) == []
    # Started, still collecting: no order yet.
    (tmp_path / _pytest_files.RUN_INFO_FILE).write_text('{"handover": true}', encoding="utf-8")
    assert _hand_over(suite_spec(), tmp_path, choose) == []
    assert choose.calls == []


@pytest.mark.parametrize(
    ("info", "claim"),
    [
        ('{"handover": false}', "0 -1\n"),
        ("{}", "0 -1\n"),
        ("not json", "0 -1\n"),
        ('{"handover": true}', "garbage\n"),
        ('{"handover": true}', ""),
    ],
    ids=["handover-false", "no-key", "bad-run-info", "bad-claim", "empty-claim"],
)
def test_a_run_that_cannot_hand_over_answers_none(tmp_path: Path, info: str, claim: str) -> None:
    spec = _running(tmp_path, [["tests/test_a.py", "test_a"]], claim)
    (tmp_path / _pytest_files.RUN_INFO_FILE).write_text(info, encoding="utf-8")
    choose = TailRecorder(1)
    assert _hand_over(spec, tmp_path, choose) is None
    assert choose.calls == []
    assert (tmp_path / _pytest_files.CLAIM_FILE).read_text(encoding="utf-8") == claim  # untouched


def test_hand_over_takes_from_between_started_and_the_limit(tmp_path: Path) -> None:
    order = [["tests/test_a.py", f"test_{n}"] for n in range(6)]
    spec = _running(tmp_path, order, "2 5\n")
    choose = TailRecorder(2)
    assert _hand_over(spec, tmp_path, choose) == [
        TestCase("tests/test_a.py", "test_3"),
        TestCase("tests/test_a.py", "test_4"),
    ]
    assert choose.calls == [([TestCase("tests/test_a.py", f"test_{n}") for n in (2, 3, 4)], 2)]
    assert (tmp_path / _pytest_files.CLAIM_FILE).read_text(encoding="ascii") == "2 3\n"


def test_hand_over_names_the_running_test_when_quick_tests_were_counted_ahead(
    tmp_path: Path,
) -> None:
    order = [["tests/test_a.py", f"test_{n}"] for n in range(8)]
    # The plugin counted six tests as started at one look; two have finished, 3 s ago.
    spec = _running(tmp_path, order, "6 -1\n")
    progress = tmp_path / _pytest_files.PROGRESS_FILE
    progress.write_bytes(b"..")
    three_ago = time.time() - 3
    os.utime(progress, (three_ago, three_ago))
    choose = TailRecorder(2)
    taken = _hand_over(spec, tmp_path, choose)
    assert taken == [TestCase("tests/test_a.py", "test_6"), TestCase("tests/test_a.py", "test_7")]
    ((test, seconds),) = choose.running  # type: ignore[misc]
    assert test == TestCase("tests/test_a.py", "test_2")
    assert 3 <= seconds < 60
    assert (tmp_path / _pytest_files.CLAIM_FILE).read_text(encoding="ascii") == "6 6\n"


def test_hand_over_names_the_running_test_from_the_progress_file(tmp_path: Path) -> None:
    order = [["tests/test_a.py", f"test_{n}"] for n in range(4)]
    spec = _running(tmp_path, order, "2 -1\n")
    progress = tmp_path / _pytest_files.PROGRESS_FILE
    # One test finished 5 s ago, and the second (started: 2) has run since.
    progress.write_bytes(b".")
    five_ago = time.time() - 5
    os.utime(progress, (five_ago, five_ago))
    choose = TailRecorder(0)
    assert _hand_over(spec, tmp_path, choose) == []
    ((test, seconds),) = choose.running  # type: ignore[misc]
    assert test == TestCase("tests/test_a.py", "test_1")
    assert 5 <= seconds < 60
    # The second test has finished too and the third is not counted yet: between tests.
    progress.write_bytes(b"..")
    assert _hand_over(spec, tmp_path, choose) == []
    assert choose.running[-1] is None
    # Nothing finished yet: the first test has run since the order was written.
    order_file = tmp_path / _pytest_files.ORDER_FILE
    progress.write_bytes(b"")
    (tmp_path / _pytest_files.CLAIM_FILE).write_text("1 -1\n", encoding="ascii")
    two_ago = time.time() - 2
    os.utime(order_file, (two_ago, two_ago))
    assert _hand_over(spec, tmp_path, choose) == []
    last = choose.running[-1]
    assert last is not None and last[0] == TestCase("tests/test_a.py", "test_0")
    assert 2 <= last[1] < 5


def test_a_rewritten_order_is_read_afresh(tmp_path: Path) -> None:
    spec = _running(tmp_path, [["a.py", "test_old"]])
    assert _hand_over(spec, tmp_path, TailRecorder(1)) == [TestCase("a.py", "test_old")]
    # The directory is reused by another run: the cached order must not be.
    _running(tmp_path, [["b.py", "test_new"], ["b.py", "test_newer"]])
    assert _hand_over(spec, tmp_path, TailRecorder(1)) == [TestCase("b.py", "test_newer")]


def test_a_failing_choose_leaves_the_claim_unlocked_and_unchanged(tmp_path: Path) -> None:
    import fcntl

    spec = _running(tmp_path, [["a.py", "test_a"]])

    def broken(
        pending: Sequence[TestCase], started: int, running: tuple[TestCase, float] | None = None
    ) -> int:
        raise RuntimeError("choose broke")

    with pytest.raises(RuntimeError, match="choose broke"):
        RUNNER.hand_over_tail(spec=spec, report_dir=tmp_path, choose=broken)
    with (tmp_path / _pytest_files.CLAIM_FILE).open("rb") as stream:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if still locked
        assert stream.read() == b"0 -1\n"


# ------------------------------------------------------------------------------------------
# finding pytest
# ------------------------------------------------------------------------------------------


def _venv(root: Path) -> Path:
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    return python


def test_find_pytest_prefers_the_override_then_the_nearest_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    (tmp_path / "api").mkdir()
    spec = RunnerSpec(name="pytest", workspace=tmp_path, source="api")
    override = RunnerSpec(name="pytest", workspace=tmp_path, command=("uv", "run", "pytest"))
    assert plugin.find_pytest(override) == ("uv", "run", "pytest")
    _venv(tmp_path)
    assert plugin.find_pytest(spec) == ("../.venv/bin/python", "-m", "pytest")
    _venv(tmp_path / "api")
    assert plugin.find_pytest(spec) == (".venv/bin/python", "-m", "pytest")


def test_find_pytest_falls_back_to_virtual_env_then_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = RunnerSpec(name="pytest", workspace=tmp_path / "ws")
    python = _venv(tmp_path / "active")
    monkeypatch.setenv("VIRTUAL_ENV", str(python.parent.parent))
    assert plugin.find_pytest(spec) == (str(python), "-m", "pytest")
    monkeypatch.delenv("VIRTUAL_ENV")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pytest").write_text("#!/bin/sh\n")
    (bin_dir / "pytest").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert plugin.find_pytest(spec) == ("pytest",)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ExecutionError, match=r"pytest not found .*runner:"):
        plugin.find_pytest(spec)


# ------------------------------------------------------------------------------------------
# command
# ------------------------------------------------------------------------------------------


def _data(command: RunnerCommand) -> dict[str, object]:
    return json.loads(command.files[SELECTION_FILE])  # type: ignore[no-any-return]


def test_command_for_whole_files_and_single_tests() -> None:
    selection = Selection(
        items=(
            ("check_names.py",),
            ("sub dir/check_sub.py", "test_sub[a::b::c]"),
            ("check_names.py", "test_plain"),  # inside a whole file: redundant
            ("check_names.py",),
        )
    )
    [command] = RUNNER.command(spec=suite_spec(), selection=selection) or []
    assert _data(command) == {
        "paths": ["check_names.py"],
        "tests": [["sub dir/check_sub.py", "test_sub[a::b::c]"]],
    }
    argv = command.argv
    assert argv[0] == "pytest"
    # No paths either: pytest starts as the listing did, the plugin narrows what it collects.
    assert argv[-1] == "--color=no" and not any(a.endswith(".py") for a in argv)
    assert f"--junit-xml={REPORT_DIR_PLACEHOLDER}/pytest-junit.xml" in argv
    assert ("-p", "no:cacheprovider") in itertools.pairwise(argv)
    assert ("-p", PLUGIN_MODULE) in itertools.pairwise(argv)
    assert ("-p", _pytest_files.QUIET_MODULE) in itertools.pairwise(argv)
    assert ("-o", "junit_family=xunit1") in itertools.pairwise(argv)
    assert not any("test_sub" in arg for arg in argv)  # ids travel in the file, not argv
    assert command.env["PYTHONPATH"].split(":")[0] == REPORT_DIR_PLACEHOLDER
    plugin_source = command.files[f"{PLUGIN_MODULE}.py"]
    assert "def pytest_collection_modifyitems" in plugin_source


def test_command_with_exact_tests_ignores_the_items() -> None:
    tests = (
        TestCase("check_names.py", "test_hostile[.*+?()[]{}|^$\\\\]"),
        TestCase("check_names.py", "test_hostile[\\xe9]"),
        TestCase("check_broken.py", COLLECTION_ERROR),
    )
    selection = Selection(items=(("check_names.py",), ("check_classes.py",)), tests=tests)
    [command] = RUNNER.command(spec=suite_spec(), selection=selection) or []
    assert (
        _data(command)
        == {
            "paths": ["check_broken.py"],  # its collection error must surface
            "tests": [[t.path, t.name] for t in tests[:2]],
        }
    )
    assert "check_classes.py" not in command.argv


def test_files_survive_the_engine_substituting_the_placeholder() -> None:
    # The engine replaces {report_dir} in file contents; a test id holding it must not change.
    hostile = TestCase("check_names.py", "test_hostile[{report_dir}]")
    selection = Selection(items=(), tests=(hostile,))
    [command] = RUNNER.command(suite_spec(), selection) or []
    for content in command.files.values():
        assert REPORT_DIR_PLACEHOLDER not in content
    assert _data(command)["tests"] == [[hostile.path, hostile.name]]


def test_command_appends_user_args_before_its_own_options() -> None:
    spec = suite_spec(args=("-x", "--junit-xml=mine.xml"))
    [command] = RUNNER.command(spec, Selection(items=(("a.py",),))) or []
    # Later options win in pytest's parser: dagpar's report path must come after the user's.
    assert command.argv.index("--junit-xml=mine.xml") < command.argv.index(
        f"--junit-xml={REPORT_DIR_PLACEHOLDER}/pytest-junit.xml"
    )


def test_command_of_an_empty_selection_is_nothing() -> None:
    assert RUNNER.command(suite_spec(), Selection(items=())) == []
    assert RUNNER.command(suite_spec(), Selection(items=(), tests=())) == []


def test_twenty_thousand_ids_stay_off_the_command_line() -> None:
    tests = tuple(TestCase(f"tests/test_{i % 7}.py", f"test_x[{i} a b]") for i in range(20_000))
    [command] = RUNNER.command(suite_spec(), Selection(items=(), tests=tests)) or []
    assert sum(len(a) for a in command.argv) < 2_000
    data = _data(command)
    assert len(data["tests"]) == 20_000  # type: ignore[arg-type]


def test_the_command_line_does_not_grow_with_the_selection() -> None:
    one = RUNNER.command(suite_spec(), Selection(items=(("a.py",),))) or []
    items = tuple((f"tests/deep/module_{i:05d}/test_file_{i:05d}.py",) for i in range(2_000))
    many = RUNNER.command(suite_spec(), Selection(items=items)) or []
    assert many[0].argv == one[0].argv
    assert len(_data(many[0])["paths"]) == 2_000  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# parse
# ------------------------------------------------------------------------------------------


@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    shutil.copy(RECORDED / "junit-with-plugin.xml", tmp_path / "pytest-junit.xml")
    shutil.copy(RECORDED / "run-info-rootdir-above.json", tmp_path / "dagpar_pytest_run.json")
    return tmp_path


def _parse(report_dir: Path) -> dict[str, TestResult]:
    results = RUNNER.parse(suite_spec(), report_dir, Outcome(exit_code=1)) or []
    by_id = {r.id: r for r in results}
    assert len(by_id) == len(results), "every test is reported once"
    return by_id


def test_parse_names_every_test_exactly_as_collected(report_dir: Path) -> None:
    results = _parse(report_dir)
    assert set(results) == {t.id for t in recorded_tests()}
    # pytest's classnames are rootdir-relative; dagpar derives its own from the path.
    assert all(r.classname == "" for r in results.values())


def test_parse_statuses_messages_and_merged_teardown_errors(report_dir: Path) -> None:
    results = _parse(report_dir)
    assert results["check_classes.py::test_failing"].status is Status.FAILED
    assert results["check_classes.py::test_failing"].message == "AssertionError: one is not two"
    merged = results["check_classes.py::test_fail_and_teardown_error"]
    assert merged.status is Status.FAILED
    assert merged.message == "AssertionError: call failed"
    assert "teardown broke" in merged.details
    setup = results["check_classes.py::test_setup_error"]
    assert setup.status is Status.ERROR and "setup broke" in setup.message
    assert results["check_classes.py::test_skipped"].status is Status.SKIPPED
    assert results["check_classes.py::test_skipped"].message == "skipped on purpose"
    assert results["check_classes.py::test_xfail"].status is Status.SKIPPED
    assert results["check_classes.py::test_xfail"].message == "xfail: known bug"
    broken = results[f"check_broken.py::{COLLECTION_ERROR}"]
    assert broken.status is Status.ERROR
    assert broken.message == "collection failure: SyntaxError: invalid syntax"
    missing = results[f"check_import_error.py::{COLLECTION_ERROR}"]
    assert "dagpar_no_such_module_anywhere" in missing.message
    passed = [r for r in results.values() if r.status is Status.PASSED]
    assert len(passed) == 27
    assert all(r.seconds >= 0 for r in results.values())


def test_parse_without_the_plugin_maps_classnames_back_to_node_ids(tmp_path: Path) -> None:
    # A report pytest wrote on its own (no dagpar properties, no recorded rootdir).
    shutil.copy(RECORDED / "junit-without-plugin.xml", tmp_path / "pytest-junit.xml")
    results = _parse(tmp_path)
    assert set(results) == {t.id for t in recorded_tests()}


def test_parse_without_a_report_returns_nothing(tmp_path: Path) -> None:
    assert RUNNER.parse(suite_spec(), tmp_path, Outcome(exit_code=-11)) == []


def test_parse_a_truncated_report_keeps_what_it_can_and_names_the_problem(
    report_dir: Path,
) -> None:
    report = report_dir / "pytest-junit.xml"
    text = report.read_text(encoding="utf-8")
    cut = text.index('name="test_hostile[a::b]"')
    report.write_text(text[:cut], encoding="utf-8")
    selected = [["check_names.py", "test_plain"], ["check_classes.py", "CheckOuter::test_a"]]
    (report_dir / SELECTION_FILE).write_text(json.dumps({"paths": [], "tests": selected}))
    results = _parse(report_dir)
    assert results["check_classes.py::CheckOuter::test_a"].status is Status.PASSED
    plain = results["check_names.py::test_plain"]
    assert plain.status is Status.ERROR and "malformed" in plain.message


@pytest.mark.parametrize("content", [b"", b"not xml at all <<<", b"\x00\xff\xfe", b"<a><b></a>"])
def test_parse_garbage_never_raises(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "pytest-junit.xml").write_bytes(content)
    assert RUNNER.parse(suite_spec(), tmp_path, Outcome(exit_code=1)) == []


# ------------------------------------------------------------------------------------------
# registration and detection
# ------------------------------------------------------------------------------------------


def test_registers_the_pytest_toolchain_and_entry_point() -> None:
    registry = ToolchainRegistry()
    plugin.dagpar_register_toolchains(registry=registry)
    assert registry.get("pytest") == "dagpar_toolchains.pytest"
    [entry] = [e for e in entry_points(group="dagpar") if e.name == "pytest"]
    assert entry.value == "dagpar_plugins.pytest"


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"pytest.ini": "[pytest]\n", "api/pytest.ini": ""}, [(".", "pytest.ini")]),
        (
            {"pyproject.toml": "[project]\nname='x'\n\n[tool.pytest.ini_options]\naddopts=''\n"},
            [(".", "pyproject.toml [tool.pytest.ini_options]")],
        ),
        ({"setup.cfg": "[metadata]\n[tool:pytest]\n"}, [(".", "setup.cfg [tool:pytest]")]),
        ({"tox.ini": "[tox]\n[pytest]\n"}, [(".", "tox.ini [pytest]")]),
        ({"conftest.py": ""}, [(".", "conftest.py")]),
        ({"tests/test_a.py": "", "tests/conftest.py": ""}, [(".", "tests/")]),
        ({"api/pyproject.toml": "[tool.pytest.ini_options]\n"}, [("api", "api/pyproject.toml")]),
        ({"src/pkg/store_test.py": "", "api/tests/unit/test_x.py": ""}, [("api", "api/tests")]),
    ],
)
def test_detects_a_single_project(
    tmp_path: Path, files: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    found = plugin.dagpar_detect_toolchains(workspace=_write(tmp_path, files)) or []
    assert [
        (e["source"], e["why"][: len(w)]) for e, (_, w) in zip(found, expected, strict=True)
    ] == expected
    assert [e["instance"] for e in found] == ["pytest"]
    assert all(e["use"] == "pytest" for e in found)


def test_several_projects_are_named_by_directory(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "api/pyproject.toml": "[tool.pytest.ini_options]\n",
            "Web UI/setup.cfg": "[tool:pytest]\n",
            "worker/tests/test_job.py": "",
            "docs/index.md": "",
            "node_modules/x/test_x.py": "",
            ".venv/lib/test_y.py": "",
        },
    )
    found = plugin.dagpar_detect_toolchains(workspace=tmp_path) or []
    assert [(e["instance"], e["source"], e["why"]) for e in found] == [
        ("web-ui", "Web UI", "Web UI/setup.cfg [tool:pytest]"),
        ("api", "api", "api/pyproject.toml [tool.pytest.ini_options]"),
        ("worker", "worker", "worker/tests/test_job.py"),
    ]


def test_root_tests_do_not_double_count_their_tests_directory(tmp_path: Path) -> None:
    _write(tmp_path, {"tests/conftest.py": "", "tests/test_a.py": "", "svc/pytest.ini": ""})
    found = plugin.dagpar_detect_toolchains(workspace=tmp_path) or []
    assert [(e["instance"], e["source"]) for e in found] == [("pytest", "."), ("svc", "svc")]


def test_nothing_to_detect(tmp_path: Path) -> None:
    _write(tmp_path, {"pyproject.toml": "[project]\nname='x'\n", "src/app.py": ""})
    assert plugin.dagpar_detect_toolchains(workspace=tmp_path) is None


def test_parse_maps_collection_errors_through_a_symlinked_workspace(tmp_path: Path) -> None:
    real = tmp_path / "real" / "ws"
    (real / "suite").mkdir(parents=True)
    (real / "suite" / "test_bad.py").write_text("def broken(:\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    # pytest ran in the resolved directory; dagpar knows the workspace by its symlinked path.
    info = {"rootdir": str(real), "invocation_dir": str(real / "suite")}
    (report_dir / "dagpar_pytest_run.json").write_text(json.dumps(info))
    (report_dir / "pytest-junit.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="" name="suite.test_bad" file="suite/test_bad.py" time="0">'
        '<error message="collection failure">E   SyntaxError: invalid syntax</error>'
        "</testcase></testsuite></testsuites>"
    )
    spec = RunnerSpec(name="pytest", workspace=tmp_path / "link" / "ws", source="suite")
    [result] = RUNNER.parse(spec, report_dir, Outcome(exit_code=1)) or []
    assert (result.path, result.name, result.status) == (
        "test_bad.py",
        COLLECTION_ERROR,
        Status.ERROR,
    )
    assert result.message == "collection failure: SyntaxError: invalid syntax"


def test_dagpar_loads_the_plugin_without_pytest_installed() -> None:
    # dagpar's own environment (pipx) may lack pytest; only the project's interpreter has it.
    code = "import sys; sys.modules['pytest'] = None; import dagpar_plugins.pytest"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_selection_plugin_and_dagpar_agree_on_file_names() -> None:
    assert pytest_select.MODULE == _pytest_files.PLUGIN_MODULE
    assert pytest_select.SELECTION_FILE == _pytest_files.SELECTION_FILE
    assert pytest_select.RUN_INFO_FILE == _pytest_files.RUN_INFO_FILE
    assert pytest_select.PROGRESS_FILE == _pytest_files.PROGRESS_FILE
    assert pytest_select.HANDOVER_KEY == _pytest_files.HANDOVER_KEY
    assert pytest_select.ORDER_FILE == _pytest_files.ORDER_FILE
    assert pytest_select.CLAIM_FILE == _pytest_files.CLAIM_FILE
    assert pytest_select.PATH_PROPERTY == _pytest_files.PATH_PROPERTY
    assert pytest_select.NAME_PROPERTY == _pytest_files.NAME_PROPERTY
    assert pytest_select.EVENTS_FILE == _pytest_files.EVENTS_FILE
    assert pytest_select.ID_PROPERTY == _pytest_files.ID_PROPERTY
    assert pytest_select.SECONDS_PROPERTY == _pytest_files.SECONDS_PROPERTY
    assert pytest_select.REPORT_FILE == _pytest_files.REPORT_FILE
    assert _pytest_files.plugin_source() == Path(pytest_select.__file__).read_text("utf-8")
    # The plugin imports the JUnit holder by the name it is written under, next to it.
    assert f"import {_pytest_files.JUNIT_MODULE} as _junit" in _pytest_files.plugin_source()
    junit = RUNNER.command(suite_spec(), Selection(items=(("a.py",),)))[0].files
    assert junit[f"{_pytest_files.JUNIT_MODULE}.py"] == _pytest_files.junit_source()
    # And the module that keeps its claim, event and progress files open.
    assert f"import {_pytest_files.CLAIMS_MODULE} as _claim_file" in _pytest_files.plugin_source()
    assert junit[f"{_pytest_files.CLAIMS_MODULE}.py"] == _pytest_files.claims_source()
    # And the module, loaded with its own ``-p``, that keeps pytest's reporter from writing
    # per-test progress.
    assert junit[f"{_pytest_files.QUIET_MODULE}.py"] == _pytest_files.quiet_source()
    assert _pytest_files.quiet_source() == Path(pytest_quiet.__file__).read_text("utf-8")


def test_parse_does_not_follow_a_report_a_container_replaced_with_a_link(tmp_path: Path) -> None:
    # A test in a container may replace the report with a link to a host file: dagpar reads
    # nothing through it, and says why instead of reporting the host file's contents.
    host = tmp_path / "host"
    host.mkdir()
    shutil.copy(RECORDED / "junit-with-plugin.xml", host / "stolen.xml")
    report_dir = tmp_path / "reports"
    report_dir.mkdir()
    (report_dir / "pytest-junit.xml").symlink_to(host / "stolen.xml")
    (report_dir / "dagpar_pytest_run.json").symlink_to(host / "stolen.xml")
    selected = [["check_names.py", "test_plain"]]
    (report_dir / SELECTION_FILE).write_text(json.dumps({"paths": [], "tests": selected}))
    (result,) = RUNNER.parse(suite_spec(), report_dir, Outcome(exit_code=0)) or []
    assert result.id == "check_names.py::test_plain"
    assert result.status is Status.ERROR
    assert result.message == (
        f"pytest's JUnit report cannot be read: {report_dir / 'pytest-junit.xml'} is a "
        "symbolic link, not a regular file; dagpar does not follow it"
    )
    (report_dir / SELECTION_FILE).unlink()
    (whole,) = RUNNER.parse(suite_spec(), report_dir, Outcome(exit_code=0)) or []
    assert (whole.path, whole.status) == ("pytest-junit.xml", Status.ERROR)


def test_hand_over_never_writes_a_claim_through_a_planted_link(tmp_path: Path) -> None:
    host = tmp_path / "host-file"
    host.write_text("0 3\n")
    report_dir = tmp_path / "reports"
    report_dir.mkdir()
    (report_dir / RUN_INFO_FILE).write_text(json.dumps({HANDOVER_KEY: True}))
    (report_dir / ORDER_FILE).write_text(json.dumps([["t.py", "a"], ["t.py", "b"], ["t.py", "c"]]))
    (report_dir / CLAIM_FILE).symlink_to(host)
    assert hand_over(report_dir, lambda pending, started, running: 1) is None
    assert host.read_text() == "0 3\n"
    # The same claim as a real file hands the last test over.
    (report_dir / CLAIM_FILE).unlink()
    (report_dir / CLAIM_FILE).write_text("0 3\n")
    taken = hand_over(report_dir, lambda pending, started, running: 1)
    assert [t.id for t in taken or []] == ["t.py::c"]
    assert (report_dir / CLAIM_FILE).read_text() == "0 2\n"
