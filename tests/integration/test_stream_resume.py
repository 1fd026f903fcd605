"""Per-test streaming on real pytest: a slice that crashes, hangs or is interrupted keeps what
finished, names the test that was running, and resumes the tests it never started.

Every test here runs the real dagpar CLI on a real pytest suite.
"""

from __future__ import annotations

import json
import os
import signal
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

DAGPAR = (sys.executable, "-m", "dagpar_cli")
PYPROJECT = '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'


def _tests(result: DagparResult) -> dict[str, dict[str, object]]:
    """test id -> the test's ``--json`` entry."""
    (check,) = result.json()["checks"]
    return {t["id"]: t for t in check["tests"]}


CRASH_SUITE = {
    "pyproject.toml": PYPROJECT,
    "tests/test_faults.py": """
        import os
        import signal
        import time

        def test_pass():
            pass

        def test_kill():
            os.kill(os.getpid(), signal.SIGKILL)

        def test_after_kill():
            pass

        def test_hang():
            time.sleep(600)

        def test_after_hang():
            pass
    """,
    "tests/test_new\nline.py": """
        def test_in_newline():
            pass
    """,
    "tests/test_back\\slash.py": """
        def test_in_backslash():
            pass
    """,
}


def test_a_crash_and_a_hang_keep_what_passed_and_resume_the_rest(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(CRASH_SUITE)
    result = dagpar_run("check", "-C", ws, "-j", "1", "--timeout", "8", "--json")
    assert result.exit_code in (1, 4), result
    tests = _tests(result)
    assert set(tests) == {
        "tests/test_faults.py::test_pass",
        "tests/test_faults.py::test_kill",
        "tests/test_faults.py::test_after_kill",
        "tests/test_faults.py::test_hang",
        "tests/test_faults.py::test_after_hang",
        "tests/test_new\nline.py::test_in_newline",
        "tests/test_back\\slash.py::test_in_backslash",
    }
    kill = tests.pop("tests/test_faults.py::test_kill")
    hang = tests.pop("tests/test_faults.py::test_hang")
    assert kill["status"] == "error" and kill["message"] == "crashed the runner (signal 9)", kill
    assert hang["status"] == "error" and hang["message"] == "timed out after 8 s (--timeout)"
    assert {t: v["status"] for t, v in tests.items()} == dict.fromkeys(tests, "passed")
    # Every test that ran carries its start, from the stream.
    assert all(isinstance(t.get("start"), float) for t in tests.values())
    (check,) = result.json()["checks"]
    assert [s.get("replacements") for s in check["slices"]] == [2]


SLOW_SUITE = {
    "pyproject.toml": PYPROJECT,
    "tests/test_slow.py": """
        import time
        import pytest

        @pytest.mark.parametrize("n", range(12))
        def test_slow(n):
            time.sleep(0.4)
    """,
}


def _end_lines(root: Path) -> int:
    count = 0
    for events in root.rglob("dagpar_pytest_events.jsonl"):
        count += sum(1 for line in events.read_bytes().splitlines() if b'"e": "end"' in line)
    return count


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_keeps_the_tests_that_finished(
    make_workspace: Callable[[Mapping[str, str]], Path], tmp_path: Path, sig: signal.Signals
) -> None:
    ws = make_workspace(SLOW_SUITE)
    junit = tmp_path / "junit.xml"
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = subprocess.Popen(
        [*DAGPAR, "check", "-C", str(ws), "-j", "1", "--junit-xml", str(junit)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    deadline = time.monotonic() + 120
    while _end_lines(temp) < 5:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the slice never got to its fifth test"
        time.sleep(0.05)
    finished = _end_lines(temp)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    cases = junit_outcomes(junit)
    assert len(cases) == 12, cases
    passed = [t for t, (status, _) in cases.items() if status == "passed"]
    assert len(passed) >= finished
    bad = {t: v for t, v in cases.items() if v[0] != "passed"}
    assert bad, "an interrupt 5 tests into 12 should leave some not run"
    messages = {message for _, message in bad.values()}
    assert messages <= {"interrupted", "interrupted before it started"}, messages


RETRY_SUITE = {
    "pyproject.toml": PYPROJECT,
    "tests/test_mixed.py": """
        import os
        import signal
        from pathlib import Path

        def test_innocent_a():
            pass

        def test_kill():
            os.kill(os.getpid(), signal.SIGKILL)

        def test_flaky():
            marker = Path(os.environ["FLAKY_MARKER"])
            if not marker.exists():
                marker.write_text("")
                assert False, "first run fails"

        def test_innocent_b():
            pass
    """,
}


def test_retries_isolate_a_crashing_test_from_a_flaky_one(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLAKY_MARKER", str(tmp_path / "flaky-ran"))
    ws = make_workspace(RETRY_SUITE)
    result = dagpar_run("check", "-C", ws, "-j", "1", "--retries", "1", "--json")
    tests = _tests(result)
    flaky = tests["tests/test_mixed.py::test_flaky"]
    assert flaky["status"] == "passed" and flaky.get("attempts"), flaky
    kill = tests["tests/test_mixed.py::test_kill"]
    assert kill["status"] == "error" and "crashed the runner" in str(kill["message"])
    for name in ("test_innocent_a", "test_innocent_b"):
        innocent = tests[f"tests/test_mixed.py::{name}"]
        assert innocent["status"] == "passed" and not innocent.get("attempts"), innocent
    assert result.exit_code in (1, 4), result


LOUD_SUITE = {
    # The output goes into pytest's JUnit report (system-out), not to its terminal.
    "pyproject.toml": PYPROJECT + 'junit_logging = "system-out"\naddopts = "--show-capture=no"\n',
    "tests/test_loud.py": """
        import sys

        def test_loud():
            chunk = "x" * (1 << 20)
            for _ in range(250):
                sys.stdout.write(chunk)
            assert False, "and fails, so pytest prints what it captured"

        def test_quiet():
            pass
    """,
}


def _high_water_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def test_a_test_printing_250_mb_leaves_dagpar_small(
    make_workspace: Callable[[Mapping[str, str]], Path], tmp_path: Path
) -> None:
    ws = make_workspace(LOUD_SUITE)
    junit = tmp_path / "junit.xml"
    proc = subprocess.Popen(
        [*DAGPAR, "check", "-C", str(ws), "-j", "1", "--junit-xml", str(junit)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # dagpar's own peak (VmHWM only grows), read until it exits: pytest's memory is not dagpar's.
    peak_kib = 0
    while proc.poll() is None:
        peak_kib = max(peak_kib, _high_water_kib(proc.pid))
        time.sleep(0.02)
    assert proc.returncode == 1
    cases = junit_outcomes(junit)
    assert cases["tests/test_loud.py::test_quiet"][0] == "passed"
    assert cases["tests/test_loud.py::test_loud"][0] == "failure"
    assert peak_kib < 300 * 1024, f"dagpar peaked at {peak_kib / 1024:.0f} MB"


def test_an_escape_character_in_a_file_name_runs_and_reports(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(
        {
            "pyproject.toml": PYPROJECT,
            "tests/test_e\x1bsc.py": "def test_esc():\n    pass\n",
            "tests/test_c\rr.py": "def test_cr():\n    pass\n",
            "tests/test_co::lons.py": "def test_colons():\n    pass\n",
            "tests/test_q\"u'o[te]s_\u00fc.py": "def test_quotes():\n    pass\n",
        }
    )
    result = dagpar_run("check", "-C", ws, "-j", "1", "--json")
    assert result.exit_code == 0, result
    assert {t: v["status"] for t, v in _tests(result).items()} == {
        "tests/test_e\x1bsc.py::test_esc": "passed",
        "tests/test_c\rr.py::test_cr": "passed",
        "tests/test_co::lons.py::test_colons": "passed",
        "tests/test_q\"u'o[te]s_\u00fc.py::test_quotes": "passed",
    }


def test_raw_control_characters_in_ids_map_one_to_one(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(
        {
            "pyproject.toml": PYPROJECT
            + "disable_test_id_escaping_and_forfeit_all_rights_to_community_support = true\n",
            "tests/test_ids.py": """
                import pytest

                @pytest.mark.parametrize(
                    "v", ["a\\nb", "c\\x1bd", "e\\rf", "g\\\\h", "plain"],
                    ids=lambda v: v,
                )
                def test_p(v):
                    assert v != "e\\rf"
            """,
        }
    )
    result = dagpar_run("check", "-C", ws, "-j", "1", "--json")
    assert result.exit_code == 1, result
    assert {t: v["status"] for t, v in _tests(result).items()} == {
        "tests/test_ids.py::test_p[a\nb]": "passed",
        "tests/test_ids.py::test_p[c\x1bd]": "passed",
        "tests/test_ids.py::test_p[e\rf]": "failed",
        "tests/test_ids.py::test_p[g\\h]": "passed",
        "tests/test_ids.py::test_p[plain]": "passed",
    }


def test_an_interrupt_while_pytest_lists_makes_up_no_test(
    make_workspace: Callable[[Mapping[str, str]], Path], tmp_path: Path
) -> None:
    marker = tmp_path / "listing"
    ws = make_workspace(
        {
            "pyproject.toml": PYPROJECT,
            "tests/conftest.py": """
                import os
                import time
                from pathlib import Path

                Path(os.environ["LISTING_MARKER"]).write_text("")
                time.sleep(120)
            """,
            "tests/test_a.py": "def test_a():\n    pass\n",
        }
    )
    junit = tmp_path / "junit.xml"
    proc = subprocess.Popen(
        [*DAGPAR, "check", "-C", str(ws), "--junit-xml", str(junit), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LISTING_MARKER": str(marker)},
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "pytest never started listing"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    (check,) = json.loads(out)["checks"]
    assert check["tests"] == []
    assert check["error"] == "interrupted while listing tests"
    assert "install pytest" not in out + err + junit.read_text()
    assert ".::test" not in out + err + junit.read_text()


def test_a_slice_replaces_its_runner_a_bounded_number_of_times(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    kills = "".join(
        f"def test_kill_{n}():\n    os.kill(os.getpid(), signal.SIGKILL)\n\n" for n in range(6)
    )
    ws = make_workspace(
        {
            "pyproject.toml": PYPROJECT,
            "tests/test_kills.py": (
                f"import os\nimport signal\n\n{kills}def test_last():\n    pass\n"
            ),
        }
    )
    result = dagpar_run("check", "-C", ws, "-j", "1", "--json")
    assert result.exit_code == 4, result
    tests = _tests(result)
    crashed = [t for t, v in tests.items() if v["message"] == "crashed the runner (signal 9)"]
    assert crashed == [f"tests/test_kills.py::test_kill_{n}" for n in range(5)]
    for name in ("test_kill_5", "test_last"):
        test = tests[f"tests/test_kills.py::{name}"]
        assert test["status"] == "error"
        assert test["message"] == (
            "not run: crashed the runner (signal 9); "
            "the slice replaced its runner 4 times, the most it may"
        )
    (check,) = result.json()["checks"]
    assert [s["replacements"] for s in check["slices"]] == [4]


def test_a_test_that_exits_pytest_crashes_it_and_the_rest_resume(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(
        {
            "pyproject.toml": PYPROJECT,
            "tests/test_exit.py": """
                import os

                def test_first():
                    pass

                def test_exit():
                    os._exit(3)

                def test_third():
                    pass

                def test_fourth():
                    pass
            """,
        }
    )
    result = dagpar_run("check", "-C", ws, "-j", "1", "--json")
    assert result.exit_code in (1, 4), result
    assert {t: (v["status"], v.get("message", "")) for t, v in _tests(result).items()} == {
        "tests/test_exit.py::test_first": ("passed", ""),
        "tests/test_exit.py::test_exit": ("error", "crashed the runner (exit code 3)"),
        "tests/test_exit.py::test_third": ("passed", ""),
        "tests/test_exit.py::test_fourth": ("passed", ""),
    }


def test_the_stream_and_the_junit_report_agree_on_every_kind_of_outcome(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(
        {
            "pyproject.toml": PYPROJECT,
            "tests/test_kinds.py": """
                import pytest

                @pytest.fixture
                def bad_setup():
                    raise RuntimeError("setup boom")

                @pytest.fixture
                def bad_teardown():
                    yield
                    raise RuntimeError("teardown boom")

                def test_pass(): pass
                def test_fail(): assert 0
                def test_setup_error(bad_setup): pass
                def test_teardown_error(bad_teardown): pass
                def test_fail_and_teardown_error(bad_teardown): assert 0
                def test_skip(): pytest.skip("why")
                @pytest.mark.skip(reason="marked")
                def test_skip_mark(): pass
                @pytest.mark.xfail(reason="known")
                def test_xfail(): assert 0
                @pytest.mark.xfail(reason="known")
                def test_xpass(): pass
                @pytest.mark.xfail(reason="known", strict=True)
                def test_xpass_strict(): pass
                def test_skip_in_teardown(request):
                    request.addfinalizer(lambda: pytest.skip("late"))
            """,
        }
    )
    result = dagpar_run("check", "-C", ws, "-j", "1", "--json")
    tests = _tests(result)
    assert not [t for t, v in tests.items() if "disagrees" in str(v.get("message"))], tests
    assert {t.split("::")[1]: v["status"] for t, v in tests.items()} == {
        "test_pass": "passed",
        "test_fail": "failed",
        "test_setup_error": "error",
        "test_teardown_error": "error",
        "test_fail_and_teardown_error": "failed",
        "test_skip": "skipped",
        "test_skip_mark": "skipped",
        "test_xfail": "skipped",
        "test_xpass": "passed",
        "test_xpass_strict": "failed",
        "test_skip_in_teardown": "skipped",
    }
    assert all(isinstance(v.get("start"), float) for v in tests.values())


def test_a_crash_resumes_neither_more_nor_less_than_idle_workers_left(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An idle worker may take the crashing slice's tail before or after the crash: either way
    # every test runs exactly once, and only the crashing one is an error.
    run_log = tmp_path / "ran"
    monkeypatch.setenv("RUN_LOG", str(run_log))
    sleeps = "".join(f"def test_{n}():\n    time.sleep(0.5)\n\n" for n in (1, 2, 4, 5, 6, 7, 8))
    ws = make_workspace(
        {
            "pyproject.toml": PYPROJECT,
            "tests/conftest.py": """
                import os

                def pytest_runtest_setup(item):
                    with open(os.environ["RUN_LOG"], "a") as log:
                        log.write(item.nodeid + "\\n")
            """,
            "tests/test_a.py": (
                "import os\nimport signal\nimport time\n\n"
                + sleeps
                + "def test_3():\n    os.kill(os.getpid(), signal.SIGKILL)\n"
            ),
            "tests/test_b.py": "def test_b():\n    pass\n",
        }
    )
    result = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert result.exit_code == 4, result
    tests = _tests(result)
    assert tests.pop("tests/test_a.py::test_3")["message"] == "crashed the runner (signal 9)"
    assert {v["status"] for v in tests.values()} == {"passed"} and len(tests) == 8
    ran = run_log.read_text().splitlines()
    assert sorted(ran) == sorted(set(ran)) and len(ran) == 9
