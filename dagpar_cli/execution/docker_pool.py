"""Containers of the docker executor: starting one, and keeping it warm for the next slice.

:func:`start_container` creates and starts a slice's container.

Starting a container costs more than the exec a slice needs, so when a session closes, the
docker executor (``warm=True``) gives its container to a :class:`WarmPool` instead of removing
it. In the background, the pool resets it (:data:`RESET_SCRIPT`: every process the slice left
is killed, ``/tmp``, ``/var/tmp`` and ``/dev/shm`` are emptied) and checks with the engine's
``diff`` that the slice changed nothing else in the container's filesystem; only then is the
container idle, and the next session with the same engine, image, mounts and labels
(:func:`pool_key`; the slice label aside) runs in it. A container with a mount in one of those
directories is never reset (:func:`reusable`: emptying them would delete the host's files).
Anything else (a reset that fails, a file
written outside those directories, a container that died or was removed under its session)
removes the container, in the background; so does an idle container beyond the engine's slots
(the oldest first). A slice thus sees what a fresh container would show it: the image, its
mounts, and its own environment (which goes to each exec, never to the container).

Idle and resetting containers keep their owner's labels and are renewed by the heartbeat, so the
run label sweep of an interrupt and the reaper of a killed dagpar (:mod:`.docker_owner`) cover
them as they cover open sessions. :meth:`WarmPool.drain` removes them at the end of the run.
"""

from __future__ import annotations

import posixpath
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dagpar_cli.errors import ExecutionError
from dagpar_cli.execution.docker_engines import copy_into
from dagpar_cli.execution.docker_owner import HEARTBEAT_FILE, KEEPALIVE, SLICE_LABEL

if TYPE_CHECKING:
    from dagpar_cli.execution.api import Mount, SessionSpec
    from dagpar_cli.execution.docker_engines import EngineHandle

__all__ = ["RESET_SCRIPT", "WarmPool", "pool_key", "reusable", "start_container"]

#: Kills every process but init, the keep-alive loop (the lowest other pid) and its children,
#: and this script; empties the temporary directories; fails when anything is left.
RESET_SCRIPT = (
    "me=$$; keep=; "
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
    "for d in /tmp /var/tmp /dev/shm; do [ -d $d ] || continue; "
    'for f in "$d"/* "$d"/.[!.]* "$d"/..?*; do '
    '[ -e "$f" ] || [ -L "$f" ] || continue; '
    f'[ "$f" = {HEARTBEAT_FILE} ] && continue; rm -rf "$f" || exit 4; done; done'
)

#: Seconds a session waits for a container of its kind that is being reset.
RESET_WAIT = 5.0
#: Entries of the engine's ``diff`` that a fresh container shows too (its ``--init`` binary).
_INIT_PATHS = ("/usr/sbin/docker-init", "/sbin/docker-init", "/dev/init")
#: Directories the reset empties: their entries in the ``diff`` are not a slice's trace.
_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")


def pool_key(engine: EngineHandle, spec: SessionSpec) -> tuple[Any, ...]:
    """What a container must share with a session to serve it (the slice label aside)."""
    labels = tuple(sorted((k, v) for k, v in spec.labels.items() if k != SLICE_LABEL))
    return (engine.url, spec.image, spec.mounts, labels)


def reusable(mounts: Sequence[Mount]) -> bool:
    """Whether no mount lies in, or holds, a directory the reset empties."""
    for mount in mounts:
        target = posixpath.normpath(mount.target)
        for scratch in _SCRATCH:
            if target == scratch or target.startswith(scratch + "/"):
                return False
            if target == "/" or scratch.startswith(target + "/"):
                return False
    return True


def _allowed(path: str, mounts: Sequence[Mount]) -> bool:
    """Whether a ``diff`` entry at *path* is one a fresh container shows as well."""
    if any(path == d or path.startswith(d + "/") for d in _SCRATCH):
        return True
    fixed = [*_INIT_PATHS, *(posixpath.normpath(m.target) for m in mounts)]
    return any(path == f or f.startswith(path.rstrip("/") + "/") for f in fixed)


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
        self._idle: dict[tuple[Any, ...], list[str]] = {}
        #: Every container the pool holds (idle or being reset or removed), for the heartbeat.
        self._held: dict[str, EngineHandle] = {}
        #: When each held container was given to the pool (the oldest idle ones go first).
        self._since: dict[str, float] = {}
        self._threads: list[threading.Thread] = []
        self._stopped = False
        #: Containers that were handed out again (for tests and the bench).
        self.reused = 0

    def take(self, key: tuple[Any, ...]) -> str | None:
        """An idle container for *key*, now the caller's, or None.

        While a container for *key* is being reset, waits for it (up to :data:`RESET_WAIT`
        seconds): a reset takes a fraction of what starting a new container does.
        """
        deadline = time.monotonic() + RESET_WAIT
        with self._ready:
            while True:
                ids = self._idle.get(key)
                if self._stopped:
                    return None
                if ids:
                    container_id = ids.pop()
                    del self._held[container_id]
                    del self._since[container_id]
                    self.reused += 1
                    return container_id
                left = deadline - time.monotonic()
                if not self._resetting.get(key) or left <= 0:
                    return None
                self._ready.wait(left)

    def give_back(self, engine: EngineHandle, spec: SessionSpec, container_id: str) -> None:
        """Reset the container in the background; then it is idle for the next fitting session.

        A container with a mount in (or above) a directory the reset empties is removed instead:
        emptying it would delete the host's files.
        """
        if not reusable(spec.mounts):
            self.discard(engine, container_id)
            return
        key = pool_key(engine, spec)
        with self._lock:
            self._resetting[key] = self._resetting.get(key, 0) + 1
        self._background(engine, container_id, lambda: self._reset(engine, key, spec, container_id))

    def discard(self, engine: EngineHandle, container_id: str) -> None:
        """Remove the container in the background."""
        self._background(engine, container_id, lambda: self._drop(engine, container_id))

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
            idle = [(self._held[c], c) for ids in self._idle.values() for c in ids]
            self._idle.clear()
        removers = [
            threading.Thread(target=self._drop, args=(engine, cid), daemon=True)
            for engine, cid in idle
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

    def _drop(self, engine: EngineHandle, container_id: str) -> None:
        try:
            self._remove(engine, container_id)
        finally:
            with self._lock:
                self._held.pop(container_id, None)
                self._since.pop(container_id, None)

    def _reset(
        self, engine: EngineHandle, key: tuple[Any, ...], spec: SessionSpec, container_id: str
    ) -> None:
        clean = not self._stopped and _clean(engine, spec, container_id)
        drop = [] if clean else [container_id]
        with self._ready:
            self._resetting[key] -= 1
            if clean and not self._stopped:
                self._idle.setdefault(key, []).append(container_id)
                drop = self._over_slots(engine)
            elif clean:
                drop = [container_id]
            self._ready.notify_all()
        for old in drop:
            self._drop(engine, old)

    def _over_slots(self, engine: EngineHandle) -> list[str]:
        """Take the oldest idle containers of *engine* beyond its slots out of the pool."""
        idle = [(cid, ids) for ids in self._idle.values() for cid in ids]
        mine = [(cid, ids) for cid, ids in idle if self._held.get(cid) is engine]
        # Containers enter the pool in order; the first of each list is its oldest.
        mine.sort(key=lambda pair: self._since[pair[0]])
        extra = mine[: max(0, len(mine) - engine.slots())]
        for cid, ids in extra:
            ids.remove(cid)
        return [cid for cid, _ids in extra]


def _clean(engine: EngineHandle, spec: SessionSpec, container_id: str) -> bool:
    """Run the reset in the container and check its filesystem; whether it may serve again."""
    try:
        api = engine.connect()
        exec_id = api.exec_create(container_id, ["sh", "-c", RESET_SCRIPT])["Id"]
        api.exec_start(exec_id)
        if api.exec_inspect(exec_id).get("ExitCode") != 0:
            return False
        changes = api.diff(container_id) or []
    except Exception:
        return False
    return all(_allowed(str(change.get("Path", "")), spec.mounts) for change in changes)


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
