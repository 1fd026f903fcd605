"""dagpar's side of taking tests a running pytest slice has not started.

The selection plugin (:mod:`dagpar_plugins.pytest.pytest_select`) publishes the run order and
keeps a small claim file, one ASCII line ``<started> <limit>``, that both sides change only under
``flock``: the plugin counts each test as started before running it, unless the test sits at or
beyond the limit, and :func:`hand_over` takes the tail of the unstarted tests by lowering the
limit. A test is therefore run by pytest or taken, never both and never neither. The progress
file's size and time of change tell which test runs and since when.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from dagpar_cli import TailChooser, TestCase, untrusted

from .files import CLAIM_FILE, HANDOVER_KEY, ORDER_FILE, PROGRESS_FILE, RUN_INFO_FILE

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no hand-over
    fcntl = None

__all__ = ["can_lock", "distributes", "hand_over"]

#: pytest's short options that take a value (``-k expr``, ``-pno:x``): in a cluster such as
#: ``-vkn``, what follows one is its value, not more options.
_SHORT_WITH_VALUE = frozenset("ckmoprW")

# The parsed order per report directory, with the identity of the file it came from: pytest
# writes it once, but a directory could be reused by another run. Only the most recent are kept:
# the slices that are still running, for any plausible number of workers.
_orders: dict[Path, tuple[tuple[int, int, int], list[TestCase]]] = {}
_orders_lock = threading.Lock()
_ORDERS_KEPT = 256


def can_lock() -> bool:
    """Whether this system has the ``flock`` both sides agree under (POSIX)."""
    return fcntl is not None


def distributes(args: Sequence[str]) -> bool:
    """Whether pytest arguments turn on pytest-xdist distribution (erring towards yes).

    ``-n N``/``--numprocesses`` (not 0), ``--dist`` other than ``no``, ``-d``, ``--tx`` and
    ``-f``/``--looponfail`` do, unless ``-p no:xdist`` blocks xdist. Arguments that come from
    elsewhere (``PYTEST_ADDOPTS``, ``addopts``) are not seen here: the plugin checks pytest's
    own options as the run starts, too.
    """
    processes: str | None = None
    distribution = False
    blocked = False
    values = iter(args)
    for arg in values:
        if arg == "--":
            break
        if arg.startswith("--"):
            name, equals, value = arg.partition("=")
            if name in ("--numprocesses", "--dist", "--tx") and not equals:
                value = next(values, "")
            if name == "--numprocesses":
                processes = value
            elif name == "--dist":
                distribution = value != "no"
            elif name in ("--tx", "--looponfail"):
                distribution = True
            continue
        if not arg.startswith("-") or len(arg) < 2:
            continue
        for position, letter in enumerate(arg[1:], start=1):
            if letter in ("d", "f"):
                distribution = True
                continue
            if letter == "n" or letter in _SHORT_WITH_VALUE:
                value = arg[position + 1 :].removeprefix("=") or next(values, "")
                if letter == "n":
                    processes = value
                elif letter == "p" and value == "no:xdist":
                    blocked = True
                break
    if blocked:
        return False
    if processes is not None and processes.strip() == "0":
        return False  # -n 0 turns distribution off, whatever --dist says
    return bool(processes) or distribution


def _read_order(report_dir: Path) -> list[TestCase] | None:
    """The run order pytest published, [] before it has; None when it is unreadable."""
    try:
        with untrusted.open_binary(report_dir, ORDER_FILE) as stream:
            status = os.fstat(stream.fileno())
            identity = (status.st_ino, status.st_mtime_ns, status.st_size)
            with _orders_lock:
                cached = _orders.get(report_dir)
            if cached is not None and cached[0] == identity:
                return cached[1]
            data = json.loads(stream.read().decode("utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, list) or not all(
        isinstance(entry, list) and len(entry) == 2 and all(isinstance(part, str) for part in entry)
        for entry in data
    ):
        return None
    # The plugin names tests exactly as its JUnit properties do: relative to the invocation
    # directory (the source directory), POSIX style, so they match the listing as they are.
    order = [TestCase(path, name) for path, name in data]
    with _orders_lock:
        _orders.pop(report_dir, None)
        _orders[report_dir] = (identity, order)
        while len(_orders) > _ORDERS_KEPT:
            del _orders[next(iter(_orders))]
    return order


def _read_claim(fd: int) -> tuple[int, int] | None:
    parts = os.pread(fd, 64, 0).split()
    if len(parts) != 2:
        return None
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        return None


def _running(
    report_dir: Path, order: Sequence[TestCase], started: int
) -> tuple[TestCase, float] | None:
    """The test pytest is running and the seconds since it started; None between tests.

    The plugin appends to the progress file as each test finishes, and the next one starts right
    after: while it holds fewer bytes than the tests started, the test after the finished ones
    runs, since the file last changed (since the order was written, for the first test). (The
    plugin may count a few quick tests as started ahead of running them: see *Claiming ahead*
    in :mod:`dagpar_plugins.pytest.pytest_claims`.)
    """
    if not 1 <= started <= len(order):
        return None
    try:
        progress = untrusted.lstat(report_dir, PROGRESS_FILE)
        done = progress.st_size
        if done >= started:
            return None
        # The empty progress file was made before collection; the order, once it settled.
        since = progress.st_mtime if done else untrusted.lstat(report_dir, ORDER_FILE).st_mtime
    except OSError:
        return None
    return order[done], max(time.time() - since, 0.0)


def hand_over(report_dir: Path, choose: TailChooser) -> list[TestCase] | None:
    """Take the tail that ``choose`` asks for from the tests pytest has not started.

    :param report_dir: the running slice's report directory.
    :param choose: called once, under the lock, with the unstarted tests in run order, how
        many tests pytest has started and the test it is running (with its seconds so far);
        returns how many to take from the end.
    :returns: the tests taken, source-relative and in run order; ``[]`` when ``choose`` took
        none, or was not called because pytest has not yet published its order (ask again);
        None when this run cannot hand tests over.
    """
    if fcntl is None:
        return None
    try:
        info = json.loads(untrusted.read_text(report_dir, RUN_INFO_FILE))
    except FileNotFoundError:
        return []  # pytest has not started yet
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(info, dict) or info.get(HANDOVER_KEY) is not True:
        return None
    order = _read_order(report_dir)
    if not order:
        # [] while pytest collects; an order that is [] for good ends with the run anyway.
        return order
    try:
        # The claim is written back: never through a link the container planted.
        fd = untrusted.open_rdwr(report_dir, CLAIM_FILE)
    except FileNotFoundError:
        return []
    except OSError:
        return None  # written by another user without leave to write it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        claim = _read_claim(fd)
        if claim is None:
            return None
        started = min(max(claim[0], 0), len(order))
        end = claim[1] if 0 <= claim[1] <= len(order) else len(order)
        pending = order[started:end]
        running = _running(report_dir, order, started)
        count = min(max(int(choose(pending, started, running)), 0), len(pending))
        if count == 0:
            return []
        data = f"{claim[0]} {end - count}\n".encode("ascii")
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        return pending[len(pending) - count :]
    finally:
        os.close(fd)  # releases the lock
