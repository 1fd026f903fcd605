"""The OpenTelemetry reporter's hook, in a module of its own so that the SDK loads only for runs.

:mod:`dagpar_cli.reporting.otel` (and the OpenTelemetry SDK under it) is imported when a run is
configured, not for ``dagpar --version``, ``--help``, ``functions`` or ``timings``; and never
with ``OTEL_SDK_DISABLED=true`` or for ``--list``, where nothing is traced. The plugin manager
registers this module under the name ``dagpar_cli.reporting.otel``, so
``DAGPAR_DISABLED_PLUGINS`` blocks it by that name as before.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dagpar_cli.plugin import hookimpl

if TYPE_CHECKING:
    from dagpar_cli.run_context import RunContext

__all__ = ["dagpar_configure"]


@hookimpl
def dagpar_configure(session: RunContext) -> None:
    """Set up tracing for the run (:func:`dagpar_cli.reporting.otel.dagpar_configure`).

    :param session: the run's session.
    """
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() in ("1", "true", "yes", "on")
    if disabled or session.options.list_only:
        return
    from dagpar_cli.reporting import otel

    otel.dagpar_configure(session)
