"""The exit code and reports are dagpar's own, whatever toolchain code raises or a signal does.

Every case runs the real command, ``python -m dagpar_cli``, in a subprocess: what is tested is
what a CI job sees (exit code, stderr, report files).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

# A pytest suite with one failing test, and a toolchain whose check misbehaves as MISBEHAVE says.
WORKSPACE = {
    "dagpar.yaml": """
        toolchains:
          api: {use: pytest, source: api}
          rogue: {use: ci/rogue.py}
    """,
    "api/pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['tests']\n",
    "api/tests/test_a.py": """
        def test_passes():
            pass

        def test_fails():
            assert False, "expected failure"
    """,
    "ci/rogue.py": """
        from __future__ import annotations
        import os
        import sys
        from dagpar_cli import Directory, check, field, object_type, parallel

        class Boom(BaseException):
            pass

        def misbehave() -> None:
            what = os.environ.get("MISBEHAVE", "")
            if what == "exit0":
                sys.exit(0)
            if what == "keyboard":
                raise KeyboardInterrupt
            if what == "base":
                raise Boom("not an Exception")

        @object_type
        class Parts:
            source: Directory
            parts: list[str] = field(parallel=True)

            @parallel
            def run(self) -> None:
                misbehave()

        @object_type
        class Rogue:
            source: Directory

            @check
            def exits(self) -> None:
                misbehave()

            @check
            def slices(self) -> None:
                Parts(source=self.source, parts=["a", "b"]).run()
    """,
}


def _dagpar(
    *args: str | os.PathLike[str], env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dagpar_cli", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def _junit_checks(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    return {suite.get("name", ""): suite for suite in root.iter("testsuite")}


@pytest.mark.parametrize("what", ["exit0", "keyboard", "base"])
def test_a_check_cannot_hijack_the_exit_code_or_the_reports(
    make_workspace: Callable[[Mapping[str, str]], Path], tmp_path: Path, what: str
) -> None:
    ws = make_workspace(WORKSPACE)
    junit, html = tmp_path / "junit.xml", tmp_path / "report.html"
    result = _dagpar(
        "check", "-C", ws, "--junit-xml", junit, "--report-html", html, env={"MISBEHAVE": what}
    )
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    suites = _junit_checks(junit)
    assert {"api:test", "rogue:exits", "rogue:slices"} <= set(suites), suites
    # The rogue checks fail with what their code raised; the pytest check reports its failure.
    for name in ("rogue:exits", "rogue:slices"):
        text = ET.tostring(suites[name], encoding="unicode")
        expected = {"exit0": "SystemExit", "keyboard": "KeyboardInterrupt", "base": "Boom"}[what]
        assert expected in text, text
    assert "expected failure" in ET.tostring(suites["api:test"], encoding="unicode")
    assert html.stat().st_size > 0
    assert "rogue:exits" in result.stdout + result.stderr  # the summary was printed


@pytest.mark.parametrize(
    ("source", "line", "says"),
    [
        ("import sys\n\nsys.exit(3)\n", 3, "sys.exit(3)"),
        ("import sys\n\nsys.exit(0)\n", 3, "sys.exit(0)"),
        ("class Boom(BaseException):\n    pass\n\nraise Boom('at import')\n", 4, "Boom: at import"),
        ("raise KeyboardInterrupt\n", 1, "KeyboardInterrupt"),
    ],
    ids=["exit3", "exit0", "base", "keyboard"],
)
def test_a_toolchain_that_exits_at_import_is_a_toolchain_error(
    make_workspace: Callable[[Mapping[str, str]], Path], source: str, line: int, says: str
) -> None:
    ws = make_workspace({"dagpar.yaml": "toolchains:\n  bad: {use: ci/bad.py}\n"})
    (ws / "ci").mkdir()
    (ws / "ci" / "bad.py").write_text(source, encoding="utf-8")
    result = _dagpar("check", "-C", ws)
    assert result.returncode == 2, result
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"dagpar: error: ci/bad.py:{line}: "), err
    assert says in err, err


HANGING = {
    "dagpar.yaml": "toolchains:\n  slow: {use: ci/slow.py}\n",
    "ci/slow.py": """
        import os
        import time
        from pathlib import Path

        Path(os.environ["IMPORT_STARTED"]).write_text("")
        time.sleep(600)
    """,
}


def _catches_sigterm(pid: int) -> bool:
    """Whether process *pid* has a handler for SIGTERM (its ``SigCgt`` mask)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("when", ["earliest", "import"])
def test_an_early_interrupt_is_exit_130_and_one_line(
    make_workspace: Callable[[Mapping[str, str]], Path],
    tmp_path: Path,
    sig: signal.Signals,
    when: str,
) -> None:
    """``earliest``: as soon as dagpar can handle a signal at all (while its plugins load),
    or once the toolchain import hangs if it never could; ``import``: during the import."""
    ws = make_workspace(HANGING)
    started = tmp_path / "import-started"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagpar_cli", "check", "-C", str(ws), "--junit-xml", "j.xml"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "IMPORT_STARTED": str(started)},
    )
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and not (when == "earliest" and _catches_sigterm(proc.pid)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "dagpar never got to the toolchain import"
            time.sleep(0.01)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (proc.returncode, out, err)
    assert err.strip() == "dagpar: interrupted", err


def test_a_main_class_that_exits_when_created_is_a_toolchain_error(
    make_workspace: Callable[[Mapping[str, str]], Path],
) -> None:
    ws = make_workspace(
        {
            "dagpar.yaml": "toolchains:\n  bad: {use: ci/bad.py}\n",
            "ci/bad.py": """
                import sys
                from dagpar_cli import check, object_type

                @object_type
                class Bad:
                    def __post_init__(self) -> None:
                        sys.exit(0)

                    @check
                    def run(self) -> None:
                        pass
            """,
        }
    )
    result = _dagpar("check", "-C", ws)
    assert result.returncode == 2, result
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("dagpar: error: ci/bad.py:7: creating Bad failed: "), err
    assert "sys.exit(0)" in err, err
