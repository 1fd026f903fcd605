"""``dag``: the entry point toolchain code uses to build pipelines and report per-item work."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from dagpar_cli.model import Status, TestResult
from dagpar_cli.runtime.context import current_call, current_slice
from dagpar_cli.sdk.container import Container
from dagpar_cli.sdk.directory import Directory

__all__ = ["Dag", "SliceInfo", "dag"]


@dataclass(frozen=True, slots=True)
class SliceInfo:
    """Which slice the calling code runs in."""

    #: 1-based index.
    index: int
    #: How many slices the split call has.
    total: int
    #: A host directory private to the slice (reports, scratch files).
    report_dir: Path


class Parallel:
    """``dag.parallel``: per-item telemetry for toolchains that loop over their items."""

    @contextmanager
    def task(self, item: str | Sequence[str], /, **matrix: str) -> Iterator[None]:
        """Time the work on one item of the ``+parallel`` field and report it as one test.

        Inside a slice the block's duration feeds the timing store under that item, and its
        outcome (an exception fails it) is the item's status; elsewhere it only runs the block::

            for path in self.files:
                with dag.parallel.task(path):
                    lint(path)

        On a type with several ``+parallel`` fields, *item* is the last field's value and the
        keywords name the others' (``dag.parallel.task(path, pythons=python)``): one
        combination, timed and reported on its own. A field the slice holds one value of may be
        left out.
        """
        ctx = current_slice()
        selector = (item,) if isinstance(item, str) else tuple(item)
        match = None
        if ctx is not None:
            candidates = [
                it
                for it in ctx.items_named(selector)
                if all(dict(it.matrix).get(k) == v for k, v in matrix.items())
            ]
            if len(candidates) > 1:
                names = ", ".join(sorted({k for it in candidates for k, _ in it.matrix}))
                raise ValueError(
                    f"dag.parallel.task: {item!r} is in several combinations of this slice; "
                    f"name them with keywords ({names})"
                )
            if not candidates:
                shown = f"{item!r}" + "".join(f", {k}={v!r}" for k, v in matrix.items())
                raise ValueError(f"dag.parallel.task: {shown} is not an item of this slice")
            match = candidates[0]
        start = time.monotonic()
        status, message = Status.PASSED, ""
        span = ctx.call.runtime.task_span(ctx, match.key) if ctx and match else nullcontext()
        try:
            with span:
                yield
        except BaseException as exc:
            status, message = Status.FAILED, f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if ctx is not None and match is not None:
                name = match.test_name(ctx.function)
                ctx.report(
                    [
                        TestResult(
                            path=match.path,
                            name=name,
                            status=status,
                            seconds=time.monotonic() - start,
                            message=message,
                            matrix=match.matrix,
                        )
                    ]
                )


class Dag:
    """The object toolchains build on: ``dag.container()``, ``dag.directory()``,
    ``dag.parallel.task(item)`` and ``dag.current_slice()``."""

    parallel = Parallel()

    def container(self) -> Container:
        """An empty pipeline; see :class:`~dagpar_cli.sdk.container.Container`."""
        return Container()

    def directory(self) -> Directory:
        """A new empty directory on the host, for a pipeline to write results into."""
        call = current_call()
        if call is not None:
            return Directory(call.runtime.new_dir("directory"))
        import tempfile

        return Directory(Path(tempfile.mkdtemp(prefix="dagpar-dir-")))

    def current_slice(self) -> SliceInfo | None:
        """The slice this code runs in, or None outside a split call."""
        ctx = current_slice()
        if ctx is None:
            return None
        return SliceInfo(index=ctx.plan.index, total=ctx.total, report_dir=ctx.report_dir)


#: The one ``dag`` toolchain code imports.
dag = Dag()
