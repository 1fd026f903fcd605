"""OTel test spans name the matrix combination a test ran under."""

from __future__ import annotations

from pathlib import Path

from test_otel import (  # type: ignore[import-not-found]
    Receiver,
    _by_name,
    _session,
    receiver,  # noqa: F401  (a fixture)
    tracing,  # noqa: F401  (a fixture)
)

from dagpar_cli.model import (
    CheckResult,
    Item,
    RunResult,
    SlicePlan,
    SliceResult,
    Status,
    TestResult,
)


def test_test_spans_carry_the_combination(tmp_path: Path, tracing: Receiver) -> None:  # noqa: F811
    session = _session(tmp_path)
    hook = session.pm.hook
    check = "cells:test"
    item = Item(("f0.py",), "f0.py", (("pythons", "3.12"),))
    plan = SlicePlan(index=1, items=(item,), predicted_seconds=1.0)
    result = TestResult(
        path="f0.py",
        name="run[pythons=3.12]",
        status=Status.PASSED,
        seconds=0.01,
        matrix=(("pythons", "3.12"),),
    )
    hook.dagpar_slice_started(check=check, slice=plan, total=1, field="Grid.files")
    done = SliceResult(index=1, items=(item,), results=(result,), seconds=0.02)
    hook.dagpar_slice_finished(check=check, slice=plan, result=done)
    checked = CheckResult(name=check, results=(result,), slices=(done,), seconds=0.03)
    hook.dagpar_check_finished(result=checked)
    run = RunResult(checks=(checked,), seconds=0.05)
    hook.dagpar_report(run=run, session=session)
    hook.dagpar_sessionfinish(run=run, exitcode=0)
    # The session's end flushes every span to the collector.
    span = _by_name(tracing.spans)["f0.py::run[pythons=3.12]"]
    assert span.attributes["dagpar.matrix.pythons"] == "3.12"
