"""The Jest runner plugin against real Jest on the jest-hostile fixture project.

Every selection goes through the plugin's whole cycle: collect → command(s) → run → parse. What
Jest itself reports is the judge: the tests it executed (its own ``--json`` reports, leaving out
those its name filter skipped) must be exactly the selected tests, and the selection computed
from the plugin's listing must equal the one computed here, independently, from a plain Jest run
of the whole project.

The project is copied into a directory whose path holds a space, and its ``node_modules`` is a
link to the suite's shared Jest install (``npm ci --prefix tests/data/jest-deps``), so the plugin
finds ``node_modules/.bin/jest`` in the source directory as it would in a user's project.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagpar_plugins import jest
from dagpar_plugins.jest import command as _jest_command
from projects import JEST_DEPS  # type: ignore[import-not-found]

from dagpar_cli import (
    ExecutionError,
    RunnerCommand,
    RunnerSpec,
    Selection,
    Status,
    TestCase,
)
from dagpar_cli.model import test_id as id_of
from dagpar_cli.pluginmanager import get_plugin_manager
from dagpar_cli.registry import build_runner_registry
from dagpar_cli.testing import LocalRunnerHost, run_runner_commands

pytestmark = [pytest.mark.node, pytest.mark.slow]

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "projects" / "jest-hostile"
RUNNER = jest.JestRunner()
REGEX = "__tests__/regex.test.js"
SAME_A = "__tests__/same-a.test.js"
SAME_B = "__tests__/same-b.test.js"
DUP = "__tests__/dup.test.js"
THROWS = "__tests__/throws.test.js"
BROKEN = "__tests__/broken.test.js"
SPACE = "__tests__/hostile names.test.js"
SIDE = "__tests__/side-effects.test.js"
META = "metacharacters .*+?()[]{}|^$\\ galore"

#: (path, name) of one test as Jest names it.
Key = tuple[str, str]
#: (path, name, occurrence): one test, same-named tests of a file told apart.
Id = tuple[str, str, int]


def _numbered(pairs: list[Key]) -> list[Id]:
    counts: Counter[Key] = Counter()
    out: list[Id] = []
    for pair in pairs:
        out.append((*pair, counts[pair]))
        counts[pair] += 1
    return out


@dataclass(frozen=True)
class Truth:
    """What Jest reports for a plain run of the whole project (no dagpar, no filter)."""

    #: Every test, with its Jest status; a name appears once per test (duplicates kept).
    tests: list[tuple[str, str, str]]
    #: Files Jest could not run.
    broken: set[str]

    def keys(self) -> list[Id]:
        """Every test, files that could not run as their one placeholder test."""
        keys = _numbered([(p, n) for p, n, _ in self.tests])
        keys += [(p, jest.SUITE_FAILED, 0) for p in sorted(self.broken)]
        return keys


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jest") / "work space"
    shutil.copytree(FIXTURE, root / "web", ignore=shutil.ignore_patterns("node_modules"))
    (root / "web" / "node_modules").symlink_to(JEST_DEPS / "node_modules")
    return root


@pytest.fixture(scope="module")
def spec(workspace: Path) -> RunnerSpec:
    return RunnerSpec(name="jest", workspace=workspace, source="web")


@pytest.fixture(scope="module")
def listing(spec: RunnerSpec) -> list[TestCase]:
    tests = RUNNER.collect(spec=spec, host=LocalRunnerHost(spec.source_dir))
    assert tests is not None
    return tests


def _relative(path: str, spec: RunnerSpec) -> str:
    return Path(path).resolve().relative_to(spec.source_dir.resolve()).as_posix()


@pytest.fixture(scope="module")
def truth(spec: RunnerSpec, tmp_path_factory: pytest.TempPathFactory) -> Truth:
    """A plain ``jest --json`` of the whole project, read here without the plugin's code."""
    out = tmp_path_factory.mktemp("truth") / "all.json"
    subprocess.run(
        ["node_modules/.bin/jest", "--ci", "--json", f"--outputFile={out}"],
        cwd=spec.source_dir,
        capture_output=True,
        timeout=300,
        check=False,
    )
    data = json.loads(out.read_text(encoding="utf-8"))
    tests, broken = [], set()
    for entry in data["testResults"]:
        path = _relative(entry["name"], spec)
        if entry["status"] == "failed" and not entry["assertionResults"]:
            broken.add(path)
        for a in entry["assertionResults"]:
            tests.append((path, " ".join([*a["ancestorTitles"], a["title"]]), a["status"]))
    return Truth(tests=tests, broken=broken)


@dataclass
class Ran:
    """One selection's trip through the plugin and Jest."""

    commands: list[RunnerCommand]
    #: (path, name) of every test Jest reports as executed (passed or failed), with repeats.
    executed: Counter[Key]
    #: Files Jest reports at all.
    files: set[str]
    results: dict[str, Status]


def _run(spec: RunnerSpec, selection: Selection, report_dir: Path) -> Ran:
    commands = RUNNER.command(spec=spec, selection=selection)
    assert commands is not None
    report_dir.mkdir(parents=True)
    outcome = run_runner_commands(commands, spec, report_dir, timeout=300).combined
    executed: Counter[Key] = Counter()
    files: set[str] = set()
    for report in sorted(report_dir.glob("jest-*.json")):
        if report.name.endswith(".selection.json"):
            continue
        for entry in json.loads(report.read_text(encoding="utf-8"))["testResults"]:
            path = _relative(entry["name"], spec)
            files.add(path)
            for a in entry["assertionResults"]:
                if a["status"] in ("passed", "failed"):
                    executed[(path, " ".join([*a["ancestorTitles"], a["title"]]))] += 1
    parsed = RUNNER.parse(spec=spec, report_dir=report_dir, outcome=outcome)
    assert parsed is not None
    results = {r.id: r.status for r in parsed}
    assert len(results) == len(parsed), "a test was reported twice"
    return Ran(commands=commands, executed=executed, files=files, results=results)


Pick = Callable[[str, str], bool]


@dataclass(frozen=True)
class Case:
    """A selection: which tests (a predicate on path and name) and how it is expressed."""

    id: str
    pick: Pick
    #: "tests": items are the picked tests' files and ``tests`` lists them; "items": whole
    #: files (every test of a file the predicate picks); "finer": one (path, name) item each.
    form: str = "tests"
    #: Lower the command-line budget to force batching.
    limit: int | None = None
    #: How many commands the selection must compile to, when that is the point of the case.
    commands: int | None = None


def _names(*names: str) -> Pick:
    return lambda _p, n: n in names


def _in(path: str, *names: str) -> Pick:
    return lambda p, n: p == path and (not names or n in names)


def _either(*picks: Pick) -> Pick:
    return lambda p, n: any(pick(p, n) for pick in picks)


_ALTERNATE: dict[Key, bool] = {}


def _every_other(p: str, n: str) -> bool:
    return _ALTERNATE.setdefault((p, n), len(_ALTERNATE) % 2 == 0)


CASES = [
    Case("everything-whole", lambda _p, _n: True, form="items", commands=1),
    Case("everything-as-tests", lambda _p, _n: True),
    Case("one-file-whole", _in(REGEX), form="items", commands=1),
    Case("file-name-with-space", _in(SPACE), form="items", commands=1),
    Case("same-name-two-files", _names("x"), commands=1),
    Case("x-from-a-y-from-b", _either(_in(SAME_A, "x"), _in(SAME_B, "y")), commands=2),
    Case("xy-from-a-y-from-b", _either(_in(SAME_A, "x", "y"), _in(SAME_B, "y")), commands=2),
    Case("metacharacter-describe", lambda _p, n: n.startswith(META)),
    Case("names-with-a-pipe", lambda _p, n: "|" in n),
    Case("unicode", lambda _p, n: any(ord(c) > 127 for c in n)),
    Case("add-not-add-more", _names("add"), commands=1),
    Case("add-more-only", _names("add more")),
    Case("deepest-describe-one-test", _names("level one level two level three deep test")),
    Case("deepest-describe-all", lambda _p, n: n.startswith("level one level two level three")),
    Case("each-row", _names("each add(2, 3) = 5")),
    Case("each-all-rows", lambda _p, n: n.startswith("each ")),
    Case("spaces-around", _names("  spaces   inside  and around  ")),
    Case("tab-in-name", _names("file with a space tab\there")),
    Case("skipped-and-todo", _names("skipped in source", "todo: write this test")),
    Case("failing-only", _names("fails on purpose")),
    Case("duplicate-name", _in(DUP, "twice")),
    Case("broken-and-one-test", _either(_in(BROKEN), _in(REGEX, "add")), commands=2),
    Case("throws-whole", _in(THROWS), form="items"),
    Case("all-but-failing", lambda _p, n: n != "fails on purpose"),
    Case("every-other-test", _every_other),
    Case("shared-describe", _names("shared name in two files"), commands=1),
    Case("finer-items", _either(_in(SAME_A, "x"), _in(REGEX, "add", "pipe | alone")), "finer"),
    Case("batched-whole", lambda _p, _n: True, form="items", limit=250),
    Case("batched-names", lambda p, n: p == REGEX and n != "add", limit=600),
]


def _selection(case: Case, listing: list[TestCase]) -> tuple[Selection, set[Id]]:
    picked = [t for t in listing if case.pick(t.path, t.name)]
    files = list(dict.fromkeys(t.path for t in picked))
    if case.form == "items":
        selected = {(t.path, t.name, t.occurrence) for t in listing if t.path in files}
        return Selection(items=tuple((f,) for f in files)), selected
    if case.form == "finer":
        items = tuple(dict.fromkeys((t.path, t.name) for t in picked))
        return Selection(items=items), {(t.path, t.name, t.occurrence) for t in picked}
    return (
        Selection(items=tuple((f,) for f in files), tests=tuple(picked)),
        {(t.path, t.name, t.occurrence) for t in picked},
    )


def _expected(case: Case, truth: Truth) -> set[Id]:
    """The selection computed from Jest's own plain run, without the plugin's listing."""
    keys = truth.keys()
    if case.form == "items":
        files = {p for p, n, _ in keys if case.pick(p, n)}
        return {(p, n, k) for p, n, k in keys if p in files}
    return {(p, n, k) for p, n, k in keys if case.pick(p, n)}


def test_the_battery_has_enough_selections() -> None:
    assert len(CASES) >= 20
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_jest_executes_exactly_the_selection(
    case: Case,
    spec: RunnerSpec,
    listing: list[TestCase],
    truth: Truth,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if case.limit is not None:
        monkeypatch.setattr(_jest_command, "MAX_COMMAND_BYTES", case.limit)
    selection, selected = _selection(case, listing)
    assert selected, "the case selects nothing"
    assert selected == _expected(case, truth)

    ran = _run(spec, selection, tmp_path / "reports")

    # What Jest executed: every selected test that can run, each as often as the project defines
    # it (twice for the duplicate name), and nothing else.
    runnable = Counter((p, n) for p, n, status in truth.tests if status in ("passed", "failed"))
    names = {(p, n) for p, n, _ in selected}
    expected_executed = Counter({k: c for k, c in runnable.items() if k in names})
    assert ran.executed == expected_executed
    assert ran.files == {p for p, _, _ in selected}
    # What dagpar reports: exactly the selected tests, each same-named one apart, with Jest's
    # verdicts.
    assert set(ran.results) == {id_of(p, n, k) for p, n, k in selected}
    for key, status in _truth_statuses(truth).items():
        if key in selected:
            assert ran.results[id_of(*key)] is status, key
    if case.commands is not None:
        assert len(ran.commands) == case.commands
    if case.limit is not None:
        assert len(ran.commands) > 1
        for command in ran.commands:
            assert sum(len(a.encode()) + 1 for a in command.argv) <= case.limit


def _truth_statuses(truth: Truth) -> dict[Id, Status]:
    statuses: dict[Id, Status] = {}
    numbered = _numbered([(p, n) for p, n, _ in truth.tests])
    for key, (_, _, status) in zip(numbered, truth.tests, strict=True):
        statuses[key] = {
            "passed": Status.PASSED,
            "failed": Status.FAILED,
            "pending": Status.SKIPPED,
            "todo": Status.SKIPPED,
        }[status]
    for path in truth.broken:
        statuses[(path, jest.SUITE_FAILED, 0)] = Status.ERROR
    return statuses


def test_listing_equals_jests_own_run(listing: list[TestCase], truth: Truth) -> None:
    assert sorted((t.path, t.name, t.occurrence) for t in listing) == sorted(truth.keys())
    assert [t.id for t in listing if t.path == DUP] == [
        f"{DUP}::twice",
        f"{DUP}::twice::#2",
        f"{DUP}::once",
    ]
    assert truth.broken == {BROKEN, THROWS}


def test_listing_runs_no_test_body_and_no_hook(spec: RunnerSpec, tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    host = LocalRunnerHost(spec.source_dir, env={"JEST_HOSTILE_MARKER": str(marker)})
    tests = RUNNER.collect(spec=spec, host=host)
    assert tests is not None and TestCase(SIDE, "records that it ran") in tests
    assert not marker.exists()
    # The marker does work: running the file writes it.
    monkey_env = {**os.environ, "JEST_HOSTILE_MARKER": str(marker)}
    subprocess.run(
        ["node_modules/.bin/jest", "--ci", "--runTestsByPath", SIDE],
        cwd=spec.source_dir,
        env=monkey_env,
        capture_output=True,
        timeout=300,
        check=True,
    )
    assert marker.read_text(encoding="utf-8").split() == ["beforeAll", "body"]


def test_the_runner_is_found_through_the_plugin_manager(spec: RunnerSpec) -> None:
    runner = build_runner_registry(get_plugin_manager()).get("jest")
    tests = runner.collect(spec, LocalRunnerHost(spec.source_dir))
    assert TestCase(SAME_A, "x") in tests
    commands = runner.command(spec, Selection(items=((SAME_A,),)))
    assert commands[0].argv[0] == "./node_modules/.bin/jest"


def test_a_missing_jest_says_how_to_install_it(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    spec = RunnerSpec(name="jest", workspace=tmp_path, source="web")
    with pytest.raises(ExecutionError, match=r"run `npm ci` in web/"):
        RUNNER.collect(spec=spec, host=LocalRunnerHost(tmp_path / "web"))
