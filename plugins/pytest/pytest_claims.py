"""The files the selection plugin keeps open while tests run: the claim file, through which
dagpar takes unstarted tests, and the files it appends events and progress to.

The selection plugin (:mod:`dagpar_plugins.pytest.pytest_select`, whose *Handing over* tells the
protocol) imports this module, which dagpar drops next to it in the report directory as
``dagpar_pytest_claims.py``. Like the plugin, it must run on whatever pytest (>= 6) and Python
(>= 3.7) the project uses, and imports nothing but the standard library.

The claim file holds one ASCII line ``<started> <limit>`` (limit -1: none) that both sides
change only under ``flock``. Each test is settled once: read the line, and either count the test
as started or, when it lies at or beyond the limit, leave it to dagpar. A slice of many tiny
tests settles tens of thousands of them, so the file stays open across tests, and the line is
truncated only when it gets shorter.

Claiming ahead
    While tests are quick, one look at the file counts as started the test being settled and
    as many of the next ones as the tests since the last look say fit in
    :data:`AHEAD_SECONDS` (at most twice as many as last time, never beyond the limit): the
    lock, the read and the write are then paid once per batch rather than per test, and a
    batch ends with its group (the selection plugin's: the file or class), since the next
    file's tests may be slow ones. A test
    counted as started is run here (or not at all, when pytest stops early), never taken, so
    a test is still started here or taken, never both; dagpar merely cannot take the few
    milliseconds of tests a batch holds. A slow test makes the next batch one test again.

What keeps the kept descriptor as safe as opening the file per test:

- a test may close descriptors it does not own (``os.closerange``) and open files that reuse
  their numbers: before each use, ``fstat`` checks that the descriptor still is the claim file
  (device and inode), and when it is not, the file is opened afresh and the old number left
  alone (it is someone else's now);
- ``flock`` does not keep apart the users of one open file description: a process forked from
  pytest (a plugin running a test in a child with ``os.fork``) opens its own, and threads take
  turns.

The event and progress files (:class:`Appender`, kept open as before) are checked the same way
whenever the claim file's descriptor was found closed or reused (the test that did it most
likely closed every descriptor), and a write that finds its descriptor closed opens the file
again and writes once more. A test settles as the one before it tears down, after that test's
code has run: the check comes before anything is written of its end or of the next start.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no hand-over
    fcntl = None  # type: ignore[assignment]

__all__ = ["Appender", "Claims"]

#: The seconds of tests (by the mean of those since the last look) one look may count as
#: started beyond the one it settles (see *Claiming ahead*).
AHEAD_SECONDS = 0.004
#: The most tests one look counts as started.
AHEAD_MOST = 256

#: The most bytes a claim line can take (two 64-bit integers); more means the file is damaged.
_LONGEST = 64

#: How many times this process is a fork's child: a descriptor kept by a parent is not reused.
#: (Cheaper than asking the system for the process id, a system call, for every test.)
_forks = [0]
if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class Claims:
    """The runner's side of handing tests it has not started to another slice.

    :param path: the claim file, created here holding ``0 -1``.
    :param items: the items in the order pytest will run them.
    :param reopened: called when the kept descriptor was found closed or reused.
    :param ahead: the seconds of tests one look may count as started (*Claiming ahead*); 0
        settles every test on its own.
    :param clock: the monotonic clock that times the tests between looks.
    :param group: the group of an item (its file or class, say): one look never counts as
        started a test of another group than the one it settles, whose tests may be slower.
    """

    def __init__(
        self,
        path: str,
        items: list[Any],
        reopened: Callable[[], None] = lambda: None,
        ahead: float = AHEAD_SECONDS,
        clock: Callable[[], float] = time.perf_counter,
        group: Callable[[Any], object] | None = None,
    ) -> None:
        self.items = list(items)  # keeps every item alive, so that its id() stays its own
        self.index = {id(item): i for i, item in enumerate(self.items)}
        #: A limit seen earlier: the limit only ever drops, so items at or beyond it are taken.
        self.known_limit = -1
        #: How many items were taken, for the terminal summary.
        self.taken = 0
        #: Whether the claim file became unusable: the tests not yet taken then all run here.
        self.broken = False
        #: How many tests this side counted as started: the count only grows, so a test below it
        #: (settled as the one before it tore down) starts without another look at the file.
        self.started = 0
        self.path = path
        self.reopened = reopened
        self.ahead = ahead
        self.clock = clock
        #: The clock and the index settled at the last look, and how many it counted.
        self._last_look: tuple[float, int] | None = None
        self._batch = 1
        #: Index -> the index of the first later item of another group (or the count).
        self._group_end: list[int] | None = None
        if group is not None:
            keys = [group(item) for item in self.items]
            ends, end = [0] * len(keys), len(keys)
            for i in range(len(keys) - 1, -1, -1):
                if i + 1 < len(keys) and keys[i + 1] != keys[i]:
                    end = i + 1
                ends[i] = end
            self._group_end = ends
        self._lock = threading.Lock()
        #: Whether the kept descriptor was checked since :meth:`settle_next` began.
        self._checked = False
        # Created before the order exists: dagpar opens it only once it has read the order.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            # Writable whoever runs pytest: in a container that is often not the host's user.
            os.fchmod(fd, 0o666)
            os.pwrite(fd, b"0 -1\n", 0)
            status = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        #: The kept descriptor, the fork it was opened in and the file's (device, inode).
        self._fd = fd
        self._fork = _forks[0]
        self._identity = (status.st_dev, status.st_ino)

    def start(self, item: Any) -> bool:
        """Count *item* as started; False when dagpar took it, so pytest must not run it."""
        if self._settle(item):
            return True
        self.taken += 1
        return False

    def settle_next(self, nextitem: Any | None) -> bool:
        """As a test tears down, count the next one (if any) as started; False when it was
        taken. Either way the kept descriptors are checked: the test's own code has run."""
        self._checked = False
        settled = nextitem is None or self._settle(nextitem)
        if not self._checked:
            self.verify()
        return settled

    def _settle(self, item: Any) -> bool:
        """Whether *item* starts (counting it as started if it was not yet), or was taken."""
        index = self.index.get(id(item))
        if index is None:
            return True  # not in the order dagpar saw: it cannot have been taken
        if index < self.started:
            return True  # settled as the test before it tore down
        if 0 <= self.known_limit <= index:
            return False  # the limit only ever drops: no need to look again
        if self.broken:
            return True
        with self._lock:
            try:
                fd = self._descriptor()
            except OSError:
                self.broken = True  # removed under the run: dagpar cannot take tests either
                return True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    line = os.pread(fd, _LONGEST, 0)
                    started, limit = _parse(line)
                    if limit >= 0:
                        self.known_limit = limit
                    if index < started:
                        return True  # settled as the test before it tore down
                    if 0 <= limit <= index:
                        return False
                    end = index + self._ahead(index)
                    if limit >= 0:
                        end = min(end, limit)
                    # max: a plugin that runs items out of order must not lower the count.
                    _write(fd, max(started, end), limit, len(line))
                    self.started = max(self.started, end)
                    return True
                finally:
                    self._unlock(fd)
            except (OSError, ValueError):
                self.broken = True  # dagpar takes nothing from a claim it cannot read either
                return True

    def _ahead(self, index: int) -> int:
        """How many tests from *index* on this look counts as started (*Claiming ahead*)."""
        now = self.clock()
        last, self._last_look = self._last_look, (now, index)
        batch = 1
        if last is not None and index > last[1] and self.ahead > 0:
            mean = (now - last[0]) / (index - last[1])
            fit = int(self.ahead / mean) if mean > 0 else AHEAD_MOST
            batch = max(1, min(fit, 2 * self._batch, AHEAD_MOST))
        self._batch = batch
        end = len(self.items) if self._group_end is None else self._group_end[index]
        return min(batch, end - index)

    def finish(self) -> None:
        """Let nothing more be taken: the run has ended, maybe early."""
        if self.broken:
            self.reopened()  # nothing else checks the other files
            return
        with self._lock:
            try:
                fd = self._descriptor()
            except OSError:
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    line = os.pread(fd, _LONGEST, 0)
                    started, _ = _parse(line)
                    _write(fd, started, started, len(line))
                finally:
                    self._unlock(fd)
            except (OSError, ValueError):
                pass  # dagpar takes nothing from a claim it cannot read

    def close(self) -> None:
        """Close the kept descriptor, unless it no longer is the claim file's."""
        with self._lock:
            if self._fd >= 0 and self._fork == _forks[0] and _is(self._fd, self._identity):
                os.close(self._fd)
            self._fd = -1

    def verify(self) -> None:
        """Check the kept descriptor (see the module doc), when no settling checked it."""
        if self.broken:
            self.reopened()  # nothing else checks the other files
            return
        with self._lock:
            try:
                self._descriptor()
            except OSError:
                pass  # the next settle finds it broken

    def _descriptor(self) -> int:
        """The claim file open for reading and writing: the kept descriptor while it still is
        the claim file and this process's, else a fresh one (OSError when it cannot be opened)."""
        self._checked = True
        if self._fork == _forks[0] and self._fd >= 0 and _is(self._fd, self._identity):
            return self._fd
        # Closed or reused under us, or inherited by a forked process: the old number is left
        # alone, and the file opened as dagpar opens it, by its path.
        self.reopened()
        fd = os.open(self.path, os.O_RDWR)
        try:
            status = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        self._fd, self._fork = fd, _forks[0]
        self._identity = (status.st_dev, status.st_ino)
        return fd

    def _unlock(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:  # pragma: no cover - an open descriptor always unlocks
            # Closing releases the lock too; the next settle opens the file again.
            os.close(fd)
            self._fd = -1


class Appender:
    """A file appended to in single writes as tests run, kept open across them.

    :param path: the file, created when missing (OSError when it cannot be opened).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1
        self._fork = -1
        self._identity = (-1, -1)
        self._open()

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            status = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        self._fd, self._fork = fd, _forks[0]
        self._identity = (status.st_dev, status.st_ino)

    def check(self) -> None:
        """Open the file afresh when the kept descriptor no longer is its own (module doc)."""
        if self._fd >= 0 and self._fork == _forks[0] and _is(self._fd, self._identity):
            return
        try:
            self._open()
        except OSError:
            self._fd = -1  # gone: nothing more is written

    def write(self, data: bytes) -> int:
        """Append *data* in one write; how many bytes of it were written."""
        if self._fd < 0:
            return 0
        try:
            return os.write(self._fd, data)
        except OSError as error:
            if error.errno != errno.EBADF:
                return 0  # a full disk costs the stream, never the run
        self.check()  # closed under us: open it again, once
        try:
            return os.write(self._fd, data) if self._fd >= 0 else 0
        except OSError:
            return 0

    def close(self) -> None:
        """Close the kept descriptor, unless it no longer is the file's."""
        if self._fd >= 0 and self._fork == _forks[0] and _is(self._fd, self._identity):
            os.close(self._fd)
        self._fd = -1


def _is(fd: int, identity: tuple[int, int]) -> bool:
    """Whether *fd* is open on the file whose (device, inode) is *identity*."""
    try:
        status = os.fstat(fd)
    except OSError:
        return False
    return (status.st_dev, status.st_ino) == identity


def _parse(line: bytes) -> tuple[int, int]:
    started, limit = line.split()
    return int(started), int(limit)


def _write(fd: int, started: int, limit: int, old: int) -> None:
    """Write the claim line over one *old* bytes long, truncating only what it leaves over."""
    data = b"%d %d\n" % (started, limit)
    os.pwrite(fd, data, 0)
    if len(data) < old:
        os.ftruncate(fd, len(data))
