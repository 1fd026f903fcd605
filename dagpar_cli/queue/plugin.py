"""Queue mode as a plugin: ``--queue`` chooses the queue scheduler; the node's end is recorded.

``dagpar_make_scheduler`` is firstresult: this implementation answers only when ``--queue`` is
given (and not for ``--dry-run``, which plans locally and touches no queue).
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dagpar_cli.errors import DagparError
from dagpar_cli.execution.api import shares_mounts
from dagpar_cli.execution.scheduler import NO_HANDOVER_ENV
from dagpar_cli.execution.scheduler.static import StaticScheduler
from dagpar_cli.plugin import hookimpl

if TYPE_CHECKING:
    from dagpar_cli.execution.api import Executor
    from dagpar_cli.execution.scheduler.api import Scheduler
    from dagpar_cli.model import RunResult
    from dagpar_cli.queue.build import QueueBuild
    from dagpar_cli.queue.scheduler import QueueScheduler
    from dagpar_cli.run_context import RunContext

__all__ = ["STASH_KEY", "QueueNode", "dagpar_make_scheduler", "finish_node"]

#: Where the session keeps this node's :class:`QueueNode`.
STASH_KEY = "dagpar.queue"


@dataclass(slots=True)
class QueueNode:
    """This node's part in a queue build."""

    build: QueueBuild
    scheduler: QueueScheduler
    #: The exit code this worker name ended with in the build before (a retried job).
    earlier: int | None


@hookimpl(tryfirst=True)
def dagpar_make_scheduler(
    session: RunContext, executor: Executor, workers: int
) -> Scheduler | None:
    """The queue scheduler under ``--queue``; None otherwise (the default strategies answer).

    :raises QueueError: the queue's Redis cannot be reached (exit 4, before anything runs).
    """
    options = session.options.queue
    if options is None or session.options.dry_run:
        return None
    # Imported here: a run without --queue never loads the queue's client, build or scheduler.
    from dagpar_cli.queue.build import QueueBuild
    from dagpar_cli.queue.client import connect
    from dagpar_cli.queue.scheduler import QueueScheduler, QueueTailStealing

    build = QueueBuild(connect(options.url), options)
    starved = threading.Event()
    inner: StaticScheduler
    if os.environ.get(NO_HANDOVER_ENV) == "1" or not shares_mounts(executor):
        inner = StaticScheduler(workers)
    else:
        inner = QueueTailStealing(
            workers, hook=session.pm.hook, runners=session.runners, starved=starved
        )
    scheduler = QueueScheduler(workers, build, inner, starved, runner_of=session.runner_of)
    session.stash[STASH_KEY] = QueueNode(build, scheduler, build.earlier_status())
    scheduler.start()
    return scheduler


def finish_node(session: RunContext, run: RunResult | None, code: int) -> int:
    """This node's exit code in a queue build, recorded for a retried job.

    A node that ran no unit of a build whose earlier attempt under the same ``--worker`` name
    ended with a status ends with that status again (the build was drained before it came).
    """
    node = session.stash.get(STASH_KEY)
    if not isinstance(node, QueueNode):
        return code
    options = node.build.options
    drained = node.scheduler.ran_units == 0 and not options.retry_failed
    if drained and node.earlier is not None and code == 0:
        print(
            f"dagpar: queue build {options.build!r} had no work left for {options.worker}; "
            f"its earlier status was {node.earlier}",
            file=sys.stderr,
        )
        return node.earlier
    try:
        node.build.record_status(code)
    except DagparError as exc:
        if code == 0:
            print(f"dagpar: error: {exc.message}", file=sys.stderr)
            return int(exc.exit_code)
    return code
