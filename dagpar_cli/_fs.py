"""File-system helpers shared by the modules that write files a reader may see at any time."""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

__all__ = ["unwritable_reason", "write_atomic", "write_through"]

# Never write through a link planted where the temporary goes.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def write_atomic(
    path: Path,
    data: bytes | str,
    *,
    mode: int | None = None,
    encoding: str = "utf-8",
    errors: str = "strict",
) -> None:
    """Write *data* to *path* through a temporary file renamed into place.

    A concurrent reader sees the old file or the new one, never half of one; a failed write
    leaves the old file and no temporary behind. The temporary sits next to *path* (a rename
    is atomic only within one file system) and is named ``.tmp-<name>-<pid>-<thread>``, unique
    per process and thread so that concurrent writers never share one.

    :param path: the file to write; its directory must exist.
    :param data: the content; text is encoded with *encoding* and *errors*.
    :param mode: the file's permission bits; by default those of a new file (``0o666`` less
        the umask), as a plain ``open`` would give.
    :param encoding: the encoding of text *data*.
    :param errors: how encoding errors of text *data* are handled (``"replace"``...).
    """
    raw = data.encode(encoding, errors) if isinstance(data, str) else data
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}-{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW | _CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_through(
    path: Path, data: bytes | str, *, encoding: str = "utf-8", errors: str = "strict"
) -> None:
    """Write *data* where *path* leads, keeping what *path* is.

    A symbolic link stays a link and its target gets the content (written atomically, as
    :func:`write_atomic` does); a device, FIFO or other non-regular file (``/dev/null``,
    ``/dev/stdout``, a shell's ``>(...)``) is written in place, never replaced. A missing file
    and its missing parent directories are created.

    :param path: the file, link, device or FIFO to write.
    :param data: the content; text is encoded with *encoding* and *errors*.
    """
    raw = data.encode(encoding, errors) if isinstance(data, str) else data
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        with open(path, "wb") as out:  # follows links; no O_CREAT needed, it exists
            out.write(raw)
        return
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, raw, mode=stat.S_IMODE(st.st_mode) if st is not None else None)


def unwritable_reason(path: Path) -> str | None:
    """Why :func:`write_through` could not write *path*, or None when it could.

    Checked by trying, so that it holds for root and on read-only file systems alike: an
    existing non-regular file must open for writing without blocking; otherwise the nearest
    existing directory on the way to the (link-resolved) file must take a new file.
    """
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        st = None  # the walk below names what is in the way
    except OSError as exc:
        return exc.strerror or str(exc)
    if st is not None and stat.S_ISDIR(st.st_mode):
        return "it is a directory"
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISFIFO(st.st_mode) or os.access(path, os.W_OK):
            return None  # a FIFO's reader may come later; opening it now would block
        return "no write permission"
    target = Path(os.path.realpath(path))
    directory = target.parent
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    if not directory.is_dir():
        return f"{directory} is not a directory"
    if st is not None and not os.access(target, os.W_OK):
        return "no write permission"
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return f"cannot create files in {directory} ({exc.strerror or exc})"
    return None
