"""``--junit-xml`` and ``--report-html``: checked before the run, written through links and into
devices, and a report that fails at the end costs exit 4 and one line, not the other reports.

Every case runs the real command, ``python -m dagpar_cli``, in a subprocess.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

# One passing test; it notes that it ran, and with BREAK_DIR set it turns that directory into a
# file, so that a report going there cannot be written at the end.
WORKSPACE = {
    "dagpar.yaml": "toolchains:\n  api: {use: pytest}\n",
    "pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['tests']\n",
    "tests/test_a.py": """
        import os
        import shutil
        from pathlib import Path

        def test_a():
            Path(os.environ["RAN"]).write_text("")
            broken = os.environ.get("BREAK_DIR")
            if broken:
                shutil.rmtree(broken)
                Path(broken).write_text("not a directory any more")
    """,
}


def _dagpar(
    ws: Path, *args: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dagpar_cli", "check", "-C", str(ws), *(str(a) for a in args)],
        capture_output=True,
        text=True,
        env={**os.environ, "RAN": str(ws / "ran"), **(env or {})},
        timeout=300,
    )


def _is_junit(data: bytes) -> bool:
    return ET.fromstring(data).tag == "testsuites"


@pytest.mark.parametrize(
    ("flag", "where"),
    [
        ("--junit-xml", "/proc/dagpar-junit.xml"),
        ("--report-html", "/proc/self/dagpar/report.html"),
        ("--junit-xml", "{ws}/tests/test_a.py/junit.xml"),
    ],
    ids=["proc", "proc-deep", "under-a-file"],
)
def test_an_unwritable_report_path_is_exit_2_before_anything_runs(
    make_workspace: Callable[[Mapping[str, str]], Path], flag: str, where: str
) -> None:
    ws = make_workspace(WORKSPACE)
    path = where.format(ws=ws)
    result = _dagpar(ws, flag, path)
    assert result.returncode == 2, result
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"dagpar: error: {flag} {path}: "), err
    assert not (ws / "ran").exists(), "a test ran before the report path was checked"


def test_a_missing_parent_directory_that_can_be_made_is_made(
    make_workspace: Callable[[Mapping[str, str]], Path],
) -> None:
    ws = make_workspace(WORKSPACE)
    result = _dagpar(ws, "--junit-xml", ws / "reports" / "node-1" / "junit.xml")
    assert result.returncode == 0, result
    assert _is_junit((ws / "reports" / "node-1" / "junit.xml").read_bytes())


def test_a_symlinked_report_is_written_through_the_link(
    make_workspace: Callable[[Mapping[str, str]], Path],
) -> None:
    ws = make_workspace(WORKSPACE)
    (ws / "artifacts").mkdir()
    (ws / "artifacts" / "junit.xml").write_text("old")
    (ws / "junit.xml").symlink_to("artifacts/junit.xml")
    # A link to a file that does not exist yet gets it created.
    (ws / "report.html").symlink_to("artifacts/report.html")
    result = _dagpar(ws, "--junit-xml", ws / "junit.xml", "--report-html", ws / "report.html")
    assert result.returncode == 0, result
    for name in ("junit.xml", "report.html"):
        assert (ws / name).is_symlink(), name
    assert _is_junit((ws / "artifacts" / "junit.xml").read_bytes())
    assert "<html" in (ws / "artifacts" / "report.html").read_text()


def test_a_device_is_written_in_place(
    make_workspace: Callable[[Mapping[str, str]], Path], tmp_path: Path
) -> None:
    ws = make_workspace(WORKSPACE)
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the same device as /dev/null
    except PermissionError:
        pytest.skip("creating a device needs root (CAP_MKNOD)")
    result = _dagpar(ws, "--junit-xml", null, "--report-html", null)
    assert result.returncode == 0, result
    assert stat.S_ISCHR(null.stat().st_mode)


def _guarded_dev_null() -> list[str]:
    """A command prefix under which replacing ``/dev/null`` fails instead of destroying it.

    dagpar runs in its own mount namespace with ``/dev/null`` bind-mounted onto itself: writing
    the device works as it does outside, while a rename onto it (what dagpar did before it wrote
    devices in place) fails with EBUSY, and the machine's ``/dev/null`` survives either way.
    """
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux)")
    probe = subprocess.run(
        ["unshare", "-m", "mount", "--bind", "/dev/null", "/dev/null"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace: {probe.stderr.decode().strip()}")
    return ["unshare", "-m", "sh", "-c", 'mount --bind /dev/null /dev/null && exec "$@"', "sh"]


def test_dev_null_stays_a_device(make_workspace: Callable[[Mapping[str, str]], Path]) -> None:
    ws = make_workspace(WORKSPACE)
    before = os.stat("/dev/null")
    result = subprocess.run(
        [
            *_guarded_dev_null(),
            sys.executable,
            "-m",
            "dagpar_cli",
            "check",
            "-C",
            str(ws),
            "--junit-xml",
            "/dev/null",
            "--report-html",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "RAN": str(ws / "ran")},
        timeout=300,
    )
    assert result.returncode == 0, result
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_a_fifo_is_written_in_place(
    make_workspace: Callable[[Mapping[str, str]], Path], tmp_path: Path
) -> None:
    ws = make_workspace(WORKSPACE)
    fifo = tmp_path / "junit.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as reader:
            received.append(reader.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    result = _dagpar(ws, "--junit-xml", fifo)
    reader.join(timeout=60)
    assert result.returncode == 0, result
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert received and _is_junit(received[0])


def test_a_report_that_fails_at_the_end_costs_exit_4_and_one_line(
    make_workspace: Callable[[Mapping[str, str]], Path],
) -> None:
    ws = make_workspace(WORKSPACE)
    (ws / "out").mkdir()
    html = ws / "out" / "report.html"
    junit = ws / "junit.xml"
    result = _dagpar(
        ws, "--report-html", html, "--junit-xml", junit, env={"BREAK_DIR": str(ws / "out")}
    )
    assert result.returncode == 4, result
    assert "Traceback" not in result.stderr
    failures = [line for line in result.stderr.splitlines() if line.startswith("dagpar: error")]
    assert len(failures) == 1, result.stderr
    assert failures[0].startswith(f"dagpar: error: --report-html {html}: "), failures
    assert _is_junit(junit.read_bytes())  # the other report is written
    assert "1 passed" in result.stdout + result.stderr  # and the summary printed
