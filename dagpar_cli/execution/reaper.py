"""What a local command left behind in other sessions: found, killed and reaped.

A command's process group does not hold everything it started: a test may start a process in a
session of its own (``start_new_session=True``, ``setsid``) or daemonize, and killing the group
misses it. So every command gets a token of its own in the variable :data:`TOKEN_VARIABLE`,
which its descendants inherit, and dagpar makes itself a *child subreaper* (Linux
``PR_SET_CHILD_SUBREAPER``): an orphan is re-parented to dagpar rather than to init, so it stays
among dagpar's descendants. When the command ends (or times out, or the run is interrupted),
:func:`kill_escaped` kills every descendant of dagpar that carries the command's token, and
reaps those re-parented to dagpar. Processes of other commands carry other tokens, and the
machine's other processes are not dagpar's descendants: neither is touched.

A process that both leaves the session and clears its environment cannot be told apart and
escapes. One that ends by itself while its command still runs stays a zombie of dagpar's until
dagpar exits: a zombie's environment cannot be read, and reaping a child that is not known to be
the command's could take another part of dagpar's exit status. Elsewhere than Linux (no
``/proc``, no subreaper) this module does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from pathlib import Path

__all__ = ["TOKEN_VARIABLE", "SubreaperScope", "kill_escaped"]

#: The environment variable carrying a command's token to everything it starts.
TOKEN_VARIABLE = "DAGPAR_COMMAND_TOKEN"

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_PROC = Path("/proc")
#: Rounds of find-and-kill: a process may fork between a scan and its kill.
_ROUNDS = 20


def _prctl(option: int, arg: int | ctypes.c_int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        arg2 = ctypes.byref(arg) if isinstance(arg, ctypes.c_int) else ctypes.c_ulong(arg)
        return bool(libc.prctl(option, arg2, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


class SubreaperScope:
    """Makes this process a child subreaper while at least one user holds it.

    Counted, so that executors opened one after another (or at once, in tests) share it; the
    setting is restored when the last one releases it, unless it was on before.
    """

    _lock = threading.Lock()
    _users = 0
    _set_by_us = False
    _active = False

    @classmethod
    def acquire(cls) -> bool:
        """Turn the subreaper on (if it is not); whether this process is one now."""
        if not sys.platform.startswith("linux"):
            return False
        with cls._lock:
            if cls._users == 0:
                current = ctypes.c_int(0)
                already = _prctl(_PR_GET_CHILD_SUBREAPER, current) and current.value != 0
                cls._set_by_us = not already and _prctl(_PR_SET_CHILD_SUBREAPER, 1)
                cls._active = already or cls._set_by_us
            cls._users += 1
            return cls._active

    @classmethod
    def release(cls) -> None:
        """Give the subreaper back; the last user turns it off if :meth:`acquire` turned it on."""
        if not sys.platform.startswith("linux"):
            return
        with cls._lock:
            if cls._users == 0:
                return
            cls._users -= 1
            if cls._users == 0 and cls._set_by_us:
                _prctl(_PR_SET_CHILD_SUBREAPER, 0)
                cls._set_by_us = cls._active = False

    @classmethod
    def active(cls) -> bool:
        """Whether orphans of this process's descendants are re-parented to it."""
        return cls._active


def _stat(pid: int | str) -> tuple[str, int, int] | None:
    """(state, parent pid, start time in clock ticks since boot) of *pid*, or None if gone."""
    try:
        stat = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) < 20:
        return None
    return fields[0].decode(), int(fields[1]), int(fields[19])


def _parents() -> dict[int, int]:
    """pid -> parent pid of every live (not zombie) process visible in ``/proc``."""
    parents: dict[int, int] = {}
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return parents
    for name in entries:
        if name.isdigit():
            stat = _stat(name)
            if stat is not None and stat[0] not in ("Z", "X"):
                parents[int(name)] = stat[1]
    return parents


def _descendants(root: int, parents: dict[int, int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _carries(pid: int, entry: bytes) -> bool:
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return entry in environ.split(b"\0")


def _find(token: str, exclude: int | None) -> list[int]:
    entry = f"{TOKEN_VARIABLE}={token}".encode()
    parents = _parents()
    me = os.getpid()
    # As a subreaper, every process a command started is among our descendants: look only
    # there. Without one, orphans belong to init, and the token alone must tell.
    candidates = _descendants(me, parents) if SubreaperScope.active() else list(parents)
    return [pid for pid in candidates if pid not in (me, exclude) and _carries(pid, entry)]


def kill_escaped(token: str, *, exclude: int | None = None, reap_within: float = 5.0) -> int:
    """Kill every process carrying *token* (except *exclude*), and reap those now our children.

    :param exclude: the command's own process, which its :class:`subprocess.Popen` reaps.
    :returns: how many processes were killed.
    """
    if not _PROC.is_dir():
        return 0
    #: pid -> start time, to know a pid again (and not a new process that reuses it).
    killed: dict[int, int] = {}
    for _ in range(_ROUNDS):
        found = _find(token, exclude)
        if not found:
            break
        for pid in found:
            stat = _stat(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
            if stat is not None:
                killed[pid] = stat[2]
    _reap(killed, reap_within)
    return len(killed)


def _reap(killed: dict[int, int], within: float) -> None:
    """Collect the exit status of the *killed* processes that are (or become) our children.

    A process is waited for only while it is a zombie child of ours with the start time it had
    when it was killed, so that no other child's status is taken. The token marks this command's
    processes alone, and the command's own process is not among them.
    """
    me = os.getpid()
    deadline = time.monotonic() + within
    pending = dict(killed)
    while pending:
        for pid, start in list(pending.items()):
            stat = _stat(pid)
            if stat is None or stat[2] != start:
                del pending[pid]  # reaped (by us or its own parent); the pid may be reused
                continue
            state, parent, _start = stat
            if state in ("Z", "X") and parent == me:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                del pending[pid]
            elif parent != me and parent not in killed:
                del pending[pid]  # another process's child: it is that process's to reap
        # A killed process whose parent dies too is re-parented to us a moment later.
        if not pending or time.monotonic() > deadline:
            return
        time.sleep(0.01)
