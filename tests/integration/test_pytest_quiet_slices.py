"""A pytest slice's terminal output: no per-test progress, pytest's own end of the run.

No one watches a slice's output as it runs (dagpar shows its own progress), so the slice's
terminal reporter writes no letters, lines or percentages and keeps no passing setup or teardown
report; everything its end-of-run output needs stays as pytest makes it
(:mod:`dagpar_plugins.pytest.pytest_quiet`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagpar_plugins.pytest as plugin
import pytest
from dagpar_plugins.pytest.files import QUIET_MODULE, quiet_source

from dagpar_cli import RunnerSpec, Selection
from dagpar_cli.testing import run_runner_commands

RUNNER = plugin.PytestRunner()
# The machine's third-party pytest plugins only slow the runs down (xdist is loaded by name).
FAST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}

TESTS = """\
import pytest


@pytest.mark.parametrize("i", range(30))
def test_many(i):
    pass


def test_fails():
    assert 1 == 2, "one is not two"


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass


@pytest.mark.xfail(reason="known")
def test_known():
    assert 0


@pytest.fixture
def broken():
    yield
    raise RuntimeError("teardown broke")


def test_breaks_in_teardown(broken):
    pass


@pytest.fixture
def chatty():
    yield
    print("said in teardown")


def test_chatty_fails(chatty):
    assert 0


def test_uses_fixture(plain_fixture):
    pass
"""

CONFTEST = """\
import pytest


@pytest.fixture
def plain_fixture():
    yield 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if report.when == "teardown" and item.name == "test_uses_fixture":
        report.__dict__["noted"] = item.nodeid  # as hypothesis keeps its statistics


def pytest_terminal_summary(terminalreporter, config):
    stats = terminalreporter.stats
    noted = sum("noted" in r.__dict__ for reports in stats.values() for r in reports)
    terminalreporter.write_line(
        "conftest summary: passed=%d phases=%d noted=%d"
        % (len(stats.get("passed", [])), len(stats.get("", [])), noted)
    )
    config.get_terminal_writer().line("written through the terminal writer")
"""

#: The tests of :data:`TESTS`, and what pytest says of them.
SELECTED = 36
COUNTS = "2 failed, 32 passed, 1 skipped, 1 xfailed, 1 error"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "test_suite.py").write_text(TESTS)
    (root / "conftest.py").write_text(CONFTEST)
    return root


def _slice(project: Path, report_dir: Path, *args: str) -> tuple[int, str]:
    """Run the whole project as one dagpar slice: its exit code and standard output."""
    spec = RunnerSpec(
        name="pytest", workspace=project, command=(sys.executable, "-m", "pytest"), args=args
    )
    commands = RUNNER.command(spec, Selection(items=(("test_suite.py",),)))
    run = run_runner_commands(commands, spec, report_dir, env=FAST, check=False)
    return run.combined.exit_code, run.combined.stdout


def _plain(project: Path, *args: str) -> tuple[int, str]:
    """Run the project with plain pytest: its exit code and standard output."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--color=no", *args],
        cwd=project,
        env={**os.environ, **FAST},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc.returncode, proc.stdout


def _counts(stdout: str) -> str:
    """The final line's counts, without the seconds."""
    last = stdout.strip().splitlines()[-1]
    return re.sub(r" in [\d.]+s.*", "", last).strip("= ")


def _progress(stdout: str) -> list[str]:
    """The lines of *stdout* that show per-test progress."""
    return [
        line
        for line in stdout.splitlines()
        if re.match(r"test_suite\.py( |::|$)", line)
        or re.search(r"\[\s*\d+%\]\s*$", line)
        or re.match(r"\[gw\d+\] \[ *\d+%\]", line)
    ]


@pytest.mark.parametrize(
    "args",
    [(), ("-v",), ("-vv",), ("-q",), ("-rA",), ("-p", "xdist.plugin", "-n", "2")],
    ids=["default", "verbose", "very-verbose", "quiet", "all-reports", "xdist"],
)
def test_a_slice_shows_no_progress_and_ends_as_pytest_does(
    project: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    plain_code, plain = _plain(project, *args)
    assert _progress(plain)  # what the slice leaves out
    code, out = _slice(project, tmp_path / "r", *args)
    assert _progress(out) == []
    assert code == plain_code == 1
    assert _counts(out) == _counts(plain) == COUNTS
    # The failures and errors sections, and the short summary, as pytest writes them.
    for text in (
        "= FAILURES =",
        "= ERRORS =",
        "_ ERROR at teardown of test_breaks_in_teardown _",
        "one is not two",
        "RuntimeError: teardown broke",
        "Captured stdout teardown",
        "said in teardown",
        "short test summary info",
        "FAILED test_suite.py::test_fails - AssertionError: one is not two",
    ):
        assert (text in out) == (text in plain), text
    assert "said in teardown" in out
    # Every plugin's summary runs and sees every passed test, and what a plugin added to a
    # passing teardown; the passing setups and teardowns of silent tests are gone.
    assert "conftest summary: passed=32 phases=2 noted=1" in out
    # (pytest keeps every passing setup and teardown: all but the skipped test's setup and the
    # broken teardown.)
    assert f"conftest summary: passed=32 phases={2 * SELECTED - 2} noted=1" in plain
    assert "written through the terminal writer" in out


def test_setup_show_and_stopping_early_still_write_what_pytest_writes(
    project: Path, tmp_path: Path
) -> None:
    code, out = _slice(project, tmp_path / "show", "--setup-show", "-k", "uses_fixture")
    assert code == 0
    assert "SETUP    F plain_fixture" in out and "TEARDOWN F plain_fixture" in out
    # The test's line, without the letter pytest appends as its progress.
    [line] = [line for line in out.splitlines() if "::test_uses_fixture" in line]
    assert line.strip() == "test_suite.py::test_uses_fixture (fixtures used: plain_fixture)"
    code, out = _slice(project, tmp_path / "x", "-x")
    plain_code, plain = _plain(project, "-x")
    assert code == plain_code == 1
    assert "stopping after 1 failures" in out
    assert _counts(out) == _counts(plain) == "1 failed, 30 passed"
    assert _progress(out) == []


def test_durations_still_list_every_phase(project: Path, tmp_path: Path) -> None:
    args = ("--durations=0", "-vv", "-k", "many")
    _, out = _slice(project, tmp_path / "r", *args)
    _, plain = _plain(project, *args)
    assert _progress(out) == []
    phases = re.compile(r"^[\d.]+s (setup|call|teardown) +(\S+)$", re.M)
    assert len(phases.findall(out)) == len(phases.findall(plain)) == 3 * 30


def test_another_reporter_or_none_is_left_as_it_is(project: Path, tmp_path: Path) -> None:
    # A plugin that puts its own reporter in pytest's place (as pytest-sugar does).
    (project / "conftest.py").write_text(
        CONFTEST
        + """

from _pytest.terminal import TerminalReporter


class OwnReporter(TerminalReporter):
    pass


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    standard = config.pluginmanager.getplugin("terminalreporter")
    config.pluginmanager.unregister(standard)
    config.pluginmanager.register(OwnReporter(config), "terminalreporter")
"""
    )
    code, out = _slice(project, tmp_path / "own")
    assert code == 1 and _counts(out) == COUNTS
    assert _progress(out)  # its progress, as it writes it
    # No reporter at all (a slice cannot run so: its command line uses the reporter's options).
    (project / "conftest.py").write_text(CONFTEST)
    (tmp_path / "path").mkdir()
    (tmp_path / "path" / f"{QUIET_MODULE}.py").write_text(quiet_source())
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:terminal", "-p", QUIET_MODULE],
        cwd=project,
        env={**os.environ, **FAST, "PYTHONPATH": str(tmp_path / "path")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", "")
