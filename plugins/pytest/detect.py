"""Finding pytest projects in a workspace that has no ``dagpar.yaml``.

A directory is a pytest project when it holds pytest configuration (``pytest.ini``, a
``[tool.pytest.ini_options]`` or ``[tool.pytest]`` table in ``pyproject.toml``, ``[tool:pytest]``
in ``setup.cfg``, ``[pytest]`` in ``tox.ini``), a ``conftest.py``, or test files
(``test_*.py``/``*_test.py`` in it or under its ``tests/``). The workspace root and its direct
subdirectories are looked at. A root with configuration owns everything below it (pytest would
collect the subdirectories anyway); a root with only tests shares the workspace with
subdirectories that carry their own configuration.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

__all__ = ["detect"]

# Directories that never hold a project's own tests.
_SKIP_DIRS = frozenset(
    {"node_modules", "venv", "env", "site-packages", "build", "dist", "__pycache__", "htmlcov"}
)
# How many files to look at under tests/ before giving up (a huge tree is not worth walking).
_SCAN_LIMIT = 2000

_INI_SECTIONS = (
    ("pytest.ini", None),
    ("pyproject.toml", re.compile(r"^\[tool\.pytest(\.ini_options)?\]\s*$", re.MULTILINE)),
    ("setup.cfg", re.compile(r"^\[tool:pytest\]\s*$", re.MULTILINE)),
    ("tox.ini", re.compile(r"^\[pytest\]\s*$", re.MULTILINE)),
)


def _config(directory: Path) -> str | None:
    """The configuration that makes *directory* a pytest project, as ``file [section]``."""
    for name, section in _INI_SECTIONS:
        path = directory / name
        if not path.is_file():
            continue
        if section is None:
            return name
        try:
            match = section.search(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        if match:
            return f"{name} {match.group(0).strip()}"
    return None


def _is_test_file(path: Path) -> bool:
    return path.suffix == ".py" and (path.name.startswith("test_") or path.stem.endswith("_test"))


def _tests(directory: Path) -> str | None:
    """A ``conftest.py`` or test file that makes *directory* a pytest project."""
    if (directory / "conftest.py").is_file():
        return "conftest.py"
    try:
        for path in sorted(directory.iterdir()):
            if path.is_file() and _is_test_file(path):
                return path.name
    except OSError:
        return None
    tests = directory / "tests"
    if tests.is_dir():
        for path in itertools.islice(tests.rglob("*.py"), _SCAN_LIMIT):
            if _is_test_file(path) or path.name == "conftest.py":
                return path.relative_to(directory).as_posix()
    return None


def _instance_name(directory: str, taken: set[str]) -> str:
    """A unique instance name for a project in *directory* (``.`` is the root)."""
    base = "pytest" if directory == "." else re.sub(r"[^a-z0-9]+", "-", directory.lower())
    base = base.strip("-") or "pytest"
    name = base
    for n in itertools.count(2):
        if name not in taken:
            break
        name = f"{base}-{n}"
    taken.add(name)
    return name


def detect(workspace: Path) -> list[dict[str, Any]]:
    """The pytest projects of *workspace*, in ``dagpar.yaml`` form with ``instance`` and ``why``.

    :param workspace: the workspace root.
    """
    found: list[tuple[str, str]] = []  # (source, why)
    root_config = _config(workspace)
    if root_config is not None:
        found.append((".", root_config))
    else:
        root_tests = _tests(workspace)
        if root_tests is not None:
            found.append((".", root_tests))
        try:
            subdirs = sorted(p for p in workspace.iterdir() if p.is_dir())
        except OSError:
            subdirs = []
        for sub in subdirs:
            if sub.name.startswith(".") or sub.name in _SKIP_DIRS:
                continue
            why = _config(sub)
            if why is None and root_tests is None:
                why = _tests(sub)
            if why is not None and not (root_tests is not None and sub.name == "tests"):
                found.append((sub.name, f"{sub.name}/{why}"))
    taken: set[str] = set()
    single = len(found) == 1
    return [
        {
            "instance": "pytest" if single else _instance_name(source, taken),
            "use": "pytest",
            "source": source,
            "why": why,
        }
        for source, why in found
    ]
