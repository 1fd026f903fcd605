"""Reading JUnit XML written by any tool into dagpar test ids, for ``dagpar timings import``.

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
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from dagpar_cli.model import Status

__all__ = ["ImportedCase", "JunitFile", "read_junit"]

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
        for case in suite.findall("testcase"):
            test_path, name = resolver.locate(case, suite)
            cases.append(ImportedCase(test_path, name, _status(case), _seconds(case.get("time"))))
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
