"""Extracting a tar stream from a container without letting it write outside the target.

``docker cp``-style archives come from a container the user's code ran in, so they are not trusted:
a member named ``../x`` or ``/etc/x``, or a link pointing out of the target, is rejected (the whole
copy fails naming the member) rather than silently skipped. Devices and FIFOs are skipped; modes
keep their permission bits only (no set-uid).
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


def _check_symlink(root: Path, dest: Path, linkname: str, name: str) -> None:
    target = PurePosixPath(linkname)
    if target.is_absolute():
        raise UnsafeArchiveError(f"archive member {name!r} links outside the target: {linkname}")
    resolved = Path(os.path.normpath(dest.parent / target))
    if not resolved.is_relative_to(root):
        raise UnsafeArchiveError(f"archive member {name!r} links outside the target: {linkname}")


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
    with tarfile.open(fileobj=fileobj, mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            relative = _strip(member.name)
            if relative is None:
                continue
            dest = _inside(root, relative)
            # A symlinked parent directory written earlier must not redirect this member.
            parent = Path(os.path.realpath(dest.parent))
            if not parent.is_relative_to(root):
                raise UnsafeArchiveError(
                    f"archive member {member.name!r} is below a link leaving the target"
                )
            if member.isdir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            if member.issym():
                _check_symlink(root, dest, member.linkname, member.name)
                if dest.is_symlink() or dest.exists():
                    dest.unlink()
                dest.symlink_to(member.linkname)
            elif member.islnk():
                source = _strip(member.linkname)
                if source is None:
                    raise UnsafeArchiveError(f"archive member {member.name!r} links a directory")
                source_path = _inside(root, source)
                if not source_path.is_file():
                    raise UnsafeArchiveError(
                        f"archive member {member.name!r} links outside the target: "
                        f"{member.linkname}"
                    )
                shutil.copyfile(source_path, dest)
            elif member.isreg():
                extracted = tar.extractfile(member)
                if extracted is None:  # pragma: no cover - isreg() members always have data
                    continue
                if dest.is_symlink():
                    dest.unlink()
                with dest.open("wb") as out:
                    shutil.copyfileobj(extracted, out)
                dest.chmod(member.mode & 0o777 | 0o600)
            else:
                continue
            written += 1
    return written
