"""The build's queue in a real ``redis-server``: one leader, leases, requeues, first result wins."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from dagpar_cli.config import QueueOptions
from dagpar_cli.errors import UsageError
from dagpar_cli.model import Item
from dagpar_cli.queue.build import QueueBuild
from dagpar_cli.queue.client import QueueError, connect
from dagpar_cli.queue.results import dump_unit
from dagpar_cli.queue.units import Unit

pytestmark = pytest.mark.redis

CALL = "p:test#1"
UNITS = [
    Unit(number=n, items=(Item((f"t{n}.py",), f"t{n}.py"),), tests=(f"t{n}.py::a",),
         predicted_seconds=1.0)
    for n in (1, 2, 3)
]  # fmt: skip


def _node(url: str, worker: str, **kw: object) -> QueueBuild:
    options = QueueOptions(url=url, build="b1", worker=worker, **kw)  # type: ignore[arg-type]
    return QueueBuild(connect(url), options)


def _until(condition: Callable[[], object], what: str, patience: float = 30.0) -> object:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_one_node_fills_the_queue_however_many_arrive(redis_server) -> None:  # type: ignore[no-untyped-def]
    filled: list[str] = []
    barrier = threading.Barrier(4)

    def arrive(name: str) -> None:
        node = _node(redis_server.url, name)
        barrier.wait()
        if node.join(CALL, "d1", lambda: (filled.append(name), UNITS)[1], {"check": "p:test"}):
            pass

    threads = [threading.Thread(target=arrive, args=(f"n{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(filled) == 1
    node = _node(redis_server.url, "n9")
    assert node.total(CALL) == 3
    # Every key of the build expires (a day by default).
    keys = node.client.keys("dagpar:{b1}:*")
    assert keys and all(0 < node.client.ttl(k) <= 24 * 3600 for k in keys)


def test_a_node_with_another_listing_is_refused(redis_server) -> None:  # type: ignore[no-untyped-def]
    _node(redis_server.url, "a").join(CALL, "d1", lambda: UNITS, {"check": "p:test"})
    with pytest.raises(UsageError, match="lists a different suite here than on a"):
        _node(redis_server.url, "b").join(CALL, "d2", lambda: UNITS, {"check": "p:test"})


def test_units_go_out_in_order_and_the_first_result_wins(redis_server) -> None:  # type: ignore[no-untyped-def]
    a, b = _node(redis_server.url, "a"), _node(redis_server.url, "b")
    a.join(CALL, "d", lambda: UNITS, {})
    got = [a.reserve(CALL).unit, b.reserve(CALL).unit, a.reserve(CALL).unit]
    assert [u.number for u in got if u] == [1, 2, 3]
    assert a.reserve(CALL).unit is None
    assert a.complete(CALL, 1, dump_unit("a", 1.0, []))
    assert not b.complete(CALL, 1, dump_unit("b", 1.0, []))  # discarded: a was first
    assert a.reserve(CALL, take=False).done == 1


def test_expired_leases_requeue_then_give_up_as_lost(redis_server) -> None:  # type: ignore[no-untyped-def]
    one = [UNITS[0]]
    dead = _node(redis_server.url, "dead", lease=1, max_requeues=1)
    live = _node(redis_server.url, "live", lease=1, max_requeues=1)
    dead.join(CALL, "d", lambda: one, {})
    assert dead.reserve(CALL).unit == UNITS[0]
    # "dead" never renews: once its lease runs out, the unit comes back to whoever asks.
    again = _until(lambda: live.reserve(CALL).unit, "the requeued unit")
    assert again == UNITS[0]
    # "live" dies too: that is more requeues than allowed, so the unit is lost with "live".
    _until(lambda: live.reserve(CALL, take=False).done == 1, "the unit given up")
    state = live.state(CALL)
    assert state.lost == {1: "live"}
    assert state.complete


def test_renewed_leases_hold(redis_server) -> None:  # type: ignore[no-untyped-def]
    a, b = _node(redis_server.url, "a", lease=1), _node(redis_server.url, "b", lease=1)
    a.join(CALL, "d", lambda: [UNITS[0]], {})
    assert a.reserve(CALL).unit is not None
    # Renew for three lease periods, on a's clock, checking that b never gets the unit.
    end = time.monotonic() + 3
    while time.monotonic() < end:
        assert a.renew(CALL, [1]) == 1
        assert b.reserve(CALL).unit is None
        time.sleep(0.2)
    assert b.renew(CALL, [1]) == 0  # not b's to renew


def test_a_stopped_server_is_one_queue_error(redis_server) -> None:  # type: ignore[no-untyped-def]
    node = _node(redis_server.url, "a")
    node.join(CALL, "d", lambda: UNITS, {})
    redis_server.stop()
    with pytest.raises(QueueError, match=r"queue redis://127\.0\.0\.1:\d+/0: reserving work"):
        node.reserve(CALL)
    with pytest.raises(QueueError, match="cannot reach the queue"):
        connect(redis_server.url, timeout=2)


def test_passwords_are_used_and_never_printed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from redis_server import RedisServer  # type: ignore[import-not-found]

    from dagpar_cli.testing import skip_missing_tool, tool_missing

    reason = tool_missing("redis")
    if reason is not None:
        skip_missing_tool("redis", reason)
    server = RedisServer(tmp_path / "r", password="s3cret").start()
    try:
        assert connect(server.url).ping()
        wrong = server.url.replace("s3cret", "nope")
        with pytest.raises(QueueError) as info:
            connect(wrong)
        assert "nope" not in info.value.message and ":***@" in info.value.message
    finally:
        server.stop()


def test_the_report_waits_for_nodes_still_in_the_build(redis_server) -> None:  # type: ignore[no-untyped-def]
    from dagpar_cli.queue.report import wait_for_build

    node = _node(redis_server.url, "a")
    node.heartbeat()
    node.join(CALL, "d", lambda: [UNITS[0]], {"check": "p:test"})
    assert node.reserve(CALL).unit is not None
    assert node.complete(CALL, 1, dump_unit("a", 1.0, []))
    assert node.nodes() == ["a"]
    reader = _node(redis_server.url, "report")
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(wait_for_build(reader, 60, poll=0.05)))
    waiter.start()
    # Every unit is done, but "a" may still reach another split call: the report waits.
    waiter.join(timeout=1.0)
    assert waiter.is_alive()
    node.leave()
    waiter.join(timeout=60)
    assert not waiter.is_alive() and len(got) == 1


def test_an_interrupted_node_gives_its_unit_back_at_once(redis_server) -> None:  # type: ignore[no-untyped-def]
    a, b = _node(redis_server.url, "a"), _node(redis_server.url, "b")
    a.join(CALL, "d", lambda: [UNITS[0]], {})
    assert a.reserve(CALL).unit is not None
    assert not b.release(CALL, 1)  # not b's
    assert a.release(CALL, 1)
    assert b.reserve(CALL).unit == UNITS[0]  # no lease to wait for
    assert b.client.hget(b.key(CALL, "requeues"), "1") is None


def test_the_report_stops_waiting_when_no_node_is_left(redis_server) -> None:  # type: ignore[no-untyped-def]
    from dagpar_cli.queue.report import collect_build, wait_for_build

    node = _node(redis_server.url, "a")
    node.join(CALL, "d", lambda: UNITS, {"check": "p:test"})
    assert node.reserve(CALL).unit is not None  # and then "a" is gone
    states = wait_for_build(_node(redis_server.url, "r"), 600, idle=0.2, poll=0.05)
    assert not states[0].complete
    merged = collect_build(node.options, states, 600)
    assert merged.missing == 3 and not merged.run.checks[0].passed
