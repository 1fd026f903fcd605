"""The run in progress: configuration, options and the services every stage shares.

Hooks receive it as their ``session`` argument (the name they have always had).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dagpar_cli.registry import RunnerRegistry

if TYPE_CHECKING:
    import pluggy

    from dagpar_cli.config import Config, RunOptions
    from dagpar_cli.timings.store import TimingStore

__all__ = ["RunContext"]


@dataclass(slots=True, kw_only=True)
class RunContext:
    """What one ``dagpar call``/``check`` invocation shares across its stages.

    Hooks receive it; it is not frozen because reporters attach their state to ``stash`` in
    ``dagpar_configure``.
    """

    #: The validated configuration.
    config: Config
    #: The command-line options.
    options: RunOptions
    #: The plugin manager (``session.pm.hook.dagpar_...``).
    pm: pluggy.PluginManager
    #: The runners the plugins registered (``session.runners.get(spec.name).collect(...)``);
    #: built by the pipeline, empty in a session built by hand.
    runners: RunnerRegistry = field(default_factory=RunnerRegistry)
    #: The timing store (opened lazily by the pipeline; None for a dry run without history).
    timings: TimingStore | None = None
    #: A unique id of this run (container labels, trace attributes).
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    #: ``time.monotonic()`` at the start of the run.
    started: float = field(default_factory=time.monotonic)
    #: ``time.time()`` at the start of the run (for wall-clock timestamps in reports).
    started_wall: float = field(default_factory=time.time)
    #: The runner plugin of each toolchain instance the run calls (``pytest``, ``go``,
    #: ``custom`` for a toolchain without one); the timing store keys start-up costs by it.
    runner_of: dict[str, str] = field(default_factory=dict)
    #: Per-plugin state, keyed by the plugin's own name.
    stash: dict[str, object] = field(default_factory=dict)
    #: Whether ``dagpar_sessionfinish`` has fired (:func:`dagpar_cli.pipeline.close_session`
    #: fires it once).
    finished: bool = False

    @property
    def executor_name(self) -> str:
        """The executor in force: ``--executor``, else the configuration's."""
        return self.options.executor or self.config.executor
