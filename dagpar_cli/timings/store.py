"""The timing store: how long every test and item took, learned run after run.

History lives in SQLite at ``<workspace>/.dagpar/timings.sqlite`` (WAL mode, so two dagpar runs in
one workspace can read and write at once). For every ``(instance, key)`` the store keeps the last
:data:`KEEP` samples, where a key is a test id (``path::name``) or an item path; the estimate is
their median, so one slow run moves nothing (:mod:`~dagpar_cli.timings.predict` turns estimates
into predictions). Per ``(runner, executor)`` it also keeps the measured start-up cost of one
slice.

One row per key holds its estimate and its kept samples, packed (:mod:`~dagpar_cli.timings.packed`),
so a run of 200,000 items reads and writes 200,000 rows, not one row and one index entry per
sample. A store of the first layout (one row per sample) is migrated when it is opened.

A corrupt database is renamed aside with a :class:`TimingStoreWarning` and rebuilt: timings are
an optimisation, never a reason for a run to fail.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import threading
import time
import uuid
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from dagpar_cli.model import Item, RunResult, Status, TestCase
from dagpar_cli.statedir import state_dir
from dagpar_cli.timings.packed import export_samples, merge_run, merge_samples, unpack
from dagpar_cli.timings.predict import (
    Prediction,
    predict_items,
    predict_tests,
    split_test_id,
)
from dagpar_cli.timings.startup import StartupModel, fit_startup
from dagpar_cli.timings.transfer import (
    ITEM,
    SETUP,
    SLICE_TESTS,
    STARTUP,
    TEST,
    Sample,
    TimingsFormatError,
    export_document,
    export_rows,
    junit_samples,
    read_junit,
    run_samples,
)

__all__ = ["BUSY_SECONDS", "DB_NAME", "KEEP", "TimingRow", "TimingStore", "TimingStoreWarning"]

#: The database's file name inside the state directory.
DB_NAME = "timings.sqlite"
#: Samples kept per ``(instance, key)``.
KEEP = 10
#: Seconds a writer waits for another dagpar run's transaction before giving up.
BUSY_SECONDS = 30.0

#: The layout of the database (the export format has its own version, SCHEMA_VERSION).
_LAYOUT = 2
#: The first layout, one row per sample, which :meth:`TimingStore._prepare` migrates.
_LAYOUT_PER_SAMPLE = 1
#: Samples of the first layout migrated at once.
_MIGRATE_BATCH = 50_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    number INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    recorded REAL NOT NULL,   -- wall-clock time: the last KEEP by this survive
    UNIQUE (run_id, recorded)
);
CREATE TABLE IF NOT EXISTS history (
    instance TEXT NOT NULL,   -- toolchain instance (the runner, for start-up samples)
    kind TEXT NOT NULL,       -- test | item | startup | setup
    key TEXT NOT NULL,        -- test id or item path (the executor, for start-up samples)
    seconds REAL NOT NULL,    -- median of the kept samples
    spread REAL NOT NULL,     -- robust relative deviation of the kept samples
    count INTEGER NOT NULL,
    samples BLOB NOT NULL,    -- the kept samples, oldest first (packed.pack)
    PRIMARY KEY (instance, kind, key)
) WITHOUT ROWID;
"""

_T = TypeVar("_T")


class TimingStoreWarning(UserWarning):
    """The timing store had to be set aside or could not be updated; the run goes on."""


@dataclass(frozen=True, slots=True)
class TimingRow:
    """One line of ``dagpar timings show``: an item and what the store expects of it."""

    #: The toolchain instance.
    instance: str
    #: The item's path (file or package), workspace-relative.
    key: str
    #: Predicted seconds.
    seconds: float
    #: How many samples back the estimate (the most of any of its tests).
    samples: int
    #: How many of its tests the store knows.
    tests: int


@dataclass(slots=True)
class _Estimates:
    """What planning reads of one instance: the estimated seconds per test id and per whole
    item, and the spreads of the tests with at least three samples."""

    seconds: dict[str, dict[str, float]] = field(default_factory=lambda: {TEST: {}, ITEM: {}})
    spreads: list[float] = field(default_factory=list)


class TimingStore:
    """Per-test and per-item duration history of one workspace (see the module docstring).

    Open it with :meth:`open`; use it as a context manager or call :meth:`close`.
    """

    def __init__(self, path: Path, *, keep: int = KEEP) -> None:
        """Open (or create) the database at *path*; prefer :meth:`open`.

        :param path: the SQLite file.
        :param keep: samples kept per key.
        """
        #: The SQLite file.
        self.path = path
        #: Samples kept per key.
        self.keep = keep
        self._lock = threading.RLock()
        self._conn = self._connect()
        #: Inside :meth:`reading`: the last :meth:`_estimates` read and what it depends on.
        self._read: tuple[tuple[object, ...], _Estimates] | None = None
        self._readers = 0

    @classmethod
    def open(cls, workspace: Path, *, keep: int = KEEP) -> TimingStore:
        """The store of *workspace*, at ``.dagpar/timings.sqlite``.

        :param workspace: the workspace root.
        :param keep: samples kept per key.
        """
        return cls(state_dir(workspace) / DB_NAME, keep=keep)

    def close(self) -> None:
        """Close the database (the store cannot be used afterwards)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> TimingStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -----------------------------------------------------------------------------------------
    # connection, schema, corruption

    def _connect(self) -> sqlite3.Connection:
        """Connect, set WAL and the busy timeout, create the schema; set a corrupt file aside."""
        for attempt in range(2):
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_SECONDS,
                isolation_level=None,  # transactions are explicit (BEGIN IMMEDIATE)
                check_same_thread=False,  # guarded by self._lock
            )
            try:
                self._prepare(conn)
                return conn
            except sqlite3.DatabaseError as exc:
                conn.close()
                if attempt or not _is_corruption(exc):
                    raise
                self._set_aside(str(exc))
        raise AssertionError("unreachable")  # pragma: no cover

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
        check = conn.execute("PRAGMA quick_check(1)").fetchone()
        if check is None or check[0] != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed: {check}")
        _retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"))
        conn.execute("PRAGMA synchronous = NORMAL")
        with _transaction(conn):
            version = None
            has_meta = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()
            if has_meta:
                row = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
                version = int(row[0]) if row else None
            migrate = version == _LAYOUT_PER_SAMPLE
            if version is not None and version != _LAYOUT and not migrate:
                # A store written by a later dagpar: start over rather than misread it.
                for table in ("samples", "estimates", "history", "runs", "meta"):
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
            # executescript() would commit the open transaction; run the statements one by one.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if migrate:
                _migrate_per_sample(conn, self.keep)
            conn.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('schema', ?)", (str(_LAYOUT),)
            )
        if migrate:
            try:
                conn.execute("VACUUM")  # the first layout's pages, given back once
            except sqlite3.OperationalError:
                pass  # another run is reading: the pages are reused by later writes instead

    def _set_aside(self, why: str) -> None:
        """Rename a corrupt database out of the way so a fresh one can be built."""
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}-{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            pass  # another dagpar run set it aside first
        for suffix in ("-wal", "-shm"):
            try:
                os.remove(f"{self.path}{suffix}")
            except FileNotFoundError:
                pass
        warnings.warn(
            f"the timing store {self.path} was corrupt ({why}); it was moved to {aside.name} "
            "and a new one is started, so this run is planned without history",
            TimingStoreWarning,
            stacklevel=4,
        )

    def _guarded(self, action: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run *action*; if the file turns out corrupt, rebuild the store and run it again."""
        with self._lock:
            try:
                return action(self._conn)
            except sqlite3.DatabaseError as exc:
                if not _is_corruption(exc):
                    raise
                self._conn.close()
                self._set_aside(str(exc))
                self._conn = self._connect()
                return action(self._conn)

    # -----------------------------------------------------------------------------------------
    # reading

    def _estimates(self, conn: sqlite3.Connection, instance: str) -> _Estimates:
        """The estimates of one instance (not to be modified).

        Inside :meth:`reading`, the last read is kept until the store changes: a write on this
        connection changes ``total_changes``, a commit by another one ``PRAGMA data_version``.
        """
        stamp: tuple[object, ...] = ()
        if self._readers:
            (version,) = conn.execute("PRAGMA data_version").fetchone()
            stamp = (conn, instance, conn.total_changes, version)
            if self._read is not None and self._read[0] == stamp:
                return self._read[1]
        found = _Estimates()
        rows = conn.execute(
            "SELECT kind, key, seconds, spread, count FROM history WHERE instance = ?",
            (instance,),
        )
        tests, items = found.seconds[TEST], found.seconds[ITEM]
        for kind, key, seconds, spread, count in rows:
            if kind == TEST:
                tests[key] = seconds
                if count >= 3:
                    found.spreads.append(spread)
            elif kind == ITEM:
                items[key] = seconds
        if self._readers:
            self._read = (stamp, found)
        return found

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Keep what the block reads of an instance's estimates for the block's later reads.

        Planning a split call asks for one instance's estimates twice (items, then tests), and
        a big suite's are tens of thousands of rows; the read is dropped when the last block
        ends, not held while the slices run. A write in between, on this connection or
        another, is seen as without the block.
        """
        with self._lock:
            self._readers += 1
        try:
            yield
        finally:
            with self._lock:
                self._readers -= 1
                if not self._readers:
                    self._read = None

    def predict_detailed(
        self,
        instance: str,
        items: Sequence[Item],
        tests: Mapping[str, Sequence[TestCase]],
    ) -> Prediction:
        """Predicted seconds for every item, which of them are estimates, and the spread.

        An item ``[file]`` is the sum of its tests' estimates when its tests are listed and at
        least one of them is known; otherwise the file's recorded total; otherwise an estimate
        from sibling items. A finer item ``[file, test]`` is its test's estimate
        (:func:`~dagpar_cli.timings.predict.predict_items`).

        :param instance: the toolchain instance.
        :param items: the items of one split call.
        :param tests: the tests each item selects, per ``Item.key``.
        """
        estimates = self._guarded(lambda conn: self._estimates(conn, instance))
        return predict_items(
            estimates.seconds[TEST],
            estimates.seconds[ITEM],
            items,
            tests,
            spreads=estimates.spreads,
        )

    def predict(
        self,
        instance: str,
        items: Sequence[Item],
        tests: Mapping[str, Sequence[TestCase]],
    ) -> tuple[dict[str, float], bool]:
        """Predicted seconds per ``Item.key`` for every item, and whether any history existed.

        See :meth:`predict_detailed`, which also says which predictions are estimates.
        """
        prediction = self.predict_detailed(instance, items, tests)
        return prediction.seconds, prediction.has_history

    def predict_tests(self, instance: str, tests: Sequence[TestCase]) -> dict[str, float]:
        """Predicted seconds per test id (unknown tests estimated from their siblings).

        :param instance: the toolchain instance.
        :param tests: the tests.
        """
        estimates = self._guarded(lambda conn: self._estimates(conn, instance))
        return predict_tests(estimates.seconds[TEST], tests)

    def startup_seconds(self, runner: str, executor: str) -> float | None:
        """The measured start-up seconds of one slice of *runner* on *executor*, if known.

        :param runner: the runner plugin's name (``pytest``, ``jest``, ``go``, ...).
        :param executor: the executor's name (``local``, ``docker``).
        """
        row = self._guarded(
            lambda conn: conn.execute(
                "SELECT seconds FROM history WHERE instance = ? AND kind = ? AND key = ?",
                (runner, STARTUP, executor),
            ).fetchone()
        )
        return float(row[0]) if row else None

    def startup_model(self, runner: str, executor: str, prior: float) -> StartupModel | None:
        """One slice's overhead on *runner* and *executor*, fixed and per test, if measured.

        Fitted from the kept start-up samples and their slices' test counts
        (:func:`~dagpar_cli.timings.startup.fit_startup`); samples recorded before counts were
        kept count as fixed start-up, as :meth:`startup_seconds` does.

        :param runner: the runner plugin's name.
        :param executor: the executor's name.
        :param prior: the start-up seconds assumed before any was measured.
        """
        rows = self._guarded(
            lambda conn: conn.execute(
                "SELECT kind, samples FROM history"
                " WHERE instance = ? AND kind IN (?, ?) AND key = ?",
                (runner, STARTUP, SLICE_TESTS, executor),
            ).fetchall()
        )
        kept = {kind: unpack(blob) for kind, blob in rows}
        # A slice's count shares its start-up sample's run and ordinal.
        counts = {(run, ordinal): seconds for seconds, run, ordinal in kept.get(SLICE_TESTS, [])}
        samples = [
            (seconds, counts.get((run, ordinal))) for seconds, run, ordinal in kept.get(STARTUP, [])
        ]
        return fit_startup(samples, prior)

    def setup_seconds(self, instance: str) -> dict[str, float]:
        """Per path, what a slice of *instance* spends preparing it before its tests run (Go:
        building the package's test binary); paths without such samples are left out.
        """
        rows = self._guarded(
            lambda conn: conn.execute(
                "SELECT key, seconds FROM history WHERE instance = ? AND kind = ?",
                (instance, SETUP),
            ).fetchall()
        )
        return {key: float(seconds) for key, seconds in rows}

    def show(self, instance: str | None = None, limit: int = 20) -> list[TimingRow]:
        """The slowest items, for ``dagpar timings show``.

        :param instance: only this toolchain instance (None: all of them).
        :param limit: at most this many rows.
        """

        def query(conn: sqlite3.Connection) -> list[tuple[str, str, str, float, int]]:
            sql = "SELECT instance, kind, key, seconds, count FROM history WHERE kind IN (?, ?)"
            args: tuple[str, ...] = (TEST, ITEM)
            if instance is not None:
                sql += " AND instance = ?"
                args += (instance,)
            return list(conn.execute(sql, args))

        totals: dict[tuple[str, str], list[float]] = defaultdict(list)
        counts: dict[tuple[str, str], int] = defaultdict(int)
        whole: dict[tuple[str, str], tuple[float, int]] = {}
        for inst, kind, key, seconds, count in self._guarded(query):
            if kind == TEST:
                where = (inst, split_test_id(key)[0])
                totals[where].append(seconds)
                counts[where] = max(counts[where], count)
            else:
                whole[(inst, key)] = (seconds, count)
        rows = []
        for where in set(totals) | set(whole):
            if where in totals:
                seconds, count, known = math.fsum(totals[where]), counts[where], len(totals[where])
            else:
                (seconds, count), known = whole[where], 0
            rows.append(TimingRow(where[0], where[1], seconds, count, known))
        rows.sort(key=lambda r: (-r.seconds, r.instance, r.key))
        return rows[: max(0, limit)]

    # -----------------------------------------------------------------------------------------
    # writing

    def record(
        self,
        run: RunResult,
        *,
        runner_of: Mapping[str, str],
        executor: str,
        run_id: str | None = None,
    ) -> None:
        """Add a finished run's durations.

        Per test result a sample for its test id (tests that ended in an error are skipped: an
        error says nothing about how long the test takes); per whole item (a file or package a
        slice ran entirely) its total; per slice the start-up cost, the slice's seconds minus its
        tests' seconds, and how many tests it ran. Slices that ended with an infrastructure
        error are skipped altogether, so a killed or timed-out slice cannot poison the history.

        :param run: the merged result.
        :param runner_of: the runner plugin per toolchain instance.
        :param executor: the executor the run used.
        :param run_id: identifies the run's samples (merges deduplicate on it); random if None.
        """
        recorder = run_samples(
            run,
            runner_of=runner_of,
            executor=executor,
            run_id=run_id or uuid.uuid4().hex,
            recorded=time.time(),
        )
        if not any(recorder.groups.values()):
            return

        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                merge_run(conn, recorder.run_id, recorder.recorded, recorder.groups, self.keep)

        self._guarded(write)

    def _write(self, rows: Sequence[Sample]) -> None:
        """Insert samples (the smaller of duplicates wins), keep the last ``keep``, re-estimate."""
        if not rows:
            return

        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                merge_samples(conn, rows, self.keep)

        self._guarded(write)

    # -----------------------------------------------------------------------------------------
    # CI artifacts

    def export_json(self) -> dict[str, Any]:
        """Every kept sample as JSON, for ``dagpar timings export`` and CI artifacts."""
        rows = self._guarded(export_samples)
        return export_document(rows, self.keep)

    def merge_json(self, data: Mapping[str, Any]) -> None:
        """Merge an :meth:`export_json` document into this store.

        Samples are identified by ``(instance, kind, key, run_id, ordinal)``, so merging is
        idempotent, and keeping the last ``keep`` by a total order makes it commutative: stores
        that merged the same exports in any order hold the same samples.

        :param data: the exported document.
        :raises TimingsFormatError: when *data* is not a dagpar timings export.
        """
        self._write(export_rows(data))

    def import_junit(self, path: Path, instance: str) -> int:
        """Import durations from a JUnit XML file written by any tool.

        pytest (with or without the ``file`` attribute), jest-junit, gotestsum, Maven Surefire
        and their kin are understood: each ``testcase`` becomes a test id the way dagpar's own
        runners name tests. Importing the same file twice adds nothing.

        :param path: the XML file.
        :param instance: the toolchain instance the tests belong to.
        :returns: how many test samples the file held.
        :raises TimingsFormatError: when the file is not JUnit XML.
        """
        workspace = self.path.parent.parent
        names = self._guarded(
            lambda conn: [
                key
                for (key,) in conn.execute(
                    "SELECT key FROM history WHERE instance = ? AND kind = ?",
                    (instance, TEST),
                )
            ]
        )
        try:
            cases = read_junit(path, workspace, known_test_ids=names)
        except ValueError as exc:
            raise TimingsFormatError(str(exc)) from None
        self._write(junit_samples(cases, instance))
        return sum(1 for c in cases if c.status is not Status.ERROR)


# ---------------------------------------------------------------------------------------------
# SQLite helpers


def _migrate_per_sample(conn: sqlite3.Connection, keep: int) -> None:
    """Move the first layout's samples into the current one, a batch of keys at a time (a
    large store's samples are never all in memory), and drop the first layout's tables."""
    rows = conn.execute(
        "SELECT instance, kind, key, run_id, ordinal, seconds, recorded FROM samples"
        " ORDER BY instance, kind, key"
    )
    batch: list[Sample] = []
    for row in rows:
        # Batches end between keys: each key's samples are merged together.
        if len(batch) >= _MIGRATE_BATCH and row[:3] != batch[-1][:3]:
            merge_samples(conn, batch, keep)
            batch = []
        batch.append(row)
    merge_samples(conn, batch, keep)
    for table in ("samples", "estimates"):
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """Whether *exc* says the file is damaged or not a database (not: busy, locked, full)."""
    if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc):
        return False
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return True
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


def _retry_locked(action: Callable[[], _T], attempts: int = 50) -> _T:
    """Run *action*, retrying while another process holds a lock the busy timeout skips."""
    for attempt in range(attempts):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection.

    IMMEDIATE takes the write lock up front, so two runs queue on the busy timeout instead of
    failing with a deadlock when both upgrade from reading to writing.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        _retry_locked(lambda: self._conn.execute("BEGIN IMMEDIATE"))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._conn.execute("COMMIT")
        else:
            self._conn.execute("ROLLBACK")
