"""Go verdicts equal ``go test``'s when tests print lines ``go test -json`` reads as events.

``phantom.json`` is ``go test -json ./...`` (go 1.19) on ``tests/data/projects/go-phantom``,
whose tests run an inner suite on a mock T that prints ``=== RUN`` and ``--- FAIL:`` lines:
``go test`` says ok. ``phantom-failing.json`` is the same package plus ``TestReal``, whose
subtest ``a/b`` really fails. ``phantom-subtest.json`` runs ``TestPrintsInSubtests/level/deeper``
alone (``-run '^TestPrintsInSubtests$/^level$/^deeper$'``): a name a test prints, selected.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from dagpar_plugins import go
from dagpar_plugins.go.report import package_results, read_events

from dagpar_cli import Outcome, RunnerSpec, Status, TestResult

DATA = Path(__file__).resolve().parents[3] / "data"
RECORDED = DATA / "go"
PROJECT = DATA / "projects" / "go-phantom"
PACKAGE = "example.com/phantom/minisuite"
SPEC = RunnerSpec(name="go", workspace=PROJECT)


def _parse(tmp_path: Path, recording: str, tests: list[str] | None) -> dict[str, TestResult]:
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    shutil.copy(RECORDED / recording, report_dir / "go-1.json")
    manifest = {
        "report": "go-1.json",
        "packages": [{"path": "minisuite", "import_path": PACKAGE, "tests": tests}],
    }
    (report_dir / "go-1.selection.json").write_text(json.dumps(manifest))
    results = go.parse_reports(SPEC, report_dir, Outcome(exit_code=0))
    ids = [r.id for r in results]
    assert len(ids) == len(set(ids)), "a test reported twice"
    return {r.id.removeprefix("minisuite::"): r for r in results}


def _statuses(results: dict[str, TestResult]) -> dict[str, Status]:
    return {name: r.status for name, r in results.items()}


PASSING = {
    "TestBefore": Status.PASSED,
    "TestReportsFailures": Status.PASSED,
    "TestPrintsInSubtests": Status.PASSED,
    "TestSkipped": Status.SKIPPED,
    "TestAfter": Status.PASSED,
}


def test_printed_failures_of_a_passing_package_are_output(tmp_path: Path) -> None:
    results = _parse(tmp_path, "phantom.json", None)
    # The inner suite's "TestInner" is no test; every real one has go test's verdict.
    assert _statuses(results) == PASSING
    printed = results["TestReportsFailures"].stdout
    assert "--- FAIL: TestInner (0.00s)" in printed
    assert "inner_test.go:3: broken on purpose" in printed
    assert "--- FAIL: TestPrintsInSubtests/level/deeper" in results["TestPrintsInSubtests"].stdout


def test_printed_events_are_attributed_to_the_test_that_printed_them() -> None:
    stream = read_events((RECORDED / "phantom.json").read_text())
    package = stream.packages[PACKAGE]
    assert package.printed == {"TestInner": "TestReportsFailures"}
    assert not [name for name in package.tests if name.startswith("TestInner")]
    # The "--- FAIL: TestBefore" line printed after TestBefore passed changes nothing.
    assert package.tests["TestBefore"].action == "pass"
    assert package.action == "pass"


def test_selected_subtests_under_a_passing_test_pass(tmp_path: Path) -> None:
    selected = [
        "TestPrintsInSubtests/level",
        "TestPrintsInSubtests/level/deeper",
        "TestPrintsInSubtests/level/deep",
        "TestPrintsInSubtests/level/deep/inner",
        "TestPrintsInSubtests/level/deep/inner/x",
        "TestSkipped/never",
    ]
    results = _parse(tmp_path, "phantom.json", selected)
    # Nothing the selection names is dropped, and none of it failed. (The recording ran the
    # whole package: what else ran is reported too.)
    assert _statuses(results) == {
        **{name: Status.PASSED for name in selected},
        **{
            name: s
            for name, s in PASSING.items()
            if name not in ("TestPrintsInSubtests", "TestSkipped")
        },
    }
    assert "--- FAIL: TestPrintsInSubtests/level/deeper" in results[selected[1]].stdout


def test_a_selected_name_that_only_a_test_prints_passes(tmp_path: Path) -> None:
    selected = ["TestPrintsInSubtests/level/deeper"]
    results = _parse(tmp_path, "phantom-subtest.json", selected)
    # The "--- FAIL: TestBefore" line, printed while TestBefore did not run, is no test either.
    assert _statuses(results) == {"TestPrintsInSubtests/level/deeper": Status.PASSED}


def test_a_real_failure_still_fails_beside_printed_ones(tmp_path: Path) -> None:
    results = _parse(tmp_path, "phantom-failing.json", None)
    assert _statuses(results) == {**PASSING, "TestReal": Status.FAILED}
    # The message names the subtest that failed, not one a test printed.
    assert results["TestReal"].message == "TestReal/a/b: minisuite_test.go:54: b really failed"


def test_a_real_failing_subtest_fails_with_its_parents(tmp_path: Path) -> None:
    selected = ["TestReal/a/b", "TestReal/a/ok", "TestReal/a", "TestPrintsInSubtests/level/deeper"]
    results = _parse(tmp_path, "phantom-failing.json", selected)
    assert _statuses(results) == {
        **{name: s for name, s in PASSING.items() if name != "TestPrintsInSubtests"},
        "TestReal/a/b": Status.FAILED,
        "TestReal/a/ok": Status.PASSED,
        "TestReal/a": Status.FAILED,
        "TestPrintsInSubtests/level/deeper": Status.PASSED,
    }
    assert results["TestReal/a/b"].message == "minisuite_test.go:54: b really failed"


def _events(package_action: str, *events: tuple[str, str]) -> str:
    lines = [{"Action": a, "Package": "p", "Test": t} for a, t in events]
    lines.append({"Action": package_action, "Package": "p"})
    return "\n".join(json.dumps(line) for line in lines)


def _verdicts(text: str, selected: Sequence[str] | None = None) -> dict[str, Status]:
    run = read_events(text).packages["p"]
    results = package_results("p", run, selected, scanned=list)
    return {r.name: r.status for r in results}


def test_parallel_top_level_tests_are_tests() -> None:
    text = _events(
        "fail",
        ("run", "TestA"),
        ("pause", "TestA"),
        ("run", "TestB"),
        ("pause", "TestB"),
        ("cont", "TestA"),
        ("cont", "TestB"),
        ("pass", "TestB"),
        ("fail", "TestA"),
    )
    assert _verdicts(text) == {"TestA": Status.FAILED, "TestB": Status.PASSED}


def test_a_test_printed_before_it_really_runs_keeps_its_own_verdict() -> None:
    text = _events(
        "fail",
        ("run", "TestOuter"),
        ("run", "TestLater"),  # printed by TestOuter
        ("pass", "TestLater"),
        ("pass", "TestOuter"),
        ("run", "TestLater"),  # the real one
        ("run", "TestLater/sub"),
        ("fail", "TestLater/sub"),
        ("fail", "TestLater"),
    )
    assert _verdicts(text) == {"TestOuter": Status.PASSED, "TestLater": Status.FAILED}
    assert _verdicts(text, ["TestLater/sub"]) == {
        "TestLater/sub": Status.FAILED,
        "TestOuter": Status.PASSED,
    }


def test_a_subtest_left_unfinished_under_a_passing_test_is_printed() -> None:
    text = _events(
        "pass",
        ("run", "TestX"),
        ("run", "TestX/a"),
        ("run", "TestX/a/b"),  # printed: go waits for subtests, so it would have ended
        ("pass", "TestX/a"),
        ("pass", "TestX"),
    )
    assert _verdicts(text, ["TestX/a/b"]) == {"TestX/a/b": Status.PASSED}


def test_a_crash_still_leaves_unfinished_subtests_errors() -> None:
    text = _events("fail", ("run", "TestX"), ("run", "TestX/a"))
    assert _verdicts(text, ["TestX/a"]) == {"TestX/a": Status.ERROR}
