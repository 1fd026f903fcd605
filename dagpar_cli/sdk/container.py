"""``dag.container()``: a small lazy pipeline builder that the active executor runs.

Each ``with_*`` call returns a new :class:`Container`; nothing runs until ``sync()``,
``stdout()``, ``exit_code()`` or ``directory()``. Container paths given to ``with_directory`` are
mapped by the executor: a real mount point for ``docker``, the host directory itself for
``local`` (where arguments, environment values and the working directory that start with a mount
point are rewritten to the host path). Toolchain code never knows which executor runs it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from dagpar_cli.execution.api import ExecFailedError, PipelineResult
from dagpar_cli.runtime.context import run_pipeline

if TYPE_CHECKING:
    from dagpar_cli.sdk.directory import Directory

__all__ = ["Container", "ExecFailedError", "PipelineResult"]


@dataclass(frozen=True, slots=True)
class _Exec:
    argv: tuple[str, ...]
    expect_success: bool
    redirect_stdout: str | None = None
    keep_output: int | None = None


@dataclass(frozen=True, slots=True)
class _DirMount:
    target: str
    directory: Directory
    writable: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    """A lazily built command pipeline (the subset of Dagger's ``Container`` dagpar needs)."""

    image: str | None = None
    mounts: tuple[_DirMount, ...] = ()
    workdir: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    execs: tuple[_Exec, ...] = ()

    def from_(self, address: str) -> Container:
        """Start from *address* (an image; ``image:`` in dagpar.yaml overrides it)."""
        return replace(self, image=address)

    def with_directory(
        self, path: str, directory: Directory, *, writable: bool = False
    ) -> Container:
        """Make *directory* visible at the absolute container *path*.

        :param writable: let commands write to it (the docker executor mounts read-only
            otherwise; the local executor works in the host directory itself either way).
        """
        if not posixpath.isabs(path):
            raise ValueError(f"with_directory needs an absolute path, got {path!r}")
        mount = _DirMount(posixpath.normpath(path), directory, writable)
        kept = tuple(m for m in self.mounts if m.target != mount.target)
        return replace(self, mounts=(*kept, mount))

    with_mounted_directory = with_directory

    def with_workdir(self, path: str) -> Container:
        """Run the following commands in *path*."""
        return replace(self, workdir=path)

    def with_env_variable(self, name: str, value: str) -> Container:
        """Set an environment variable for the following commands."""
        kept = tuple((k, v) for k, v in self.env if k != name)
        return replace(self, env=(*kept, (name, value)))

    def with_exec(
        self,
        args: Sequence[str],
        *,
        expect: str = "success",
        redirect_stdout: str | None = None,
        keep_output: int | None = None,
    ) -> Container:
        """Add a command.

        :param args: the command line (no shell).
        :param expect: ``"success"`` (a non-zero exit fails the pipeline) or ``"any"``.
        :param redirect_stdout: an absolute container path in a writable directory
            (``with_directory(..., writable=True)``) that receives the command's whole standard
            output as it is written; :meth:`stdout` still returns it (bounded by
            *keep_output*).
        :param keep_output: keep only this many bytes of the start and as many of the end of
            each of standard output and standard error in memory (a line says how much was
            cut between); None keeps everything.
        """
        if isinstance(args, str):
            raise TypeError("with_exec takes a list of arguments, not a string")
        if expect not in ("success", "any"):
            raise ValueError("expect must be 'success' or 'any'")
        if redirect_stdout is not None and not posixpath.isabs(redirect_stdout):
            raise ValueError(f"redirect_stdout needs an absolute path, got {redirect_stdout!r}")
        ex = _Exec(tuple(args), expect == "success", redirect_stdout, keep_output)
        return replace(self, execs=(*self.execs, ex))

    def run(self, *, copy_out: Sequence[str] = ()) -> PipelineResult:
        """Run every command now and return what happened (used by the other terminals)."""
        return run_pipeline(self, copy_out=tuple(copy_out))

    def sync(self) -> Container:
        """Run the pipeline; raise :class:`ExecFailedError` if a command failed."""
        self.run()
        return self

    def stdout(self) -> str:
        """Run the pipeline and return the last command's standard output."""
        outcomes = self.run().outcomes
        return outcomes[-1].stdout if outcomes else ""

    def stderr(self) -> str:
        """Run the pipeline and return the last command's standard error."""
        outcomes = self.run().outcomes
        return outcomes[-1].stderr if outcomes else ""

    def exit_code(self) -> int:
        """Run the pipeline and return the last command's exit code."""
        outcomes = self.run().outcomes
        return outcomes[-1].exit_code if outcomes else 0

    def directory(self, path: str) -> Directory:
        """Run the pipeline and return the container directory *path* as a result."""
        return self.run(copy_out=(path,)).directories[path]

    def host_path(self, container_path: str) -> Path | None:
        """The host directory behind *container_path*, when it lies in a mount."""
        for mount in sorted(self.mounts, key=lambda m: len(m.target), reverse=True):
            if container_path == mount.target or container_path.startswith(mount.target + "/"):
                rest = container_path[len(mount.target) :].lstrip("/")
                return mount.directory.host_path / rest if rest else mount.directory.host_path
        return None
