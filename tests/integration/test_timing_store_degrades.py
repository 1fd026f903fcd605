"""A timing store dagpar cannot open or write costs one warning line: the run goes on.

Every case runs the real command, ``python -m dagpar_cli``, in a subprocess. These tests run as
root, which writes through permission bits: the read-only cases run dagpar without the
capabilities that let root do so (``setpriv``), as an ordinary CI user would be.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

WORKSPACE = {
    "dagpar.yaml": "toolchains:\n  api: {use: pytest}\n",
    "pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['tests']\n",
    "tests/test_a.py": "def test_a():\n    pass\n\ndef test_b():\n    pass\n",
}

#: What root needs to lose to be refused by permission bits like any other user.
_NO_OVERRIDE = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"]


def _dagpar(ws: Path, *, as_user: bool = False) -> subprocess.CompletedProcess[str]:
    prefix = _NO_OVERRIDE if as_user and os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "dagpar_cli", "check", "-C", str(ws)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _warnings(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if "timing store" in line]


def _ran_without_the_store(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr
    warned = _warnings(result)
    assert len(warned) == 1, result.stderr
    assert warned[0].startswith("dagpar: warning: "), warned
    assert "2 passed" in result.stdout + result.stderr, result


@pytest.fixture
def recorded(make_workspace: Callable[[Mapping[str, str]], Path]) -> Path:
    """A workspace whose ``.dagpar/timings.sqlite`` holds one run."""
    ws = make_workspace(WORKSPACE)
    first = _dagpar(ws)
    assert first.returncode == 0, first
    assert (ws / ".dagpar" / "timings.sqlite").is_file()
    return ws


def test_a_directory_in_place_of_the_store(recorded: Path) -> None:
    store = recorded / ".dagpar" / "timings.sqlite"
    store.unlink()
    store.mkdir()
    _ran_without_the_store(_dagpar(recorded))


def test_a_file_in_place_of_the_state_directory(
    make_workspace: Callable[[Mapping[str, str]], Path],
) -> None:
    ws = make_workspace({**WORKSPACE, ".dagpar": "not a directory\n"})
    result = _dagpar(ws)
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr
    assert "2 passed" in result.stdout + result.stderr, result


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_a_read_only_store(recorded: Path) -> None:
    store = recorded / ".dagpar" / "timings.sqlite"
    store.chmod(0o444)
    try:
        _ran_without_the_store(_dagpar(recorded, as_user=True))
    finally:
        store.chmod(0o644)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_a_read_only_checkout_that_holds_the_state_directory(recorded: Path) -> None:
    modes = {p: p.stat().st_mode for p in (recorded, recorded / ".dagpar")}
    for path in modes:
        path.chmod(0o555)
    try:
        _ran_without_the_store(_dagpar(recorded, as_user=True))
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
