"""The timing store's layout on disk: compact per key, the same samples as before, and a store
written by the previous version read and migrated."""

from __future__ import annotations

import random
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from timing_runs import record_runs  # type: ignore[import-not-found]

from dagpar_cli.model import TestCase
from dagpar_cli.timings import (
    DB_NAME,
    EXPORT_FORMAT,
    STATE_DIR,
    StartupModel,
    TimingStore,
    robust_estimate,
)

#: The layout of the first version of the store: one row per sample.
_V1_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE samples (
    instance TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, run_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL, seconds REAL NOT NULL, recorded REAL NOT NULL,
    UNIQUE (instance, kind, key, run_id, ordinal)
);
CREATE TABLE estimates (
    instance TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, seconds REAL NOT NULL,
    spread REAL NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (instance, kind, key)
) WITHOUT ROWID;
INSERT INTO meta VALUES ('schema', '1');
"""

Row = tuple[str, str, str, str, int, float, float]


def _reference(batches: list[list[Row]], keep: int) -> list[list[object]]:
    """What the store must hold after merging *batches*, in export order: per sample identity
    the smaller seconds and recorded win; per key the last *keep* by (recorded, run, ordinal)."""
    held: dict[tuple[str, str, str, str, int], tuple[float, float]] = {}
    for batch in batches:
        for instance, kind, key, run_id, ordinal, seconds, recorded in batch:
            ident = (instance, kind, key, run_id, ordinal)
            old = held.get(ident)
            held[ident] = (
                (seconds, recorded)
                if old is None
                else (min(old[0], seconds), min(old[1], recorded))
            )
        # A batch is merged whole, then each key it touched keeps its last samples.
        for where in {row[:3] for row in batch}:
            per_key = sorted(
                ((r, i[3], i[4]) for i, (_, r) in held.items() if i[:3] == where), reverse=True
            )
            for _, run, number in per_key[keep:]:
                del held[(*where, run, number)]
    return [
        [i[0], i[1], i[2], i[3], i[4], s, r]
        for i, (s, r) in sorted(held.items(), key=lambda e: (*e[0][:3], e[1][1], *e[0][3:]))
    ]


def _random_batches(seed: int) -> list[list[Row]]:
    """Runs and merges with everything that can happen: repeats, ties, late arrivals."""
    rng = random.Random(seed)
    keys = [("api", "test", f"a/test_{k}.py::t") for k in range(2)]
    keys += [("api", "item", "a/test_0.py")]
    keys += [("pytest", "startup", "local"), ("api", "setup", "a/pkg")]
    batches = []
    for _ in range(25):
        run_id = f"run-{rng.randrange(12):02d}"  # run ids come back: merges of old exports
        recorded = float(rng.choice([100, 200, 200, 300]) + rng.randrange(3))
        batch = []
        for instance, kind, key in rng.sample(keys, rng.randrange(1, len(keys))):
            for ordinal in range(rng.choice([1, 1, 2])):
                seconds = float(rng.randrange(1, 40)) / 4
                batch.append((instance, kind, key, run_id, ordinal, seconds, recorded))
        batches.append(batch)
    return batches


@pytest.mark.parametrize("seed", range(6))
def test_the_store_keeps_exactly_the_samples_it_always_kept(tmp_path: Path, seed: int) -> None:
    batches = _random_batches(seed)
    with TimingStore.open(tmp_path, keep=5) as store:
        for batch in batches:
            store.merge_json(
                {"format": EXPORT_FORMAT, "version": 1, "samples": [list(r) for r in batch]}
            )
        exported = store.export_json()["samples"]
        assert exported == _reference(batches, 5)
        tests = [TestCase(f"a/test_{k}.py", "t") for k in range(2)]
        expected = {}
        for test in tests:
            kept = [s[5] for s in exported if s[2] == test.id]
            if kept:
                expected[test.id] = robust_estimate(kept)[0]
        predicted = store.predict_tests("api", tests)
        assert {k: predicted[k] for k in expected} == expected
    # Every key's estimate and spread, as robust_estimate has them.
    kept_by_key: dict[tuple[str, str, str], list[float]] = {}
    for sample in exported:
        kept_by_key.setdefault((sample[0], sample[1], sample[2]), []).append(sample[5])
    with closing(sqlite3.connect(tmp_path / STATE_DIR / DB_NAME)) as conn:
        estimates = {
            (instance, kind, key): (seconds, spread, count)
            for instance, kind, key, seconds, spread, count in conn.execute(
                "SELECT instance, kind, key, seconds, spread, count FROM history"
            )
        }
    assert estimates == {
        where: (*robust_estimate(kept), len(kept)) for where, kept in kept_by_key.items()
    }


def _v1_store(workspace: Path, rows: list[Row]) -> Path:
    state = workspace / STATE_DIR
    state.mkdir(parents=True)
    path = state / DB_NAME
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(_V1_SCHEMA)
        conn.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        estimates: dict[tuple[str, str, str], list[float]] = {}
        for row in rows:
            estimates.setdefault(row[:3], []).append(row[5])
        conn.executemany(
            "INSERT INTO estimates VALUES (?, ?, ?, ?, ?, ?)",
            [(*k, *robust_estimate(v), len(v)) for k, v in estimates.items()],
        )
        conn.commit()
    return path


def test_a_store_written_by_the_previous_version_is_read_and_migrated(tmp_path: Path) -> None:
    rows: list[Row] = [
        ("api", "test", "api/test_a.py::t", f"old-{n}", 0, 1.0 + n, 1000.0 + n) for n in range(5)
    ]
    rows += [
        ("api", "item", "api/test_a.py", "old-0", 0, 7.5, 1000.0),
        ("api", "test", "api/test_b.py::t", "old-1", 0, 2.0, 1001.0),
        ("api", "test", "api/test_b.py::t", "old-1", 1, 3.0, 1001.0),
        ("pytest", "startup", "local", "old-1", 0, 0.75, 1001.0),
        ("api", "setup", "api/pkg", "old-2", 0, 0.5, 1002.0),
    ]
    path = _v1_store(tmp_path, rows)
    with TimingStore.open(tmp_path) as store:
        assert store.export_json()["samples"] == [list(r) for r in sorted(rows)]
        tests = [TestCase("api/test_a.py", "t"), TestCase("api/test_b.py", "t")]
        assert store.predict_tests("api", tests) == {
            "api/test_a.py::t": 3.0,
            "api/test_b.py::t": 2.5,
        }
        assert store.startup_seconds("pytest", "local") == 0.75
        assert store.setup_seconds("api") == {"api/pkg": 0.5}
        record_runs(store, "api:test", [{"api/test_a.py::t": 100.0}] * 6)
        assert store.predict_tests("api", tests[:1]) == {"api/test_a.py::t": 100.0}
    with closing(sqlite3.connect(path)) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "samples" not in tables  # migrated, not kept alongside
    with TimingStore.open(tmp_path) as store:  # and the migrated store opens as it is
        kinds = [(s[1], s[2]) for s in store.export_json()["samples"]]
        # 5 + 6 test samples (the last 10 kept), 1 + 6 file totals and start-ups, the 6 new
        # start-ups' slice sizes, the rest.
        assert len(kinds) == 10 + 7 + 7 + 6 + 2 + 1


def test_the_store_stays_compact(tmp_path: Path) -> None:
    """Ten runs of many keys cost a few hundred bytes per key, not a row and an index entry
    per sample."""
    keys = 2000
    with TimingStore.open(tmp_path) as store:
        durations = [{f"api/test_{k:04d}.py::t": 0.1 * n for k in range(keys)} for n in range(12)]
        record_runs(store, "api:test", durations)
        # test, file, and each start-up with its slice's size
        assert len(store.export_json()["samples"]) == keys * 2 * 10 + 10 + 10
    size = (tmp_path / STATE_DIR / DB_NAME).stat().st_size
    assert size / (keys * 2) < 400


def test_runs_no_kept_sample_names_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagpar_cli.timings import packed

    monkeypatch.setattr(packed, "RUNS_KEPT", 5)
    with TimingStore.open(tmp_path, keep=2) as store:
        record_runs(store, "api:test", [{"api/test_a.py::t": float(n)} for n in range(12)])
        store.merge_json(
            {
                "format": EXPORT_FORMAT,
                "version": 1,
                "samples": [["api", "test", "api/test_b.py::t", "old", 0, 3.0, 1.0]],
            }
        )
        record_runs(store, "api:test", [{"api/test_a.py::t": 20.0}], prefix="last")
        kept = store.export_json()["samples"]
        assert [(s[2], s[3], s[5]) for s in kept if s[1] == "test"] == [
            ("api/test_a.py::t", "run-011", 11.0),
            ("api/test_a.py::t", "last-000", 20.0),
            ("api/test_b.py::t", "old", 3.0),
        ]
    with closing(sqlite3.connect(tmp_path / STATE_DIR / DB_NAME)) as conn:
        (runs,) = conn.execute("SELECT count(*) FROM runs").fetchone()
    assert runs <= 5 + 1


#: A store the previous dagpar wrote (12 runs of a pytest instance with a Go-like package's
#: setup, a custom instance, a merged export), and what that dagpar read from it.
V1 = Path(__file__).resolve().parents[2] / "data" / "timings-v1"


@pytest.mark.parametrize("batch", [50_000, 7], ids=["one-batch", "batches-of-keys"])
def test_a_store_the_previous_dagpar_wrote_reads_as_it_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    import json
    import shutil

    from dagpar_cli.model import Item
    from dagpar_cli.timings import store as store_module

    monkeypatch.setattr(store_module, "_MIGRATE_BATCH", batch)
    (tmp_path / STATE_DIR).mkdir()
    shutil.copy(V1 / "timings.sqlite", tmp_path / STATE_DIR / DB_NAME)
    expected = json.loads((V1 / "expected.json").read_text())
    with TimingStore.open(tmp_path) as store:
        tests = [TestCase(f"api/test_{k}.py", f"t{j}") for k in range(4) for j in range(3)]
        tests.append(TestCase("api/pkg", "TestA"))
        items = [Item((f"api/test_{k}.py",), f"api/test_{k}.py") for k in range(4)]
        prediction = store.predict_detailed("api", items, {})
        assert store.export_json() == expected["export"]
        assert store.predict_tests("api", tests) == expected["predict_tests"]
        assert prediction.seconds == expected["predict_items"]
        assert prediction.spread == expected["spread"]
        assert store.startup_seconds("pytest", "local") == expected["startup"]
        assert store.startup_seconds("custom", "local") == expected["custom_startup"]
        assert store.setup_seconds("api") == expected["setup"]
        shown = [[r.instance, r.key, r.seconds, r.samples, r.tests] for r in store.show(None, 50)]
        assert shown == expected["show"]


def test_start_ups_an_earlier_dagpar_kept_are_a_fixed_start_up(tmp_path: Path) -> None:
    # Its slices' sizes were not kept: the model falls back to the median, as it planned then.
    rows: list[Row] = [
        ("pytest", "startup", "local", run, 0, seconds, 1000.0 + n)
        for n, (run, seconds) in enumerate([("a", 0.5), ("b", 0.7), ("c", 0.9)])
    ]
    _v1_store(tmp_path, rows)
    with TimingStore.open(tmp_path) as store:
        assert store.startup_model("pytest", "local", 0.3) == StartupModel(0.7)
