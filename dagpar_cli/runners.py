"""Running a test runner through its plugin: the helpers built-in toolchains call.

A runner-backed toolchain stays a few lines of ordinary toolchain code::

    @object_type(runner="pytest")
    class PytestTests:
        workspace: Directory
        tests: list[list[str]] = field()  # +parallel

        # +parallel
        def test(self) -> None:
            run_tests("pytest", self.workspace, self.tests)

:func:`collect_items` asks the runner plugin for the items of a source tree; :func:`run_tests`
compiles the slice's selection into the runner's command, runs it on the slice's executor, parses
the report and hands per-test results to the engine.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from dagpar_cli.execution.api import Outcome

__all__ = ["LocalRunnerHost", "RunnerHost"]


class RunnerHost(Protocol):
    """Runs a runner's helper commands (listing) where the slices will run."""

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """Run *argv* in the toolchain's source directory and wait for it.

        Never raises for a failing command; a command that cannot start gives an outcome with
        ``not_started`` set and the reason in ``stderr``.
        """


class LocalRunnerHost:
    """A :class:`RunnerHost` that runs commands as host subprocesses in *cwd*."""

    def __init__(self, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.cwd = cwd
        self.env = dict(env or {})

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """Run *argv* in ``self.cwd``; see :meth:`RunnerHost.run`."""
        full_env = {**os.environ, **self.env, **(env or {})}
        start = time.monotonic()
        try:
            proc = subprocess.run(
                list(argv),
                cwd=self.cwd,
                env=full_env,
                capture_output=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            return Outcome(exit_code=127, stderr=str(exc), not_started=True)
        except PermissionError as exc:
            return Outcome(exit_code=126, stderr=str(exc), not_started=True)
        except subprocess.TimeoutExpired as exc:
            return Outcome(
                exit_code=-9,
                stdout=_text(exc.stdout),
                stderr=_text(exc.stderr),
                seconds=time.monotonic() - start,
                timed_out=True,
            )
        return Outcome(
            exit_code=proc.returncode,
            stdout=_text(proc.stdout),
            stderr=_text(proc.stderr),
            seconds=time.monotonic() - start,
        )


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")
