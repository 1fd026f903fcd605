"""The executor contract: request → session → outcome.

An :class:`Executor` opens one :class:`ExecSession` per slice (a process sandbox for ``local``, a
running container for ``docker``); the session runs :class:`ExecRequest` values and returns
:class:`Outcome` values. Toolchain code never sees this layer: ``dag.container()`` pipelines and the
runner helpers translate into requests against the slice's session.

Paths in a request are *session paths*: for ``local`` they are host paths; for ``docker`` they are
paths inside the container, where each :class:`Mount` appears at its ``target``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from dagpar_cli.errors import TestsFailedError

if TYPE_CHECKING:
    from dagpar_cli.sdk.directory import Directory

__all__ = [
    "ExecFailedError",
    "ExecRequest",
    "ExecSession",
    "Executor",
    "Mount",
    "Outcome",
    "OutputFile",
    "PipelineResult",
    "SessionSpec",
    "shares_mounts",
]


@dataclass(frozen=True, slots=True)
class Mount:
    """A host directory made visible to a session at ``target``."""

    #: Absolute host path.
    source: Path
    #: Absolute path in the session (equal to ``source`` for the local executor).
    target: str
    #: Whether the session may write to it.
    read_only: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSpec:
    """What one slice's session needs, fixed before it starts."""

    #: A label naming the run and slice (``check-name#3``), for logs and container labels.
    label: str
    #: The image (docker executor; the local executor ignores it).
    image: str | None = None
    #: Host directories to make visible.
    mounts: tuple[Mount, ...] = ()
    #: Environment every request in the session gets (``DAGPAR_SLICE``, ``TRACEPARENT``...).
    env: Mapping[str, str] = field(default_factory=dict)
    #: Labels for the session's resources (container labels), beyond dagpar's own.
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A host file that receives a command's standard output as the command writes it.

    *root* is a host directory the command may write to as well (a slice's report directory,
    mounted writable into its container); *name* is a path below it. The executor makes the
    file afresh before the command starts, replacing whatever entry had the name without
    following it (:func:`dagpar_cli.untrusted.create_binary`), and writes to it from the host
    side only: a container never learns the path, nor can a link it planted redirect the bytes.
    """

    #: The directory, on the host (trusted: dagpar made it).
    root: Path
    #: The file's path below *root* (``go-1.json``).
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecRequest:
    """One command to run in a session."""

    #: The command line; ``argv[0]`` is looked up on the session's PATH.
    argv: tuple[str, ...]
    #: Working directory (a session path).
    cwd: str
    #: Environment on top of the session's.
    env: Mapping[str, str] = field(default_factory=dict)
    #: Seconds before the command is killed; None for no limit.
    timeout: float | None = None
    #: Where the command's whole standard output goes as it arrives (a host file, written by
    #: the host side); None keeps it in :attr:`Outcome.stdout` only.
    stdout_file: OutputFile | None = None
    #: Bytes of the start, and as many of the end, of each of standard output and standard
    #: error that the outcome keeps in memory; the middle is dropped and counted
    #: (:attr:`Outcome.stdout_cut`). None keeps everything.
    #: :data:`dagpar_cli.execution.output.KEEP_OUTPUT` is the bound test runs ask for.
    keep_output: int | None = None

    def shell(self) -> str:
        """The command as a copy-pasteable shell line (for logs and error messages)."""
        return shlex.join(self.argv)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a request did."""

    #: The exit status; negative for a signal on POSIX (``-9``), 137 for an OOM-killed container.
    exit_code: int
    #: Captured standard output (decoded as UTF-8 with replacement). Under
    #: :attr:`ExecRequest.keep_output`, its start and end, with a line
    #: ``[... N bytes of output cut ...]`` where the middle was dropped.
    stdout: str = ""
    #: Captured standard error (bounded the same way).
    stderr: str = ""
    #: Wall seconds.
    seconds: float = 0.0
    #: Whether the request was killed for exceeding its timeout.
    timed_out: bool = False
    #: Whether the command could not be started at all (not found, not executable).
    not_started: bool = False
    #: Set when the session was killed (OOM, interrupt): a short cause.
    killed: str = ""
    #: Bytes of standard output dropped from :attr:`stdout` (see
    #: :attr:`ExecRequest.keep_output`); the request's ``stdout_file`` holds them all.
    stdout_cut: int = 0
    #: Bytes of standard error dropped from :attr:`stderr`.
    stderr_cut: int = 0

    @property
    def ok(self) -> bool:
        """Exit status 0."""
        return self.exit_code == 0 and not self.timed_out and not self.not_started


@runtime_checkable
class ExecSession(Protocol):
    """A running sandbox for one slice; use as a context manager (closing it frees everything).

    A session may also set ``shares_mounts = True`` when its mounted host directories are the
    host's own, seen live in both directions (a local process, a bind mount); dagpar reads it
    with a default of False.
    """

    #: Where it runs, for reports (``local``, ``docker@unix:///var/run/docker.sock``).
    where: str

    def run(self, request: ExecRequest) -> Outcome:
        """Run *request* to completion (or timeout) and return what it did.

        Standard output goes to the request's ``stdout_file`` as it arrives, and the outcome
        keeps no more of either output than its ``keep_output`` says.

        Never raises for a failing command; raises :class:`~dagpar_cli.errors.ExecutionError`
        only when the session itself is gone (engine unreachable, container removed) or the
        ``stdout_file`` cannot be made.
        """

    def path(self, host_path: Path) -> str:
        """The session path at which the mounted *host_path* appears."""

    def copy_out(self, session_path: str, host_dir: Path) -> None:
        """Copy the directory *session_path* out of the session into *host_dir* (created)."""

    def close(self) -> None:
        """Stop everything the session started; idempotent, safe from another thread."""

    def __enter__(self) -> ExecSession: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class Executor(Protocol):
    """A place slices run: chosen once per run by the ``dagpar_make_executor`` hook.

    An executor may also set ``shares_mounts = True`` when all its sessions do (see
    :class:`ExecSession`): a running slice can then hand tests it has not started to another
    (``dagpar_runner_hand_over``), and dagpar plans one slice per worker instead of more,
    smaller ones. dagpar reads it with a default of False.
    """

    #: ``local`` or ``docker`` (or a plugin's name).
    name: str

    def capacity(self) -> int:
        """How many sessions may run at once (the planner's worker count)."""

    def open(self, spec: SessionSpec) -> ExecSession:
        """Start a session for one slice.

        :raises ExecutionError: when the image is missing or the engine unreachable, with a
            one-line message naming it.
        """

    def kill_all(self) -> None:
        """Stop every open session now (interrupt); safe from a signal handler's thread."""

    def close(self) -> None:
        """Release the executor (connections, leftover resources)."""


def shares_mounts(place: Executor | ExecSession) -> bool:
    """Whether *place* declares that its mounted host directories are the host's own, live.

    The capability is optional in both Protocols (a plugin's executor may leave it out), so
    this is the one place that reads it, with a default of False.
    """
    return bool(getattr(place, "shares_mounts", False))


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineResult:
    """What running a pipeline produced: one outcome per exec, and copied-out directories."""

    outcomes: tuple[Outcome, ...]
    directories: dict[str, Directory]


class ExecFailedError(TestsFailedError):
    """A ``with_exec`` command exited non-zero (and the pipeline expected success)."""

    def __init__(self, argv: Sequence[str], outcome: Outcome) -> None:
        tail = (outcome.stderr or outcome.stdout).strip().splitlines()[-20:]
        message = f"command failed with exit code {outcome.exit_code}: {' '.join(argv)}"
        super().__init__(message, ["\n".join(tail)] if tail else [])
        self.argv = tuple(argv)
        self.outcome = outcome
