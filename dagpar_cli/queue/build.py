"""One CI build's queue in Redis: who fills it, who holds which unit, what each unit reported.

Every split call of the build has its own keys, under ``dagpar:{BUILD}:call:CHECK#N`` (the
braces keep a build's keys in one Redis Cluster slot, so the scripts below can touch them all):

- ``meta`` (hash): the listing digest, the unit count, and ``filled`` once the queue is full;
- ``leader`` (string): the node filling it (``SET NX`` with an expiry, so a leader that dies
  before it filled the queue is replaced);
- ``units`` (hash): unit number -> :class:`~dagpar_cli.queue.units.Unit`;
- ``queue`` (list): unit numbers not yet reserved, first to go on the left;
- ``running`` (sorted set): reserved unit -> lease deadline (Redis server time, ms), and
  ``owner`` (hash): unit -> worker;
- ``requeues`` (hash), ``lost`` (hash: unit -> last worker), ``done`` (set), ``results``
  (hash: unit -> the tests' results).

Leases are checked on the server's clock, so nodes' clocks need not agree. Every key expires
after the build's TTL (24 h by default), refreshed by each write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagpar_cli.config import QueueOptions
from dagpar_cli.errors import UsageError
from dagpar_cli.queue.client import failures, text
from dagpar_cli.queue.units import Unit

if TYPE_CHECKING:
    import redis

__all__ = ["CallState", "QueueBuild", "Reservation"]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

#: KEYS: queue running owner requeues done lost
#: ARGV: worker lease_ms max_requeues ttl pop(0|1)
#: Requeues every unit whose lease ran out (or gives it up as lost), then reserves the next.
_RESERVE = (
    _NOW
    + """
local queue, running, owner = KEYS[1], KEYS[2], KEYS[3]
local requeues, done, lost = KEYS[4], KEYS[5], KEYS[6]
local ttl = tonumber(ARGV[4])
for _, u in ipairs(redis.call('ZRANGEBYSCORE', running, '-inf', now)) do
  redis.call('ZREM', running, u)
  local who = redis.call('HGET', owner, u) or ''
  redis.call('HDEL', owner, u)
  if redis.call('SISMEMBER', done, u) == 0 then
    if redis.call('HINCRBY', requeues, u, 1) > tonumber(ARGV[3]) then
      redis.call('HSET', lost, u, who)
      redis.call('SADD', done, u)
    else
      redis.call('LPUSH', queue, u)
    end
  end
end
local got = false
if ARGV[5] == '1' then
  while true do
    local u = redis.call('LPOP', queue)
    if not u then break end
    if redis.call('SISMEMBER', done, u) == 0 and not redis.call('ZSCORE', running, u) then
      redis.call('ZADD', running, now + tonumber(ARGV[2]), u)
      redis.call('HSET', owner, u, ARGV[1])
      got = u
      break
    end
  end
end
for _, k in ipairs(KEYS) do redis.call('EXPIRE', k, ttl) end
return {got, redis.call('SCARD', done)}
"""
)

#: KEYS: running owner; ARGV: worker lease_ms unit...
_RENEW = (
    _NOW
    + """
local n = 0
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[i])
    n = n + 1
  end
end
return n
"""
)

#: KEYS: done running owner results; ARGV: unit worker payload ttl
#: The first result for a unit wins; a later one (a lease that ran out, then came back) is
#: discarded, so each test is reported once.
_COMPLETE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
for _, k in ipairs(KEYS) do redis.call('EXPIRE', k, tonumber(ARGV[4])) end
return 1
"""


#: KEYS: running owner queue done; ARGV: unit worker
#: An interrupted node gives its unit back at once (not counted as a requeue).
_RELEASE = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0 then redis.call('LPUSH', KEYS[3], ARGV[1]) end
return 1
"""


@dataclass(frozen=True, slots=True)
class Reservation:
    """What one reserve call gave: a unit (or None) and how many units are done."""

    unit: Unit | None
    done: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallState:
    """A split call's queue as ``dagpar queue report`` reads it."""

    key: str
    meta: dict[str, str]
    units: dict[int, Unit]
    results: dict[int, str]
    lost: dict[int, str]

    @property
    def check(self) -> str:
        """The check the split call belongs to."""
        return self.meta.get("check", "")

    @property
    def complete(self) -> bool:
        """Every unit is done (ran, or given up as lost)."""
        total = int(self.meta.get("total", "0") or 0)
        return bool(self.meta.get("filled")) and len(self.results) + len(self.lost) >= total


class QueueBuild:
    """The queue of one build, as one node (or the report) uses it."""

    def __init__(self, client: redis.Redis, options: QueueOptions) -> None:
        # The client's annotations are looser than its replies (decoded text here): Any.
        self.client: Any = client
        self.options = options
        self.prefix = f"dagpar:{{{options.build}}}:"
        self._reserve: Any = client.register_script(_RESERVE)
        self._renew: Any = client.register_script(_RENEW)
        self._complete: Any = client.register_script(_COMPLETE)
        self._release: Any = client.register_script(_RELEASE)

    def _failures(self, doing: str) -> Any:
        return failures(self.options.url, doing)

    def key(self, call: str, part: str) -> str:
        """The Redis key of *part* of split call *call*."""
        return f"{self.prefix}call:{call}:{part}"

    # ---------------------------------------------------------------- joining

    def join(
        self,
        call: str,
        digest: str,
        make_units: Callable[[], Sequence[Unit]],
        meta: dict[str, str],
        *,
        poll: float = 0.1,
    ) -> bool:
        """Fill *call*'s queue if this node is first, else wait until it is filled.

        :returns: whether this node filled it.
        :raises UsageError: the queue was filled from a listing with another digest.
        """
        o = self.options
        with self._failures("joining the build"):
            while True:
                filled = self.client.hgetall(self.key(call, "meta"))
                if filled.get("filled"):
                    self._check_digest(call, digest, filled)
                    return False
                leader_ttl = max(60, int(o.lease * 4))
                if self.client.set(self.key(call, "leader"), o.worker, nx=True, ex=leader_ttl):
                    self._fill(call, digest, list(make_units()), meta)
                    return True
                time.sleep(poll)

    def _check_digest(self, call: str, digest: str, meta: dict[str, str]) -> None:
        if meta.get("digest") != digest:
            raise UsageError(
                f"queue build {self.options.build!r}: {meta.get('check', call)} lists a "
                f"different suite here than on {meta.get('leader') or 'the node that filled it'} "
                f"(digest {digest} vs {meta.get('digest')}): run every node of a build from "
                "the same commit and filters"
            )

    def _fill(self, call: str, digest: str, units: list[Unit], meta: dict[str, str]) -> None:
        o = self.options
        pipe = self.client.pipeline(transaction=True)
        if units:
            pipe.hset(self.key(call, "units"), mapping={str(u.number): u.to_json() for u in units})
            pipe.rpush(self.key(call, "queue"), *[str(u.number) for u in units])
        pipe.hset(
            self.key(call, "meta"),
            mapping={
                **meta,
                "started": f"{time.time():.3f}",
                "digest": digest,
                "total": str(len(units)),
                "leader": o.worker,
                "filled": "1",
            },
        )
        pipe.sadd(self.prefix + "calls", call)
        for part in ("units", "queue", "meta", "leader"):
            pipe.expire(self.key(call, part), o.ttl)
        pipe.expire(self.prefix + "calls", o.ttl)
        pipe.execute()

    # ---------------------------------------------------------------- working

    def _reserve_keys(self, call: str) -> list[str]:
        parts = ("queue", "running", "owner", "requeues", "done", "lost")
        return [self.key(call, p) for p in parts]

    def reserve(self, call: str, *, take: bool = True) -> Reservation:
        """Requeue units whose lease ran out, then reserve the next unit (unless not *take*)."""
        o = self.options
        args: list[Any] = [
            o.worker,
            int(o.lease * 1000),
            o.max_requeues,
            o.ttl,
            "1" if take else "0",
        ]
        with self._failures("reserving work"):
            got, done = self._reserve(keys=self._reserve_keys(call), args=args)
            if not got:
                return Reservation(None, int(done))
            raw = self.client.hget(self.key(call, "units"), got)
        return Reservation(Unit.from_json(text(raw)), int(done))

    def renew(self, call: str, units: Iterable[int]) -> int:
        """Extend this node's leases on *units*; returns how many it still held."""
        numbers = [str(n) for n in units]
        if not numbers:
            return 0
        o = self.options
        keys = [self.key(call, "running"), self.key(call, "owner")]
        with self._failures("renewing a lease"):
            return int(self._renew(keys=keys, args=[o.worker, int(o.lease * 1000), *numbers]))

    def complete(self, call: str, unit: int, payload: str) -> bool:
        """Store a unit's results; False when another node completed it first (discarded)."""
        keys = [self.key(call, p) for p in ("done", "running", "owner", "results")]
        args: list[Any] = [str(unit), self.options.worker, payload, self.options.ttl]
        with self._failures("storing results"):
            return bool(self._complete(keys=keys, args=args))

    def release(self, call: str, unit: int) -> bool:
        """Give back a unit this node holds but will not finish (it was interrupted)."""
        keys = [self.key(call, p) for p in ("running", "owner", "queue", "done")]
        with self._failures("giving work back"):
            return bool(self._release(keys=keys, args=[str(unit), self.options.worker]))

    def total(self, call: str) -> int:
        """How many units *call* has."""
        with self._failures("reading the build"):
            return int(self.client.hget(self.key(call, "meta"), "total") or 0)

    # ---------------------------------------------------------------- node status

    def _heartbeat_key(self, worker: str) -> str:
        return f"{self.prefix}node:{worker}"

    def heartbeat(self) -> None:
        """Say this node is still in the build, for twice the lease (the report waits while
        any node says so)."""
        seconds = max(2, int(self.options.lease * 2))
        with self._failures("joining the build"):
            self.client.set(self._heartbeat_key(self.options.worker), "1", ex=seconds)

    def leave(self) -> None:
        """This node is done with the build."""
        with self._failures("leaving the build"):
            self.client.delete(self._heartbeat_key(self.options.worker))

    def nodes(self) -> list[str]:
        """The nodes still in the build (their heartbeat has not expired)."""
        pattern = self._heartbeat_key("*")
        with self._failures("reading the build"):
            keys = self.client.scan_iter(match=pattern, count=100)
            return sorted(k[len(pattern) - 1 :] for k in keys)

    def record_status(self, code: int) -> None:
        """Remember this node's exit code (a retried job that finds the build drained ends
        with it)."""
        key = self.prefix + "status"
        with self._failures("recording this node's status"):
            self.client.hset(key, self.options.worker, str(code))
            self.client.expire(key, self.options.ttl)

    def earlier_status(self) -> int | None:
        """The exit code this worker name ended with in this build before, if any."""
        with self._failures("reading the build"):
            value = self.client.hget(self.prefix + "status", self.options.worker)
        return int(value) if value is not None else None

    # ---------------------------------------------------------------- reporting

    def calls(self) -> list[str]:
        """Every split call any node filled, sorted."""
        with self._failures("reading the build"):
            return sorted(self.client.smembers(self.prefix + "calls"))

    def state(self, call: str) -> CallState:
        """*call*'s queue as it is now (expired leases requeued first)."""
        self.reserve(call, take=False)
        with self._failures("reading the build"):
            pipe = self.client.pipeline(transaction=True)
            for part in ("meta", "units", "results", "lost"):
                pipe.hgetall(self.key(call, part))
            meta, units, results, lost = pipe.execute()
        return CallState(
            key=call,
            meta=meta,
            units={int(n): Unit.from_json(v) for n, v in units.items()},
            results={int(n): v for n, v in results.items()},
            lost={int(n): v for n, v in lost.items()},
        )
