"""Toolchain code called outside dagpar: pipelines run on this machine, nothing is split.

A toolchain's own unit tests call its functions directly; ``dag.container()...sync()`` then
still runs its commands (on the local executor), while ``+parallel`` functions run as written
(see :func:`~dagpar_cli.runtime.context.dispatch`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from dagpar_cli.execution.container import PipelineRunner
from dagpar_cli.execution.local import LocalExecutor

if TYPE_CHECKING:
    from dagpar_cli.execution.api import PipelineResult
    from dagpar_cli.runtime.context import CallContext
    from dagpar_cli.sdk.container import Container

__all__ = ["StandaloneRuntime", "standalone_runtime"]


class StandaloneRuntime:
    """Runs pipelines with the local executor, for code that runs outside a dagpar run."""

    def __init__(self) -> None:
        self._runner = PipelineRunner(LocalExecutor(), self.new_dir, lambda: None)

    def new_dir(self, hint: str) -> Path:
        """A fresh temporary directory (left for the operating system to clean)."""
        return Path(tempfile.mkdtemp(prefix=f"dagpar-{hint[:20]}-"))

    def run_container(
        self,
        container: Container,
        call: CallContext | None,
        *,
        copy_out: tuple[str, ...] = (),
        always: bool = False,
    ) -> PipelineResult:
        """Run *container* on this machine."""
        return self._runner.run(container, label="dagpar", labels={}, copy_out=copy_out)


_standalone: StandaloneRuntime | None = None


def standalone_runtime() -> StandaloneRuntime:
    """The one :class:`StandaloneRuntime` of this process."""
    global _standalone
    if _standalone is None:
        _standalone = StandaloneRuntime()
    return _standalone
