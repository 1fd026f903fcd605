"""The runner-host contract, and a host that runs a runner's helper commands here.

A runner plugin lists tests by running commands (``pytest --collect-only``, ``go test -list``)
through a :class:`RunnerHost`, so that the listing runs where the slices will run.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from dagpar_cli.execution.api import Outcome
from dagpar_cli.runner_api import RunnerHost as RunnerHost

__all__ = ["LocalRunnerHost", "RunnerHost"]


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
