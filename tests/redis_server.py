"""A real ``redis-server`` for queue-mode tests: one per test, on a free loopback port.

Nothing is persisted (``--save '' --appendonly no``) and the server runs in the test's own
directory, so tests never share state and leave nothing behind.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["RedisServer", "redis_server"]


class RedisServer:
    """One ``redis-server`` process, started in *directory* on a free loopback port.

    :param password: a ``requirepass``, for the tests of authenticated URLs.
    """

    def __init__(self, directory: Path, *, password: str | None = None) -> None:
        self.directory = directory
        self.password = password
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:PORT/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers ``PING`` (a few tries: a port picked
        free can be taken by someone else before the server binds it)."""
        binary = shutil.which("redis-server")
        assert binary is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            self.port = _free_port()
            argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
            argv += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
            if self.password:
                argv += ["--requirepass", self.password]
            log = (self.directory / "redis.log").open("ab")
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"redis-server did not start: see {self.directory / 'redis.log'}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            if self.ping():
                return True
            time.sleep(0.02)
        return False

    def ping(self) -> bool:
        """Whether the server answers (without the password: any reply counts)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return bool(sock.recv(64))
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (the test of a Redis that goes away mid-build calls it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh ``redis-server`` for this test; skips without one (fails in CI)."""
    # Imported here: conftest imports this module before pytest can rewrite the kit's asserts.
    from dagpar_cli.testing import skip_missing_tool, tool_missing

    reason = tool_missing("redis")
    if reason is not None:
        skip_missing_tool("redis", reason)
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()
