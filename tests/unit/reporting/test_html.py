"""The HTML report on built run results: content, escaping and the script lock (no browser)."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from pathlib import Path

import lxml.html

from dagpar_cli.model import CheckResult, RunResult, SliceResult, Status, TestResult
from dagpar_cli.reporting.html import render_html, write_html


def _page(run: RunResult) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(render_html(run, started_wall=0.0))


def test_every_failure_is_listed_with_its_details(sample_run: RunResult) -> None:
    page = _page(sample_run)
    bad = [r for r in sample_run.results if r.status.is_bad]
    listed = page.xpath("//details[contains(@class, 'failure')]")
    assert [d.xpath("string(.//span[contains(@class, 'tid')])") for d in listed] == [
        r.id for r in bad
    ]
    for details, result in zip(listed, bad, strict=True):
        assert details.get("open") is None, "details start folded"
        assert result.message.splitlines()[0] in details.text_content()
        if result.details:
            assert result.details.splitlines()[0] in details.text_content()


def test_failures_come_before_the_timeline_and_the_slowest_tests(sample_run: RunResult) -> None:
    text = render_html(sample_run)
    order = [text.index(f'id="{name}"') for name in ("summary", "failures", "timeline", "slowest")]
    assert order == sorted(order)


def test_script_is_the_only_one_allowed_to_run(sample_run: RunResult) -> None:
    text = render_html(sample_run)
    page = lxml.html.fromstring(text)
    (script,) = page.xpath("//script")
    (meta,) = page.xpath("//meta[@http-equiv='Content-Security-Policy']")
    policy = meta.get("content")
    digest = base64.b64encode(hashlib.sha256(script.text.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)


def test_hostile_names_and_output_are_shown_not_run() -> None:
    hostile = TestResult(
        path='t/"quoted".py',
        name="test_x[<script>alert(1)</script>]",
        status=Status.FAILED,
        seconds=1.0,
        message="</pre></details><img src=x onerror=alert(2)> \x1b[31mred\x1b[0m \x00 \x07",
        details="' onmouseover='alert(3)",
        stdout="\udcff undecodable <tag>",
        check="a:<b>",
        slice=1,
    )
    run = RunResult(
        checks=(
            CheckResult(
                name="a:<b>",
                results=(hostile,),
                slices=(
                    SliceResult(
                        index=1, items=(), results=(hostile,), seconds=1.0, error="<u>boom</u>"
                    ),
                ),
                error="<b>check broke</b>",
            ),
        ),
        seconds=1.2,
    )
    text = render_html(run)
    page = lxml.html.fromstring(text)
    assert not page.xpath("//img | //u | //b")
    assert len(page.xpath("//script")) == 1
    assert not page.xpath("//*[@onmouseover or @onerror]")
    content = page.text_content()
    assert "test_x[<script>alert(1)</script>]" in content
    assert "<img src=x onerror=alert(2)>" in content and "\\x00" in content
    assert "\x1b" not in text and "\x00" not in text and "\x07" not in text
    assert "\ufffd undecodable <tag>" in content
    assert "<b>check broke</b>" in content
    assert "&amp;lt;" not in text, "escaped twice"


def test_timeline_lays_tests_end_to_end_within_their_slice(sample_run: RunResult) -> None:
    page = _page(sample_run)
    rows = page.xpath("//div[@id='timeline']/div[contains(@class, 'slice')]")
    expected = [(c.name, s.index, len(s.results)) for c in sample_run.checks for s in c.slices]
    assert [
        (r.get("data-check"), int(r.get("data-slice")), int(r.get("data-tests"))) for r in rows
    ] == expected
    for row in rows:
        widths = [
            float(re.search(r"width:([\d.]+)%", seg.get("style")).group(1))
            for seg in row.xpath(".//div[contains(@class, 'seg')]")
        ]
        # Tests never spill out of their slice's bar.
        assert sum(widths) <= 100.01


def test_tests_that_overlapped_are_scaled_into_the_bar() -> None:
    results = tuple(
        TestResult(path="a.py", name=f"t{i}", status=Status.PASSED, seconds=2.0) for i in range(4)
    )
    slice_result = SliceResult(
        index=1, items=(), results=results, seconds=4.0, predicted_seconds=5.0
    )
    run = RunResult(
        checks=(CheckResult(name="x:t", results=results, slices=(slice_result,), seconds=4.0),),
        seconds=4.0,
    )
    page = _page(run)
    widths = [
        float(re.search(r"width:([\d.]+)%", seg.get("style")).group(1))
        for seg in page.xpath("//div[contains(@class, 'seg')]")
    ]
    assert widths == [25.0] * 4
    (plan,) = page.xpath("//div[@class='gplan']")
    assert "width:100.0000%" in plan.get("style")  # the planned 5 s set the scale


def test_passing_run_without_slices(tmp_path: Path) -> None:
    ok = TestResult(path="a.py", name="t", status=Status.PASSED, seconds=0.1)
    run = RunResult(checks=(CheckResult(name="x:t", results=(ok,)),), seconds=0.2)
    out = tmp_path / "deep" / "report.html"
    write_html(run, out)
    page = lxml.html.fromstring(out.read_text(encoding="utf-8"))
    assert page.get_element_by_id("run-status").text_content() == "Passed"
    assert "No slices ran." in page.text_content()
    assert not page.xpath("//details")
    assert list(tmp_path.joinpath("deep").iterdir()) == [out], "no partial file is left behind"


def test_many_failures_keep_the_page_bounded() -> None:
    results = tuple(
        TestResult(
            path="a.py",
            name=f"t{i}",
            status=Status.FAILED,
            message="boom",
            details="x" * 140_000,
        )
        for i in range(600)
    )
    run = RunResult(checks=(CheckResult(name="x:t", results=results),), seconds=1.0)
    text = render_html(run)
    assert len(text) < 600 * 140_000 / 2
    assert text.count("<details") == 600
    assert "details omitted" in text
    interrupted = replace(run, interrupted=True)
    assert ">Interrupted<" in render_html(interrupted)


def test_flaky_tests_are_listed_with_their_failed_attempts(sample_run: RunResult) -> None:
    page = _page(sample_run)
    flaky = [r for r in sample_run.results if r.flaky]
    assert flaky, "the sample run has a flaky test"
    listed = page.xpath("//details[@class='flaky']")
    assert [d.xpath("string(.//span[contains(@class, 'tid')])") for d in listed] == [
        r.id for r in flaky
    ]
    for details, result in zip(listed, flaky, strict=True):
        text = details.text_content()
        assert f"passed on try {len(result.attempts) + 1}" in text
        for attempt in result.attempts:
            assert attempt.message in text
    # A flaky test passed: it is not among the failures.
    failures = page.xpath("//details[contains(@class, 'failure')]//span[contains(@class, 'tid')]")
    assert not {f.text_content() for f in failures} & {r.id for r in flaky}


def test_a_test_with_a_start_sits_at_it_in_the_timeline() -> None:
    results = (
        TestResult(path="a.py", name="late", status=Status.PASSED, seconds=1.0, start=13.0),
        TestResult(path="a.py", name="early", status=Status.FAILED, seconds=2.0, start=11.0),
    )
    # The run started at wall-clock 0; the slice 10 s in, for 4 s.
    slice_result = SliceResult(index=1, items=(), results=results, seconds=4.0, started=10.0)
    run = RunResult(
        checks=(CheckResult(name="x:t", results=results, slices=(slice_result,), seconds=14.0),),
        seconds=14.0,
    )
    page = _page(run)
    placed = {
        seg.get("title").split(" ")[0]: seg.get("style")
        for seg in page.xpath("//div[contains(concat(' ', @class, ' '), ' at ')]")
    }
    assert placed == {
        "a.py::late": "left:75.0000%;width:25.0000%",
        "a.py::early": "left:25.0000%;width:50.0000%",
    }
