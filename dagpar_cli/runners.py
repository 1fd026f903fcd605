"""Deprecated: the runner-host contract is :class:`dagpar_cli.RunnerHost`, and the host that
runs a runner's commands here, for a plugin's tests, is :class:`dagpar_cli.testing.LocalRunnerHost`.

The old imports keep working, with a warning, for one minor version.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__: list[str] = []

_MOVED = {
    "RunnerHost": ("dagpar_cli.runner_api", "dagpar_cli.RunnerHost"),
    "LocalRunnerHost": ("dagpar_cli.testing", "dagpar_cli.testing.LocalRunnerHost"),
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, new = _MOVED[name]
    warnings.warn(
        f"dagpar_cli.runners.{name} is deprecated; use {new}", DeprecationWarning, stacklevel=2
    )
    import importlib

    return getattr(importlib.import_module(module), name)
