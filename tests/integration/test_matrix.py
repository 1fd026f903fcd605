"""Several ``+parallel`` fields: the Cartesian product, cut into sub-grids, each cell once."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult

CONFIG = """
toolchains:
  cells: {use: ci/cells.py}
"""

CELLS = """
from __future__ import annotations
import json, os
from dagpar_cli import Directory, dag, field, object_type

@object_type
class Grid:
    workspace: Directory
    pythons: list[str] = field()  # +parallel
    files: list[str] = field(parallel=True)
    label: str = "unchanged"

    # +parallel
    def run(self) -> None:
        info = dag.current_slice()
        name = f"{info.index}-{info.total}" if info else "unsplit"
        with open(os.path.join(os.environ["GRID_LOG"], name), "w") as out:
            json.dump({"pythons": self.pythons, "files": self.files, "label": self.label}, out)
        for python in self.pythons:
            for path in self.files:
                with dag.parallel.task(path, pythons=python):
                    if python == os.environ.get("GRID_FAIL", "") and path == "f5.py":
                        raise AssertionError("fails under this python only")
                    marker = os.path.join(os.environ["GRID_LOG"], "..", "flaked")
                    flaky = python == os.environ.get("GRID_FLAKY", "") and path == "f2.py"
                    if flaky and not os.path.exists(marker):
                        open(marker, "w").close()
                        raise AssertionError("fails the first time")

@object_type
class Cells:
    source: Directory
    pythons: int = 3
    files: int = 6

    # +check
    def test(self) -> None:
        Grid(
            workspace=self.source,
            pythons=[f"3.{10 + i}" for i in range(self.pythons)],
            files=[f"f{i}.py" for i in range(self.files)],
            label="kept",
        ).run()
"""

PYTHONS = ["3.10", "3.11", "3.12"]
FILES = [f"f{i}.py" for i in range(6)]


@pytest.fixture
def grid_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where each slice of the grid toolchain records its receiver (``GRID_LOG``)."""
    log = tmp_path / "log"
    log.mkdir()
    monkeypatch.setenv("GRID_LOG", str(log))
    monkeypatch.delenv("GRID_FAIL", raising=False)
    monkeypatch.delenv("GRID_FLAKY", raising=False)
    return log


def _receivers(log: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(log.iterdir())]


def test_two_parallel_fields_run_every_combination_once_in_sub_grids(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    grid_log: Path,
) -> None:
    ws = make_workspace({"dagpar.yaml": CONFIG, "ci/cells.py": CELLS})
    result = dagpar_run("check", "-C", ws, "-j", "3", "--json")
    assert result.exit_code == 0, result
    receivers = _receivers(grid_log)
    assert len(receivers) >= 2
    cells: list[tuple[str, str]] = []
    for receiver in receivers:
        assert receiver["label"] == "kept"  # the other fields are unchanged
        pythons, files = receiver["pythons"], receiver["files"]
        assert isinstance(pythons, list) and isinstance(files, list)
        # Each field holds a subset of its values, in the parent's order: a sub-grid.
        assert pythons == [p for p in PYTHONS if p in pythons] and pythons
        assert files == [f for f in FILES if f in files] and files
        cells.extend(itertools.product(pythons, files))
    assert sorted(cells) == sorted(itertools.product(PYTHONS, FILES))  # each exactly once
    (check,) = result.json()["checks"]
    names = sorted(t["id"] for t in check["tests"])
    assert len(names) == 18 == len(set(names))
    assert "f0.py::run[pythons=3.11]" in names


def test_one_combination_failing_reads_as_such(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    grid_log: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRID_FAIL", "3.12")
    ws = make_workspace({"dagpar.yaml": CONFIG, "ci/cells.py": CELLS})
    html = ws / "report.html"
    result = dagpar_run("check", "-C", ws, "-j", "2", "--json", "--report-html", html)
    assert result.exit_code == 1, result
    (check,) = result.json()["checks"]
    failed = [t["id"] for t in check["tests"] if t["status"] != "passed"]
    assert failed == ["f5.py::run[pythons=3.12]"]
    assert "FAILED f5.py::run[pythons=3.12]" in result.stderr  # the summary
    page = html.read_text()
    assert "f5.py::run[pythons=3.12]" in page and "f5.py::run[pythons=3.10]" in page


def test_dry_run_lists_combinations(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    grid_log: Path,
) -> None:
    ws = make_workspace({"dagpar.yaml": CONFIG, "ci/cells.py": CELLS})
    result = dagpar_run("check", "-C", ws, "-j", "3", "--dry-run", "--json")
    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    items = [i for s in check["slices"] for i in s["items"]]
    assert len(items) == 18
    assert {"item": "f0.py", "matrix": {"pythons": "3.10"}} in items
    assert not list(grid_log.iterdir())  # nothing ran


def test_more_than_100000_combinations_is_a_definition_error(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    grid_log: Path,
) -> None:
    big = CELLS.replace("pythons: int = 3", "pythons: int = 400").replace(
        "files: int = 6", "files: int = 300"
    )
    ws = make_workspace({"dagpar.yaml": CONFIG, "ci/cells.py": big})
    written = (ws / "ci" / "cells.py").read_text().splitlines()
    line = next(i for i, text in enumerate(written, 1) if "pythons: list" in text)
    result = dagpar_run("check", "-C", ws, "--dry-run")
    assert result.exit_code == 2, result
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert f"ci/cells.py:{line}:" in err
    assert "120,000 combinations" in err and "100,000" in err


def test_timings_are_kept_per_combination(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    grid_log: Path,
) -> None:
    ws = make_workspace({"dagpar.yaml": CONFIG, "ci/cells.py": CELLS})
    assert dagpar_run("check", "-C", ws, "-j", "2").exit_code == 0
    exported = dagpar_run("timings", "export", "-C", ws)
    assert exported.exit_code == 0, exported
    text = exported.stdout
    for python, path in itertools.product(PYTHONS, FILES):
        assert f"{path}::run[pythons={python}]" in text
    # A fourth Python plans from the other three's times: the dry run still works and cuts
    # the larger grid into sub-grids.
    (ws / "dagpar.yaml").write_text(CONFIG.replace("ci/cells.py}", "ci/cells.py, pythons: 4}"))
    result = dagpar_run("check", "-C", ws, "-j", "2", "--dry-run", "--json")
    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    assert sum(len(s["items"]) for s in check["slices"]) == 24


def test_a_task_naming_no_combination_of_the_slice_fails_that_slice(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    grid_log: Path,
) -> None:
    ambiguous = CELLS.replace("dag.parallel.task(path, pythons=python)", "dag.parallel.task(path)")
    ws = make_workspace({"dagpar.yaml": CONFIG, "ci/cells.py": ambiguous})
    result = dagpar_run("check", "-C", ws, "-j", "1", "--json")
    assert result.exit_code == 1, result
    (check,) = result.json()["checks"]
    messages = {t["message"] for t in check["tests"]}
    assert any("name them with keywords (pythons)" in m for m in messages), messages
    assert len(check["tests"]) == 18


def test_matrix_option_runs_the_matching_combinations_only(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    grid_log: Path,
) -> None:
    ws = make_workspace({"dagpar.yaml": CONFIG, "ci/cells.py": CELLS})
    result = dagpar_run(
        "check",
        "-C",
        ws,
        "-j",
        "2",
        "--json",
        "--matrix",
        "pythons=*.1[12]",
        "--matrix",
        "files=f[01].py",
    )
    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    assert sorted(t["id"] for t in check["tests"]) == sorted(
        f"{f}::run[pythons={p}]" for p in ("3.11", "3.12") for f in ("f0.py", "f1.py")
    )
    cells = [
        cell
        for receiver in _receivers(grid_log)
        for cell in itertools.product(receiver["pythons"], receiver["files"])  # type: ignore[arg-type]
    ]
    assert sorted(cells) == sorted(itertools.product(["3.11", "3.12"], ["f0.py", "f1.py"]))


def test_matrix_option_matching_nothing_exits_5_with_the_values(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    grid_log: Path,
) -> None:
    ws = make_workspace({"dagpar.yaml": CONFIG, "ci/cells.py": CELLS})
    result = dagpar_run("check", "-C", ws, "--matrix", "pythons=2.*")
    assert result.exit_code == 5, result
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "--matrix 'pythons=2.*' matched no combination" in err
    assert "pythons: 3.10, 3.11, 3.12" in err
    assert not list(grid_log.iterdir())
    bad = dagpar_run("check", "-C", ws, "--matrix", "pythons")
    assert bad.exit_code == 2, bad
    assert "--matrix 'pythons': expected FIELD=GLOB" in bad.stderr


def test_junit_has_one_suite_per_combination(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    grid_log: Path,
    tmp_path: Path,
) -> None:
    import xml.etree.ElementTree as ET

    ws = make_workspace({"dagpar.yaml": CONFIG, "ci/cells.py": CELLS})
    junit = tmp_path / "junit.xml"
    result = dagpar_run("check", "-C", ws, "-j", "3", "--json", "--junit-xml", junit)
    assert result.exit_code == 0, result
    root = ET.parse(junit).getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert sorted(suites) == [f"cells:test[pythons={p}]" for p in PYTHONS]
    for python in PYTHONS:
        suite = suites[f"cells:test[pythons={python}]"]
        assert suite.get("tests") == "6"
        assert [(p.get("name"), p.get("value")) for p in suite.iter("property")] == [
            ("matrix.pythons", python)
        ]
        names = sorted(c.get("name") for c in suite.findall("testcase"))
        assert names == [f"run[pythons={python}]"] * 6
    (check,) = result.json()["checks"]
    assert {t["matrix"]["pythons"] for t in check["tests"]} == set(PYTHONS)


FLAVOURS = {
    "dagpar.yaml": """
        toolchains:
          py:
            use: pytest
            source: .
            env: {SHARED: "yes"}
            matrix:
              env: [{FLAVOUR: a}, {FLAVOUR: b}]
    """,
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "tests/test_one.py": """
        import os

        def _seen(name):
            assert os.environ["SHARED"] == "yes"
            log = os.path.join(os.path.dirname(__file__), "..", "seen.txt")
            with open(log, "a") as out:
                out.write(f"{name} {os.environ['FLAVOUR']}\\n")

        def test_a():
            _seen("a")

        def test_b():
            _seen("b")
    """,
    "tests/test_two.py": """
        from test_one import _seen

        def test_c():
            _seen("c")

        def test_d():
            _seen("d")
    """,
}


def test_a_pytest_matrix_over_env_runs_every_test_under_each_value(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    import xml.etree.ElementTree as ET

    ws = make_workspace(FLAVOURS)
    junit = tmp_path / "junit.xml"
    result = dagpar_run("check", "-C", ws, "-j", "2", "--junit-xml", junit, "--json")
    assert result.exit_code == 0, result
    seen = sorted((ws / "seen.txt").read_text().split("\n")[:-1])
    assert seen == sorted(f"{t} {f}" for t in "abcd" for f in "ab")  # each test once per value
    root = ET.parse(junit).getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert sorted(suites) == ["py:test[env=FLAVOUR=a]", "py:test[env=FLAVOUR=b]"]
    assert sum(len(s.findall("testcase")) for s in suites.values()) == 8
    for suite in suites.values():
        assert suite.get("tests") == "4" and suite.get("failures") == "0"
    # Only one value, by --matrix.
    (ws / "seen.txt").unlink()
    only = dagpar_run("check", "-C", ws, "-j", "2", "--matrix", "env=*=b", "--json")
    assert only.exit_code == 0, only
    assert sorted((ws / "seen.txt").read_text().split()[1::2]) == ["b"] * 4


def test_a_pytest_matrix_over_runner_uses_each_command(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    import sys

    files = dict(FLAVOURS)
    files["dagpar.yaml"] = """
        toolchains:
          py:
            use: pytest
            source: .
            env: {SHARED: "yes"}
            matrix:
              runner: ["sh venv-a.sh", "sh venv-b.sh"]
    """
    for name in ("a", "b"):
        files[f"venv-{name}.sh"] = f'FLAVOUR={name} exec "{sys.executable}" -m pytest "$@"\n'
    ws = make_workspace(files)
    result = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert result.exit_code == 0, result
    seen = sorted((ws / "seen.txt").read_text().split("\n")[:-1])
    assert seen == sorted(f"{t} {f}" for t in "abcd" for f in "ab")
    (check,) = result.json()["checks"]
    assert {t["matrix"]["runner"] for t in check["tests"]} == {"sh venv-a.sh", "sh venv-b.sh"}


def test_shards_take_sub_grids_and_together_run_every_combination(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    grid_log: Path,
) -> None:
    ws = make_workspace({"dagpar.yaml": CONFIG, "ci/cells.py": CELLS})
    ids: list[str] = []
    for shard in ("1/2", "2/2"):
        result = dagpar_run("check", "-C", ws, "-j", "2", "--shard", shard, "--json")
        assert result.exit_code == 0, result
        (check,) = result.json()["checks"]
        ids.extend(t["id"] for t in check["tests"])
    assert sorted(ids) == sorted(f"{f}::run[pythons={p}]" for p in PYTHONS for f in FILES)
    for receiver in _receivers(grid_log):
        assert receiver["pythons"] and receiver["files"]


def test_a_new_value_plans_from_the_same_item_under_the_other_values(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    grid_log: Path,
) -> None:
    cases = "".join(
        f'<testcase classname="f0" name="run[pythons={p}]" file="f0.py" time="{s}"/>'
        for p, s in (("3.10", 10), ("3.11", 20), ("3.12", 60))
    )
    ws = make_workspace(
        {
            "dagpar.yaml": CONFIG.replace("ci/cells.py}", "ci/cells.py, pythons: 4, files: 1}"),
            "ci/cells.py": CELLS,
            "junit.xml": f"<testsuites><testsuite name='cells:test'>{cases}</testsuite>"
            "</testsuites>",
        }
    )
    imported = dagpar_run("timings", "import", "-C", ws, ws / "junit.xml", "--instance", "cells")
    assert imported.exit_code == 0, imported
    result = dagpar_run("check", "-C", ws, "-j", "1", "--dry-run", "--json")
    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    (only,) = check["slices"]
    assert len(only["items"]) == 4
    # 3.13 has no history: it takes the mean of f0.py under 3.10, 3.11 and 3.12 (30 s).
    startup = only["predicted_seconds"] - (10 + 20 + 60 + 30)
    assert 0 <= startup < 5, only


def test_matrix_option_without_any_matrix_exits_5(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    grid_log: Path,
) -> None:
    single = CELLS.replace("pythons: list[str] = field()  # +parallel", "pythons: list[str]")
    ws = make_workspace({"dagpar.yaml": CONFIG, "ci/cells.py": single})
    assert dagpar_run("check", "-C", ws, "--dry-run").exit_code == 0
    result = dagpar_run("check", "-C", ws, "--matrix", "pythons=3.12")
    assert result.exit_code == 5, result
    assert "no check runs a matrix" in result.stderr


def test_retries_rerun_the_failed_combination_in_a_sub_grid(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    grid_log: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRID_FLAKY", "3.11")
    ws = make_workspace({"dagpar.yaml": CONFIG, "ci/cells.py": CELLS})
    result = dagpar_run("check", "-C", ws, "-j", "3", "--retries", "1", "--json")
    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    assert len(check["tests"]) == 18
    # The slice stopped at f2.py: the files after it had the slice's error, and ran again too.
    flaky = sorted(t["id"] for t in check["tests"] if t.get("flaky"))
    rest = ["f2.py", "f3.py", "f4.py", "f5.py"]
    assert flaky == [f"{f}::run[pythons=3.11]" for f in rest]
    receivers = _receivers(grid_log)
    assert {"pythons": ["3.11"], "files": rest, "label": "kept"} in receivers


def test_retries_rerun_a_failed_test_under_its_matrix_value(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    files = dict(FLAVOURS)
    files["tests/test_flaky.py"] = """
        import os

        def test_flaky():
            marker = os.path.join(os.path.dirname(__file__), "..", "flaked")
            if os.environ["FLAVOUR"] == "b" and not os.path.exists(marker):
                open(marker, "w").close()
                raise AssertionError("fails the first time")
    """
    ws = make_workspace(files)
    result = dagpar_run("check", "-C", ws, "-j", "2", "--retries", "1", "--json")
    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    assert len(check["tests"]) == 10
    flaky = [t["id"] for t in check["tests"] if t.get("flaky")]
    assert flaky == ["tests/test_flaky.py::test_flaky[env=FLAVOUR=b]"]
    seen = (ws / "seen.txt").read_text().split("\n")[:-1]
    assert len(seen) == 8  # only the flaky test ran again


def test_each_matrix_value_lists_its_own_tests(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(
        {
            "dagpar.yaml": """
                toolchains:
                  py:
                    use: pytest
                    source: .
                    matrix:
                      env: [{FLAVOURS: "a,b"}, {FLAVOURS: a}]
            """,
            "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
            "tests/test_p.py": """
                import os
                import pytest

                @pytest.mark.parametrize("flavour", os.environ["FLAVOURS"].split(","))
                def test_p(flavour):
                    pass
            """,
        }
    )
    result = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    assert sorted(t["id"] for t in check["tests"]) == [
        "tests/test_p.py::test_p[a][env=FLAVOURS=a,b]",
        "tests/test_p.py::test_p[a][env=FLAVOURS=a]",
        "tests/test_p.py::test_p[b][env=FLAVOURS=a,b]",
    ]


def test_failfast_leaves_the_other_values_tests_named_by_their_value(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    files = dict(FLAVOURS)
    files["tests/test_two.py"] = files["tests/test_two.py"].replace(
        '_seen("c")', 'raise AssertionError("broken everywhere")'
    )
    ws = make_workspace(files)
    result = dagpar_run("check", "-C", ws, "-j", "1", "--failfast", "--json")
    assert result.exit_code == 1, result
    (check,) = result.json()["checks"]
    ids = [t["id"] for t in check["tests"]]
    assert len(ids) == len(set(ids)) == 8, ids
    assert all(i.endswith(("[env=FLAVOUR=a]", "[env=FLAVOUR=b]")) for i in ids), ids
    assert {t["status"] for t in check["tests"] if t["id"].endswith("=b]")} == {"error"}, check


def test_a_new_matrix_plans_from_the_tests_history_before_it(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    cases = "".join(
        f'<testcase classname="tests.test_w" name="{name}" file="tests/test_w.py" time="{s}"/>'
        for name, s in (("test_x", 1), ("test_y", 2), ("test_z", 30))
    )
    files = {
        "dagpar.yaml": FLAVOURS["dagpar.yaml"],
        "pyproject.toml": FLAVOURS["pyproject.toml"],
        "tests/test_w.py": "def test_x():\n    pass\n\ndef test_y():\n    pass\n\n"
        "def test_z():\n    pass\n",
        "junit.xml": f"<testsuites><testsuite name='py:test'>{cases}</testsuite></testsuites>",
    }
    ws = make_workspace(files)
    imported = dagpar_run("timings", "import", "-C", ws, ws / "junit.xml", "--instance", "py")
    assert imported.exit_code == 0, imported
    result = dagpar_run("check", "-C", ws, "-j", "1", "--dry-run", "--json")
    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    # One slice per value, each predicted as the file's three tests took before (33 s), not
    # as three times the file's median test (6 s).
    predicted = sorted(s["predicted_seconds"] for s in check["slices"])
    assert len(predicted) == 2 and all(33 <= p < 38 for p in predicted), predicted
