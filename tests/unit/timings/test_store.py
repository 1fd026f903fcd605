"""The timing store against a real SQLite file: estimates, siblings, concurrency, recovery."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from timing_runs import record_runs, result, run_of  # type: ignore[import-not-found]

from dagpar_cli.model import Item, Status, TestCase
from dagpar_cli.timings import DB_NAME, STATE_DIR, TimingStore, TimingStoreWarning


def test_state_directory_is_ignored_and_tagged_and_uses_wal(tmp_path: Path) -> None:
    with TimingStore.open(tmp_path):
        pass
    state = tmp_path / STATE_DIR
    assert (state / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (
        (state / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )
    conn = sqlite3.connect(state / DB_NAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_estimate_is_the_median_and_ignores_one_slow_outlier(store: TimingStore) -> None:
    runs = [{"api/test_a.py::test_x": 1.0 + 0.01 * i} for i in range(9)]
    runs.insert(4, {"api/test_a.py::test_x": 40.0})
    record_runs(store, "api:test", runs)
    estimate = store.predict_tests("api", [TestCase("api/test_a.py", "test_x")])
    assert estimate["api/test_a.py::test_x"] == pytest.approx(1.045, abs=0.01)


def test_only_the_last_samples_count(tmp_path: Path) -> None:
    with TimingStore.open(tmp_path, keep=3) as store:
        record_runs(store, "api:test", [{"api/test_a.py::t": s} for s in (9, 9, 9, 1, 2, 3)])
        assert store.predict_tests("api", [TestCase("api/test_a.py", "t")]) == {
            "api/test_a.py::t": 2.0
        }
        kept = [s for s in store.export_json()["samples"] if s[1] == "test"]
        assert sorted(s[5] for s in kept) == [1.0, 2.0, 3.0]


def test_item_is_the_sum_of_its_tests_or_its_recorded_total(store: TimingStore) -> None:
    record_runs(store, "api:test", [{"api/test_a.py::t1": 1.0, "api/test_a.py::t2": 2.5}])
    item = Item(("api/test_a.py",), "api/test_a.py")
    listed = {item.key: [TestCase("api/test_a.py", "t1"), TestCase("api/test_a.py", "t2")]}
    predictions, has_history = store.predict("api", [item], listed)
    assert has_history
    assert predictions == {"api/test_a.py": pytest.approx(3.5)}
    # A runner that cannot list tests: the file's recorded total stands in.
    predictions, _ = store.predict("api", [item], {})
    assert predictions == {"api/test_a.py": pytest.approx(3.5)}
    # A finer selector is just its test.
    finer = Item(("api/test_a.py", "t2"), "api/test_a.py")
    assert store.predict("api", [finer], {})[0] == {"api/test_a.py::t2": pytest.approx(2.5)}


def test_unknown_tests_are_estimated_from_their_siblings(store: TimingStore) -> None:
    record_runs(
        store,
        "api:test",
        [
            {
                "api/orders/test_a.py::t1": 4.0,
                "api/orders/test_a.py::t2": 6.0,
                "api/orders/test_b.py::t1": 1.0,
                "api/users/test_c.py::t1": 0.2,
                "api/users/test_c.py::t2": 0.2,
            }
        ],
    )
    new = [
        TestCase("api/orders/test_a.py", "t3"),  # same file: median of 4 and 6
        TestCase("api/orders/test_new.py", "t1"),  # same directory: median of 4, 6, 1
        TestCase("api/billing/test_d.py", "t1"),  # parent directory: median of all five
        TestCase("web/x.test.ts", "renders"),  # nothing near: the instance's median
    ]
    assert store.predict_tests("api", new) == {
        "api/orders/test_a.py::t3": 5.0,
        "api/orders/test_new.py::t1": 4.0,
        "api/billing/test_d.py::t1": 1.0,
        "web/x.test.ts::renders": 1.0,
    }
    # A new file counts its listed tests at the sibling estimate, and says it is an estimate.
    item = Item(("api/orders/test_new.py",), "api/orders/test_new.py")
    listed = {item.key: [TestCase(item.path, f"t{i}") for i in range(3)]}
    prediction = store.predict_detailed("api", [item], listed)
    assert prediction.seconds == {item.key: 12.0}
    assert prediction.estimated == {item.key}


def test_an_instance_without_history_says_so(store: TimingStore) -> None:
    record_runs(store, "api:test", [{"api/test_a.py::t": 1.0}])
    item = Item(("web/a.test.ts",), "web/a.test.ts")
    predictions, has_history = store.predict("web", [item], {})
    assert not has_history
    assert set(predictions) == {"web/a.test.ts"}


def test_startup_is_slice_time_minus_test_time_and_broken_slices_are_ignored(
    store: TimingStore,
) -> None:
    good = [result("api/test_a.py::t1", 1.0), result("api/test_a.py::t2", 2.0)]
    errored = [result("api/test_b.py::t1", 0.5), result("api/test_b.py::t2", 0.0, Status.ERROR)]
    killed = [result("api/test_c.py::t1", 500.0)]
    fast = [result("api/test_d.py::t1", 3.0)]
    run = run_of(
        "api:test", [(good, 3.75), (errored, 1.25), (killed, 600.0), (fast, 2.9)], broken=[3]
    )
    store.record(run, runner_of={"api": "pytest"}, executor="local", run_id="r1")
    # Start-ups 0.75, 0.75 and 0 (clamped): the median is 0.75; the killed slice adds nothing.
    assert store.startup_seconds("pytest", "local") == pytest.approx(0.75)
    assert store.startup_seconds("pytest", "docker") is None
    tests = [TestCase("api/test_c.py", "t1"), TestCase("api/test_b.py", "t2")]
    keys = {s[2] for s in store.export_json()["samples"]}
    assert "api/test_c.py::t1" not in keys  # from the killed slice
    assert "api/test_b.py::t2" not in keys  # ended in an error
    assert "api/test_b.py" not in keys  # a file with an error has no trustworthy total
    assert {"api/test_a.py", "api/test_d.py", "api/test_b.py::t1"} <= keys
    assert store.predict_tests("api", tests)["api/test_c.py::t1"] < 10


def test_show_lists_the_slowest_items_first(store: TimingStore) -> None:
    record_runs(
        store,
        "api:test",
        [{"api/test_a.py::t1": 1.0, "api/test_b.py::t1": 3.0, "api/test_b.py::t2": 4.0}] * 2,
    )
    rows = store.show("api", limit=5)
    assert [(r.key, r.seconds, r.samples, r.tests) for r in rows] == [
        ("api/test_b.py", 7.0, 2, 2),
        ("api/test_a.py", 1.0, 2, 1),
    ]
    assert len(store.show(None, limit=1)) == 1


# ---------------------------------------------------------------------------------------------
# concurrency and corruption

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dagpar_cli.model import CheckResult, Item, RunResult, SliceResult, Status, TestResult
    from dagpar_cli.timings import TimingStore

    workspace, who, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.005)
    with TimingStore.open(workspace) as store:
        for i in range(25):
            r = TestResult(path=f"{who}/test_{i}.py", name="t", status=Status.PASSED, seconds=i)
            sl = SliceResult(index=1, items=(Item((r.path,), r.path),), results=(r,), seconds=i + 1)
            run = RunResult(checks=(CheckResult(name="api:test", results=(r,), slices=(sl,)),),
                            seconds=1.0)
            store.record(run, runner_of={"api": "pytest"}, executor="local", run_id=f"{who}{i}")
    print("ok")
    """
)


def test_two_processes_can_write_at_once(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    go = tmp_path / "go"
    root = Path(__file__).resolve().parents[3]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), who, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=root,
        )
        for who in ("a", "b")
    ]
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    with TimingStore.open(tmp_path) as store:
        keys = {s[2] for s in store.export_json()["samples"] if s[1] == "test"}
        assert keys == {f"{who}/test_{i}.py::t" for who in "ab" for i in range(25)}
        assert store.startup_seconds("pytest", "local") == pytest.approx(1.0)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(b"this is not a database\n" * 100), id="garbage"),
        pytest.param(
            lambda p: p.write_bytes(p.read_bytes()[:100] + b"\xff" * (len(p.read_bytes()) - 100)),
            id="damaged-pages",
        ),
    ],
)
def test_a_corrupt_database_is_set_aside_and_rebuilt(tmp_path: Path, damage: object) -> None:
    with TimingStore.open(tmp_path) as store:
        record_runs(store, "api:test", [{"api/test_a.py::t": 1.0}])
    db = tmp_path / STATE_DIR / DB_NAME
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    damage(db)  # type: ignore[operator]
    with pytest.warns(TimingStoreWarning, match="corrupt"), TimingStore.open(tmp_path) as store:
        assert store.predict("api", [Item(("api/test_a.py",), "api/test_a.py")], {})[1] is False
        record_runs(store, "api:test", [{"api/test_a.py::t": 2.0}])
        assert store.predict_tests("api", [TestCase("api/test_a.py", "t")]) == {
            "api/test_a.py::t": 2.0
        }
    assert list((tmp_path / STATE_DIR).glob(f"{DB_NAME}.corrupt-*"))


def test_the_prediction_reports_how_much_runs_vary(store: TimingStore) -> None:
    factors = [1.0, 1.2, 0.8, 1.1, 0.9]
    record_runs(
        store,
        "api:test",
        [{"api/test_a.py::t1": 2 * f, "api/test_a.py::t2": 4 * f} for f in factors],
    )
    item = Item(("api/test_a.py",), "api/test_a.py")
    listed = {item.key: [TestCase(item.path, "t1"), TestCase(item.path, "t2")]}
    prediction = store.predict_detailed("api", [item], listed)
    assert prediction.seconds == {item.key: pytest.approx(6.0)}
    assert prediction.estimated == frozenset()
    assert prediction.spread is not None
    assert 0.05 < prediction.spread < 0.3


def test_a_paths_setup_is_kept_per_path_and_not_in_the_start_up(store: TimingStore) -> None:
    from dataclasses import replace

    first = replace(result("api/pkg::TestA", 1.0), setup_seconds=0.5)
    rest = result("api/pkg::TestB", 1.0)
    other = replace(result("api/other::TestC", 1.0), setup_seconds=0.25)
    run = run_of("api:test", [([first, rest, other], 3.0)])
    store.record(run, runner_of={"api": "go"}, executor="local", run_id="r1")
    assert store.setup_seconds("api") == pytest.approx({"api/pkg": 0.5, "api/other": 0.25})
    # 3 s less 3 s of tests less 0.75 s of builds: no start-up left.
    assert store.startup_seconds("go", "local") == pytest.approx(0.0)
    assert store.setup_seconds("web") == {}
    # The setup samples are no items of their own in `dagpar timings show`.
    assert {(row.key, row.seconds) for row in store.show("api")} == {
        ("api/pkg", 2.0),
        ("api/other", 1.0),
    }
    # And they travel with an export.
    exported = store.export_json()
    assert {s[2] for s in exported["samples"] if s[1] == "setup"} == {"api/pkg", "api/other"}
    with TimingStore.open(store.path.parent.parent / "copy") as copy:
        copy.merge_json(exported)
        assert copy.setup_seconds("api") == pytest.approx({"api/pkg": 0.5, "api/other": 0.25})


def test_a_custom_items_own_result_is_recorded_once(store: TimingStore) -> None:
    """Without a runner, an item's one result is the item itself: one sample, not two."""
    lint = [result(f"src/m{i}.py::run", 0.5 + i) for i in range(3)]
    several = [result("src/many.py::run::a", 1.0), result("src/many.py::run::b", 2.0)]
    for number in range(3):
        store.record(
            run_of("lint:check", [(lint, 5.0), (several, 4.0)]),
            runner_of={"lint": "custom"},
            executor="local",
            run_id=f"run-{number}",
        )
    samples = store.export_json()["samples"]
    kinds = sorted({(s[1], s[2]) for s in samples if s[0] == "lint"})
    assert kinds == [
        ("item", "src/m0.py"),
        ("item", "src/m1.py"),
        ("item", "src/m2.py"),
        ("item", "src/many.py"),
        ("test", "src/many.py::run::a"),
        ("test", "src/many.py::run::b"),
    ]
    items = [Item((f"src/m{i}.py",), f"src/m{i}.py") for i in range(3)]
    predictions, has_history = store.predict("lint", items, {})
    assert has_history
    assert predictions == {f"src/m{i}.py": pytest.approx(0.5 + i) for i in range(3)}


def test_each_key_keeps_its_own_last_samples_when_runs_touch_different_keys(
    tmp_path: Path,
) -> None:
    with TimingStore.open(tmp_path, keep=3) as store:
        runs: list[dict[str, float]] = []
        history: dict[str, list[float]] = {}
        for number in range(7):
            # Each run measures a different mix of keys, in a different order.
            keys = [f"api/test_{k}.py::t" for k in range(6) if (k + number) % 3 != 0]
            run = {key: float(10 * number + k) for k, key in enumerate(reversed(keys))}
            runs.append(run)
            for key, seconds in run.items():
                history.setdefault(key, []).append(seconds)
        record_runs(store, "api:test", runs)
        kept: dict[str, list[float]] = {}
        for sample in store.export_json()["samples"]:
            if sample[1] == "test":
                kept.setdefault(sample[2], []).append(sample[5])
        assert {key: sorted(v) for key, v in kept.items()} == {
            key: sorted(v[-3:]) for key, v in history.items()
        }
        tests = [TestCase(*key.split("::")) for key in history]
        assert store.predict_tests("api", tests) == {
            key: sorted(v[-3:])[1] for key, v in history.items()
        }


def _history_reads(store: TimingStore) -> list[str]:
    """The statements that read an instance's estimates, as the store runs them from now on."""
    reads: list[str] = []
    store._conn.set_trace_callback(
        lambda sql: reads.append(sql) if sql.startswith("SELECT kind, key, seconds") else None
    )
    return reads


def test_planning_reads_the_estimates_once_until_the_store_changes(
    store: TimingStore, tmp_path: Path
) -> None:
    record_runs(store, "api:test", [{"api/test_a.py::t1": 1.0, "api/test_a.py::t2": 2.5}])
    item = Item(("api/test_a.py",), "api/test_a.py")
    listed = {item.key: [TestCase("api/test_a.py", "t1"), TestCase("api/test_a.py", "t2")]}
    reads = _history_reads(store)
    with store.reading():
        store.predict_detailed("api", [item], listed)
        assert store.predict_tests("api", listed[item.key]) == {
            "api/test_a.py::t1": pytest.approx(1.0),
            "api/test_a.py::t2": pytest.approx(2.5),
        }
        assert len(reads) == 1  # items, then tests, of one split call: one read
        # A write on this connection is seen...
        record_runs(store, "api:test", [{"api/test_a.py::t1": 3.0}] * 4)
        tests = store.predict_tests("api", listed[item.key])
        assert tests["api/test_a.py::t1"] == pytest.approx(3.0)
        # ...and so is another process's.
        with TimingStore.open(tmp_path) as other:
            record_runs(other, "api:test", [{"api/test_a.py::t2": 7.0}] * 4)
        tests = store.predict_tests("api", listed[item.key])
        assert tests["api/test_a.py::t2"] == pytest.approx(7.0)
        assert len(reads) == 3
        # Another instance is read on its own.
        assert store.predict_tests("web", [TestCase("w.js", "t")]) == {
            "w.js::t": pytest.approx(0.1)
        }
    # Outside a reading block nothing is kept: a big suite's estimates are not held while
    # its slices run.
    assert store._read is None
    store.predict_tests("api", listed[item.key])
    store.predict_tests("api", listed[item.key])
    assert len(reads) == 6
