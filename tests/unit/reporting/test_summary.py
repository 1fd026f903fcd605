"""The terminal summary and the dry-run plan: what a user reads at the end of a run."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from dagpar_cli.model import (
    CheckResult,
    Item,
    Plan,
    RunResult,
    SlicePlan,
    SliceResult,
    Status,
    TestCase,
    TestResult,
)
from dagpar_cli.reporting.summary import (
    RunOutput,
    format_seconds,
    render_plan,
    render_result,
    render_summary,
)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _section(text: str, title: str) -> list[str]:
    """The lines under the ``--- title ---`` rule, up to the next blank line or rule."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.fullmatch(rf"-+ {title} -+", line))
    body = []
    for line in lines[start + 1 :]:
        if not line or re.fullmatch(r"[-=]{3,} .* [-=]{3,}", line):
            break
        body.append(line)
    return body


def test_final_line_reads_like_pytest(sample_run: RunResult) -> None:
    text = render_summary(sample_run, color=False)
    last = text.splitlines()[-1]
    assert re.fullmatch(r"=+ 2 failed, 3 passed, 1 skipped, 1 flaky, 1 error in 3\.50s =+", last), (
        last
    )
    counts = dict((word, int(n)) for n, word in re.findall(r"(\d+) (\w+)", last))
    assert counts == {"failed": 2, "passed": 3, "skipped": 1, "flaky": 1, "error": 1}


def test_each_check_has_its_status_and_counts(sample_run: RunResult) -> None:
    lines = render_summary(sample_run, color=False).splitlines()
    backend = next(line for line in lines if line.startswith("backend:test"))
    assert "FAILED" in backend
    assert "2 failed, 2 passed, 1 skipped, 1 flaky" in backend
    assert "2 slices" in backend
    go = next(line for line in lines if line.startswith("go:test"))
    assert "1 passed, 1 error" in go


def test_every_failure_is_listed_with_its_message(sample_run: RunResult) -> None:
    body = _section(render_summary(sample_run, color=False), "failures")
    heads = [line for line in body if not line.startswith(" ")]
    assert heads == [
        "FAILED api/tests/test_a.py::TestX::test_bad[1]  (backend:test, slice 1)",
        "FAILED api/tests/test_b.py::test_always  (backend:test, slice 2)",
        "ERROR svc/store::TestGet/missing  (go:test, slice 1)",
    ]
    assert "    assert 1 == 2" in body
    assert "    panic: nil map" in body
    # Flaky tests passed in the end: they are not failures.
    assert not any("test_flaky" in line for line in body)


def test_long_details_are_capped(sample_run: RunResult) -> None:
    details = "\n".join(f"frame {i}" for i in range(100))
    bad = TestResult(path="a.py", name="t", status=Status.FAILED, message="m", details=details)
    run = replace(sample_run, checks=(CheckResult(name="c:t", results=(bad,)),))
    body = _section(render_summary(run, color=False), "failures")
    assert "    frame 11" in body and "    frame 12" not in body
    assert "    … 88 more lines (see the JUnit report)" in body


def test_flaky_tests_are_listed_with_their_attempts(sample_run: RunResult) -> None:
    body = _section(render_summary(sample_run, color=False), "flaky tests")
    assert body == [
        "api/tests/test_b.py::test_flaky  (backend:test, slice 2)  passed on try 3",
        "    failed: timeout",
        "    error: fixture broke",
    ]


def test_slices_table_compares_planned_and_actual(sample_run: RunResult) -> None:
    text = render_summary(sample_run, color=False)
    body = _section(text, "slices")
    assert body[0].split() == ["check", "slice", "items", "tests", "planned", "actual", "diff"]
    assert body[1].split() == ["backend:test", "1/2", "1", "2", "2.00s", "2.40s", "+20%"]
    assert body[2].split() == ["backend:test", "2/2", "1", "3", "1.50s", "1.10s", "-27%"]
    assert body[3] == "wall: planned 3.00s, slices 2.40s (-20%), run 3.50s"


def test_slice_prediction_falls_back_to_the_plan(sample_run: RunResult) -> None:
    backend = sample_run.checks[0]
    unpredicted = tuple(replace(s, predicted_seconds=0.0) for s in backend.slices)
    run = replace(sample_run, checks=(replace(backend, slices=unpredicted),))
    body = _section(render_summary(run, color=False), "slices")
    assert body[1].split()[4:7] == ["2.00s", "2.40s", "+20%"]


def test_slowest_tests_are_the_five_longest_that_ran(sample_run: RunResult) -> None:
    body = _section(render_summary(sample_run, color=False), "slowest 5 tests")
    ids = [line.split()[1] for line in body]
    assert ids == [
        "api/tests/test_a.py::TestX::test_bad[1]",
        "api/tests/test_a.py::test_ok",
        "api/tests/test_b.py::test_always",
        "api/tests/test_b.py::test_flaky",
        "svc/store::TestPut",
    ]


def test_no_colour_means_no_escape_sequences(sample_run: RunResult) -> None:
    hostile = TestResult(
        path="a.py",
        name="t",
        status=Status.FAILED,
        message="\x1b[31mred\x1b[0m and \x00nul",
        details="\x1b]0;title\x07line",
    )
    run = replace(
        sample_run, checks=(*sample_run.checks, CheckResult(name="x:y", results=(hostile,)))
    )
    plain = render_summary(run, color=False)
    assert "\x1b" not in plain and "\x00" not in plain and "\x07" not in plain
    assert "    red and \\x00nul" in plain.splitlines()


def test_colour_adds_only_styling(sample_run: RunResult) -> None:
    coloured = render_summary(sample_run, color=True)
    assert "\x1b[31m" in coloured  # failures in red
    assert _ANSI.sub("", coloured) == render_summary(sample_run, color=False)


def test_a_green_run(sample_run: RunResult) -> None:
    ok = TestResult(path="a.py", name="t", status=Status.PASSED, seconds=0.25)
    run = RunResult(checks=(CheckResult(name="c:t", results=(ok,), seconds=0.3),), seconds=0.4)
    text = render_summary(run, color=True)
    assert "failures" not in text and "flaky" not in text
    assert "no plan to compare with" in text
    last = text.splitlines()[-1]
    assert last.startswith("\x1b[32m=") and "1 passed" in last  # the rule is green
    plain = _ANSI.sub("", last)
    assert len(plain) == 100 and " 1 passed in 0.40s " in plain and plain.endswith("=")


def test_lines_fit_the_width(sample_run: RunResult) -> None:
    long = TestResult(
        path="a" * 200 + ".py", name="t" * 200, status=Status.FAILED, message="m" * 300, check="x:y"
    )
    run = replace(sample_run, checks=(*sample_run.checks, CheckResult(name="x:y", results=(long,))))
    for width in (60, 100):
        lines = render_summary(run, color=False, width=width).splitlines()
        for line in lines:
            # Ids are kept whole so that they can be copied, and the counts line is never cut;
            # everything else fits.
            assert len(line) <= width or "::" in line or line.startswith("=="), line
        assert f"FAILED {long.id}  (x:y)" in lines
        assert "    " + "m" * (width - 5) + "…" in lines


def test_a_check_error_without_failed_tests_is_counted() -> None:
    run = RunResult(
        checks=(CheckResult(name="lint:check", error="ruff: command not found"),),
        seconds=0.1,
        interrupted=True,
        shard=(2, 3),
    )
    text = render_summary(run, color=False)
    assert "  error: ruff: command not found" in text
    assert "1 check error in 0.10s (shard 2/3) (interrupted)" in text.splitlines()[-1]


def test_durations_past_a_minute_show_clock_time() -> None:
    assert format_seconds(4.214) == "4.21s"
    assert format_seconds(3725.5) == "3725.50s (1:02:05)"


def test_render_plan_lists_slices_items_and_predictions() -> None:
    items = (
        Item(("api/tests/test_a.py",), "api/tests/test_a.py"),
        Item(("api/tests/test_b.py", "test_c"), "api/tests/test_b.py"),
    )
    plan = Plan(
        slices=(
            SlicePlan(index=1, items=items[:1], predicted_seconds=1.25),
            SlicePlan(
                index=2,
                items=items[1:],
                predicted_seconds=0.5,
                tests=(TestCase("api/tests/test_b.py", "test_c"),),
            ),
        ),
        predicted_wall_seconds=1.3,
        workers=2,
        startup_seconds=0.2,
        planner="greedy",
    )
    assert render_plan("backend:test", plan).splitlines() == [
        "backend:test: 2 slices on 2 workers",
        "  slice 1/2  predicted 1.25s  (1 item)",
        "    api/tests/test_a.py",
        "  slice 2/2  predicted 0.50s  (1 item, 1 test)",
        "    api/tests/test_b.py::test_c",
        "  predicted wall time: 1.30s (start-up 0.20s per slice, planner greedy)",
    ]


def test_render_result_puts_the_summary_on_stdout_or_json_there_and_the_summary_on_stderr(
    sample_run: RunResult,
) -> None:
    text = render_result(sample_run, as_json=False, color=True, width=100)
    assert text == RunOutput(stdout=render_summary(sample_run, color=True, width=100) + "\n")
    machine = render_result(sample_run, as_json=True, color=True, width=100)
    assert json.loads(machine.stdout) == sample_run.to_json()
    assert machine.stdout.endswith("\n")
    assert machine.stderr == render_summary(sample_run, color=False, width=100) + "\n"


def test_the_summary_counts_a_slice_s_runner_replacements() -> None:
    results = (TestResult(path="a.py", name="t", status=Status.PASSED, seconds=1.0),)
    slice_result = SliceResult(
        index=1, items=(), results=results, seconds=1.0, replacements=2, error="x crashed"
    )
    run = RunResult(
        checks=(CheckResult(name="x:t", results=results, slices=(slice_result,), seconds=1.0),),
        seconds=1.0,
    )
    text = render_summary(run, color=False, width=200)
    assert "2 runner replacements; x crashed" in text


def test_the_slowest_tests_are_the_slowest_first_ties_by_id() -> None:
    from dagpar_cli.reporting import summary

    results = [
        TestResult(path=f"t{n % 13}.py", name=f"test_{n}", status=status, seconds=seconds)
        for n, (status, seconds) in enumerate(
            [(Status.PASSED, (n * 7) % 5 / 4) for n in range(40)]
            + [(Status.SKIPPED, 9.0), (Status.FAILED, 1.0), (Status.ERROR, 1.0)]
        )
    ]
    expected = sorted(
        (r for r in results if r.status is not Status.SKIPPED), key=lambda r: (-r.seconds, r.id)
    )[: summary.SLOWEST]
    lines = summary._slowest_section(results)
    assert [line.split()[1] for line in lines] == [r.id for r in expected]
