"""Scheduling strategies, behind one Protocol (:mod:`.api`), and the default choice between them.

``dagpar_make_scheduler`` (firstresult) picks the run's scheduler; the implementation here runs
last: tail stealing wherever the executor shares the slices' report directories live with
dagpar, unless ``DAGPAR_NO_HANDOVER=1``; the static strategy otherwise.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dagpar_cli.execution.api import shares_mounts
from dagpar_cli.execution.scheduler.api import Scheduler
from dagpar_cli.execution.scheduler.static import StaticScheduler
from dagpar_cli.execution.scheduler.tail_stealing import TailStealingScheduler
from dagpar_cli.plugin import hookimpl

if TYPE_CHECKING:
    from dagpar_cli.execution.api import Executor
    from dagpar_cli.run_context import RunContext

__all__ = ["NO_HANDOVER_ENV", "StaticScheduler", "TailStealingScheduler", "dagpar_make_scheduler"]

#: Set to ``1`` to keep every slice's tests in that slice (no hand-over to idle workers): for a
#: suite whose tests rely on running in the process of the tests before them.
NO_HANDOVER_ENV = "DAGPAR_NO_HANDOVER"


@hookimpl(trylast=True)
def dagpar_make_scheduler(session: RunContext, executor: Executor, workers: int) -> Scheduler:
    """Tail stealing where the executor shares mounts live and it is not turned off; else static.

    :param session: the run's session.
    :param executor: the run's executor.
    :param workers: how many slices run at once.
    """
    if os.environ.get(NO_HANDOVER_ENV) == "1" or not shares_mounts(executor):
        return StaticScheduler(workers)
    return TailStealingScheduler(workers, hook=session.pm.hook, runners=session.runners)
