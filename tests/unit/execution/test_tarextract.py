"""Extracting container archives: contents land in the target, nothing lands outside it."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagpar_cli.execution.tarextract import UnsafeArchiveError, extract_stripped


def _archive(*members: tuple[str, str, str]) -> bytes:
    """A tar of ``(kind, name, data)`` members; kind is file, dir, sym or hard (data: link)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                payload = data.encode()
                info.size = len(payload)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[
                kind
            ]
            info.linkname = data
            tar.addfile(info)
    return buffer.getvalue()


def _chunks(data: bytes, size: int = 7) -> Iterator[bytes]:
    # Small chunks: the reader must reassemble tar blocks across chunk boundaries.
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_contents_of_the_top_directory_land_in_the_target(tmp_path: Path) -> None:
    data = _archive(
        ("dir", "reports", ""),
        ("file", "reports/junit.xml", "<xml/>"),
        ("dir", "reports/sub", ""),
        ("file", "reports/sub/deep.txt", "deep"),
        ("sym", "reports/latest.xml", "junit.xml"),
        ("hard", "reports/copy.xml", "reports/junit.xml"),
    )
    written = extract_stripped(_chunks(data), tmp_path / "out")
    out = tmp_path / "out"
    assert written == 4
    assert (out / "junit.xml").read_text() == "<xml/>"
    assert (out / "sub" / "deep.txt").read_text() == "deep"
    assert (out / "latest.xml").is_symlink() and (out / "latest.xml").read_text() == "<xml/>"
    assert (out / "copy.xml").read_text() == "<xml/>"
    assert not (out / "reports").exists()


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ((("file", "reports/../../escape.txt", "x"),), "escapes"),
        ((("file", "/etc/escape.txt", "x"),), "escapes"),
        ((("sym", "reports/passwd", "/etc/passwd"),), "links outside"),
        ((("sym", "reports/up", "../../.."),), "links outside"),
        ((("hard", "reports/shadow", "/etc/shadow"),), "escapes"),
        ((("hard", "reports/shadow", "reports/missing"),), "links outside"),
        (
            (
                ("sym", "reports/inner", "sub"),
                ("dir", "reports/sub", ""),
                ("sym", "reports/sub/x", "../../../y"),
            ),
            "links outside",
        ),
    ],
)
def test_members_escaping_the_target_are_rejected(
    tmp_path: Path, members: tuple[tuple[str, str, str], ...], message: str
) -> None:
    with pytest.raises(UnsafeArchiveError, match=message):
        extract_stripped(_chunks(_archive(*members)), tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_file_below_a_link_to_outside_is_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "out"
    target.mkdir()
    # An earlier copy (or a hostile archive) left a link to outside in the target.
    (target / "via").symlink_to(outside)
    data = _archive(("file", "reports/via/planted.txt", "x"))
    with pytest.raises(UnsafeArchiveError, match="below a link"):
        extract_stripped(_chunks(data), target)
    assert list(outside.iterdir()) == []


def test_set_uid_bits_are_dropped(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("top/tool")
        info.size = 2
        info.mode = 0o4755
        tar.addfile(info, io.BytesIO(b"#!"))
    extract_stripped(_chunks(buffer.getvalue()), tmp_path)
    assert (tmp_path / "tool").stat().st_mode & 0o7777 == 0o755
