"""The pytest plugin dagpar drops into a slice's report directory to run exactly its selection.

dagpar's pytest runner does not put node ids on the command line: a slice may select tens of
thousands of tests, and pytest's own parsing of ``file::name`` arguments has changed between
versions (``::`` inside a parametrize id, for one). Instead
:func:`dagpar_plugins.pytest.dagpar_runner_command` writes this file as ``dagpar_pytest_select.py``
next to a JSON selection, puts the report directory on ``PYTHONPATH`` and loads it with ``-p``.

Inside the project's own interpreter it then

- keeps pytest from even importing files outside the selection (``pytest_ignore_collect``), so
  an unselected broken file cannot fail the slice;
- deselects every collected item that is not selected, comparing the file (relative to the
  invocation directory, the toolchain's source) and the node id after the file part, which is
  exactly the form ``dagpar_runner_collect`` lists;
- tags every kept item with ``dagpar.path`` and ``dagpar.name`` JUnit properties, so the report
  names tests exactly as they were collected whatever pytest's rootdir or JUnit name mangling;
- records pytest's rootdir, so collection errors (which carry no properties) can be mapped too;
- appends one byte per finished test to a progress file, whose size dagpar reads while the
  slice runs to show how far it has got.

It must run on whatever pytest (>= 6) and Python (>= 3.7) the project uses; it imports nothing
but pytest and the standard library.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

# These names repeat those of dagpar_plugins._pytest_files (this file must stand alone).
#: The module name the runner command loads with ``-p``.
MODULE = "dagpar_pytest_select"
#: The selection file, next to this module: ``{"paths": [...], "tests": [[path, name], ...]}``.
SELECTION_FILE = MODULE + ".json"
#: What the plugin learnt at start-up: ``{"rootdir": ..., "invocation_dir": ...}``.
RUN_INFO_FILE = "dagpar_pytest_run.json"
#: One byte per finished test, appended as each ends: dagpar reads its size for live progress.
PROGRESS_FILE = "dagpar_pytest_progress"
#: JUnit property names carrying the collected form of a test.
PATH_PROPERTY = "dagpar.path"
NAME_PROPERTY = "dagpar.name"

_HERE = os.path.dirname(os.path.abspath(__file__))


class _Selection:
    """The selection, keyed by absolute, case-normalised paths."""

    def __init__(self, data: dict[str, Any], base: str) -> None:
        self.base = base
        #: Files and directories selected whole.
        self.whole: set[str] = {self._abs(p) for p in data.get("paths", [])}
        #: File -> the names selected in it.
        self.tests: dict[str, set[str]] = {}
        for path, name in data.get("tests", []):
            self.tests.setdefault(self._abs(path), set()).add(name)
        #: Every directory above a selected path: pytest must walk through them.
        self.ancestors: set[str] = set()
        for path in self.whole | set(self.tests):
            parent = os.path.dirname(path)
            while parent not in self.ancestors and parent != os.path.dirname(parent):
                self.ancestors.add(parent)
                parent = os.path.dirname(parent)
            self.ancestors.add(parent)

    def _abs(self, path: str) -> str:
        return os.path.normcase(os.path.normpath(os.path.join(self.base, path)))

    def in_whole(self, path: str) -> bool:
        """Whether *path* is, or is inside, a path selected whole."""
        while True:
            if path in self.whole:
                return True
            parent = os.path.dirname(path)
            if parent == path:
                return False
            path = parent

    def wanted(self, path: str) -> bool:
        """Whether collection may enter *path* (a file or a directory)."""
        return path in self.ancestors or path in self.tests or self.in_whole(path)

    def relative(self, path: str) -> str:
        """*path* relative to the invocation directory, POSIX style."""
        return os.path.relpath(os.path.abspath(path), self.base).replace(os.sep, "/")


_selection: _Selection | None = None
#: The open progress file (the controller's, never a pytest-xdist worker's).
_progress: Any = None


def _key(path: object) -> str:
    return os.path.normcase(os.path.normpath(os.path.abspath(str(path))))


def _split_nodeid(item: pytest.Item) -> str:
    """The node id after the file part, as ``pytest --collect-only -q`` prints it."""
    file_node = item.getparent(pytest.File)  # type: ignore[type-abstract]
    if file_node is not None and item.nodeid.startswith(file_node.nodeid + "::"):
        return item.nodeid[len(file_node.nodeid) + 2 :]
    return item.nodeid.split("::", 1)[-1]


def pytest_configure(config: pytest.Config) -> None:
    """Load the selection and record where pytest put its rootdir."""
    global _selection
    base = str(config.invocation_params.dir)
    with open(os.path.join(_HERE, SELECTION_FILE), encoding="utf-8") as stream:
        _selection = _Selection(json.load(stream), base)
    # Under pytest-xdist every worker loads this plugin too; only the controller writes.
    if not hasattr(config, "workerinput"):
        # rootpath is pytest >= 6.1; rootdir (a py.path) is older and gone from pytest 9.
        rootdir = getattr(config, "rootpath", None)
        if rootdir is None:
            rootdir = config.rootdir  # type: ignore[attr-defined]
        info = {"rootdir": str(rootdir), "invocation_dir": base}
        with open(os.path.join(_HERE, RUN_INFO_FILE), "w", encoding="utf-8") as stream:
            json.dump(info, stream)
        global _progress
        _progress = open(os.path.join(_HERE, PROGRESS_FILE), "ab", buffering=0)  # noqa: SIM115


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    """Count one finished test (the controller's count under pytest-xdist)."""
    if _progress is not None:
        _progress.write(b".")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the progress file."""
    global _progress
    if _progress is not None:
        _progress.close()
        _progress = None


def _ignore(path: object) -> bool | None:
    """Whether to keep pytest out of *path*: it holds nothing selected."""
    if _selection is None:
        return None
    # None, not False: other plugins (``--ignore``, ``norecursedirs``) still have their say.
    return None if _selection.wanted(_key(path)) else True


# The hook's path argument was renamed in pytest 7 and the old name removed in pytest 9; the
# old one is also deprecated from 7 on, so each version gets only its own name.
if int(pytest.__version__.split(".")[0]) >= 7:

    def pytest_ignore_collect(collection_path: Any, config: pytest.Config) -> bool | None:
        """Keep pytest out of files and directories that hold nothing selected."""
        return _ignore(collection_path)

else:  # pragma: no cover - pytest 6

    def pytest_ignore_collect(path: Any, config: pytest.Config) -> bool | None:  # type: ignore[misc]
        """Keep pytest out of files and directories that hold nothing selected."""
        return _ignore(path)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Keep exactly the selected items and tag them with their collected names."""
    if _selection is None:
        return
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        # Item.path is pytest >= 7; fspath (a py.path) is what pytest 6 has.
        raw = str(getattr(item, "path", None) or item.fspath)
        path = _key(raw)
        name = _split_nodeid(item)
        if _selection.in_whole(path) or name in _selection.tests.get(path, ()):
            # The path as pytest spells it, not case-folded, so that it matches the listing.
            item.user_properties.append((PATH_PROPERTY, _selection.relative(raw)))
            item.user_properties.append((NAME_PROPERTY, name))
            kept.append(item)
        else:
            deselected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
