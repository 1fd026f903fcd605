"""Stage 4's input: the tests of a split call's items, as the runner lists them.

:class:`Lister` asks a runner plugin for every test of a source tree once per run, and keeps
the listing between runs in the :mod:`listing cache <dagpar_cli.listing_cache>` while the source
tree, the runner spec and dagpar are unchanged. A cached listing can still be stale (a test
added in a file whose mtime a checkout kept); :class:`ListingCheck` compares what each slice
reported with what the listing promised and, when they disagree, repairs the run so it reports
what a fresh listing would have.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dagpar_cli.errors import DagparError, ExecutionError
from dagpar_cli.listing_cache import ListingCache, ListingKey, TreeSnapshot, cache_disabled
from dagpar_cli.model import (
    Item,
    Plan,
    SlicePlan,
    SliceResult,
    TestCase,
    TestResult,
    join_path,
)
from dagpar_cli.pluginmanager import plugin_distributions
from dagpar_cli.runner_api import RunnerSpec

if TYPE_CHECKING:
    from dagpar_cli.discovery import Toolchain
    from dagpar_cli.filtering import Filter
    from dagpar_cli.run_context import RunContext
    from dagpar_cli.runner_api import Runner, RunnerHost
    from dagpar_cli.sdk.directory import Directory

#: The error of a check whose listing an interrupt (or ``--failfast``) stopped.
_INTERRUPTED = "interrupted while listing tests"

__all__ = ["Lister", "ListingCheck", "listed"]

#: Runs one extra slice of a split call: ``(slice, total, narrowed) -> (result, value)``.
RunExtra = Callable[[SlicePlan, int, bool], tuple[SliceResult, object]]


class Lister:
    """Every runner listing of one run, from the runner or the listing cache.

    :param session: the run's session.
    :param executor: the executor's name (part of a runner spec).
    :param host_for: a :class:`~dagpar_cli.runner_api.RunnerHost` that runs a listing's commands
        where the slices will run.
    :param cancelled: whether the run was cancelled (then slices tell nothing of the listing).
    """

    def __init__(
        self,
        session: RunContext,
        executor: str,
        host_for: Callable[[Toolchain, RunnerSpec], RunnerHost],
        cancelled: Callable[[], bool],
    ) -> None:
        self.session = session
        self.executor = executor
        self._host_for = host_for
        self._cancelled = cancelled
        self._cache = ListingCache(session.config.workspace)
        self._lock = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._listed: dict[tuple[str, str], list[TestCase]] = {}
        #: The listing cache's key of every listing this run used (None: the cache is off).
        self._keys: dict[tuple[str, str], ListingKey | None] = {}
        #: The listings that came from the cache rather than from the runner.
        self._from_cache: set[tuple[str, str]] = set()
        #: Fresh listings taken because a cached one proved stale (at most one per key).
        self._relisted: dict[tuple[str, str], list[TestCase]] = {}
        #: Per listing, its spec and the files its key covered: what the end of a split call
        #: compares the tree with to learn what the run wrote.
        self._before: dict[tuple[str, str], tuple[RunnerSpec, TreeSnapshot]] = {}

    def spec(self, toolchain: Toolchain, runner: str, directory: Directory) -> RunnerSpec:
        """The :class:`RunnerSpec` for *runner* on *directory* under *toolchain*'s config."""
        config = toolchain.config
        return RunnerSpec(
            name=runner,
            workspace=self.session.config.workspace,
            source=directory.rel if directory.rel is not None else "",
            command=config.runner,
            args=config.args,
            executor=self.executor,
        )

    def tests(self, toolchain: Toolchain, runner: str, directory: Directory) -> list[TestCase]:
        """Every test of *directory* as the runner lists it (source-relative), once per run."""
        key = _listing(toolchain, runner, directory)
        with self._lock_of(key):
            if key not in self._listed:
                spec = self.spec(toolchain, runner, directory)
                snapshot = TreeSnapshot()
                cache_key = self._key(toolchain, spec, snapshot)
                if cache_key is not None:
                    self._before[key] = (spec, snapshot)
                listed = self._cache.load(cache_key) if cache_key else None
                if listed is not None:
                    self._from_cache.add(key)
                else:
                    # The key is taken before listing: a file edited while the runner lists
                    # makes the stored entry miss next time instead of hiding the edit.
                    listed = self._list(toolchain, spec)
                    if cache_key is not None:
                        self._cache.store(cache_key, listed)
                self._keys[key] = cache_key
                self._listed[key] = listed
            return self._listed[key]

    def tests_of_items(
        self,
        toolchain: Toolchain,
        runner: str,
        directory: Directory,
        items: Sequence[Item],
        prefix: str,
    ) -> dict[str, list[TestCase]]:
        """Map each item's key to its tests (workspace-relative), from the runner's listing."""
        by_path: dict[str, list[TestCase]] = {}
        moved: dict[str, str] = {}  # each path joined under the prefix once, not per test
        for test in self.tests(toolchain, runner, directory):
            path = test.path
            under = moved.get(path)
            if under is None:
                under = moved[path] = join_path(prefix, path)
            tests = by_path.get(path)
            if tests is None:
                tests = by_path[path] = []
            tests.append(test if under == path else dataclasses.replace(test, path=under))
        # Per listed path, its tests by name, built when a finer item first asks: a file cut into
        # one item per test would otherwise be scanned once per item.
        by_name: dict[str, dict[str, list[TestCase]]] = {}
        tests_of: dict[str, list[TestCase]] = {}
        for item in items:
            source_path = item.selector[0]
            norm = os.path.normpath(source_path).replace(os.sep, "/")
            where = norm if norm in by_path else source_path
            in_path = by_path.get(where, [])
            if item.name is None:
                tests_of[item.key] = list(in_path)
            else:
                named = by_name.get(where)
                if named is None:
                    named = by_name[where] = {}
                    for test in in_path:
                        named.setdefault(test.name, []).append(test)
                exact = list(named.get(item.name, ()))
                # A finer selector the listing does not know (a Go subtest) stands for itself.
                tests_of[item.key] = exact or [TestCase(item.path, item.name)]
        return tests_of

    def check(
        self,
        toolchain: Toolchain,
        runner: str,
        directory: Directory,
        *,
        prefix: str,
        nested: bool,
        subtests: bool,
    ) -> ListingCheck:
        """A check of one split call's slices against the listing they were planned from."""
        return ListingCheck(
            lister=self,
            toolchain=toolchain,
            runner=runner,
            directory=directory,
            prefix=prefix,
            nested=nested,
            subtests=subtests,
        )

    def _lock_of(self, key: tuple[str, str]) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def _list(self, toolchain: Toolchain, spec: RunnerSpec) -> list[TestCase]:
        """Ask the runner plugin for the listing (no cache)."""
        host = self._host_for(toolchain, spec)
        try:
            listed = list(self._runner(toolchain, spec).collect(spec, host))
        except ExecutionError:
            if self._cancelled():
                raise ExecutionError(_INTERRUPTED) from None
            raise
        if self._cancelled():
            # What a runner listed while it was being stopped is no listing (nor worth caching).
            raise ExecutionError(_INTERRUPTED)
        return listed

    def _runner(self, toolchain: Toolchain, spec: RunnerSpec) -> Runner:
        """The registered runner of *spec*, or an error naming the toolchain that asked."""
        try:
            return self.session.runners.get(spec.name)
        except ExecutionError as exc:
            raise ExecutionError(f"toolchain {toolchain.config.instance!r}: {exc}") from None

    def learn_outputs(self) -> None:
        """Remember what the run wrote into each source tree it listed since its key was taken.

        Called once, when every call of the run has ended (reruns and repaired listings
        included); the listing cache leaves those files out of later keys, so that tests
        writing coverage, snapshots or logs into the tree do not make every run list again.
        One walk of each tree per run, off the path of any split call.
        """
        for key in list(self._before):
            with self._lock_of(key):
                spec, snapshot = self._before[key]
                listed = self._listed.get(key)
                if listed is None:
                    continue
                after = self._cache.snapshot(spec, self._reports())
                prefix = f"{spec.source}/" if spec.source else ""
                read = {f"{prefix}{t.path}" for t in listed}
                self._cache.learn(snapshot, after, read)

    def _reports(self) -> list[Path]:
        """The run's own reports: they land in the workspace as often as not; they are no tests."""
        options = self.session.options
        return [p for p in (options.junit_xml, options.report_html) if p is not None]

    def _key(
        self, toolchain: Toolchain, spec: RunnerSpec, snapshot: TreeSnapshot | None = None
    ) -> ListingKey | None:
        """The listing cache's key for *spec*, or None when the cache is off."""
        if cache_disabled():
            return None
        session = self.session
        plugins = plugin_distributions(session.pm)
        reports = self._reports()
        installed = None
        if spec.executor == "local":
            # Inside a container the image holds what is installed, and it is in the key.
            installed = self._runner(toolchain, spec).installed(spec)
        return self._cache.key(
            spec,
            image=toolchain.config.image,
            plugins=plugins,
            ignore=reports,
            installed=installed,
            snapshot=snapshot,
            toolchain_env=toolchain.config.env,
        )

    def _drop(self, key: tuple[str, str]) -> None:
        """Forget the cache entry a listing came from (it proved stale)."""
        cache_key = self._keys.get(key)
        if cache_key is not None:
            self._cache.drop(cache_key)

    def _relist(
        self, toolchain: Toolchain, runner: str, directory: Directory
    ) -> list[TestCase] | None:
        """A fresh listing, once per run and source, after a cached one proved stale."""
        key = _listing(toolchain, runner, directory)
        with self._lock_of(key):
            if key not in self._relisted:
                spec = self.spec(toolchain, runner, directory)
                try:
                    self._relisted[key] = self._list(toolchain, spec)
                except DagparError:
                    return None  # cannot tell: the unreported tests stay errors
            return self._relisted[key]


@dataclass(slots=True, kw_only=True)
class ListingCheck:
    """What one split call's slices reported, against the listing it was planned from."""

    lister: Lister
    toolchain: Toolchain
    runner: str
    directory: Directory
    #: The receiver's directory, workspace-relative.
    prefix: str
    nested: bool
    subtests: bool
    #: Per slice index, the listed tests its runner did not report (filled in as errors).
    unreported: dict[int, frozenset[str]] = field(default_factory=dict)
    #: The indexes of the slices whose report disagreed with the listing.
    disagreed: set[int] = field(default_factory=set)

    @property
    def _key(self) -> tuple[str, str]:
        return _listing(self.toolchain, self.runner, self.directory)

    def note(self, sp: SlicePlan, reported: Sequence[TestResult]) -> None:
        """Compare what a slice reported with what the listing promised (a worker thread).

        A test reported but not listed, or listed but not reported, means the listing no longer
        matches the source tree: the cache entry it came from is dropped, so that the next run
        lists afresh, and :meth:`heal` has work to do.
        """
        if self.lister._cancelled():
            return  # tests left out by --failfast or an interrupt say nothing about the listing
        expected = {t.id for t in sp.tests}
        seen = {r.id for r in reported}
        unreported = frozenset(expected - seen)
        self.unreported[sp.index] = unreported
        if not unreported and all(listed(r, expected, self.subtests) for r in reported):
            return
        self.disagreed.add(sp.index)
        self.lister._drop(self._key)

    def heal(
        self,
        items: Sequence[Item],
        plan: Plan,
        slice_results: list[SliceResult],
        flt: Filter | None,
        run_extra: RunExtra,
    ) -> tuple[list[SliceResult], Plan]:
        """Make a run whose cached listing proved stale report what a fresh listing would.

        Only a listing that came from the cache is repaired (a fresh one that disagrees with
        the runner is reported as it always was). The runner is asked for a fresh listing, and:

        - listed tests that no longer exist are dropped: not errors, not results; a slice whose
          error came from selecting them (the runner refuses an unknown test) is cleared;
        - tests of the call's items that exist but that no slice reported (a test added where
          the planner had cut the file into single tests, say) run in one more slice;
        - tests reported but not listed were run and reported once already: they stay.

        :returns: the slice results to merge (with the extra slice, if any) and the plan that
            includes it (so ``--retries`` can rerun its failures too).
        """
        lister = self.lister
        if not self.disagreed or lister._cancelled() or self._key not in lister._from_cache:
            return slice_results, plan
        fresh = lister._relist(self.toolchain, self.runner, self.directory)
        if fresh is None:
            return slice_results, plan
        subtests = self.subtests
        # Workspace-relative ids, with the source-relative path a selector needs.
        source_path: dict[str, str] = {}
        by_path: dict[str, list[TestCase]] = {}
        # A name selects every test of its file with that name (Jest's same-named tests).
        by_name: dict[tuple[str, str], list[TestCase]] = {}
        for test in fresh:
            moved = test.under(self.prefix)
            source_path.setdefault(moved.id, test.path)
            by_path.setdefault(moved.path, []).append(moved)
            by_name.setdefault((moved.path, moved.name), []).append(moved)
        should: dict[str, TestCase] = {}
        for item in items:
            if item.name is None:
                should.update((t.id, t) for t in by_path.get(item.path, ()))
                continue
            same = by_name.get((item.path, item.name))
            if same:
                should.update((t.id, t) for t in same)
                continue
            named = TestCase(item.path, item.name)
            parent = TestCase(item.path, item.name.split("/", 1)[0])
            if subtests and parent.id in source_path:
                should[named.id] = named
                source_path.setdefault(named.id, item.selector[0])
        if flt is not None and not flt.is_empty:
            selected, _ = flt.select_tests(
                self.toolchain.config.instance, list(should.values()), subtests=subtests
            )
            should = {t.id: t for t in selected}
        ran: set[str] = set()
        for result in slice_results:
            unreported = self.unreported.get(result.index, frozenset())
            for r in result.results:
                if r.id not in unreported:
                    ran.add(r.id)
                    if subtests:
                        ran.add(f"{r.path}::{r.name.split('/', 1)[0]}")
        missing = [t for t in should.values() if t.id not in ran]
        covered = {t.id for t in missing}
        healed: list[SliceResult] = []
        for result in slice_results:
            unreported = self.unreported.get(result.index, frozenset())
            gone = {i for i in unreported if i not in source_path}
            drop = gone | (unreported & covered)
            if not drop:
                healed.append(result)
                continue
            kept = tuple(r for r in result.results if r.id not in drop)
            # A runner asked for a test that no longer exists refuses the whole selection; when
            # everything it left unreported is gone or runs again, that error was the listing's.
            explained = bool(gone) and drop == unreported and not any(r.status.is_bad for r in kept)
            healed.append(
                dataclasses.replace(
                    result,
                    results=kept,
                    error="" if explained else result.error,
                    infrastructure_error=False if explained else result.infrastructure_error,
                )
            )
        if not missing:
            return healed, plan
        index = max((s.index for s in plan.slices), default=0) + 1
        if self.nested:
            extra_items = tuple(
                dict.fromkeys(Item((source_path[t.id], t.name), t.path) for t in missing)
            )
        else:
            by_ws = {t.path: source_path[t.id] for t in missing}
            extra_items = tuple(Item((source,), path) for path, source in by_ws.items())
        extra = SlicePlan(
            index=index, items=extra_items, predicted_seconds=0.0, tests=tuple(missing)
        )
        result, _ = run_extra(extra, index, True)
        healed.append(result)
        return healed, dataclasses.replace(plan, slices=(*plan.slices, extra))


def listed(result: TestResult, expected: set[str], subtests: bool) -> bool:
    """Whether the reported *result* is one of the *expected* test ids (or a subtest of one).

    :param subtests: whether the runner reports subtests (``TestX/sub``) that its listing, of
        top-level tests, cannot know (Go).
    """
    if result.id in expected:
        return True
    if subtests and "/" in result.name:
        return f"{result.path}::{result.name.split('/', 1)[0]}" in expected
    return False


def _listing(toolchain: Toolchain, runner: str, directory: Directory) -> tuple[str, str]:
    """Which listing of the run a split call uses: one per runner and source tree, and under a
    ``matrix:`` one per combination of the values that can change what the runner lists."""
    config = toolchain.config
    where = str(directory.host_path)
    if not config.matrix:
        return (runner, where)
    under = (config.image, config.runner, config.args, sorted(config.env.items()))
    return (runner, f"{where}\0{under!r}")
