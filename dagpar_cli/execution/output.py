"""A command's output as the executors keep it: bounded in memory, whole in its file.

A test that prints hundreds of megabytes must not take dagpar's memory with it. A request may
ask (:attr:`~dagpar_cli.execution.api.ExecRequest.keep_output`) that only the first and the
last :data:`KEEP_OUTPUT` bytes of its standard output and of its standard error stay in
memory: :class:`BoundedOutput` keeps them and counts what it dropped between them, which the
outcome reports (:attr:`~dagpar_cli.execution.api.Outcome.stdout_cut`). The whole standard
output goes, as it arrives, to the request's
:attr:`~dagpar_cli.execution.api.ExecRequest.stdout_file` when it has one
(:func:`open_output`): a report directory a container can write to, so the file is made as
:mod:`dagpar_cli.untrusted` makes files there, and it is written from the host side.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

from dagpar_cli import untrusted
from dagpar_cli.errors import ExecutionError
from dagpar_cli.execution.api import OutputFile

__all__ = [
    "CHUNK",
    "KEEP_OUTPUT",
    "BoundedOutput",
    "OutputSink",
    "cut_marker",
    "drain",
    "open_output",
]

#: Bytes kept in memory of the start of a long output, and as many of its end, per stream, for
#: requests that ask for a bound (what ``run_tests`` asks for test runs: 1 MiB each side).
KEEP_OUTPUT = 1 << 20
#: Bytes read from a command's pipe at a time.
CHUNK = 1 << 16


def cut_marker(cut: int) -> str:
    """The line that stands where *cut* bytes of the middle of an output were dropped."""
    return f"\n[... {cut} bytes of output cut ...]\n"


class BoundedOutput:
    """The head and tail of one output stream, at most *keep* bytes each (None: everything)."""

    def __init__(self, keep: int | None) -> None:
        self.keep = keep
        self._head = bytearray()
        self._tail = bytearray()
        #: Bytes seen in all.
        self.total = 0

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream."""
        self.total += len(data)
        keep = self.keep
        if keep is None:
            self._head += data
            return
        room = keep - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail += data
            # Trimmed in batches, so that each byte is moved a bounded number of times.
            if len(self._tail) > 2 * keep:
                del self._tail[: len(self._tail) - keep]

    @property
    def cut(self) -> int:
        """Bytes dropped from the middle."""
        kept = len(self._head) + min(len(self._tail), self.keep or len(self._tail))
        return self.total - kept

    def text(self) -> str:
        """The kept bytes as text (UTF-8 with replacement), with :func:`cut_marker` in the gap."""
        cut = self.cut
        tail = bytes(self._tail[-self.keep :] if self.keep and cut else self._tail)
        if not cut:
            return (bytes(self._head) + tail).decode("utf-8", "replace")
        return (
            bytes(self._head).decode("utf-8", "replace")
            + cut_marker(cut)
            + tail.decode("utf-8", "replace")
        )


class OutputSink:
    """Writes a command's output to its file as it arrives; a write that fails (disk full)
    stops the copy without stopping the command, and is remembered in :attr:`error`."""

    def __init__(self, stream: BinaryIO, where: str) -> None:
        self._stream = stream
        self.where = where
        #: Why the file is incomplete, or "".
        self.error = ""

    def write(self, data: bytes) -> None:
        """Append *data* to the file (unbuffered: a reader sees it at once)."""
        if self.error:
            return
        try:
            view = memoryview(data)
            while view:
                written = self._stream.write(view)
                view = view[written or len(view) :]
        except OSError as exc:
            self.error = f"cannot write {self.where}: {exc}"

    def close(self) -> None:
        """Close the file."""
        try:
            self._stream.close()
        except OSError as exc:
            self.error = self.error or f"cannot write {self.where}: {exc}"


def open_output(file: OutputFile | None) -> OutputSink | None:
    """A fresh, empty *file*, made without following what a container planted there.

    :raises ExecutionError: when it cannot be made (a directory on the way is a link, a
        non-empty directory has the name), naming it.
    """
    if file is None:
        return None
    where = str(file.root / file.name)
    try:
        return OutputSink(untrusted.create_binary(file.root, file.name), where)
    except OSError as exc:
        raise ExecutionError(f"cannot write {where}: {exc}") from None


def drain(
    chunks: Iterable[tuple[bytes | None, bytes | None]],
    out: BoundedOutput,
    err: BoundedOutput,
    sink: OutputSink | None,
) -> None:
    """Take a demultiplexed ``(stdout, stderr)`` chunk stream (a Docker exec's) to its end:
    standard output into *out* and *sink*, standard error into *err*; then close the stream
    (its connection) when it can be closed."""
    try:
        for stdout, stderr in chunks:
            if stdout:
                out.feed(stdout)
                if sink is not None:
                    sink.write(stdout)
            if stderr:
                err.feed(stderr)
    finally:
        # docker's stream: closing its socket alone leaves the response's file object
        # holding it; closing the response releases both.
        for owner in (getattr(chunks, "_response", None), chunks):
            close = getattr(owner, "close", None)
            if callable(close):
                close()
