"""A second Docker engine on this machine, for tests that spread sessions over two engines.

A second ``dockerd`` needs its own data root, exec root, pid file and socket. It must also not
touch the first daemon's network: ``--bridge=none`` makes dockerd *delete* the ``docker0``
interface the first daemon uses, so the second daemon gets a bridge of its own instead
(``dagpar-br2``, created here with ``ip``) and no iptables rules.

Where a second daemon cannot run (not root, no ``ip``), :func:`start_relay` offers a second
*endpoint* instead: a TCP listener on 127.0.0.1 relaying to the first daemon's socket.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import socketserver
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SecondEngine", "start_relay", "start_second_engine", "unavailable"]

SOCKET = "/tmp/dagpar-test-dockerd2.sock"
URL = f"unix://{SOCKET}"
DATA_ROOT = Path("/tmp/dagpar-dockerd2")
EXEC_ROOT = Path("/tmp/dagpar-dockerd2-exec")
PIDFILE = Path("/tmp/dagpar-dockerd2.pid")
LOG = Path("/tmp/dagpar-dockerd2.log")
BRIDGE = "dagpar-br2"
BRIDGE_ADDRESS = "172.31.254.1/24"


@dataclass
class SecondEngine:
    """A running second engine; :meth:`stop` ends it only if this process started it."""

    url: str
    process: subprocess.Popen[bytes] | None
    #: False for a relay to the first daemon (containers are then all on one daemon).
    separate_daemon: bool = True
    relay: socketserver.ThreadingTCPServer | None = None

    def stop(self) -> None:
        """Stop the daemon started by :func:`start_second_engine` (not one found running)."""
        if self.relay is not None:
            self.relay.shutdown()
            self.relay.server_close()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def _answers(url: str) -> bool:
    """Whether the engine at the ``unix://`` *url* answers ``/_ping``.

    A plain socket, closed on every path (the SDK leaks the socket of a refused connection).
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(url[len("unix://") :])
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = sock.recv(64).split(b"\r\n", 1)[0]
            return status_line.startswith(b"HTTP/1.") and b" 200 " in status_line
    except OSError:
        return False


def _ensure_bridge() -> None:
    probe = subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True, check=False)
    if probe.returncode == 0:
        return
    for argv in (
        ["ip", "link", "add", BRIDGE, "type", "bridge"],
        ["ip", "addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE],
        ["ip", "link", "set", BRIDGE, "up"],
    ):
        subprocess.run(argv, check=True, capture_output=True)


def unavailable() -> str | None:
    """Why a second engine cannot be started here, or None."""
    if os.geteuid() != 0:
        return "starting a second dockerd needs root"
    for tool in ("dockerd", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH"
    return None


def start_second_engine(timeout: float = 60.0) -> SecondEngine:
    """Start (or reuse) the second engine and wait until it answers.

    :raises RuntimeError: when it does not come up; the message ends with its log.
    """
    if _answers(URL):
        return SecondEngine(url=URL, process=None)
    _ensure_bridge()
    for directory in (DATA_ROOT, EXEC_ROOT):
        directory.mkdir(parents=True, exist_ok=True)
    PIDFILE.unlink(missing_ok=True)
    with LOG.open("ab") as log:
        proc = subprocess.Popen(
            [
                "dockerd",
                f"--host={URL}",
                f"--data-root={DATA_ROOT}",
                f"--exec-root={EXEC_ROOT}",
                f"--pidfile={PIDFILE}",
                f"--bridge={BRIDGE}",
                "--iptables=false",
                "--ip-masq=false",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if _answers(URL):
            return SecondEngine(url=URL, process=proc)
        time.sleep(0.2)
    if proc.poll() is None:
        proc.terminate()
        proc.wait(30)
    tail = LOG.read_text(errors="replace").splitlines()[-5:]
    raise RuntimeError("the second dockerd did not start: " + " | ".join(tail))


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def start_relay(unix_socket: str = "/var/run/docker.sock") -> SecondEngine:
    """A ``tcp://127.0.0.1:PORT`` endpoint relaying every connection to *unix_socket*."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
                upstream.connect(unix_socket)
                back = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
                back.start()
                _pump(self.request, upstream)
                back.join()

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    return SecondEngine(
        url=f"tcp://127.0.0.1:{port}", process=None, separate_daemon=False, relay=server
    )
