"""Stage 7 on its own: every selected test exactly once, retries, the split call's verdict."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from dagpar_cli.errors import ExecutionError, TestsFailedError
from dagpar_cli.model import (
    Attempt,
    Item,
    Plan,
    SlicePlan,
    SliceResult,
    Status,
    TestCase,
    TestResult,
)
from dagpar_cli.runtime.collect import (
    call_results,
    fill_missing,
    raise_for_slices,
    rerun_failed,
    unique,
)

CHECK = "api:test"
FILE = Item(("tests/test_a.py",), "api/tests/test_a.py")
T1, T2, T3 = (TestCase(FILE.path, name) for name in ("test_one", "test_two", "test_three"))


def result(test: TestCase, status: Status, *, seconds: float = 1.0, slice: int = 0) -> TestResult:
    return TestResult(path=test.path, name=test.name, status=status, seconds=seconds, slice=slice)


def slice_result(
    index: int, results: Sequence[TestResult], error: str = "", **kw: Any
) -> SliceResult:
    return SliceResult(
        index=index, items=(FILE,), results=tuple(results), seconds=1.0, error=error, **kw
    )


# ---------------------------------------------------------------------------------------------
# fill_missing and unique
# ---------------------------------------------------------------------------------------------

RUNNER_SLICE = SlicePlan(index=2, items=(FILE,), predicted_seconds=3.0, tests=(T1, T2, T3))


def test_reported_results_are_stamped_with_the_check_and_the_slice() -> None:
    filled = fill_missing(
        CHECK, RUNNER_SLICE, [result(t, Status.PASSED) for t in (T1, T2, T3)], "test", "pytest", ""
    )
    assert [(r.name, r.status, r.check, r.slice) for r in filled] == [
        (t.name, Status.PASSED, CHECK, 2) for t in (T1, T2, T3)
    ]


@pytest.mark.parametrize(
    ("error", "interrupted", "message"),
    [
        ("", False, "the pytest report does not mention this test"),
        ("timed out after 5s", False, "not run: timed out after 5s"),
        ("interrupted", True, "interrupted before this test finished"),
    ],
)
def test_tests_the_runner_did_not_report_become_errors_with_the_cause(
    error: str, interrupted: bool, message: str
) -> None:
    filled = fill_missing(
        CHECK,
        RUNNER_SLICE,
        [result(T1, Status.FAILED)],
        "test",
        "pytest",
        error,
        interrupted=interrupted,
    )
    assert [(r.name, r.status) for r in filled] == [
        ("test_one", Status.FAILED),
        ("test_two", Status.ERROR),
        ("test_three", Status.ERROR),
    ]
    assert {r.message for r in filled[1:]} == {message}
    assert {(r.check, r.slice) for r in filled} == {(CHECK, 2)}


def test_same_named_tests_the_runner_did_not_report_keep_their_occurrence() -> None:
    same = [TestCase(FILE.path, "same", k) for k in range(3)]
    sp = SlicePlan(index=1, items=(FILE,), predicted_seconds=1.0, tests=tuple(same))
    reported = [
        TestResult(path=FILE.path, name="same", occurrence=1, status=Status.PASSED),
    ]
    filled = fill_missing(CHECK, sp, reported, "test", "jest", "killed by signal 9")
    assert sorted((r.id, r.status) for r in filled) == [
        (f"{FILE.path}::same", Status.ERROR),
        (f"{FILE.path}::same::#2", Status.PASSED),
        (f"{FILE.path}::same::#3", Status.ERROR),
    ]


def test_a_test_reported_twice_counts_once_with_its_worst_status() -> None:
    reported = [
        result(T1, Status.PASSED, seconds=1.0),
        result(T2, Status.SKIPPED),
        result(T1, Status.ERROR, seconds=2.0),
        result(T1, Status.FAILED, seconds=3.0),
        result(T2, Status.PASSED),
    ]
    assert [(r.name, r.status, r.seconds) for r in unique(reported)] == [
        ("test_one", Status.ERROR, 2.0),
        ("test_two", Status.PASSED, 1.0),
    ]
    filled = fill_missing(CHECK, RUNNER_SLICE, reported, "test", "pytest", "")
    assert [(r.name, r.status) for r in filled] == [
        ("test_one", Status.ERROR),
        ("test_two", Status.PASSED),
        ("test_three", Status.ERROR),
    ]


def test_without_a_runner_each_item_is_one_result_named_after_the_function() -> None:
    items = (FILE, Item(("store", "TestPut"), "svc/store"))
    sp = SlicePlan(index=1, items=items, predicted_seconds=1.0)
    passed = fill_missing(CHECK, sp, [], "lint", None, "", seconds=4.0)
    assert [(r.path, r.name, r.status, r.seconds) for r in passed] == [
        (FILE.path, "lint", Status.PASSED, 2.0),
        ("svc/store", "lint::TestPut", Status.PASSED, 2.0),
    ]
    failed = fill_missing(CHECK, sp, [], "lint", None, "exit 1")
    assert {(r.status, r.message) for r in failed} == {(Status.FAILED, "exit 1")}
    interrupted = fill_missing(CHECK, sp, [], "lint", None, "interrupted", interrupted=True)
    assert {(r.status, r.message) for r in interrupted} == {(Status.ERROR, "interrupted")}


def test_without_a_runner_an_item_the_toolchain_reported_itself_is_not_added_again() -> None:
    sp = SlicePlan(index=1, items=(FILE,), predicted_seconds=1.0)
    own = TestResult(path=FILE.path, name="lint", status=Status.FAILED, message="own words")
    filled = fill_missing(CHECK, sp, [own], "lint", None, "")
    assert [(r.name, r.status, r.message) for r in filled] == [("lint", Status.FAILED, "own words")]


# ---------------------------------------------------------------------------------------------
# rerun_failed
# ---------------------------------------------------------------------------------------------


class Reruns:
    """A ``run_slice`` that answers each rerun round with scripted statuses, and records it."""

    def __init__(self, *rounds: dict[str, Status]) -> None:
        self.rounds = list(rounds)
        self.calls: list[tuple[SlicePlan, int, bool]] = []

    def __call__(self, sp: SlicePlan, total: int, narrowed: bool) -> tuple[SliceResult, Any]:
        self.calls.append((sp, total, narrowed))
        statuses = self.rounds.pop(0)
        results = [
            TestResult(path=t.path, name=t.name, status=statuses[t.name], seconds=0.5)
            for t in sp.tests
        ]
        return slice_result(sp.index, results), None


def rerun(
    plan: Plan,
    merged: list[TestResult],
    run_slice: Callable[[SlicePlan, int, bool], tuple[SliceResult, Any]],
    *,
    retries: int = 2,
    nested: bool = True,
    cancelled: Callable[[], bool] = lambda: False,
) -> tuple[list[TestResult], list[SliceResult]]:
    return rerun_failed(
        plan,
        merged,
        retries=retries,
        runner="pytest",
        function="test",
        nested=nested,
        run_slice=run_slice,
        cancelled=cancelled,
    )


PLAN = Plan(
    slices=(
        SlicePlan(index=1, items=(FILE,), predicted_seconds=2.0, tests=(T1, T2)),
        SlicePlan(index=2, items=(FILE,), predicted_seconds=1.0, tests=(T3,)),
    ),
    predicted_wall_seconds=2.0,
    workers=2,
)


def test_a_test_that_passes_on_a_rerun_is_passed_with_its_failed_attempt() -> None:
    merged = [
        result(T1, Status.FAILED, seconds=1.0),
        result(T2, Status.PASSED),
        result(T3, Status.ERROR, seconds=3.0),
    ]
    run_slice = Reruns(
        {"test_one": Status.PASSED, "test_three": Status.FAILED},
        {"test_three": Status.FAILED},
    )
    final, reruns = rerun(PLAN, merged, run_slice)
    assert [(r.name, r.status) for r in final] == [
        ("test_one", Status.PASSED),
        ("test_two", Status.PASSED),
        ("test_three", Status.FAILED),
    ]
    assert final[0].attempts == (Attempt(Status.FAILED, 1.0),)
    assert final[0].flaky
    assert final[2].attempts == (Attempt(Status.ERROR, 3.0), Attempt(Status.FAILED, 0.5))
    # Each round is one fresh slice numbered after the plan's, with only what still fails.
    assert [r.index for r in reruns] == [3, 4]
    first, second = (call[0] for call in run_slice.calls)
    assert first.tests == (T1, T3)
    assert second.tests == (T3,)
    assert [(total, narrowed) for _, total, narrowed in run_slice.calls] == [(3, True), (4, True)]


def test_a_failed_test_of_a_whole_file_is_rerun_by_its_own_selector() -> None:
    run_slice = Reruns({"test_two": Status.PASSED})
    rerun(PLAN, [result(T2, Status.FAILED)], run_slice, retries=1)
    ((sp, _, _),) = run_slice.calls
    assert sp.items == (Item(("tests/test_a.py", "test_two"), FILE.path),)
    # A flat (list[str]) field can only rerun the whole file.
    run_slice = Reruns({"test_two": Status.PASSED})
    rerun(PLAN, [result(T2, Status.FAILED)], run_slice, retries=1, nested=False)
    ((sp, _, _),) = run_slice.calls
    assert sp.items == (FILE,)


def test_no_rerun_without_failures_or_once_cancelled() -> None:
    run_slice = Reruns()
    merged = [result(T1, Status.PASSED)]
    assert rerun(PLAN, merged, run_slice) == (merged, [])
    failing = [result(T1, Status.FAILED)]
    assert rerun(PLAN, failing, run_slice, cancelled=lambda: True) == (failing, [])
    assert run_slice.calls == []


def test_a_failure_of_a_test_no_slice_planned_is_not_rerun() -> None:
    stranger = TestResult(path="api/tests/test_z.py", name="test_z", status=Status.FAILED)
    run_slice = Reruns()
    assert rerun(PLAN, [stranger], run_slice) == ([stranger], [])


def test_without_a_runner_a_failed_item_is_rerun_whole() -> None:
    failed = TestResult(path=FILE.path, name="lint", status=Status.FAILED)
    plan = Plan(
        slices=(SlicePlan(index=1, items=(FILE,), predicted_seconds=1.0),),
        predicted_wall_seconds=1.0,
        workers=1,
    )
    calls: list[tuple[SlicePlan, int, bool]] = []

    def run_slice(sp: SlicePlan, total: int, narrowed: bool) -> tuple[SliceResult, Any]:
        calls.append((sp, total, narrowed))
        again = TestResult(path=FILE.path, name="lint", status=Status.PASSED)
        return slice_result(sp.index, [again]), None

    final, _ = rerun_failed(
        plan,
        [failed],
        retries=1,
        runner=None,
        function="lint",
        nested=False,
        run_slice=run_slice,
        cancelled=lambda: False,
    )
    assert [(sp.items, sp.tests, total, narrowed) for sp, total, narrowed in calls] == [
        ((FILE,), (), 2, False)
    ]
    assert final[0].status is Status.PASSED and final[0].flaky


def test_of_two_items_selecting_a_failed_test_the_first_in_the_slice_reruns_it() -> None:
    named = Item(("tests/test_a.py", "test_one"), FILE.path)
    for items, expected in (((FILE, named), (FILE,)), ((named, FILE), (named,))):
        plan = Plan(
            slices=(SlicePlan(index=1, items=items, predicted_seconds=1.0, tests=(T1, T2)),),
            predicted_wall_seconds=1.0,
            workers=1,
        )
        run_slice = Reruns({"test_one": Status.PASSED})
        rerun(plan, [result(T1, Status.FAILED)], run_slice, retries=1, nested=False)
        ((sp, _, _),) = run_slice.calls
        assert sp.items == expected


def test_a_file_cut_into_one_item_per_test_is_not_scanned_per_test(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    count = 1000
    items = tuple(Item(("tests/test_a.py", f"test_{i}"), FILE.path) for i in range(count))
    tests = tuple(TestCase(FILE.path, f"test_{i}") for i in range(count))
    plan = Plan(
        slices=(SlicePlan(index=1, items=items, predicted_seconds=1.0, tests=tests),),
        predicted_wall_seconds=1.0,
        workers=1,
    )
    looks = 0
    name_of = Item.name.fget  # type: ignore[attr-defined]

    def counted(item: Item) -> str | None:
        nonlocal looks
        looks += 1
        return name_of(item)  # type: ignore[no-any-return]

    monkeypatch.setattr(Item, "name", property(counted))
    run_slice = Reruns({t.name: Status.PASSED for t in tests})
    final, _ = rerun(plan, [result(t, Status.FAILED) for t in tests], run_slice, retries=1)
    assert all(r.status is Status.PASSED and r.flaky for r in final)
    ((sp, _, _),) = run_slice.calls
    assert sp.items == items and sp.tests == tests
    # Matching every item against every test of its slice looks at an item count**2 times.
    assert looks <= 10 * count


# ---------------------------------------------------------------------------------------------
# raise_for_slices
# ---------------------------------------------------------------------------------------------


def test_a_split_call_whose_slices_had_no_error_passes() -> None:
    passed = [result(T1, Status.PASSED)]
    raise_for_slices([slice_result(1, passed), slice_result(2, [])], passed, 2)


def test_a_slice_that_failed_through_its_tests_fails_the_call_with_each_error() -> None:
    bad = [result(T1, Status.FAILED), result(T2, Status.ERROR), result(T3, Status.PASSED)]
    slices = [slice_result(1, bad[:2], "2 tests failed"), slice_result(2, bad[2:])]
    with pytest.raises(TestsFailedError) as info:
        raise_for_slices(slices, bad, 2)
    assert info.value.message == "1 of 2 slices failed (2 tests failed or errored)"
    assert list(info.value.errors) == ["slice 1/2: 2 tests failed"]


def test_a_slice_whose_failures_passed_on_a_rerun_no_longer_fails_the_call() -> None:
    slices = [slice_result(1, [result(T1, Status.FAILED)], "1 test failed")]
    raise_for_slices(slices, [result(T1, Status.PASSED)], 1)


def test_a_slice_whose_function_raised_fails_the_call_though_its_tests_passed() -> None:
    passed = [result(T1, Status.PASSED)]
    with pytest.raises(TestsFailedError, match=r"^1 of 1 slices failed$"):
        raise_for_slices([slice_result(1, passed, "ValueError: oops")], passed, 1)


def test_an_infrastructure_failure_is_an_execution_error_naming_the_slice() -> None:
    errored = [result(T1, Status.ERROR)]
    slices = [
        slice_result(1, errored, "cannot start 'pytest'", infrastructure_error=True),
        slice_result(2, [result(T2, Status.PASSED)]),
    ]
    with pytest.raises(ExecutionError) as info:
        raise_for_slices(slices, errored, 2)
    assert info.value.message == (
        "1 of 2 slices failed (1 test failed or errored): slice 1/2: cannot start 'pytest'"
    )


# ---------------------------------------------------------------------------------------------
# call_results
# ---------------------------------------------------------------------------------------------


def results_of(reported: Sequence[TestResult], **kw: Any) -> list[TestResult]:
    options: dict[str, Any] = {
        "check": "api:lint",
        "path": "api",
        "split": False,
        "error": "",
        "details": "",
        "infrastructure_error": False,
        "seconds": 1.5,
    }
    options.update(kw)
    return call_results(reported, **options)


def test_a_check_that_was_not_split_and_reported_nothing_is_one_result() -> None:
    (passed,) = results_of([])
    assert (passed.path, passed.name, passed.status, passed.seconds, passed.check) == (
        "api",
        "lint",
        Status.PASSED,
        1.5,
        "api:lint",
    )
    (failed,) = results_of([], error="exit 1", details="trace")
    assert (failed.status, failed.message, failed.details) == (Status.FAILED, "exit 1", "trace")
    (errored,) = results_of([], error="cannot start", infrastructure_error=True)
    assert errored.status is Status.ERROR


def test_a_check_with_its_own_results_adds_one_only_when_it_failed() -> None:
    own = [result(T1, Status.PASSED), result(T1, Status.FAILED)]
    assert [(r.name, r.status) for r in results_of(own)] == [("test_one", Status.FAILED)]
    assert [(r.name, r.status) for r in results_of(own, error="boom")] == [
        ("test_one", Status.FAILED),
        ("lint", Status.FAILED),
    ]


def test_a_split_check_reports_only_what_its_slices_reported() -> None:
    assert results_of([], split=True, error="1 of 2 slices failed") == []
    reported = [result(T1, Status.PASSED)]
    assert results_of(reported, split=True) == reported


class ByName:
    """A ``run_slice`` that answers each test with its next scripted status, and records each
    slice's tests."""

    def __init__(self, statuses: dict[str, list[Status]]) -> None:
        self.statuses = statuses
        self.slices: list[list[str]] = []

    def __call__(self, sp: SlicePlan, total: int, narrowed: bool) -> tuple[SliceResult, Any]:
        self.slices.append([t.name for t in sp.tests])
        results = [
            TestResult(path=t.path, name=t.name, status=self.statuses[t.name].pop(0))
            for t in sp.tests
        ]
        return slice_result(sp.index, results), None


def test_a_test_that_crashed_its_runner_is_retried_alone() -> None:
    crash = TestResult(
        path=T1.path, name=T1.name, status=Status.ERROR, message="crashed the runner (signal 9)"
    )
    hang = TestResult(
        path=T2.path,
        name=T2.name,
        status=Status.ERROR,
        message="timed out after 5 s (--timeout)",
    )
    failed = result(T3, Status.FAILED)
    plan = Plan(
        slices=(SlicePlan(index=1, items=(FILE,), predicted_seconds=1.0, tests=(T1, T2, T3)),),
        predicted_wall_seconds=1.0,
        workers=1,
    )
    run_slice = ByName(
        {
            "test_one": [Status.ERROR],
            "test_two": [Status.PASSED],
            "test_three": [Status.PASSED],
        }
    )
    final, reruns = rerun(plan, [crash, hang, failed], run_slice, retries=1, nested=False)
    assert sorted(run_slice.slices) == [["test_one"], ["test_three"], ["test_two"]]
    assert len(reruns) == 3
    status = {r.name: (r.status, r.flaky) for r in final}
    assert status == {
        "test_one": (Status.ERROR, False),
        "test_two": (Status.PASSED, True),
        "test_three": (Status.PASSED, True),
    }


def test_a_test_that_only_errored_for_another_s_sake_is_not_flaky() -> None:
    collateral = [
        TestResult(path=T1.path, name=T1.name, status=Status.ERROR, message=message)
        for message in ("not run: pytest exited with code 3",)
    ] + [
        TestResult(
            path=T2.path,
            name=T2.name,
            status=Status.ERROR,
            message="the pytest report does not mention this test",
        )
    ]
    plan = Plan(
        slices=(SlicePlan(index=1, items=(FILE,), predicted_seconds=1.0, tests=(T1, T2)),),
        predicted_wall_seconds=1.0,
        workers=1,
    )
    run_slice = ByName({"test_one": [Status.PASSED], "test_two": [Status.PASSED]})
    final, _ = rerun(plan, collateral, run_slice, retries=1, nested=False)
    assert [(r.status, r.flaky, r.attempts) for r in final] == [(Status.PASSED, False, ())] * 2


def test_many_failures_rerun_in_groups_no_larger_than_the_workers_need() -> None:
    tests = tuple(TestCase(FILE.path, f"test_{i}") for i in range(25))
    plan = Plan(
        slices=(SlicePlan(index=1, items=(FILE,), predicted_seconds=1.0, tests=tests),),
        predicted_wall_seconds=1.0,
        workers=4,
    )
    run_slice = ByName({t.name: [Status.PASSED] for t in tests})
    final, reruns = rerun_failed(
        plan,
        [result(t, Status.FAILED) for t in tests],
        retries=1,
        runner="pytest",
        function="test",
        nested=False,
        run_slice=run_slice,
        cancelled=lambda: False,
        parallelism=4,
    )
    assert sorted(len(s) for s in run_slice.slices) == [5, 10, 10]
    assert all(r.status is Status.PASSED and r.flaky for r in final)
    assert len({s.index for s in reruns}) == 3
