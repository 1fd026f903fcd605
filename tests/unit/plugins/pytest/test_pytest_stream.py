"""The pytest event stream reader, and the listing's odd file names, on recorded text."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from dagpar_plugins.pytest.bounded import KEEP, read_cases
from dagpar_plugins.pytest.collect import parse_collect_output
from dagpar_plugins.pytest.files import EVENTS_FILE
from dagpar_plugins.pytest.paths import RootdirMap
from dagpar_plugins.pytest.stream import CHUNK, MAX_LINE, PytestStream, event_of, events_of
from hypothesis import given, settings
from hypothesis import strategies as st

from dagpar_cli import Status, TestCase, TestEvent, TestResult


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


# What a line means, decoded as JSON in full: the events the reader must give, however it reads.
_STATUSES = {s.value: s for s in Status}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _meaning(line: bytes) -> TestEvent | None:
    """The event *line* describes, decoded as JSON in full; None for anything else."""
    try:
        data = json.loads(line)
        kind, test, at = data["e"], TestCase(str(data["path"]), str(data["name"])), data["at"]
        at = _number(at)
        if at is None or kind not in ("start", "end"):
            return None
        if kind == "start":
            return TestEvent(kind="start", test=test, at=at)
        status = _STATUSES.get(data.get("status"))
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if status is None:
        return None
    message = data.get("message")
    return TestEvent(
        kind="end",
        test=test,
        at=at,
        result=TestResult(
            path=test.path,
            name=test.name,
            status=status,
            seconds=max(_number(data.get("seconds")) or 0.0, 0.0),
            message=message[:1000] if isinstance(message, str) else "",
            start=_number(data.get("start")),
            setup_seconds=max(_number(data.get("setup")) or 0.0, 0.0),
        ),
    )


def _plugin_lines(path: str, name: str, at: float = 5.0, **end: object) -> tuple[bytes, bytes]:
    """A test's start and end lines, byte for byte as the selection plugin writes them."""
    named = f'"path": {json.dumps(path)}, "name": {json.dumps(name)}'
    fields = {"start": at, "status": "passed", "seconds": 0.25, "message": "", **end}
    rest = "".join(f', "{key}": {json.dumps(value)}' for key, value in fields.items())
    return (
        f'{{"e": "start", {named}, "at": {at!r}}}'.encode(),
        f'{{"e": "end", {named}, "at": {at + 1!r}{rest}}}'.encode(),
    )


_ODD_LINES = [
    *_plugin_lines("t.py", "test_a"),
    *_plugin_lines("t.py", "test_b", setup=0.5),
    *_plugin_lines("t.py", "test_\x1b[é]\n", message="assert 0", status="failed"),
    *_plugin_lines("t.py", 'q"uote\\', status="skipped", message="why"),
    *_plugin_lines("t.py", "big", at=1e300, seconds=1e400, setup=-0.0),
    b'{"e": "start", "path": "t.py", "name": "n", "at": -0}',
    b'{"e": "start", "path": "t.py", "name": "n", "at": 1e999}',
    b'{"e": "start", "path": "t.py", "name": "n", "at": 1' + b"0" * 400 + b"}",
    b'{"e": "start", "path": "t.py", "name": "n", "at": 1.5, "e": "end", "status": "failed"}',
    b'{"e": "start", "path": "t.py", "name": "n", "at": 1.5, "path": "u.py"}',
    b'{"e": "end", "path": "t.py", "name": "n", "at": 1, "start": 1, "status": ["passed"]}',
    b'{"e": "end", "path": "t.py", "name": "n", "at": 1, "start": 1, "status": "passed", '
    b'"seconds": 1, "message": "", "status": "failed"}',
    b'{"e": "end", "path": "t.py", "name": "n", "at": 2, "start": null, "status": "error", '
    b'"seconds": "1", "message": 7}',
    b'{"e": "end", "path": 3, "name": [1], "at": true, "status": "passed"}',
    b'\xef\xbb\xbf{"e": "start", "path": "t.py", "name": "bom", "at": 1}',
    '{"e": "start", "path": "t.py", "name": "utf16", "at": 1}'.encode("utf-16-le"),
    b'{"e": "start", "path": "t.py", "name": "\xc3\xa9", "at": 1}',
    b'{"e": "start", "path": "t.py", "name": "\xff", "at": 1}',
    b"[1, 2]",
    b"null",
    b"",
    b"{" * 100_000,
]


@pytest.mark.parametrize("line", _ODD_LINES, ids=range(len(_ODD_LINES)))
def test_each_line_means_what_json_says_whatever_it_holds(line: bytes) -> None:
    assert event_of(line) == _meaning(line)


def test_a_huge_number_or_a_list_for_a_status_is_no_event_not_the_stream_s_end(
    tmp_path: Path,
) -> None:
    (tmp_path / EVENTS_FILE).write_bytes(
        b'{"e": "start", "path": "t.py", "name": "n", "at": 1' + b"0" * 400 + b"}\n"
        b'{"e": "end", "path": "t.py", "name": "n", "at": 1, "status": ["passed"]}\n'
        + b"\n".join(_plugin_lines("t.py", "after"))
        + b"\n"
    )
    [event] = PytestStream(tmp_path).poll()
    assert event.test.name == "after" and event.kind == "end"


def test_a_start_followed_by_its_own_end_in_one_read_is_left_out(tmp_path: Path) -> None:
    a_start, a_end = _plugin_lines("t.py", "test_a", at=1.0)
    b_start, _ = _plugin_lines("t.py", "test_b", at=2.0)
    (tmp_path / EVENTS_FILE).write_bytes(b"\n".join((a_start, a_end, b_start)) + b"\n")
    events = PytestStream(tmp_path).poll()
    assert [(e.kind, e.test.name) for e in events] == [("end", "test_a"), ("start", "test_b")]
    assert events[0] == _meaning(a_end) and events[1] == _meaning(b_start)


def test_a_start_stays_when_its_end_comes_later_names_another_test_or_has_no_start(
    tmp_path: Path,
) -> None:
    a_start, a_end = _plugin_lines("t.py", "test_a", at=1.0)
    b_start, _ = _plugin_lines("t.py", "test_b", at=2.0)
    c_start, c_end = _plugin_lines("t.py", "test_c", at=3.0, start=None)
    d_start, d_end = _plugin_lines("t.py", "test_d", at=4.0)
    _, d_end_elsewhere = _plugin_lines("u.py", "test_d", at=4.0)
    events_file = tmp_path / EVENTS_FILE
    stream = PytestStream(tmp_path)
    events_file.write_bytes(a_start + b"\n")
    assert [e.kind for e in stream.poll()] == ["start"]
    lines = [a_end, b_start, c_start, c_end, d_start, d_end_elsewhere, d_start, d_end]
    with events_file.open("ab") as f:
        f.write(b"\n".join(lines) + b"\n")
    events = stream.poll()
    assert events == [_meaning(line) for line in lines[:-2]] + [_meaning(d_end)]


@given(
    names=st.lists(st.text(max_size=8), min_size=1, max_size=6),
    numbers=st.lists(
        st.one_of(
            st.floats(allow_nan=False),
            st.integers(min_value=-(10**30), max_value=10**30),
            st.sampled_from(["1e400", "-0", "0.5e-3", "7"]),
        ),
        min_size=4,
        max_size=4,
    ),
    order=st.permutations(range(6)),
    status=st.sampled_from(["passed", "failed", "error", "skipped", "other"]),
)
@settings(max_examples=300, deadline=None, database=None, derandomize=True)
def test_events_are_those_json_gives_but_starts_followed_by_their_ends(
    names: list[str], numbers: list[object], order: list[int], status: str
) -> None:
    lines: list[bytes] = []
    for name in names:
        at, start, seconds, setup = (n if isinstance(n, str) else json.dumps(n) for n in numbers)
        named = f'"path": "t.py", "name": {json.dumps(name)}'
        lines.append(f'{{"e": "start", {named}, "at": {at}}}'.encode())
        lines.append(
            f'{{"e": "end", {named}, "at": {at}, "start": {start}, "status": "{status}", '
            f'"seconds": {seconds}, "message": "", "setup": {setup}}}'.encode()
        )
    lines = [lines[i] for i in order if i < len(lines)] + lines[len(order) :]
    meanings = [_meaning(line) for line in lines]
    events = iter(events_of(lines))
    event = next(events, None)
    for index, meaning in enumerate(meanings):
        following = meanings[index + 1] if index + 1 < len(lines) else None
        # A start whose own end follows, with the test's start time, may be left out.
        may_go = (
            lines[index].startswith(b'{"e": "start"')
            and following is not None
            and following.result is not None
            and following.result.start is not None
            and (meaning is None or meaning.test == following.test)
        )
        if meaning is None or (may_go and event != meaning):
            continue
        assert event == meaning
        event = next(events, None)
    assert event is None
