"""Fake toolchain plugins for the configuration and discovery tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy

from dagpar_cli import hookspecs
from dagpar_cli.errors import ToolchainError
from dagpar_cli.pluginmanager import hookimpl

#: Toolchain names the fake plugin registers; unlike the real ones so they never clash.
FAKE_TOOLCHAINS = {"pytool": "fake_toolchains.pytool", "jsrun": "fake_toolchains.jsrun"}


class FakeToolchains:
    """Registers fake built-in toolchains and answers detection with canned entries."""

    def __init__(self, detected: list[dict[str, Any]] | None = None) -> None:
        self.detected = detected
        self.detect_calls: list[Path] = []

    @hookimpl
    def dagpar_register_toolchains(self, registry: Any) -> None:
        for name, module in FAKE_TOOLCHAINS.items():
            registry.add(name, module)

    @hookimpl
    def dagpar_detect_toolchains(self, workspace: Path) -> list[dict[str, Any]] | None:
        self.detect_calls.append(workspace)
        return self.detected


def bare_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager with dagpar's hook specs and no plugins at all."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def plugin_manager(*plugins: object) -> pluggy.PluginManager:
    """The real plugin manager with *plugins* added; a bare one while built-ins are missing."""
    try:
        from dagpar_cli.pluginmanager import get_plugin_manager

        pm = get_plugin_manager()
    except (ImportError, AttributeError, ToolchainError):
        pm = bare_plugin_manager()
    for plugin in plugins:
        pm.register(plugin)
    return pm
