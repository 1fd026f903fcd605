"""The timing store: how long every test and item took, learned run after run.

History lives in SQLite at ``<workspace>/.dagpar/timings.sqlite`` (WAL mode, so two dagpar runs in
one workspace can read and write at once). For every ``(instance, key)`` the store keeps the last
:data:`KEEP` samples, where a key is a test id (``path::name``) or an item path; the estimate is
their median, so one slow run moves nothing. Unknown tests are estimated from their siblings: the
same file's other tests, then the same directory (and its parents), then the whole instance.
Per ``(runner, executor)`` it also keeps the measured start-up cost of one slice.

A corrupt database is renamed aside with a :class:`TimingStoreWarning` and rebuilt: timings are
an optimisation, never a reason for a run to fail.

The store is a plugin too: its ``dagpar_report`` records every finished run that was not a dry run.
"""

from __future__ import annotations

import math
import os
import posixpath
import sqlite3
import threading
import time
import uuid
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from dagpar_cli.errors import UsageError
from dagpar_cli.model import Item, RunResult, Status, TestCase, TestResult
from dagpar_cli.plugin import hookimpl

if TYPE_CHECKING:
    from dagpar_cli.session import Session

__all__ = [
    "KEEP",
    "Prediction",
    "TimingRow",
    "TimingStore",
    "TimingStoreWarning",
    "TimingsFormatError",
    "dagpar_report",
    "state_dir",
]

#: The workspace directory dagpar keeps its state in.
STATE_DIR = ".dagpar"
#: The database's file name inside :data:`STATE_DIR`.
DB_NAME = "timings.sqlite"
#: Samples kept per ``(instance, key)``.
KEEP = 10
#: The schema this code reads and writes; an older file is rebuilt.
SCHEMA_VERSION = 1
#: The ``export_json`` format marker.
EXPORT_FORMAT = "dagpar-timings"
#: Seconds a writer waits for another dagpar run's transaction before giving up.
BUSY_SECONDS = 30.0
#: Estimates when nothing at all is known about an instance's tests or items.
DEFAULT_TEST_SECONDS = 0.1
DEFAULT_ITEM_SECONDS = 1.0

# Sample kinds: per test id, per whole item (file or package), per slice start-up.
TEST = "test"
ITEM = "item"
STARTUP = "startup"

_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by dagpar.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    instance TEXT NOT NULL,   -- toolchain instance (the runner, for start-up samples)
    kind TEXT NOT NULL,       -- test | item | startup
    key TEXT NOT NULL,        -- test id or item path (the executor, for start-up samples)
    run_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL, -- tells apart samples of one key in one run
    seconds REAL NOT NULL,
    recorded REAL NOT NULL,   -- wall-clock time: the last KEEP by this survive
    UNIQUE (instance, kind, key, run_id, ordinal)
);
CREATE TABLE IF NOT EXISTS estimates (
    instance TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    seconds REAL NOT NULL,    -- median of the kept samples
    spread REAL NOT NULL,     -- robust relative deviation of the kept samples
    count INTEGER NOT NULL,
    PRIMARY KEY (instance, kind, key)
) WITHOUT ROWID;
"""

_T = TypeVar("_T")


class TimingsFormatError(UsageError, ValueError):
    """A timings export or JUnit file that cannot be imported; a :class:`ValueError` too."""


class TimingStoreWarning(UserWarning):
    """The timing store had to be set aside or could not be updated; the run goes on."""


def state_dir(workspace: Path) -> Path:
    """``<workspace>/.dagpar``, created with a ``.gitignore`` and a ``CACHEDIR.TAG``.

    :param workspace: the workspace root.
    """
    path = workspace / STATE_DIR
    path.mkdir(parents=True, exist_ok=True)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Created by dagpar.\n*\n", encoding="utf-8")
    tag = path / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text(_CACHEDIR_TAG, encoding="utf-8")
    return path


def robust_estimate(samples: Sequence[float]) -> tuple[float, float]:
    """The median of *samples* and their relative spread (scaled median absolute deviation).

    :returns: ``(median, spread)``; spread is 0 for fewer than three samples.
    """
    ordered = sorted(samples)
    median = _median(ordered)
    if len(ordered) < 3 or median <= 0:
        return median, 0.0
    mad = _median(sorted(abs(s - median) for s in ordered))
    # 1.4826 * MAD estimates a standard deviation without letting an outlier in.
    return median, 1.4826 * mad / median


@dataclass(frozen=True, slots=True)
class Prediction:
    """Everything :meth:`TimingStore.predict_detailed` knows about one split call's items."""

    #: Predicted seconds per ``Item.key``, for every item.
    seconds: dict[str, float]
    #: Keys whose prediction is an estimate from siblings rather than from their own history.
    estimated: frozenset[str]
    #: Whether the instance had any history at all.
    has_history: bool
    #: Typical relative run-to-run deviation of the instance's measured tests (None: unknown).
    spread: float | None


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
            if version is not None and version != SCHEMA_VERSION:
                # A store written by another dagpar version: start over rather than misread it.
                for table in ("samples", "estimates", "meta"):
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
            # executescript() would commit the open transaction; run the statements one by one.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )

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

    def _estimates(self, conn: sqlite3.Connection, instance: str) -> dict[str, dict[str, Any]]:
        """``{kind: {key: (seconds, spread, count)}}`` of one instance."""
        found: dict[str, dict[str, Any]] = {TEST: {}, ITEM: {}}
        rows = conn.execute(
            "SELECT kind, key, seconds, spread, count FROM estimates WHERE instance = ?",
            (instance,),
        )
        for kind, key, seconds, spread, count in rows:
            found.setdefault(kind, {})[key] = (seconds, spread, count)
        return found

    def predict_detailed(
        self,
        instance: str,
        items: Sequence[Item],
        tests: Mapping[str, Sequence[TestCase]],
    ) -> Prediction:
        """Predicted seconds for every item, which of them are estimates, and the spread.

        An item ``[file]`` is the sum of its tests' estimates when its tests are listed and at
        least one of them is known; otherwise the file's recorded total; otherwise an estimate
        from sibling items. A finer item ``[file, test]`` is its test's estimate.

        :param instance: the toolchain instance.
        :param items: the items of one split call.
        :param tests: the tests each item selects, per ``Item.key``.
        """
        estimates = self._guarded(lambda conn: self._estimates(conn, instance))
        known_tests = {k: v[0] for k, v in estimates[TEST].items()}
        known_items = {k: v[0] for k, v in estimates[ITEM].items()}
        has_history = bool(known_tests or known_items)
        test_guess = _SiblingEstimator(known_tests, DEFAULT_TEST_SECONDS, by_test_id=True)
        item_guess = _SiblingEstimator(known_items, DEFAULT_ITEM_SECONDS, by_test_id=False)
        seconds: dict[str, float] = {}
        estimated: set[str] = set()
        for item in items:
            key = item.key
            if item.name is not None:
                value = known_tests.get(key)
                if value is None:
                    value = test_guess.estimate(key)
                    estimated.add(key)
                seconds[key] = value
                continue
            listed = _outermost(tests.get(key, ()))
            own = [known_tests[t.id] for t in listed if t.id in known_tests]
            if own:
                missing = [t for t in listed if t.id not in known_tests]
                seconds[key] = math.fsum(own) + math.fsum(
                    test_guess.estimate(t.id) for t in missing
                )
                if missing and len(missing) * 2 >= len(listed):
                    estimated.add(key)
            elif key in known_items:
                seconds[key] = known_items[key]
            elif listed and known_tests:
                seconds[key] = math.fsum(test_guess.estimate(t.id) for t in listed)
                estimated.add(key)
            else:
                seconds[key] = item_guess.estimate(key)
                estimated.add(key)
        spreads = sorted(v[1] for v in estimates[TEST].values() if v[2] >= 3)
        spread = _median(spreads) if spreads else None
        return Prediction(seconds, frozenset(estimated), has_history, spread)

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
        known = {k: v[0] for k, v in estimates[TEST].items()}
        guess = _SiblingEstimator(known, DEFAULT_TEST_SECONDS, by_test_id=True)
        return {t.id: known[t.id] if t.id in known else guess.estimate(t.id) for t in tests}

    def startup_seconds(self, runner: str, executor: str) -> float | None:
        """The measured start-up seconds of one slice of *runner* on *executor*, if known.

        :param runner: the runner plugin's name (``pytest``, ``jest``, ``go``, ...).
        :param executor: the executor's name (``local``, ``docker``).
        """
        row = self._guarded(
            lambda conn: conn.execute(
                "SELECT seconds FROM estimates WHERE instance = ? AND kind = ? AND key = ?",
                (runner, STARTUP, executor),
            ).fetchone()
        )
        return float(row[0]) if row else None

    def show(self, instance: str | None = None, limit: int = 20) -> list[TimingRow]:
        """The slowest items, for ``dagpar timings show``.

        :param instance: only this toolchain instance (None: all of them).
        :param limit: at most this many rows.
        """

        def query(conn: sqlite3.Connection) -> list[tuple[str, str, str, float, int]]:
            sql = "SELECT instance, kind, key, seconds, count FROM estimates WHERE kind != ?"
            args: tuple[str, ...] = (STARTUP,)
            if instance is not None:
                sql += " AND instance = ?"
                args += (instance,)
            return list(conn.execute(sql, args))

        totals: dict[tuple[str, str], list[float]] = defaultdict(list)
        counts: dict[tuple[str, str], int] = defaultdict(int)
        whole: dict[tuple[str, str], tuple[float, int]] = {}
        for inst, kind, key, seconds, count in self._guarded(query):
            if kind == TEST:
                where = (inst, _split_test_id(key)[0])
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
        tests' seconds. Slices that ended with an infrastructure error are skipped altogether, so
        a killed or timed-out slice cannot poison the history.

        :param run: the merged result.
        :param runner_of: the runner plugin per toolchain instance.
        :param executor: the executor the run used.
        :param run_id: identifies the run's samples (merges deduplicate on it); random if None.
        """
        recorder = _Recorder(run_id or uuid.uuid4().hex, time.time())
        for check in run.checks:
            instance = check.name.split(":", 1)[0]
            runner = runner_of.get(instance, "custom")
            if check.slices:
                for sl in check.slices:
                    if sl.infrastructure_error:
                        continue
                    whole = {item.path for item in sl.items if item.name is None}
                    recorder.results(instance, sl.results, whole)
                    if sl.results:
                        spent = math.fsum(
                            r.seconds + math.fsum(a.seconds for a in r.attempts)
                            for r in _outermost(sl.results)
                        )
                        recorder.add(runner, STARTUP, executor, max(0.0, sl.seconds - spent))
            elif not check.infrastructure_error:
                recorder.results(instance, check.results, {r.path for r in check.results})
        self._write(recorder.rows)

    def _write(self, rows: Sequence[tuple[str, str, str, str, int, float, float]]) -> None:
        """Insert samples (the smaller of duplicates wins), keep the last ``keep``, re-estimate."""
        if not rows:
            return

        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.executemany(
                    "INSERT INTO samples (instance, kind, key, run_id, ordinal, seconds, recorded)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (instance, kind, key, run_id, ordinal) DO UPDATE SET"
                    " seconds = min(seconds, excluded.seconds),"
                    " recorded = min(recorded, excluded.recorded)",
                    rows,
                )
                conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS touched"
                    " (instance TEXT, kind TEXT, key TEXT, PRIMARY KEY (instance, kind, key))"
                )
                conn.execute("DELETE FROM temp.touched")
                conn.executemany(
                    "INSERT OR IGNORE INTO temp.touched VALUES (?, ?, ?)",
                    ((r[0], r[1], r[2]) for r in rows),
                )
                conn.execute(
                    "DELETE FROM samples WHERE rowid IN (SELECT id FROM ("
                    " SELECT s.rowid AS id, ROW_NUMBER() OVER ("
                    "  PARTITION BY s.instance, s.kind, s.key"
                    "  ORDER BY s.recorded DESC, s.run_id DESC, s.ordinal DESC) AS rank"
                    " FROM samples AS s JOIN temp.touched USING (instance, kind, key))"
                    " WHERE rank > ?)",
                    (self.keep,),
                )
                grouped: dict[tuple[str, str, str], list[float]] = defaultdict(list)
                for inst, kind, key, seconds in conn.execute(
                    "SELECT s.instance, s.kind, s.key, s.seconds"
                    " FROM samples AS s JOIN temp.touched USING (instance, kind, key)"
                ):
                    grouped[(inst, kind, key)].append(seconds)
                conn.executemany(
                    "INSERT OR REPLACE INTO estimates VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        (*where, *robust_estimate(values), len(values))
                        for where, values in grouped.items()
                    ),
                )
                conn.execute("DELETE FROM temp.touched")

        self._guarded(write)

    # -----------------------------------------------------------------------------------------
    # CI artifacts

    def export_json(self) -> dict[str, Any]:
        """Every kept sample as JSON, for ``dagpar timings export`` and CI artifacts."""
        rows = self._guarded(
            lambda conn: list(
                conn.execute(
                    "SELECT instance, kind, key, run_id, ordinal, seconds, recorded FROM samples"
                    " ORDER BY instance, kind, key, recorded, run_id, ordinal"
                )
            )
        )
        return {
            "format": EXPORT_FORMAT,
            "version": SCHEMA_VERSION,
            "keep": self.keep,
            "samples": [list(r) for r in rows],
        }

    def merge_json(self, data: Mapping[str, Any]) -> None:
        """Merge an :meth:`export_json` document into this store.

        Samples are identified by ``(instance, kind, key, run_id, ordinal)``, so merging is
        idempotent, and keeping the last ``keep`` by a total order makes it commutative: stores
        that merged the same exports in any order hold the same samples.

        :param data: the exported document.
        :raises TimingsFormatError: when *data* is not a dagpar timings export.
        """
        if data.get("format") != EXPORT_FORMAT or data.get("version") != SCHEMA_VERSION:
            raise TimingsFormatError(
                f"not a dagpar timings export (format {data.get('format')!r}, "
                f"version {data.get('version')!r}; expected {EXPORT_FORMAT!r} {SCHEMA_VERSION})"
            )
        samples = data.get("samples", [])
        if not isinstance(samples, list):
            raise TimingsFormatError("not a dagpar timings export (samples is not a list)")
        self._write([_sample_row(sample) for sample in samples])

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
        from dagpar_cli.junit_import import read_junit

        workspace = self.path.parent.parent
        names = self._guarded(
            lambda conn: [
                key
                for (key,) in conn.execute(
                    "SELECT key FROM estimates WHERE instance = ? AND kind = ?",
                    (instance, TEST),
                )
            ]
        )
        try:
            cases = read_junit(path, workspace, known_test_ids=names)
        except ValueError as exc:
            raise TimingsFormatError(str(exc)) from None
        recorder = _Recorder(f"junit:{cases.digest}", cases.recorded)
        results = [
            TestResult(path=c.path, name=c.name, status=c.status, seconds=c.seconds) for c in cases
        ]
        recorder.results(instance, results, {r.path for r in results})
        self._write(recorder.rows)
        return sum(1 for c in cases if c.status is not Status.ERROR)


# ---------------------------------------------------------------------------------------------
# helpers


def _sample_row(sample: object) -> tuple[str, str, str, str, int, float, float]:
    """One exported sample as a database row; an export from elsewhere may hold anything."""
    if not isinstance(sample, list) or len(sample) != 7:
        raise TimingsFormatError(f"malformed sample in timings export: {sample!r:.80}")
    instance, kind, key, run_id, ordinal, seconds, recorded = sample
    if kind not in (TEST, ITEM, STARTUP):
        raise TimingsFormatError(f"unknown sample kind {kind!r:.40} in timings export")
    duration, moment = _finite(seconds), _finite(recorded)
    if (
        isinstance(instance, str)
        and isinstance(kind, str)
        and isinstance(key, str)
        and isinstance(run_id, str)
        and all(_encodable(text) for text in (instance, key, run_id))
        and isinstance(ordinal, int)
        and not isinstance(ordinal, bool)
        and 0 <= ordinal < 2**63  # SQLite's INTEGER
        and duration is not None
        and duration >= 0
        and moment is not None
    ):
        return (instance, kind, key, run_id, ordinal, duration, moment)
    raise TimingsFormatError(f"malformed sample in timings export: {sample!r:.80}")


def _finite(value: object) -> float | None:
    """*value* as a finite float; None for anything else (NaN is stored as NULL by SQLite)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _encodable(text: str) -> bool:
    # A lone surrogate (JSON "\ud800") cannot be stored as SQLite text.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Recorder:
    """Collects sample rows of one run, numbering repeated keys."""

    def __init__(self, run_id: str, recorded: float) -> None:
        self.run_id = run_id
        self.recorded = recorded
        self.rows: list[tuple[str, str, str, str, int, float, float]] = []
        self._seen: dict[tuple[str, str, str], int] = defaultdict(int)

    def add(self, instance: str, kind: str, key: str, seconds: float) -> None:
        if not math.isfinite(seconds):
            seconds = 0.0  # a sum that overflowed; NaN would be stored as NULL
        where = (instance, kind, key)
        ordinal = self._seen[where]
        self._seen[where] += 1
        self.rows.append(
            (instance, kind, key, self.run_id, ordinal, max(0.0, seconds), self.recorded)
        )

    def results(self, instance: str, results: Iterable[TestResult], whole: set[str]) -> None:
        """Samples for tests, and totals for the paths in *whole* that reported no error."""
        totals: dict[str, float] = defaultdict(float)
        broken: set[str] = set()
        results = list(results)
        outer = {id(r) for r in _outermost(results)}
        for r in results:
            if r.status is Status.ERROR:
                broken.add(r.path)
                continue
            self.add(instance, TEST, r.id, r.seconds)
            if id(r) in outer:
                totals[r.path] += r.seconds
        for path in sorted(set(totals) & whole - broken):
            self.add(instance, ITEM, path, totals[path])


class _SiblingEstimator:
    """Estimates unknown keys from the medians of known neighbours: file, directories, all."""

    def __init__(self, known: Mapping[str, float], default: float, *, by_test_id: bool) -> None:
        self._by_test_id = by_test_id
        self._default = default
        groups: dict[str, list[float]] = defaultdict(list)
        every: list[float] = []
        for key, seconds in known.items():
            path = _split_test_id(key)[0] if by_test_id else key
            if by_test_id:
                groups["f:" + path].append(seconds)
            for directory in _ancestors(path):
                groups["d:" + directory].append(seconds)
            every.append(seconds)
        self._groups = groups
        self._all = _median(sorted(every)) if every else None
        self._cache: dict[str, float] = {}

    def _median_of(self, group: str) -> float | None:
        if group not in self._cache:
            values = self._groups.get(group)
            if not values:
                return None
            self._cache[group] = _median(sorted(values))
        return self._cache[group]

    def estimate(self, key: str) -> float:
        """The best sibling-based guess for *key* (a test id or an item path)."""
        path = _split_test_id(key)[0] if self._by_test_id else key
        if self._by_test_id:
            same_file = self._median_of("f:" + path)
            if same_file is not None:
                return same_file
        for directory in _ancestors(path):
            near = self._median_of("d:" + directory)
            if near is not None:
                return near
        return self._all if self._all is not None else self._default


_Named = TypeVar("_Named", TestCase, TestResult)


def _outermost(tests: Iterable[_Named]) -> list[_Named]:
    """*tests* without the subtests of listed tests (Go's ``TestA/sub`` when ``TestA`` is there).

    A parent test's time already includes its subtests', so sums must count it once.
    """
    tests = list(tests)
    names = {(t.path, t.name) for t in tests}
    return [t for t in tests if "/" not in t.name or not _has_parent(t.path, t.name, names)]


def _has_parent(path: str, name: str, names: set[tuple[str, str]]) -> bool:
    while "/" in name:
        name = name.rsplit("/", 1)[0]
        if (path, name) in names:
            return True
    return False


def _ancestors(path: str) -> Iterator[str]:
    """The directories containing *path*, nearest first, ending with ``""`` (the root)."""
    directory = posixpath.dirname(path)
    while directory:
        yield directory
        parent = posixpath.dirname(directory)
        if parent == directory:
            break
        directory = parent
    yield ""


def _split_test_id(test_id: str) -> tuple[str, str]:
    path, _, name = test_id.partition("::")
    return path, name


def _median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    if n == 0:
        return 0.0
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


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


# ---------------------------------------------------------------------------------------------
# the plugin


@hookimpl
def dagpar_report(run: RunResult, session: Session) -> None:
    """Record a finished run into the session's timing store (not for dry runs).

    :param run: the merged result.
    :param session: the run's session; ``stash["runner_of"]`` maps instances to runners.
    """
    store = session.timings
    if store is None or session.options.dry_run:
        return
    runner_of = session.stash.get("runner_of", {})
    if not isinstance(runner_of, Mapping):
        runner_of = {}
    try:
        if run.shard is not None:
            shard_export(run, session, runner_of)
            return
        store.record(
            run, runner_of=runner_of, executor=session.executor_name, run_id=session.run_id
        )
    except (sqlite3.Error, UnicodeError) as exc:
        # A store that cannot be written (read-only checkout, full disk) costs a warning only.
        warnings.warn(f"could not update the timing store: {exc}", TimingStoreWarning, stacklevel=2)


def shard_file(workspace: Path, shard: tuple[int, int]) -> Path:
    """Where a sharded run leaves its new samples: ``.dagpar/timings-shard-I-of-N.json``."""
    return state_dir(workspace) / f"timings-shard-{shard[0]}-of-{shard[1]}.json"


def shard_export(run: RunResult, session: Session, runner_of: Mapping[str, str]) -> Path:
    """Write a sharded run's samples to its own export file instead of the store.

    Every CI node must plan from the *same* store, so a node never changes the store it planned
    from (nodes that share a workspace, one after another, would otherwise plan differently);
    ``dagpar timings merge .dagpar/timings-shard-*.json`` folds the nodes' files in afterwards.

    :returns: the file written.
    """
    import json
    import tempfile

    assert run.shard is not None
    target = shard_file(session.config.workspace, run.shard)
    with (
        tempfile.TemporaryDirectory(prefix="dagpar-shard-") as scratch,
        TimingStore(Path(scratch) / DB_NAME) as scratch_store,
    ):
        scratch_store.record(
            run, runner_of=runner_of, executor=session.executor_name, run_id=session.run_id
        )
        data = scratch_store.export_json()
    if target.exists():
        # A retried job: keep what the earlier attempt recorded too (merging is idempotent).
        with (
            tempfile.TemporaryDirectory(prefix="dagpar-shard-") as scratch,
            TimingStore(Path(scratch) / DB_NAME) as both,
        ):
            try:
                both.merge_json(json.loads(target.read_text(encoding="utf-8")))
            except (ValueError, TypeError, OSError):
                pass  # an unreadable earlier file is replaced by this run's samples
            both.merge_json(data)
            data = both.export_json()
    target.write_text(json.dumps(data, sort_keys=True) + "\n", encoding="utf-8")
    return target
