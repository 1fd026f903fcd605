"""Extracting a tar stream from a container without letting it write outside the target.

``docker cp``-style archives come from a container the user's code ran in, so they are not trusted:
a member named ``../x`` or ``/etc/x``, or a link pointing out of the target, is rejected (the whole
copy fails naming the member) rather than silently skipped. Devices and FIFOs are skipped; modes
keep their permission bits only (no set-uid).

Links are judged by where they lead on the real filesystem, not by their text: ``d -> .`` makes
``d/d/d/../../..`` climb out although it looks balanced. So every member's place, every symbolic
link's target and every hard link's source is resolved (``realpath``) against the tree as it has
been built so far, and must stay inside the target. A later member can change where an earlier
link leads (by becoming a link on its way), so every link is checked again once the archive is
done; one that now leaves the target is removed and the copy fails naming it.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

__all__ = ["UnsafeArchiveError", "extract_stripped"]


class UnsafeArchiveError(ValueError):
    """An archive member would land outside the target directory."""


class _ChunkReader:
    """A read-only file object over an iterator of byte chunks (for ``tarfile`` stream mode)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def _inside(root: Path, relative: PurePosixPath) -> Path:
    """*root* / *relative*, refusing anything that escapes *root* lexically."""
    if relative.is_absolute() or ".." in relative.parts:
        raise UnsafeArchiveError(f"archive member {str(relative)!r} escapes the target directory")
    return root.joinpath(*relative.parts)


def _strip(name: str) -> PurePosixPath | None:
    """The member's path below the archive's top directory, or None for the top itself."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise UnsafeArchiveError(f"archive member {name!r} escapes the target directory")
    parts = [p for p in path.parts if p != "."]
    if len(parts) <= 1:
        return None
    return PurePosixPath(*parts[1:])


def _resolved_inside(root: Path, path: Path) -> bool:
    """Whether *path*, resolved through the links already on disk, stays inside *root*."""
    return Path(os.path.realpath(path)).is_relative_to(root)


def _check_symlink(root: Path, dest: Path, linkname: str, name: str) -> None:
    if PurePosixPath(linkname).is_absolute() or not _resolved_inside(root, dest.parent / linkname):
        raise UnsafeArchiveError(f"archive member {name!r} links outside the target: {linkname}")


def _replace(dest: Path) -> None:
    """Make room for a new entry at *dest*, never writing through a link already there."""
    if dest.is_symlink() or dest.is_file():
        dest.unlink()


def extract_stripped(chunks: Iterable[bytes], target: Path) -> int:
    """Extract a tar stream whose single top directory is dropped, into *target* (created).

    This is the shape of a Docker ``GET /containers/{id}/archive`` answer for a directory: every
    member is ``DIRNAME/...``; the contents of ``DIRNAME`` land directly in *target*.

    :param chunks: the archive as byte chunks.
    :param target: the directory to fill.
    :returns: how many files (regular files and links) were written.
    :raises UnsafeArchiveError: naming the first member that would escape *target*.
    """
    target.mkdir(parents=True, exist_ok=True)
    root = Path(os.path.realpath(target))
    fileobj = _ChunkReader(chunks)
    written = 0
    links: dict[Path, tuple[str, str]] = {}
    try:
        with tarfile.open(fileobj=fileobj, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                written += _extract_member(tar, member, root, links)
    except BaseException:
        _remove_escaping(root, links)
        raise
    escaping = _remove_escaping(root, links)
    if escaping is not None:
        name, linkname = escaping
        raise UnsafeArchiveError(f"archive member {name!r} links outside the target: {linkname}")
    return written


def _extract_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    root: Path,
    links: dict[Path, tuple[str, str]],
) -> int:
    """Extract one member below *root*; how many files it wrote (0 or 1). Symbolic links made
    are recorded in *links* (destination → member name and link text)."""
    relative = _strip(member.name)
    if relative is None:
        return 0
    dest = _inside(root, relative)
    # A link written earlier must not redirect this member out of the target.
    if not _resolved_inside(root, dest.parent) or (
        member.isdir() and dest.is_symlink() and not _resolved_inside(root, dest)
    ):
        raise UnsafeArchiveError(
            f"archive member {member.name!r} is below a link leaving the target"
        )
    if member.isdir():
        dest.mkdir(parents=True, exist_ok=True)
        return 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    if member.issym():
        _check_symlink(root, dest, member.linkname, member.name)
        _replace(dest)
        dest.symlink_to(member.linkname)
        links[dest] = (member.name, member.linkname)
        return 1
    if member.islnk():
        source = _strip(member.linkname)
        if source is None:
            raise UnsafeArchiveError(f"archive member {member.name!r} links a directory")
        # Resolved: the source's path may run through links the archive made.
        source_path = Path(os.path.realpath(_inside(root, source)))
        if not source_path.is_relative_to(root) or not source_path.is_file():
            raise UnsafeArchiveError(
                f"archive member {member.name!r} links outside the target: {member.linkname}"
            )
        _replace(dest)
        shutil.copyfile(source_path, dest)
    elif member.isreg():
        extracted = tar.extractfile(member)
        if extracted is None:  # pragma: no cover - isreg() members always have data
            return 0
        _replace(dest)
        with dest.open("xb") as out:
            shutil.copyfileobj(extracted, out)
        dest.chmod(member.mode & 0o777 | 0o600)
    else:
        return 0
    links.pop(dest, None)
    return 1


def _remove_escaping(root: Path, links: dict[Path, tuple[str, str]]) -> tuple[str, str] | None:
    """Remove every link that later members made lead out of the target; the first one's
    member name and link text, or None when all stay inside."""
    first: tuple[str, str] | None = None
    for dest, (name, linkname) in links.items():
        if dest.is_symlink() and not _resolved_inside(root, dest):
            dest.unlink()
            first = first or (name, linkname)
    return first
