"""Containers that outlive their dagpar: who owns one, when it is abandoned, and its keep-alive.

Every container the docker executor starts carries its owner in labels: the host name, the
boot and pid namespace (:data:`OWNER_BOOT_LABEL`), the owning process's pid and start time (so a
pid reused by another process is not taken for the owner), and an expiry. A container is
*abandoned* when its owner on this host is gone, or, for an owner elsewhere (another machine or
container, whose processes cannot be asked), when its expiry has passed
(:func:`owner_gone`). Every run removes the abandoned containers of the engines it uses when
it first opens a session there, and ``dagpar cleanup`` does it on demand
(:func:`remove_abandoned`).

A container's main process is a shell loop (:data:`KEEPALIVE`) that ends when nobody renews it:
the owner writes a new number to :data:`HEARTBEAT_FILE` in each of its containers every
:data:`RENEW_SECONDS` from a background thread (:class:`Heartbeat`); when the number has not
changed for :data:`KEEPALIVE_SECONDS`, the loop exits and the container stops. So a container
whose dagpar was killed stops by itself within twice that, on any engine.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagpar_cli.config import DockerEngine
from dagpar_cli.execution.docker_engines import default_engines, engine_handles

if TYPE_CHECKING:
    from dagpar_cli.execution.docker_engines import EngineHandle

__all__ = [
    "CONTAINER_LIFETIME",
    "EXPIRES_LABEL",
    "HEARTBEAT_FILE",
    "KEEPALIVE",
    "KEEPALIVE_SECONDS",
    "OWNER_BOOT_LABEL",
    "OWNER_HOST_LABEL",
    "OWNER_PID_LABEL",
    "OWNER_START_LABEL",
    "RENEW_SECONDS",
    "RUN_LABEL",
    "SLICE_LABEL",
    "Heartbeat",
    "Owner",
    "cleanup_abandoned",
    "cleanup_run",
    "keepalive_command",
    "owner_gone",
    "process_alive",
    "remove_abandoned",
    "sweep_abandoned",
]

#: Container label carrying the run id (``RunContext.run_id``).
RUN_LABEL = "dagpar.run"
#: Container label carrying the slice's label (``check-name#3``).
SLICE_LABEL = "dagpar.slice"
OWNER_HOST_LABEL = "dagpar.owner.host"
#: The boot id and pid namespace: pids and start times mean something only within them.
OWNER_BOOT_LABEL = "dagpar.owner.boot"
OWNER_PID_LABEL = "dagpar.owner.pid"
#: The owner's start time (clock ticks since boot, from ``/proc``; empty where unknown).
OWNER_START_LABEL = "dagpar.owner.start"
#: Unix time after which the container is abandoned whoever owns it (seconds).
EXPIRES_LABEL = "dagpar.expires"
#: Seconds from a container's start to its expiry: longer than any run is expected to take.
CONTAINER_LIFETIME = 24 * 3600

#: The file in the container whose content the owner renews.
HEARTBEAT_FILE = "/tmp/.dagpar-heartbeat"
#: Seconds without a renewal after which the keep-alive ends (it checks this often).
KEEPALIVE_SECONDS = 60
#: Seconds between renewals: a quarter of the above, so a loaded machine has slack.
RENEW_SECONDS = 15.0


def keepalive_command(seconds: float = KEEPALIVE_SECONDS) -> tuple[list[str], list[str]]:
    """A container's entrypoint and command: a loop that ends *seconds* after the last renewal."""
    loop = (
        # Where the file cannot be written (a read-only /tmp), the container runs until removed.
        f"f={HEARTBEAT_FILE}; echo 0 > $f || exec sleep infinity; last=; "
        f"while sleep {seconds:g}; do "
        'read now < $f || exit 0; [ "$now" != "$last" ] || exit 0; last=$now; done'
    )
    return ["sh", "-c"], [loop, "dagpar-keepalive"]


#: The containers' entrypoint and command (see :func:`keepalive_command`).
KEEPALIVE = keepalive_command()


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """The start time of *pid* in clock ticks since boot (``/proc``), or "" where unknown."""
    stat = _read(f"/proc/{pid}/stat")
    fields = stat[stat.rfind(")") + 2 :].split() if stat else []
    return fields[19] if len(fields) > 19 else ""


def process_alive(pid: int, start: str) -> bool:
    """Whether process *pid* runs and, when *start* is known, is the one that started then."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    stat = _read(f"/proc/{pid}/stat")
    if stat and stat[stat.rfind(")") + 2 :].startswith(("Z", "X")):
        return False  # dead, not yet reaped
    current = process_start(pid)
    return not (start and current) or current == start


@dataclass(frozen=True)
class Owner:
    """A dagpar process, as recorded on its containers."""

    host: str
    boot: str
    pid: int
    start: str

    @classmethod
    def current(cls) -> Owner:
        """This process."""
        try:
            namespace = os.readlink("/proc/self/ns/pid")
        except OSError:
            namespace = ""
        boot = f"{_read('/proc/sys/kernel/random/boot_id')} {namespace}".strip()
        pid = os.getpid()
        return cls(socket.gethostname(), boot, pid, process_start(pid))

    def labels(self, now: float | None = None) -> dict[str, str]:
        """The labels naming this owner, with an expiry counted from *now*."""
        expires = (time.time() if now is None else now) + CONTAINER_LIFETIME
        return {
            OWNER_HOST_LABEL: self.host,
            OWNER_BOOT_LABEL: self.boot,
            OWNER_PID_LABEL: str(self.pid),
            OWNER_START_LABEL: self.start,
            EXPIRES_LABEL: f"{expires:.0f}",
        }


def owner_gone(
    labels: Mapping[str, str],
    *,
    me: Owner,
    now: float,
    alive: Callable[[int, str], bool] = process_alive,
) -> bool:
    """Whether the container with *labels* is abandoned (see the module's description).

    On this host (same host name, boot and pid namespace) the owner's process decides: gone
    means abandoned, whatever the expiry says. Elsewhere only the expiry can tell.
    """
    try:
        expired = now > float(labels[EXPIRES_LABEL])
    except (KeyError, ValueError):
        expired = False
    try:
        pid = int(labels[OWNER_PID_LABEL])
    except (KeyError, ValueError):
        return expired
    if labels.get(OWNER_HOST_LABEL) != me.host or labels.get(OWNER_BOOT_LABEL) != me.boot:
        return expired
    start = labels.get(OWNER_START_LABEL, "")
    if pid == me.pid and (start == me.start or not start):
        return False
    return not alive(pid, start)


def remove_abandoned(engine: EngineHandle, *, me: Owner | None = None) -> int:
    """Force-remove the abandoned containers on *engine*; how many were removed.

    :raises ExecutionError: when the engine is unreachable.
    """
    api = engine.connect()
    me = me or Owner.current()
    now = time.time()
    removed = 0
    for container in api.containers(all=True, filters={"label": OWNER_PID_LABEL}):
        if not owner_gone(container.get("Labels") or {}, me=me, now=now):
            continue
        try:
            api.remove_container(container["Id"], force=True, v=True)
            removed += 1
        except Exception:
            pass  # removed meanwhile (by another run's sweep): nothing left to do
    return removed


_swept_lock = threading.Lock()


def sweep_abandoned(engine: EngineHandle, me: Owner, swept: set[str]) -> None:
    """Remove the abandoned containers on *engine* unless its URL is in *swept* (added now).

    Best effort, for a run at its first session on an engine: its own containers do not
    depend on it.
    """
    with _swept_lock:
        if engine.url in swept:
            return
        swept.add(engine.url)
    try:
        remove_abandoned(engine, me=me)
    except Exception:
        pass


def cleanup_abandoned(engines: Iterable[DockerEngine] = ()) -> int:
    """Remove the abandoned containers on *engines* (default: the default engine); how many.

    :raises ExecutionError: when an engine is unreachable.
    """
    removed = 0
    for engine in engine_handles(tuple(engines) or default_engines()):
        try:
            removed += remove_abandoned(engine)
        finally:
            engine.close()
    return removed


def cleanup_run(run_id: str, engines: Iterable[DockerEngine] = ()) -> int:
    """Remove every container labelled with *run_id* on *engines* (default: the default engine).

    :returns: how many containers were removed.
    :raises ExecutionError: when an engine is unreachable.
    """
    removed = 0
    for engine in engine_handles(tuple(engines) or default_engines()):
        try:
            removed += engine.remove_labelled(f"{RUN_LABEL}={run_id}")
        finally:
            engine.close()
    return removed


class Heartbeat:
    """Renews the keep-alive of every open container from a background thread.

    :param containers: the open containers, as (engine, container id) pairs, when asked.
    """

    def __init__(self, containers: Callable[[], Iterable[tuple[EngineHandle, str]]]) -> None:
        self._containers = containers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._beat = 0

    def start(self) -> None:
        """Start renewing (once; later calls do nothing)."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="dagpar-heartbeat", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop renewing; idempotent."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            self._beat += 1
            for engine, container_id in list(self._containers()):
                if self._stop.is_set():
                    return
                renew(engine, container_id, self._beat)


def renew(engine: EngineHandle, container_id: str, beat: int) -> None:
    """Write *beat* to the heartbeat file of *container_id*; a failure is left to the session."""
    try:
        api: Any = engine.connect()
        script = f'echo "$1" > {HEARTBEAT_FILE}'
        exec_id = api.exec_create(container_id, ["sh", "-c", script, "sh", str(beat)])["Id"]
        # Detached, on the client with a timeout: a stalled engine must not stall the heartbeat.
        api.exec_start(exec_id, detach=True)
    except Exception:
        pass
