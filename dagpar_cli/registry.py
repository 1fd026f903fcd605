"""What plugins register by name: built-in toolchains and runners.

Plugins fill both registries from hooks (``dagpar_register_toolchains``,
``dagpar_register_runners``), once per run; the core then looks a toolchain or runner up by the
name a ``dagpar.yaml`` or a toolchain uses, instead of asking every plugin whether the name is
its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from dagpar_cli._hook_runner import RUNNER_HOOKS, HookRunner
from dagpar_cli.errors import ExecutionError, ToolchainError
from dagpar_cli.runner_api import Runner

if TYPE_CHECKING:
    import pluggy

__all__ = [
    "RunnerRegistry",
    "ToolchainRegistry",
    "build_runner_registry",
    "toolchain_registry",
]

# The environment variable that blocks a plugin (see dagpar_cli.pluginmanager.DISABLE_ENV).
_DISABLE_ENV = "DAGPAR_DISABLED_PLUGINS"


class ToolchainRegistry:
    """Maps a built-in toolchain name (``use: NAME``) to the module that defines it."""

    def __init__(self) -> None:
        self._modules: dict[str, str] = {}

    def add(self, name: str, module: str) -> None:
        """Register *module* (an importable name) as toolchain *name*.

        :raises ToolchainError: when *name* is registered twice by different modules.
        """
        known = self._modules.get(name)
        if known is not None and known != module:
            raise ToolchainError(
                f"toolchain {name!r} is registered twice, by {known} and by {module}; "
                f"disable one with {_DISABLE_ENV}"
            )
        self._modules[name] = module

    def get(self, name: str) -> str | None:
        """The module registered as *name*, if any."""
        return self._modules.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._modules))


class RunnerRegistry:
    """The run's runners (:class:`~dagpar_cli.runner_api.Runner` instances), by name.

    The core asks ``registry.get(spec.name)`` and calls that runner alone; a runner declares
    what it can do (:attr:`~dagpar_cli.runner_api.Runner.has_subtests`,
    :meth:`~dagpar_cli.runner_api.Runner.can_hand_over`) rather than the core knowing runners by
    name.

    :param hooks: the plugin manager's hook relay when some plugin still implements the
        deprecated ``dagpar_runner_*`` hooks: a name no registered runner has is then served
        through those hooks, as before runners were registered.
    """

    def __init__(self, hooks: pluggy.HookRelay | None = None) -> None:
        self._runners: dict[str, Runner] = {}
        self._hooks = hooks

    def add(self, runner: Runner) -> None:
        """Register *runner* under its :attr:`~dagpar_cli.runner_api.Runner.name`.

        :raises ToolchainError: when *runner* is not a ``Runner`` with a name, or another
            runner's class already has that name.
        """
        if not isinstance(runner, Runner):
            raise ToolchainError(
                f"register a dagpar_cli.Runner instance, not {runner!r} "
                "(registry.add(MyRunner()), not registry.add(MyRunner))"
            )
        name = getattr(runner, "name", None)
        if not isinstance(name, str) or not name:
            raise ToolchainError(f"runner {type(runner).__qualname__} has no `name`")
        known = self._runners.get(name)
        if known is not None and type(known) is not type(runner):
            raise ToolchainError(
                f"runner {name!r} is registered twice, by {_where(known)} and by "
                f"{_where(runner)}; disable one plugin with {_DISABLE_ENV}"
            )
        self._runners[name] = runner

    def get(self, name: str) -> Runner:
        """The runner registered as *name*.

        :raises ExecutionError: when no plugin provides *name*; the message names the runners
            that are installed.
        """
        runner = self._runners.get(name)
        if runner is not None:
            return runner
        missing = _unknown(name, self.names())
        if self._hooks is not None:
            # The deprecated hooks may answer for it; if none does, the adapter raises *missing*.
            return HookRunner(name, self._hooks, missing=missing)
        raise ExecutionError(missing)

    def names(self) -> list[str]:
        """The registered runner names, sorted."""
        return sorted(self._runners)

    def __contains__(self, name: object) -> bool:
        return name in self._runners

    def __iter__(self) -> Iterator[Runner]:
        return iter([self._runners[n] for n in self.names()])


def _where(runner: Runner) -> str:
    cls = type(runner)
    return f"{cls.__module__}.{cls.__qualname__}"


def _unknown(name: str, known: list[str]) -> str:
    installed = ", ".join(known) if known else "none"
    return (
        f"no runner plugin named {name!r} is installed (installed runners: {installed}); "
        "install the plugin that provides it, or fix the toolchain's runner name"
    )


def build_runner_registry(pm: pluggy.PluginManager) -> RunnerRegistry:
    """Collect every plugin's runners (``dagpar_register_runners``) into a new registry.

    Runners that a plugin still serves only through the deprecated ``dagpar_runner_*`` hooks are
    looked up through those hooks, by the name a toolchain asks for.
    """
    legacy = any(getattr(pm.hook, hook).get_hookimpls() for hook in RUNNER_HOOKS)
    registry = RunnerRegistry(pm.hook if legacy else None)
    pm.hook.dagpar_register_runners(registry=registry)
    return registry


def toolchain_registry(pm: pluggy.PluginManager) -> ToolchainRegistry:
    """Collect every plugin's built-in toolchains (``dagpar_register_toolchains``)."""
    registry = ToolchainRegistry()
    pm.hook.dagpar_register_toolchains(registry=registry)
    return registry
