"""The timing store as a plugin: every finished run that was not a dry run is recorded.

A sharded run (``--shard I/N``) leaves the store it planned from alone and writes its samples to
``.dagpar/timings-shard-I-of-N.json`` instead, for ``dagpar timings merge``.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from dagpar_cli._fs import write_atomic
from dagpar_cli.model import RunResult
from dagpar_cli.plugin import hookimpl
from dagpar_cli.statedir import state_dir
from dagpar_cli.timings.store import DB_NAME, TimingStore

if TYPE_CHECKING:
    from dagpar_cli.run_context import RunContext

__all__ = ["dagpar_report", "shard_export", "shard_file"]


@hookimpl
def dagpar_report(run: RunResult, session: RunContext) -> None:
    """Record a finished run into the session's timing store (not for dry runs).

    :param run: the merged result.
    :param session: the run's session; :attr:`~dagpar_cli.run_context.RunContext.runner_of` names
        each instance's runner.
    """
    store = session.timings
    if store is None or session.options.dry_run:
        return
    runner_of = session.runner_of
    try:
        if run.shard is not None:
            shard_export(run, session, runner_of)
            return
        store.record(
            run, runner_of=runner_of, executor=session.executor_name, run_id=session.run_id
        )
    except (sqlite3.Error, UnicodeError, OSError) as exc:
        # A store that cannot be written (read-only checkout, full disk) costs one line only.
        reason = " ".join(str(exc).split())
        print(f"dagpar: warning: could not update the timing store: {reason}", file=sys.stderr)


def shard_file(workspace: Path, shard: tuple[int, int]) -> Path:
    """Where a sharded run leaves its new samples: ``.dagpar/timings-shard-I-of-N.json``."""
    return state_dir(workspace) / f"timings-shard-{shard[0]}-of-{shard[1]}.json"


def shard_export(run: RunResult, session: RunContext, runner_of: Mapping[str, str]) -> Path:
    """Write a sharded run's samples to its own export file instead of the store.

    Every CI node must plan from the *same* store, so a node never changes the store it planned
    from (nodes that share a workspace, one after another, would otherwise plan differently);
    ``dagpar timings merge .dagpar/timings-shard-*.json`` folds the nodes' files in afterwards.

    :returns: the file written.
    """
    assert run.shard is not None
    target = shard_file(session.config.workspace, run.shard)
    with (
        tempfile.TemporaryDirectory(prefix="dagpar-shard-") as scratch,
        TimingStore(Path(scratch) / DB_NAME) as scratch_store,
    ):
        scratch_store.record(
            run, runner_of=runner_of, executor=session.executor_name, run_id=session.run_id
        )
        data = scratch_store.export_json()
    if target.exists():
        # A retried job: keep what the earlier attempt recorded too (merging is idempotent).
        with (
            tempfile.TemporaryDirectory(prefix="dagpar-shard-") as scratch,
            TimingStore(Path(scratch) / DB_NAME) as both,
        ):
            try:
                both.merge_json(json.loads(target.read_text(encoding="utf-8")))
            except (ValueError, TypeError, OSError):
                pass  # an unreadable earlier file is replaced by this run's samples
            both.merge_json(data)
            data = both.export_json()
    write_atomic(target, json.dumps(data, sort_keys=True) + "\n")
    return target
