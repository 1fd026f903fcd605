"""The exchange directory of warm containers, on the host side (no engine needed)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from dagpar_cli.execution.api import Mount
from dagpar_cli.execution.docker_exchange import (
    EXCHANGE_TARGET,
    MAX_DEPTH,
    Exchange,
    copy_tree,
    exchange_target,
    linkable,
    split,
)


def test_copy_tree_copies_files_and_directories_and_follows_nothing(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d" / "e").mkdir(parents=True)
    dst.mkdir()
    (src / "report.json").write_text("mine")
    (src / "d" / "e" / "f").write_text("deep")
    secret = tmp_path / "secret"
    secret.write_text("host only")
    (src / "link").symlink_to(secret)
    (src / "dirlink").symlink_to(tmp_path)
    os.mkfifo(src / "fifo")
    copy_tree(tmp_path, ["src"], dst, "")
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob("*")) == [
        "d",
        "d/e",
        "d/e/f",
        "report.json",
    ]
    assert (dst / "d" / "e" / "f").read_text() == "deep"


def test_copy_tree_refuses_a_copied_directory_that_is_a_link(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x").write_text("x")
    (tmp_path / "s1").symlink_to(tmp_path / "elsewhere")
    dst = tmp_path / "dst"
    dst.mkdir()
    try:
        copy_tree(tmp_path, ["s1"], dst, "")
    except OSError:
        pass
    assert list(dst.iterdir()) == []


def test_copy_tree_replaces_a_link_at_the_destination_without_following_it(
    tmp_path: Path,
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "out").write_text("new")
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (dst / "out").symlink_to(victim)
    copy_tree(tmp_path, ["src"], dst, "")
    assert not (dst / "out").is_symlink() and (dst / "out").read_text() == "new"
    assert victim.read_text() == "keep"


def test_copy_tree_leaves_out_skipped_names_and_very_deep_directories(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    deep = src.joinpath(*["d"] * (MAX_DEPTH + 3))
    deep.mkdir(parents=True)
    (deep / "bottom").write_text("x")
    (src / "out.log").write_text("forged")
    dst.mkdir()
    (dst / "out.log").write_text("streamed")
    copy_tree(tmp_path, ["src"], dst, "", skip={"out.log"})
    assert (dst / "out.log").read_text() == "streamed"
    assert not list(dst.rglob("bottom"))


def test_an_exchange_fills_its_directory_and_brings_the_files_back(tmp_path: Path) -> None:
    host = tmp_path / "exchange"
    host.mkdir()
    report = tmp_path / "report"
    report.mkdir()
    (report / "given.py").write_text("plugin")
    exchange = Exchange(host, 3, [Mount(source=report, target=str(report), read_only=False)])
    assert exchange.prepare() == [str(report), f"{EXCHANGE_TARGET}/s3/0"]
    assert (host / "s3" / "0" / "given.py").read_text() == "plugin"
    exchange.attach()
    # While the session runs, the host's directory is its subdirectory, both ways.
    assert report.is_symlink()
    (host / "s3" / "0" / "junit.xml").write_text("<testsuite/>")
    assert (report / "junit.xml").read_text() == "<testsuite/>"
    (report / "out.log").write_text("streamed")
    assert (host / "s3" / "0" / "out.log").read_text() == "streamed"
    (host / "s3" / "0" / "planted").symlink_to("/etc/passwd")
    exchange.collect()
    assert report.is_dir() and not report.is_symlink()
    assert sorted(p.name for p in report.iterdir()) == ["given.py", "junit.xml", "out.log"]
    # What the container does afterwards no longer reaches the host.
    (host / "s3" / "0" / "junit.xml").write_text("tampered")
    assert (report / "junit.xml").read_text() == "<testsuite/>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exchange", "report"]
    assert exchange.locate(f"{report}/sub/x") == (["s3", "0", "sub", "x"], "sub/x")
    assert exchange.locate("/elsewhere") is None


def test_an_exchange_whose_subdirectory_was_replaced_gives_back_an_empty_directory(
    tmp_path: Path,
) -> None:
    host = tmp_path / "exchange"
    host.mkdir()
    report = tmp_path / "report"
    report.mkdir(mode=0o750)
    exchange = Exchange(host, 1, [Mount(source=report, target=str(report), read_only=False)])
    exchange.prepare()
    exchange.attach()
    shutil.rmtree(host / "s1" / "0")
    (host / "s1" / "0").symlink_to("/etc")
    exchange.collect()
    assert report.is_dir() and not report.is_symlink() and list(report.iterdir()) == []
    assert stat.S_IMODE(report.stat().st_mode) == 0o750


def test_which_writable_mounts_can_be_links(tmp_path: Path) -> None:
    ws = Mount(source=tmp_path, target="/ws")
    cache = Mount(source=tmp_path, target="/cache", read_only=False)

    def writable(target: str) -> Mount:
        return Mount(source=tmp_path, target=target, read_only=False)

    assert split([ws, cache, writable("/r")], shared=[cache]) == ((ws, cache), (writable("/r"),))
    assert linkable([ws, writable("/tmp/dagpar-1/0001-x")])
    assert linkable([ws, writable("/out")])
    for bad in ("/", "/tmp", "/ws/reports", "/ws/..", EXCHANGE_TARGET + "/x"):
        assert not linkable([ws, writable(bad)]), bad
    assert not linkable([writable("/a"), writable("/a/b")])


def test_report_directories_of_one_run_need_no_link(tmp_path: Path) -> None:
    ws = Mount(source=tmp_path, target="/ws")
    run = tmp_path / "run"
    reports = [run / "0001-a", run / "0002-b"]
    for report in reports:
        report.mkdir(parents=True)
    mounts = [ws, *(Mount(source=r, target=str(r), read_only=False) for r in reports)]
    assert exchange_target(mounts) == str(run)
    host = tmp_path / "exchange"
    host.mkdir()
    exchange = Exchange(host, 1, mounts[1:], str(run), in_place=True)
    assert exchange.prepare() == []
    assert sorted(p.name for p in host.iterdir()) == ["0001-a", "0002-b"]

    def writable(target: str) -> Mount:
        return Mount(source=tmp_path, target=target, read_only=False)

    # Elsewhere the exchange directory has a place of its own, and the targets are links.
    for spread in ([writable("/a/r"), writable("/b/r")], [writable("/out")], [writable("/tmp/r")]):
        assert exchange_target([ws, *spread]) == EXCHANGE_TARGET
    assert exchange_target([ws, writable("/ws/sub/r")]) == EXCHANGE_TARGET
