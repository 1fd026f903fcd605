"""Writable directories of a slice in a warm container: one exchange directory per container.

A warm container (:mod:`.docker_pool`) serves slice after slice, but a bind mount is fixed when
a container starts, and every slice has a report directory of its own. So a warm container
mounts one host directory of its own, its *exchange* directory, and never a slice's writable
directory. The commands, their environment and their files name the same paths as with a bind
mount. When the writable targets all lie in one directory (a run's report directories do), the
exchange directory is mounted there (:func:`exchange_target`) and a session's directories are
its subdirectories of the same names; otherwise it is mounted at :data:`EXCHANGE_TARGET` and
each target is a link to a subdirectory ``s<N>/<i>`` of it. For each session (:class:`Exchange`):

- the host makes the session's fresh subdirectories, copies into each what the mount's host
  directory holds (the runner's files written before the command), links the targets that
  need it (:func:`link`, one exec), and puts in place of each host directory a link to its
  subdirectory (:meth:`Exchange.attach`): while the slice runs, the host's readers (streams,
  progress, hand-over locks) see what the commands write live, as through a bind mount, and
  the commands see what the host writes there (its ``stdout_file``, hand-over locks);
- when the session closes, the host copies the subdirectory into a fresh real directory and
  puts that in place of the link (:meth:`Exchange.collect`);
- the container's reset empties the exchange directory and removes the links (and the
  directories they needed).

Once the session closed, the host directory is a directory of the host's own again: nothing a
later slice or a process the slice left behind does in the container can alter what the host
reads afterwards, and a container never sees another's exchange directory. While the session
runs, the host directory is that slice's own directory, trusted as a bind mount is: readers
follow no link a test planted below it. The copies follow no link either: every name below the
exchange directory is opened with ``O_NOFOLLOW`` relative to its open parent, and only regular
files and directories are copied (written with :func:`dagpar_cli.untrusted.create_binary`);
a link, FIFO, device or socket the writable host directory held before the session is not
carried over.

On a local engine such a session shares its mounts live (``shares_mounts``).
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
import tempfile
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from dagpar_cli import untrusted
from dagpar_cli.errors import ExecutionError
from dagpar_cli.execution.api import Mount

__all__ = [
    "EXCHANGE_TARGET",
    "LINK_SCRIPT",
    "Exchange",
    "copy_tree",
    "exchange_target",
    "link",
    "linkable",
    "split",
]

#: Where a warm container sees its exchange directory.
EXCHANGE_TARGET = "/.dagpar-exchange"

#: Links each target ($1) to its directory in the exchange ($2), pairwise; prints, per link,
#: the topmost path it created (the link itself, or the first missing directory on its way).
#: Fails when a target exists already.
LINK_SCRIPT = (
    "set -e; while [ $# -gt 1 ]; do t=$1; s=$2; shift 2; "
    'if [ -e "$t" ] || [ -L "$t" ]; then echo "$t exists in the image" >&2; exit 5; fi; '
    "top=$t; d=${t%/*}; "
    'while [ -n "$d" ] && [ ! -e "$d" ] && [ ! -L "$d" ]; do top=$d; d=${d%/*}; done; '
    'p=${t%/*}; [ -z "$p" ] || mkdir -p "$p"; ln -s "$s" "$t"; echo "$top"; done'
)

#: Directories deeper than this below a copied directory are left out (a test may nest many).
MAX_DEPTH = 64

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")


def split(
    mounts: Sequence[Mount], shared: Collection[Mount] = ()
) -> tuple[tuple[Mount, ...], tuple[Mount, ...]]:
    """The mounts a warm container has itself (the read-only ones and those in *shared*, which
    every session has alike), and the session's writable ones (exchanged)."""
    return (
        tuple(m for m in mounts if m.read_only or m in shared),
        tuple(m for m in mounts if not (m.read_only or m in shared)),
    )


def _under(path: str, top: str) -> bool:
    return path == top or top == "/" or path.startswith(top.rstrip("/") + "/")


def linkable(mounts: Sequence[Mount], shared: Collection[Mount] = ()) -> bool:
    """Whether the writable *mounts* can be links in a warm container with the others.

    A writable target must not be ``/`` nor a scratch directory itself, nor lie in or above
    another mount, the exchange directory or another writable target.
    """
    fixed, writable = split(mounts, shared)
    targets = [posixpath.normpath(m.target) for m in writable]
    taken = [posixpath.normpath(m.target) for m in fixed] + [EXCHANGE_TARGET]
    for index, target in enumerate(targets):
        if not target.startswith("/") or target == "/" or target in _SCRATCH:
            return False
        others = taken + targets[:index] + targets[index + 1 :]
        if any(_under(target, o) or _under(o, target) for o in others):
            return False
    return True


def exchange_target(mounts: Sequence[Mount], shared: Collection[Mount] = ()) -> str:
    """Where a warm container for *mounts* sees its exchange directory.

    When the writable mounts all lie in one directory (a run's report directories do), the
    exchange directory is mounted there and each session's directories are its subdirectories
    of the same names: no link is needed. Otherwise it is :data:`EXCHANGE_TARGET`.
    """
    fixed, writable = split(mounts, shared)
    targets = [posixpath.normpath(m.target) for m in writable]
    parents = {posixpath.dirname(t) for t in targets}
    if len(parents) != 1 or len({posixpath.basename(t) for t in targets}) != len(targets):
        return EXCHANGE_TARGET
    (parent,) = parents
    if parent == "/" or parent in _SCRATCH or any(c in parent for c in " \t\n*?[\\"):
        return EXCHANGE_TARGET
    for mount in fixed:
        target = posixpath.normpath(mount.target)
        if _under(parent, target) or _under(target, parent):
            return EXCHANGE_TARGET
    return parent


class Exchange:
    """The writable mounts of one session, served through its container's exchange directory.

    :param host_dir: the container's exchange directory on the host (dagpar made it; the
        container cannot replace it, being its mount point).
    :param number: the session's number in the container (its subdirectory ``s<number>``).
    :param mounts: the session's writable mounts.
    :param target: where the container sees the exchange directory.
    :param in_place: whether that is the mounts' own directory (:func:`exchange_target`): their
        subdirectories then have their names, and need no link; else each target is a link to
        a subdirectory ``s<number>/<i>``.
    """

    def __init__(
        self,
        host_dir: Path,
        number: int,
        mounts: Sequence[Mount],
        target: str = EXCHANGE_TARGET,
        in_place: bool = False,
    ) -> None:
        self.host_dir = host_dir
        self.mounts = tuple(mounts)
        self.target = target
        self.in_place = in_place
        #: Each mount's directory, relative to the exchange directory.
        self.subdirs = [
            posixpath.basename(m.target) if in_place else f"s{number}/{index}"
            for index, m in enumerate(self.mounts)
        ]
        #: The mounts whose host directory is a link to their subdirectory now, with it.
        self.attached: list[tuple[Mount, str, int]] = []

    def prepare(self) -> list[str]:
        """Fill the session's subdirectories; the link script's arguments (none in place).

        Call it while no process of an earlier slice runs in the container (after its reset).
        """
        args: list[str] = []
        for mount, sub in zip(self.mounts, self.subdirs, strict=True):
            _mkdirs(self.host_dir, posixpath.dirname(sub))
            os.mkdir(self.host_dir / sub)
            copy_tree(mount.source, [], self.host_dir, sub)
            if not self.in_place:
                args += [posixpath.normpath(mount.target), f"{self.target.rstrip('/')}/{sub}"]
        return args

    def attach(self) -> None:
        """Put in place of each mount's host directory a link to its subdirectory.

        Call it after :meth:`prepare`; :meth:`collect` undoes it. On failure, the directories
        attached so far are restored and the error raised.
        """
        try:
            for mount, sub in zip(self.mounts, self.subdirs, strict=True):
                source = Path(mount.source)
                aside = _sibling(source, "old")
                link = _sibling(source, "link")
                mode = stat.S_IMODE(os.stat(source).st_mode)
                os.symlink(self.host_dir / sub, link)
                try:
                    os.rename(source, aside)
                except OSError:
                    os.unlink(link)
                    raise
                os.rename(link, source)
                self.attached.append((mount, sub, mode))
                shutil.rmtree(aside, ignore_errors=True)
        except OSError:
            self.collect()
            raise

    def collect(self) -> None:
        """Put in place of each attached link a real directory holding a copy of what the
        session's subdirectory holds (empty when the slice replaced the subdirectory)."""
        while self.attached:
            mount, sub, mode = self.attached.pop()
            source = Path(mount.source)
            fresh = Path(tempfile.mkdtemp(prefix=f".{source.name}.dagpar-", dir=source.parent))
            os.chmod(fresh, mode)
            try:
                copy_tree(self.host_dir, sub.split("/"), fresh, "")
            except OSError:
                # The slice replaced its own directory: it gets nothing back.
                pass
            aside = _sibling(source, "link")
            os.rename(source, aside)
            os.rename(fresh, source)
            os.unlink(aside)

    def locate(self, session_path: str) -> tuple[list[str], str] | None:
        """Where the container path *session_path* lies in the exchange directory, or None."""
        path = posixpath.normpath(session_path)
        for mount, sub in zip(self.mounts, self.subdirs, strict=True):
            target = posixpath.normpath(mount.target)
            if _under(path, target):
                rest = path[len(target) :].strip("/")
                return [*sub.split("/"), *[p for p in rest.split("/") if p]], rest
        return None


def _sibling(path: Path, what: str) -> Path:
    """A name next to *path* that nothing else uses."""
    return path.with_name(f".{path.name}.dagpar-{what}-{os.getpid()}-{os.urandom(4).hex()}")


def copy_tree(
    src_root: Path,
    parts: Sequence[str],
    dst_root: Path,
    dst_name: str,
    skip: Iterable[str] = (),
) -> None:
    """Copy the directory *parts* below *src_root* into *dst_name* below *dst_root* (merged).

    *src_root* is trusted; every name below it is opened without following links, and only
    regular files and directories are copied: a link, FIFO, device or socket is left out.

    :raises OSError: when the directory *parts* itself cannot be opened as one.
    """
    fd = os.open(src_root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        for part in parts:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        if dst_name:
            _mkdirs(dst_root, dst_name)
        _copy_dir(fd, dst_root, dst_name, set(skip), 0)
    finally:
        os.close(fd)


def _copy_dir(fd: int, dst_root: Path, dst_name: str, skip: set[str], depth: int) -> None:
    for name in sorted(os.listdir(fd)):
        rel = f"{dst_name}/{name}" if dst_name else name
        if rel in skip:
            continue
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode) and depth < MAX_DEPTH:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            elif stat.S_ISREG(mode):
                child = os.open(name, _FILE_FLAGS, dir_fd=fd)
            else:
                continue
        except OSError as exc:
            # Gone, or swapped for a link or a FIFO meanwhile: not copied.
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT, errno.ENXIO):
                continue
            raise
        try:
            if stat.S_ISDIR(mode):
                _mkdirs(dst_root, rel)
                _copy_dir(child, dst_root, rel, skip, depth + 1)
            else:
                _copy_file(child, dst_root, rel)
        finally:
            os.close(child)


def _mkdirs(root: Path, name: str) -> None:
    """Make the directory *name* below *root* (and those on its way) without following links."""
    fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        for part in filter(None, name.split("/")):
            try:
                os.mkdir(part, 0o777, dir_fd=fd)
            except FileExistsError:
                pass
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def _copy_file(src: int, dst_root: Path, rel: str) -> None:
    if not stat.S_ISREG(os.fstat(src).st_mode):
        return
    os.set_blocking(src, True)
    with untrusted.create_binary(dst_root, rel) as out:
        while chunk := os.read(src, 1 << 20):
            view = memoryview(chunk)
            while view:
                view = view[out.write(view) or 0 :]


def link(api: Any, container_id: str, exchange: Exchange) -> list[str]:
    """Prepare *exchange* and link its targets in the container; the paths the links created.

    :raises ExecutionError: when a target cannot be linked (it exists in the image, or lies in
        a read-only directory).
    """
    args = exchange.prepare()
    if not args:
        exchange.attach()
        return []
    exec_id = api.exec_create(container_id, ["sh", "-c", LINK_SCRIPT, "sh", *args])["Id"]
    output = api.exec_start(exec_id, demux=True)
    code = api.exec_inspect(exec_id).get("ExitCode")
    out, err = output if isinstance(output, tuple) else (output, b"")
    if code != 0:
        raise ExecutionError(f"cannot link the writable directories: {(err or b'').decode()}")
    targets = args[0::2]
    made = (out or b"").decode().split()
    if len(made) != len(targets) or any(
        p == "/" or not any(_under(t, p) for t in targets) for p in made
    ):
        raise ExecutionError(f"unexpected output of the link script: {made!r}")
    exchange.attach()
    return made
