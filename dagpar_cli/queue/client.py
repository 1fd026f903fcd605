"""The Redis connection of queue mode, and what its failures mean to dagpar.

The client is the ``redis`` package, an optional extra (``pip install 'dagpar[queue]'``). Any
failure to reach or use the server is a :class:`QueueError` (exit 4, one line naming the URL
without its password); a node never reports a test it did not see finish.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dagpar_cli.errors import DagparError, ExitCode, UsageError
from dagpar_cli.queue.options import redacted

if TYPE_CHECKING:
    import redis

__all__ = ["QueueError", "connect", "failures"]


class QueueError(DagparError):
    """The queue's Redis failed (unreachable, stopped mid-build, refused the password)."""

    exit_code = ExitCode.EXECUTION_FAILED


def connect(url: str, *, timeout: float = 10.0) -> redis.Redis:
    """A client for *url* (``redis://``, ``rediss://``, ``unix://``), checked with ``PING``.

    :raises UsageError: the ``redis`` package is not installed.
    :raises QueueError: the server cannot be reached or refuses the credentials.
    """
    try:
        import redis
    except ImportError:
        raise UsageError("--queue needs the redis package: pip install 'dagpar[queue]'") from None
    try:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
        )
    except ValueError as exc:
        raise UsageError(f"--queue {redacted(url)!r}: {exc}") from None
    with failures(url, "cannot reach the queue"):
        client.ping()
    return client


@contextlib.contextmanager
def failures(url: str, doing: str) -> Iterator[None]:
    """Turn the client's errors inside the block into one :class:`QueueError` line."""
    import redis

    try:
        yield
    except redis.exceptions.RedisError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise QueueError(f"queue {redacted(url)}: {doing}: {reason}") from None
    except OSError as exc:
        raise QueueError(f"queue {redacted(url)}: {doing}: {exc}") from None


def text(value: Any) -> str:
    """A reply as text (the client decodes replies; a missing one is "")."""
    return "" if value is None else str(value)
