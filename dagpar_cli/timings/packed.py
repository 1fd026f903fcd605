"""The timing store's rows: one per key, its kept samples packed into a blob, merged in bulk.

A kept sample is ``(seconds, run, ordinal)``, where ``run`` numbers a ``(run_id, recorded)`` pair
in the ``runs`` table; a blob holds them as three 8-byte little-endian numbers each, oldest first
by ``(recorded, run_id, ordinal)``, the total order the store keeps the last samples by.

:func:`merge_samples` adds sample rows ``(instance, kind, key, run_id, ordinal, seconds,
recorded)`` with the store's rules: of two samples with one identity ``(key, run_id, ordinal)``
the smaller seconds and the earlier time win, and each key keeps its last ``keep``. The common
write, one new sample per key from a run the store has not seen, appends to the blob and re-reads
nothing else; keys are read and written in key order, a chunk at a time, so a write's memory does
not grow with the store. :func:`merge_run` takes one run's samples as the recorder keeps them,
per key. Runs no kept sample names any more are dropped once the ``runs`` table grows past
:data:`RUNS_KEPT`.
"""

from __future__ import annotations

import sqlite3
import struct
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

__all__ = ["export_samples", "merge_run", "merge_samples", "pack", "unpack"]

#: One kept sample: seconds, run number, ordinal.
_SAMPLE = struct.Struct("<dqq")
_SIZE = _SAMPLE.size
#: Keys read and written at once: bounds a write's memory, whatever the store's size.
_CHUNK = 8192
#: Up to this many keys in a chunk are looked up one by one; more, and their range is scanned.
_LOOKUPS = 64
#: Past this many runs, the runs no kept sample names are dropped.
RUNS_KEPT = 4096
#: Whether a blob's seconds can be read in place (every 3rd double).
_LITTLE = sys.byteorder == "little"

#: One packed sample before packing.
Kept = tuple[float, int, int]


def pack(samples: Iterable[Kept]) -> bytes:
    """The blob of *samples* ``(seconds, run, ordinal)``, in the order given."""
    return b"".join([_SAMPLE.pack(*sample) for sample in samples])


def unpack(blob: bytes) -> list[Kept]:
    """The samples ``(seconds, run, ordinal)`` of a blob, oldest first."""
    return list(_SAMPLE.iter_unpack(blob))


def _seconds(blob: bytes) -> Sequence[float]:
    if _LITTLE:
        return memoryview(blob).cast("d")[::3]
    return [seconds for seconds, _, _ in _SAMPLE.iter_unpack(blob)]  # pragma: no cover


class _Runs:
    """The ``runs`` table in memory: numbers of ``(run_id, recorded)`` pairs and their order."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        #: ``(recorded, run_id)`` per number: the sort key of its samples.
        self.order: dict[int, tuple[float, str]] = {}
        self._numbers: dict[tuple[str, float], int] = {}
        for number, run_id, recorded in conn.execute("SELECT number, run_id, recorded FROM runs"):
            self.order[number] = (recorded, run_id)
            self._numbers[(run_id, recorded)] = number
        self._known = {run_id for _, run_id in self.order.values()}
        #: Numbers of run ids the store had not seen before this write: their samples cannot
        #: share an identity with a kept one.
        self.fresh: set[int] = set()

    def number(self, run_id: str, recorded: float) -> int:
        """The number of ``(run_id, recorded)``, added to the table if new."""
        found = self._numbers.get((run_id, recorded))
        if found is None:
            cursor = self._conn.execute(
                "INSERT INTO runs (run_id, recorded) VALUES (?, ?)", (run_id, recorded)
            )
            found = cursor.lastrowid
            assert found is not None
            self._numbers[(run_id, recorded)] = found
            self.order[found] = (recorded, run_id)
            if run_id not in self._known:
                self.fresh.add(found)
        return found


def merge_samples(conn: sqlite3.Connection, rows: Iterable[Sequence[Any]], keep: int) -> None:
    """Add sample *rows* to the store on *conn* (inside the caller's transaction), keeping the
    last *keep* per key and re-estimating the keys they touch."""
    runs = _runs(conn)
    groups: dict[tuple[str, str], dict[str, list[Kept]]] = {}
    last_id: str | None = None
    last_recorded = 0.0
    number = 0
    where: tuple[str, str] | None = None
    group: dict[str, list[Kept]] = {}
    for instance, kind, key, run_id, ordinal, seconds, recorded in rows:
        if run_id != last_id or recorded != last_recorded:
            number = runs.number(run_id, recorded)
            last_id, last_recorded = run_id, recorded
        if where is None or where[0] != instance or where[1] != kind:
            where = (instance, kind)
            group = groups.setdefault(where, {})
        found = group.get(key)
        if found is None:
            group[key] = [(seconds, number, ordinal)]
        else:
            found.append((seconds, number, ordinal))
    _merge_groups(conn, groups, None, runs, keep)


def merge_run(
    conn: sqlite3.Connection,
    run_id: str,
    recorded: float,
    groups: Mapping[tuple[str, str], Mapping[str, list[float]]],
    keep: int,
) -> None:
    """:func:`merge_samples` for the samples of one run, given per ``(instance, kind)`` and key
    as their seconds, ordinal by ordinal (``SampleRecorder.groups``)."""
    runs = _runs(conn)
    _merge_groups(conn, groups, runs.number(run_id, recorded), runs, keep)


def _merge_groups(
    conn: sqlite3.Connection,
    groups: Mapping[tuple[str, str], Mapping[str, list[Any]]],
    number: int | None,
    runs: _Runs,
    keep: int,
) -> None:
    """Merge *groups*: per key, samples ``(seconds, run, ordinal)``, or with a run *number*
    the seconds of that run's samples, ordinal by ordinal."""
    keep = max(1, keep)
    for (instance, kind), group in groups.items():
        keys = sorted(group)
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            existing = _existing(conn, instance, kind, chunk)
            conn.executemany(
                "INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?, ?, ?, ?)",
                _merged_rows(instance, kind, chunk, group, existing, runs, keep, number),
            )


def _runs(conn: sqlite3.Connection) -> _Runs:
    """The ``runs`` table, first rid of the runs no kept sample names when it has grown."""
    runs = _Runs(conn)
    if len(runs.order) <= RUNS_KEPT:
        return runs
    _drop_unused_runs(conn)
    return _Runs(conn)


def _drop_unused_runs(conn: sqlite3.Connection) -> None:
    """Delete the runs no kept sample names (before a write numbers its own)."""
    used: set[int] = set()
    for (blob,) in conn.execute("SELECT samples FROM history"):
        used.update(number for _, number, _ in _SAMPLE.iter_unpack(blob))
    unused = [
        (number,) for (number,) in conn.execute("SELECT number FROM runs") if number not in used
    ]
    conn.executemany("DELETE FROM runs WHERE number = ?", unused)


def _existing(
    conn: sqlite3.Connection, instance: str, kind: str, keys: list[str]
) -> dict[str, bytes]:
    """The blobs of the sorted *keys* that the store holds."""
    if len(keys) <= _LOOKUPS:
        found = {}
        for key in keys:
            row = conn.execute(
                "SELECT samples FROM history WHERE instance = ? AND kind = ? AND key = ?",
                (instance, kind, key),
            ).fetchone()
            if row is not None:
                found[key] = row[0]
        return found
    return dict(
        conn.execute(
            "SELECT key, samples FROM history"
            " WHERE instance = ? AND kind = ? AND key >= ? AND key <= ?",
            (instance, kind, keys[0], keys[-1]),
        )
    )


def _merged_rows(
    instance: str,
    kind: str,
    keys: list[str],
    group: Mapping[str, list[Any]],
    existing: dict[str, bytes],
    runs: _Runs,
    keep: int,
    number: int | None,
) -> Iterator[tuple[str, str, str, float, float, int, bytes]]:
    """The ``history`` rows of *keys*: their kept samples with the new ones, re-estimated."""
    order, fresh, limit = runs.order, runs.fresh, keep * _SIZE
    pack_one = _SAMPLE.pack
    last_of = _SAMPLE.unpack_from
    new_run = number in fresh
    for key in keys:
        new = group[key]
        # One sample of a run the store has not seen: no identity to merge, usually the newest.
        single: Kept | None = None
        if number is not None:
            if len(new) == 1 and new_run:
                single = (new[0], number, 0)
            else:
                new = [(seconds, number, ordinal) for ordinal, seconds in enumerate(new)]
        elif len(new) == 1 and new[0][1] in fresh:
            single = new[0]
        blob = existing.get(key)
        if single is None:
            blob = _merge(blob, new, order, keep)
        elif blob is None:
            blob = pack_one(*single)
        elif order[single[1]] > order[last_of(blob, len(blob) - _SIZE)[1]]:
            blob = (blob + pack_one(*single))[-limit:]
        else:
            blob = _merge(blob, [single], order, keep)
        count = len(blob) // _SIZE
        if count == 1:
            yield (instance, kind, key, last_of(blob, 0)[0], 0.0, 1, blob)
            continue
        # robust_estimate, inline: this loop runs once per key of a run.
        ordered = sorted(_seconds(blob))
        half = count // 2
        median = ordered[half] if count % 2 else (ordered[half - 1] + ordered[half]) / 2
        spread = 0.0
        if count >= 3 and median > 0:
            deviations = sorted([abs(s - median) for s in ordered])
            mad = deviations[half] if count % 2 else (deviations[half - 1] + deviations[half]) / 2
            spread = 1.4826 * mad / median
        yield (instance, kind, key, median, spread, count, blob)


def _merge(
    blob: bytes | None, new: list[Kept], order: dict[int, tuple[float, str]], keep: int
) -> bytes:
    """The blob of a key's kept samples and *new* ones: duplicates merged, the last *keep*."""
    merged: dict[tuple[str, int], tuple[float, int]] = {}
    for seconds, number, ordinal in chain(unpack(blob) if blob else (), new):
        ident = (order[number][1], ordinal)
        old = merged.get(ident)
        if old is None:
            merged[ident] = (seconds, number)
        else:
            earlier = old[1] if order[old[1]][0] <= order[number][0] else number
            merged[ident] = (min(old[0], seconds), earlier)
    ordered = sorted(merged.items(), key=lambda e: (order[e[1][1]][0], e[0][0], e[0][1]))
    return pack((seconds, number, ident[1]) for ident, (seconds, number) in ordered[-keep:])


def export_samples(conn: sqlite3.Connection) -> list[tuple[str, str, str, str, int, float, float]]:
    """Every kept sample ``(instance, kind, key, run_id, ordinal, seconds, recorded)``, ordered by
    instance, kind, key, then time, run and ordinal."""
    runs = {
        number: (run_id, recorded)
        for number, run_id, recorded in conn.execute("SELECT number, run_id, recorded FROM runs")
    }
    rows = []
    for instance, kind, key, blob in conn.execute(
        "SELECT instance, kind, key, samples FROM history ORDER BY instance, kind, key"
    ):
        for seconds, number, ordinal in _SAMPLE.iter_unpack(blob):
            run_id, recorded = runs[number]
            rows.append((instance, kind, key, run_id, ordinal, seconds, recorded))
    return rows
