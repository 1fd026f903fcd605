"""Atomic writes: a reader sees the old file or the new one, and nothing is left behind."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from dagpar_cli._fs import unwritable_reason, write_atomic, write_through


def test_text_and_bytes_replace_the_file(tmp_path: Path) -> None:
    target = tmp_path / "report.xml"
    write_atomic(target, b"<old/>")
    write_atomic(target, "caf\u00e9")
    assert target.read_bytes() == "caf\u00e9".encode()
    assert os.listdir(tmp_path) == ["report.xml"]


def test_encoding_errors_follow_the_errors_argument(tmp_path: Path) -> None:
    target = tmp_path / "a.html"
    write_atomic(target, "lone \ud800", errors="replace")
    assert target.read_bytes() == b"lone ?"
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "lone \ud800")
    assert target.read_bytes() == b"lone ?"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "entry.json"
    target.write_text("old")

    def broken(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["entry.json"]


def test_mode_defaults_to_the_umask_and_can_be_set(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "a", "x")
        write_atomic(tmp_path / "b", "x", mode=0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o644


def test_concurrent_writers_never_share_a_temporary(tmp_path: Path) -> None:
    target = tmp_path / "shared.json"
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for _ in range(50):
                write_atomic(target, str(n) * 1000)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(target.read_text())) == 1
    assert os.listdir(tmp_path) == ["shared.json"]


def test_write_through_keeps_a_link_and_writes_its_target(tmp_path: Path) -> None:
    (tmp_path / "artifacts").mkdir()
    link = tmp_path / "junit.xml"
    link.symlink_to("artifacts/junit.xml")  # dangling until written
    write_through(link, "<new/>")
    assert link.is_symlink()
    assert (tmp_path / "artifacts" / "junit.xml").read_text() == "<new/>"
    write_through(link, "<newer/>")
    assert link.is_symlink() and link.read_text() == "<newer/>"


def test_write_through_writes_a_fifo_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_through(fifo, b"data")
    reader.join(timeout=30)
    assert got == [b"data"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_write_through_makes_missing_parents(tmp_path: Path) -> None:
    write_through(tmp_path / "a" / "b" / "r.html", "x")
    assert (tmp_path / "a" / "b" / "r.html").read_text() == "x"


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("file.txt/sub/r.xml", "is not a directory"),
        (".", "is a directory"),
        ("/proc/dagpar-report.xml", "cannot create files in /proc"),
    ],
)
def test_unwritable_reason_names_what_is_in_the_way(
    tmp_path: Path, where: str, reason: str
) -> None:
    (tmp_path / "file.txt").write_text("")
    found = unwritable_reason(tmp_path / where)
    assert found is not None and reason in found, found


def test_unwritable_reason_accepts_new_files_links_and_devices(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to("missing/target.xml")
    for path in (tmp_path / "new" / "r.xml", tmp_path / "link", Path("/dev/null")):
        assert unwritable_reason(path) is None, path
