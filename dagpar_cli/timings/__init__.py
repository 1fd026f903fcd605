"""The timing store: how long every test and item took, learned run after run.

- :mod:`~dagpar_cli.timings.store`: :class:`TimingStore`, the SQLite history under ``.dagpar/``;
- :mod:`~dagpar_cli.timings.packed`: its rows, one per key with the key's samples packed;
- :mod:`~dagpar_cli.timings.predict`: estimates and predictions from that history;
- :mod:`~dagpar_cli.timings.startup`: a slice's overhead, fixed and per test, from its samples;
- :mod:`~dagpar_cli.timings.transfer`: samples from runs and JUnit XML, and the JSON exports that
  ``dagpar timings export``/``merge`` move between CI nodes;
- :mod:`~dagpar_cli.timings.plugin`: the ``dagpar_report`` hook that records every real run.

This package is registered as a core plugin under its own name (``dagpar_cli.timings``, the name
``DAGPAR_DISABLED_PLUGINS`` blocks), so it re-exports the plugin's hook with the public names.
"""

from __future__ import annotations

from dagpar_cli.statedir import STATE_DIR, state_dir
from dagpar_cli.timings.plugin import dagpar_report, shard_export, shard_file
from dagpar_cli.timings.predict import (
    DEFAULT_ITEM_SECONDS,
    DEFAULT_TEST_SECONDS,
    Prediction,
    robust_estimate,
)
from dagpar_cli.timings.startup import StartupModel, fit_startup
from dagpar_cli.timings.store import (
    BUSY_SECONDS,
    DB_NAME,
    KEEP,
    TimingRow,
    TimingStore,
    TimingStoreWarning,
)
from dagpar_cli.timings.transfer import (
    EXPORT_FORMAT,
    ITEM,
    SCHEMA_VERSION,
    STARTUP,
    TEST,
    TimingsFormatError,
)

__all__ = [
    "BUSY_SECONDS",
    "DB_NAME",
    "DEFAULT_ITEM_SECONDS",
    "DEFAULT_TEST_SECONDS",
    "EXPORT_FORMAT",
    "ITEM",
    "KEEP",
    "SCHEMA_VERSION",
    "STARTUP",
    "STATE_DIR",
    "TEST",
    "Prediction",
    "StartupModel",
    "TimingRow",
    "TimingStore",
    "TimingStoreWarning",
    "TimingsFormatError",
    "dagpar_report",
    "fit_startup",
    "robust_estimate",
    "shard_export",
    "shard_file",
    "state_dir",
]
