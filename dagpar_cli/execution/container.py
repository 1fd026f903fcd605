"""Running a ``dag.container()`` pipeline on an executor.

A :class:`~dagpar_cli.sdk.container.Container` is a description: an image, mounts, a working
directory, environment and commands. :class:`PipelineRunner` opens one executor session for it,
maps container paths to session paths (the local executor has no mount points: a path under a
mount becomes the host path), runs the commands in order and turns what cannot be a test
failure (a command that cannot start, a timeout, a kill) into one
:class:`~dagpar_cli.errors.ExecutionError` line. A command's ``redirect_stdout`` becomes the
host file of a writable mount that the executor writes as the output arrives
(:func:`output_file`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dagpar_cli.errors import ExecutionError
from dagpar_cli.execution.api import (
    ExecFailedError,
    ExecRequest,
    ExecSession,
    Executor,
    Mount,
    Outcome,
    OutputFile,
    PipelineResult,
    SessionSpec,
    shares_mounts,
)
from dagpar_cli.sdk.directory import Directory

if TYPE_CHECKING:
    from dagpar_cli.runtime.context import SliceContext
    from dagpar_cli.sdk.container import Container

__all__ = ["PipelineRunner", "output_file", "raise_for_infrastructure"]


class PipelineRunner:
    """Runs pipelines on one executor.

    :param executor: where the commands run.
    :param new_dir: makes a fresh host directory (for copied-out results).
    :param cancelled: the reason the run was cancelled (``interrupted``, ``--failfast``), or
        None while it goes on.
    """

    def __init__(
        self,
        executor: Executor,
        new_dir: Callable[[str], Path],
        cancelled: Callable[[], str | None],
    ) -> None:
        self.executor = executor
        self._new_dir = new_dir
        self._cancelled = cancelled

    def run(
        self,
        container: Container,
        *,
        label: str,
        labels: Mapping[str, str],
        slice: SliceContext | None = None,
        copy_out: Sequence[str] = (),
    ) -> PipelineResult:
        """Run *container*'s commands in a fresh session.

        :param label: names the session in errors and container names.
        :param slice: the slice the pipeline belongs to: its environment and deadline apply,
            and it learns where it ran.
        :raises ExecFailedError: a command expected to succeed exited non-zero.
        :raises ExecutionError: a command could not start, timed out or was killed.
        """
        self._check_cancelled()
        mounts = tuple(
            Mount(
                source=m.directory.host_path.resolve(),
                target=m.target,
                read_only=not m.writable,
            )
            for m in container.mounts
        )
        env = dict(slice.env) if slice is not None else {}
        env.update(dict(container.env))
        spec = SessionSpec(
            label=label, image=container.image, mounts=mounts, env=env, labels=dict(labels)
        )
        outcomes: list[Outcome] = []
        directories: dict[str, Directory] = {}
        with self.executor.open(spec) as session:
            if slice is not None:
                if session.where not in slice.wheres:
                    slice.wheres.append(session.where)
                slice.shares_mounts = shares_mounts(session)
            translate = translator(session, mounts)
            workdir = container.workdir or (mounts[0].target if mounts else "/")
            cwd = translate(workdir)
            for ex in container.execs:
                self._check_cancelled()
                timeout = slice.remaining() if slice is not None else None
                request = ExecRequest(
                    argv=tuple(translate(a) for a in ex.argv),
                    cwd=cwd,
                    timeout=timeout,
                    stdout_file=output_file(mounts, ex.redirect_stdout),
                    keep_output=ex.keep_output,
                )
                outcome = session.run(request)
                outcomes.append(outcome)
                raise_for_infrastructure(request, outcome, self._cancelled())
                if ex.expect_success and outcome.exit_code != 0:
                    raise ExecFailedError(ex.argv, outcome)
            for path in copy_out:
                dest = self._new_dir(f"out-{label}")
                session.copy_out(translate(path), dest)
                directories[path] = Directory(dest)
        return PipelineResult(outcomes=tuple(outcomes), directories=directories)

    def _check_cancelled(self) -> None:
        reason = self._cancelled()
        if reason is not None:
            raise ExecutionError(reason or "cancelled")


def raise_for_infrastructure(request: ExecRequest, outcome: Outcome, cancelled: str | None) -> None:
    """Raise :class:`ExecutionError` when *outcome* says the command did not really run.

    :param cancelled: why the run was cancelled, or None.
    """
    if cancelled == "interrupted":
        raise ExecutionError("interrupted")
    if outcome.timed_out:
        raise ExecutionError(
            f"timed out after {request.timeout:.0f}s (--timeout) running: {request.shell()}"
            if request.timeout
            else f"timed out running: {request.shell()}"
        )
    if outcome.killed:
        raise ExecutionError(f"{outcome.killed} running: {request.shell()}")
    if outcome.not_started:
        reason = outcome.stderr.strip().splitlines()[-1] if outcome.stderr.strip() else ""
        raise ExecutionError(
            f"cannot start {request.argv[0]!r}: {reason or 'not found'}; "
            "install it or set `runner:` for the toolchain in dagpar.yaml"
        )
    if outcome.exit_code < 0:
        raise ExecutionError(f"killed by signal {-outcome.exit_code} running: {request.shell()}")


def output_file(mounts: Sequence[Mount], path: str | None) -> OutputFile | None:
    """Where on the host the container path *path* (``with_exec(redirect_stdout=...)``) is.

    The executor writes the file from the host side, so it must lie in a writable mount.

    :raises ExecutionError: when no writable mount holds *path*.
    """
    if path is None:
        return None
    path = posixpath.normpath(path)
    for mount in sorted(mounts, key=lambda m: -len(m.target)):
        target = mount.target.rstrip("/") or "/"
        if path == target or not path.startswith(target.rstrip("/") + "/"):
            continue
        if mount.read_only:
            break
        return OutputFile(root=mount.source, name=path[len(target) :].lstrip("/"))
    raise ExecutionError(
        f"redirect_stdout={path!r} is not in a writable directory of the container; "
        "mount one there with with_directory(..., writable=True)"
    )


def translator(session: ExecSession, mounts: Sequence[Mount]) -> Callable[[str], str]:
    """Map container paths (in arguments, ``--opt=PATH`` values, cwd) to session paths."""
    pairs = sorted(((m.target, session.path(m.source)) for m in mounts), key=lambda p: -len(p[0]))
    if all(target == mapped for target, mapped in pairs):
        return lambda text: text

    def one(text: str) -> str:
        for target, mapped in pairs:
            if text == target:
                return mapped
            if text.startswith(target + "/"):
                return mapped + text[len(target) :]
        return text

    def translate(text: str) -> str:
        if text.startswith("-") and "=" in text:
            flag, _, value = text.partition("=")
            return f"{flag}={one(value)}"
        return one(text)

    return translate
