"""Container-writable directories: dagpar never follows a link a test planted there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagpar_cli import untrusted
from dagpar_cli.untrusted import UntrustedFileError


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A host file standing in for /etc/passwd."""
    path = tmp_path / "secret"
    path.write_text("root:x:0:0\n")
    return path


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    path = tmp_path / "reports"
    path.mkdir()
    return path


def test_writing_replaces_a_planted_link_instead_of_following_it(
    reports: Path, secret: Path
) -> None:
    (reports / "go-1.json").symlink_to(secret)
    untrusted.write_text(reports, "go-1.json", "{}\n")
    assert secret.read_text() == "root:x:0:0\n"
    assert not (reports / "go-1.json").is_symlink()
    assert (reports / "go-1.json").read_text() == "{}\n"


def test_writing_replaces_a_dangling_link_instead_of_creating_its_target(
    reports: Path, tmp_path: Path
) -> None:
    (reports / "out.txt").symlink_to(tmp_path / "created")
    untrusted.write_text(reports, "out.txt", "x")
    assert not (tmp_path / "created").exists()
    assert (reports / "out.txt").read_text() == "x"


def test_writing_never_goes_through_a_linked_directory(reports: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (reports / "sub").symlink_to(outside)
    with pytest.raises(UntrustedFileError, match="symbolic link"):
        untrusted.write_text(reports, "sub/file.txt", "x")
    assert list(outside.iterdir()) == []


def test_writing_creates_directories_and_replaces_fifos_and_empty_directories(
    reports: Path,
) -> None:
    os.mkfifo(reports / "fifo")
    (reports / "empty").mkdir()
    untrusted.write_text(reports, "fifo", "a")
    untrusted.write_text(reports, "empty", "b")
    untrusted.write_text(reports, "deep/er/file", "c")
    assert [(reports / n).read_text() for n in ("fifo", "empty", "deep/er/file")] == list("abc")


def test_writing_over_a_full_directory_says_so(reports: Path) -> None:
    (reports / "full").mkdir()
    (reports / "full" / "x").write_text("x")
    with pytest.raises(UntrustedFileError, match="is a directory dagpar cannot replace"):
        untrusted.write_text(reports, "full", "x")


def test_reading_refuses_a_planted_link(reports: Path, secret: Path) -> None:
    (reports / "junit.xml").symlink_to(secret)
    with pytest.raises(UntrustedFileError) as info:
        untrusted.read_text(reports, "junit.xml")
    assert str(info.value) == (
        f"{reports / 'junit.xml'} is a symbolic link, not a regular file; dagpar does not follow it"
    )
    assert not untrusted.is_file(reports, "junit.xml")
    assert untrusted.list_names(reports) == []


def test_reading_refuses_a_file_below_a_linked_directory(reports: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "r.json").write_text("{}")
    (reports / "sub").symlink_to(tmp_path / "outside")
    with pytest.raises(UntrustedFileError, match="sub is a symbolic link"):
        untrusted.read_bytes(reports, "sub/r.json")


def test_reading_refuses_fifos_without_hanging_and_names_outside_the_directory(
    reports: Path,
) -> None:
    os.mkfifo(reports / "fifo")
    with pytest.raises(UntrustedFileError, match="is a FIFO"):
        untrusted.read_text(reports, "fifo")
    with pytest.raises(UntrustedFileError, match="fifo is a FIFO, not a regular file; dagpar does"):
        untrusted.read_text(reports, "fifo/below")
    (reports / "file").write_text("x")
    with pytest.raises(UntrustedFileError, match="file is a file, not a directory"):
        untrusted.write_text(reports, "file/below", "y")
    with pytest.raises(UntrustedFileError, match="not a file name below"):
        untrusted.read_text(reports, "../secret")
    with pytest.raises(FileNotFoundError):
        untrusted.read_text(reports, "missing")


def test_read_write_opening_refuses_a_planted_link(reports: Path, secret: Path) -> None:
    (reports / "claim").symlink_to(secret)
    with pytest.raises(UntrustedFileError):
        untrusted.open_rdwr(reports, "claim")
    (reports / "real").write_text("1 2\n")
    fd = untrusted.open_rdwr(reports, "real")
    try:
        assert os.pread(fd, 10, 0) == b"1 2\n"
    finally:
        os.close(fd)


def test_regular_files_read_as_usual(reports: Path) -> None:
    (reports / "a.json").write_text('{"ok": true}')
    (reports / "sub").mkdir()
    (reports / "sub" / "b.txt").write_bytes(b"\xffx")
    assert untrusted.read_text(reports, "a.json") == '{"ok": true}'
    assert untrusted.read_text(reports, "sub/b.txt", errors="replace") == "\ufffdx"
    assert untrusted.list_names(reports) == ["a.json"]
    assert untrusted.lstat(reports, "a.json").st_size == 12


@pytest.mark.parametrize("name", ["", ".", "..", "a/../b", "nul\0byte"])
def test_names_that_are_not_below_the_directory_are_refused(reports: Path, name: str) -> None:
    with pytest.raises(UntrustedFileError, match="is not a file name below the directory"):
        untrusted.read_text(reports, name)
    with pytest.raises(UntrustedFileError, match="is not a file name below the directory"):
        untrusted.write_text(reports, name, "x")


# --------------------------------------------------------------------------------------------
# LineTail: a runner's stream, read as it is written
# --------------------------------------------------------------------------------------------


def test_line_tail_returns_each_completed_line_once(tmp_path: Path) -> None:
    tail = untrusted.LineTail(tmp_path, "events.jsonl", chunk=3)
    assert tail.lines() == []  # not written yet
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"one\ntw")
    assert tail.lines() == [b"one"]
    with events.open("ab") as f:
        f.write(b"o\nthree\n")
    assert tail.lines() == [b"two", b"three"]
    assert tail.lines() == []


def test_line_tail_skips_a_line_longer_than_it_keeps(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"a\n" + b"x" * 50)
    tail = untrusted.LineTail(tmp_path, "events.jsonl", chunk=7, longest=10)
    assert tail.lines() == [b"a"]
    with events.open("ab") as f:
        f.write(b"x" * 50 + b"\nb\n" + b"y" * 11 + b"\nc\n")
    assert tail.lines() == [b"b", b"c"]


def test_line_tail_follows_no_planted_link_and_restarts_on_a_new_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"root:x:0:0\n")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "events.jsonl").symlink_to(secret)
    tail = untrusted.LineTail(reports, "events.jsonl")
    assert tail.lines() == []
    (reports / "events.jsonl").unlink()
    (reports / "events.jsonl").write_bytes(b"first\nsecond\n")
    assert tail.lines() == [b"first", b"second"]
    assert tail.generation == 0
    (reports / "events.jsonl").unlink()
    (reports / "events.jsonl").write_bytes(b"again\n")  # the command ran again
    assert tail.lines() == [b"again"]
    assert tail.generation == 1
