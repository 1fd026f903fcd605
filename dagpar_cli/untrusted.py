"""Files in a directory that a container can write to, handled without following its links.

A slice's report directory is bind-mounted writable into the container its tests run in, and
dagpar (often root, in CI) writes into it and reads reports from it afterwards. A test in the
container may replace any name there with a symbolic link to a host path, or with a FIFO, a
device or a directory, and may keep doing so while dagpar works (a background process outlives
the test command). So every access to such a directory goes through these helpers:

- the directory itself (*root*) is dagpar's and trusted; every name below it is walked one
  component at a time with ``O_NOFOLLOW`` relative to an open directory, so no link, in the last
  component or in a directory on the way, is ever followed;
- writing removes whatever entry has the name (without following it) and creates the file
  exclusively (``O_CREAT | O_EXCL``), retrying if the container plants a new entry between;
- reading opens only regular files: a link, a FIFO, a device or a directory is an
  :class:`UntrustedFileError` (an ``OSError``, so a reader that treats an unreadable report as
  missing keeps doing so), whose message says what was found instead of a file.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

__all__ = [
    "LineTail",
    "UntrustedFileError",
    "create_binary",
    "is_file",
    "list_names",
    "lstat",
    "open_binary",
    "open_rdwr",
    "read_bytes",
    "read_text",
    "regular",
    "write_text",
]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CREATE_TRIES = 20


class UntrustedFileError(OSError):
    """A name in a container-writable directory is not the regular file dagpar expected."""

    def __str__(self) -> str:
        return str(self.strerror)


def _parts(name: str) -> list[str]:
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".", "/")]
    if not parts or ".." in parts or "\0" in name:
        raise UntrustedFileError(errno.EINVAL, f"{name!r} is not a file name below the directory")
    return parts


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "of an unknown kind"


def _refuse(root: Path, name: str, mode: int) -> UntrustedFileError:
    if stat.S_ISLNK(mode):
        return UntrustedFileError(
            errno.ELOOP,
            f"{root / name} is a symbolic link, not a regular file; dagpar does not follow it",
        )
    return UntrustedFileError(
        errno.EINVAL, f"{root / name} is {_kind(mode)}, not a regular file; dagpar does not open it"
    )


@contextmanager
def _parent(root: Path, parts: list[str], *, create: bool) -> Iterator[int]:
    """An open descriptor of the directory holding ``parts[-1]``, reached without links."""
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for index, part in enumerate(parts[:-1]):
            if create:
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                child = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    where = "/".join(parts[: index + 1])
                    mode = os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode
                    if stat.S_ISREG(mode):
                        raise UntrustedFileError(
                            errno.ENOTDIR, f"{root / where} is a file, not a directory"
                        ) from None
                    raise _refuse(root, where, mode) from None
                raise
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def lstat(root: Path, name: str) -> os.stat_result:
    """The status of the entry *name* below *root* itself (a link is not followed)."""
    parts = _parts(name)
    with _parent(root, parts, create=False) as fd:
        return os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)


def regular(root: Path, name: str) -> os.stat_result:
    """The status of *name* below *root*, which must be a regular file itself.

    :raises FileNotFoundError: when there is no such entry.
    :raises UntrustedFileError: when it is a link, FIFO, device or directory.
    """
    status = lstat(root, name)
    if not stat.S_ISREG(status.st_mode):
        raise _refuse(root, name, status.st_mode)
    return status


def is_file(root: Path, name: str) -> bool:
    """Whether *name* below *root* is a regular file (not a link to one)."""
    try:
        return stat.S_ISREG(lstat(root, name).st_mode)
    except OSError:
        return False


def list_names(root: Path) -> list[str]:
    """The names of the regular files directly in *root* (links and the rest left out)."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    return [n for n in names if is_file(root, n)]


def _open_regular(root: Path, name: str, flags: int) -> int:
    parts = _parts(name)
    with _parent(root, parts, create=False) as parent:
        before = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISREG(before.st_mode):
            raise _refuse(root, name, before.st_mode)
        # O_NONBLOCK: a FIFO swapped in after the check must not hang the open.
        fd = os.open(parts[-1], flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC, dir_fd=parent)
    try:
        after = os.fstat(fd)
        if not stat.S_ISREG(after.st_mode):
            raise _refuse(root, name, after.st_mode)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_binary(root: Path, name: str) -> BinaryIO:
    """*name* below *root* opened for reading in binary mode, if it is a regular file.

    :raises UntrustedFileError: when the name is a link, FIFO, device or directory, or a
        directory on the way is a link.
    :raises FileNotFoundError: when there is no such entry.
    """
    return os.fdopen(_open_regular(root, name, os.O_RDONLY), "rb")


def read_bytes(root: Path, name: str) -> bytes:
    """The contents of the regular file *name* below *root* (see :func:`open_binary`)."""
    with open_binary(root, name) as stream:
        return stream.read()


def read_text(root: Path, name: str, *, errors: str = "strict") -> str:
    """The UTF-8 text of the regular file *name* below *root* (see :func:`open_binary`)."""
    return read_bytes(root, name).decode("utf-8", errors=errors)


def open_rdwr(root: Path, name: str) -> int:
    """A read-write descriptor of the existing regular file *name* below *root* (the caller
    closes it); raises like :func:`open_binary`."""
    return _open_regular(root, name, os.O_RDWR)


def write_text(root: Path, name: str, text: str) -> None:
    """Write *text* (UTF-8) to a new file *name* below *root*, creating directories on the way.

    Whatever entry had the name (a file, a planted link, FIFO or empty directory) is removed
    without being followed, and the file is created exclusively, so the bytes land in a file
    dagpar made and nowhere else.

    :raises UntrustedFileError: when a directory on the way is a link, or a non-empty directory
        has the name, or the name keeps being taken.
    """
    with create_binary(root, name) as stream:
        stream.write(text.encode("utf-8"))


def create_binary(root: Path, name: str) -> BinaryIO:
    """A new, empty file *name* below *root*, open for unbuffered binary writing (the caller
    closes it); made as :func:`write_text` makes its file, so that what is written to it
    lands in a file dagpar made, whatever a container does to the name meanwhile.

    :raises UntrustedFileError: like :func:`write_text`.
    """
    parts = _parts(name)
    with _parent(root, parts, create=True) as parent:
        leaf = parts[-1]
        for _ in range(_CREATE_TRIES):
            try:
                fd = os.open(
                    leaf,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC,
                    0o666,
                    dir_fd=parent,
                )
            except FileExistsError:
                _remove(root, name, parent, leaf)
                continue
            return os.fdopen(fd, "wb", buffering=0)
    raise UntrustedFileError(errno.EEXIST, f"{root / name} keeps being replaced; not written")


def _remove(root: Path, name: str, parent: int, leaf: str) -> None:
    try:
        os.unlink(leaf, dir_fd=parent)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        _rmdir(root, name, parent, leaf)
    except PermissionError:
        # Linux answers EISDIR, others EPERM, for unlink() of a directory.
        if not stat.S_ISDIR(os.stat(leaf, dir_fd=parent, follow_symlinks=False).st_mode):
            raise
        _rmdir(root, name, parent, leaf)


def _rmdir(root: Path, name: str, parent: int, leaf: str) -> None:
    try:
        os.rmdir(leaf, dir_fd=parent)
    except OSError as exc:
        raise UntrustedFileError(
            exc.errno, f"{root / name} is a directory dagpar cannot replace: {exc.strerror}"
        ) from None


class LineTail:
    """The complete lines appended to one file below a container-writable *root*, as they come.

    A runner's per-test stream is such a file: its runner appends lines while dagpar reads them.
    Each :meth:`lines` call returns the lines completed since the last one (a half-written
    last line waits for a later call), reads through no link a test planted under the name
    (:func:`regular`), and skips a line longer than *longest* bytes whole rather than keep it
    in memory. A different file under the name (the command ran again) is read from its
    start; :attr:`generation` counts such restarts, so a reader can drop what it derived from
    the old file.

    :param root: the directory (a slice's report directory).
    :param name: the file's name below it.
    :param chunk: bytes read at a time.
    :param longest: the longest line kept, in bytes.
    """

    def __init__(
        self, root: Path, name: str, *, chunk: int = 1 << 20, longest: int = 1 << 24
    ) -> None:
        self.root = root
        self.name = name
        self.chunk = chunk
        self.longest = longest
        #: How many times the file under the name was replaced by another one.
        self.generation = 0
        self._file: tuple[int, int] | None = None
        self._offset = 0
        self._partial = b""
        self._skipping = False

    def lines(self) -> list[bytes]:
        """The lines completed since the last call, without their newlines."""
        try:
            status = regular(self.root, self.name)
        except OSError:
            return []
        file = (status.st_dev, status.st_ino)
        if self._file is not None and (file != self._file or status.st_size < self._offset):
            # The command ran again: a new file, whose inode may even be the old one's.
            self.generation += 1
            self._offset, self._partial, self._skipping = 0, b"", False
        self._file = file
        size = status.st_size
        out: list[bytes] = []
        if size <= self._offset:
            return out
        try:
            with open_binary(self.root, self.name) as stream:
                stream.seek(self._offset)
                # Up to the size seen now: what is appended meanwhile waits for the next call.
                while self._offset < size:
                    data = stream.read(min(self.chunk, size - self._offset))
                    if not data:
                        break
                    self._offset += len(data)
                    self._take(data, out)
        except OSError:
            pass
        return out

    def _take(self, data: bytes, out: list[bytes]) -> None:
        pieces = data.split(b"\n")
        last = pieces.pop()
        for i, piece in enumerate(pieces):
            if i == 0:
                piece, self._partial = self._partial + piece, b""
                if self._skipping:
                    self._skipping = False
                    continue
            if len(piece) <= self.longest:
                out.append(piece)
        if pieces:
            self._partial = last
        elif not self._skipping:
            self._partial += last
        if len(self._partial) > self.longest:
            self._partial, self._skipping = b"", True
