"""Moving timings in and out of the store: JSON exports and merges, JUnit XML from any tool."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from timing_runs import record_runs  # type: ignore[import-not-found]

from dagpar_cli.model import Item, Status, TestCase, TestResult
from dagpar_cli.timings import TimingStore
from dagpar_cli.timings.predict import outermost
from dagpar_cli.timings.transfer import ITEM, SETUP, TEST, Sample, SampleRecorder

JUNIT = Path(__file__).resolve().parents[2] / "data" / "junit"


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


def test_import_numbers_same_named_tests_in_document_order(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "a.test.js").write_text("")
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite name="web:test">'
        '<testcase classname="web.a.test" name="same" file="web/a.test.js" time="1"/>'
        '<testcase classname="web.a.test" name="same" file="web/a.test.js" time="2"/>'
        '<testcase classname="web.a.test" name="same" file="web/a.test.js" time="3"/>'
        "</testsuite></testsuites>"
    )
    with TimingStore.open(tmp_path) as store:
        assert store.import_junit(junit, "web") == 3
        assert ids_of(store, "web") == {
            "web/a.test.js::same": 1.0,
            "web/a.test.js::same::#2": 2.0,
            "web/a.test.js::same::#3": 3.0,
        }


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


def _reference_rows(instance: str, results: list[TestResult], whole: set[str]) -> list[Sample]:
    """SampleRecorder.results as one add() per sample (how it was first written)."""
    recorder = SampleRecorder("r", 5.0)
    totals: dict[str, float] = {}
    broken = set()
    outer = {id(r) for r in outermost(results)}
    for r in results:
        if r.setup_seconds > 0:
            recorder.add(instance, SETUP, r.path, r.setup_seconds)
        if r.status is Status.ERROR:
            broken.add(r.path)
            continue
        recorder.add(instance, TEST, r.id, r.seconds)
        if id(r) in outer:
            totals[r.path] = totals.get(r.path, 0.0) + r.seconds
    for path in sorted(set(totals) & whole - broken):
        recorder.add(instance, ITEM, path, totals[path])
    return recorder.rows


def test_a_runs_samples_are_one_per_test_and_whole_item() -> None:
    results = [
        TestResult(path="a.py", name="t", status=Status.PASSED, seconds=1.5),
        TestResult(path="a.py", name="t", status=Status.FAILED, seconds=-1.0),  # again: ordinal 1
        TestResult(path="a.py", name="u", status=Status.PASSED, seconds=math.inf),
        TestResult(path="b.py", name="t", status=Status.ERROR, seconds=2.0),
        TestResult(path="b.py", name="v", status=Status.PASSED, seconds=3.0, setup_seconds=0.5),
        TestResult(path="pkg", name="TestA", status=Status.PASSED, seconds=2.0),
        TestResult(path="pkg", name="TestA/sub", status=Status.PASSED, seconds=1.0),
        TestResult(path="m.py", name="t", status=Status.SKIPPED, matrix=(("py", "3.12"),)),
    ]
    whole = {"a.py", "b.py", "pkg", "m.py"}
    recorder = SampleRecorder("r", 5.0)
    recorder.results("api", results, whole)
    assert recorder.rows == _reference_rows("api", results, whole)
    assert ("api", "test", "a.py::t", "r", 1, 0.0, 5.0) in recorder.rows
