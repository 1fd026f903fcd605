"""Samples in and out of the timing store: from a run, from JUnit XML, to and from JSON exports.

Everything the store holds is a *sample* row ``(instance, kind, key, run_id, ordinal, seconds,
recorded)``; this module makes those rows and checks foreign ones, and the store persists them.

- :class:`SampleRecorder` turns a finished run's results into rows.
- :func:`export_document` and :func:`export_rows` are the ``dagpar timings export``/``merge``
  format, a CI artifact: rows from elsewhere are validated one by one, since an export from
  another machine may hold anything.
- :func:`read_junit` reads JUnit XML written by any tool into dagpar test ids, for ``dagpar
  timings import``.

JUnit XML has no single dialect, so each ``testcase`` is mapped to a workspace-relative
``path::name`` with whatever it carries, best evidence first:

- a ``file`` attribute (pytest's xunit1, jest-junit with ``addFileAttribute``, Node's reporter);
  for a Python file the class part of ``classname`` is prefixed to the name, as pytest ids do;
- a dotted ``classname`` that names a file in the workspace (pytest's xunit2
  ``tests.api.test_orders.TestOrders``, Surefire's ``com.example.CartTest`` found as
  ``src/test/java/com/example/CartTest.java``), or that follows pytest's ``test_*`` module naming;
- a Go import path (gotestsum), mapped to its package directory through the workspace's
  ``go.mod`` files;
- a test the store already knows under exactly that name (jest-junit without file names);
- otherwise the suite's name stands in for the path.
"""

from __future__ import annotations

import hashlib
import math
import os
import posixpath
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dagpar_cli.errors import UsageError
from dagpar_cli.model import RunResult, Status, TestResult
from dagpar_cli.timings.predict import outermost

__all__ = [
    "EXPORT_FORMAT",
    "ITEM",
    "SCHEMA_VERSION",
    "SETUP",
    "SLICE_TESTS",
    "STARTUP",
    "TEST",
    "ImportedCase",
    "JunitFile",
    "Sample",
    "SampleRecorder",
    "TimingsFormatError",
    "export_document",
    "export_rows",
    "import_instance",
    "junit_samples",
    "read_junit",
    "run_samples",
]

#: The schema the store reads and writes, which is also the export format's version.
SCHEMA_VERSION = 1
#: The ``export_json`` format marker.
EXPORT_FORMAT = "dagpar-timings"

# Sample kinds: per test id, per whole item (file or package), per slice start-up.
TEST = "test"
ITEM = "item"
STARTUP = "startup"
#: Per path: what a slice spends preparing it before its tests run (``TestResult.setup_seconds``).
SETUP = "setup"
#: Per slice, next to its start-up sample (same key, run and ordinal): how many tests it ran,
#: in the seconds column, so the start-up can be told apart from what grows with the tests
#: (:func:`~dagpar_cli.timings.startup.fit_startup`).
SLICE_TESTS = "slice-tests"
#: The runner name of a toolchain without a runner plugin, in start-up samples.
CUSTOM = "custom"

#: One sample: ``(instance, kind, key, run_id, ordinal, seconds, recorded)``.
Sample = tuple[str, str, str, str, int, float, float]

#: Directories never searched for test files.
_SKIP_DIRS = frozenset({"node_modules", "__pycache__", "target", "build", "dist", "vendor"})
#: Stop indexing the workspace after this many files (a monorepo must not stall an import).
_MAX_FILES = 200_000
#: Source extensions a dotted class name may live in, Python first.
_EXTENSIONS = (".py", ".java", ".kt", ".groovy", ".scala")


@dataclass(frozen=True, slots=True)
class ImportedCase:
    """One ``testcase`` as a dagpar test."""

    #: Workspace-relative file or package.
    path: str
    #: The runner's name of the test.
    name: str
    #: Its outcome.
    status: Status
    #: Its seconds.
    seconds: float
    #: Which of the file's cases with this path and name it is (Jest's same-named tests), in
    #: document order.
    occurrence: int = 0


@dataclass(frozen=True, slots=True)
class JunitFile:
    """The test cases of one JUnit XML file."""

    #: The cases, in document order.
    cases: tuple[ImportedCase, ...]
    #: A digest of the file's bytes: importing the same file twice is recognised.
    digest: str
    #: When the tests ran (the first suite's timestamp, else the file's modification time).
    recorded: float

    def __iter__(self) -> Iterator[ImportedCase]:
        return iter(self.cases)

    def __len__(self) -> int:
        return len(self.cases)


def import_instance(given: str | None, instances: Sequence[str]) -> str:
    """The instance ``dagpar timings import`` files its samples under.

    Samples under a name the workspace does not define would never be used to plan, so such a
    name is refused; without a name, the workspace's only instance is meant.

    :param given: ``--instance``, or None when it was left out.
    :param instances: the workspace's toolchain instances (configured or detected).
    :raises UsageError: naming ``--instance`` and the instances there are.
    """
    listing = ", ".join(sorted(instances)) if instances else "none"
    if given is None:
        if len(instances) == 1:
            return instances[0]
        if not instances:
            raise UsageError(
                "the workspace has no toolchain instances to import timings into "
                "(define one under `toolchains:` in dagpar.yaml)"
            )
        raise UsageError(f"--instance is required: the workspace has several ({listing})")
    if given not in instances:
        raise UsageError(
            f"--instance {given!r}: the workspace has no such toolchain instance "
            f"(its instances: {listing})"
        )
    return given


def read_junit(path: Path, workspace: Path, *, known_test_ids: Iterable[str] = ()) -> JunitFile:
    """Parse *path* into test cases named as dagpar names them.

    :param path: the JUnit XML file.
    :param workspace: the workspace root (to find files and ``go.mod``).
    :param known_test_ids: test ids the timing store already holds, to place tests a report
        names without a file.
    :raises ValueError: when the file is not JUnit XML.
    """
    data = path.read_bytes()
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not XML ({exc})") from exc
    except (LookupError, ValueError) as exc:
        # An XML declaration naming an encoding expat cannot use ("x-bogus", "utf-32").
        raise ValueError(f"{path}: not XML (unsupported encoding: {exc})") from exc
    if root.tag not in ("testsuites", "testsuite"):
        raise ValueError(f"{path}: not JUnit XML (root element <{root.tag}>)")
    resolver = _Resolver(workspace, known_test_ids)
    cases: list[ImportedCase] = []
    recorded: float | None = None
    for suite in root.iter("testsuite"):
        if recorded is None:
            recorded = _timestamp(suite.get("timestamp"))
        # Same-named tests of one file are numbered in document order, within their suite.
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for case in suite.findall("testcase"):
            test_path, name = resolver.locate(case, suite)
            occurrence = counts[(test_path, name)]
            counts[(test_path, name)] += 1
            cases.append(
                ImportedCase(test_path, name, _status(case), _seconds(case.get("time")), occurrence)
            )
    return JunitFile(
        cases=tuple(cases),
        digest=hashlib.sha256(data).hexdigest()[:20],
        recorded=recorded if recorded is not None else path.stat().st_mtime,
    )


def _status(case: ET.Element) -> Status:
    if case.find("error") is not None:
        return Status.ERROR
    if case.find("failure") is not None:
        return Status.FAILED
    if case.find("skipped") is not None:
        return Status.SKIPPED
    return Status.PASSED


def _seconds(text: str | None) -> float:
    try:
        seconds = float((text or "0").replace(",", ""))
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0  # not "inf" or "nan"


def _timestamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


class _Resolver:
    """Maps a testcase's attributes to ``(path, name)``, indexing the workspace lazily."""

    def __init__(self, workspace: Path, known_test_ids: Iterable[str]) -> None:
        self._workspace = workspace
        self._by_basename: dict[str, list[str]] | None = None
        self._modules: dict[str, str] = {}
        self._by_name: dict[str, set[str]] = defaultdict(set)
        for test_id in known_test_ids:
            known_path, _, known_name = test_id.partition("::")
            self._by_name[known_name].add(known_path)

    def locate(self, case: ET.Element, suite: ET.Element) -> tuple[str, str]:
        """The dagpar ``(path, name)`` of one ``testcase``."""
        name = (case.get("name") or "").strip()
        classname = (case.get("classname") or "").strip()
        file = case.get("file") or suite.get("file") or suite.get("filepath")
        if file:
            path = self._relative(file)
            return path, _with_classes(path, classname, name)
        if "/" in classname:
            package = self._go_package(classname)
            if package is not None:
                return package, name
        parts = [p for p in classname.split(".") if p]
        if len(parts) > 1:
            found = self._dotted(parts, name)
            if found is not None:
                return found
        paths = self._by_name.get(name, set())
        if len(paths) == 1:
            return next(iter(paths)), name
        suite_name = (suite.get("name") or "").strip()
        stand_in = suite_name if suite_name and suite_name != "undefined" else classname
        return stand_in, name

    # -----------------------------------------------------------------------------------------

    def _relative(self, file: str) -> str:
        """A report's file name, workspace-relative and POSIX."""
        file = file.replace("\\", "/")
        if posixpath.isabs(file):
            try:
                file = Path(file).resolve().relative_to(self._workspace.resolve()).as_posix()
            except ValueError:
                pass  # outside the workspace: keep it as the report has it
        return posixpath.normpath(file)

    def _dotted(self, parts: list[str], name: str) -> tuple[str, str] | None:
        """A dotted class name as a file in the workspace, or by pytest's module naming."""
        for end in range(len(parts), 0, -1):
            for ext in _EXTENSIONS:
                found = self._find("/".join(parts[:end]) + ext)
                if found is not None:
                    rest = parts[end:]
                    if ext == ".py":
                        return found, "::".join([*rest, name])
                    return found, name
        # Not on disk (imported elsewhere): pytest modules are test_*.py or *_test.py.
        for index in range(len(parts) - 1, -1, -1):
            part = parts[index]
            if part.startswith("test_") or part.endswith("_test"):
                path = "/".join(parts[: index + 1]) + ".py"
                return path, "::".join([*parts[index + 1 :], name])
        return None

    def _find(self, relative: str) -> str | None:
        """The workspace file whose path ends with *relative* (shortest, then first by name)."""
        index = self._index()
        base = posixpath.basename(relative)
        matches = [p for p in index.get(base, ()) if p == relative or p.endswith("/" + relative)]
        return min(matches, key=lambda p: (len(p), p)) if matches else None

    def _index(self) -> dict[str, list[str]]:
        if self._by_basename is None:
            self._by_basename = defaultdict(list)
            count = 0
            for directory, dirs, files in os.walk(self._workspace):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
                rel_dir = Path(directory).relative_to(self._workspace).as_posix()
                for file in files:
                    rel = file if rel_dir == "." else f"{rel_dir}/{file}"
                    self._by_basename[file].append(rel)
                    if file == "go.mod":
                        module = _module_of(Path(directory) / file)
                        if module:
                            self._modules[module] = rel_dir
                    count += 1
                if count > _MAX_FILES:
                    break
        return self._by_basename

    def _go_package(self, import_path: str) -> str | None:
        """The package directory of a Go import path, through the workspace's ``go.mod`` files."""
        self._index()
        best = max(
            (m for m in self._modules if import_path == m or import_path.startswith(m + "/")),
            key=len,
            default=None,
        )
        if best is None:
            return None
        below = import_path[len(best) :].lstrip("/")
        return posixpath.normpath(posixpath.join(self._modules[best], below) if below else
                                  self._modules[best])  # fmt: skip


def _with_classes(path: str, classname: str, name: str) -> str:
    """pytest's ``Class::test`` name from a Python file and a dotted ``classname``."""
    if not path.endswith(".py") or "." not in classname:
        return name
    module = posixpath.splitext(posixpath.basename(path))[0]
    parts = classname.split(".")
    if module in parts:
        classes = parts[len(parts) - 1 - parts[::-1].index(module) + 1 :]
        return "::".join([*classes, name])
    return name


def _module_of(go_mod: Path) -> str | None:
    try:
        text = go_mod.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        words = line.split("//", 1)[0].split()
        if len(words) == 2 and words[0] == "module":
            return words[1].strip('"')
    return None


# ---------------------------------------------------------------------------------------------
# samples and exports


class TimingsFormatError(UsageError, ValueError):
    """A timings export or JUnit file that cannot be imported; a :class:`ValueError` too."""


def export_document(rows: Iterable[Sequence[Any]], keep: int) -> dict[str, Any]:
    """The ``dagpar timings export`` document of *rows* (every kept sample).

    :param rows: the samples, in the order they are to be written.
    :param keep: the samples the exporting store keeps per key.
    """
    return {
        "format": EXPORT_FORMAT,
        "version": SCHEMA_VERSION,
        "keep": keep,
        "samples": [list(r) for r in rows],
    }


def export_rows(data: Mapping[str, Any]) -> list[Sample]:
    """The samples of an :func:`export_document`, each one checked.

    :param data: the exported document.
    :raises TimingsFormatError: when *data* is not a dagpar timings export.
    """
    if data.get("format") != EXPORT_FORMAT or data.get("version") != SCHEMA_VERSION:
        raise TimingsFormatError(
            f"not a dagpar timings export (format {data.get('format')!r}, "
            f"version {data.get('version')!r}; expected {EXPORT_FORMAT!r} {SCHEMA_VERSION})"
        )
    samples = data.get("samples", [])
    if not isinstance(samples, list):
        raise TimingsFormatError("not a dagpar timings export (samples is not a list)")
    return [_sample_row(sample) for sample in samples]


def _sample_row(sample: object) -> Sample:
    """One exported sample as a database row; an export from elsewhere may hold anything."""
    if not isinstance(sample, list) or len(sample) != 7:
        raise TimingsFormatError(f"malformed sample in timings export: {sample!r:.80}")
    instance, kind, key, run_id, ordinal, seconds, recorded = sample
    if kind not in (TEST, ITEM, STARTUP, SETUP, SLICE_TESTS):
        raise TimingsFormatError(f"unknown sample kind {kind!r:.40} in timings export")
    duration, moment = _finite(seconds), _finite(recorded)
    if (
        isinstance(instance, str)
        and isinstance(kind, str)
        and isinstance(key, str)
        and isinstance(run_id, str)
        and all(_encodable(text) for text in (instance, key, run_id))
        and isinstance(ordinal, int)
        and not isinstance(ordinal, bool)
        and 0 <= ordinal < 2**63  # SQLite's INTEGER
        and duration is not None
        and duration >= 0
        and moment is not None
    ):
        return (instance, kind, key, run_id, ordinal, duration, moment)
    raise TimingsFormatError(f"malformed sample in timings export: {sample!r:.80}")


def _finite(value: object) -> float | None:
    """*value* as a finite float; None for anything else (NaN is stored as NULL by SQLite)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _encodable(text: str) -> bool:
    # A lone surrogate (JSON "\ud800") cannot be stored as SQLite text.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class SampleRecorder:
    """Collects the samples of one run, numbering repeated keys.

    Samples are kept per ``(instance, kind)`` and key, in the order added (a key's n-th sample
    has ordinal n): the store merges a run's samples key by key (:attr:`groups`), and
    :attr:`rows` lists them as sample rows.

    :param run_id: identifies the run's samples (merges deduplicate on it).
    :param recorded: the run's wall-clock time (the last samples by it are kept).
    """

    def __init__(self, run_id: str, recorded: float) -> None:
        self.run_id = run_id
        self.recorded = recorded
        #: Per ``(instance, kind)``, per key, its samples' seconds, ordinal by ordinal.
        self.groups: dict[tuple[str, str], dict[str, list[float]]] = {}

    @property
    def rows(self) -> list[Sample]:
        """The samples as rows ``(instance, kind, key, run_id, ordinal, seconds, recorded)``,
        key by key."""
        run_id, recorded = self.run_id, self.recorded
        return [
            (instance, kind, key, run_id, ordinal, seconds, recorded)
            for (instance, kind), group in self.groups.items()
            for key, samples in group.items()
            for ordinal, seconds in enumerate(samples)
        ]

    def __len__(self) -> int:
        return sum(len(samples) for group in self.groups.values() for samples in group.values())

    def add(self, instance: str, kind: str, key: str, seconds: float) -> None:
        """One sample of *key*; a key added again in the same run gets the next ordinal."""
        if not math.isfinite(seconds):
            seconds = 0.0  # a sum that overflowed; NaN would be stored as NULL
        group = self.groups.setdefault((instance, kind), {})
        group.setdefault(key, []).append(max(0.0, seconds))

    def results(
        self,
        instance: str,
        results: Iterable[TestResult],
        whole: set[str],
        *,
        runner: bool = True,
    ) -> None:
        """Samples for tests, and totals for the paths in *whole* that reported no error.

        Without a *runner*, a whole item that reported one result reported the item itself:
        its total says all there is, so it gets no test sample (half the rows of a custom
        toolchain's run; its predictions come from item totals either way). Under a matrix the
        test sample stays: it is the only one that names the combination.
        """
        totals: dict[str, float] = defaultdict(float)
        broken: set[str] = set()
        results = list(results)
        outers = outermost(results)
        # None: every result is outermost (no subtests), the common case.
        outer = {id(r) for r in outers} if len(outers) != len(results) else None
        itself: set[str] = set()
        if not runner:
            reported = Counter(r.path for r in results)
            itself = {path for path in whole if reported[path] == 1}
        add = self.add
        # add(instance, TEST, ...) inline: this loop runs once per test of a run.
        tests = self.groups.setdefault((instance, TEST), {})
        isfinite, error = math.isfinite, Status.ERROR
        for r in results:
            if r.setup_seconds > 0:
                add(instance, SETUP, r.path, r.setup_seconds)
            if r.status is error:
                broken.add(r.path)
                continue
            seconds = r.seconds
            if r.matrix or r.path not in itself:
                kept = max(0.0, seconds) if isfinite(seconds) else 0.0
                key = r.id
                samples = tests.get(key)
                if samples is None:
                    tests[key] = [kept]
                else:
                    samples.append(kept)
            if outer is None or id(r) in outer:
                totals[r.path] += seconds
        items = self.groups.setdefault((instance, ITEM), {})
        for path in sorted(set(totals) & whole - broken):
            seconds = totals[path]
            kept = max(0.0, seconds) if isfinite(seconds) else 0.0
            samples = items.get(path)
            if samples is None:
                items[path] = [kept]
            else:
                samples.append(kept)


def junit_samples(cases: JunitFile, instance: str) -> list[Sample]:
    """The samples of an imported JUnit file, as if its tests had run in one dagpar run.

    The run id is derived from the file's content, so importing one file twice adds nothing.

    :param cases: the file's test cases (:func:`read_junit`).
    :param instance: the toolchain instance the tests belong to.
    """
    recorder = SampleRecorder(f"junit:{cases.digest}", cases.recorded)
    results = [
        TestResult(
            path=c.path,
            name=c.name,
            occurrence=c.occurrence,
            status=c.status,
            seconds=c.seconds,
        )
        for c in cases
    ]
    recorder.results(instance, results, {r.path for r in results})
    return recorder.rows


def run_samples(
    run: RunResult, *, runner_of: Mapping[str, str], executor: str, run_id: str, recorded: float
) -> SampleRecorder:
    """The samples of a finished run (see :meth:`TimingStore.record
    <dagpar_cli.timings.store.TimingStore.record>` for which).

    :param run: the merged result.
    :param runner_of: the runner plugin per toolchain instance.
    :param executor: the executor the run used.
    :param run_id: identifies the run's samples.
    :param recorded: the run's wall-clock time.
    :returns: the samples, per key (:attr:`SampleRecorder.rows` lists them).
    """
    recorder = SampleRecorder(run_id, recorded)
    for check in run.checks:
        instance = check.name.split(":", 1)[0]
        runner = runner_of.get(instance, CUSTOM)
        if check.slices:
            for sl in check.slices:
                if sl.infrastructure_error:
                    continue
                whole = {item.path for item in sl.items if item.name is None}
                recorder.results(instance, sl.results, whole, runner=runner != CUSTOM)
                if sl.results:
                    outer = outermost(sl.results)
                    spent = math.fsum(
                        r.seconds + math.fsum(a.seconds for a in r.attempts)
                        if r.attempts
                        else r.seconds + 0.0  # what adding an empty fsum gives
                        for r in outer
                    )
                    # A path's setup is its own cost (kept per path), not the slice's start-up.
                    spent += math.fsum(r.setup_seconds for r in sl.results)
                    recorder.add(runner, STARTUP, executor, max(0.0, sl.seconds - spent))
                    # Always with the start-up sample, so the two share their ordinal.
                    recorder.add(runner, SLICE_TESTS, executor, float(len(outer)))
        elif not check.infrastructure_error:
            recorder.results(instance, check.results, {r.path for r in check.results})
    return recorder
