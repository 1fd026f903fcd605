"""Shared test configuration: the dagpar pytest plugin and tool-gated markers.

Tests marked ``go``, ``node`` or ``docker`` skip when the tool is absent on a developer's machine;
with ``DAGPAR_REQUIRE_TOOLS=1`` (set by ``.ci/run``) a missing tool fails them instead, so CI never
passes by skipping. ``dagpar_cli.testing`` checks that the tool is on PATH; this repository's
``node`` tests also need the suite's own Jest install, checked here.
"""

from __future__ import annotations

import pytest
from projects import JEST_DEPS  # type: ignore[import-not-found]
from redis_server import redis_server  # type: ignore[import-not-found]  # noqa: F401

pytest_plugins = ["dagpar_cli.testing"]


def jest_missing() -> str | None:
    """Why the suite's shared Jest install cannot be used, or None."""
    if not (JEST_DEPS / "node_modules" / ".bin" / "jest").exists():
        return f"Jest is not installed: run `npm ci --prefix {JEST_DEPS}`"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``node`` tests run Jest from the suite's install (``tests/data/jest-deps``)."""
    # Imported here: a module-level import would load the plugin before pytest can rewrite
    # its asserts.
    from dagpar_cli.testing import skip_missing_tool

    if item.get_closest_marker("node") is not None:
        reason = jest_missing()
        if reason is not None:
            skip_missing_tool("node", reason)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Docker tests share one engine (and count its containers): they run in the serial phase."""
    for item in items:
        if item.get_closest_marker("docker") is not None:
            item.add_marker(pytest.mark.serial)
