"""The nouns that flow between the pipeline's stages.

Every stage takes and returns these frozen, slotted values; they are serialised explicitly (see
``to_json``) wherever they cross a process, container or CI-node boundary.

Paths
    ``TestCase.path``/``TestResult.path`` and ``Item.path`` are POSIX paths relative to the
    **workspace root** inside the engine (what ``git status`` prints). Runner plugins speak in paths
    relative to their toolchain's ``source`` directory; the engine converts at the boundary with
    :meth:`TestCase.under` / :meth:`TestResult.under`.
"""

from __future__ import annotations

import enum
import posixpath
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

# The runner contract types lived here before they got a module of their own; they are still
# importable from here.
from dagpar_cli.runner_api import (
    REPORT_DIR_PLACEHOLDER,
    RunnerCommand,
    RunnerSpec,
    Selection,
    TailChooser,
)

__all__ = [
    "REPORT_DIR_PLACEHOLDER",
    "Attempt",
    "CheckResult",
    "Item",
    "Plan",
    "RunResult",
    "RunnerCommand",
    "RunnerSpec",
    "Selection",
    "SlicePlan",
    "SliceResult",
    "Status",
    "TailChooser",
    "TestCase",
    "TestResult",
    "join_path",
    "matrix_label",
    "test_id",
]


def test_id(path: str, name: str, occurrence: int = 0) -> str:
    """A test's identity: ``path::name``, and ``path::name::#N`` for the N-th (1-based) of
    several tests that share path and name, from the second on."""
    base = f"{path}::{name}"
    return base if occurrence == 0 else f"{base}::#{occurrence + 1}"


def join_path(prefix: str, path: str) -> str:
    """Join a source-relative *path* under the workspace-relative *prefix* (``""`` = root)."""
    if not prefix or prefix == ".":
        return posixpath.normpath(path) if path else "."
    return posixpath.normpath(posixpath.join(prefix, path)) if path and path != "." else prefix


class Status(str, enum.Enum):
    """The outcome of one test, as JUnit knows it."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"

    @property
    def is_bad(self) -> bool:
        """Whether this status fails the check."""
        return self in _BAD  # a set: asked of every result, several times per run


#: The statuses that fail a check.
_BAD = frozenset({Status.FAILED, Status.ERROR})


@dataclass(frozen=True, slots=True)
class TestCase:
    """A test that a runner listed: the unit of selection and of reporting.

    :param path: the file (pytest, Jest) or package directory (Go) the test lives in.
    :param name: the runner's own name: pytest ``Class::test[param]``, Jest ``"describe test"``
        (parts joined by one space), Go ``TestX`` or ``TestX/sub``.
    :param occurrence: which of the tests that share *path* and *name* this is, counted from 0
        in the runner's order. Jest runs every ``test("same", ...)`` a file registers, however
        many share a name; each is a test of its own.
    """

    __test__ = False  # not a pytest test class

    path: str
    name: str
    occurrence: int = 0

    @property
    def id(self) -> str:
        """``path::name`` (``path::name::#2`` for a later test of the same name): unique within
        one toolchain instance."""
        return test_id(self.path, self.name, self.occurrence)

    def under(self, prefix: str) -> TestCase:
        """This test with its path moved under *prefix*."""
        return replace(self, path=join_path(prefix, self.path))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One earlier, failed run of a test that was rerun (``--retries``)."""

    status: Status
    seconds: float
    message: str = ""
    details: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TestResult:
    """The reported outcome of one test.

    ``status`` is the final outcome; ``attempts`` holds the earlier failed runs when the test was
    rerun, so a test is *flaky* when it has attempts and finally passed.
    """

    __test__ = False  # not a pytest test class

    #: File or package the test lives in (see the module docstring for what it is relative to).
    path: str
    #: The runner's name of the test.
    name: str
    #: Final status.
    status: Status
    #: Wall seconds of the final attempt.
    seconds: float = 0.0
    #: One line: the failure, error or skip reason.
    message: str = ""
    #: The long form: traceback, assertion diff, compiler output.
    details: str = ""
    #: JUnit ``classname``; derived from the path when empty.
    classname: str = ""
    #: Captured output of the test, when the runner reports it per test.
    stdout: str = ""
    #: Earlier failed attempts, oldest first.
    attempts: tuple[Attempt, ...] = ()
    #: The check that ran it (``instance:function``), filled in by the engine.
    check: str = ""
    #: 1-based index of the slice that ran it, filled in by the engine (0 = not run in a slice).
    slice: int = 0
    #: Which of the tests sharing ``path`` and ``name`` this is (see :class:`TestCase`).
    occurrence: int = 0
    #: Wall-clock time (``time.time()``) at which the final attempt started; None when the
    #: runner did not say.
    start: float | None = None
    #: The matrix combination it ran under, as ``(field, value)`` pairs (``()`` outside one).
    matrix: tuple[tuple[str, str], ...] = ()
    #: Seconds the runner spent in this slice preparing the test's file or package before running
    #: it (Go: compiling, linking and vetting the test binary), not part of :attr:`seconds`. Set
    #: on one result per path and slice; 0 when the runner does not say. Every slice that runs
    #: any test of the path pays it again, so the timing store keeps it per path.
    setup_seconds: float = 0.0

    @property
    def id(self) -> str:
        """``path::name`` (``path::name::#2`` for a later test of the same name): unique within
        one check."""
        return test_id(self.path, self.name, self.occurrence)

    @property
    def case(self) -> TestCase:
        """The test this result is about."""
        return TestCase(self.path, self.name, self.occurrence)

    @property
    def flaky(self) -> bool:
        """Failed at first, passed on a rerun."""
        return bool(self.attempts) and self.status is Status.PASSED

    def under(self, prefix: str) -> TestResult:
        """This result with its path moved under *prefix*."""
        path = join_path(prefix, self.path)
        # Most results already have the path they need: a copy costs more than the join.
        return self if path == self.path else self.replaced(path=path)

    def replaced(self, **changes: Any) -> TestResult:
        """This result with *changes* to its fields, as :func:`dataclasses.replace` makes it, at
        half the cost: a result is copied on its way from the runner to the reports, and a run
        may have hundreds of thousands.

        :raises TypeError: for a name that is not a field.
        """
        if type(self) is not TestResult:
            return replace(self, **changes)
        new = _new_object(TestResult)
        for get, set_ in _RESULT_SLOTS:
            set_(new, get(self))
        for name, value in changes.items():
            setter = _RESULT_SETTERS.get(name)
            if setter is None:
                raise TypeError(f"TestResult has no field named {name!r}")
            setter(new, value)
        return new

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``--json`` output, CI artifacts)."""
        data: dict[str, Any] = {
            "id": self.id,
            "file": self.path,
            "name": self.name,
            "status": self.status.value,
            "seconds": round(self.seconds, 6),
        }
        if self.occurrence:
            data["occurrence"] = self.occurrence
        if self.start is not None:
            data["start"] = round(self.start, 6)
        if self.matrix:
            data["matrix"] = dict(self.matrix)
        if self.message:
            data["message"] = self.message
        if self.attempts:
            data["flaky"] = self.flaky
            data["attempts"] = [
                {"status": a.status.value, "seconds": round(a.seconds, 6), "message": a.message}
                for a in self.attempts
            ]
        if self.check:
            data["check"] = self.check
        if self.slice:
            data["slice"] = self.slice
        return data


# TestResult.replaced sets the slots of a new object directly, as the generated ``__init__``
# does, one descriptor call per field; that is all ``__init__`` may do (no ``__post_init__``).
_new_object = object.__new__
_RESULT_SETTERS: dict[str, Any] = {
    f: getattr(TestResult, f).__set__ for f in TestResult.__dataclass_fields__
}
_RESULT_SLOTS: tuple[tuple[Any, Any], ...] = tuple(
    (getattr(TestResult, f).__get__, setter) for f, setter in _RESULT_SETTERS.items()
)


@dataclass(frozen=True, slots=True)
class Item:
    """One element of a ``+parallel`` field.

    :param selector: the value as the toolchain holds it: ``("src/a.test.ts",)`` for a
        ``list[str]`` field, or the inner list of a ``list[list[str]]`` field (``("pkg/store",
        "TestPut")``), an opaque path selector whose first part is a path.
    :param path: ``selector[0]`` relative to the workspace root, used by filters, plans and the
        timing store.
    :param matrix: for one combination of a type with several ``+parallel`` fields, the other
        fields' values as ``(field, value)`` pairs (the selector is the last field's value).
    """

    selector: tuple[str, ...]
    path: str
    matrix: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str | None:
        """The finer part of a selector (``"TestPut"``), or None for a whole file or package."""
        return "::".join(self.selector[1:]) if len(self.selector) > 1 else None

    @property
    def matrix_label(self) -> str:
        """``field=value,...`` naming the combination (``""`` outside a matrix)."""
        return matrix_label(self.matrix)

    @property
    def key(self) -> str:
        """A stable string for this item: the path, plus ``::name`` for a finer selector, plus
        ``[field=value,...]`` for one combination of a matrix."""
        name = self.name
        key = f"{self.path}::{name}" if name is not None else self.path
        return f"{key}[{self.matrix_label}]" if self.matrix else key

    def test_name(self, function: str) -> str:
        """The result name of this item's work when no runner reports tests: the function,
        ``::name`` for a finer selector, ``[field=value,...]`` for a combination."""
        name = function if self.name is None else f"{function}::{self.name}"
        return f"{name}[{self.matrix_label}]" if self.matrix else name

    def to_json(self) -> str | list[str] | dict[str, Any]:
        """The ``--dry-run --json`` form: a path, or a list for a finer selector; for one
        combination of a matrix, ``{"item": that, "matrix": {field: value}}``."""
        name = self.name
        item = self.path if name is None else [self.path, *self.selector[1:]]
        return {"item": item, "matrix": dict(self.matrix)} if self.matrix else item


def matrix_label(matrix: Sequence[tuple[str, str]]) -> str:
    """``field=value,...``: how reports name one combination of a matrix."""
    return ",".join(f"{field}={value}" for field, value in matrix)


@dataclass(frozen=True, slots=True, kw_only=True)
class SlicePlan:
    """One planned slice: a subset of the items, in parent order."""

    #: 1-based position in the plan.
    index: int
    #: The items, in the order the parent field held them.
    items: tuple[Item, ...]
    #: Predicted seconds, start-up included.
    predicted_seconds: float
    #: The tests the slice is expected to report (empty when the runner cannot list tests).
    tests: tuple[TestCase, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The ``--dry-run --json`` form of this slice."""
        data: dict[str, Any] = {
            "index": self.index,
            "items": [item.to_json() for item in self.items],
            "predicted_seconds": round(self.predicted_seconds, 3),
        }
        if self.tests:
            data["tests"] = [t.id for t in self.tests]
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How one split call is cut into slices."""

    #: The slices, numbered from 1 in the order they start: when slices outnumber workers, the
    #: engine starts slice 1, 2, ... and hands each later slice to the first worker that is free.
    slices: tuple[SlicePlan, ...]
    #: Predicted wall seconds of the whole call on ``workers`` workers.
    predicted_wall_seconds: float
    #: How many slices run at once.
    workers: int
    #: The per-slice start-up cost the prediction assumed.
    startup_seconds: float = 0.0
    #: The name of the planner that made the plan.
    planner: str = ""

    def to_json(self) -> dict[str, Any]:
        """The ``--dry-run --json`` form of this plan."""
        return {
            "slices": [s.to_json() for s in self.slices],
            "predicted_wall_seconds": round(self.predicted_wall_seconds, 3),
            "workers": self.workers,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceResult:
    """What one slice did."""

    #: 1-based slice index (matches :attr:`SlicePlan.index`).
    index: int
    #: The items the slice held.
    items: tuple[Item, ...]
    #: Per-test results the slice reported, or that the engine filled in for it.
    results: tuple[TestResult, ...]
    #: Wall seconds from start to end.
    seconds: float
    #: Predicted seconds (0 when there was no plan).
    predicted_seconds: float = 0.0
    #: Seconds since the start of the run when the slice started (for timelines).
    started: float = 0.0
    #: The error the slice ended with, one line ("" when it succeeded).
    error: str = ""
    #: Whether the error is an infrastructure failure (crash, timeout, missing runner).
    infrastructure_error: bool = False
    #: Where the slice ran (executor name, engine).
    where: str = ""
    #: Fresh runs of the runner the slice started after one died in a test (crash, timeout).
    replacements: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """What one check (or one ``dagpar call`` chain) did."""

    #: ``instance:function``.
    name: str
    #: Every test result of the check, each test exactly once.
    results: tuple[TestResult, ...] = ()
    #: The slices of the check's split calls, in index order.
    slices: tuple[SliceResult, ...] = ()
    #: The plans of the check's split calls.
    plans: tuple[Plan, ...] = ()
    #: The check's own error ("" when none), e.g. the aggregated slice errors.
    error: str = ""
    #: Whether the error is an infrastructure failure.
    infrastructure_error: bool = False
    #: Wall seconds.
    seconds: float = 0.0
    #: Seconds since the start of the run when the check started.
    started: float = 0.0
    #: Whether the check was interrupted.
    interrupted: bool = False

    @property
    def passed(self) -> bool:
        """No error and no failed test."""
        return not self.error and not any(r.status.is_bad for r in self.results)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """The whole run: what the reports are written from."""

    checks: tuple[CheckResult, ...]
    #: Wall seconds of the whole run.
    seconds: float
    #: Predicted wall seconds (sum over checks run one after another), 0 when unknown.
    predicted_seconds: float = 0.0
    #: Whether the run was interrupted.
    interrupted: bool = False
    #: ``(index, total)`` when this run is one CI shard.
    shard: tuple[int, int] | None = None

    @property
    def results(self) -> list[TestResult]:
        """Every test result of every check."""
        return [r for c in self.checks for r in c.results]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form of a run's result."""
        return {
            "status": "passed" if all(c.passed for c in self.checks) else "failed",
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
            "checks": [
                {
                    "name": c.name,
                    "status": "passed" if c.passed else "failed",
                    "error": c.error,
                    "seconds": round(c.seconds, 3),
                    "predicted_wall_seconds": round(
                        sum(p.predicted_wall_seconds for p in c.plans), 3
                    ),
                    "slices": [
                        {
                            "index": s.index,
                            "where": s.where,
                            "started": round(s.started, 3),
                            "seconds": round(s.seconds, 3),
                            "predicted_seconds": round(s.predicted_seconds, 3),
                            "error": s.error,
                            "tests": len(s.results),
                            "replacements": s.replacements,
                        }
                        for s in c.slices
                    ],
                    "tests": [r.to_json() for r in c.results],
                }
                for c in self.checks
            ],
        }


def sorted_results(results: Sequence[TestResult]) -> list[TestResult]:
    """Results in a stable report order: by path, then name, then occurrence."""
    return sorted(results, key=lambda r: (r.path, r.name, r.occurrence))


def __getattr__(name: str) -> str:
    # ``REPORT_DIR`` was renamed: it is a placeholder, not a directory.
    if name == "REPORT_DIR":
        warnings.warn(
            "dagpar_cli.model.REPORT_DIR is deprecated; use dagpar_cli.REPORT_DIR_PLACEHOLDER",
            DeprecationWarning,
            stacklevel=2,
        )
        return REPORT_DIR_PLACEHOLDER
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
