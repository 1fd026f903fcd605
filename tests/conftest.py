"""Shared test configuration: the dagpar pytest plugin and tool-gated markers.

Tests marked ``go``, ``node`` or ``docker`` skip when the tool is absent on a developer's machine;
with ``DAGPAR_REQUIRE_TOOLS=1`` (set by ``.ci/run``) a missing tool fails them instead, so CI never
passes by skipping.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["dagpar_cli.testing"]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Docker tests share one engine (and count its containers): they run in the serial phase."""
    for item in items:
        if item.get_closest_marker("docker") is not None:
            item.add_marker(pytest.mark.serial)
