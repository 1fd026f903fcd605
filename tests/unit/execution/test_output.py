"""Command output kept bounded in memory, whole in its file (:mod:`dagpar_cli.execution.output`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagpar_cli.errors import ExecutionError
from dagpar_cli.execution.api import OutputFile
from dagpar_cli.execution.output import BoundedOutput, cut_marker, open_output


def test_a_short_output_is_kept_whole() -> None:
    out = BoundedOutput(8)
    out.feed(b"abc")
    out.feed(b"defgh")
    assert out.text() == "abcdefgh"
    assert out.cut == 0


def test_a_long_output_keeps_its_head_and_tail_and_counts_the_middle() -> None:
    out = BoundedOutput(4)
    for chunk in (b"0123", b"45", b"6789abcdef", b"ghij"):
        out.feed(chunk)
    assert out.cut == 20 - 8
    assert out.text() == "0123" + cut_marker(12) + "ghij"
    assert out.total == 20


def test_the_tail_stays_bounded_over_many_chunks() -> None:
    out = BoundedOutput(10)
    for i in range(10_000):
        out.feed(b"%05d\n" % i)
    assert len(out._tail) <= 20
    assert out.text().endswith(cut_marker(59980) + "998\n09999\n")
    assert out.text().startswith("00000\n0000")


def test_no_bound_keeps_everything() -> None:
    out = BoundedOutput(None)
    out.feed(b"x" * 5000)
    assert out.text() == "x" * 5000
    assert out.cut == 0


def test_an_output_file_replaces_a_planted_link_without_following_it(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (reports / "go-1.json").symlink_to(victim)
    sink = open_output(OutputFile(reports, "go-1.json"))
    assert sink is not None
    sink.write(b"{}\n")
    sink.close()
    assert victim.read_text() == "keep me"
    assert not (reports / "go-1.json").is_symlink()
    assert (reports / "go-1.json").read_text() == "{}\n"


def test_an_output_file_that_cannot_be_made_is_an_execution_error(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    (reports / "go-1.json").mkdir(parents=True)
    (reports / "go-1.json" / "x").write_text("")
    with pytest.raises(ExecutionError, match=r"go-1\.json"):
        open_output(OutputFile(reports, "go-1.json"))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_failing_write_stops_the_copy_and_is_remembered() -> None:
    from dagpar_cli.execution.output import OutputSink

    with open("/dev/full", "wb", buffering=0) as stream:
        sink = OutputSink(stream, "/dev/full")
        sink.write(b"x")
        sink.write(b"y")
    assert "cannot write /dev/full" in sink.error
