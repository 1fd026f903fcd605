"""Reading pytest's JUnit XML report into dagpar's per-test results.

Each ``testcase`` of a slice's run carries ``dagpar.path``/``dagpar.name`` properties that the
selection plugin (:mod:`dagpar_plugins.pytest.pytest_select`) attached, so names round-trip exactly.
Test cases without them (collection errors, or a report written without the plugin) fall back to
the ``file`` attribute of ``junit_family=xunit1`` and JUnit's dotted ``classname``.

pytest writes two ``testcase`` elements for one test whose call failed and whose teardown then
errored; they are merged into one result: ``failed`` when any part failed, else ``error`` when
any part errored, else ``skipped`` when skipped, else ``passed``. The message is that of the part
that decided the status; the details hold every part's text.

pytest's own ``classname`` is not passed on: it is relative to pytest's rootdir, not to the
workspace, so dagpar's JUnit report derives one from the workspace-relative path instead.

A test's seconds are its ``dagpar.seconds`` property where the plugin wrote one (what the test
cost the run, pytest's own work around its phases included), else JUnit's ``time``.

The tests that passed are usually not in the report at all (see
:mod:`dagpar_plugins.pytest.pytest_junit`): their results come from their end events in the
plugin's event file, with its seconds, start and file's collection seconds, placed where they
ran among the report's results. A report is still needed: without one, nothing is read. The
slice's live stream has usually decoded those events already (:meth:`PytestStream.ended
<dagpar_plugins.pytest.stream.PytestStream.ended>`): the runner hands them over, and the file is
read here only when no stream read it whole.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dagpar_cli import Status, TestResult, untrusted

from .bounded import read_cases
from .collect import COLLECTION_ERROR
from .files import (
    ID_PROPERTY,
    NAME_PROPERTY,
    PATH_PROPERTY,
    REPORT_FILE,
    RUN_INFO_FILE,
    SECONDS_PROPERTY,
    SELECTION_FILE,
    SETUP_PROPERTY,
)
from .paths import RootdirMap
from .stream import PytestStream

__all__ = ["parse_report"]


_RANK = {Status.PASSED: 0, Status.SKIPPED: 1, Status.ERROR: 2, Status.FAILED: 3}


@dataclass
class _Partial:
    """The parts of one test's result while its ``testcase`` elements are merged."""

    status: Status = Status.PASSED
    seconds: float = 0.0
    #: The selection plugin's ``dagpar.seconds``: what the test cost the run, pytest's work
    #: around its phases included (0: not tagged).
    cost: float = 0.0
    #: The selection plugin's ``dagpar.setup``: the seconds its file took to collect.
    setup: float = 0.0
    message: str = ""
    details: list[str] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)


def _one_line(text: str) -> str:
    """The first non-empty line of *text*, stripped."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _message(kind: str, element: ET.Element) -> str:
    """A one-line message for a failure, error or skip element."""
    message = element.get("message") or ""
    text = element.text or ""
    if kind == "error" and message == "collection failure":
        # The useful part of a collection error is the exception, on the last ``E`` line.
        lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
        if lines:
            return f"collection failure: {lines[-1]}"
    if kind == "skipped" and element.get("type") == "pytest.xfail":
        return f"xfail: {_one_line(message)}" if message.strip() else "xfail"
    return _one_line(message) or _one_line(text)


def _properties(case: ET.Element) -> dict[str, str]:
    props: dict[str, str] = {}
    for prop in case.iterfind("properties/property"):
        name = prop.get("name")
        if name is not None:
            props[name] = prop.get("value") or ""
    return props


def _fallback_id(case: ET.Element, rootdirs: RootdirMap) -> tuple[str, str] | None:
    """``(path, name)`` of a test case the selection plugin did not tag."""
    file = case.get("file")
    name = case.get("name") or ""
    classname = case.get("classname") or ""
    if not file:
        return None
    path = rootdirs.map(file)
    if not classname:
        # pytest gives a collection error an empty classname and the mangled path as name.
        return path, COLLECTION_ERROR
    module = posixpath.splitext(posixpath.normpath(file))[0].replace("/", ".")
    classes = classname[len(module) + 1 :].split(".") if classname.startswith(module + ".") else []
    return path, "::".join([*classes, name])


def _load_rootdirs(report_dir: Path, source_dir: Path, args: tuple[str, ...]) -> RootdirMap:
    rootdir: Path | None = None
    try:
        info = json.loads(untrusted.read_text(report_dir, RUN_INFO_FILE))
        # The recorded paths are where the run happened (a container, maybe): keep only how the
        # rootdir sits relative to the invocation directory.
        rel = posixpath.relpath(info["rootdir"], info["invocation_dir"])
        # normpath, not resolve(): resolving symlinks would move it away from source_dir.
        rootdir = Path(os.path.normpath(source_dir / rel))
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        pass
    return RootdirMap(source_dir, args, rootdir=rootdir)


def _iter_cases(report_dir: Path, name: str) -> tuple[list[ET.Element], str]:
    """Every complete ``testcase`` element of the report *name* in *report_dir* (read without
    following links, each text cut to a bounded head and tail), and the parse error ("" when
    none).

    The test cases before a malformed spot (a report cut short by a crash) stand.
    """
    problems: list[str] = []
    cases: list[ET.Element] = []
    try:
        with untrusted.open_binary(report_dir, name) as stream:
            cases.extend(read_cases(stream, problems))
    except OSError as exc:
        return cases, str(exc)
    return cases, problems[0] if problems else ""


def _selected_tests(report_dir: Path) -> list[tuple[str, str]]:
    """The tests the slice named explicitly (for reporting a malformed report against them)."""
    try:
        data = json.loads(untrusted.read_text(report_dir, SELECTION_FILE))
        return [(str(path), str(name)) for path, name in data.get("tests", [])]
    except (OSError, ValueError, TypeError, AttributeError, RecursionError):
        return []


def parse_report(
    report_dir: Path,
    source_dir: Path,
    args: tuple[str, ...] = (),
    ended: Sequence[TestResult] | None = None,
) -> list[TestResult]:
    """The results in the JUnit report under *report_dir*; [] when there is no report.

    :param report_dir: the host directory the command's ``{report_dir}`` pointed at.
    :param source_dir: the toolchain's source directory on the host.
    :param args: the user's extra pytest arguments (they may move pytest's rootdir).
    :param ended: the results of the event file's end events, in order, when a stream that read
        it whole has them (:meth:`PytestStream.ended
        <dagpar_plugins.pytest.stream.PytestStream.ended>`); None: the file is read here.
    """
    report = report_dir / REPORT_FILE
    try:
        # The report directory is the container's to write: a link there is not followed.
        untrusted.regular(report_dir, REPORT_FILE)
    except FileNotFoundError:
        return []
    except OSError as exc:
        message = f"pytest's JUnit report cannot be read: {exc}"
        selected = _selected_tests(report_dir) or [(REPORT_FILE, "report")]
        return [
            TestResult(path=path, name=name, status=Status.ERROR, message=message)
            for path, name in selected
        ]
    cases, problem = _iter_cases(report_dir, REPORT_FILE)
    rootdirs = _load_rootdirs(report_dir, source_dir, args)
    merged: dict[tuple[str, str], _Partial] = {}
    for case in cases:
        props = _properties(case)
        key = _tagged_id(props)
        if key is None:
            key = _fallback_id(case, rootdirs)
        if key is None:
            continue
        part = merged.setdefault(key, _Partial())
        _merge(part, case)
        part.cost = max(part.cost, _seconds(props.get(SECONDS_PROPERTY)))
        part.setup = max(part.setup, _seconds(props.get(SETUP_PROPERTY)))
    if ended is None:
        ended = _ended(report_dir)
    results = _with_passes(
        [
            TestResult(
                path=path,
                name=name,
                status=part.status,
                seconds=max(part.seconds, part.cost),
                message=part.message,
                details="\n\n".join(part.details),
                stdout="".join(part.stdout),
                setup_seconds=part.setup,
            )
            for (path, name), part in merged.items()
        ],
        ended,
    )
    if problem:
        message = f"pytest's JUnit report {report.name} is malformed: {problem}"
        # Tests whose end the event stream holds keep that result (dagpar reads the stream):
        # only those neither source knows are errors.
        streamed = {(r.path, r.name) for r in ended}
        results.extend(
            TestResult(path=path, name=name, status=Status.ERROR, message=message)
            for path, name in _selected_tests(report_dir)
            if (path, name) not in merged and (path, name) not in streamed
        )
    return results


def _tagged_id(props: dict[str, str]) -> tuple[str, str] | None:
    """``(path, name)`` from the selection plugin's properties, if it tagged the test."""
    if ID_PROPERTY in props:
        try:
            path, name = json.loads(props[ID_PROPERTY])
        except (ValueError, TypeError, RecursionError):
            return None
        if isinstance(path, str) and isinstance(name, str):
            return path, name
        return None
    if PATH_PROPERTY in props and NAME_PROPERTY in props:
        return props[PATH_PROPERTY], props[NAME_PROPERTY]
    return None


def _ended(report_dir: Path) -> list[TestResult]:
    """The results the selection plugin's end events hold, in the order the tests ended."""
    return PytestStream(report_dir).ended() or []  # a fresh stream's failed read raises


def _with_passes(reported: list[TestResult], ended: Sequence[TestResult]) -> list[TestResult]:
    """*reported* (the JUnit report's results, in its order) and the passing tests the plugin
    left out of the report (their end events hold them), in the order the tests ran."""
    reported_ids = {(r.path, r.name) for r in reported}
    passes: dict[tuple[str, str], TestResult] = {}
    place: dict[tuple[str, str], int] = {}
    for index, result in enumerate(ended):
        key = (result.path, result.name)
        place.setdefault(key, index)
        if key in reported_ids or result.status is not Status.PASSED:
            continue
        earlier = passes.get(key)
        # One test ended twice: one result, as the report merges its test cases.
        passes[key] = (
            result
            if earlier is None
            else earlier.replaced(seconds=earlier.seconds + result.seconds)
        )
    if not passes:
        return reported
    if not reported and len(passes) == len(ended):
        return list(passes.values())  # each test ended once, passing: in the order they ended
    # A reported test without an end event (a collection error) stays after the reported test
    # before it; every other test goes where it ended.
    order: list[tuple[tuple[int, int, int], TestResult]] = []
    last = -1
    for sequence, result in enumerate(reported):
        at = place.get((result.path, result.name))
        if at is not None:
            last = at
        order.append(((last, 0 if at is not None else 1, sequence), result))
    order.extend(((place[key], 0, 0), result) for key, result in passes.items())
    order.sort(key=lambda pair: pair[0])
    return [result for _, result in order]


def _seconds(text: str | None) -> float:
    """Seconds written as *text*; 0 for anything that is not a finite positive number."""
    try:
        seconds = float(text or 0.0)
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0  # not "nan", "-1"


def _merge(part: _Partial, case: ET.Element) -> None:
    """Fold one ``testcase`` element into *part*."""
    seconds = _seconds(case.get("time"))
    if seconds:
        part.seconds = min(part.seconds + seconds, sys.float_info.max)
    for kind, status in (
        ("failure", Status.FAILED),
        ("error", Status.ERROR),
        ("skipped", Status.SKIPPED),
    ):
        for element in case.iterfind(kind):
            if _RANK[status] > _RANK[part.status]:
                part.status = status
                part.message = _message(kind, element)
            text = (element.text or "").strip()
            if text:
                part.details.append(text)
    for out in case.iterfind("system-out"):
        part.stdout.append(out.text or "")
