"""Faults on real subprocesses: crashes, timeouts, a missing runner, SIGINT, SIGTERM, two runs.

After each fault: every selected test is in the JUnit file exactly once with a status, no process
the run started is left behind, and the timing store opens and holds no sample from the slice
that was killed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from projects import junit_outcomes  # type: ignore[import-not-found]

from dagpar_cli.testing import DagparResult

# Timeouts and signals are timed against the machine's load: no other tests alongside.
pytestmark = pytest.mark.serial

# Four files; test_fault.py misbehaves as FAULT says. Every test records its pid, and the
# hanging test starts a grandchild, so the test can prove no process outlives dagpar.
SUITE = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "tests/conftest.py": """
        import os
        from pathlib import Path

        def pytest_runtest_setup(item):
            d = Path(os.environ["FAULT_DIR"])
            (d / f"pid-{os.getpid()}").write_text("")
    """,
    "tests/test_fault.py": """
        import ctypes
        import os
        import signal
        import subprocess
        import time
        from pathlib import Path

        def test_before():
            pass

        def test_fault():
            fault = os.environ.get("FAULT", "")
            d = Path(os.environ["FAULT_DIR"])
            if fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif fault == "segfault":
                ctypes.string_at(0)
            elif fault == "hang":
                child = subprocess.Popen(["sleep", "300"])
                (d / f"grandchild-{child.pid}").write_text("")
                (d / "hanging").write_text("")
                time.sleep(300)

        def test_after():
            pass
    """,
    "tests/test_one.py": """
        def test_one_a():
            pass

        def test_one_b():
            pass
    """,
    "tests/test_two.py": """
        def test_two_a():
            pass
    """,
    "tests/test_three.py": """
        def test_three_a():
            pass
    """,
}

ALL_TESTS = {
    "tests/test_fault.py::test_before",
    "tests/test_fault.py::test_fault",
    "tests/test_fault.py::test_after",
    "tests/test_one.py::test_one_a",
    "tests/test_one.py::test_one_b",
    "tests/test_two.py::test_two_a",
    "tests/test_three.py::test_three_a",
}
FAULT_FILE_TESTS = {t for t in ALL_TESTS if t.startswith("tests/test_fault.py")}


@pytest.fixture
def suite(
    make_workspace: Callable[[Mapping[str, str]], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("FAULT_DIR", str(state))
    return make_workspace(SUITE)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in state


def _no_process_left(state: Path) -> None:
    pids = [int(p.name.split("-")[1]) for p in state.iterdir() if "-" in p.name]
    assert pids, "the suite should have recorded its processes"
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in pids if _alive(pid)] == []


def _samples(ws: Path) -> set[str]:
    """Test ids with at least one timing sample (read with plain SQLite: the store must open)."""
    with sqlite3.connect(ws / ".dagpar" / "timings.sqlite") as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
    assert tables, "the timing store should exist and open"
    from dagpar_cli.timings import TimingStore

    with TimingStore.open(ws) as store:
        data = store.export_json()
    text = json.dumps(data)
    return {t for t in ALL_TESTS if t in text}


@pytest.mark.parametrize(("fault", "cause"), [("kill", "signal 9"), ("segfault", "signal 11")])
def test_a_crashing_runner_errors_its_slice_only(
    suite: Path,
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    cause: str,
) -> None:
    monkeypatch.setenv("FAULT", fault)
    junit = tmp_path / "junit.xml"
    result = dagpar_run("check", "-C", suite, "-j", "3", "--junit-xml", junit)
    assert result.exit_code == 4, result
    cases = junit_outcomes(junit)
    assert set(cases) == ALL_TESTS
    crashed = {t for t, (status, _) in cases.items() if status == "error"}
    assert "tests/test_fault.py::test_fault" in crashed
    for test in crashed:
        assert cause in cases[test][1], cases[test]
    # Only the crashed slice's tests are errors; every other test passed.
    assert all(cases[t][0] == "passed" for t in ALL_TESTS - crashed)
    assert len(ALL_TESTS - crashed) >= 3
    _no_process_left(Path(os.environ["FAULT_DIR"]))
    assert _samples(suite).isdisjoint(crashed)


def test_a_hanging_slice_times_out(
    suite: Path,
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAULT", "hang")
    junit = tmp_path / "junit.xml"
    start = time.monotonic()
    result = dagpar_run("check", "-C", suite, "-j", "3", "--timeout", "30", "--junit-xml", junit)
    assert time.monotonic() - start < 200
    assert result.exit_code == 4, result
    cases = junit_outcomes(junit)
    assert set(cases) == ALL_TESTS
    timed_out = {t for t, (status, _) in cases.items() if status == "error"}
    assert "tests/test_fault.py::test_fault" in timed_out
    assert all("timed out" in cases[t][1] for t in timed_out), cases
    assert all(cases[t][0] == "passed" for t in ALL_TESTS - timed_out)
    assert len(ALL_TESTS - timed_out) >= 3
    _no_process_left(Path(os.environ["FAULT_DIR"]))
    assert "tests/test_fault.py::test_fault" not in _samples(suite)


def test_a_missing_runner_exits_4_naming_it(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    files = dict(SUITE)
    files["dagpar.yaml"] = "toolchains:\n  api: {use: pytest, runner: no-such-pytest-here}\n"
    ws = make_workspace(files)
    result = dagpar_run("check", "-C", ws, "--json")
    assert result.exit_code == 4, result
    (check,) = result.json()["checks"]
    # One line naming the missing command; the summary carries it too.
    assert "no-such-pytest-here" in check["error"] and "\n" not in check["error"]
    assert "no-such-pytest-here" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def _spawn(ws: Path, junit: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagpar_cli",
            "check",
            "-C",
            str(ws),
            "-j",
            "3",
            "--junit-xml",
            str(junit),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the hanging test never started"
        time.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_stops_everything_and_still_reports_every_test(
    suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals
) -> None:
    monkeypatch.setenv("FAULT", "hang")
    state = Path(os.environ["FAULT_DIR"])
    junit = tmp_path / "junit.xml"
    proc = _spawn(suite, junit)
    _wait_for(state / "hanging", proc)
    time.sleep(0.5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    cases = junit_outcomes(junit)
    assert set(cases) == ALL_TESTS
    assert cases["tests/test_fault.py::test_fault"][0] == "error"
    assert "interrupted" in cases["tests/test_fault.py::test_fault"][1]
    _no_process_left(state)
    assert "tests/test_fault.py::test_fault" not in _samples(suite)


def test_a_second_interrupt_forces_exit(
    suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAULT", "hang")
    state = Path(os.environ["FAULT_DIR"])
    proc = _spawn(suite, tmp_path / "junit.xml")
    _wait_for(state / "hanging", proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    _no_process_left(state)


def test_two_runs_at_once_share_the_store(
    suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAULT", "")
    procs = [_spawn(suite, tmp_path / f"junit-{i}.xml") for i in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (out, err)
    for i in range(2):
        assert set(junit_outcomes(tmp_path / f"junit-{i}.xml")) == ALL_TESTS
    from dagpar_cli.timings import TimingStore

    with TimingStore.open(suite) as store:
        rows = store.show(None, 50)
    assert rows, "both runs' samples should be in the store"
    assert _samples(suite) == ALL_TESTS
