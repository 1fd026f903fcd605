"""Where this repository keeps its test projects: the hostile fixture projects of
``tests/data/projects`` (laid out as one workspace) and the suite's shared Jest install."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "projects"

#: The test suite's shared Jest install (``npm ci --prefix tests/data/jest-deps`` installs it).
JEST_DEPS = Path(__file__).resolve().parent / "data" / "jest-deps"

#: A minimal toolchain file (``ci/lint.py``): one ``+check`` that splits the workspace's ``*.txt``
#: files and does nothing with them, for tests of what happens around a run.
LINT_TOOLCHAIN = """
    from __future__ import annotations
    from dagpar_cli import Directory, check, field, object_type, parallel

    @object_type
    class Files:
        workspace: Directory
        files: list[str] = field(parallel=True)

        @parallel
        def run(self) -> None:
            pass

    @object_type
    class Lint:
        source: Directory

        def files(self) -> Files:
            return Files(workspace=self.source, files=self.source.glob("*.txt"))

        @check
        def all(self) -> None:
            self.files().run()
"""


#: A planner plugin (write it to a module named in ``DAGPAR_PLUGINS``) that cuts one slice per
#: item and numbers them so that predicted seconds grow with the number: slices then start
#: smallest first, the opposite of dagpar's own order, which a test can see.
SMALLEST_FIRST_PLANNER = """
from __future__ import annotations
from dagpar_cli import hookimpl
from dagpar_cli.model import Plan, SlicePlan

class SmallestFirst:
    name = "smallest-first"

    def plan(self, request):
        slices = tuple(
            SlicePlan(index=i + 1, items=(item,), predicted_seconds=float(i + 1), tests=())
            for i, item in enumerate(request.items)
        )
        return Plan(slices=slices, predicted_wall_seconds=0.0, workers=request.workers)

@hookimpl(tryfirst=True)
def dagpar_make_planner(session):
    return SmallestFirst()
"""


def three_runner_workspace(root: Path) -> Path:
    """Copy the pytest, Jest and Go fixtures into *root* as ``api/``, ``web/`` and ``svc/``.

    ``web/node_modules`` links to the test suite's Jest install, as a user's project has its own.
    """
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(DATA / "pytest-hostile", root / "api")
    shutil.copytree(
        DATA / "jest-hostile", root / "web", ignore=shutil.ignore_patterns("node_modules")
    )
    shutil.copytree(DATA / "go-hostile", root / "svc")
    (root / "web" / "node_modules").symlink_to(JEST_DEPS / "node_modules")
    (root / "dagpar.yaml").write_text(
        "toolchains:\n"
        "  api: {use: pytest, source: api}\n"
        "  web: {use: jest, source: web}\n"
        "  svc: {use: go, source: svc}\n",
        encoding="utf-8",
    )
    return root


def junit_outcomes(path: Path) -> dict[str, tuple[str, str]]:
    """A JUnit file's tests: ``file::name`` -> (status, message), asserting each appears once.

    The status is ``passed``, ``failure``, ``error`` or ``skipped``.
    """
    cases: dict[str, tuple[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        test_id = f"{case.get('file')}::{case.get('name')}"
        assert test_id not in cases, f"{test_id} appears twice"
        status, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                status, message = tag, element.get("message", "")
        cases[test_id] = (status, message)
    return cases
