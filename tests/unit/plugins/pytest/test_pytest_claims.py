"""The files the selection plugin keeps open across tests: the claim file and the appenders."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from dagpar_plugins.pytest.pytest_claims import Appender, Claims

pytestmark = pytest.mark.skipif(os.name != "posix", reason="hand-over needs flock (POSIX)")


def _claims(tmp_path: Path, count: int, ahead: float = 0.0) -> tuple[Claims, list[object], Path]:
    """Claims settling one test per look, unless *ahead* (see :func:`_Clock`)."""
    items = [object() for _ in range(count)]
    path = tmp_path / "claim"
    return Claims(str(path), items, ahead=ahead), items, path


class _Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run(claims: Claims, items: list[object], clock: _Clock, seconds: list[float]) -> list[str]:
    """Run *items* as pytest would, each taking its *seconds*; the claim line after each."""
    path = Path(claims.path)
    lines = []
    assert claims.start(items[0])
    for index, took in enumerate(seconds):
        clock.now += took
        nextitem = items[index + 1] if index + 1 < len(items) else None
        assert claims.settle_next(nextitem)
        lines.append(path.read_text())
    return lines


def test_quick_tests_are_counted_as_started_in_growing_batches(tmp_path: Path) -> None:
    clock = _Clock()
    items = [object() for _ in range(40)]
    claims = Claims(str(tmp_path / "claim"), items, ahead=0.004, clock=clock)
    lines = _run(claims, items, clock, [0.0001] * 39)
    started = [int(line.split()[0]) for line in lines]
    # Each look counts up to twice as many tests as the last: 1, 2, 4, 8, 16, then the rest.
    assert sorted(set(started)) == [3, 7, 15, 31, 40]
    assert all(count > index + 1 for index, count in enumerate(started[:-1]))
    claims.finish()
    assert (tmp_path / "claim").read_text() == "40 40\n"
    claims.close()


def test_a_slow_test_makes_the_next_look_count_one_test(tmp_path: Path) -> None:
    clock = _Clock()
    items = [object() for _ in range(20)]
    claims = Claims(str(tmp_path / "claim"), items, ahead=0.004, clock=clock)
    # Quick tests, until the fifth takes 2 s: the look after it counts only the test it settles.
    lines = _run(claims, items, clock, [0.0001] * 4 + [2.0] + [0.0001] * 3)
    assert lines[2] == "7 -1\n"  # the look at the fourth test counted the fourth to seventh
    assert lines[6] == "8 -1\n"  # 2 s for the 4 tests since: one at a time again
    assert lines[7] == "10 -1\n"  # quick again: the batch grows back
    claims.close()


def test_a_batch_stays_within_the_group_of_the_test_it_settles(tmp_path: Path) -> None:
    clock = _Clock()
    groups = ["quick.py"] * 6 + ["slow.py"] * 10
    items = [object() for _ in groups]
    group_of = dict(zip(map(id, items), groups, strict=True))
    claims = Claims(
        str(tmp_path / "claim"), items, ahead=0.004, clock=clock, group=lambda i: group_of[id(i)]
    )
    lines = _run(claims, items, clock, [0.0001] * 15)
    started = [int(line.split()[0]) for line in lines]
    # 1, 3, then 7 would reach into slow.py: the look at the fourth test stops at its end.
    assert started[:5] == [3, 3, 6, 6, 6]
    assert max(count for count in started if count <= 6) == 6
    assert started[-1] == 16
    claims.close()


def test_a_batch_never_reaches_the_limit(tmp_path: Path) -> None:
    clock = _Clock()
    items = [object() for _ in range(40)]
    claims = Claims(str(tmp_path / "claim"), items, ahead=0.004, clock=clock)
    path = tmp_path / "claim"
    assert claims.start(items[0])
    clock.now += 0.0001
    assert claims.settle_next(items[1])  # started 1, 2 (batch of 2): 3
    path.write_text("3 5\n")  # dagpar took all from the sixth on
    clock.now += 0.0001
    assert claims.settle_next(items[2])
    clock.now += 0.0001
    assert claims.settle_next(items[3])
    assert path.read_text() == "5 5\n"
    assert claims.settle_next(items[4])
    assert not claims.settle_next(items[5])
    assert not claims.start(items[5])
    claims.close()


def test_each_test_is_counted_as_started_as_it_settles(tmp_path: Path) -> None:
    claims, items, path = _claims(tmp_path, 3)
    assert path.read_text() == "0 -1\n"
    assert claims.start(items[0])
    assert path.read_text() == "1 -1\n"
    assert claims.settle_next(items[1])
    assert claims.start(items[1])  # settled already: the file is not read again
    assert path.read_text() == "2 -1\n"
    claims.finish()
    assert path.read_text() == "2 2\n"  # the shorter line leaves nothing of the longer one
    assert not claims.start(items[2])
    assert claims.taken == 1
    claims.close()


def test_a_test_dagpar_took_does_not_start(tmp_path: Path) -> None:
    claims, items, path = _claims(tmp_path, 12)
    assert claims.start(items[0])
    path.write_text("1 10\n")  # dagpar took the last two
    assert claims.settle_next(items[1])
    assert path.read_text() == "2 10\n"
    assert not claims.start(items[10]) and not claims.start(items[11])
    assert claims.taken == 2
    claims.close()


def test_a_closed_and_reused_descriptor_is_left_alone_and_the_file_opened_again(
    tmp_path: Path,
) -> None:
    claims, items, path = _claims(tmp_path, 4)
    events = Appender(str(tmp_path / "events"))
    assert claims.start(items[0])
    # A test closes every descriptor it did not open and opens files of its own, which take
    # the freed numbers.
    kept = [claims._fd, events._fd]
    for fd in kept:
        os.close(fd)
    reused = [tmp_path / f"reused-{n}" for n in range(len(kept))]
    opened = [os.open(p, os.O_RDWR | os.O_CREAT | os.O_APPEND) for p in reused]
    assert sorted(opened) == sorted(kept)
    events.check()
    assert events.write(b"line\n") == 5
    assert claims.settle_next(items[1])
    claims.finish()
    claims.close()
    events.close()
    assert path.read_text() == "2 2\n"
    assert (tmp_path / "events").read_bytes() == b"line\n"
    assert all(p.stat().st_size == 0 for p in reused)
    for fd in opened:
        os.fstat(fd)  # still open: closing the plugin's files closed none of the test's
        os.close(fd)


def test_a_reused_claim_descriptor_has_the_other_files_checked_too(tmp_path: Path) -> None:
    checks: list[str] = []
    items = [object() for _ in range(3)]
    claims = Claims(str(tmp_path / "claim"), items, reopened=lambda: checks.append("checked"))
    assert claims.start(items[0])
    assert claims.settle_next(items[1])
    assert checks == []  # the kept descriptor was still the claim file's
    os.close(claims._fd)
    assert claims.settle_next(items[2])
    assert checks == ["checked"]
    assert claims.settle_next(None)  # the last test: still checked
    assert checks == ["checked"]
    os.close(claims._fd)
    assert claims.settle_next(None)
    assert checks == ["checked", "checked"]
    claims.close()


def test_an_appender_whose_descriptor_was_closed_opens_its_file_again(tmp_path: Path) -> None:
    events = Appender(str(tmp_path / "events"))
    assert events.write(b"one\n") == 4
    os.close(events._fd)
    assert events.write(b"two\n") == 4
    events.close()
    assert (tmp_path / "events").read_bytes() == b"one\ntwo\n"


def test_an_appender_whose_file_is_gone_writes_nothing_and_never_raises(tmp_path: Path) -> None:
    events = Appender(str(tmp_path / "events"))
    os.close(events._fd)
    (tmp_path / "events").unlink()
    (tmp_path / "events").mkdir()  # cannot be opened for appending any more
    events.check()
    assert events.write(b"x") == 0
    events.close()


def test_threads_settling_at_once_never_lower_the_count(tmp_path: Path) -> None:
    claims, items, path = _claims(tmp_path, 400)
    barrier = threading.Barrier(4)

    def settle(start: int) -> None:
        barrier.wait()
        for item in items[start::4]:
            assert claims.start(item)

    threads = [threading.Thread(target=settle, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert path.read_text() == "400 -1\n"
    claims.close()


def test_a_forked_process_settles_through_its_own_descriptor(tmp_path: Path) -> None:
    claims, items, path = _claims(tmp_path, 3)
    assert claims.start(items[0])
    kept_fd = claims._fd
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0 if claims.settle_next(items[1]) and claims._fd != kept_fd else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert path.read_text() == "2 -1\n"
    assert claims.start(items[2])
    assert path.read_text() == "3 -1\n"
    claims.close()
