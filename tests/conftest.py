"""Shared test configuration: the dagpar pytest plugin and tool-gated markers.

Tests marked ``go``, ``node`` or ``docker`` skip when the tool is absent on a developer's machine;
with ``DAGPAR_REQUIRE_TOOLS=1`` (set by ``.ci/run``) a missing tool fails them instead, so CI never
passes by skipping.
"""

from __future__ import annotations

pytest_plugins = ["dagpar_cli.testing"]
