"""The timing store against a real SQLite file: estimates, siblings, concurrency, recovery."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pluggy
import pytest

from dagpar_cli.config import Config, RunOptions
from dagpar_cli.model import (
    CheckResult,
    Item,
    RunResult,
    SliceResult,
    Status,
    TestCase,
    TestResult,
)
from dagpar_cli.session import Session
from dagpar_cli.timings import (
    DB_NAME,
    STATE_DIR,
    TimingStore,
    TimingStoreWarning,
    dagpar_report,
    robust_estimate,
)

JUNIT = Path(__file__).resolve().parent.parent / "data" / "junit"


def result(test_id: str, seconds: float, status: Status = Status.PASSED) -> TestResult:
    path, _, name = test_id.partition("::")
    return TestResult(path=path, name=name, status=status, seconds=seconds)


def run_of(
    check: str,
    slices: Sequence[tuple[Sequence[TestResult], float]],
    *,
    broken: Sequence[int] = (),
) -> RunResult:
    """A run of one check whose slices hold the given results and took the given seconds."""
    slice_results = []
    for index, (results, seconds) in enumerate(slices, start=1):
        paths = sorted({r.path for r in results})
        slice_results.append(
            SliceResult(
                index=index,
                items=tuple(Item((p,), p) for p in paths),
                results=tuple(results),
                seconds=seconds,
                error="killed" if index in broken else "",
                infrastructure_error=index in broken,
            )
        )
    everything = tuple(r for results, _ in slices for r in results)
    check_result = CheckResult(name=check, results=everything, slices=tuple(slice_results))
    return RunResult(checks=(check_result,), seconds=max(s for _, s in slices))


def record_runs(
    store: TimingStore, check: str, durations: Sequence[dict[str, float]], prefix: str = "run"
) -> None:
    """Record one single-slice run per mapping of test id to seconds, in order."""
    for number, tests in enumerate(durations):
        results = [result(test_id, seconds) for test_id, seconds in tests.items()]
        store.record(
            run_of(check, [(results, sum(tests.values()))]),
            runner_of={"api": "pytest"},
            executor="local",
            run_id=f"{prefix}-{number:03d}",
        )
        # Distinct wall-clock stamps so "the last K" is well defined.
        time.sleep(0.002)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TimingStore]:
    with TimingStore.open(tmp_path) as opened:
        yield opened


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
    root = Path(__file__).resolve().parents[2]
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


# ---------------------------------------------------------------------------------------------
# CI artifacts


def test_merge_is_commutative_and_idempotent(tmp_path: Path) -> None:
    def filled(name: str, start: float) -> dict[str, Any]:
        with TimingStore.open(tmp_path / name, keep=4) as store:
            runs = [
                {"api/test_a.py::t": start + i, f"api/test_{name}.py::t": 1.0} for i in range(3)
            ]
            record_runs(store, "api:test", runs, prefix=name)
            return store.export_json()

    first, second = filled("one", 1.0), filled("two", 10.0)

    def merged(name: str, *exports: dict[str, Any]) -> dict[str, Any]:
        with TimingStore.open(tmp_path / name, keep=4) as store:
            for data in exports:
                store.merge_json(data)
            return store.export_json()

    forward = merged("forward", first, second)
    backward = merged("backward", second, first)
    assert forward == backward
    assert merged("twice", first, second, second, first) == forward
    shared = [s for s in forward["samples"] if s[2] == "api/test_a.py::t"]
    assert len(shared) == 4  # six samples in all, the last four kept


def test_merge_rejects_other_documents(store: TimingStore) -> None:
    with pytest.raises(ValueError, match="not a dagpar timings export"):
        store.merge_json({"format": "something-else", "samples": []})


# ---------------------------------------------------------------------------------------------
# JUnit import


def ids_of(store: TimingStore, instance: str) -> dict[str, float]:
    return {
        s[2]: s[5] for s in store.export_json()["samples"] if s[0] == instance and s[1] == "test"
    }


PYTEST_IDS = {
    "tests/api/test_orders.py::TestOrders::test_create",
    "tests/api/test_orders.py::TestOrders::test_quantity[1]",
    "tests/api/test_orders.py::TestOrders::test_quantity[2]",
    "tests/api/test_orders.py::test_cancel",
    "tests/api/test_orders.py::test_refund",
    "tests/test_health.py::test_ping",
}


def test_import_pytest_junit_with_file_attributes(store: TimingStore) -> None:
    assert store.import_junit(JUNIT / "pytest-xunit1.xml", "api") == 6
    assert set(ids_of(store, "api")) == PYTEST_IDS
    assert ids_of(store, "api")["tests/api/test_orders.py::TestOrders::test_create"] >= 0.02


@pytest.mark.parametrize("files_on_disk", [True, False])
def test_import_pytest_junit_without_file_attributes(tmp_path: Path, files_on_disk: bool) -> None:
    if files_on_disk:
        for path in ("tests/api/test_orders.py", "tests/test_health.py"):
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_text("")
    with TimingStore.open(tmp_path) as store:
        assert store.import_junit(JUNIT / "pytest-xunit2.xml", "api") == 6
        assert set(ids_of(store, "api")) == PYTEST_IDS


def test_import_is_idempotent(store: TimingStore) -> None:
    store.import_junit(JUNIT / "pytest-xunit1.xml", "api")
    before = store.export_json()
    store.import_junit(JUNIT / "pytest-xunit1.xml", "api")
    assert store.export_json() == before


def test_import_jest_junit(store: TimingStore) -> None:
    assert store.import_junit(JUNIT / "jest-junit-file.xml", "web") == 5
    assert set(ids_of(store, "web")) == {
        "src/cart/cart.test.js::cart adds an item",
        "src/cart/cart.test.js::cart totals sums prices",
        "src/cart/cart.test.js::cart totals applies coupons",
        "src/price.test.js::formats euros",
        "src/price.test.js::rounds half up",
    }
    # Without file names, tests the store already knows keep their files.
    assert store.import_junit(JUNIT / "jest-junit.xml", "web") == 5
    assert len(ids_of(store, "web")) == 5
    counts = [
        s for s in store.export_json()["samples"] if s[2] == "src/price.test.js::formats euros"
    ]
    assert len(counts) == 2


def test_import_gotestsum_maps_import_paths_to_packages(tmp_path: Path) -> None:
    (tmp_path / "go").mkdir()
    (tmp_path / "go" / "go.mod").write_text("module example.com/shop\n\ngo 1.19\n")
    with TimingStore.open(tmp_path) as store:
        assert store.import_junit(JUNIT / "gotestsum.xml", "go") == 5
        ids = ids_of(store, "go")
        assert set(ids) == {
            "go/store::TestPut",
            "go/store::TestPut/overwrite",
            "go/store::TestGet",
            "go/store::TestScan",
            "go::TestMain_Version",
        }
        assert ids["go/store::TestPut"] == pytest.approx(0.41)
        package = Item(("go/store",), "go/store")
        # TestPut's own time includes its subtest's: the package is counted once.
        assert store.predict("go", [package], {})[0] == {"go/store": pytest.approx(0.43)}
        listed = {"go/store": [TestCase("go/store", n) for n in ("TestPut", "TestPut/overwrite")]}
        assert store.predict("go", [package], listed)[0] == {"go/store": pytest.approx(0.41)}


def test_import_surefire_finds_the_java_file(tmp_path: Path) -> None:
    java = tmp_path / "shop" / "src" / "test" / "java" / "com" / "example" / "shop"
    java.mkdir(parents=True)
    (java / "CartTest.java").write_text("class CartTest {}\n")
    with TimingStore.open(tmp_path) as store:
        # Five test cases, one of them an error: errors are not timing samples.
        assert store.import_junit(JUNIT / "surefire-TEST-com.example.shop.CartTest.xml", "jvm") == 4
        path = "shop/src/test/java/com/example/shop/CartTest.java"
        assert set(ids_of(store, "jvm")) == {
            f"{path}::addsItem",
            f"{path}::totals(int)[1]",
            f"{path}::appliesCoupon",
            f"{path}::refunds",
        }


def test_import_rejects_other_xml(store: TimingStore, tmp_path: Path) -> None:
    other = tmp_path / "pom.xml"
    other.write_text("<project/>")
    with pytest.raises(ValueError, match="not JUnit XML"):
        store.import_junit(other, "api")


# ---------------------------------------------------------------------------------------------
# the plugin


def session_for(tmp_path: Path, store: TimingStore | None, *, dry_run: bool) -> Session:
    config = Config(workspace=tmp_path, file=None, toolchains=())
    session = Session(
        config=config,
        options=RunOptions(dry_run=dry_run, executor="docker"),
        pm=pluggy.PluginManager("dagpar"),
        timings=store,
    )
    session.stash["runner_of"] = {"api": "pytest"}
    return session


def test_the_report_hook_records_real_runs_only(tmp_path: Path, store: TimingStore) -> None:
    run = run_of("api:test", [([result("api/test_a.py::t", 1.0)], 1.5)])
    dagpar_report(run=run, session=session_for(tmp_path, store, dry_run=True))
    assert store.export_json()["samples"] == []
    dagpar_report(run=run, session=session_for(tmp_path, None, dry_run=False))
    dagpar_report(run=run, session=session_for(tmp_path, store, dry_run=False))
    assert store.startup_seconds("pytest", "docker") == pytest.approx(0.5)
    assert store.predict_tests("api", [TestCase("api/test_a.py", "t")]) == {"api/test_a.py::t": 1.0}


def test_robust_estimate_reports_spread() -> None:
    median, spread = robust_estimate([1.0, 1.1, 0.9, 1.0, 50.0])
    assert median == 1.0
    assert 0.05 < spread < 0.2


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
