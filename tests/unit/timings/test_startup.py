"""A slice's overhead, fixed and per test: the fit, and the samples the store keeps for it."""

from __future__ import annotations

import pytest
from timing_runs import result, run_of  # type: ignore[import-not-found]

from dagpar_cli.timings import StartupModel, TimingStore, fit_startup
from dagpar_cli.timings.startup import PER_TEST_PRIOR
from dagpar_cli.timings.transfer import SLICE_TESTS, STARTUP

# ---------------------------------------------------------------------------------------------
# the fit


def test_no_samples_no_model() -> None:
    assert fit_startup([], 0.3) is None


def test_sizes_apart_tell_the_fixed_part_from_the_per_test_part() -> None:
    # 0.5 s fixed, 0.4 ms per test, as pytest's session end on 10,000 tests.
    samples = [(0.5 + 0.0004 * n, n) for n in (5000, 5000, 1000, 20000)]
    model = fit_startup(samples, 0.3)
    assert model is not None
    assert model.fixed == pytest.approx(0.5)
    assert model.per_test == pytest.approx(0.0004)
    assert model.seconds(10000) == pytest.approx(4.5)


def test_one_noisy_run_moves_nothing() -> None:
    samples: list[tuple[float, float | None]] = [
        (1.0 + 0.001 * n + noise, n)
        for n, noise in ((100, 0.02), (400, -0.03), (1000, 0.01), (2000, 0.0), (3000, -0.01))
    ]
    samples.append((30.0, 500))  # a slice that stalled for half a minute
    model = fit_startup(samples, 0.3)
    assert model is not None
    assert model.fixed == pytest.approx(1.0, abs=0.1)
    assert model.per_test == pytest.approx(0.001, rel=0.1)


def test_close_sizes_make_no_slope_from_noise() -> None:
    # 5000 and 5200 tests, 0.3 s apart: noise, not 1.5 ms per test.
    model = fit_startup([(3.0, 5000), (3.3, 5200)], 0.3)
    assert model is not None
    assert model.per_test < 0.001
    assert model.seconds(5100) == pytest.approx(3.15)


def test_one_sample_of_many_tests_is_mostly_per_test() -> None:
    # The first run split 10,000 tests evenly: one size only.
    model = fit_startup([(2.94, 5000)], 0.3)
    assert model is not None
    assert model.fixed < 1.0
    assert model.seconds(5000) == pytest.approx(2.94)


def test_one_size_of_few_tests_is_mostly_fixed() -> None:
    # A Jest suite of small files: its start-up is the process, not the tests.
    model = fit_startup([(2.0, 24), (2.1, 24)], 0.3)
    assert model is not None
    assert model.fixed == pytest.approx(2.05, abs=0.02)
    assert model.per_test < 2 * PER_TEST_PRIOR


def test_less_than_the_prior_is_split_the_same_way_and_never_negative() -> None:
    model = fit_startup([(0.1, 1000)], 1.0)
    assert model is not None
    assert model.fixed >= 0 and model.per_test >= 0
    assert model.seconds(1000) == pytest.approx(0.1)
    nothing = fit_startup([(0.0, 1000), (0.0, 10)], 0.3)
    assert nothing == StartupModel(0.0, 0.0)


def test_zero_tests_is_all_fixed() -> None:
    assert fit_startup([(0.6, 0), (0.7, 0)], 0.3) == StartupModel(pytest.approx(0.65), 0.0)  # type: ignore[arg-type]
    # A slice that ran nothing measures the fixed part directly.
    model = fit_startup([(0.5, 0), (2.5, 1000)], 0.3)
    assert model == StartupModel(pytest.approx(0.5), pytest.approx(0.002))  # type: ignore[arg-type]


def test_negative_residuals_leave_no_negative_fixed_part() -> None:
    # Per-test cost that grows faster than linearly: the line's intercept is below zero.
    model = fit_startup([(0.1, 100), (1.0, 1000), (10.0, 5000)], 0.3)
    assert model is not None
    assert model.fixed >= 0
    assert model.per_test > 0


def test_a_falling_slope_is_no_per_test_cost() -> None:
    model = fit_startup([(1.0, 100), (0.8, 1000)], 0.3)
    assert model == StartupModel(pytest.approx(0.9), 0.0)  # type: ignore[arg-type]


def test_samples_without_counts_are_a_fixed_start_up_as_before() -> None:
    assert fit_startup([(0.75, None), (0.25, None), (1.0, None)], 0.3) == StartupModel(0.75)
    # With some counts, those are fitted alone.
    model = fit_startup([(9.0, None), (0.5, 0), (2.5, 1000)], 0.3)
    assert model is not None
    assert model.fixed == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------
# the store


def test_each_slice_records_its_test_count_next_to_its_start_up(store: TimingStore) -> None:
    small = [result(f"api/test_a.py::t{i}", 0.01) for i in range(10)]
    big = [result(f"api/test_b.py::t{i}", 0.01) for i in range(100)]
    # 0.5 s fixed and 10 ms per test besides the tests' own seconds.
    store.record(
        run_of("api:test", [(small, 0.1 + 0.6), (big, 1.0 + 1.5)]),
        runner_of={"api": "pytest"},
        executor="local",
        run_id="r1",
    )
    samples = {
        (kind, ordinal): seconds
        for _, kind, _, _, ordinal, seconds, _ in store.export_json()["samples"]
        if kind in (STARTUP, SLICE_TESTS)
    }
    assert samples == pytest.approx(
        {(STARTUP, 0): 0.6, (SLICE_TESTS, 0): 10.0, (STARTUP, 1): 1.5, (SLICE_TESTS, 1): 100.0}
    )
    model = store.startup_model("pytest", "local", 0.3)
    assert model is not None
    assert model.fixed == pytest.approx(0.5)
    assert model.per_test == pytest.approx(0.01)
    # The median start-up is still there for those who ask for it.
    assert store.startup_seconds("pytest", "local") == pytest.approx(1.05)
    assert store.startup_model("pytest", "docker", 1.0) is None


def test_an_export_without_counts_merges_and_plans_as_before(store: TimingStore) -> None:
    old = {
        "format": "dagpar-timings",
        "version": 1,
        "keep": 10,
        "samples": [
            ["pytest", STARTUP, "local", "old", 0, 0.75, 1000.0],
            ["pytest", STARTUP, "local", "old", 1, 1.25, 1000.0],
        ],
    }
    store.merge_json(old)
    assert store.startup_model("pytest", "local", 0.3) == StartupModel(1.0)
    # And the counts travel in exports.
    store.record(
        run_of("api:test", [([result("api/test_a.py::t", 0.5)], 1.0)]),
        runner_of={"api": "pytest"},
        executor="local",
        run_id="new",
    )
    kinds = {s[1] for s in store.export_json()["samples"]}
    assert SLICE_TESTS in kinds
    with TimingStore(store.path.with_name("other.sqlite")) as other:
        other.merge_json(store.export_json())
        assert other.startup_model("pytest", "local", 0.3) == store.startup_model(
            "pytest", "local", 0.3
        )
