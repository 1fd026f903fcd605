"""The model's values on their own: copying a result with changes."""

from __future__ import annotations

import dataclasses

import pytest

from dagpar_cli.model import Attempt, Status, TestResult

FULL = TestResult(
    path="tests/a.py",
    name="test_x[1]",
    status=Status.FAILED,
    seconds=1.5,
    message="assert 0",
    details="Traceback",
    classname="tests.a",
    stdout="out",
    attempts=(Attempt(Status.FAILED, 1.0, "first"),),
    check="api:test",
    slice=2,
    occurrence=1,
    start=1_700_000_000.5,
    matrix=(("python", "3.12"),),
    setup_seconds=0.25,
)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(TestResult)])
def test_replaced_is_dataclasses_replace_for_every_field(field: str) -> None:
    other = dataclasses.replace(FULL, check="x", slice=7)
    changes = {field: getattr(other, field) if field in ("check", "slice") else None}
    copy = FULL.replaced(**changes)
    assert copy == dataclasses.replace(FULL, **changes)
    assert copy is not FULL and hash(copy) == hash(dataclasses.replace(FULL, **changes))
    assert FULL.replaced() == FULL
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.path = "b.py"  # type: ignore[misc]


def test_replaced_refuses_a_name_that_is_not_a_field() -> None:
    with pytest.raises(TypeError, match="no field named 'nope'"):
        FULL.replaced(nope=1)


def test_a_result_is_built_by_its_fields_alone() -> None:
    # replaced() copies the fields without calling __init__: there must be nothing else to do.
    assert not hasattr(TestResult, "__post_init__")
    assert TestResult.__slots__ == tuple(f.name for f in dataclasses.fields(TestResult))
