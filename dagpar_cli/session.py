"""Deprecated: the run's context is :class:`dagpar_cli.run_context.RunContext`.

``Session`` was renamed because it read like the executor's sessions (``ExecSession``,
``LocalSession``, ``DockerSession``); the old import keeps working, with a warning, for one
minor version.
"""

from __future__ import annotations

import warnings

from dagpar_cli.run_context import RunContext

__all__: list[str] = []


def __getattr__(name: str) -> type[RunContext]:
    if name == "Session":
        warnings.warn(
            "dagpar_cli.session.Session is deprecated; use dagpar_cli.run_context.RunContext",
            DeprecationWarning,
            stacklevel=2,
        )
        return RunContext
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
