"""Where a runner's helper commands run: on the run's executor, like its slices.

A runner lists its tests (``pytest --collect-only``, ``go list``) through a
:class:`~dagpar_cli.runner_api.RunnerHost`, so that the listing sees what the slices will see:
the same image, the same ``matrix:`` values, the same environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from dagpar_cli.errors import ExecutionError
from dagpar_cli.execution.api import Outcome
from dagpar_cli.runtime.context import current_call
from dagpar_cli.sdk.container import Container
from dagpar_cli.sdk.directory import Directory

if TYPE_CHECKING:
    from dagpar_cli.config.model import ToolchainConfig
    from dagpar_cli.execution.api import PipelineResult
    from dagpar_cli.runner_api import RunnerSpec

__all__ = ["ExecutorRunnerHost"]


class ExecutorRunnerHost:
    """A :class:`~dagpar_cli.runner_api.RunnerHost` that runs listings on the run's executor.

    :param run_container: runs a container pipeline for the run (the orchestrator's
        ``run_container``).
    :param spec: the runner and its source directory.
    :param config: the toolchain's settings, under the ``matrix:`` values the listing is for.
    """

    def __init__(
        self,
        run_container: Callable[..., PipelineResult],
        spec: RunnerSpec,
        config: ToolchainConfig,
    ) -> None:
        self.run_container = run_container
        self.spec = spec
        self.config = config

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """Run *argv* in the source directory; see :meth:`RunnerHost.run`."""
        workspace = self.spec.workspace.resolve()
        container = Container().with_directory(str(workspace), Directory(workspace, ""))
        container = container.with_workdir(str(self.spec.source_dir.resolve()))
        for key, value in (env or {}).items():
            container = container.with_env_variable(key, value)
        container = container.with_exec(list(argv), expect="any")
        try:
            result = self.run_container(container, current_call(), always=True, under=self.config)
        except ExecutionError as exc:
            return Outcome(exit_code=127, stderr=exc.message, not_started=True)
        return result.outcomes[-1]
