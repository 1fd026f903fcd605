"""The environment of a command in a container: the toolchain's variables, not the caller's.

A runner plugin does not know where its command will run. The pytest runner puts its selection
plugin on ``PYTHONPATH`` and appends the caller's ``PYTHONPATH`` to it, since the local executor
would otherwise lose the caller's entries (a request's variables replace the inherited ones).
In a container those entries are host paths that the caller never meant to pass on, and they
may even name unrelated code inside the image, so :func:`container_env` cuts them off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["container_env"]


def container_env(*layers: Mapping[str, str]) -> dict[str, str]:
    """The variables of a command in a container: *layers* merged, later ones winning, without
    the caller's ``PYTHONPATH`` appended to a ``PYTHONPATH`` they set.

    :param layers: the session's variables, then the request's.
    """
    env: dict[str, str] = {}
    for layer in layers:
        env.update(layer)
    caller = os.environ.get("PYTHONPATH")
    value = env.get("PYTHONPATH")
    if caller and value is not None and value.endswith(os.pathsep + caller):
        env["PYTHONPATH"] = value[: -len(os.pathsep + caller)]
    return env
