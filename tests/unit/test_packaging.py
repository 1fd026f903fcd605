"""The distribution ships every package of the source tree (an installed dagpar must import)."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_directory_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapped = {v: k for k, v in config["package-dir"].items()}
    found = set()
    for init in ROOT.glob("*/**/__init__.py"):
        rel = init.parent.relative_to(ROOT)
        top_dir = rel.parts[0]
        # Hidden directories (a virtual environment in .venv) are no part of the source tree.
        if top_dir in ("tests", "examples", "bench", "build") or top_dir.startswith("."):
            continue
        if "egg-info" in top_dir:
            continue
        top = mapped.get(rel.parts[0], rel.parts[0])
        found.add(".".join((top, *rel.parts[1:])))
    assert found == listed


def test_non_python_files_the_code_reads_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    directories = {"dagpar_cli": "dagpar_cli", **config["package-dir"]}
    shipped = {
        path.relative_to(ROOT)
        for package, patterns in config["package-data"].items()
        for pattern in patterns
        for path in (ROOT / directories[package]).glob(pattern)
    }
    # The Jest runner writes its reporter into each slice's report directory from the package.
    assert Path("plugins/jest/stream_reporter.js") in shipped
