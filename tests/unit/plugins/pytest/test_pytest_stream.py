"""The pytest event stream reader, and the listing's odd file names, on recorded text."""

from __future__ import annotations

import io
import json
from pathlib import Path

from dagpar_plugins.pytest.bounded import KEEP, read_cases
from dagpar_plugins.pytest.collect import parse_collect_output
from dagpar_plugins.pytest.files import EVENTS_FILE
from dagpar_plugins.pytest.paths import RootdirMap
from dagpar_plugins.pytest.stream import CHUNK, MAX_LINE, PytestStream

from dagpar_cli import Status, TestCase


def _line(**event: object) -> bytes:
    return (json.dumps(event) + "\n").encode()


def test_the_stream_reads_what_is_appended_and_keeps_a_half_written_line(tmp_path: Path) -> None:
    stream = PytestStream(tmp_path)
    assert stream.poll() == []  # not written yet
    start = _line(e="start", path="t.py", name="test_a\x1b", at=1.0)
    end = _line(
        e="end",
        path="t.py",
        name="test_a\x1b",
        at=2.0,
        start=1.0,
        status="failed",
        seconds=0.5,
        message="assert 0",
    )
    events_file = tmp_path / EVENTS_FILE
    events_file.write_bytes(start + end[:10])
    [first] = stream.poll()
    assert (first.kind, first.test, first.at) == ("start", TestCase("t.py", "test_a\x1b"), 1.0)
    assert stream.poll() == []
    with events_file.open("ab") as f:
        f.write(end[10:] + b"not json\n" + _line(e="end", path="t.py", name="x", at="soon"))
    [second] = stream.poll()
    assert second.kind == "end" and second.result is not None
    assert (second.result.status, second.result.start, second.result.message) == (
        Status.FAILED,
        1.0,
        "assert 0",
    )


def test_an_endless_line_is_skipped_not_held(tmp_path: Path) -> None:
    stream = PytestStream(tmp_path)
    events_file = tmp_path / EVENTS_FILE
    events_file.write_bytes(b"x" * (MAX_LINE + 10))
    assert stream.poll() == []
    with events_file.open("ab") as f:
        f.write(b"yyy\n" + _line(e="start", path="t.py", name="b", at=3.0))
    [event] = stream.poll()
    assert event.test.name == "b"


def test_the_listing_keeps_newlines_and_double_colons_in_file_names(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    for name in ("test_new\nline.py", "test_a.py", "test_co::lons.py", "test_c\rr.py"):
        (tmp_path / "tests" / name).write_text("")
    out = (
        "tests/test_a.py::test_p[a\nb]\n"
        "tests/test_new\nline.py::test_x\n"
        "tests/test_co::lons.py::test_y[a::b]\n"
        "tests/test_c\rr.py::test_z\n"
        "tests/test_a.py::test_q[x\ny]\n"
        "\n"
        "5 tests collected in 0.01s\n"
    )
    assert parse_collect_output(out, RootdirMap(tmp_path)) == [
        TestCase("tests/test_a.py", "test_p[a\nb]"),
        TestCase("tests/test_new\nline.py", "test_x"),
        TestCase("tests/test_co::lons.py", "test_y[a::b]"),
        TestCase("tests/test_c\rr.py", "test_z"),
        TestCase("tests/test_a.py", "test_q[x\ny]"),
    ]


def test_a_huge_text_in_the_junit_report_keeps_a_head_a_tail_and_the_count_cut() -> None:
    out = "h" * KEEP + "m" * 5_000_000 + "t" * KEEP
    xml = (
        f'<testsuites><testsuite><testcase name="a"><system-out>{out}</system-out></testcase>'
        '<testcase name="b"/><testcase name="c"'
    ).encode()
    problems: list[str] = []
    cases = list(read_cases(io.BytesIO(xml), problems))
    assert [c.get("name") for c in cases] == ["a", "b"]
    assert problems  # cut short: the cases before stand
    text = cases[0].findtext("system-out") or ""
    assert text.startswith("h" * KEEP) and text.endswith("t" * KEEP)
    assert "[... 5000000 bytes cut by dagpar ...]" in text
    assert len(text) < 3 * KEEP


def test_one_call_reads_everything_written_so_far_however_much(tmp_path: Path) -> None:
    count = CHUNK // 40 + 1000  # more than one chunk of lines
    lines = b"".join(_line(e="start", path="t.py", name=f"test_{n}", at=1.0) for n in range(count))
    assert len(lines) > CHUNK
    (tmp_path / EVENTS_FILE).write_bytes(lines)
    events = PytestStream(tmp_path).poll()
    assert [e.test.name for e in events] == [f"test_{n}" for n in range(count)]
