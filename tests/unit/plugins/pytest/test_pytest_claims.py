"""The files the selection plugin keeps open across tests: the claim file and the appenders."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from dagpar_plugins.pytest.pytest_claims import Appender, Claims

pytestmark = pytest.mark.skipif(os.name != "posix", reason="hand-over needs flock (POSIX)")


def _claims(tmp_path: Path, count: int) -> tuple[Claims, list[object], Path]:
    items = [object() for _ in range(count)]
    path = tmp_path / "claim"
    return Claims(str(path), items), items, path


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
