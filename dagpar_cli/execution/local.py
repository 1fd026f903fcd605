"""The ``local`` executor: each command is a subprocess on this machine.

Every command starts in its own process group (session), so that a timeout, ``--failfast`` or
Ctrl-C kills the runner *and everything it spawned* (xdist workers, Jest workers, ``go test``'s
test binaries): no orphans. What a command started in a session of its own is found by the
token in its environment and killed when the command ends (see :mod:`.reaper`). Mounts are the
host directories themselves.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO

from dagpar_cli.execution.api import ExecRequest, ExecSession, Outcome, SessionSpec
from dagpar_cli.execution.output import CHUNK, BoundedOutput, OutputSink, open_output
from dagpar_cli.execution.reaper import TOKEN_VARIABLE, SubreaperScope, kill_escaped
from dagpar_cli.plugin import hookimpl
from dagpar_cli.run_context import RunContext

__all__ = ["LocalExecutor", "LocalSession"]

#: Seconds between SIGTERM and SIGKILL when a command is stopped.
KILL_GRACE = 2.0


class LocalSession:
    """One slice's commands on this machine; see :class:`~dagpar_cli.execution.api.ExecSession`."""

    where = "local"
    #: The session runs on the host's own files.
    shares_mounts = True

    def __init__(self, executor: LocalExecutor, spec: SessionSpec) -> None:
        self.executor = executor
        self.spec = spec
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._closed = False

    def run(self, request: ExecRequest) -> Outcome:
        """Run *request* as a subprocess in its own process group.

        Its output is read as it comes, by a thread per pipe: standard output into the
        request's ``stdout_file`` and both into bounded memory (:mod:`.output`).
        """
        self.executor._become_subreaper()
        token = uuid.uuid4().hex
        env = {**os.environ, **self.spec.env, **request.env, TOKEN_VARIABLE: token}
        start = time.monotonic()
        with self._lock:
            if self._closed or self.executor.killed.is_set():
                return Outcome(exit_code=-9, killed="stopped before it started")
        sink = open_output(request.stdout_file)
        with self._lock:
            if self._closed or self.executor.killed.is_set():
                _close(sink)
                return Outcome(exit_code=-9, killed="stopped before it started")
            try:
                proc = subprocess.Popen(
                    list(request.argv),
                    cwd=request.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                _close(sink)
                missing = exc.filename if exc.filename != request.cwd else None
                why = f"{missing}: command not found" if missing else str(exc)
                return Outcome(exit_code=127, stderr=why, not_started=True)
            except (PermissionError, NotADirectoryError) as exc:
                _close(sink)
                return Outcome(exit_code=126, stderr=str(exc), not_started=True)
            self._procs.add(proc)
            self.executor._track(proc)
        out = BoundedOutput(request.keep_output)
        err = BoundedOutput(request.keep_output)
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            threading.Thread(target=_pump, args=(proc.stdout, out, sink), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, err, None), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        # When the command ends, what it left behind goes too, at once: a process that holds
        # the command's output pipes open would otherwise keep the pipes from ending.
        ender = threading.Thread(target=_end_of_command, args=(proc, token), daemon=True)
        ender.start()
        timed_out = False
        try:
            proc.wait(timeout=request.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            proc.wait()
        finally:
            with self._lock:
                self._procs.discard(proc)
            self.executor._untrack(proc)
            # The runner may have left children behind in its group; they go with it.
            _kill_group(proc, grace=0)
            ender.join()
            for pump in pumps:
                pump.join()
            _close(sink)
        killed = "interrupted" if self.executor.killed.is_set() else ""
        stderr = err.text()
        if sink is not None and sink.error:
            stderr += f"\ndagpar: {sink.error}\n"
        return Outcome(
            exit_code=proc.returncode,
            stdout=out.text(),
            stderr=stderr,
            seconds=time.monotonic() - start,
            timed_out=timed_out,
            killed=killed,
            stdout_cut=out.cut,
            stderr_cut=err.cut,
        )

    def path(self, host_path: Path) -> str:
        """Host paths are session paths here."""
        return str(host_path)

    def copy_out(self, session_path: str, host_dir: Path) -> None:
        """Copy the directory *session_path* into *host_dir*."""
        source = Path(session_path)
        if not source.is_dir():
            raise FileNotFoundError(f"{session_path} is not a directory")
        shutil.copytree(source, host_dir, dirs_exist_ok=True, symlinks=True)

    def close(self) -> None:
        """Kill whatever still runs; idempotent."""
        with self._lock:
            self._closed = True
            procs = list(self._procs)
        for proc in procs:
            _kill_group(proc)

    def __enter__(self) -> ExecSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LocalExecutor:
    """Runs slices as subprocesses; capacity is ``-j`` or the CPU count."""

    name = "local"
    #: Sessions run on the host's own files (see :attr:`Executor.shares_mounts`).
    shares_mounts = True

    def __init__(self, slots: int | None = None) -> None:
        self.slots = slots
        self.killed = threading.Event()
        self._live: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._subreaper = False

    def capacity(self) -> int:
        """``-j`` when given, else the CPUs this process may use."""
        if self.slots:
            return self.slots
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)

    def open(self, spec: SessionSpec) -> ExecSession:
        """A new session (nothing to start for subprocesses)."""
        return LocalSession(self, spec)

    def kill_all(self) -> None:
        """Kill every running command's process group now."""
        self.killed.set()
        with self._lock:
            procs = list(self._live)
        for proc in procs:
            _kill_group(proc, grace=0.5)

    def close(self) -> None:
        """Stop being a subreaper (when no other executor needs it); idempotent."""
        with self._lock:
            release, self._subreaper = self._subreaper, False
        if release:
            SubreaperScope.release()

    def _become_subreaper(self) -> None:
        """Have orphans of the commands' descendants re-parented to dagpar, not to init, so that
        they can be found and reaped (see :mod:`.reaper`); until :meth:`close`."""
        with self._lock:
            if self._subreaper:
                return
            self._subreaper = True
        SubreaperScope.acquire()

    def _track(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._live.add(proc)

    def _untrack(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._live.discard(proc)


def _pump(pipe: IO[bytes], buffer: BoundedOutput, sink: OutputSink | None) -> None:
    """Read *pipe* to its end into *buffer* (and *sink*), then close it."""
    fd = pipe.fileno()
    try:
        while True:
            data = os.read(fd, CHUNK)
            if not data:
                return
            buffer.feed(data)
            if sink is not None:
                sink.write(data)
    finally:
        pipe.close()


def _close(sink: OutputSink | None) -> None:
    if sink is not None:
        sink.close()


def _end_of_command(proc: subprocess.Popen[bytes], token: str) -> None:
    """Wait for *proc* to end, then kill its group and whatever it left in other sessions."""
    proc.wait()
    _kill_group(proc, grace=0)
    kill_escaped(token, exclude=proc.pid)


def _kill_group(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE) -> None:
    """SIGTERM the process group, then SIGKILL it after *grace* seconds."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = proc.pid  # the leader is gone; its group may live on under the same id
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        if sig is signal.SIGTERM and grace > 0:
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue


@hookimpl(trylast=True)
def dagpar_make_executor(session: RunContext) -> LocalExecutor | None:
    """The local executor, for ``--executor local`` (the default)."""
    if session.executor_name != "local":
        return None
    return LocalExecutor(session.options.parallelism or session.config.parallelism)
