"""Containers of the docker executor: starting one, and keeping it warm for the next slice.

:func:`start_container` creates and starts a slice's container.

Starting a container costs more than the exec a slice needs, so when a session closes, the
docker executor (``warm=True``) gives its container to a :class:`WarmPool` instead of removing
it. A warm container mounts the slice's read-only directories and an exchange directory of its
own, through which every slice's writable directories pass (:mod:`.docker_exchange`). In the
background, the pool resets it (:data:`RESET_SCRIPT`: every process the slice left is killed,
``/tmp``, ``/var/tmp``, ``/dev/shm`` and the exchange directory are emptied, the slice's links
removed) and checks with the engine's ``diff`` that the slice changed nothing else in the
container's filesystem; only then is the container idle, and the next session with the same
engine, image, mounts of its own and labels (:func:`pool_key`; the slice label aside) runs in it.
The reset keeps the mount points in those directories (it empties the directories on their
way instead); a container with a mount at or above one of them is never reset
(:func:`reusable`). Anything else (a reset that fails, a file
written outside those directories, a container that died or was removed under its session)
removes the container, in the background; so does an idle container beyond the engine's slots
(the oldest first). A slice thus sees what a fresh container would show it: the image, its
mounts, and its own environment (which goes to each exec, never to the container).

Idle and resetting containers keep their owner's labels and are renewed by the heartbeat, so the
run label sweep of an interrupt and the reaper of a killed dagpar (:mod:`.docker_owner`) cover
them as they cover open sessions. :meth:`WarmPool.drain` removes them at the end of the run.
"""

from __future__ import annotations

import dataclasses
import posixpath
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagpar_cli.errors import ExecutionError
from dagpar_cli.execution.api import Mount
from dagpar_cli.execution.docker_engines import copy_into
from dagpar_cli.execution.docker_exchange import (
    EXCHANGE_TARGET,
    Exchange,
    exchange_target,
    link,
    split,
)
from dagpar_cli.execution.docker_owner import HEARTBEAT_FILE, KEEPALIVE, SLICE_LABEL

if TYPE_CHECKING:
    from dagpar_cli.execution.api import SessionSpec
    from dagpar_cli.execution.docker_engines import EngineHandle

__all__ = [
    "RESET_SCRIPT",
    "WarmContainer",
    "WarmPool",
    "open_warm",
    "pool_key",
    "remove_container",
    "reusable",
    "start_container",
]

#: Kills every process but init, the keep-alive loop (the lowest other pid) and its children,
#: and this script; removes the paths given after the second argument (a slice's links);
#: empties the temporary directories and the first argument's (the exchange directory), except
#: the mount points listed in the second (separated by white space), and the directories on
#: their way, which it empties instead; fails when anything is left.
RESET_SCRIPT = (
    "x=$1; mounts=$2; shift 2; me=$$; keep=; "
    'for p in /proc/[0-9]*; do n=${p#/proc/}; [ "$n" -gt 1 ] || continue; '
    '[ -z "$keep" ] || [ "$n" -lt "$keep" ] && keep=$n; done; '
    "strays() { left=; for p in /proc/[0-9]*; do n=${p#/proc/}; "
    'case " 1 $keep $me " in *" $n "*) continue;; esac; '
    "pp=; read -r _ _ _ pp _ < $p/stat 2>/dev/null || continue; "
    'case " $keep $me " in *" $pp "*) continue;; esac; '
    'left="$left $n"; done; }; '
    "strays; i=0; "
    'while [ -n "$left" ]; do kill -9 $left 2>/dev/null; i=$((i+1)); '
    "[ $i -gt 40 ] && exit 3; sleep 0.05; strays; done; "
    'for p in "$@"; do rm -rf -- "$p" || exit 4; done; '
    'empty() { for f in "$1"/* "$1"/.[!.]* "$1"/..?*; do '
    '[ -e "$f" ] || [ -L "$f" ] || continue; '
    f'[ "$f" = {HEARTBEAT_FILE} ] && continue; '
    'on=; for m in $mounts; do [ "$m" = "$f" ] && on=m; '
    'case "$m" in "$f"/*) [ -z "$on" ] && on=d;; esac; done; '
    'case "$on" in m) ;; d) empty "$f" || return 4;; *) rm -rf "$f" || return 4;; esac; '
    "done; }; "
    "for d in /tmp /var/tmp /dev/shm $x; do [ -d $d ] || continue; empty $d || exit 4; done"
)

#: Seconds a session waits for a container of its kind that is being reset.
RESET_WAIT = 5.0
#: Entries of the engine's ``diff`` that a fresh container shows too (its ``--init`` binary).
_INIT_PATHS = ("/usr/sbin/docker-init", "/sbin/docker-init", "/dev/init")
#: Directories the reset empties: their entries in the ``diff`` are not a slice's trace.
_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")


def pool_key(
    engine: EngineHandle, spec: SessionSpec, shared: Collection[Mount] = ()
) -> tuple[Any, ...]:
    """What a container must share with a session to serve it: engine, image, the mounts it has
    itself (:func:`.docker_exchange.split`) and labels (the slice label aside)."""
    labels = tuple(sorted((k, v) for k, v in spec.labels.items() if k != SLICE_LABEL))
    return (engine.url, spec.image, split(spec.mounts, shared)[0], labels)


def reusable(mounts: Sequence[Mount]) -> bool:
    """Whether the reset can empty the temporary directories around *mounts*: no mount is, or
    holds, one of them, and no target has white space or a wildcard in it (the reset lists
    them, separated by white space)."""
    for mount in mounts:
        target = posixpath.normpath(mount.target)
        if target == "/" or any(c in target for c in " \t\n*?[\\"):
            return False
        for scratch in _SCRATCH:
            if target == scratch or scratch.startswith(target + "/"):
                return False
    return True


def _allowed(path: str, fixed: Sequence[str]) -> bool:
    """Whether a ``diff`` entry at *path* is one a fresh container shows as well."""
    if any(path == d or path.startswith(d + "/") for d in _SCRATCH):
        return True
    return any(path == f or f.startswith(path.rstrip("/") + "/") for f in fixed)


@dataclass(eq=False)
class WarmContainer:
    """A container that serves slice after slice, and what its slices left to undo."""

    #: The engine's id of the container.
    id: str
    #: Its exchange directory on the host.
    exchange: Path
    #: Where the container sees it (:func:`.docker_exchange.exchange_target`).
    target: str
    #: Its :func:`pool_key`.
    key: tuple[Any, ...]
    #: Its mounts (besides the exchange directory).
    mounts: tuple[Mount, ...]
    #: Container paths its sessions linked: the ``diff`` may show them and their directories.
    links: set[str] = field(default_factory=set)
    #: Paths the last session's links created, which the next reset removes.
    made: list[str] = field(default_factory=list)
    #: Sessions it served so far.
    sessions: int = 0


class WarmPool:
    """Idle containers per :func:`pool_key`, and the background work that resets or removes them.

    :param remove: removes a container (engine, container id); never raises.
    """

    def __init__(self, remove: Callable[[EngineHandle, str], None]) -> None:
        self._remove = remove
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        #: Containers being reset, per key.
        self._resetting: dict[tuple[Any, ...], int] = {}
        self._idle: dict[tuple[Any, ...], list[WarmContainer]] = {}
        #: Every container the pool holds (idle or being reset or removed), for the heartbeat.
        self._held: dict[str, EngineHandle] = {}
        #: When each held container was given to the pool (the oldest idle ones go first).
        self._since: dict[str, float] = {}
        self._threads: list[threading.Thread] = []
        self._stopped = False
        #: Containers that were handed out again (for tests and the bench).
        self.reused = 0

    def take(self, key: tuple[Any, ...], prefer: str = "") -> WarmContainer | None:
        """An idle container for *key*, now the caller's, or None; one whose exchange
        directory is at *prefer* if there is one.

        While a container for *key* is being reset, waits for it (up to :data:`RESET_WAIT`
        seconds): a reset takes a fraction of what starting a new container does.
        """
        deadline = time.monotonic() + RESET_WAIT
        with self._ready:
            while True:
                idle = self._idle.get(key)
                if self._stopped:
                    return None
                if idle:
                    fits = [c for c in idle if c.target == prefer]
                    container = fits[-1] if fits else idle[-1]
                    idle.remove(container)
                    del self._held[container.id]
                    del self._since[container.id]
                    self.reused += 1
                    return container
                left = deadline - time.monotonic()
                if not self._resetting.get(key) or left <= 0:
                    return None
                self._ready.wait(left)

    def give_back(
        self, engine: EngineHandle, key: tuple[Any, ...], container: WarmContainer
    ) -> None:
        """Reset the container in the background; then it is idle for the next fitting session.

        A container the reset cannot empty around its mounts (:func:`reusable`) is removed
        instead.
        """
        if not reusable(container.mounts):
            self.discard(engine, container)
            return
        with self._lock:
            self._resetting[key] = self._resetting.get(key, 0) + 1
        self._background(engine, container.id, lambda: self._reset(engine, key, container))

    def discard(self, engine: EngineHandle, container: WarmContainer | str) -> None:
        """Remove the container (and its exchange directory) in the background."""
        cid = container if isinstance(container, str) else container.id
        self._background(engine, cid, lambda: self._drop(engine, container))

    def containers(self) -> list[tuple[EngineHandle, str]]:
        """The containers the pool holds, as (engine, id) pairs."""
        with self._lock:
            return [(engine, cid) for cid, engine in self._held.items()]

    def stop(self) -> None:
        """Stop reusing (an interrupt: the run label sweep removes what the pool holds)."""
        with self._ready:
            self._stopped = True
            self._ready.notify_all()

    def wait(self, timeout: float) -> None:
        """Wait up to *timeout* seconds for the resets and removals under way."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def drain(self) -> None:
        """Stop reusing; wait for the background work; remove every idle container (in parallel)."""
        self.stop()
        self.wait(60)
        with self._lock:
            idle = [(self._held[c.id], c) for cs in self._idle.values() for c in cs]
            self._idle.clear()
        removers = [
            threading.Thread(target=self._drop, args=(engine, c), daemon=True) for engine, c in idle
        ]
        for thread in removers:
            thread.start()
        for thread in removers:
            thread.join(60)

    def _background(
        self, engine: EngineHandle, container_id: str, work: Callable[[], None]
    ) -> None:
        with self._lock:
            self._held[container_id] = engine
            self._since[container_id] = time.monotonic()
            self._threads = [t for t in self._threads if t.is_alive()]
            thread = threading.Thread(target=work, name="dagpar-warm", daemon=True)
            self._threads.append(thread)
        thread.start()

    def _drop(self, engine: EngineHandle, container: WarmContainer | str) -> None:
        cid = container if isinstance(container, str) else container.id
        try:
            self._remove(engine, cid)
            if not isinstance(container, str):
                shutil.rmtree(container.exchange, ignore_errors=True)
        finally:
            with self._lock:
                self._held.pop(cid, None)
                self._since.pop(cid, None)

    def _reset(self, engine: EngineHandle, key: tuple[Any, ...], container: WarmContainer) -> None:
        clean = not self._stopped and _clean(engine, container)
        drop: list[WarmContainer] = [] if clean else [container]
        with self._ready:
            self._resetting[key] -= 1
            if clean and not self._stopped:
                self._idle.setdefault(key, []).append(container)
                drop = self._over_slots(engine)
            elif clean:
                drop = [container]
            self._ready.notify_all()
        for old in drop:
            self._drop(engine, old)

    def _over_slots(self, engine: EngineHandle) -> list[WarmContainer]:
        """Take the oldest idle containers of *engine* beyond its slots out of the pool."""
        idle = [(c, cs) for cs in self._idle.values() for c in cs]
        mine = [(c, cs) for c, cs in idle if self._held.get(c.id) is engine]
        # Containers enter the pool in order; the first of each list is its oldest.
        mine.sort(key=lambda pair: self._since[pair[0].id])
        extra = mine[: max(0, len(mine) - engine.slots())]
        for c, cs in extra:
            cs.remove(c)
        return [c for c, _cs in extra]


def _clean(engine: EngineHandle, container: WarmContainer) -> bool:
    """Run the reset in the container and check its filesystem; whether it may serve again."""
    try:
        api = engine.connect()
        kept = [container.target, *(posixpath.normpath(m.target) for m in container.mounts)]
        argv = ["sh", "-c", RESET_SCRIPT, "sh", container.target, " ".join(kept), *container.made]
        exec_id = api.exec_create(container.id, argv)["Id"]
        api.exec_start(exec_id)
        if api.exec_inspect(exec_id).get("ExitCode") != 0:
            return False
        container.made = []
        changes = api.diff(container.id) or []
    except Exception:
        return False
    fixed = [
        *_INIT_PATHS,
        container.target,
        *container.links,
        *(posixpath.normpath(m.target) for m in container.mounts),
    ]
    return all(_allowed(str(change.get("Path", "")), fixed) for change in changes)


def open_warm(
    pool: WarmPool,
    engine: EngineHandle,
    spec: SessionSpec,
    start: Callable[[EngineHandle, SessionSpec], str],
    exchanges: Path,
    shared: Collection[Mount] = (),
) -> tuple[WarmContainer, Exchange] | None:
    """A warm container for *spec*, idle or new, with the spec's writable mounts linked to a
    fresh directory of its exchange; None when they cannot be linked (the caller then starts
    a container of its own for the session).

    :param start: starts a container for a spec (its id).
    :param exchanges: the host directory where new containers' exchange directories go.
    :param shared: mounts every session has alike (the executor's own): the container has them
        itself, writable or not.
    """
    fixed, writable = split(spec.mounts, shared)
    key = pool_key(engine, spec, shared)
    target = exchange_target(spec.mounts, shared)
    container = pool.take(key, target)
    if container is None:
        exchange_dir = Path(tempfile.mkdtemp(prefix="x", dir=exchanges))
        own = Mount(source=exchange_dir, target=target, read_only=False)
        cid = start(engine, dataclasses.replace(spec, mounts=(*fixed, own)))
        container = WarmContainer(cid, exchange_dir, target, key, fixed)
    container.sessions += 1
    in_place = container.target == target != EXCHANGE_TARGET
    exchange = Exchange(
        container.exchange, container.sessions, writable, container.target, in_place
    )
    try:
        container.made = link(engine.connect(), container.id, exchange)
    except Exception:
        pool.discard(engine, container)
        return None
    container.links.update(posixpath.normpath(m.target) for m in writable)
    return container, exchange


def remove_container(engine: EngineHandle, container_id: str) -> None:
    """Remove a container, waiting for a removal under way; never raises."""
    try:
        api = engine.connect()
        try:
            api.remove_container(container_id, force=True, v=True)
        except Exception as exc:
            if "already in progress" not in str(exc):
                raise
            # A concurrent removal (an interrupt's sweep): it is gone when that ends.
            api.wait(container_id, timeout=30, condition="removed")
    except Exception:
        # Gone already, or the engine is: the run label sweep is next.
        pass


def start_container(
    engine: EngineHandle,
    spec: SessionSpec,
    labels: Mapping[str, str],
    mem_limit: str | int | None,
    network_mode: str | None,
    keepalive: tuple[list[str], list[str]] = KEEPALIVE,
) -> str:
    """Create and start a container for *spec* (its keep-alive under init); its id.

    :raises ExecutionError: when the image is missing or the engine refuses, in one line.
    """
    import docker.errors
    from docker.types import Mount as DockerMount

    api = engine.connect()
    mounts = []
    if engine.bind_mounts:
        mounts = [
            DockerMount(target=m.target, source=str(m.source), type="bind", read_only=m.read_only)
            for m in spec.mounts
        ]
    host_config = api.create_host_config(
        mounts=mounts,
        init=True,
        mem_limit=mem_limit,
        # No swap beyond the limit, so that the limit is what the OOM killer enforces.
        memswap_limit=mem_limit,
        network_mode=network_mode,
    )
    entrypoint, command = keepalive
    try:
        container = api.create_container(
            spec.image,
            command=command,
            entrypoint=entrypoint,
            # The session's variables go to each exec, not to the keep-alive process: a
            # PATH meant for the tests must not stop the container from starting.
            environment={},
            labels=dict(labels),
            host_config=host_config,
            detach=True,
            # Proxy settings from the user's docker config would leak host state in.
            use_config_proxy=False,
        )
        container_id: str = container["Id"]
    except docker.errors.ImageNotFound as exc:
        raise ExecutionError(
            f"image {spec.image!r} is not on docker engine {engine.url}: run `docker pull "
            f"{spec.image}` or set `image:` in dagpar.yaml"
        ) from exc
    except docker.errors.APIError as exc:
        raise ExecutionError(
            f"docker engine {engine.url}: cannot create a container for {spec.label}: "
            f"{exc.explanation or exc}"
        ) from exc
    try:
        if not engine.bind_mounts:
            copy_into(api, container_id, spec.mounts)
        api.start(container_id)
    except BaseException as exc:
        try:
            api.remove_container(container_id, force=True, v=True)
        except Exception:
            pass
        if isinstance(exc, docker.errors.APIError):
            raise ExecutionError(
                f"docker engine {engine.url}: cannot start a container for {spec.label}: "
                f"{exc.explanation or exc}"
            ) from exc
        raise
    return container_id
