"""An executor that runs nothing: the executor contract in memory, for tests.

:class:`FakeExecutor` records every :class:`~dagpar_cli.execution.api.ExecRequest` and answers it
with a scripted :class:`~dagpar_cli.execution.api.Outcome`, simulating durations, timeouts and
interrupts without starting a process. Tests reach it through :mod:`dagpar_cli.testing` (the
``fake_executor`` fixture puts one behind an in-process ``dagpar`` run); it is never registered
as a plugin on its own.
"""

from __future__ import annotations

import dataclasses
import posixpath
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from dagpar_cli import hookimpl, untrusted
from dagpar_cli.errors import ExecutionError
from dagpar_cli.execution.api import ExecRequest, Outcome, SessionSpec

if TYPE_CHECKING:
    from dagpar_cli.run_context import RunContext

__all__ = ["FakeCall", "FakeExecutor", "FakeExecutorPlugin", "FakeSession"]

#: How a rule recognises a request: an argv prefix (a string is ``argv[0]``) or a predicate.
Match = str | Sequence[str] | Callable[[ExecRequest], bool]
#: What a rule answers: an outcome, or a function of the request that returns one.
Answer = Outcome | Callable[[ExecRequest], Outcome]


@dataclass(frozen=True, slots=True)
class FakeCall:
    """One request a :class:`FakeSession` ran, and what it answered."""

    #: The request as dagpar made it (argv and cwd in session paths).
    request: ExecRequest
    #: The spec of the session it ran in (label, image, mounts, environment).
    spec: SessionSpec
    #: The outcome returned; ``seconds`` is the simulated duration.
    outcome: Outcome
    #: ``time.monotonic()`` when the request started and when it returned (real time).
    started: float
    ended: float
    #: The thread that ran it (slices run in worker threads).
    thread: str
    #: Its place in the order requests started (0, 1, ...).
    index: int

    @property
    def argv(self) -> tuple[str, ...]:
        """The request's command line."""
        return self.request.argv

    @property
    def env(self) -> dict[str, str]:
        """The environment the command would see on top of the host's: session then request."""
        return {**self.spec.env, **self.request.env}


@dataclass(slots=True)
class _Rule:
    match: Match
    answer: Answer
    seconds: float | None
    times: int | None
    writes: Mapping[str, str | bytes]
    used: int = 0

    def matches(self, request: ExecRequest) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        if callable(self.match):
            return bool(self.match(request))
        prefix = (self.match,) if isinstance(self.match, str) else tuple(self.match)
        return request.argv[: len(prefix)] == prefix


class FakeExecutor:
    """An :class:`~dagpar_cli.execution.api.Executor` that runs nothing: it records every request
    and answers with scripted outcomes.

    Script it with :meth:`on`; the most recently added rule that matches a request answers it, so
    a test can refine a broad rule. A request no rule matches answers "command not found" (dagpar
    reports that as an execution error naming the command), unless *default* says otherwise::

        fake = FakeExecutor(capacity=4)
        fake.on(["go", "list"], Outcome(exit_code=0, stdout="example.com/m\\n"))
        fake.on("sleep", lambda r: Outcome(exit_code=0, seconds=float(r.argv[1])))

    Durations are simulated: an outcome reports the rule's *seconds* (or the answer's own), and
    nothing sleeps unless *time_scale* is set, in which case each command sleeps its simulated
    seconds times *time_scale*, at most *max_sleep* real seconds, so that slices overlap as they
    would and :attr:`max_running` shows how many ran at once. A request whose simulated duration
    exceeds its ``timeout`` comes back timed out; after :meth:`kill_all`, sleeping commands end at
    once as interrupted and new ones are not started.

    By default sessions behave like the ``local`` executor's (``shares_mounts``: session paths are
    host paths). With ``shares_mounts=False`` they behave like containers: each mount appears at
    its ``target`` and :meth:`FakeSession.path` maps host paths to targets.

    :param capacity: how many sessions may run at once; None takes ``-j`` (or ``parallelism:``)
        when dagpar makes the executor through :meth:`plugin`, and 2 otherwise.
    :param name: the executor's name (``Executor.name``).
    :param where: what sessions report as their place (``ExecSession.where``).
    :param shares_mounts: whether sessions see mounted host directories live (see above).
    :param default: the answer to a request no rule matches.
    :param time_scale: real seconds slept per simulated second (0: never sleep).
    :param max_sleep: the most real seconds one command sleeps.
    :param unavailable: when set, :meth:`capacity` and :meth:`open` raise
        :class:`~dagpar_cli.errors.ExecutionError` with this message (an unreachable engine).
    """

    def __init__(
        self,
        *,
        capacity: int | None = None,
        name: str = "fake",
        where: str = "fake",
        shares_mounts: bool = True,
        default: Answer | None = None,
        time_scale: float = 0.0,
        max_sleep: float = 0.5,
        unavailable: str = "",
    ) -> None:
        self.name = name
        self.where = where
        self.shares_mounts = shares_mounts
        self.slots = capacity
        #: ``-j`` (or ``parallelism:``) of the latest run made through :meth:`plugin`.
        self._run_parallelism: int | None = None
        self.default = default
        self.time_scale = time_scale
        self.max_sleep = max_sleep
        self.unavailable = unavailable
        self._calls: list[FakeCall] = []
        self._started = 0
        #: Every session opened, in order.
        self.sessions: list[FakeSession] = []
        #: ``(session path, host directory)`` of every ``copy_out``.
        self.copied: list[tuple[str, Path]] = []
        #: How many requests were running at once, at most.
        self.max_running = 0
        #: How many times dagpar closed the executor (once per run).
        self.closed = 0
        self._killed = threading.Event()
        self._running = 0
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ scripting

    def on(
        self,
        match: Match,
        answer: Answer | None = None,
        *,
        seconds: float | None = None,
        times: int | None = None,
        writes: Mapping[str, str | bytes] | None = None,
    ) -> FakeExecutor:
        """Answer requests that *match* with *answer*; returns the executor, for chaining.

        :param match: an argv prefix (``["go", "test"]``; a string matches ``argv[0]``), or a
            predicate on the :class:`~dagpar_cli.execution.api.ExecRequest`.
        :param answer: the outcome (exit 0 with no output when omitted), or a function of the
            request returning one.
        :param seconds: the simulated duration (else the outcome's own ``seconds``).
        :param times: answer this many requests at most, then let older rules answer.
        :param writes: files the command writes, by session path (relative paths are relative
            to the request's ``cwd``). A file inside a mount lands in the mounted host directory,
            as a real command's would; any other stays in the session, for ``copy_out``.
        """
        rule = _Rule(match, answer or Outcome(exit_code=0), seconds, times, writes or {})
        with self._lock:
            self._rules.append(rule)
        return self

    def reset(self) -> None:
        """Forget every call, session and copy (the rules stay), and clear :meth:`kill_all`."""
        with self._lock:
            self._calls.clear()
            self._started = 0
            self.sessions.clear()
            self.copied.clear()
            self.max_running = 0
            self._killed.clear()

    # ------------------------------------------------------------------ what happened

    @property
    def calls(self) -> list[FakeCall]:
        """Every request that returned, in the order they started."""
        with self._lock:
            return sorted(self._calls, key=lambda c: c.index)

    @property
    def requests(self) -> list[ExecRequest]:
        """Every request run, in the order they started."""
        return [c.request for c in self.calls]

    def argvs(self) -> list[tuple[str, ...]]:
        """Every command line run, in the order they started."""
        return [c.argv for c in self.calls]

    def simulated_wall_seconds(self) -> float:
        """The wall time the commands would have taken: the most simulated seconds any one
        thread spent in them.

        dagpar runs each worker's slices one after another in one thread, so this is the busiest
        worker's share; it compares runs at different ``-j`` without real sleeps. Threads take
        slices as they come free, so give commands a little real duration (*time_scale*) when
        the share of each worker matters.
        """
        busy: dict[str, float] = {}
        for call in self.calls:
            busy[call.thread] = busy.get(call.thread, 0.0) + call.outcome.seconds
        return max(busy.values(), default=0.0)

    @property
    def killed(self) -> bool:
        """Whether :meth:`kill_all` was called."""
        return self._killed.is_set()

    # ------------------------------------------------------------------ the Executor contract

    def capacity(self) -> int:
        """*capacity*, else the latest run's ``-j`` (or ``parallelism:``), else 2."""
        if self.unavailable:
            raise ExecutionError(self.unavailable)
        return self.slots or self._run_parallelism or 2

    def open(self, spec: SessionSpec) -> FakeSession:
        """A new session for *spec*, recorded in :attr:`sessions`."""
        if self.unavailable:
            raise ExecutionError(self.unavailable)
        session = FakeSession(self, spec)
        with self._lock:
            self.sessions.append(session)
        return session

    def kill_all(self) -> None:
        """End every running command now (as interrupted) and start no more."""
        self._killed.set()

    def close(self) -> None:
        """Count the close; the executor stays usable (a test may run dagpar again)."""
        self.closed += 1

    def plugin(self) -> FakeExecutorPlugin:
        """A plugin whose ``dagpar_make_executor`` returns this executor, whatever the name.

        Register it with the plugin manager (``get_plugin_manager(extra_plugins=(p,))``); for the
        in-process ``dagpar_run``, use the ``fake_executor`` fixture instead.
        """
        return FakeExecutorPlugin(self)

    # ------------------------------------------------------------------ used by FakeSession

    def _answer(self, request: ExecRequest) -> tuple[Outcome, Mapping[str, str | bytes]]:
        with self._lock:
            rule = next((r for r in reversed(self._rules) if r.matches(request)), None)
            if rule is not None:
                rule.used += 1
        if rule is None:
            if self.default is None:
                return (
                    Outcome(
                        exit_code=127,
                        stderr=f"{request.argv[0]}: command not found (no FakeExecutor rule "
                        f"matches {request.shell()})",
                        not_started=True,
                    ),
                    {},
                )
            answer: Answer = self.default
            seconds: float | None = None
            writes: Mapping[str, str | bytes] = {}
        else:
            answer, seconds, writes = rule.answer, rule.seconds, rule.writes
        outcome = answer(request) if callable(answer) else answer
        if seconds is not None:
            outcome = dataclasses.replace(outcome, seconds=seconds)
        return outcome, writes

    def _run(self, session: FakeSession, request: ExecRequest) -> Outcome:
        with self._lock:
            started = time.monotonic()
            index = self._started
            self._started += 1
        if session.closed_ or self._killed.is_set():
            outcome = Outcome(exit_code=-9, killed="stopped before it started")
            self._record(session, request, outcome, started, index)
            return outcome
        with self._lock:
            self._running += 1
            self.max_running = max(self.max_running, self._running)
        try:
            outcome, writes = self._answer(request)
            limit = request.timeout
            timed_out = limit is not None and outcome.seconds > limit and not outcome.not_started
            simulated = limit if timed_out and limit is not None else outcome.seconds
            if self.time_scale > 0 and simulated > 0:
                # An Event, not time.sleep: kill_all cuts the nap short.
                self._killed.wait(min(simulated * self.time_scale, self.max_sleep))
            if self._killed.is_set():
                outcome = Outcome(exit_code=-9, killed="interrupted", seconds=simulated)
            elif timed_out:
                outcome = dataclasses.replace(
                    outcome, exit_code=-15, timed_out=True, seconds=simulated
                )
            elif not outcome.not_started:
                session._write(request, writes)
            if request.stdout_file is not None:
                # As a real executor does (at once here): the answer's output lands in the file.
                file = request.stdout_file
                untrusted.write_text(file.root, file.name, outcome.stdout)
        finally:
            with self._lock:
                self._running -= 1
        self._record(session, request, outcome, started, index)
        return outcome

    def _record(
        self,
        session: FakeSession,
        request: ExecRequest,
        outcome: Outcome,
        started: float,
        index: int,
    ) -> None:
        call = FakeCall(
            request=request,
            spec=session.spec,
            outcome=outcome,
            started=started,
            ended=time.monotonic(),
            thread=threading.current_thread().name,
            index=index,
        )
        with self._lock:
            self._calls.append(call)
        session.calls.append(call)


class FakeSession:
    """One session of a :class:`FakeExecutor`; see :class:`~dagpar_cli.execution.api.ExecSession`.

    Files commands wrote outside any mount are kept in :attr:`files` (session path → content).
    """

    def __init__(self, executor: FakeExecutor, spec: SessionSpec) -> None:
        self.executor = executor
        self.spec = spec
        self.where = executor.where
        self.shares_mounts = executor.shares_mounts
        #: The requests this session ran.
        self.calls: list[FakeCall] = []
        #: Files written outside any mount, by session path.
        self.files: dict[str, bytes] = {}
        #: Whether the session was closed.
        self.closed_ = False

    def run(self, request: ExecRequest) -> Outcome:
        """Answer *request* from the executor's rules and record it."""
        return self.executor._run(self, request)

    def path(self, host_path: Path) -> str:
        """The host path itself (``shares_mounts``), else its place under the deepest mount.

        :raises ExecutionError: a container-like session was asked for an unmounted path.
        """
        if self.shares_mounts:
            return str(host_path)
        host = Path(host_path).absolute()
        mounts = [m for m in self.spec.mounts if host.is_relative_to(m.source)]
        if not mounts:
            raise ExecutionError(f"{host} is not mounted in session {self.spec.label}")
        best = max(mounts, key=lambda m: len(m.source.parts))
        rest = host.relative_to(best.source).as_posix()
        return best.target if rest == "." else posixpath.join(best.target, rest)

    def copy_out(self, session_path: str, host_dir: Path) -> None:
        """Copy the directory *session_path* into *host_dir* (created): the mounted host
        directory behind it, if any, then the files commands wrote there outside the mounts.

        :raises FileNotFoundError: nothing exists at *session_path*.
        """
        source = self._host(session_path)
        prefix = session_path.rstrip("/") + "/"
        written = {p: data for p, data in self.files.items() if p.startswith(prefix)}
        if (source is None or not source.is_dir()) and not written:
            raise FileNotFoundError(f"{session_path} is not a directory in {self.spec.label}")
        host_dir.mkdir(parents=True, exist_ok=True)
        if source is not None and source.is_dir():
            shutil.copytree(source, host_dir, dirs_exist_ok=True, symlinks=True)
        for path, data in written.items():
            target = host_dir / path[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        with self.executor._lock:
            self.executor.copied.append((session_path, host_dir))

    def close(self) -> None:
        """Mark the session closed; later requests are not started."""
        self.closed_ = True

    def __enter__(self) -> FakeSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _host(self, session_path: str) -> Path | None:
        """The host path behind *session_path*, when it lies in a mount (or is a host path)."""
        if self.shares_mounts:
            return Path(session_path)
        path = posixpath.normpath(session_path)
        for mount in sorted(self.spec.mounts, key=lambda m: -len(m.target)):
            if path == mount.target or path.startswith(mount.target.rstrip("/") + "/"):
                rest = path[len(mount.target) :].lstrip("/")
                return mount.source / rest if rest else mount.source
        return None

    def _write(self, request: ExecRequest, writes: Mapping[str, str | bytes]) -> None:
        for name, content in writes.items():
            path = posixpath.normpath(posixpath.join(request.cwd, name))
            data = content.encode("utf-8") if isinstance(content, str) else content
            host = self._host(path)
            mounted = host is not None and (
                not self.shares_mounts
                or any(host.is_relative_to(m.source) for m in self.spec.mounts)
            )
            if host is not None and mounted:
                host.parent.mkdir(parents=True, exist_ok=True)
                host.write_bytes(data)
            else:
                self.files[path] = data


class FakeExecutorPlugin:
    """Makes dagpar run on a given :class:`FakeExecutor`."""

    def __init__(self, executor: FakeExecutor | None = None) -> None:
        self.executor = executor

    def current(self) -> FakeExecutor | None:
        """The executor to run on (None: let the other executors answer)."""
        return self.executor

    @hookimpl(tryfirst=True)
    def dagpar_make_executor(self, session: RunContext) -> FakeExecutor | None:
        """The fake executor, for any executor name; without a capacity of its own it takes
        ``-j`` (or ``parallelism:``)."""
        executor = self.current()
        if executor is None:
            return None
        executor._run_parallelism = session.options.parallelism or session.config.parallelism
        return executor
