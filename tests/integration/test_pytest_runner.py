"""The pytest runner plugin against real pytest: collect → command → run → parse.

For every selection, three sets must agree:

- the tests the test itself computes from ``pytest --collect-only -q`` (its own parsing, not the
  plugin's) filtered by a predicate over plain node ids;
- the tests the fixture project logged as they ran (an autouse fixture appends each node id to
  ``$HOSTILE_RUN_LOG``), i.e. what pytest really executed;
- the tests the plugin parsed from pytest's JUnit report.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagpar_plugins.pytest as plugin
import pytest
from dagpar_plugins.pytest.collect import COLLECTION_ERROR
from dagpar_plugins.pytest.files import EVENTS_FILE

from dagpar_cli import (
    REPORT_DIR_PLACEHOLDER,
    ExecutionError,
    RunnerSpec,
    Selection,
    Status,
    TestCase,
    TestResult,
)
from dagpar_cli.testing import LocalRunnerHost, run_runner_commands

PROJECT = Path(__file__).resolve().parents[1] / "data" / "projects" / "pytest-hostile"
PYTEST = (sys.executable, "-m", "pytest")
BROKEN = ("suite/check_broken.py", "suite/check_import_error.py")
# Skipped by a mark: reported, but never enters the test body (nor the run log).
NOT_EXECUTED = {"suite/check_classes.py::test_skipped"}
# The machine's third-party pytest plugins (hypothesis, xdist...) only slow the many short runs
# down; one test keeps them (`test_statuses_of_the_hostile_suite`).
FAST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
RUNNER = plugin.PytestRunner()


def independent_nodeids(cwd: Path, *args: str) -> list[str]:
    """Node ids as plain ``pytest --collect-only -q`` prints them (rootdir-relative)."""
    proc = subprocess.run(
        [*PYTEST, "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **FAST},
    )
    lines = proc.stdout.split("\n\n", 1)[0].splitlines()
    return [line for line in lines if "::" in line]


def to_case(nodeid: str, prefix: str) -> TestCase:
    """A rootdir-relative node id as a test of a toolchain whose source is *prefix*."""
    path, name = nodeid.split("::", 1)
    assert path.startswith(prefix)
    return TestCase(path[len(prefix) :], name)


@dataclass
class Ran:
    """What one slice did."""

    results: list[TestResult]
    executed: set[str]  # node ids the fixture logged
    argv: tuple[str, ...]
    progress: int | None  # what the live progress said once the slice ended

    @property
    def tests_run(self) -> int:
        """Results of tests pytest ran (collection errors are no tests)."""
        return sum(r.name != COLLECTION_ERROR for r in self.results)

    @property
    def ids(self) -> set[str]:
        return {r.id for r in self.results}


def run_selection(
    spec: RunnerSpec, selection: Selection, report_dir: Path, *, fast: bool = True
) -> Ran:
    """Run the plugin's commands like an executor would: substitute, write files, run, parse."""
    report_dir.mkdir(parents=True)
    log = report_dir / "ran.log"
    commands = RUNNER.command(spec=spec, selection=selection)
    assert commands is not None
    env = {"HOSTILE_RUN_LOG": str(log), **(FAST if fast else {})}
    # As the engine does: the placeholder is substituted in file contents and env too.
    run = run_runner_commands(commands, spec, report_dir, env=env)
    results: list[TestResult] = RUNNER.parse(spec=spec, report_dir=report_dir, outcome=run.combined)
    where = str(report_dir.resolve())
    argv = (
        tuple(a.replace(REPORT_DIR_PLACEHOLDER, where) for a in commands[-1].argv)
        if commands
        else ()
    )
    executed = set(log.read_text(encoding="utf-8").splitlines()) if log.exists() else set()
    assert len({r.id for r in results}) == len(results), "a test was reported twice"
    events = report_dir / EVENTS_FILE
    for line in events.read_bytes().splitlines(keepends=True) if events.exists() else ():
        # Each event is one line exactly as json.dumps writes it: ASCII, whatever the id holds.
        assert line == (json.dumps(json.loads(line)) + "\n").encode("ascii")
    progress = RUNNER.progress(spec=spec, report_dir=report_dir)
    return Ran(results=results, executed=executed, argv=argv, progress=progress)


@pytest.fixture(scope="module")
def suite_spec() -> RunnerSpec:
    # pytest.ini sits in the project, above the source: node ids are not source-relative.
    return RunnerSpec(name="pytest", workspace=PROJECT, source="suite", command=PYTEST)


@pytest.fixture(scope="module")
def all_nodeids() -> list[str]:
    return independent_nodeids(PROJECT / "suite")


@pytest.fixture(scope="module")
def collected(suite_spec: RunnerSpec) -> list[TestCase]:
    tests = RUNNER.collect(spec=suite_spec, host=LocalRunnerHost(PROJECT / "suite", FAST))
    assert tests is not None
    return tests


def test_collect_lists_exactly_what_pytest_lists(
    collected: list[TestCase], all_nodeids: list[str]
) -> None:
    expected = [to_case(n, "suite/") for n in all_nodeids]
    errors = [TestCase(path.removeprefix("suite/"), COLLECTION_ERROR) for path in BROKEN]
    assert collected == expected + errors
    assert len(expected) == 33


# Each selection: (test id, how to select, which node ids it means). ``items`` selections use
# file-level and finer selectors (Selection.items); ``tests`` selections name exact tests.
Pred = Callable[[str], bool]


def _name(nodeid: str) -> str:
    return nodeid.split("::", 1)[1]


SELECTIONS: list[tuple[str, str, Pred]] = [
    ("everything", "files", lambda n: True),
    ("one-file", "files", lambda n: n.startswith("suite/check_names.py::")),
    ("one-test", "tests", lambda n: _name(n) == "test_plain"),
    ("prefix-sibling", "tests", lambda n: _name(n) == "test_plain_other"),
    ("regex-metachars", "tests", lambda n: "^$" in n),
    ("double-colon-param", "tests", lambda n: _name(n) == "test_hostile[a::b]"),
    ("cjk-param", "tests", lambda n: "\\u65e5" in n),
    ("accented-params", "tests", lambda n: "\\xe9" in n),
    ("duplicate-id-suffix", "tests", lambda n: _name(n) == "test_hostile[a b0]"),
    ("brackets-in-param", "tests", lambda n: _name(n) == "test_hostile[x[1]]"),
    ("lone-brackets", "tests", lambda n: _name(n) in ("test_sub[[]", "test_sub[]]")),
    ("colons-in-subdir", "tests", lambda n: _name(n) == "test_sub[a::b::c]"),
    ("nested-class", "tests", lambda n: _name(n).endswith("CheckInnermost::test_deeper")),
    ("class-param", "tests", lambda n: _name(n) == "CheckOuter::test_param[[z]]"),
    ("outer-class-only", "tests", lambda n: _name(n).startswith("CheckOuter::test_")),
    ("skip-and-xfail", "tests", lambda n: _name(n) in ("test_skipped", "test_xfail")),
    (
        "failures",
        "tests",
        lambda n: _name(n) in ("test_failing", "test_fail_and_teardown_error", "test_setup_error"),
    ),
    ("quotes-and-tabs", "tests", lambda n: "'" in n or "\\t" in n or "-dash" in n),
    ("placeholder-in-id", "tests", lambda n: "{report_dir}" in n),
    ("unicode-file", "files", lambda n: "données" in n),
    ("space-dir-file", "files", lambda n: n.startswith("suite/sub dir/check_sub.py::")),
    ("every-other", "tests", lambda n: sum(map(ord, n)) % 2 == 0),
    ("every-third-as-items", "items", lambda n: sum(map(ord, n)) % 3 == 0),
    ("params-only", "items", lambda n: "[" in _name(n)),
]


def _selection(kind: str, nodeids: list[str], broken: tuple[str, ...] = ()) -> Selection:
    cases = [to_case(n, "suite/") for n in nodeids]
    errors = [(p.removeprefix("suite/"),) for p in broken]
    if kind == "files":
        files = dict.fromkeys((c.path,) for c in cases)
        return Selection(items=(*files, *errors))
    if kind == "items":
        return Selection(items=(*((c.path, c.name) for c in cases), *errors))
    tests = [*cases, *(TestCase(e[0], COLLECTION_ERROR) for e in errors)]
    return Selection(items=tuple(dict.fromkeys((c.path,) for c in tests)), tests=tuple(tests))


@pytest.mark.parametrize(
    ("kind", "predicate"), [s[1:] for s in SELECTIONS], ids=[s[0] for s in SELECTIONS]
)
def test_runs_exactly_the_selection(
    kind: str,
    predicate: Pred,
    suite_spec: RunnerSpec,
    all_nodeids: list[str],
    collected: list[TestCase],
    tmp_path: Path,
) -> None:
    wanted = [n for n in all_nodeids if predicate(n)]
    assert wanted, "a selection must select something"
    ran = run_selection(suite_spec, _selection(kind, wanted), tmp_path / "report")
    expected_ids = {to_case(n, "suite/").id for n in wanted}
    assert ran.ids == expected_ids
    assert ran.executed == set(wanted) - NOT_EXECUTED
    assert ran.progress == ran.tests_run  # one byte of live progress per test
    # What ran is named exactly as collected (the engine matches results to the plan by id).
    assert ran.ids <= {t.id for t in collected}
    if kind != "files":
        # Nothing outside the selection was imported: the broken files did not surface.
        assert not any(r.name == COLLECTION_ERROR for r in ran.results)


def test_statuses_of_the_hostile_suite(suite_spec: RunnerSpec, tmp_path: Path) -> None:
    files = ("check_classes.py", "check_names.py", *(p.removeprefix("suite/") for p in BROKEN))
    selection = Selection(items=tuple((f,) for f in files))
    ran = run_selection(suite_spec, selection, tmp_path / "r", fast=False)
    status = {r.id: r.status for r in ran.results}
    assert status["check_classes.py::test_failing"] is Status.FAILED
    assert status["check_classes.py::test_fail_and_teardown_error"] is Status.FAILED
    assert status["check_classes.py::test_setup_error"] is Status.ERROR
    assert status["check_classes.py::test_skipped"] is Status.SKIPPED
    assert status["check_classes.py::test_xfail"] is Status.SKIPPED
    assert status[f"check_broken.py::{COLLECTION_ERROR}"] is Status.ERROR
    assert status[f"check_import_error.py::{COLLECTION_ERROR}"] is Status.ERROR
    assert status["check_names.py::test_hostile[.*+?()[]{}|^$\\\\]"] is Status.PASSED
    by_id = {r.id: r for r in ran.results}
    assert "SyntaxError" in by_id[f"check_broken.py::{COLLECTION_ERROR}"].message
    assert sum(s is Status.PASSED for s in status.values()) == 22


def test_collection_error_with_a_test_from_another_file(
    suite_spec: RunnerSpec, all_nodeids: list[str], tmp_path: Path
) -> None:
    wanted = [n for n in all_nodeids if _name(n) == "CheckSub::test_method"]
    ran = run_selection(suite_spec, _selection("tests", wanted, BROKEN[:1]), tmp_path / "r")
    assert ran.ids == {
        "sub dir/check_sub.py::CheckSub::test_method",
        f"check_broken.py::{COLLECTION_ERROR}",
    }
    # --continue-on-collection-errors: the broken file does not stop the other test.
    assert ran.executed == set(wanted)


def test_source_at_the_rootdir(tmp_path: Path) -> None:
    spec = RunnerSpec(name="pytest", workspace=PROJECT, command=PYTEST)
    collected = RUNNER.collect(spec=spec, host=LocalRunnerHost(PROJECT, FAST))
    nodeids = independent_nodeids(PROJECT)
    assert collected is not None
    assert [t.id for t in collected[: len(nodeids)]] == nodeids
    wanted = [n for n in nodeids if "[" in n]
    tests = tuple(TestCase(*n.split("::", 1)) for n in wanted)
    ran = run_selection(spec, Selection(items=(), tests=tests), tmp_path / "r")
    assert ran.ids == set(wanted)
    assert ran.executed == set(wanted)


def test_user_args_narrow_collection_and_runs_alike(tmp_path: Path) -> None:
    spec = RunnerSpec(
        name="pytest", workspace=PROJECT, source="suite", command=PYTEST, args=("-k", "grid")
    )
    collected = RUNNER.collect(spec=spec, host=LocalRunnerHost(PROJECT / "suite", FAST))
    assert collected is not None
    assert {t.id for t in collected} == {
        t.id
        for t in map(
            lambda n: to_case(n, "suite/"), independent_nodeids(PROJECT / "suite", "-k", "grid")
        )
    } | {f"{p.removeprefix('suite/')}::{COLLECTION_ERROR}" for p in BROKEN}
    ran = run_selection(spec, Selection(items=(("check_names.py",),)), tmp_path / "r")
    assert ran.ids == {t.id for t in collected if t.path == "check_names.py"}


def test_user_exitfirst_and_verbose_do_not_cut_the_listing(
    collected: list[TestCase], tmp_path: Path
) -> None:
    spec = RunnerSpec(
        name="pytest", workspace=PROJECT, source="suite", command=PYTEST, args=("-x", "-vv")
    )
    listed = RUNNER.collect(spec=spec, host=LocalRunnerHost(PROJECT / "suite", FAST))
    assert listed == collected


@pytest.mark.slow
def test_selection_holds_under_xdist(
    suite_spec: RunnerSpec, all_nodeids: list[str], tmp_path: Path
) -> None:
    spec = RunnerSpec(
        name="pytest", workspace=PROJECT, source="suite", command=PYTEST, args=("-n", "2")
    )
    wanted = [n for n in all_nodeids if "[" in n]
    # Third-party plugins stay on: xdist is one of them.
    ran = run_selection(spec, _selection("tests", wanted), tmp_path / "r", fast=False)
    assert ran.ids == {to_case(n, "suite/").id for n in wanted}
    assert ran.executed == set(wanted)
    assert ran.progress == len(wanted)  # counted once, by the controller, not by each worker


def test_a_broken_conftest_is_its_directory_s_collection_error(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    with (project / "suite" / "sub dir" / "conftest.py").open("a") as stream:
        stream.write("raise RuntimeError('conftest broke')\n")
    spec = RunnerSpec(name="pytest", workspace=project, source="suite", command=PYTEST)
    collected = RUNNER.collect(spec=spec, host=LocalRunnerHost(project / "suite", FAST))
    assert collected is not None
    assert TestCase("sub dir", COLLECTION_ERROR) in collected
    assert not any(t.path.startswith("sub dir/") for t in collected)
    plain = [t for t in collected if t.path == "check_names.py" and t.name == "test_plain"]
    selection = Selection(items=(("sub dir",), ("check_broken.py",)), tests=None)
    ran = run_selection(spec, selection, tmp_path / "r1")
    assert {(r.id, r.status) for r in ran.results} == {
        (f"sub dir::{COLLECTION_ERROR}", Status.ERROR),
        (f"check_broken.py::{COLLECTION_ERROR}", Status.ERROR),
    }
    assert "conftest broke" in ran.results[0].details + ran.results[1].details
    # A slice without the broken directory never loads its conftest.
    ran = run_selection(spec, Selection(items=(), tests=tuple(plain)), tmp_path / "r2")
    assert ran.ids == {"check_names.py::test_plain"}


@pytest.fixture(scope="module")
def big_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("big")
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "tests").mkdir()
    for i in range(3):
        (root / "tests" / f"test_many_{i}.py").write_text(
            "import pytest\n\n\n"
            "@pytest.mark.parametrize('n', range(2200), ids=lambda n: f'case {n} [x]::y')\n"
            "def test_case(n):\n"
            "    pass\n"
        )
    yield root


@pytest.mark.slow
def test_five_thousand_ids(big_project: Path, tmp_path: Path) -> None:
    spec = RunnerSpec(name="pytest", workspace=big_project, command=PYTEST)
    collected = RUNNER.collect(spec=spec, host=LocalRunnerHost(big_project, FAST))
    assert collected is not None and len(collected) == 6600
    # Every fifth id left out, so the selection is neither whole files nor contiguous.
    chosen = tuple(t for i, t in enumerate(collected) if i % 5 != 0)[:5000]
    assert len(chosen) == 5000
    ran = run_selection(spec, Selection(items=(), tests=chosen), tmp_path / "r")
    assert len(ran.results) == 5000
    assert ran.ids == {t.id for t in chosen}
    assert all(r.status is Status.PASSED for r in ran.results)
    # The ids travel in a file: the command line stays short.
    assert sum(len(a) for a in ran.argv) < 1000


@pytest.mark.parametrize("import_mode", ["prepend", "importlib"])
def test_packages_and_doctests(tmp_path: Path, import_mode: str) -> None:
    files = {
        "pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['tests', 'src']\n",
        "src/calc.py": 'def add(a, b):\n    """\n    >>> add(1, 2)\n    3\n    """\n'
        "    return a + b\n",
        "tests/__init__.py": "",
        "tests/pkg/__init__.py": "",
        "tests/pkg/test_a.py": "def test_a():\n    pass\n\n\ndef test_b():\n    pass\n",
        "tests/other/__init__.py": "",
        "tests/other/test_a.py": "def test_a():\n    pass\n",
    }
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    args = ("--doctest-modules", f"--import-mode={import_mode}")
    spec = RunnerSpec(name="pytest", workspace=tmp_path, command=PYTEST, args=args)
    collected = RUNNER.collect(spec=spec, host=LocalRunnerHost(tmp_path, FAST))
    assert collected is not None
    # The doctest's name depends on the import mode (``calc.add`` or ``src.calc.add``).
    doctest = "src.calc.add" if import_mode == "importlib" else "calc.add"
    assert {t.id for t in collected} == {
        "tests/pkg/test_a.py::test_a",
        "tests/pkg/test_a.py::test_b",
        "tests/other/test_a.py::test_a",
        f"src/calc.py::{doctest}",
    }
    # Two files share a base name and a test name: only the one in tests/pkg may run.
    wanted = {"tests/pkg/test_a.py::test_a", f"src/calc.py::{doctest}"}
    chosen = tuple(t for t in collected if t.id in wanted)
    ran = run_selection(spec, Selection(items=(), tests=chosen), tmp_path / "r")
    assert ran.ids == {t.id for t in chosen}
    assert all(r.status is Status.PASSED for r in ran.results)


def test_project_venv_python_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    (tmp_path / "api" / "tests").mkdir(parents=True)
    (tmp_path / "api" / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    marker = tmp_path / "venv-python-used"
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\ntouch "{marker}"\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    spec = RunnerSpec(name="pytest", workspace=tmp_path, source="api")
    collected = RUNNER.collect(spec=spec, host=LocalRunnerHost(tmp_path / "api"))
    assert collected == [TestCase("tests/test_x.py", "test_x")]
    assert marker.exists()
    ran = run_selection(spec, Selection(items=(("tests/test_x.py",),)), tmp_path / "r")
    assert ran.argv[0] == "../.venv/bin/python"
    assert ran.ids == {"tests/test_x.py::test_x"}


def test_a_missing_runner_is_an_execution_error(tmp_path: Path) -> None:
    spec = RunnerSpec(name="pytest", workspace=tmp_path, command=("dagpar-no-such-pytest-binary",))
    with pytest.raises(ExecutionError, match="cannot start pytest"):
        RUNNER.collect(spec=spec, host=LocalRunnerHost(tmp_path))


def test_a_venv_without_pytest_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    # -S: no site-packages, so this interpreter has no pytest, like a fresh virtualenv.
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    python.chmod(0o755)
    spec = RunnerSpec(name="pytest", workspace=tmp_path)
    with pytest.raises(ExecutionError, match=r"\.venv/bin/python has no pytest"):
        RUNNER.collect(spec=spec, host=LocalRunnerHost(tmp_path))


def test_path_args_without_configuration(tmp_path: Path) -> None:
    # Without a configuration file, pytest < 8 put its rootdir at the common ancestor of the
    # path arguments (tests/unit here), newer ones at the invocation directory: either way the
    # listing must come out source-relative, and a run must select within the path argument.
    for name in ("tests/unit/test_u.py", "tests/unit/deep/test_d.py", "tests/other/test_o.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
    spec = RunnerSpec(name="pytest", workspace=tmp_path, command=PYTEST, args=("tests/unit",))
    collected = RUNNER.collect(spec=spec, host=LocalRunnerHost(tmp_path, FAST))
    assert collected is not None
    assert {t.id for t in collected} == {
        f"tests/unit/{f}::{n}"
        for f in ("test_u.py", "deep/test_d.py")
        for n in ("test_one", "test_two")
    }
    chosen = (TestCase("tests/unit/deep/test_d.py", "test_two"),)
    ran = run_selection(spec, Selection(items=(), tests=chosen), tmp_path / "r")
    assert ran.ids == {"tests/unit/deep/test_d.py::test_two"}


def _other_pythons() -> list[str]:
    return [p for p in os.environ.get("DAGPAR_TEST_PYTEST_PYTHONS", "").split(os.pathsep) if p]


# DAGPAR_TEST_PYTEST_PYTHONS adds interpreters with other pytest versions; without it the test
# runs on this interpreter's pytest, so it never skips.
@pytest.mark.parametrize("python", _other_pythons() or [sys.executable])
def test_other_pytest_versions(python: str, tmp_path: Path) -> None:
    """The selection plugin runs inside the project's pytest, whichever version it is."""
    spec = RunnerSpec(
        name="pytest", workspace=PROJECT, source="suite", command=(python, "-m", "pytest")
    )
    collected = RUNNER.collect(spec=spec, host=LocalRunnerHost(PROJECT / "suite"))
    assert collected is not None and len(collected) == 35
    hostile = tuple(t for t in collected if "[" in t.name or "Inner" in t.name)[::2]
    for n, selection in enumerate(
        [
            Selection(items=tuple(dict.fromkeys((t.path,) for t in collected))),
            Selection(items=(), tests=hostile),
        ]
    ):
        ran = run_selection(spec, selection, tmp_path / f"r{n}")
        expected = collected if selection.tests is None else hostile
        assert ran.ids == {t.id for t in expected}


@pytest.mark.parametrize("seed", [20261130, 7])
def test_random_hostile_ids_round_trip(tmp_path: Path, seed: int) -> None:
    """Ids drawn from an alphabet of separators, brackets, quotes, controls and non-ASCII."""
    rng = random.Random(seed)
    alphabet = list(" :[]{}()\\/|.*+?^$'\"\t\n\r;,#-=_~`@!%&<>") + list(
        "aZ09éß日本😀\u200b\x00\x7f"
    )
    ids = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(300)]
    ids += ["::", "[", "]", "", "a::b[c]::d", "{report_dir}"]
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    shutil.copy(PROJECT / "conftest.py", tmp_path / "conftest.py")  # logs what runs
    (tmp_path / "test_random.py").write_text(
        "import pytest\n\n"
        f"IDS = {ids!r}\n\n\n"
        "@pytest.mark.parametrize('i', range(len(IDS)), ids=[IDS[i] for i in range(len(IDS))])\n"
        "def test_id(i):\n"
        "    pass\n",
        encoding="utf-8",
    )
    spec = RunnerSpec(name="pytest", workspace=tmp_path, command=PYTEST)
    collected = RUNNER.collect(spec=spec, host=LocalRunnerHost(tmp_path, FAST))
    assert collected is not None
    assert [t.id for t in collected] == independent_nodeids(tmp_path)
    assert len(collected) == len(ids)
    chosen = tuple(rng.sample(collected, len(collected) // 2))
    ran = run_selection(spec, Selection(items=(), tests=chosen), tmp_path / "r")
    assert ran.ids == {t.id for t in chosen}
    assert ran.executed == {t.id for t in chosen}
