"""The JUnit report: schema validity, the Surefire rerun shapes, hostile content, merging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import junitparser
import pluggy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from dagpar_cli import hookspecs
from dagpar_cli.config import Config, RunOptions
from dagpar_cli.errors import UsageError
from dagpar_cli.model import Attempt, CheckResult, RunResult, Status, TestResult
from dagpar_cli.reporting import junit
from dagpar_cli.reporting.junit import classname_for, merge_junit, render_junit, write_junit
from dagpar_cli.run_context import RunContext


def _parse(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def _case(root: etree._Element, name: str) -> etree._Element:
    matches = root.xpath("//testcase[@name=$name]", name=name)
    assert len(matches) == 1, f"{name!r} appears {len(matches)} times"
    return matches[0]


def _one_test_run(result: TestResult) -> RunResult:
    return RunResult(checks=(CheckResult(name="c:test", results=(result,)),), seconds=1.0)


def test_report_is_schema_valid_and_lists_every_test_once(
    tmp_path: Path, junit_schema: etree.XMLSchema, sample_run: RunResult
) -> None:
    run = sample_run
    path = tmp_path / "reports" / "deep" / "junit.xml"
    write_junit(run, path, started_wall=1_700_000_000.0)

    doc = etree.parse(str(path))
    junit_schema.assertValid(doc)

    ids = [(c.get("file"), c.get("name")) for c in doc.iter("testcase")]
    assert sorted(ids) == sorted((r.path, r.name) for r in run.results)

    suites = {s.get("name"): s for s in doc.iter("testsuite")}
    assert list(suites) == ["backend:test", "go:test"]
    backend = suites["backend:test"]
    assert (backend.get("tests"), backend.get("failures"), backend.get("errors")) == ("5", "2", "0")
    assert backend.get("skipped") == "1"
    assert backend.get("timestamp") == "2023-11-14T22:13:20"
    go = suites["go:test"]
    assert (go.get("tests"), go.get("failures"), go.get("errors")) == ("2", "0", "1")
    assert go.get("timestamp") == "2023-11-14T22:13:22"  # started 2.6 s into the run
    root = doc.getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("7", "2", "1")
    # Nothing half-written is left behind.
    assert [p.name for p in path.parent.iterdir()] == ["junit.xml"]


def test_junitparser_reads_what_ci_servers_read(tmp_path: Path, sample_run: RunResult) -> None:
    path = tmp_path / "junit.xml"
    write_junit(sample_run, path)
    xml = junitparser.JUnitXml.fromfile(str(path))
    cases = {(suite.name, case.classname, case.name): case for suite in xml for case in suite}
    assert len(cases) == 7
    bad = cases[("backend:test", "api.tests.test_a", "TestX::test_bad[1]")]
    assert bad.time == pytest.approx(1.25)
    [failure] = bad.result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == "assert 1 == 2"
    assert failure.text == "Traceback\n  assert 1 == 2"
    assert bad.system_out == "printed by the test"
    skipped = cases[("backend:test", "api.tests.test_b", "test_skip")]
    assert isinstance(skipped.result[0], junitparser.Skipped)
    assert skipped.result[0].message == "needs redis"
    go = cases[("go:test", "svc/store", "TestGet/missing")]
    assert isinstance(go.result[0], junitparser.Error)
    assert cases[("backend:test", "api.tests.test_a", "test_ok")].is_passed


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("api/tests/test_a.py", "api.tests.test_a"),
        ("web/src/a.test.ts", "web.src.a.test"),
        ("svc/store", "svc/store"),
        ("test_root.py", "test_root"),
    ],
)
def test_classname_is_derived_from_the_path(path: str, expected: str) -> None:
    assert classname_for(TestResult(path=path, name="t", status=Status.PASSED)) == expected


def test_explicit_classname_wins() -> None:
    result = TestResult(path="a.py", name="t", status=Status.PASSED, classname="pkg.Klass")
    assert classname_for(result) == "pkg.Klass"


def test_flaky_test_carries_a_flaky_element_per_failed_attempt(
    junit_schema: etree.XMLSchema, sample_run: RunResult
) -> None:
    root = _parse(render_junit(sample_run))
    case = _case(root, "test_flaky")
    assert [child.tag for child in case] == ["flakyFailure", "flakyError"]
    assert case[0].get("message") == "timeout"
    assert case[0].findtext("stackTrace") == "took too long"
    assert case[1].get("message") == "fixture broke"
    # A flaky test passed: it counts as neither a failure nor an error.
    assert case.find("failure") is None and case.find("error") is None


def test_test_that_never_passed_has_failure_and_a_rerun_per_extra_attempt(
    sample_run: RunResult,
) -> None:
    root = _parse(render_junit(sample_run))
    case = _case(root, "test_always")
    assert [child.tag for child in case] == ["failure", "rerunFailure"]
    assert case[0].get("message") == "still broken"
    assert case[1].get("message") == "broken"
    assert case[1].findtext("stackTrace") == "first details"


def test_rerun_errors_use_the_error_elements(junit_schema: etree.XMLSchema) -> None:
    result = TestResult(
        path="a.py",
        name="t",
        status=Status.ERROR,
        message="boom",
        attempts=(Attempt(Status.FAILED, 0.1, "f1"), Attempt(Status.ERROR, 0.1, "e1")),
    )
    root = _parse(render_junit(_one_test_run(result)))
    junit_schema.assertValid(root)
    assert [child.tag for child in _case(root, "t")] == ["error", "rerunFailure", "rerunError"]


def test_a_check_error_without_failed_tests_shows_as_an_error_case(
    junit_schema: etree.XMLSchema,
) -> None:
    ok = TestResult(path="a.py", name="t", status=Status.PASSED)
    run = RunResult(
        checks=(CheckResult(name="lint:check", results=(ok,), error="ruff crashed\ntraceback"),),
        seconds=1.0,
    )
    root = _parse(render_junit(run))
    junit_schema.assertValid(root)
    suite = root.find("testsuite")
    assert suite is not None and suite.get("errors") == "1" and suite.get("tests") == "2"
    error = _case(root, "(check error)").find("error")
    assert error is not None and error.get("message") == "ruff crashed"


def test_control_characters_and_ansi_colours_are_cleaned(junit_schema: etree.XMLSchema) -> None:
    result = TestResult(
        path="a.py",
        name="test_\x00nul\x1b[31m[red]\x1b[0m",
        status=Status.FAILED,
        message="bell\x07 and\x0cform feed",
        details="\x1b[1mbold\x1b[0m \x08backspace\ttab",
        stdout="line1\r\nline2\x00",
    )
    root = _parse(render_junit(_one_test_run(result)))
    junit_schema.assertValid(root)
    case = root.find(".//testcase")
    assert case is not None
    assert case.get("name") == "test_\\x00nul[red]"
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "bell\\x07 and\\x0cform feed"
    assert failure.text == "bold \\x08backspace\ttab"
    assert "line2\\x00" in (case.findtext("system-out") or "")


def test_invalid_utf8_is_replaced(junit_schema: etree.XMLSchema) -> None:
    # Runner output decoded with surrogateescape carries undecodable bytes as lone surrogates.
    raw = b"caf\xe9 \xff\xfe ok"
    text = raw.decode("utf-8", errors="surrogateescape")
    result = TestResult(path="a.py", name=text, status=Status.FAILED, message=text, details=text)
    data = render_junit(_one_test_run(result))
    data.decode("utf-8")  # the document itself is valid UTF-8
    root = _parse(data)
    junit_schema.assertValid(root)
    assert root.find(".//testcase").get("name") == "caf\ufffd \ufffd\ufffd ok"


def test_a_10mb_message_is_truncated_with_a_note(junit_schema: etree.XMLSchema) -> None:
    huge = "x" * (10 * 1024 * 1024)
    result = TestResult(
        path="a.py", name="t", status=Status.FAILED, message=huge, details=huge + "END"
    )
    data = render_junit(_one_test_run(result))
    assert len(data) < 2 * 1024 * 1024
    root = _parse(data)
    junit_schema.assertValid(root)
    failure = root.find(".//failure")
    assert failure is not None
    message = failure.get("message") or ""
    assert message.endswith(f"… [truncated {len(huge) - junit.MESSAGE_LIMIT} bytes]")
    details = failure.text or ""
    # The tail of a traceback is what a reader needs; it survives truncation.
    assert details.endswith("END")
    assert f"[truncated {len(huge) + 3 - junit.TEXT_LIMIT} bytes]" in details


def test_truncation_never_splits_a_character() -> None:
    snowmen = "☃" * (junit.MESSAGE_LIMIT)  # 3 bytes each
    result = TestResult(path="a.py", name="t", status=Status.FAILED, message=snowmen)
    root = _parse(render_junit(_one_test_run(result)))
    message = root.find(".//failure").get("message")
    assert message is not None
    kept = message.split("…")[0]
    assert set(kept) == {"☃"}
    assert f"[truncated {len(snowmen) * 3 - len(kept) * 3} bytes]" in message


_ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)


@settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    path=_ANY_TEXT,
    name=_ANY_TEXT,
    message=_ANY_TEXT,
    details=_ANY_TEXT,
    stdout=_ANY_TEXT,
    check=_ANY_TEXT,
    status=st.sampled_from(list(Status)),
    attempts=st.lists(
        st.builds(
            Attempt,
            st.sampled_from([Status.FAILED, Status.ERROR]),
            st.just(0.1),
            _ANY_TEXT,
            _ANY_TEXT,
        ),
        max_size=2,
    ),
)
def test_any_text_gives_a_schema_valid_report(
    junit_schema: etree.XMLSchema,
    path: str,
    name: str,
    message: str,
    details: str,
    stdout: str,
    check: str,
    status: Status,
    attempts: list[Attempt],
) -> None:
    result = TestResult(
        path=path,
        name=name,
        status=status,
        message=message,
        details=details,
        stdout=stdout,
        attempts=tuple(attempts),
    )
    run = RunResult(checks=(CheckResult(name=check, results=(result,)),), seconds=0.5)
    root = _parse(render_junit(run))
    assert junit_schema.validate(root), junit_schema.error_log
    assert len(root.findall(".//testcase")) == 1


def _write(path: Path, run: RunResult) -> Path:
    write_junit(run, path)
    return path


def _node_runs(run: RunResult) -> tuple[RunResult, RunResult]:
    backend, go = run.checks
    first = replace(backend, results=backend.results[:2], seconds=2.0)
    second = replace(backend, results=backend.results[2:], seconds=3.0)
    return (
        RunResult(checks=(first, go), seconds=2.8),
        RunResult(checks=(second,), seconds=3.0),
    )


def test_merge_combines_suites_of_the_same_check(
    tmp_path: Path, junit_schema: etree.XMLSchema, sample_run: RunResult
) -> None:
    node1, node2 = _node_runs(sample_run)
    paths = [_write(tmp_path / "n1.xml", node1), _write(tmp_path / "n2.xml", node2)]
    data, warnings = merge_junit(paths)
    assert warnings == []
    root = _parse(data)
    junit_schema.assertValid(root)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["backend:test", "go:test"]
    backend = suites[0]
    assert (backend.get("tests"), backend.get("failures"), backend.get("skipped")) == (
        "5",
        "2",
        "1",
    )
    # The nodes ran at the same time: the suite took as long as its slowest node.
    assert backend.get("time") == "3.000"
    assert root.get("tests") == "7"
    # Same content as a single-node report of the whole run.
    single = _parse(render_junit(sample_run))
    key = lambda c: (c.get("file"), c.get("name"))  # noqa: E731
    assert sorted(map(key, root.iter("testcase"))) == sorted(map(key, single.iter("testcase")))


def _same_named_run(occurrences: Sequence[int], *, other: bool = True) -> RunResult:
    """A Jest check whose file has tests named "same name" (the last of them fails)."""
    results = tuple(
        TestResult(
            path="web/a.test.js",
            name="same name",
            occurrence=k,
            status=Status.FAILED if k == max(occurrences) else Status.PASSED,
        )
        for k in occurrences
    )
    if other:
        results += (TestResult(path="web/a.test.js", name="other", status=Status.PASSED),)
    return RunResult(checks=(CheckResult(name="web:test", results=results),), seconds=1)


def test_same_named_tests_are_each_a_testcase(junit_schema: etree.XMLSchema) -> None:
    # Results arrive in any order; the report lists same-named tests by their occurrence.
    root = _parse(render_junit(_same_named_run([2, 1, 0])))
    junit_schema.assertValid(root)
    cases = [(c.get("name"), c.find("failure") is not None) for c in root.iter("testcase")]
    assert cases == [
        ("other", False),
        ("same name", False),
        ("same name", False),
        ("same name", True),
    ]
    assert root.get("tests") == "4" and root.get("failures") == "1"


def test_merge_keeps_same_named_tests_and_rejects_them_twice(tmp_path: Path) -> None:
    # One node ran the three same-named tests: they are three tests, not one reported thrice.
    whole = _write(tmp_path / "whole.xml", _same_named_run([0, 1, 2]))
    data, warnings = merge_junit([whole])
    assert warnings == []
    assert [c.get("name") for c in _parse(data).iter("testcase")].count("same name") == 3
    # Another node's file holding one "same name": the first of that file, already merged.
    again = _write(tmp_path / "again.xml", _same_named_run([5], other=False))
    with pytest.raises(UsageError, match=r"'web\.a\.test::same name' of suite 'web:test' appears"):
        merge_junit([whole, again])


def test_merge_rejects_a_test_reported_twice(tmp_path: Path, sample_run: RunResult) -> None:
    node1, _ = _node_runs(sample_run)
    first = _write(tmp_path / "n1.xml", node1)
    again = _write(tmp_path / "again.xml", node1)
    with pytest.raises(UsageError) as info:
        merge_junit([first, again])
    message = str(info.value)
    assert "TestX::test_bad[1]" in message or "test_ok" in message
    assert str(first) in message and str(again) in message


def test_merge_warns_about_an_empty_report_and_rejects_garbage(
    tmp_path: Path, sample_run: RunResult
) -> None:
    node1, _ = _node_runs(sample_run)
    empty = tmp_path / "empty.xml"
    empty.write_text("<testsuites/>")
    data, warnings = merge_junit([_write(tmp_path / "n1.xml", node1), empty])
    assert warnings == [f"{empty}: holds no test suites"]
    assert _parse(data).get("tests") == "4"
    garbage = tmp_path / "garbage.xml"
    garbage.write_text("<testsuites><oops")
    with pytest.raises(UsageError, match=r"garbage\.xml: not a JUnit XML file"):
        merge_junit([garbage])


def test_merge_accepts_a_bare_testsuite_root(tmp_path: Path) -> None:
    other = tmp_path / "other.xml"
    other.write_text(
        '<testsuite name="tool" tests="1"><testcase classname="x" name="y" time="1"/></testsuite>'
    )
    data, _ = merge_junit([other])
    assert [c.get("name") for c in _parse(data).iter("testcase")] == ["y"]


def _session(junit_xml: Path | None) -> RunContext:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(junit)
    config = Config(workspace=Path("."), file=None, toolchains=())
    return RunContext(config=config, options=RunOptions(junit_xml=junit_xml), pm=pm)


def test_report_hook_writes_the_file_only_when_asked(tmp_path: Path, sample_run: RunResult) -> None:
    target = tmp_path / "out" / "junit.xml"
    session = _session(target)
    session.pm.hook.dagpar_report(run=sample_run, session=session)
    assert len(list(etree.parse(str(target)).iter("testcase"))) == 7

    quiet = _session(None)
    quiet.pm.hook.dagpar_report(run=sample_run, session=quiet)
    assert list(tmp_path.iterdir()) == [tmp_path / "out"]


@settings(max_examples=100, deadline=None, database=None)
@given(
    names=st.lists(_ANY_TEXT, min_size=1, max_size=6, unique=True),
    cut=st.integers(min_value=0, max_value=6),
)
def test_merging_node_reports_gives_the_whole_run_back(
    tmp_path_factory: pytest.TempPathFactory,
    junit_schema: etree.XMLSchema,
    names: list[str],
    cut: int,
) -> None:
    from dagpar_cli.reporting._text import clean_text

    # Names that clean to the same text are one test to JUnit; keep them distinct.
    cleaned = {clean_text(n) for n in names}
    if len(cleaned) != len(names):
        return
    results = [TestResult(path="t.py", name=n, status=Status.FAILED, message=n) for n in names]
    node_runs = [results[:cut], results[cut:]]
    folder = tmp_path_factory.getbasetemp() / "merge-nodes"
    folder.mkdir(exist_ok=True)
    paths = []
    for i, part in enumerate(node_runs):
        run = RunResult(checks=(CheckResult(name="c:t", results=tuple(part)),), seconds=1.0)
        paths.append(_write(folder / f"node{i}.xml", run))
    data, _ = merge_junit(paths)
    root = _parse(data)
    assert junit_schema.validate(root), junit_schema.error_log
    assert sorted(c.get("name") for c in root.iter("testcase")) == sorted(cleaned)
    assert root.get("failures") == str(len(names))
