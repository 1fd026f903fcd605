"""The HTML report's hook, in a module of its own: :mod:`dagpar_cli.reporting.html` is imported
only for a run given ``--report-html``.

The plugin manager registers this module under the name ``dagpar_cli.reporting.html``, so
``DAGPAR_DISABLED_PLUGINS`` blocks it by that name as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagpar_cli.plugin import hookimpl

if TYPE_CHECKING:
    from dagpar_cli.model import RunResult
    from dagpar_cli.run_context import RunContext

__all__ = ["dagpar_report"]


@hookimpl
def dagpar_report(run: RunResult, session: RunContext) -> None:
    """Write ``--report-html`` when it was given (:func:`dagpar_cli.reporting.html.dagpar_report`).

    :param run: the merged result.
    :param session: the run's session (its options name the file).
    """
    if session.options.report_html is None:
        return
    from dagpar_cli.reporting import html

    html.dagpar_report(run, session)
