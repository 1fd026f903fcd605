"""Several ``+parallel`` fields on one type: their Cartesian product, a *grid*.

Each combination of the fields' values is one :class:`~dagpar_cli.model.Item`: its selector and
path come from the **last** ``+parallel`` field (the fine one, usually the files), and
:attr:`Item.matrix <dagpar_cli.model.Item.matrix>` names the other fields' values. A slice's
items always form a sub-grid (the product of one subset per field), so its receiver holds those
subsets and its work is exactly its items; :mod:`dagpar_cli.planning.grid` cuts the grid that way.

Work that no runner reports is one result per combination, named ``function[field=value]``
(:meth:`Item.test_name <dagpar_cli.model.Item.test_name>`), so a test failing under one value
only reads as such.

A toolchain's ``matrix:`` in dagpar.yaml (image, runner, args, env) joins the grid as *virtual*
fields ahead of the type's own: each slice runs under one value of each (its runner spec, image
and environment follow them, see :func:`matrix_config`), each value lists its own tests, and a
runner's results are renamed ``test[key=value]`` (:meth:`Grid.relabel`). ``--matrix FIELD=GLOB``
selects combinations (:class:`MatrixFilter`); ``--retries`` reruns a grid's failed
combinations row by row (:meth:`Grid.rerun_failed`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagpar_cli.errors import TestsFailedError, ToolchainError, UsageError
from dagpar_cli.filtering import translate_glob
from dagpar_cli.model import (
    Attempt,
    Item,
    Plan,
    SlicePlan,
    SliceResult,
    Status,
    TestCase,
    TestResult,
    join_path,
    test_id,
)
from dagpar_cli.planning.grid import plan_grid
from dagpar_cli.planning.request import DEFAULT_STARTUP, OVERSLICE, PlannedSplit
from dagpar_cli.sdk.types import FieldDef, TypeDef
from dagpar_cli.timings.predict import DEFAULT_ITEM_SECONDS, borrow_across_matrix

if TYPE_CHECKING:
    from dagpar_cli.config.model import ToolchainConfig
    from dagpar_cli.timings import TimingStore

__all__ = ["MAX_COMBINATIONS", "Axis", "Grid", "MatrixFilter", "item_of", "matrix_config"]

#: A product with more combinations than this is a definition error.
MAX_COMBINATIONS = 100_000


@dataclass(frozen=True, slots=True)
class Axis:
    """One ``+parallel`` field of a grid: its values as the receiver holds them, and their
    labels (a ``list[list[str]]`` field's selector is labelled ``a::b``)."""

    name: str
    values: tuple[Any, ...]
    labels: tuple[str, ...]
    nested: bool
    #: A key of the toolchain's ``matrix:`` in dagpar.yaml rather than a receiver's field.
    virtual: bool = False


class Grid:
    """The combinations of a receiver's ``+parallel`` fields.

    :param axes: the fields, in declaration order; the last gives the items' paths.
    :param prefix: the receiver's directory, workspace-relative.
    """

    def __init__(self, axes: Sequence[Axis], prefix: str) -> None:
        self.axes = tuple(axes)
        self.prefix = prefix
        self._cells: dict[str, tuple[int, ...]] = {}
        self._items: list[Item] = []
        *coarse, fine = self.axes
        ranges = [range(len(axis.values)) for axis in self.axes]
        for cell in itertools.product(*ranges):
            value = fine.values[cell[-1]]
            selector = tuple(str(v) for v in value) if fine.nested else (str(value),)
            pairs = zip(coarse, cell[:-1], strict=True)
            matrix = tuple((axis.name, axis.labels[i]) for axis, i in pairs)
            item = Item(selector, join_path(prefix, selector[0]), matrix)
            if item.key not in self._cells:  # a value listed twice is one combination
                self._cells[item.key] = cell
                self._items.append(item)

    @classmethod
    def of(
        cls,
        typedef: TypeDef,
        receiver: Any,
        prefix: str,
        workspace: Path,
        config: ToolchainConfig | None = None,
    ) -> Grid | None:
        """The grid of *receiver*, or None when its type has fewer than two ``+parallel`` fields
        and its toolchain's *config* has no ``matrix:``.

        The keys of ``matrix:`` come first (each slice runs under one value of each), then the
        type's ``+parallel`` fields.

        :raises ToolchainError: the product has more than :data:`MAX_COMBINATIONS` combinations
            (naming the first ``+parallel`` field's file and line).
        :raises TestsFailedError: a field holds something other than strings (or lists of them).
        """
        fields = typedef.parallel_fields
        keys = config.matrix if config is not None else ()
        if len(fields) + len(keys) < 2:
            return None
        axes = [Axis(k.key, k.values, k.labels, False, virtual=True) for k in keys]
        axes += [_axis(f, getattr(receiver, f.name) or []) for f in fields]
        total = math.prod(len(axis.values) for axis in axes)
        if total > MAX_COMBINATIONS:
            sizes = " x ".join(f"{axis.name} ({len(axis.values)})" for axis in axes)
            raise ToolchainError(
                f"{typedef.name}'s +parallel fields make {total:,} combinations ({sizes}); "
                f"at most {MAX_COMBINATIONS:,} are supported: mark fewer fields +parallel or "
                "pass fewer values",
                file=_display(typedef.file, workspace),
                line=fields[0].line or typedef.line,
            )
        return cls(axes, prefix)

    @property
    def names(self) -> tuple[str, ...]:
        """The fields' names, in declaration order."""
        return tuple(axis.name for axis in self.axes)

    def items(self) -> list[Item]:
        """Every combination, the first field varying slowest."""
        return list(self._items)

    def receiver_fields(self, items: Sequence[Item]) -> dict[str, list[Any]]:
        """The field values of the receiver that runs *items* (a sub-grid): each field holds
        the values its combinations use, in the parent's order. A finer selector of a
        ``list[list[str]]`` last field (one test of a file, rerun) stands for itself there."""
        used: list[set[int]] = [set() for _ in self.axes]
        finer = False
        for item in items:
            cell = self._cells.get(item.key)
            if cell is None:
                cell = self._cells[Item(item.selector[:1], item.path, item.matrix).key]
                finer = True
            for position, index in enumerate(cell):
                used[position].add(index)
        fields = {
            axis.name: [
                list(axis.values[i]) if axis.nested else axis.values[i] for i in sorted(chosen)
            ]
            for axis, chosen in zip(self.axes, used, strict=True)
            if not axis.virtual
        }
        if finer:
            selectors = dict.fromkeys(item.selector for item in items)
            fields[self.axes[-1].name] = [list(selector) for selector in selectors]
        return fields

    @property
    def configured(self) -> bool:
        """Whether dagpar.yaml's ``matrix:`` takes part (each slice runs under one value)."""
        return any(axis.virtual for axis in self.axes)

    def by_value(self, items: Sequence[Item]) -> list[list[Item]]:
        """*items* grouped by their ``matrix:`` values (one group without a ``matrix:``)."""
        virtual = {axis.name for axis in self.axes if axis.virtual}
        groups: dict[tuple[tuple[str, str], ...], list[Item]] = {}
        for item in items:
            groups.setdefault(tuple(p for p in item.matrix if p[0] in virtual), []).append(item)
        return list(groups.values())

    def labelled(
        self, tests_of: Mapping[str, Sequence[TestCase]], items: Sequence[Item]
    ) -> dict[str, list[TestCase]]:
        """Each item's tests named as their results will be under its ``matrix:`` values."""
        return {
            item.key: [
                TestCase(t.path, f"{t.name}[{item.matrix_label}]", t.occurrence)
                for t in tests_of.get(item.key, ())
            ]
            for item in items
        }

    def relabel(self, results: Sequence[TestResult], sp: SlicePlan) -> list[TestResult]:
        """A runner's results of slice *sp*, renamed to carry the slice's ``matrix:`` values
        (``name[key=value]``), so that every combination's tests are tests of their own."""
        if not sp.items or not sp.items[0].matrix:
            return list(results)
        pairs = sp.items[0].matrix
        label = sp.items[0].matrix_label
        return [dataclasses.replace(r, name=f"{r.name}[{label}]", matrix=pairs) for r in results]

    def rerun_failed(
        self,
        plan: Plan,
        merged: list[TestResult],
        *,
        retries: int,
        runner: str | None,
        function: str,
        run_slice: Callable[[SlicePlan, int, bool], tuple[SliceResult, Any]],
        cancelled: Callable[[], bool],
    ) -> tuple[list[TestResult], list[SliceResult]]:
        """``--retries`` for a grid: each round reruns the failed combinations, one fresh slice
        per row (one value of every field but the last: a sub-grid), and keeps the earlier
        failures as attempts (flaky when a rerun passes), as for any split call."""
        owner: dict[str, tuple[Item, TestCase | None]] = {}
        for sp in plan.slices:
            if runner is None:
                for it in sp.items:
                    owner[f"{it.path}::{it.test_name(function)}"] = (it, None)
                continue
            label = sp.items[0].matrix_label if sp.items else ""
            for case in sp.tests:
                home = next((it for it in sp.items if it.path == case.path), None)
                if home is not None:
                    owner[test_id(case.path, f"{case.name}[{label}]", case.occurrence)] = (
                        home,
                        case,
                    )
        final = {r.id: r for r in merged}
        reruns: list[SliceResult] = []
        index = max((sp.index for sp in plan.slices), default=0)
        for _ in range(retries):
            failed = [r for r in final.values() if r.status.is_bad and r.id in owner]
            if not failed or cancelled():
                break
            rows: dict[tuple[tuple[str, str], ...], tuple[dict[Item, None], list[TestCase]]] = {}
            for r in failed:
                item, test = owner[r.id]
                items, tests = rows.setdefault(item.matrix, ({}, []))
                if test is not None and item.name is None and self.axes[-1].nested:
                    item = Item((item.selector[0], test.name), item.path, item.matrix)
                items.setdefault(item)
                if test is not None:
                    tests.append(test)
            for items, tests in rows.values():
                index += 1
                sp = SlicePlan(
                    index=index, items=tuple(items), predicted_seconds=0.0, tests=tuple(tests)
                )
                result, _ = run_slice(sp, index, runner is not None)
                reruns.append(result)
                for again in result.results:
                    before = final.get(again.id)
                    if before is None or not before.status.is_bad:
                        continue
                    attempt = Attempt(before.status, before.seconds, before.message, before.details)
                    final[again.id] = dataclasses.replace(
                        again, attempts=(*before.attempts, attempt)
                    )
        return [final[r.id] for r in merged], reruns

    def is_sub_grid(self, items: Sequence[Item]) -> bool:
        """Whether *items* are exactly the product of the values they use."""
        fields = self.receiver_fields(items)
        return len({item.key for item in items}) == math.prod(len(v) for v in fields.values())

    def tests(self, items: Sequence[Item], function: str) -> dict[str, list[TestCase]]:
        """One expected result per combination, by item key (for work no runner reports)."""
        return {item.key: [TestCase(item.path, item.test_name(function))] for item in items}

    def plan(
        self,
        items: Sequence[Item],
        tests_of: dict[str, list[TestCase]],
        *,
        slice_tests: Mapping[str, Sequence[TestCase]] | None = None,
        function: str,
        instance: str,
        runner: str | None,
        workers: int,
        executor: str,
        store: TimingStore | None,
        shard: tuple[int, int] | None,
    ) -> PlannedSplit:
        """Cut the selected combinations into sub-grids from the timing history.

        Samples are kept per combination; one without history borrows from the same item
        under the other values (:func:`~dagpar_cli.timings.predict.borrow_across_matrix`),
        else from the item's history before it was part of a matrix.

        :param tests_of: each item's tests as their results are named (for the predictions).
        :param slice_tests: each item's tests as the runner selects them (default *tests_of*).
        :param function: the split function (what work without a runner is named after).
        """
        seconds: dict[str, float] = {item.key: DEFAULT_ITEM_SECONDS for item in items}
        has_history = False
        startup = DEFAULT_STARTUP.get(executor, 0.5)
        if store is not None:
            prediction = store.predict_detailed(instance, items, tests_of)
            has_history = prediction.has_history
            seconds, still = borrow_across_matrix(items, prediction.seconds, prediction.estimated)
            if still:
                seconds.update(self._before(store, instance, items, still, slice_tests, function))
            measured = store.startup_seconds(runner or "custom", executor)
            if measured is not None:
                startup = measured
        plan = plan_grid(
            items,
            seconds,
            workers=workers,
            max_slices=OVERSLICE * workers if has_history else workers,
            startup=startup,
            tests=tests_of if slice_tests is None else slice_tests,
            # Whole rows share a slice only where the receiver alone tells them apart.
            merge_rows=runner is None and len(self.axes) == 2 and not self.configured,
            shard=shard,
        )
        return PlannedSplit(plan, {}, startup)

    def _before(
        self,
        store: TimingStore,
        instance: str,
        items: Sequence[Item],
        unknown: frozenset[str],
        slice_tests: Mapping[str, Sequence[TestCase]] | None,
        function: str,
    ) -> dict[str, float]:
        """Predictions for *unknown* combinations from their item's history outside a matrix
        (the tests as the runner names them, or the function's work on the item)."""
        bases = {it.key: Item(it.selector, it.path) for it in items if it.key in unknown}
        native = {
            base.key: list(slice_tests.get(key, ()))
            if slice_tests is not None
            else [TestCase(base.path, base.test_name(function))]
            for key, base in bases.items()
        }
        earlier = store.predict_detailed(instance, list(dict.fromkeys(bases.values())), native)
        return {
            key: earlier.seconds[base.key]
            for key, base in bases.items()
            if base.key not in earlier.estimated and base.key in earlier.seconds
        }

    def complete(
        self,
        sp: SlicePlan,
        reported: Sequence[TestResult],
        function: str,
        error: str,
        *,
        interrupted: bool,
        seconds: float,
    ) -> list[TestResult]:
        """*reported*, plus one result for each combination of the slice that the toolchain
        did not report through ``dag.parallel.task`` (passed, or the slice's error)."""
        seen = {r.id for r in reported}
        missing = [
            item for item in sp.items if f"{item.path}::{item.test_name(function)}" not in seen
        ]
        share = seconds / max(1, len(sp.items))
        if interrupted:
            status, message = Status.ERROR, "interrupted"
        elif error:
            status, message = Status.FAILED, error
        else:
            status, message = Status.PASSED, ""
        return list(reported) + [
            TestResult(
                path=item.path,
                name=item.test_name(function),
                status=status,
                message=message,
                seconds=share,
                matrix=item.matrix,
            )
            for item in missing
        ]


def matrix_config(config: ToolchainConfig, items: Sequence[Item]) -> ToolchainConfig:
    """*config* under the ``matrix:`` values of *items* (a slice's: one value of each key);
    under the first values when *items* is empty (listing, and work outside a slice)."""
    if not items:
        return config.with_values({k.key: k.labels[0] for k in config.matrix})
    keys = {k.key for k in config.matrix}
    return config.with_values({k: v for k, v in items[0].matrix if k in keys})


def item_of(value: Any, nested: bool, prefix: str, field_name: str) -> Item:
    """The item of one element of a single ``+parallel`` field."""
    if nested:
        if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
            raise TestsFailedError(
                f"+parallel field '{field_name}' holds {value!r}; "
                "a list[list[str]] field needs non-empty lists of strings"
            )
        selector = tuple(str(v) for v in value)
    else:
        if not isinstance(value, str):
            raise TestsFailedError(
                f"+parallel field '{field_name}' holds {value!r}; a list[str] field needs strings"
            )
        selector = (value,)
    return Item(selector, join_path(prefix, selector[0]))


def _axis(fdef: FieldDef, raw: Sequence[Any]) -> Axis:
    values: list[Any] = []
    labels: list[str] = []
    for value in raw:
        if fdef.nested:
            if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
                raise TestsFailedError(
                    f"+parallel field '{fdef.name}' holds {value!r}; "
                    "a list[list[str]] field needs non-empty lists of strings"
                )
            label = "::".join(str(v) for v in value)
        else:
            if not isinstance(value, str):
                raise TestsFailedError(
                    f"+parallel field '{fdef.name}' holds {value!r}; "
                    "a list[str] field needs strings"
                )
            label = value
        values.append(value)
        labels.append(label)
    return Axis(fdef.name, tuple(values), tuple(labels), fdef.nested)


def _display(file: str, workspace: Path) -> str:
    try:
        return str(Path(file).resolve().relative_to(workspace.resolve()))
    except (ValueError, OSError):
        return file


class MatrixFilter:
    """``--matrix FIELD=GLOB`` (repeatable): the combinations a run keeps.

    Globs of one field are OR'ed, fields are AND'ed; a glob matches the value's label (``*``
    matches anything). A split call without the field keeps nothing. The values every grid
    offered are remembered, so that a filter that matched nothing can list them.

    :raises UsageError: a text is not ``FIELD=GLOB``.
    """

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = tuple(texts)
        self._globs: dict[str, list[re.Pattern[str]]] = {}
        for text in self.texts:
            name, sep, glob = text.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or not name or not glob:
                raise UsageError(
                    f"--matrix {text!r}: expected FIELD=GLOB, e.g. --matrix 'image=*3.12*'"
                )
            self._globs.setdefault(name, []).append(re.compile(translate_glob(glob, separators="")))
        #: Labels seen per field, in the order first seen.
        self.values: dict[str, dict[str, None]] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._globs)

    def narrow(self, items: Sequence[Item], grid: Grid | None) -> list[Item]:
        """The items whose combination matches every field of the filter."""
        if not self._globs:
            return list(items)
        last = grid.names[-1] if grid is not None else None
        kept = []
        with self._lock:
            for item in items:
                pairs = dict(item.matrix)
                if last is not None:
                    pairs[last] = "::".join(item.selector)
                for name, label in pairs.items():
                    self.values.setdefault(name, {})[label] = None
                if all(
                    name in pairs and any(g.fullmatch(pairs[name]) for g in globs)
                    for name, globs in self._globs.items()
                ):
                    kept.append(item)
        return kept

    def nothing_matched(self) -> str:
        """The exit-5 message: what was asked, and the values that exist."""
        given = " ".join(f"--matrix {t!r}" for t in self.texts)
        if not self.values:
            return (
                f"{given} matched nothing: no check runs a matrix (several +parallel fields, "
                "or matrix: in dagpar.yaml)"
            )
        shown = []
        for name, labels in self.values.items():
            values = list(labels)
            more = f", ... ({len(values)} values)" if len(values) > 12 else ""
            shown.append(f"{name}: {', '.join(values[:12])}{more}")
        return f"{given} matched no combination; the values that exist: {'; '.join(shown)}"
