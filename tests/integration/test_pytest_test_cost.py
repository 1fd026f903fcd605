"""A pytest test's recorded seconds are what it costs its slice, pytest's own work included.

pytest's JUnit ``time`` sums a test's setup, call and teardown; what pytest does around them
(reporting each phase to every plugin, the selection plugin's bookkeeping) is not in it. On a
suite of many tiny tests that work is most of a slice's time; left out, the timing store books it
as the slice's start-up, and the planner will not cut such a file (nor hand its tail over).
"""

from __future__ import annotations

import sys
from pathlib import Path

import dagpar_plugins.pytest as plugin

from dagpar_cli import RunnerSpec, Selection, TestCase
from dagpar_cli.testing import run_runner_commands

#: Seconds a plugin spends reporting each test's call phase, outside the phase itself.
HOOK_SECONDS = 0.2

CONFTEST = f"""
import time


def pytest_runtest_logreport(report):
    if report.when == "call":
        time.sleep({HOOK_SECONDS})
"""

TESTS = """
import pytest


@pytest.mark.parametrize("i", range(3))
def test_tiny(i):
    pass
"""


def test_seconds_include_pytest_s_work_around_the_phases(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_tiny.py").write_text(TESTS)
    spec = RunnerSpec(
        name="pytest", workspace=project, command=(sys.executable, "-m", "pytest", "-p", "no:xdist")
    )
    runner = plugin.PytestRunner()
    tests = tuple(TestCase("test_tiny.py", f"test_tiny[{i}]") for i in range(3))
    commands = runner.command(spec=spec, selection=Selection(items=(), tests=tests))
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    run = run_runner_commands(commands, spec, report_dir)
    results = runner.parse(spec=spec, report_dir=report_dir, outcome=run.combined)
    assert sorted(r.name for r in results) == sorted(t.name for t in tests)
    # time.sleep sleeps at least as long as asked: each test cost its slice that much.
    assert all(r.seconds >= HOOK_SECONDS for r in results), [r.seconds for r in results]
    # The live stream says the same as the report.
    ended = [e for e in plugin.PytestStream(report_dir).poll() if e.kind == "end"]
    assert len(ended) == 3
    assert all(e.result is not None and e.result.seconds >= HOOK_SECONDS for e in ended)


COUNTING_CONFTEST = """
import os


def pytest_itemcollected(item):
    with open(os.environ["ITEMS_LOG"], "a") as log:
        log.write(item.nodeid + "\\n")
"""

PARAMETRIZED = """
import pytest


@pytest.fixture(params=["x", "y"])
def letter(request):
    return request.param


@pytest.mark.parametrize("i", range(400))
def test_many(i):
    pass


@pytest.mark.parametrize("j", range(2))
def test_fixture(j, letter):
    pass


class TestInClass:
    @pytest.mark.parametrize("k", ["a::b", "c[d]"])
    def test_odd_ids(self, k):
        pass
"""


def test_a_slice_builds_only_the_parametrized_tests_it_selects(tmp_path: Path) -> None:
    """Selecting 4 of a file's 400 parametrized tests creates about 4 test items, not 400: a
    slice holding part of a huge parametrize does work in proportion to its part."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(COUNTING_CONFTEST)
    (project / "test_many.py").write_text(PARAMETRIZED)
    spec = RunnerSpec(name="pytest", workspace=project, command=(sys.executable, "-m", "pytest"))
    runner = plugin.PytestRunner()
    names = [
        "test_many[0]",
        "test_many[399]",
        "test_fixture[y-1]",
        "TestInClass::test_odd_ids[a::b]",
    ]
    tests = tuple(TestCase("test_many.py", name) for name in names)
    commands = runner.command(spec=spec, selection=Selection(items=(), tests=tests))
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    log = tmp_path / "items.log"
    run = run_runner_commands(commands, spec, report_dir, env={"ITEMS_LOG": str(log)})
    results = runner.parse(spec=spec, report_dir=report_dir, outcome=run.combined)
    assert sorted(r.name for r in results) == sorted(names)
    assert all(r.status.value == "passed" for r in results), [r.message for r in results]
    built = log.read_text().splitlines()
    assert len(built) <= 2 * len(names), built


#: Seconds the slow file's import takes: work every slice that runs any of its tests pays.
IMPORT_SECONDS = 0.3


def test_a_files_collection_is_its_first_tests_setup(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_slow_import.py").write_text(
        f"import time\ntime.sleep({IMPORT_SECONDS})\n\n\n"
        "def test_a():\n    pass\n\n\ndef test_b():\n    pass\n"
    )
    (project / "test_quick.py").write_text("def test_c():\n    pass\n")
    spec = RunnerSpec(
        name="pytest", workspace=project, command=(sys.executable, "-m", "pytest", "-p", "no:xdist")
    )
    runner = plugin.PytestRunner()
    tests = (
        TestCase("test_slow_import.py", "test_a"),
        TestCase("test_slow_import.py", "test_b"),
        TestCase("test_quick.py", "test_c"),
    )
    commands = runner.command(spec=spec, selection=Selection(items=(), tests=tests))
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    run = run_runner_commands(commands, spec, report_dir)
    results = {
        r.name: r for r in runner.parse(spec=spec, report_dir=report_dir, outcome=run.combined)
    }
    assert sorted(results) == ["test_a", "test_b", "test_c"]
    # The import is the slow file's cost, carried once, by its first test; not a test's seconds.
    assert results["test_a"].setup_seconds >= IMPORT_SECONDS
    assert results["test_b"].setup_seconds == 0.0
    assert results["test_a"].seconds < IMPORT_SECONDS
    assert 0.0 < results["test_c"].setup_seconds < IMPORT_SECONDS
