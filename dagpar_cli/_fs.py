"""File-system helpers shared by the modules that write files a reader may see at any time."""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["write_atomic"]

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
