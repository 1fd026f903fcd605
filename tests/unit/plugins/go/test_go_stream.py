"""The Go runner's per-test stream (:mod:`dagpar_plugins.go.stream`) on recorded reports,
read in pieces as ``go test -json`` writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagpar_plugins import go
from dagpar_plugins.go.stream import GoTestStream, event_time

from dagpar_cli import Outcome, RunnerSpec, Status, TestEvent

RECORDED = Path(__file__).resolve().parents[3] / "data" / "go"
STREAMS = sorted(p.name for p in RECORDED.glob("*.json") if p.name != "list.json")
PACKAGE = "example.com/goexit/exits"


def event(action: str, test: str | None = None, at: str = "00.5", **more: object) -> bytes:
    record: dict[str, object] = {
        "Time": f"2026-12-04T17:12:{at}Z",
        "Action": action,
        "Package": PACKAGE,
    }
    if test is not None:
        record["Test"] = test
    record.update(more)
    return json.dumps(record).encode() + b"\n"


def read_in_pieces(stream: GoTestStream, path: Path, data: bytes, size: int) -> list[TestEvent]:
    events: list[TestEvent] = []
    with path.open("wb") as file:
        for i in range(0, len(data), size):
            file.write(data[i : i + size])
            file.flush()
            events.extend(stream.poll())
    return events + stream.poll()


@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    (tmp_path / "reports").mkdir()
    manifest = {
        "report": "go-1.json",
        "packages": [{"path": "exits", "import_path": PACKAGE, "tests": None}],
    }
    (tmp_path / "reports" / "go-1.selection.json").write_text(json.dumps(manifest))
    return tmp_path / "reports"


def spec(tmp_path: Path) -> RunnerSpec:
    return RunnerSpec(name="go", workspace=tmp_path)


def test_event_times_are_wall_clock_seconds() -> None:
    assert event_time("1970-01-01T00:00:01.25Z") == 1.25
    assert event_time("1970-01-01T01:00:01+01:00") == 1.0
    assert event_time("2026-12-04T17:12:56.052510215Z") == pytest.approx(1796404376.0525102)
    assert event_time("yesterday") is None
    assert event_time(12) is None


def test_a_missing_report_is_no_event_and_no_error(tmp_path: Path) -> None:
    stream = GoTestStream(spec(tmp_path), tmp_path / "nowhere")
    assert stream.poll() == []


def test_a_half_written_line_waits_for_its_end(tmp_path: Path, report_dir: Path) -> None:
    stream = GoTestStream(spec(tmp_path), report_dir)
    line = event("run", "TestFirst", at="01.0")
    report = report_dir / "go-1.json"
    report.write_bytes(line[:20])
    assert stream.poll() == []
    report.write_bytes(line)
    (start,) = stream.poll()
    assert (start.kind, start.test.path, start.test.name) == ("start", "exits", "TestFirst")
    assert start.at == event_time("2026-12-04T17:12:01.0Z")
    assert stream.poll() == []


def test_a_test_ends_at_its_verdict_with_its_subtests_folded_in(
    tmp_path: Path, report_dir: Path
) -> None:
    data = b"".join(
        [
            event("run", "TestFirst", at="01.0"),
            event("run", "TestFirst/sub", at="01.1"),
            event("output", "TestFirst/sub", Output="    x_test.go:9: broken\n"),
            event("fail", "TestFirst/sub", at="01.2", Elapsed=0.1),
            event("fail", "TestFirst", at="01.5", Elapsed=0.5),
            event("run", "TestExits", at="02.0"),
            event("output", "TestExits", Output="=== RUN   TestExits\n"),
            event("output", None, Output="FAIL\texample.com/goexit/exits\t0.01s\n"),
            event("fail", None, at="03.0", Elapsed=2.0),
        ]
    )
    events = read_in_pieces(
        GoTestStream(spec(tmp_path), report_dir), report_dir / "go-1.json", data, 7
    )
    assert [(e.kind, e.test.name) for e in events] == [
        ("start", "TestFirst"),
        ("end", "TestFirst"),
        ("start", "TestExits"),
    ]
    result = events[1].result
    assert result is not None
    assert result.status is Status.FAILED
    assert result.message == "TestFirst/sub: x_test.go:9: broken"
    assert result.start == events[0].at == event_time("2026-12-04T17:12:01.0Z")
    assert events[1].at == event_time("2026-12-04T17:12:01.5Z")
    assert result.seconds == 0.5


def test_a_selected_subtest_is_named_as_selected(tmp_path: Path, report_dir: Path) -> None:
    manifest = {
        "report": "go-1.json",
        "packages": [{"path": "exits", "import_path": PACKAGE, "tests": ["TestFirst/a b"]}],
    }
    (report_dir / "go-1.selection.json").write_text(json.dumps(manifest))
    data = event("run", "TestFirst") + event("run", "TestFirst/a_b")
    data += event("pass", "TestFirst/a_b") + event("pass", "TestFirst")
    events = read_in_pieces(
        GoTestStream(spec(tmp_path), report_dir), report_dir / "go-1.json", data, 1000
    )
    assert [(e.kind, e.test.name) for e in events] == [
        ("start", "TestFirst/a b"),
        ("end", "TestFirst/a b"),
    ]
    assert events[1].result is not None and events[1].result.status is Status.PASSED


def test_later_reports_are_read_in_command_order(tmp_path: Path, report_dir: Path) -> None:
    stream = GoTestStream(spec(tmp_path), report_dir)
    (report_dir / "go-10.json").write_bytes(event("run", "TestTen"))
    (report_dir / "go-2.json").write_bytes(event("run", "TestTwo"))
    assert [e.test.name for e in stream.poll()] == ["TestTwo", "TestTen"]


def test_a_planted_link_is_not_followed(tmp_path: Path, report_dir: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_bytes(event("run", "TestFirst"))
    (report_dir / "go-1.json").symlink_to(target)
    assert GoTestStream(spec(tmp_path), report_dir).poll() == []


@pytest.mark.parametrize("recording", STREAMS)
def test_the_stream_agrees_with_the_report(tmp_path: Path, recording: str) -> None:
    """Every test the stream ends has the report's result; every test the report says finished
    was ended by the stream (read 13 bytes at a time)."""
    report_dir = tmp_path / "reports"
    report_dir.mkdir()
    data = (RECORDED / recording).read_bytes()
    stream = GoTestStream(spec(tmp_path), report_dir)
    events = read_in_pieces(stream, report_dir / "go-1.json", data, 13)
    parsed = {r.id: r for r in go.parse_reports(spec(tmp_path), report_dir, Outcome(exit_code=1))}
    ended = {e.test.id: e.result for e in events if e.kind == "end"}
    started = [e.test.id for e in events if e.kind == "start"]
    assert len(started) == len(set(started)), "a test started twice"
    assert set(ended) <= set(started)
    for test_id, result in ended.items():
        assert result is not None
        expected = parsed[test_id]
        assert (result.status, result.message) == (expected.status, expected.message), test_id
    for test_id, expected in parsed.items():
        if not expected.message.startswith(("did not finish", "did not run")):
            assert test_id in ended or expected.name == "[package]", test_id


def test_a_test_printing_a_lot_keeps_its_head_and_tail_and_its_panic(
    tmp_path: Path, report_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagpar_plugins.go import report

    monkeypatch.setattr(report, "OUTPUT_KEEP", 100)
    lines = [event("run", "TestFirst")]
    lines += [event("output", "TestFirst", Output=f"line {i:04d}\n") for i in range(1000)]
    lines += [event("output", "TestFirst", Output="panic: boom\n")]
    lines += [event("fail", "TestFirst"), event("fail")]
    data = b"".join(lines)
    (report_dir / "go-1.json").write_bytes(data)
    stream = GoTestStream(spec(tmp_path), report_dir)
    end = next(e for e in stream.poll() if e.kind == "end")
    (parsed,) = go.parse_reports(spec(tmp_path), report_dir, Outcome(exit_code=1))
    for result in (end.result, parsed):
        assert result is not None
        assert result.message == "panic: boom"
        details = result.details
        assert details.startswith("line 0000\nline 0001\n")
        assert details.endswith("line 0999\npanic: boom\n")
        assert "characters of output cut ...]\n" in details
        assert len(details) < 400


def test_a_new_report_of_the_same_name_is_read_from_its_start(
    tmp_path: Path, report_dir: Path
) -> None:
    stream = GoTestStream(spec(tmp_path), report_dir)
    report = report_dir / "go-1.json"
    report.write_bytes(event("run", "TestFirst") + event("pass", "TestFirst"))
    assert [e.kind for e in stream.poll()] == ["start", "end"]
    report.unlink()
    report.write_bytes(event("run", "TestThird"))
    assert [(e.kind, e.test.name) for e in stream.poll()] == [("start", "TestThird")]
