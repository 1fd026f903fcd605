"""The timing store's plugin: it records real runs, never dry runs."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest
from timing_runs import result, run_of  # type: ignore[import-not-found]

from dagpar_cli.config import Config, RunOptions
from dagpar_cli.model import TestCase
from dagpar_cli.run_context import RunContext
from dagpar_cli.timings import TimingStore, dagpar_report


def session_for(tmp_path: Path, store: TimingStore | None, *, dry_run: bool) -> RunContext:
    config = Config(workspace=tmp_path, file=None, toolchains=())
    session = RunContext(
        config=config,
        options=RunOptions(dry_run=dry_run, executor="docker"),
        pm=pluggy.PluginManager("dagpar"),
        timings=store,
    )
    session.runner_of = {"api": "pytest"}
    return session


def test_the_report_hook_records_real_runs_only(tmp_path: Path, store: TimingStore) -> None:
    run = run_of("api:test", [([result("api/test_a.py::t", 1.0)], 1.5)])
    dagpar_report(run=run, session=session_for(tmp_path, store, dry_run=True))
    assert store.export_json()["samples"] == []
    dagpar_report(run=run, session=session_for(tmp_path, None, dry_run=False))
    dagpar_report(run=run, session=session_for(tmp_path, store, dry_run=False))
    assert store.startup_seconds("pytest", "docker") == pytest.approx(0.5)
    assert store.predict_tests("api", [TestCase("api/test_a.py", "t")]) == {"api/test_a.py::t": 1.0}
