"""What the selection plugin adds to each test of a pytest slice, against real pytest.

A slice of many tiny tests pays for every hook implementation the plugin adds per test, so when
pytest runs the tests itself the plugin writes a test's start from its run protocol and its end
from its teardown's report: it implements none of pytest's per-test log hooks. Under
pytest-xdist the controller hears of the workers' tests only through those hooks, and implements
them. Either way each test has one start and one end event, and one byte of progress.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dagpar_plugins.pytest as plugin
import pytest
from dagpar_plugins.pytest.files import EVENTS_FILE

from dagpar_cli import RunnerSpec, Selection, Status
from dagpar_cli.testing import run_runner_commands

RUNNER = plugin.PytestRunner()

_CONFTEST = """
import json
from pathlib import Path

LOG_HOOKS = ("pytest_runtest_logstart", "pytest_runtest_logfinish")


def pytest_sessionfinish(session):
    config = session.config
    if hasattr(config, "workerinput"):
        return
    manager = config.pluginmanager
    seen = {}
    for hook in LOG_HOOKS:
        impls = getattr(config.hook, hook).get_hookimpls()
        seen[hook] = sorted(manager.get_name(impl.plugin) or "" for impl in impls)
    (Path(__file__).parent / "hooks.json").write_text(json.dumps(seen))
"""

_TESTS = """
import pytest


@pytest.mark.parametrize("i", range(6))
def test_p(i):
    assert i != 3


def test_skipped():
    pytest.skip("why")
"""


def _run(tmp_path: Path, *args: str) -> tuple[dict[str, list[str]], list[dict[str, object]]]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(_CONFTEST)
    (project / "test_p.py").write_text(_TESTS)
    spec = RunnerSpec(
        name="pytest",
        workspace=project,
        command=(sys.executable, "-m", "pytest", "-p", "no:randomly", *args),
    )
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    commands = RUNNER.command(spec=spec, selection=Selection(items=(("test_p.py",),)))
    run = run_runner_commands(commands, spec, report_dir, check=False)
    results = RUNNER.parse(spec=spec, report_dir=report_dir, outcome=run.combined)
    statuses = sorted((r.name, r.status) for r in results)
    assert statuses == sorted(
        [(f"test_p[{i}]", Status.FAILED if i == 3 else Status.PASSED) for i in range(6)]
        + [("test_skipped", Status.SKIPPED)]
    )
    assert RUNNER.progress(spec=spec, report_dir=report_dir) == 7
    events = [json.loads(line) for line in (report_dir / EVENTS_FILE).read_bytes().splitlines()]
    hooks = json.loads((project / "hooks.json").read_text())
    return hooks, events


def _one_start_and_end_each(events: list[dict[str, object]]) -> None:
    names = [f"test_p[{i}]" for i in range(6)] + ["test_skipped"]
    for kind in ("start", "end"):
        assert sorted(str(e["name"]) for e in events if e["e"] == kind) == sorted(names)
    ends = {e["name"]: e for e in events if e["e"] == "end"}
    assert ends["test_p[3]"]["status"] == "failed"
    assert ends["test_skipped"]["status"] == "skipped"
    assert ends["test_skipped"]["message"] == "Skipped: why"


def test_pytest_running_its_tests_gets_no_log_hook_of_the_plugin(tmp_path: Path) -> None:
    hooks, events = _run(tmp_path)
    for hook, plugins in hooks.items():
        assert not [name for name in plugins if name.startswith("dagpar")], hook
    _one_start_and_end_each(events)
    # A test's start comes before its end, and the next test's start after both.
    assert [e["e"] for e in events] == ["start", "end"] * 7


def test_the_pytest_xdist_controller_writes_the_workers_events(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    hooks, events = _run(tmp_path, "-n", "2")
    for plugins in hooks.values():
        assert [name for name in plugins if name.startswith("dagpar")] == [
            "dagpar_pytest_select_log"
        ]
    _one_start_and_end_each(events)
