"""Idle workers take the unstarted tests of a running pytest slice, with real pytest runs.

The suite below cannot pass unless that happens: its first slow test waits until another test
of its own file has run in some other process. Every test logs where it ran, so the tests also
check that each test ran exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult

SLOW_TESTS = [f"test_slow_{i:02d}" for i in range(12)]

_SLOW_FILE = """
import os
import time


def _log(name):
    # Where each test ran, when the log is reachable (a container sees only its mounts).
    path = os.environ.get("HANDOVER_LOG")
    if path:
        with open(path, "a") as log:
            log.write(f"{name} {os.uname().nodename}:{os.getpid()}\\n")


def _handed_over():
    # dagpar puts the slice's report directory first on PYTHONPATH; the claim file there
    # holds "<started> <limit>", and a limit is set once a tail was taken.
    report_dir = os.environ["PYTHONPATH"].split(os.pathsep)[0]
    try:
        with open(os.path.join(report_dir, "dagpar_pytest_claim")) as claim:
            return int(claim.read().split()[1]) >= 0
    except (OSError, IndexError, ValueError):
        return False


def test_slow_00():
    _log("test_slow_00")
    # Passes only when a worker took over this file's unstarted tests while this one ran.
    deadline = time.monotonic() + 60
    while not _handed_over():
        assert time.monotonic() < deadline, "no other worker took over the unstarted tests"
        time.sleep(0.05)
"""

_SLOW_TEST = """

def {name}():
    _log("{name}")
    time.sleep(0.1)
"""

SUITE = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "tests/test_quick.py": """
        import os


        def test_quick():
            path = os.environ.get("HANDOVER_LOG")
            if path:
                with open(path, "a") as log:
                    log.write(f"test_quick {os.uname().nodename}:{os.getpid()}\\n")
    """,
    "tests/test_slow.py": _SLOW_FILE + "".join(_SLOW_TEST.format(name=n) for n in SLOW_TESTS[1:]),
}


@pytest.fixture
def handover_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "ran.log"
    monkeypatch.setenv("HANDOVER_LOG", str(log))
    return log


def _ran(log: Path) -> dict[str, str]:
    """Test name → where it ran; fails if any test ran twice."""
    lines = [line.split() for line in log.read_text().splitlines()]
    counts = Counter(name for name, _ in lines)
    assert [name for name, n in counts.items() if n > 1] == []
    return dict((name, who) for name, who in lines)


def _check_handed_over(result: DagparResult) -> list[str]:
    """Every test reported once and passed, a tail of the slow file in a slice of its own."""
    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    statuses = sorted((t["name"], t["status"]) for t in check["tests"])
    assert statuses == sorted([("test_quick", "passed")] + [(n, "passed") for n in SLOW_TESTS])
    slice_of = {t["name"]: t["slice"] for t in check["tests"]}
    first = slice_of["test_slow_00"]
    moved = [n for n in SLOW_TESTS if slice_of[n] != first]
    # The idle worker took a tail: the last tests of the file, in order, into a new slice
    # numbered after the planned ones. On a busy machine the other worker may in turn take the
    # tail of that slice (a later slice again), so the tail's slices only grow along it.
    assert moved and moved == SLOW_TESTS[len(SLOW_TESTS) - len(moved) :]
    taken = [slice_of[n] for n in moved]
    assert taken == sorted(taken)
    assert taken[0] > max(first, slice_of["test_quick"])
    assert f"handed {len(moved)} unstarted test" in result.stderr
    return moved


def test_an_idle_worker_takes_the_unstarted_tests_of_a_running_slice(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    handover_log: Path,
) -> None:
    ws = make_workspace(SUITE)

    result = dagpar_run("check", "-C", ws, "-j", "2", "--json")

    moved = _check_handed_over(result)
    # Each test really ran once, and the tail in another process than the rest of its file.
    ran = _ran(handover_log)
    assert sorted(ran) == sorted(["test_quick", *SLOW_TESTS])
    assert {n for n in SLOW_TESTS if ran[n] != ran["test_slow_00"]} == set(moved)


# ------------------------------------------------------------------------------------ docker


@pytest.fixture
def in_docker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from docker_images import build_base_image, run_toolchains_in_images  # type: ignore[import-not-found]

    build_base_image()
    run_toolchains_in_images(monkeypatch)
    yield


@pytest.mark.docker
def test_slices_in_local_docker_containers_hand_over_too(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    in_docker: None,
) -> None:
    # The report directory is bind-mounted: the runner in the container and dagpar on the
    # host agree through the same locked file.
    ws = make_workspace(
        {
            **SUITE,
            "dagpar.yaml": """
                toolchains:
                  suite:
                    use: pytest
                    source: .
                    image: dagpar-test/base:latest
            """,
        }
    )

    result = dagpar_run("check", "-C", ws, "-j", "2", "--executor", "docker", "--json")

    _check_handed_over(result)


def test_many_hand_overs_lose_no_test_and_run_none_twice(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    handover_log: Path,
) -> None:
    # One long file among short ones, on four workers: tails are taken, and tails of tails,
    # while the runners race on to their next test.
    many = [f"test_many_{i:03d}" for i in range(120)]
    log_line = (
        'with open(os.environ["HANDOVER_LOG"], "a") as log:\n'
        '        log.write(f"{name} {os.getpid()}\\n")\n'
    )
    body = "".join(
        f"def {n}():\n    name = {n!r}\n    {log_line}    time.sleep(0.05)\n\n\n" for n in many
    )
    short = {
        f"tests/test_short_{k}.py": f"import os\n\n\ndef test_short_{k}():\n"
        f"    name = 'test_short_{k}'\n    {log_line}"
        for k in range(3)
    }
    ws = make_workspace(
        {
            "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
            "tests/test_many.py": "import os\nimport time\n\n\n" + body,
            **short,
        }
    )

    result = dagpar_run("check", "-C", ws, "-j", "4", "--json")

    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    expected = sorted([*many, *(f"test_short_{k}" for k in range(3))])
    assert sorted(t["name"] for t in check["tests"]) == expected
    assert all(t["status"] == "passed" for t in check["tests"])
    assert sorted(_ran(handover_log)) == expected
    assert "unstarted test" in result.stderr
    # The slices' own counts agree: each test in exactly one slice, some in slices cut from
    # running ones.
    assert sum(s["tests"] for s in check["slices"]) == len(expected)
    assert len(check["slices"]) > 4


def _timed_file(name: str, seconds: float) -> str:
    return "import os\nimport time\n\n\n" + "".join(
        f"def test_{name}_{i}():\n"
        '    with open(os.environ["HANDOVER_LOG"], "a") as log:\n'
        f'        log.write("test_{name}_{i} " + str(os.getpid()) + "\\n")\n'
        f"    time.sleep({seconds})\n\n\n"
        for i in range(2)
    )


@pytest.mark.parametrize("hand_over", [True, False])
def test_a_slice_runs_new_files_first_then_the_longest(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    handover_log: Path,
    monkeypatch: pytest.MonkeyPatch,
    hand_over: bool,
) -> None:
    # What a slice has left when a worker comes free should be short tests it can give away;
    # whole files move, each keeping its own order. Without hand-over, collection order stays.
    if not hand_over:
        monkeypatch.setenv("DAGPAR_NO_HANDOVER", "1")
    ws = make_workspace(
        {
            "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
            "tests/test_a.py": _timed_file("a", 0.01),
            "tests/test_b.py": _timed_file("b", 0.4),
            "tests/test_c.py": _timed_file("c", 0.1),
        }
    )
    assert dagpar_run("check", "-C", ws, "-j", "1").exit_code == 0
    (ws / "tests" / "test_d.py").write_text(_timed_file("d", 0.01))
    handover_log.unlink()

    result = dagpar_run("check", "-C", ws, "-j", "1", "--json")

    assert result.exit_code == 0, result
    ran = [line.split()[0] for line in handover_log.read_text().splitlines()]
    files = "dbca" if hand_over else "abcd"
    assert ran == [f"test_{f}_{i}" for f in files for i in range(2)]


_BEHIND_A_LONG_TEST = """
import os
import time


def _log(event, name):
    with open(os.environ["HANDOVER_LOG"], "a") as log:
        log.write(f"{event} {name} {os.getpid()} {time.time()}\\n")


def test_long():
    _log("start", "test_long")
    time.sleep(8)
    _log("end", "test_long")


def test_next():
    _log("start", "test_next")
    time.sleep(2)
    _log("end", "test_next")
"""


_HISTORY = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.test_a" name="test_long" file="tests/test_a.py" time="30"/>
<testcase classname="tests.test_a" name="test_next" file="tests/test_a.py" time="3"/>
<testcase classname="tests.test_b" name="test_b" file="tests/test_b.py" time="33"/>
</testsuite></testsuites>
"""


def test_a_test_waiting_behind_a_long_running_one_is_taken(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    handover_log: Path,
    tmp_path: Path,
) -> None:
    # Recorded: test_long 30 s, then test_next 3 s in one slice; test_b 33 s in the other.
    # Today test_b is quick, and its worker comes free while test_long has most of its
    # predicted time to go: moving the one test behind it ends it far sooner than waiting.
    ws = make_workspace(
        {
            "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
            "tests/test_a.py": _BEHIND_A_LONG_TEST,
            "tests/test_b.py": "def test_b():\n    pass\n",
        }
    )
    history = tmp_path / "history.xml"
    history.write_text(_HISTORY, encoding="utf-8")
    imported = dagpar_run("timings", "import", "--instance", "pytest", "-C", ws, history)
    assert imported.exit_code == 0, imported

    result = dagpar_run("check", "-C", ws, "-j", "2", "--json")

    assert result.exit_code == 0, result
    events = {(event, name): (pid, float(when)) for event, name, pid, when in
              (line.split() for line in handover_log.read_text().splitlines())}  # fmt: skip
    assert sorted(events) == sorted(
        (event, name) for event in ("start", "end") for name in ("test_long", "test_next")
    )
    # test_next ran in another pytest, while test_long was still running.
    assert events["start", "test_next"][0] != events["start", "test_long"][0], (events, result)
    assert events["start", "test_next"][1] < events["end", "test_long"][1]
    assert "handed 1 unstarted test" in result.stderr
    (check,) = result.json()["checks"]
    assert sorted(t["name"] for t in check["tests"]) == ["test_b", "test_long", "test_next"]
