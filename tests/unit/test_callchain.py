"""Stage 3: which checks a pattern selects, and how a ``dagpar call`` chain is read and run."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from dagpar_cli import check, object_type
from dagpar_cli.callchain import (
    Step,
    call_chain,
    check_pattern,
    parse_chain,
    resolve_chain,
    select_checks,
)
from dagpar_cli.config import ToolchainConfig
from dagpar_cli.discovery import Toolchain
from dagpar_cli.errors import NothingSelectedError, UsageError
from dagpar_cli.sdk.types import typedef_of


@object_type
class Numbers:
    """What a chain step returns: a type with functions of its own."""

    values: list[int]

    def total(self) -> int:
        return sum(self.values)

    def scaled_total(self, factor: int, labels: list[str] | None = None) -> int:
        return sum(v * factor for v in self.values) + len(labels or [])


@object_type
class Suite:
    """A toolchain's main class with two checks and a function that is not one."""

    name: str = "suite"

    @check
    def unit_test(self) -> None:
        pass

    @check
    def lint(self) -> None:
        pass

    def numbers(self, start: int, count: int = 3) -> Numbers:
        return Numbers(values=list(range(start, start + count)))

    def flag(self, on: bool) -> bool:
        return on


def toolchain(instance: str) -> Toolchain:
    main = typedef_of(Suite)
    assert main is not None
    return Toolchain(
        config=ToolchainConfig(instance=instance, use="suite"),
        module=types.ModuleType("suite"),
        main=main,
    )


TOOLCHAINS = [toolchain("backend"), toolchain("frontend")]
EVERY = ["backend:unit-test", "backend:lint", "frontend:unit-test", "frontend:lint"]


def names(patterns: list[str], skip: list[str] | None = None) -> list[str]:
    return [c.name for c in select_checks(TOOLCHAINS, patterns, skip or [])]


# ---------------------------------------------------------------------------------------------
# check selection


def test_no_pattern_selects_every_check_in_order() -> None:
    assert names([]) == EVERY
    spec = select_checks(TOOLCHAINS, [], [])[0]
    assert (spec.toolchain.instance, spec.function) == ("backend", "unit_test")


@pytest.mark.parametrize(
    ("pattern", "selected"),
    [
        ("backend:*", ["backend:unit-test", "backend:lint"]),
        ("*:lint", ["backend:lint", "frontend:lint"]),
        ("backend", ["backend:unit-test", "backend:lint"]),  # a bare instance: all its checks
        ("back*", ["backend:unit-test", "backend:lint"]),  # a glob on the instance
        ("**test", ["backend:unit-test", "frontend:unit-test"]),  # ** crosses the ':'
        ("*:*-test", ["backend:unit-test", "frontend:unit-test"]),
        ("[bf]*:l?nt", ["backend:lint", "frontend:lint"]),
        ("[!b]*:lint", ["frontend:lint"]),
        ("frontend:unit-test", ["frontend:unit-test"]),
    ],
)
def test_patterns(pattern: str, selected: list[str]) -> None:
    assert names([pattern]) == selected


@pytest.mark.parametrize("pattern", ["back*test", "*test", "b?ckend?lint", "backend[:]lint"])
def test_star_question_mark_and_classes_never_cross_the_colon(pattern: str) -> None:
    with pytest.raises(NothingSelectedError, match="no check matches"):
        names([pattern])


def test_star_never_crosses_a_slash_but_double_star_does() -> None:
    assert not check_pattern("ci:*")("ci:lint/strict")
    assert check_pattern("ci:**")("ci:lint/strict")
    assert check_pattern("ci:*/*")("ci:lint/strict")


def test_several_patterns_are_ored_then_skip_removes() -> None:
    assert names(["backend", "*:lint"], skip=["frontend:*"]) == [
        "backend:unit-test",
        "backend:lint",
    ]
    assert names([], skip=["**lint"]) == ["backend:unit-test", "frontend:unit-test"]


def test_a_pattern_that_selects_nothing_names_the_closest_checks() -> None:
    with pytest.raises(NothingSelectedError) as info:
        names(["backend:lnt"])
    assert "did you mean backend:lint" in str(info.value)
    assert "(checks: backend:unit-test, backend:lint, frontend:unit-test" in str(info.value)


# ---------------------------------------------------------------------------------------------
# call chains


def test_parse_chain_splits_steps_and_flags() -> None:
    instance, steps = parse_chain(
        ["backend", "numbers", "--start", "2", "--count=4", "scaled-total", "--factor", "3"]
    )
    assert instance == "backend"
    assert steps == [
        Step("numbers", (("start", "2"), ("count", "4"))),
        Step("scaled-total", (("factor", "3"),)),
    ]


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ([], "needs INSTANCE FUNCTION"),
        (["-x"], "expected an instance name first"),
        (["backend"], "name a function"),
        (["backend", "--start", "1"], "comes before any function"),
        (["backend", "numbers", "--start"], "--start needs a value"),
    ],
)
def test_parse_chain_errors(tokens: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_chain(tokens)


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (["s", "numbrs"], "has no function 'numbrs'; did you mean 'numbers'?"),
        (["s", "numbers", "--strat", "1"], "has no argument --strat; did you mean --start?"),
        (["s", "numbers"], "needs --start"),
        (["s", "numbers", "--start", "1", "total", "more"], "nothing can follow it"),
        (["s", "name", "--x", "1"], "field 'name' takes no arguments"),
    ],
)
def test_resolve_chain_checks_every_step_before_running(tokens: list[str], message: str) -> None:
    _, steps = parse_chain(tokens)
    with pytest.raises(UsageError, match=message):
        resolve_chain(toolchain("s").main, steps)


def test_call_chain_converts_flags_and_runs_each_step(tmp_path: Path) -> None:
    _, steps = parse_chain(
        ["s", "numbers", "--start", "2", "scaled-total", "--factor", "10", "--labels", "a,b"]
    )
    assert call_chain(Suite(), steps, tmp_path) == 20 + 30 + 40 + 2
    _, steps = parse_chain(["s", "numbers", "--start", "2", "--count", "2", "total"])
    assert call_chain(Suite(), steps, tmp_path) == 5
    _, steps = parse_chain(["s", "flag", "--on", "yes"])
    assert call_chain(Suite(), steps, tmp_path) is True
    _, steps = parse_chain(["s", "name"])
    assert call_chain(Suite(), steps, tmp_path) == "suite"


def test_call_chain_rejects_values_of_the_wrong_type(tmp_path: Path) -> None:
    _, steps = parse_chain(["s", "numbers", "--start", "two"])
    with pytest.raises(UsageError, match="--start expects int, got 'two'"):
        call_chain(Suite(), steps, tmp_path)
    _, steps = parse_chain(["s", "numbers", "--start", "1", "--start", "2"])
    with pytest.raises(UsageError, match="given 2 times"):
        call_chain(Suite(), steps, tmp_path)
