"""The ``docker`` executor: one container per slice, one ``docker exec`` per request.

A session starts a container from the slice's image with its entrypoint replaced by a keep-alive
loop (under the engine's init, which reaps orphaned test processes), the slice's mounts and
environment, and the labels ``dagpar.run``, ``dagpar.slice`` and its owner's (see
:mod:`.docker_owner`: the loop ends when this process stops renewing it, and a later run removes
the containers of a dagpar that was killed). Each request is an exec in it, so a slice pays the
container start once, not per command. Nothing from the host's environment reaches the
container: only the session's and the request's variables are passed.

Standard output streams to the request's ``stdout_file`` as it arrives, written by the host (the
container never learns the path); only a bounded head and tail stay in memory (:mod:`.output`).
Timeouts run the command under the image's ``timeout`` (which signals the whole process group);
images without one fall back to removing the container when the limit passes. A request whose
process is OOM-killed, or whose container dies, returns an :class:`Outcome` with ``killed`` set; the
engine turns it into errors for the slice's tests.

Containers are removed when their session closes, when the executor closes (also at interpreter exit
as a last resort), by :meth:`DockerExecutor.kill_all`, and by :func:`.docker_owner.cleanup_run`.
A warm executor (``warm=True``, what a run uses) instead hands a closed session's container to
its :class:`.docker_pool.WarmPool`, which resets it for the next session that fits or removes
it, in the background; the executor's close and ``kill_all`` remove what the pool holds. A
slice's writable directories pass through its warm container's exchange directory, which the
host directories link to while the slice runs (:mod:`.docker_exchange`).
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any

from dagpar_cli.config import DockerEngine
from dagpar_cli.errors import ExecutionError
from dagpar_cli.execution.api import ExecRequest, Mount, Outcome, SessionSpec
from dagpar_cli.execution.container_env import container_env
from dagpar_cli.execution.docker_engines import (
    EngineHandle,
    configured_engines,
    default_engines,
    engine_handles,
)
from dagpar_cli.execution.docker_exchange import Exchange, copy_tree, linkable
from dagpar_cli.execution.docker_owner import (
    KEEPALIVE,
    RUN_LABEL,
    SLICE_LABEL,
    Heartbeat,
    Owner,
    cleanup_run,
    sweep_abandoned,
)
from dagpar_cli.execution.docker_pool import (
    WarmContainer,
    WarmPool,
    open_warm,
    remove_container,
    start_container,
)
from dagpar_cli.execution.output import BoundedOutput, drain, open_output
from dagpar_cli.execution.tarextract import UnsafeArchiveError, extract_stripped
from dagpar_cli.plugin import hookimpl

if TYPE_CHECKING:
    from dagpar_cli.run_context import RunContext

__all__ = [
    "RUN_LABEL",
    "SLICE_LABEL",
    "DockerExecutor",
    "DockerSession",
    "cleanup_run",
    "configured_engines",
    "dagpar_make_executor",
]

#: Seconds between the timeout's SIGTERM and its SIGKILL, for runners that clean up on TERM.
KILL_AFTER = 5
#: Extra seconds the host waits past a request's timeout before it removes the container.
WATCHDOG_GRACE = 15.0
#: Exit statuses of coreutils/busybox ``timeout`` when it stopped the command.
_TIMEOUT_STATUSES = (124, 137)
#: Markers of a command that could not be started (docker's own, and ``timeout``'s).
_NOT_STARTED_MARKERS = ("OCI runtime exec failed", "timeout: failed to run command", "exec failed")


def _same_kernel() -> bool:
    """Whether a local engine's containers share this host's kernel, and so its file locks.

    Docker Desktop (macOS, Windows) runs containers in a virtual machine whose file sharing
    does not carry ``flock`` across, so a runner there and dagpar cannot agree through a lock.
    """
    return sys.platform.startswith("linux")


class DockerSession:
    """A running container for one slice (see the module's description).

    Created by :meth:`DockerExecutor.open`; use it as a context manager.
    """

    def __init__(
        self,
        executor: DockerExecutor,
        engine: EngineHandle,
        spec: SessionSpec,
        container_id: str,
        warm: tuple[WarmContainer, Exchange] | None = None,
    ) -> None:
        self._executor = executor
        self._engine = engine
        self._spec = spec
        self.container_id = container_id
        self._warm = warm
        self.where = f"docker@{engine.url}"
        #: Whether the slice's mounted host directories are shared live (bind mounts, or a warm
        #: container's exchange directory, which the host directories link to meanwhile).
        self.shares_mounts = bool(engine.bind_mounts and _same_kernel())
        self._lock = threading.Lock()
        self._closed = False
        #: Why the container is gone, once it is ("interrupted", "container OOM-killed ...").
        self._dead = ""
        self._has_timeout: bool | None = None
        self._started_wall = time.time()
        self._ooms_seen = 0

    # -- requests ------------------------------------------------------------------------------

    def run(self, request: ExecRequest) -> Outcome:
        """Run *request* as one exec in the container; see :meth:`ExecSession.run`."""
        if self._closed and not self._dead:
            raise ExecutionError(f"{self.where}: session {self._spec.label} is closed")
        if self._dead:
            return Outcome(exit_code=137, killed=self._dead, stderr=f"{self._dead}\n")
        if request.timeout is not None and request.timeout <= 0:
            # ``timeout 0`` would mean no limit at all; the slice's time is already up.
            return Outcome(exit_code=124, timed_out=True, stderr="no time left to start\n")
        api = self._engine.connect()
        argv = list(request.argv)
        wrapped = False
        if request.timeout is not None and self._timeout_available():
            limit = f"{max(request.timeout, 0.001):.3f}"
            argv = ["timeout", "-k", str(KILL_AFTER), limit, *argv]
            wrapped = True
        try:
            exec_id = api.exec_create(
                self.container_id,
                argv,
                environment=container_env(self._spec.env, request.env),
                workdir=request.cwd,
                stdout=True,
                stderr=True,
            )["Id"]
        except Exception as exc:
            return self._failed(exc, time.monotonic())
        # The host writes the output file: the container never learns where it is.
        sink = open_output(request.stdout_file)
        out, err = BoundedOutput(request.keep_output), BoundedOutput(request.keep_output)
        started = time.monotonic()
        watchdog = self._watchdog(request.timeout, wrapped)
        try:
            chunks = self._engine.exec_api.exec_start(exec_id, stream=True, demux=True)
            drain(chunks, out, err, sink)
            code = api.exec_inspect(exec_id).get("ExitCode")
        except Exception as exc:
            return self._failed(exc, started)
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if sink is not None:
                sink.close()
        seconds = time.monotonic() - started
        stdout, stderr = out.text(), err.text()
        if sink is not None and sink.error:
            stderr += f"\ndagpar: {sink.error}\n"
        if self._dead:
            return self._dead_outcome(seconds, stdout, stderr)
        exit_code = 137 if code is None else int(code)
        timed_out = (
            wrapped
            and exit_code in _TIMEOUT_STATUSES
            and request.timeout is not None
            and seconds >= request.timeout * 0.9
        )
        not_started = exit_code in (126, 127) and any(
            marker in stdout or marker in stderr for marker in _NOT_STARTED_MARKERS
        )
        if not_started and any(marker in stdout for marker in _NOT_STARTED_MARKERS):
            # Docker writes its own start failure on the output stream; it is an error message.
            stdout, stderr = "", stdout.replace("\r\n", "\n") + stderr
        killed = ""
        if exit_code == 137 and not timed_out:
            killed = self._why_killed()
        return Outcome(
            exit_code=exit_code,
            stdout=stdout,
            stderr=stderr,
            seconds=seconds,
            timed_out=timed_out,
            not_started=not_started,
            killed=killed,
            stdout_cut=out.cut,
            stderr_cut=err.cut,
        )

    def _timeout_available(self) -> bool:
        """Whether the image has a ``timeout`` command (asked once per image and engine)."""
        if self._has_timeout is None:
            self._has_timeout = self._executor._image_has_timeout(self._engine, self, self._spec)
        return self._has_timeout

    def _probe(self, argv: Sequence[str]) -> int | None:
        """Run *argv* quietly in the container; its exit status, or None when it could not run."""
        try:
            api = self._engine.connect()
            env = dict(self._spec.env)
            exec_id = api.exec_create(self.container_id, list(argv), environment=env)["Id"]
            self._engine.exec_api.exec_start(exec_id, demux=True)
            code = api.exec_inspect(exec_id).get("ExitCode")
        except Exception:
            return None
        return None if code is None else int(code)

    def _watchdog(self, timeout: float | None, wrapped: bool) -> threading.Timer | None:
        """A timer that removes the container if the command outlives its timeout regardless."""
        if timeout is None:
            return None
        grace = KILL_AFTER + WATCHDOG_GRACE if wrapped else 0.0
        timer = threading.Timer(
            timeout + grace, self._kill, args=(f"timed out after {timeout:g}s",)
        )
        timer.daemon = True
        timer.start()
        return timer

    def _failed(self, exc: Exception, started: float) -> Outcome:
        """The outcome of a request whose exec broke off: killed container, or engine gone."""
        seconds = time.monotonic() - started
        if self._dead:
            return self._dead_outcome(seconds)
        state = self._container_state()
        if state is None:
            raise ExecutionError(
                f"{self.where}: the container of {self._spec.label} is gone: {exc}"
            ) from exc
        if not state.get("Running"):
            cause = self._exit_cause(state)
            self._dead = cause
            return Outcome(exit_code=137, stderr=f"{cause}\n", seconds=seconds, killed=cause)
        raise ExecutionError(f"{self.where}: exec failed in {self._spec.label}: {exc}") from exc

    def _dead_outcome(self, seconds: float, stdout: str = "", stderr: str = "") -> Outcome:
        """The outcome of a request whose container was removed under it (timeout, kill)."""
        timed_out = self._dead.startswith("timed out")
        killed = "" if timed_out else self._dead
        return Outcome(
            exit_code=137,
            stdout=stdout,
            stderr=stderr + f"{self._dead}\n",
            seconds=seconds,
            timed_out=timed_out,
            killed=killed,
        )

    def _container_state(self) -> dict[str, Any] | None:
        import docker.errors

        try:
            state: dict[str, Any] = self._engine.connect().inspect_container(self.container_id)[
                "State"
            ]
        except docker.errors.NotFound:
            return None
        except Exception as exc:
            raise ExecutionError(f"docker engine {self._engine.url} is unreachable: {exc}") from exc
        return state

    @staticmethod
    def _exit_cause(state: dict[str, Any]) -> str:
        code = state.get("ExitCode", 137)
        if state.get("OOMKilled"):
            return f"container OOM-killed (exit {code})"
        if code == 127:
            return (
                "container exited (exit 127): the image needs `sh` and `sleep` to keep it running"
            )
        if code == 0:
            return "container exited (exit 0): dagpar stopped renewing its keep-alive"
        return f"container exited unexpectedly (exit {code})"

    def _why_killed(self) -> str:
        """Why a command ended by SIGKILL: the container died or the kernel's OOM killer struck.

        An ordinary ``kill -9`` of the command (by itself or a test) is not a kill of the session,
        and yields an empty string.
        """
        state = self._container_state()
        if state is None:
            self._dead = "container removed"
            return self._dead
        if not state.get("Running"):
            self._dead = self._exit_cause(state)
            return self._dead
        if self._oom_events():
            return "container OOM-killed (exit 137)"
        return ""

    def _oom_events(self) -> bool:
        """Whether the engine reported an OOM kill in this container that is not counted yet.

        Events are counted from the session's start (in the engine's clock) rather than from
        the request's, so neither clock skew nor one-second event resolution can pin an earlier
        request's OOM kill on this one.
        """
        api = self._engine.connect()
        offset = self._engine.clock_offset
        # The kernel reports the kill asynchronously; give the event a moment to arrive (longer
        # under a memory limit of ours, where an OOM kill is the likely cause of a SIGKILL).
        deadline = time.monotonic() + (2.0 if self._executor.mem_limit else 0.3)
        while True:
            try:
                events = api.events(
                    since=f"{self._started_wall + offset - 2:.9f}",
                    until=f"{time.time() + offset:.9f}",
                    filters={"container": self.container_id, "event": "oom"},
                    decode=True,
                )
                count = sum(1 for _ in events)
            except Exception:
                return False
            if count > self._ooms_seen:
                self._ooms_seen = count
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    # -- paths and files ---------------------------------------------------------------------

    def path(self, host_path: Path) -> str:
        """The container path of *host_path* (under the mount with the longest matching source).

        :raises ExecutionError: when no mount contains *host_path*.
        """
        host = Path(host_path).absolute()
        best: Mount | None = None
        for mount in self._spec.mounts:
            if host.is_relative_to(mount.source) and (
                best is None or len(mount.source.parts) > len(best.source.parts)
            ):
                best = mount
        if best is None:
            raise ExecutionError(f"{host} is not mounted in {self._spec.label} ({self.where})")
        relative = host.relative_to(best.source)
        return str(PurePosixPath(best.target, *relative.parts))

    def copy_out(self, session_path: str, host_dir: Path) -> None:
        """Copy the container directory *session_path* into *host_dir* (created).

        :raises ExecutionError: when the path does not exist in the container, or the archive
            holds a member that would land outside *host_dir*.
        """
        import docker.errors

        exchanged = self._warm[1].locate(session_path) if self._warm is not None else None
        if exchanged is not None and self._warm is not None:
            try:
                host_dir.mkdir(parents=True, exist_ok=True)
                copy_tree(self._warm[0].exchange, exchanged[0], host_dir, "")
            except OSError as exc:
                raise ExecutionError(
                    f"{self.where}: {session_path} is not a directory in {self._spec.label}"
                ) from exc
            return
        api = self._engine.connect()
        try:
            stream, _stat = api.get_archive(self.container_id, session_path)
            extract_stripped(stream, host_dir)
        except docker.errors.NotFound as exc:
            raise ExecutionError(
                f"{self.where}: {session_path} does not exist in {self._spec.label}"
            ) from exc
        except UnsafeArchiveError as exc:
            raise ExecutionError(f"{self.where}: copying {session_path} out: {exc}") from exc

    def _copy_back(self) -> None:
        for mount in self._spec.mounts:
            if mount.read_only:
                continue
            try:
                self.copy_out(mount.target, mount.source)
            except ExecutionError:
                # A container that died early may not have the directory; nothing to bring back.
                pass

    # -- lifecycle ---------------------------------------------------------------------------

    def _kill(self, cause: str) -> None:
        """Remove the container now, recording *cause* for the request it interrupts."""
        with self._lock:
            if not self._dead:
                self._dead = cause
        self._remove()

    def _remove(self) -> None:
        import docker.errors

        try:
            self._engine.connect().remove_container(self.container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except ExecutionError:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise ExecutionError(
                    f"{self.where}: cannot remove container {self.container_id[:12]}: {exc}"
                ) from exc
            # A concurrent kill is removing it: closing means it is gone, so wait for that.
            try:
                self._engine.connect().wait(self.container_id, timeout=30, condition="removed")
            except Exception:
                pass

    def close(self) -> None:
        """Remove the container; idempotent, safe from another thread.

        On an engine without bind mounts, writable mounts are first copied back to their host
        directories, so that reports written there reach the host as they would through a mount.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            if not self._engine.bind_mounts and self._dead != "interrupted":
                self._copy_back()
            if self._warm is not None:
                # The host's directories become copies before the container serves anyone else.
                self._warm[1].collect()
            pool = self._executor._pool
            if pool is None or self._executor._killed or self._executor._closed:
                self._remove()
            elif self._warm is None or self._dead:
                pool.discard(self._engine, self._warm[0] if self._warm else self.container_id)
            else:
                pool.give_back(self._engine, self._warm[0].key, self._warm[0])
        finally:
            self._executor._forget(self)

    def __enter__(self) -> DockerSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class DockerExecutor:
    """Runs slices in containers on one or more Docker engines.

    :param engines: the endpoints (empty: ``DOCKER_HOST`` or the default socket).
    :param run_id: the run's id, put on every container as the ``dagpar.run`` label.
    :param mem_limit: a memory limit for every container (``"512m"``, bytes), or None.
    :param network_mode: the containers' network (None: the engine's default).
    :param bind_mounts: force bind mounts (True) or copying (False); None decides per engine
        (bind mounts for a local socket or loopback address, copies for remote engines).
    :param extra_mounts: mounts every session gets besides its spec's (toolchains the image
        lacks); a spec's mount at the same target wins.
    :param extra_env: environment every session gets under its spec's (``PATH`` for those
        toolchains); the spec's variables win.
    :param warm: keep closed sessions' containers for later sessions that fit, and remove
        containers in the background (:mod:`.docker_pool`); False removes each on close.
    """

    name = "docker"

    def __init__(
        self,
        engines: Iterable[DockerEngine] = (),
        *,
        run_id: str,
        mem_limit: str | int | None = None,
        network_mode: str | None = None,
        bind_mounts: bool | None = None,
        extra_mounts: Sequence[Mount] = (),
        extra_env: Mapping[str, str] | None = None,
        warm: bool = False,
    ) -> None:
        self.run_id = run_id
        self._pool = WarmPool(remove_container) if warm else None
        self._extra_mounts = tuple(extra_mounts)
        self._extra_env = dict(extra_env or {})
        self._engines = engine_handles(tuple(engines) or default_engines())
        for engine in self._engines:
            engine.bind_mounts = bind_mounts
        #: The containers' memory limit, if any.
        self.mem_limit = mem_limit
        self._network_mode = network_mode
        self._lock = threading.RLock()
        self._sessions: dict[str, DockerSession] = {}
        self._timeout_probe: dict[tuple[str, str, str], bool] = {}
        self._killed = False
        self._closed = False
        self._owner = Owner.current()
        self._swept: set[str] = set()
        self._heartbeat = Heartbeat(self._open_containers)
        #: Where warm containers' exchange directories live on the host.
        self._exchanges = Path(tempfile.mkdtemp(prefix="dagpar-docker-")) if warm else None
        atexit.register(self.close)

    @property
    def engines(self) -> tuple[EngineHandle, ...]:
        """The endpoints, in configuration order."""
        return tuple(self._engines)

    @property
    def shares_mounts(self) -> bool:
        """Whether every engine bind-mounts host directories, so a runner's files are seen live
        (with warm containers too: a slice's report directory links to its exchange meanwhile)."""
        return _same_kernel() and all(engine.shares_files for engine in self._engines)

    def capacity(self) -> int:
        """The sum of the engines' slots (connecting to those without configured slots).

        :raises ExecutionError: when an engine without configured slots is unreachable.
        """
        return sum(engine.slots() for engine in self._engines)

    def _pick_engine(self) -> EngineHandle:
        """The least-loaded engine (open sessions per slot), first configured on a tie."""
        return min(self._engines, key=lambda e: e.active / max(1, e.slots()))

    def open(self, spec: SessionSpec) -> DockerSession:
        """Start a container for one slice on the least-loaded engine.

        :raises ExecutionError: when the spec has no image, the image is missing, or the engine is
            unreachable — one line naming it.
        """
        image = spec.image
        if image is None:
            raise ExecutionError(
                f"{spec.label}: the docker executor needs an image; set `image:` for the "
                "toolchain in dagpar.yaml"
            )
        spec = self._with_extras(spec)
        with self._lock:
            if self._killed or self._closed:
                raise ExecutionError(f"{spec.label}: the run was stopped; no new containers")
            engine = self._pick_engine()
            engine.active += 1
        try:
            engine.ensure_image(image)
            sweep_abandoned(engine, self._owner, self._swept)
            warm = None
            shared = self._extra_mounts
            if self._pool and engine.bind_mounts and linkable(spec.mounts, shared):
                assert self._exchanges is not None
                warm = open_warm(self._pool, engine, spec, self._start, self._exchanges, shared)
            container_id = warm[0].id if warm is not None else self._start(engine, spec)
        except BaseException:
            with self._lock:
                engine.active -= 1
            raise
        session = DockerSession(self, engine, spec, container_id, warm)
        with self._lock:
            self._sessions[container_id] = session
            stopped = self._killed or self._closed
        self._heartbeat.start()
        if stopped:
            # kill_all ran while this container started: it must not survive the run.
            session.close()
            raise ExecutionError(f"{spec.label}: the run was stopped; no new containers")
        return session

    def _open_containers(self) -> list[tuple[EngineHandle, str]]:
        with self._lock:
            open_ = [(s._engine, s.container_id) for s in self._sessions.values()]
        return open_ + (self._pool.containers() if self._pool is not None else [])

    def _with_extras(self, spec: SessionSpec) -> SessionSpec:
        """*spec* with the executor's extra mounts and environment under its own."""
        if not self._extra_mounts and not self._extra_env:
            return spec
        targets = {m.target for m in spec.mounts}
        extra = tuple(m for m in self._extra_mounts if m.target not in targets)
        return dataclasses.replace(
            spec, mounts=(*extra, *spec.mounts), env={**self._extra_env, **spec.env}
        )

    def _start(self, engine: EngineHandle, spec: SessionSpec) -> str:
        labels = {**spec.labels, RUN_LABEL: self.run_id, SLICE_LABEL: spec.label}
        labels.update(self._owner.labels())
        return start_container(engine, spec, labels, self.mem_limit, self._network_mode, KEEPALIVE)

    def _image_has_timeout(
        self, engine: EngineHandle, session: DockerSession, spec: SessionSpec
    ) -> bool:
        # The spec's PATH decides which ``timeout`` the exec finds, as much as the image does.
        key = (engine.url, spec.image or "", spec.env.get("PATH", ""))
        with self._lock:
            known = self._timeout_probe.get(key)
        if known is None:
            known = session._probe(["timeout", "5", "true"]) == 0
            with self._lock:
                self._timeout_probe[key] = known
        return known

    def _forget(self, session: DockerSession) -> None:
        with self._lock:
            if self._sessions.pop(session.container_id, None) is not None:
                session._engine.active -= 1

    def kill_all(self) -> None:
        """Remove every open session's container now, in parallel; then sweep by run label.

        Safe from another thread (the interrupt path); requests running in the killed sessions
        return outcomes with ``killed="interrupted"``.
        """
        with self._lock:
            self._killed = True
            sessions = list(self._sessions.values())
        if self._pool is not None:
            self._pool.stop()
        self._heartbeat.stop()
        threads = [
            threading.Thread(target=s._kill, args=("interrupted",), daemon=True) for s in sessions
        ]
        threads += [
            threading.Thread(target=self._sweep, args=(engine,), daemon=True)
            for engine in self._engines
            if engine.connected
        ]
        if self._pool is not None:
            threads += [
                threading.Thread(target=remove_container, args=held, daemon=True)
                for held in self._pool.containers()
            ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._pool is not None:
            # Resets and removals under way end before the interrupt is over.
            self._pool.wait(max(0.0, deadline - time.monotonic()))

    def _sweep(self, engine: EngineHandle) -> None:
        try:
            engine.remove_labelled(f"{RUN_LABEL}={self.run_id}")
        except Exception:
            # Best effort: the engine may be the thing that failed.
            pass

    def close(self) -> None:
        """Close every session still open, remove leftovers of the run, close the connections."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sessions = list(self._sessions.values())
        self._heartbeat.stop()
        atexit.unregister(self.close)
        for session in sessions:
            try:
                session.close()
            except ExecutionError:
                pass
        if self._pool is not None:
            self._pool.drain()
        for engine in self._engines:
            if engine.connected:
                self._sweep(engine)
                engine.close()
        if self._exchanges is not None:
            shutil.rmtree(self._exchanges, ignore_errors=True)


@hookimpl
def dagpar_make_executor(session: RunContext) -> DockerExecutor | None:
    """The docker executor when the run asks for it (``--executor docker`` or ``executor:``)."""
    if session.executor_name != "docker":
        return None
    return DockerExecutor(configured_engines(session), run_id=session.run_id, warm=True)
