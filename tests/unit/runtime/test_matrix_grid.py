"""A grid on its own: combinations as items, a slice's receiver, the --matrix filter."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dagpar_cli.errors import UsageError
from dagpar_cli.runtime.grid import Axis, Grid, MatrixFilter


def make() -> Grid:
    return Grid(
        [
            Axis("pythons", ("3.11", "3.12", "3.11"), ("3.11", "3.12", "3.11"), False),
            Axis("cases", (["a.py", "t1"], ["b.py"]), ("a.py::t1", "b.py"), True),
        ],
        "api",
    )


def test_every_combination_once_first_field_slowest() -> None:
    grid = make()
    assert [(it.key, it.selector) for it in grid.items()] == [
        ("api/a.py::t1[pythons=3.11]", ("a.py", "t1")),
        ("api/b.py[pythons=3.11]", ("b.py",)),
        ("api/a.py::t1[pythons=3.12]", ("a.py", "t1")),
        ("api/b.py[pythons=3.12]", ("b.py",)),
    ]


def test_a_slice_receiver_holds_the_values_of_its_sub_grid() -> None:
    grid = make()
    items = grid.items()
    assert grid.receiver_fields([items[2], items[3]]) == {
        "pythons": ["3.12"],
        "cases": [["a.py", "t1"], ["b.py"]],
    }
    assert grid.is_sub_grid([items[2], items[3]])
    assert not grid.is_sub_grid([items[0], items[3]])


def test_too_many_combinations_name_the_sizes(tmp_path: Path) -> None:
    from dagpar_cli.errors import ToolchainError
    from dagpar_cli.sdk.types import FieldDef, TypeDef

    fields = tuple(
        FieldDef(name=n, annotation="list[str]", type=list[str], parallel=True, line=i)
        for i, n in enumerate(("a", "b"), 7)
    )
    typedef = TypeDef(name="Cells", cls=object, file=str(tmp_path / "ci.py"), line=5, fields=fields)

    @dataclasses.dataclass
    class Receiver:
        a: list[str]
        b: list[str]

    receiver = Receiver([str(i) for i in range(1000)], [str(i) for i in range(101)])
    with pytest.raises(ToolchainError, match=r"ci.py:7: Cells's \+parallel fields make 101,000"):
        Grid.of(typedef, receiver, "", tmp_path)
    small = Receiver(["x"], ["y", "z"])
    grid = Grid.of(typedef, small, "", tmp_path)
    assert grid is not None and len(grid.items()) == 2


def test_matrix_filter_ors_one_field_and_ands_fields() -> None:
    grid = make()
    flt = MatrixFilter(["pythons=3.12", "pythons=2.*", "cases=b*"])
    assert [it.key for it in flt.narrow(grid.items(), grid)] == ["api/b.py[pythons=3.12]"]
    assert "pythons: 3.11, 3.12; cases: a.py::t1, b.py" in flt.nothing_matched()
    assert not MatrixFilter([])
    with pytest.raises(UsageError, match="expected FIELD=GLOB"):
        MatrixFilter(["=x"])


def test_a_finer_selector_of_the_last_field_stands_for_itself() -> None:
    from dagpar_cli.model import Item

    grid = make()
    finer = Item(("b.py", "test_x"), "api/b.py", (("pythons", "3.12"),))
    assert grid.receiver_fields([finer]) == {"pythons": ["3.12"], "cases": [["b.py", "test_x"]]}
