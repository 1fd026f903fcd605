"""Option values that parse but mean nothing: refused before anything runs, in one line.

``--timeout nan`` made every slice "time out after 0s", ``--timeout inf`` turned an
``OverflowError`` into test errors, ``--shard ''`` quietly meant no shard, and ``timings import
--instance`` accepted any name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from projects import LINT_TOOLCHAIN as TOOLCHAIN  # type: ignore[import-not-found]

from dagpar_cli.testing import DagparResult

ONE = {"dagpar.yaml": "toolchains:\n  lint: {use: ci/lint.py}\n", "ci/lint.py": TOOLCHAIN}
TWO = {
    "dagpar.yaml": "toolchains:\n  lint: {use: ci/lint.py}\n  docs: {use: ci/lint.py}\n",
    "ci/lint.py": TOOLCHAIN,
}

JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite name="s" tests="1">
<testcase classname="tests.test_a" name="test_one" file="tests/test_a.py" time="1.5"/>
</testsuite></testsuites>
"""


def _one_error_line(result: DagparResult, *fragments: str) -> None:
    assert result.exit_code == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result
    assert lines[0].startswith("dagpar: error: "), result
    for fragment in fragments:
        assert fragment in lines[0], result


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e308", "604801", "1e9"])
def test_a_timeout_that_is_not_finite_or_is_absurd_is_refused(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    value: str,
) -> None:
    ws = make_workspace({**ONE, "a.txt": "a\n"})
    result = dagpar_run("check", "-C", ws, "--timeout", value)
    _one_error_line(result, f"--timeout {float(value):g}:", "at most 604800 (7 days)")


def test_a_week_long_timeout_is_accepted(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace({**ONE, "a.txt": "a\n"})
    result = dagpar_run("check", "-C", ws, "--timeout", "604800", "--json")
    assert result.exit_code == 0, result


@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_shard_is_refused(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    value: str,
) -> None:
    ws = make_workspace({**ONE, "a.txt": "a\n"})
    result = dagpar_run("check", "-C", ws, "--shard", value)
    _one_error_line(result, "--shard", "expected I/N")


def _samples(ws: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(ws / ".dagpar" / "timings.sqlite") as db:
        return sorted(db.execute("SELECT instance, key FROM history WHERE kind = 'test'"))


def test_timings_import_refuses_an_instance_the_workspace_does_not_have(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    ws = make_workspace(TWO)
    report = tmp_path / "junit.xml"
    report.write_text(JUNIT, encoding="utf-8")
    result = dagpar_run("timings", "import", "--instance", "nope", "-C", ws, report)
    _one_error_line(result, "--instance 'nope'", "docs, lint")
    assert not (ws / ".dagpar" / "timings.sqlite").exists() or _samples(ws) == []


def test_timings_import_needs_an_instance_when_the_workspace_has_several(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    ws = make_workspace(TWO)
    report = tmp_path / "junit.xml"
    report.write_text(JUNIT, encoding="utf-8")
    result = dagpar_run("timings", "import", "-C", ws, report)
    _one_error_line(result, "--instance", "docs, lint")


def test_timings_import_defaults_to_the_only_instance(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    ws = make_workspace(ONE)
    report = tmp_path / "junit.xml"
    report.write_text(JUNIT, encoding="utf-8")
    result = dagpar_run("timings", "import", "-C", ws, report)
    assert result.exit_code == 0, result
    assert _samples(ws) == [("lint", "tests/test_a.py::test_one")]


def test_timings_import_into_a_named_instance_still_works(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    ws = make_workspace(TWO)
    report = tmp_path / "junit.xml"
    report.write_text(JUNIT, encoding="utf-8")
    result = dagpar_run("timings", "import", "--instance", "docs", "-C", ws, report)
    assert result.exit_code == 0, result
    assert _samples(ws) == [("docs", "tests/test_a.py::test_one")]
