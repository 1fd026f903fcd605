"""The listing cache through ``dagpar check``: a second run does not list, and never misses a test.

Listings are counted for real: the pytest workspaces' ``conftest.py`` appends a line to a log
(outside the workspace) whenever pytest runs with ``--collect-only``; the Go workspace runs
``go`` through a wrapper that logs every ``go list``.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from projects import JEST_DEPS  # type: ignore[import-not-found]

from dagpar_cli.testing import DagparResult

COUNTING_CONFTEST = """
    import os

    def pytest_collection_finish(session):
        if session.config.option.collectonly:
            with open(os.environ["LISTING_LOG"], "a") as log:
                log.write("listed\\n")
"""

SUITE = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "tests/conftest.py": COUNTING_CONFTEST,
    "tests/test_alpha.py": """
        def test_a1():
            pass

        def test_a2():
            pass

        def test_a3():
            pass
    """,
    "tests/test_beta.py": """
        import pytest

        @pytest.mark.parametrize("n", [1, 2])
        def test_b(n):
            pass
    """,
    "tests/sub/test_gamma.py": """
        class TestGamma:
            def test_g(self):
                pass
    """,
}

ALL = {
    "tests/test_alpha.py::test_a1",
    "tests/test_alpha.py::test_a2",
    "tests/test_alpha.py::test_a3",
    "tests/test_beta.py::test_b[1]",
    "tests/test_beta.py::test_b[2]",
    "tests/sub/test_gamma.py::TestGamma::test_g",
}


@pytest.fixture
def listing_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "listings.log"
    monkeypatch.setenv("LISTING_LOG", str(log))
    return log


def listings(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def check(dagpar_run: Callable[..., DagparResult], ws: Path, *extra: str) -> dict[str, Any]:
    result = dagpar_run("check", "-C", ws, "-j", "2", "--json", *extra)
    assert result.exit_code == 0, result
    (only,) = result.json()["checks"]
    return dict(only)


def reported(run: dict[str, Any]) -> Counter[str]:
    return Counter(t["id"] for t in run["tests"])


def logging_runner(path: Path, script: str) -> Path:
    """Write *script*, a wrapper that logs each listing to ``LISTING_LOG``, as an executable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def edit_keeping_stamp(path: Path, old: str, new: str) -> None:
    """Edit *path* so that its size and mtime stay as they were: a change the key cannot see."""
    assert len(old) == len(new)
    st = path.stat()
    path.write_text(path.read_text().replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_the_second_run_does_not_list(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = make_workspace(SUITE)
    # dagpar's own reports, rewritten by every run inside the tree, do not count as changes.
    reports = ("--junit-xml", str(ws / "junit.xml"), "--report-html", str(ws / "report.html"))
    first = check(dagpar_run, ws, *reports)
    assert listings(listing_log) == 1
    second = check(dagpar_run, ws, *reports)
    third = check(dagpar_run, ws, *reports)
    assert listings(listing_log) == 1
    for run in (first, second, third):
        assert reported(run) == Counter(ALL)
    entries = list((ws / ".dagpar" / "listings").iterdir())
    assert len(entries) == 1

    monkeypatch.setenv("DAGPAR_NO_LISTING_CACHE", "1")
    assert reported(check(dagpar_run, ws)) == Counter(ALL)
    assert listings(listing_log) == 2


def test_dry_run_uses_the_cache(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
) -> None:
    ws = make_workspace(SUITE)
    check(dagpar_run, ws)
    dry = dagpar_run("check", "-C", ws, "-j", "2", "--dry-run", "--json")
    assert dry.exit_code == 0, dry
    assert listings(listing_log) == 1
    (plan,) = dry.json()["checks"]
    assert sum(len(s["items"]) for s in plan["slices"]) >= 3

    (ws / "tests" / "test_delta.py").write_text("def test_d():\n    pass\n")
    dry = dagpar_run("check", "-C", ws, "-j", "2", "--dry-run", "--json")
    assert listings(listing_log) == 2
    (plan,) = dry.json()["checks"]
    items = [i if isinstance(i, str) else i[0] for s in plan["slices"] for i in s["items"]]
    assert "tests/test_delta.py" in items


def test_a_new_test_file_is_run_and_reported_once(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
) -> None:
    ws = make_workspace(SUITE)
    check(dagpar_run, ws)
    check(dagpar_run, ws)
    (ws / "tests" / "test_delta.py").write_text("def test_d():\n    pass\n")
    run = check(dagpar_run, ws)
    assert listings(listing_log) == 2
    assert reported(run) == Counter(ALL | {"tests/test_delta.py::test_d"})


def test_a_new_test_in_an_existing_file_is_run(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
) -> None:
    ws = make_workspace(SUITE)
    check(dagpar_run, ws)
    check(dagpar_run, ws)
    alpha = ws / "tests" / "test_alpha.py"
    mtime = alpha.stat().st_mtime_ns
    with alpha.open("a") as out:
        out.write("\ndef test_a4():\n    pass\n")
    # Same mtime (a coarse clock, a fast edit): the new size still changes the key.
    os.utime(alpha, ns=(mtime, mtime))
    run = check(dagpar_run, ws)
    assert listings(listing_log) == 2
    assert reported(run) == Counter(ALL | {"tests/test_alpha.py::test_a4"})


def test_a_removed_test_is_not_reported_as_lost(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
) -> None:
    ws = make_workspace(SUITE)
    check(dagpar_run, ws)
    check(dagpar_run, ws)
    beta = ws / "tests" / "test_beta.py"
    beta.write_text(beta.read_text().replace("[1, 2]", "[1]"))
    run = check(dagpar_run, ws)
    assert listings(listing_log) == 2
    assert reported(run) == Counter(ALL - {"tests/test_beta.py::test_b[2]"})
    assert all(t["status"] == "passed" for t in run["tests"])


def test_a_stale_listing_heals_in_the_run_that_finds_it(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
) -> None:
    ws = make_workspace(SUITE)
    check(dagpar_run, ws)
    check(dagpar_run, ws)  # with history: the planner may cut test_alpha.py into its tests
    assert listings(listing_log) == 1
    # Rename a test without changing the file's size or mtime: the key cannot see it, so the
    # run starts from a listing with test_a2 (gone) and without test_x2 (new).
    edit_keeping_stamp(ws / "tests" / "test_alpha.py", "def test_a2", "def test_x2")
    expected = Counter((ALL - {"tests/test_alpha.py::test_a2"}) | {"tests/test_alpha.py::test_x2"})

    stale = check(dagpar_run, ws)
    assert reported(stale) == expected  # the new test ran once, the gone one is not an error
    assert all(t["status"] == "passed" for t in stale["tests"]), stale["tests"]
    assert listings(listing_log) == 2  # the run listed afresh to find out...
    assert not list((ws / ".dagpar" / "listings").iterdir())  # ...and dropped the entry

    again = check(dagpar_run, ws)
    assert listings(listing_log) == 3
    assert reported(again) == expected
    check(dagpar_run, ws)
    assert listings(listing_log) == 3


def test_a_stale_listing_under_a_filter_runs_only_what_it_selects(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
) -> None:
    ws = make_workspace(SUITE)
    check(dagpar_run, ws)
    edit_keeping_stamp(ws / "tests" / "test_alpha.py", "def test_a2", "def test_x2")
    run = check(dagpar_run, ws, "--filter", "tests/test_alpha.py::test_[ax]2")
    assert reported(run) == Counter({"tests/test_alpha.py::test_x2"})
    assert run["tests"][0]["status"] == "passed"


def test_a_package_installed_outside_the_workspace_lists_afresh(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pytest runs from a virtual environment outside the workspace (as `VIRTUAL_ENV` says),
    # which sees this interpreter's packages (pytest) through --system-site-packages.
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
        check=True,
    )
    (site_packages,) = venv.glob("lib/python*/site-packages")
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    ws = make_workspace(
        {
            **SUITE,
            "tests/test_optional.py": """
                import pytest

                probe = pytest.importorskip("dagpar_optional_probe")

                def test_uses_the_package():
                    assert probe.VALUE == 42
            """,
        }
    )
    check(dagpar_run, ws)
    assert reported(check(dagpar_run, ws)) == Counter(ALL)  # skipped while it is missing
    assert listings(listing_log) == 1

    # Installing the package changes nothing in the workspace, only the environment's
    # site-packages: the listing must still be made afresh, or the new test is never run.
    (site_packages / "dagpar_optional_probe.py").write_text("VALUE = 42\n")
    run = check(dagpar_run, ws)
    assert listings(listing_log) == 2
    assert reported(run) == Counter(ALL | {"tests/test_optional.py::test_uses_the_package"})
    assert all(t["status"] == "passed" for t in run["tests"]), run["tests"]

    check(dagpar_run, ws)
    assert listings(listing_log) == 2  # and the new listing is reused


GO_WRAPPER = """#!/bin/sh
if [ "$1" = list ]; then echo "$*" >> "$LISTING_LOG"; fi
exec go "$@"
"""


@pytest.mark.go
def test_go_second_run_does_not_list(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
    tmp_path: Path,
) -> None:
    wrapper = logging_runner(tmp_path / "bin" / "go-logged", GO_WRAPPER)
    ws = make_workspace(
        {
            "dagpar.yaml": f"toolchains:\n  svc: {{use: go, source: svc, runner: {wrapper}}}\n",
            "svc/go.mod": "module example.com/svc\n\ngo 1.19\n",
            "svc/store/store_test.go": """
                package store

                import "testing"

                func TestPut(t *testing.T) {
                    t.Run("one", func(t *testing.T) {})
                    t.Run("two", func(t *testing.T) {})
                }

                func TestGet(t *testing.T) {}
            """,
            "svc/api/api_test.go": """
                package api

                import "testing"

                func TestServe(t *testing.T) {}
            """,
        }
    )
    first = check(dagpar_run, ws)
    assert listings(listing_log) == 1
    second = check(dagpar_run, ws)
    third = check(dagpar_run, ws)
    # Subtests the listing cannot know do not count as a stale listing.
    assert listings(listing_log) == 1
    assert reported(first) == reported(second) == reported(third)
    assert {"svc/store::TestGet", "svc/api::TestServe"} <= set(reported(third))

    (ws / "svc" / "api" / "more_test.go").write_text(
        'package api\n\nimport "testing"\n\nfunc TestMore(t *testing.T) {}\n'
    )
    fourth = check(dagpar_run, ws)
    assert listings(listing_log) == 2
    assert reported(fourth)["svc/api::TestMore"] == 1


JEST_WRAPPER = """#!/bin/sh
case " $* " in *" --passWithNoTests "*) echo "$*" >> "$LISTING_LOG";; esac
exec "{jest}" "$@"
"""

#: :data:`JEST_WRAPPER` around the test suite's Jest install.
JEST_LOGGED = JEST_WRAPPER.format(jest=JEST_DEPS / "node_modules" / ".bin" / "jest")


@pytest.mark.node
def test_jest_second_run_does_not_list(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
    tmp_path: Path,
) -> None:
    wrapper = logging_runner(tmp_path / "bin" / "jest-logged", JEST_LOGGED)
    ws = make_workspace(
        {
            "dagpar.yaml": f"toolchains:\n  web: {{use: jest, source: web, runner: {wrapper}}}\n",
            "web/package.json": '{"name": "web", "private": true}\n',
            "web/src/sum.test.js": """
                describe("sum", () => {
                  test("adds", () => expect(1 + 1).toBe(2));
                  test.each([1, 2])("keeps %i", (n) => expect(n).toBe(n));
                });
            """,
            "web/src/other.test.js": """
                test("other", () => {});
            """,
        }
    )
    (ws / "web" / "node_modules").symlink_to(JEST_DEPS / "node_modules")
    first = check(dagpar_run, ws)
    assert listings(listing_log) == 1
    second = check(dagpar_run, ws)
    third = check(dagpar_run, ws)
    assert listings(listing_log) == 1
    assert reported(first) == reported(second) == reported(third)
    assert reported(third)["web/src/sum.test.js::sum keeps 2"] == 1

    (ws / "web" / "src" / "new.test.js").write_text('test("new", () => {});\n')
    fourth = check(dagpar_run, ws)
    assert listings(listing_log) == 2
    assert reported(fourth)["web/src/new.test.js::new"] == 1


WRITING_TEST = """
    import os
    import uuid
    from pathlib import Path

    def test_writes_outputs_into_the_tree():
        root = Path(__file__).resolve().parents[1]
        (root / ".coverage").write_text(uuid.uuid4().hex)
        (root / f".coverage.{uuid.uuid4().hex}").write_text("data")
        report = root / "coverage" / "lcov-report"
        report.mkdir(parents=True, exist_ok=True)
        (report / "index.html").write_text(uuid.uuid4().hex)
        (report / "sorter.js").write_text(uuid.uuid4().hex)
        (root / "tests" / "__snapshots__").mkdir(exist_ok=True)
        (root / "tests" / "__snapshots__" / "out.snap").write_text(uuid.uuid4().hex)
"""

WRITING_SUITE = {**SUITE, "tests/test_writes.py": WRITING_TEST}
WRITING_ALL = {*ALL, "tests/test_writes.py::test_writes_outputs_into_the_tree"}


def git_init(ws: Path, ignore: str) -> None:
    (ws / ".gitignore").write_text(ignore)
    for argv in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", "-C", str(ws), *argv], check=True, capture_output=True)


def test_outputs_a_run_writes_into_the_tree_do_not_list_again(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
) -> None:
    ws = make_workspace(WRITING_SUITE)
    first = check(dagpar_run, ws)
    assert listings(listing_log) == 1
    second = check(dagpar_run, ws)
    third = check(dagpar_run, ws)
    assert listings(listing_log) == 1
    for run in (first, second, third):
        assert reported(run) == Counter(WRITING_ALL)
    assert (ws / "coverage" / "lcov-report" / "index.html").exists()


def test_outputs_git_ignores_never_count(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
) -> None:
    ws = make_workspace(WRITING_SUITE)
    git_init(ws, ".coverage*\ncoverage/\n__snapshots__/\nbuild.log\n")
    check(dagpar_run, ws)
    assert listings(listing_log) == 1
    # Written between runs, not by one: only .gitignore can tell it is no test.
    (ws / "build.log").write_text("built\n")
    check(dagpar_run, ws)
    check(dagpar_run, ws)
    assert listings(listing_log) == 1


@pytest.mark.parametrize("in_git", [False, True], ids=["plain", "git"])
@pytest.mark.parametrize(
    "new_test", ["tests/test_delta.py", "coverage/test_delta.py", "coverage/lcov-report/x_test.py"]
)
def test_a_test_file_added_after_a_writing_run_lists_afresh(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
    in_git: bool,
    new_test: str,
) -> None:
    ws = make_workspace(
        {**WRITING_SUITE, "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["."]\n'}
    )
    if in_git:
        git_init(ws, ".coverage*\n")
    check(dagpar_run, ws)
    check(dagpar_run, ws)
    assert listings(listing_log) == 1
    (ws / new_test).write_text("def test_d():\n    pass\n")
    run = check(dagpar_run, ws)
    assert listings(listing_log) == 2
    assert reported(run)[f"{new_test}::test_d"] == 1
    # A test file removed lists afresh too.
    (ws / new_test).unlink()
    check(dagpar_run, ws)
    assert listings(listing_log) == 3


def test_a_new_directory_of_tests_after_a_writing_run_lists_afresh(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
) -> None:
    ws = make_workspace(WRITING_SUITE)
    check(dagpar_run, ws)
    check(dagpar_run, ws)
    assert listings(listing_log) == 1
    (ws / "tests" / "more").mkdir()
    (ws / "tests" / "more" / "test_more.py").write_text("def test_m():\n    pass\n")
    run = check(dagpar_run, ws)
    assert listings(listing_log) == 2
    assert reported(run)["tests/more/test_more.py::test_m"] == 1


@pytest.mark.node
def test_jest_collect_coverage_does_not_list_again(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    listing_log: Path,
    tmp_path: Path,
) -> None:
    wrapper = logging_runner(tmp_path / "bin" / "jest-logged", JEST_LOGGED)
    ws = make_workspace(
        {
            "dagpar.yaml": f"toolchains:\n  web: {{use: jest, source: web, runner: {wrapper}}}\n",
            "web/package.json": (
                '{"name": "web", "private": true, "jest": {"collectCoverage": true,'
                ' "coverageReporters": ["json", "lcov", "text"]}}\n'
            ),
            "web/src/sum.js": "module.exports = (a, b) => a + b;\n",
            "web/src/sum.test.js": """
                const sum = require("./sum");
                test("adds", () => expect(sum(1, 1)).toBe(2));
            """,
            "web/src/other.test.js": """
                test("other", () => {});
            """,
        }
    )
    (ws / "web" / "node_modules").symlink_to(JEST_DEPS / "node_modules")
    check(dagpar_run, ws)
    assert listings(listing_log) == 1
    assert (ws / "web" / "coverage").is_dir()
    check(dagpar_run, ws)
    check(dagpar_run, ws)
    assert listings(listing_log) == 1
    (ws / "web" / "coverage" / "late.test.js").write_text('test("late", () => {});\n')
    (ws / "web" / "src" / "new.test.js").write_text('test("new", () => {});\n')
    run = check(dagpar_run, ws)
    assert listings(listing_log) == 2
    assert reported(run)["web/src/new.test.js::new"] == 1
