"""``--report-html`` end to end: a real ``dagpar check`` writes a report that headless Chromium
renders with its timeline, every failure, and no script error, whatever the tests were named."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import lxml.html
import pytest

from dagpar_cli.testing import DagparResult, chromium_binary

HOSTILE_ID = "<script>document.title='pwned'</script>"

SUITE = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "tests/test_math.py": """
        import time
        import pytest

        def test_adds():
            time.sleep(0.2)
            assert 1 + 1 == 2

        def test_fails():
            assert 2 * 2 == 5, "arithmetic is broken"

        @pytest.mark.parametrize("name", ["x"], ids=["<script>document.title='pwned'</script>"])
        def test_hostile(name):
            raise AssertionError(
                "</details></pre><img src=x onerror=\\"document.title='pwned'\\"> "
                "quote\\" apos' amp& \\x1b[31mred\\x1b[0m bell\\x07 nul\\x00 end"
            )
    """,
    "tests/test_more.py": """
        import time
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("fixture exploded")

        def test_setup_error(broken):
            pass

        @pytest.mark.parametrize("n", range(6))
        def test_many(n):
            time.sleep(0.05)

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass
    """,
}

#: Chromium's flags for a sealed, reproducible headless run (no network, no profile, no updates).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--enable-logging=stderr",
    "--v=0",
)


def _render(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    binary = chromium_binary()
    assert binary is not None
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console_errors(stderr: str) -> list[str]:
    """Console messages of the page that report an error (uncaught exceptions, CSP refusals)."""
    lines = [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return [line for line in lines if re.search(r"Uncaught|Refused|Error", line)]


@pytest.mark.chromium
def test_report_renders_timeline_and_every_failure(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    ws = make_workspace(SUITE)
    report = tmp_path / "out" / "report.html"
    result = dagpar_run("check", "-C", ws, "-j", "2", "--report-html", report, "--json")
    assert result.exit_code == 1, result
    run = result.json()
    tests = [t for c in run["checks"] for t in c["tests"]]
    failures = [t for t in tests if t["status"] in ("failed", "error")]
    slices = [(c["name"], s["index"]) for c in run["checks"] for s in c["slices"]]
    assert len(failures) == 3 and len(slices) == 2, run

    source = report.read_text(encoding="utf-8")
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", source)
    assert HOSTILE_ID not in source, "a test id reached the page unescaped"
    assert "\x1b" not in source and "\x00" not in source and "\x07" not in source

    proc = _render(report, tmp_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _console_errors(proc.stderr) == [], proc.stderr[-3000:]
    dom = lxml.html.fromstring(proc.stdout)

    # The report's own script ran to the end, and nothing else did.
    assert dom.get_element_by_id("dagpar-report-ready") is not None, proc.stdout[-2000:]
    assert not dom.xpath("//*[@id='dagpar-report-error']")
    assert dom.findtext(".//title") == "dagpar report"
    assert not dom.xpath("//img"), "hostile output became markup"
    assert len(dom.xpath("//script")) == 1

    # Every failure is listed, with its id and check, readable as the runner wrote it.
    listed = {
        d.xpath("string(.//span[contains(@class, 'tid')])"): d
        for d in dom.xpath("//details[contains(@class, 'failure')]")
    }
    assert set(listed) == {t["id"] for t in failures}
    for test in failures:
        assert test["check"] in listed[test["id"]].text_content()
    assert "arithmetic is broken" in listed["tests/test_math.py::test_fails"].text_content()
    hostile = listed[f"tests/test_math.py::test_hostile[{HOSTILE_ID}]"].text_content()
    assert "onerror=\"document.title='pwned'\"" in hostile and "quote\" apos' amp&" in hostile
    assert "\\x07" in hostile and "\\x00" in hostile and "red" in hostile

    # The timeline: one row per slice, each holding its tests end to end.
    rows = dom.xpath("//div[@id='timeline']/div[contains(@class, 'slice')]")
    assert sorted((r.get("data-check"), int(r.get("data-slice"))) for r in rows) == sorted(slices)
    per_slice = {(c["name"], s["index"]): s["tests"] for c in run["checks"] for s in c["slices"]}
    for row in rows:
        segments = row.xpath(".//div[contains(@class, 'seg')]")
        assert len(segments) == per_slice[(row.get("data-check"), int(row.get("data-slice")))]
        assert row.xpath(".//div[@class='gplan']"), "the planned duration is drawn"
    failed_segments = dom.xpath("//div[@id='timeline']//div[contains(@class, 'seg failed')]")
    assert len(failed_segments) == 2
    # Slowest tests: the one that sleeps longest leads.
    first = dom.xpath("string(//table[@id='slowest']/tbody/tr[1]/td[2])")
    assert first == "tests/test_math.py::test_adds"


@pytest.mark.chromium
def test_report_screenshot_is_drawn(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    """The page lays out and paints (a broken stylesheet or layout would give a blank image)."""
    ws = make_workspace(SUITE)
    report = tmp_path / "report.html"
    assert dagpar_run("check", "-C", ws, "--report-html", report).exit_code == 1
    shot = tmp_path / "shot.png"
    proc = _render(report, tmp_path, f"--screenshot={shot}", "--window-size=1200,900")
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # A blank page compresses to a few kilobytes; a drawn report does not.
    assert len(data) > 20_000, len(data)
