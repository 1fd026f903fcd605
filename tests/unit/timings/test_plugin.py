"""The timing store's plugin: it records real runs, never dry runs."""

from __future__ import annotations

import dataclasses
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


def test_a_store_that_cannot_be_written_costs_one_warning_line(
    tmp_path: Path, store: TimingStore, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_of("api:test", [([result("api/test_a.py::t", 1.0)], 1.5)])
    store.close()  # every write now fails, as on a full disk
    dagpar_report(run=run, session=session_for(tmp_path, store, dry_run=False))
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("dagpar: warning: could not update the timing store: "), err


def test_a_sharded_run_that_cannot_write_its_export_costs_one_warning_line(
    tmp_path: Path, store: TimingStore, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_of("api:test", [([result("api/test_a.py::t", 1.0)], 1.5)])
    run = dataclasses.replace(run, shard=(1, 2))
    (tmp_path / ".dagpar").mkdir(exist_ok=True)
    (tmp_path / ".dagpar" / "timings-shard-1-of-2.json").mkdir()  # a directory: cannot be written
    dagpar_report(run=run, session=session_for(tmp_path, store, dry_run=False))
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("dagpar: warning: could not update the timing store: "), err
