"""A path's setup (Go: building the package's test binary) as part of its items' cost."""

from __future__ import annotations

import pytest

from dagpar_cli.model import Item
from dagpar_cli.planning.setup import cut_pays, startup_with_setup, with_setup

A = Item(("a",), "go/a")
B = Item(("b",), "go/b")
C = Item(("c",), "go/c")
B_ONE = Item(("b", "TestOne"), "go/b")


def test_whole_items_pay_their_setup_and_new_ones_the_typical_setup() -> None:
    predictions = {A.key: 1.0, B.key: 2.0, C.key: 3.0}
    setup = {"go/a": 0.5, "go/b": 0.25, "go/z": 2.0}
    assert with_setup(predictions, [A, B, C], setup) == pytest.approx(
        {A.key: 1.5, B.key: 2.25, C.key: 3.5}
    )


def test_items_naming_one_test_and_suites_without_setup_are_left_alone() -> None:
    predictions = {A.key: 1.0, B_ONE.key: 0.5}
    assert with_setup(predictions, [A, B_ONE], {"go/b": 0.25}) == {A.key: 1.25, B_ONE.key: 0.5}
    assert with_setup(predictions, [A, B_ONE], {}) == predictions


def test_a_cut_must_pay_for_the_items_setup_again() -> None:
    quick = [0.02] * 8  # the inner loop: one package of quick tests
    assert not cut_pays(quick, 2, 0.0, 0.3)
    assert cut_pays(quick, 2, 0.0, None)  # no setup known: the planner decides as for any item
    assert cut_pays([2.0] * 8, 2, 0.3, 0.3)  # 8 s of tests: a second link is worth it


def test_with_setups_recorded_the_start_up_is_never_planned_below_the_default() -> None:
    # go test builds and runs packages at once inside a slice: the overlap hides its start-up.
    assert startup_with_setup(0.0, 0.3, {"go/a": 0.4}) == 0.3
    assert startup_with_setup(0.9, 0.3, {"go/a": 0.4}) == 0.9
    assert startup_with_setup(0.0, 0.3, {}) == 0.0  # other runners: as measured
