"""A Jest slice runs its tests in the Jest process itself, unless the toolchain asks for workers.

Real Jest, through the plugin's whole cycle (command → run → parse). The project's configuration
asks for two workers and its files have no recorded durations, so Jest would start a worker pool
for them; each test reports, through its own result, whether it ran in a worker: the process
that runs it is the one started here (its parent is this process) or a child of that one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dagpar_plugins import jest
from projects import JEST_DEPS  # type: ignore[import-not-found]

from dagpar_cli import RunnerSpec, Selection, Status
from dagpar_cli.testing import run_runner_commands

pytestmark = [pytest.mark.node, pytest.mark.slow]

RUNNER = jest.JestRunner()
FILES = [f"tests/f{k}.test.js" for k in range(3)]
#: Passes in the process dagpar started, fails in a worker of Jest's pool.
IN_BAND = """\
test("in band", () => { expect(process.ppid).toBe(Number(process.env.TEST_PARENT)); });
test("same name", () => {});
test("same name", () => {});
"""


def _project(root: Path, args: tuple[str, ...]) -> RunnerSpec:
    web = root / "web"
    (web / "tests").mkdir(parents=True)
    config = {"testEnvironment": "node", "maxWorkers": 2, "cacheDirectory": str(root / "cache")}
    (web / "package.json").write_text(json.dumps({"name": "w", "private": True, "jest": config}))
    (web / "node_modules").symlink_to(JEST_DEPS / "node_modules")
    for path in FILES:
        (web / path).write_text(IN_BAND)
    return RunnerSpec(name="jest", workspace=root, source="web", args=args)


def _run(spec: RunnerSpec, report_dir: Path) -> dict[str, list[Status]]:
    selection = Selection(items=tuple((path,) for path in FILES))
    commands = RUNNER.command(spec=spec, selection=selection)
    env = {"TEST_PARENT": str(os.getpid())}
    outcome = run_runner_commands(commands, spec, report_dir, env=env, timeout=300).combined
    statuses: dict[str, list[Status]] = {}
    for result in RUNNER.parse(spec, report_dir, outcome):
        statuses.setdefault(result.name, []).append(result.status)
    return statuses


def test_a_slice_runs_in_band_despite_the_projects_workers(tmp_path: Path) -> None:
    statuses = _run(_project(tmp_path, ()), tmp_path / "report")
    # Every result exactly once, same-named tests apart, and none of them in a worker.
    assert statuses == {
        "in band": [Status.PASSED] * 3,
        "same name": [Status.PASSED] * 6,
    }


@pytest.mark.parametrize("args", [("-w", "2"), ("--maxWorkers=2",)])
def test_workers_the_toolchain_asks_for_are_kept(tmp_path: Path, args: tuple[str, ...]) -> None:
    statuses = _run(_project(tmp_path, args), tmp_path / "report")
    assert statuses["in band"] == [Status.FAILED] * 3
    assert statuses["same name"] == [Status.PASSED] * 6
