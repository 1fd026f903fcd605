"""SIGINT and SIGTERM: one interrupt ends the run cleanly, a second one ends it now.

The ``dagpar`` command installs the handlers first thing (:func:`handling` in
:func:`dagpar_cli.cli.main`), before plugins load or toolchains import, so that an interrupt at
any moment gives exit 130 and one line. The pipeline enters :func:`handling` again around the
checks, with what a second interrupt must stop (the executor's processes and containers); used
as a library, outside the command, that is where the handlers get installed.

The first interrupt raises :class:`SignalInterrupt` in the main thread. It is a
``KeyboardInterrupt``, so everything that stops on Ctrl-C stops on it; code that turns a
toolchain's own ``KeyboardInterrupt`` into an error tells the two apart by this class.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["INTERRUPTED_EXIT", "SignalInterrupt", "handling", "received"]

#: The exit code of an interrupted run (``ExitCode.INTERRUPTED``; repeated here so that this
#: module imports nothing of dagpar and can be installed before the rest loads).
INTERRUPTED_EXIT = 130


class SignalInterrupt(KeyboardInterrupt):
    """SIGINT or SIGTERM reached dagpar: raised by dagpar's handler, in the main thread."""


class _State:
    """The installed handlers: how many interrupts came, and what a second one stops."""

    def __init__(self) -> None:
        self.depth = 0
        self.count = 0
        self.on_force: list[Callable[[], None]] = []
        self.saved: list[tuple[int, Any]] = []


_state = _State()


def _handler(signum: int, frame: FrameType | None) -> None:
    _state.count += 1
    if _state.count == 1:
        raise SignalInterrupt
    # A second interrupt: the user does not want to wait for clean-up.
    for stop in list(_state.on_force):
        try:
            stop()
        except Exception:  # exiting anyway: nothing better to do with it
            pass
    os._exit(INTERRUPTED_EXIT)


def received() -> bool:
    """Whether SIGINT or SIGTERM came since the outermost :func:`handling` block began."""
    return _state.count > 0


@contextmanager
def handling(on_force: Callable[[], None] | None = None) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`SignalInterrupt` (see the module).

    Nested blocks share the handlers the outermost one installed; the outermost restores the
    previous ones when it ends. Outside the main thread (where handlers cannot be set) this does
    nothing.

    :param on_force: called on a second interrupt, before the process exits with 130.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _state.depth == 0:
        _state.count = 0
        _state.saved = [
            (sig, signal.signal(sig, _handler)) for sig in (signal.SIGINT, signal.SIGTERM)
        ]
    _state.depth += 1
    if on_force is not None:
        _state.on_force.append(on_force)
    try:
        yield
    finally:
        if on_force is not None:
            _state.on_force.remove(on_force)
        _state.depth -= 1
        if _state.depth == 0:
            for sig, old in _state.saved:
                signal.signal(sig, old)
            _state.saved = []
