"""No process a slice started outlives it, wherever it went: a real pytest suite, real processes.

A test may start a process in a session of its own (``start_new_session=True``), out of reach of
its slice's process group. It must end with its slice, and not before: while one slice runs, what
another slice left behind is gone and its own processes live. (The docker executor's leftovers
are tested in ``test_docker_e2e.py``.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")

# Each test starts `sleep 300` in a session of its own and records its pid as ESCAPE_DIR/<name>.
ESCAPING_SUITE = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "tests/conftest.py": """
        import os
        import subprocess
        import time
        from pathlib import Path

        DIR = Path(os.environ["ESCAPE_DIR"])

        def escape(name):
            child = subprocess.Popen(["sleep", "300"], start_new_session=True)
            (DIR / f"{name}.tmp").write_text(str(child.pid))
            (DIR / f"{name}.tmp").rename(DIR / name)
            return child.pid

        def running(pid):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except FileNotFoundError:
                return False
            return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")

        def wait_for(name, within=120):
            deadline = time.monotonic() + within
            while not (DIR / name).exists():
                assert time.monotonic() < deadline, f"{name} never appeared"
                time.sleep(0.05)
            return int((DIR / name).read_text())
    """,
    "tests/test_a.py": """
        from conftest import escape

        def test_a():
            escape("a")
    """,
    "tests/test_b.py": """
        import time
        from conftest import escape, running, wait_for

        def test_b():
            mine = escape("b")
            a = wait_for("a")
            deadline = time.monotonic() + 120
            while running(a):
                assert time.monotonic() < deadline, "slice A's escaped process outlived A"
                time.sleep(0.05)
            assert running(mine), "slice B's own process was killed while B ran"
    """,
}


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _gone(pid: int, within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while _running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_processes_a_test_put_in_sessions_of_their_own_end_with_their_slice(
    make_workspace: Callable[[Mapping[str, str]], Path], tmp_path: Path
) -> None:
    escapes = tmp_path / "escapes"
    escapes.mkdir()
    ws = make_workspace(ESCAPING_SUITE)
    env = {**os.environ, "ESCAPE_DIR": str(escapes)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "dagpar_cli", "check", "-C", str(ws), "-j", "2", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        slices = [s for c in json.loads(proc.stdout)["checks"] for s in c["slices"]]
        assert len(slices) == 2, "test_a and test_b should run in slices of their own"
        pids = [int((escapes / name).read_text()) for name in ("a", "b")]
        assert [pid for pid in pids if not _gone(pid)] == []
    finally:
        for name in ("a", "b"):
            if (escapes / name).exists() and _running(pid := int((escapes / name).read_text())):
                os.kill(pid, 9)
