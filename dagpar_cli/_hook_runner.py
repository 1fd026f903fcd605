"""The deprecated ``dagpar_runner_*`` hooks, served as a :class:`~dagpar_cli.runner_api.Runner`.

Before runners were registered objects, a runner plugin implemented one ``firstresult`` hook per
step and answered None for runner names that were not its own. A plugin written that way keeps
working for one more minor version: :class:`HookRunner` turns the core's calls on a runner back
into those hooks, and pluggy warns (``DeprecationWarning``) when such a plugin registers. Delete
this module with the hooks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dagpar_cli.errors import ExecutionError
from dagpar_cli.runner_api import Runner

if TYPE_CHECKING:
    import pluggy

    from dagpar_cli.execution.api import Outcome
    from dagpar_cli.model import TestCase, TestResult
    from dagpar_cli.runner_api import (
        RunnerCommand,
        RunnerHost,
        RunnerSpec,
        Selection,
        TailChooser,
    )

__all__ = ["RUNNER_HOOKS", "HookRunner"]

#: The deprecated hooks, each replaced by the :class:`Runner` method named after its last word
#: (``dagpar_runner_hands_over`` by ``can_hand_over``, ``dagpar_runner_hand_over`` by
#: ``hand_over_tail``).
RUNNER_HOOKS = (
    "dagpar_runner_collect",
    "dagpar_runner_installed",
    "dagpar_runner_progress",
    "dagpar_runner_hands_over",
    "dagpar_runner_hand_over",
    "dagpar_runner_command",
    "dagpar_runner_parse",
)


class HookRunner(Runner):
    """A runner that no plugin registered, asked through the deprecated runner hooks.

    Sub-tests were never a capability the hooks could declare, so it has none.

    :param name: the runner name a toolchain asked for.
    :param hooks: the plugin manager's hook relay.
    :param missing: the message of the error raised when no plugin answers for *name*.
    """

    def __init__(self, name: str, hooks: pluggy.HookRelay, *, missing: str) -> None:
        self.name = name
        self._hooks = hooks
        self._missing = missing

    def collect(self, spec: RunnerSpec, host: RunnerHost) -> list[TestCase]:
        """``dagpar_runner_collect``; raises when no plugin knows the runner."""
        listed = self._hooks.dagpar_runner_collect(spec=spec, host=host)
        if listed is None:
            raise ExecutionError(self._missing)
        return list(listed)

    def installed(self, spec: RunnerSpec) -> list[str] | None:
        """``dagpar_runner_installed``."""
        installed: list[str] | None = self._hooks.dagpar_runner_installed(spec=spec)
        return installed

    def progress(self, spec: RunnerSpec, report_dir: Path) -> int | None:
        """``dagpar_runner_progress``."""
        done: int | None = self._hooks.dagpar_runner_progress(spec=spec, report_dir=report_dir)
        return done

    def can_hand_over(self, spec: RunnerSpec) -> bool:
        """``dagpar_runner_hands_over``."""
        return bool(self._hooks.dagpar_runner_hands_over(spec=spec))

    def hand_over_tail(
        self, spec: RunnerSpec, report_dir: Path, choose: TailChooser
    ) -> list[TestCase] | None:
        """``dagpar_runner_hand_over``."""
        taken: list[TestCase] | None = self._hooks.dagpar_runner_hand_over(
            spec=spec, report_dir=report_dir, choose=choose
        )
        return taken

    def command(self, spec: RunnerSpec, selection: Selection) -> list[RunnerCommand]:
        """``dagpar_runner_command``; raises when no plugin knows the runner."""
        commands = self._hooks.dagpar_runner_command(spec=spec, selection=selection)
        if commands is None:
            raise ExecutionError(self._missing)
        return list(commands)

    def parse(self, spec: RunnerSpec, report_dir: Path, outcome: Outcome) -> list[TestResult]:
        """``dagpar_runner_parse`` (no answer: no results)."""
        parsed = self._hooks.dagpar_runner_parse(spec=spec, report_dir=report_dir, outcome=outcome)
        return list(parsed or [])
