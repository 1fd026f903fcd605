"""The docker executor's hook, in a module of its own so that a local run never imports it.

:mod:`dagpar_cli.execution.docker` (with the engines, the warm-container pool and the Docker SDK
behind it) is imported only when a run asks for the docker executor. The plugin manager
registers this module under the name ``dagpar_cli.execution.docker``, so
``DAGPAR_DISABLED_PLUGINS`` blocks it by that name as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagpar_cli.plugin import hookimpl

if TYPE_CHECKING:
    from dagpar_cli.execution.docker import DockerExecutor
    from dagpar_cli.run_context import RunContext

__all__ = ["dagpar_make_executor"]


@hookimpl
def dagpar_make_executor(session: RunContext) -> DockerExecutor | None:
    """The docker executor when the run asks for it (``--executor docker`` or ``executor:``)."""
    if session.executor_name != "docker":
        return None
    from dagpar_cli.execution import docker

    return docker.dagpar_make_executor(session)
