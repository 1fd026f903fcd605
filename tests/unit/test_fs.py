"""Atomic writes: a reader sees the old file or the new one, and nothing is left behind."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from dagpar_cli._fs import write_atomic


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
