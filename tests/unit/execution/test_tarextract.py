"""Extracting container archives: contents land in the target, nothing lands outside it."""

from __future__ import annotations

import io
import os
import re
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def _climb(root: Path) -> str:
    """``d/d/.../../..``: lexically inside the target, really its filesystem's ``/`` through
    ``d -> .``."""
    depth = len(root.resolve().parts) + 2
    return "/".join(["d"] * depth + [".."] * depth)


def test_a_link_chain_that_climbs_out_through_a_dot_link_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    climb = _climb(out)
    data = _archive(("dir", "top", ""), ("sym", "top/d", "."), ("sym", "top/f", climb))
    with pytest.raises(UnsafeArchiveError) as info:
        extract_stripped(_chunks(data), out)
    assert str(info.value) == f"archive member 'top/f' links outside the target: {climb}"
    assert not (out / "f").is_symlink()


def test_a_hard_link_through_a_climbing_link_copies_no_host_file(tmp_path: Path) -> None:
    secret = tmp_path / "host" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0\n")
    out = tmp_path / "out"
    data = _archive(
        ("sym", "top/d", "."),
        ("sym", "top/f", _climb(out)),
        ("hard", "top/passwd", "top/f" + str(secret)),
    )
    with pytest.raises(UnsafeArchiveError, match="'top/f' links outside"):
        extract_stripped(_chunks(data), out)
    assert not (out / "passwd").exists()


def test_a_link_a_later_member_turns_outward_is_removed_and_refused(tmp_path: Path) -> None:
    # g -> x/.. is the target itself while x is missing; once x is a link to the target (through
    # d -> .), g is the target's parent. A hard link through g then reaches a host file.
    secret = tmp_path / "host" / "secret"
    secret.parent.mkdir()
    secret.write_text("host secret")
    out = tmp_path / "out"
    linked = _archive(
        ("sym", "top/d", "."),
        ("sym", "top/g", "x/.."),
        ("sym", "top/x", "d/d"),
        ("hard", "top/stolen", "top/g/host/secret"),
    )
    with pytest.raises(UnsafeArchiveError, match="'top/stolen' links outside"):
        extract_stripped(_chunks(linked), out)
    assert not (out / "stolen").exists()
    assert not (out / "g").is_symlink()
    late = _archive(("sym", "top/d", "."), ("sym", "top/g", "x/.."), ("sym", "top/x", "d/d"))
    with pytest.raises(
        UnsafeArchiveError, match=re.escape("'top/g' links outside the target: x/..")
    ):
        extract_stripped(_chunks(late), tmp_path / "late")
    assert not (tmp_path / "late" / "g").is_symlink()


# ------------------------------------------------------------------------------------------
# generated archives: link chains in every order
# ------------------------------------------------------------------------------------------

SECRET = "host secret"
# Few names, so that links, the members below them and the links through them meet often.
_names = st.lists(st.sampled_from(["d", "a", "f"]), min_size=1, max_size=2).map("/".join)
#: ``d/d/../../..``-shaped texts: lexically balanced or not, climbing out once ``d -> .``.
_climbs = st.tuples(st.lists(st.sampled_from(["d", "a", "f"]), max_size=4), st.integers(1, 5)).map(
    lambda walk: "/".join([*walk[0], *[".."] * walk[1]])
)
_link_texts = st.one_of(
    st.just("."),
    _climbs,
    _climbs.map(lambda climb: climb + "/host/secret"),
    st.lists(st.sampled_from(["d", "a", "f", ".", ".."]), min_size=1, max_size=6).map("/".join),
    st.just("ABSOLUTE"),  # stands for the host file's absolute path
)
_symlink = st.tuples(st.just("sym"), _names, _link_texts)
_any_members = st.lists(
    st.one_of(
        _symlink,
        _symlink,
        _symlink,
        st.tuples(st.just("file"), _names, st.just("data")),
        st.tuples(st.just("dir"), _names, st.just("")),
        st.tuples(
            st.just("hard"),
            _names,
            st.lists(
                st.sampled_from(["d", "a", "f", "host", "secret"]), min_size=1, max_size=5
            ).map(lambda parts: "top/" + "/".join(parts)),
        ),
    ),
    max_size=8,
)
#: The dot link first, often: later members climb through it (an archive stops at its first
#: refused member, so a chain has to come before anything the extractor refuses).
_members = st.tuples(st.booleans(), _any_members).map(
    lambda drawn: [("sym", "d", ".")] * drawn[0] + drawn[1]
)


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(members=_members)
def test_nothing_extracted_resolves_outside_the_target(
    members: list[tuple[str, str, str]],
) -> None:
    with tempfile.TemporaryDirectory() as base_name:
        base = Path(base_name)
        secret = base / "host" / "secret"
        secret.parent.mkdir()
        secret.write_text(SECRET)
        out = base / "out"
        archive = [
            (kind, f"top/{name}", str(secret) if data == "ABSOLUTE" else data)
            for kind, name, data in members
        ]
        try:
            extract_stripped(_chunks(_archive(*archive), size=512), out)
        except UnsafeArchiveError as exc:
            assert "\n" not in str(exc) and "archive member" in str(exc)
        except OSError:
            pass  # an entry of one kind where the archive later wants another: not an escape
        root = out.resolve()
        for directory, dirs, files in os.walk(out):
            for name in dirs + files:
                path = Path(directory) / name
                assert Path(os.path.realpath(path)).is_relative_to(root), (path, members)
                if path.is_file() and not path.is_symlink():
                    assert path.read_text() != SECRET, (path, members)
        assert sorted(p.name for p in base.iterdir()) == ["host", "out"]
        assert [p.name for p in secret.parent.iterdir()] == ["secret"]
        assert secret.read_text() == SECRET
