"""Building the plugin manager.

Order matters and follows pluggy's and tox's practice: hook specifications first, then the
blocklist from ``DAGPAR_DISABLED_PLUGINS``, then every ``dagpar`` entry point (the built-in runners
included: they register exactly like a third-party plugin), then dagpar's own core plugins, then
``check_pending`` so that a misspelt hook implementation fails loudly.
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import pluggy
from pluggy import HookImpl, Result

from dagpar_cli import hookspecs
from dagpar_cli.errors import ToolchainError
from dagpar_cli.plugin import PROJECT

# Re-exported for code written before the markers and registries had modules of their own;
# new code imports hookimpl from dagpar_cli (or dagpar_cli.plugin) and the registries from
# dagpar_cli.registry.
from dagpar_cli.plugin import hookimpl as hookimpl
from dagpar_cli.registry import ToolchainRegistry as ToolchainRegistry
from dagpar_cli.registry import toolchain_registry as toolchain_registry

__all__ = ["BUILTIN_PLUGINS", "LIGHT_HOOKS", "get_plugin_manager", "plugin_distributions"]

#: Core plugins registered after the entry points (executors, planner, reporters).
BUILTIN_PLUGINS: tuple[str, ...] = (
    "dagpar_cli.execution.local",
    "dagpar_cli.execution.docker",
    "dagpar_cli.planning.greedy",
    "dagpar_cli.execution.scheduler",
    "dagpar_cli.queue.plugin",
    "dagpar_cli.reporting.junit",
    "dagpar_cli.reporting.html",
    "dagpar_cli.reporting.progress",
    "dagpar_cli.reporting.otel",
    "dagpar_cli.timings",
)

#: Core plugins whose hooks live in a light module of their own, registered under the core
#: plugin's name (so that ``DAGPAR_DISABLED_PLUGINS`` names them as before): the module behind
#: is imported only when a run needs it (the Docker SDK for the docker executor, a report's
#: writer when it is asked for, the OpenTelemetry SDK for a traced run), not on every start.
LIGHT_HOOKS: Mapping[str, str] = {
    "dagpar_cli.execution.docker": "dagpar_cli.execution.docker_plugin",
    "dagpar_cli.reporting.junit": "dagpar_cli.reporting.junit_plugin",
    "dagpar_cli.reporting.html": "dagpar_cli.reporting.html_plugin",
    "dagpar_cli.reporting.otel": "dagpar_cli.reporting.otel_plugin",
}

#: Comma-separated plugin names (entry-point names or module names) that are not loaded.
DISABLE_ENV = "DAGPAR_DISABLED_PLUGINS"
#: Comma-separated ``module`` or ``module:attribute`` plugins to load on top of the entry
#: points (a class is instantiated), like ``PYTEST_PLUGINS``: for trying a plugin out.
PLUGINS_ENV = "DAGPAR_PLUGINS"
#: Set to 1 to print every hook call and its result on stderr.
TRACE_ENV = "DAGPAR_TRACE_PLUGINS"

#: ``Name==Version`` of the distribution of each entry-point plugin, per plugin manager built
#: by :func:`get_plugin_manager` from its own scan of the entry points.
_DISTRIBUTIONS: weakref.WeakKeyDictionary[pluggy.PluginManager, tuple[str, ...]] = (
    weakref.WeakKeyDictionary()
)


def get_plugin_manager(*, extra_plugins: tuple[Any, ...] = ()) -> pluggy.PluginManager:
    """Build the plugin manager with every hook spec, entry-point plugin and core plugin.

    :param extra_plugins: more plugin objects to register (tests use this for fakes).
    """
    import importlib

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in filter(None, (n.strip() for n in os.environ.get(DISABLE_ENV, "").split(","))):
        pm.set_blocked(name)
    _load_entry_points(pm)
    for module_name in BUILTIN_PLUGINS:
        if pm.is_blocked(module_name):
            continue
        module = importlib.import_module(LIGHT_HOOKS.get(module_name, module_name))
        pm.register(module, name=module_name)
    for spec in filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(","))):
        pm.register(_load_plugin(spec), name=spec)
    for plugin in extra_plugins:
        pm.register(plugin)
    pm.check_pending()
    if os.environ.get(TRACE_ENV):
        pm.add_hookcall_monitoring(_trace_before, _trace_after)
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register every ``dagpar`` entry point, as ``load_setuptools_entrypoints`` would.

    The entry points are found by reading the distributions' metadata directly
    (:mod:`dagpar_cli._entry_points`), which saves importing :mod:`importlib.metadata` on every
    start; where the environment's layout needs it, pluggy loads them.
    """
    from dagpar_cli._entry_points import scan

    found = scan(PROJECT)
    if found is None:
        pm.load_setuptools_entrypoints(PROJECT)
        return
    distributions: list[str] = []
    for entry in found:
        if pm.has_plugin(entry.name) or pm.is_blocked(entry.name):
            continue
        pm.register(entry.load(), name=entry.name)
        distributions.append(entry.distribution)
    _DISTRIBUTIONS[pm] = tuple(distributions)


def plugin_distributions(pm: pluggy.PluginManager) -> list[str]:
    """``Name==Version`` of the distribution of each plugin loaded from an entry point."""
    known = _DISTRIBUTIONS.get(pm)
    if known is not None:
        return list(known)
    return [f"{dist.project_name}=={dist.version}" for _, dist in pm.list_plugin_distinfo()]


def _load_plugin(spec: str) -> object:
    """Import ``module`` or ``module:attribute`` from :data:`PLUGINS_ENV`."""
    import importlib

    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        plugin: object = getattr(module, attribute) if attribute else module
    except (ImportError, AttributeError) as exc:
        raise ToolchainError(f"{PLUGINS_ENV}: cannot load {spec!r}: {exc}") from None
    return plugin() if isinstance(plugin, type) else plugin


def _trace_before(hook_name: str, impls: Sequence[HookImpl], kwargs: Mapping[str, Any]) -> None:
    print(f"[dagpar hook] {hook_name}({', '.join(kwargs)})", file=sys.stderr)


def _trace_after(
    outcome: Result[Any], hook_name: str, impls: Sequence[HookImpl], kwargs: Mapping[str, Any]
) -> None:
    result = outcome.get_result() if outcome.exception is None else outcome.exception
    print(f"[dagpar hook] {hook_name} -> {result!r:.200}", file=sys.stderr)
