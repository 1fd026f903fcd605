"""The listing stage on its own: a runner's tests once per run, the cache, stale-listing repair."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

import pluggy
import pytest

import dagpar_cli
from dagpar_cli import RunnerCommand, RunnerRegistry, Selection, hookspecs, model
from dagpar_cli.config import Config, RunOptions, ToolchainConfig
from dagpar_cli.errors import ExecutionError
from dagpar_cli.execution.api import Outcome
from dagpar_cli.filtering import Filter
from dagpar_cli.listing_cache import DISABLE_ENV
from dagpar_cli.model import (
    Item,
    Plan,
    RunnerSpec,
    SlicePlan,
    SliceResult,
    Status,
    TestCase,
    TestResult,
)
from dagpar_cli.run_context import RunContext
from dagpar_cli.runtime import listing as listing_module
from dagpar_cli.runtime.collect import fill_missing
from dagpar_cli.runtime.listing import Lister, ListingCheck
from dagpar_cli.sdk.directory import Directory
from dagpar_cli.testing import write_tree

if TYPE_CHECKING:
    from dagpar_cli.discovery import Toolchain
    from dagpar_cli.runner_api import RunnerHost

RUNNER = "fake"
CHECK = "api:test"
#: The toolchain's whole-file item, workspace-relative under ``api``.
WHOLE = Item(("tests/test_a.py",), "api/tests/test_a.py")


def source(name: str) -> TestCase:
    """A test as the runner lists it (relative to the toolchain's source, ``api``)."""
    return TestCase("tests/test_a.py", name)


def listed(name: str) -> TestCase:
    """The same test, workspace-relative."""
    return TestCase(WHOLE.path, name)


class Runner(dagpar_cli.Runner):
    """A runner whose listing is whatever :attr:`tests` holds when it is asked."""

    name = RUNNER

    def __init__(self, tests: Sequence[TestCase]) -> None:
        self.tests = list(tests)
        self.asked: list[tuple[RunnerSpec, object]] = []
        self.fail = False

    def collect(self, spec: RunnerSpec, host: RunnerHost) -> list[TestCase]:
        self.asked.append((spec, host))
        if self.fail:
            raise ExecutionError("the listing broke")
        return list(self.tests)

    def command(self, spec: RunnerSpec, selection: Selection) -> list[RunnerCommand]:
        raise AssertionError("the listing stage compiles no command")

    def parse(self, spec: RunnerSpec, report_dir: Path, outcome: Outcome) -> list[TestResult]:
        raise AssertionError("the listing stage parses no report")


class Host:
    """A RunnerHost the Lister hands the plugin; it never runs anything here."""

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        raise AssertionError("the fake runner runs no command")


class World:
    """A workspace with one toolchain (``api``), its session and a runner plugin."""

    def __init__(self, root: Path, runner: Runner) -> None:
        self.workspace = write_tree(
            root, {"api/tests/test_a.py": "def test_one(): pass\n", "api/conftest.py": ""}
        )
        self.runner = runner
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        runners = RunnerRegistry()
        runners.add(runner)
        config = Config(workspace=self.workspace, file=None, toolchains=())
        self.session = RunContext(config=config, options=RunOptions(), pm=pm, runners=runners)
        self.toolchain = cast(
            "Toolchain",
            SimpleNamespace(
                config=ToolchainConfig(
                    instance="api", use="pytest", source="api", args=("-q",), runner=("tool",)
                )
            ),
        )
        self.directory = Directory(self.workspace / "api", "api")
        self.cancelled = False
        self.hosts: list[tuple[object, RunnerSpec, Host]] = []

    def host_for(self, toolchain: Toolchain, spec: RunnerSpec) -> RunnerHost:
        host = Host()
        self.hosts.append((toolchain, spec, host))
        return host

    def lister(self) -> Lister:
        """A new run's Lister (the listing cache outlives it, in the workspace)."""
        return Lister(self.session, "local", self.host_for, lambda: self.cancelled)

    def check(self, lister: Lister, *, nested: bool = True, subtests: bool = False) -> ListingCheck:
        return lister.check(
            self.toolchain, RUNNER, self.directory, prefix="api", nested=nested, subtests=subtests
        )


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "ws", Runner([source("test_one"), source("test_two")]))


# ---------------------------------------------------------------------------------------------
# Lister
# ---------------------------------------------------------------------------------------------


def test_a_listing_is_asked_once_per_run_with_the_toolchains_spec_and_host(world: World) -> None:
    lister = world.lister()
    first = lister.tests(world.toolchain, RUNNER, world.directory)
    assert first == [source("test_one"), source("test_two")]
    assert lister.tests(world.toolchain, RUNNER, world.directory) == first
    ((spec, host),) = world.runner.asked
    assert spec == RunnerSpec(
        name=RUNNER,
        workspace=world.workspace,
        source="api",
        command=("tool",),
        args=("-q",),
        executor="local",
    )
    assert world.hosts == [(world.toolchain, spec, host)]


def test_the_next_run_takes_the_listing_from_the_cache_while_the_tree_is_unchanged(
    world: World,
) -> None:
    world.lister().tests(world.toolchain, RUNNER, world.directory)
    world.runner.tests = [source("test_other")]
    # The source tree did not change: the next run does not ask the runner.
    again = world.lister().tests(world.toolchain, RUNNER, world.directory)
    assert again == [source("test_one"), source("test_two")]
    assert len(world.runner.asked) == 1
    # A changed file does.
    (world.workspace / "api/tests/test_a.py").write_text("def test_other(): pass\n")
    assert world.lister().tests(world.toolchain, RUNNER, world.directory) == [source("test_other")]
    assert len(world.runner.asked) == 2


def test_the_cache_can_be_turned_off(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_ENV, "1")
    world.lister().tests(world.toolchain, RUNNER, world.directory)
    world.lister().tests(world.toolchain, RUNNER, world.directory)
    assert len(world.runner.asked) == 2
    assert not (world.workspace / ".dagpar").exists()


def test_a_runner_no_plugin_provides_is_an_error_naming_it(world: World) -> None:
    world.session.runners = RunnerRegistry()
    with pytest.raises(ExecutionError) as info:
        world.lister().tests(world.toolchain, RUNNER, world.directory)
    assert info.value.message == (
        "toolchain 'api': no runner plugin named 'fake' is installed (installed runners: none); "
        "install the plugin that provides it, or fix the toolchain's runner name"
    )


def test_items_get_their_tests_from_the_listing_workspace_relative(world: World) -> None:
    items = [
        WHOLE,
        Item(("./tests/test_a.py",), "api/tests/test_a.py"),
        Item(("tests/test_a.py", "test_two"), WHOLE.path),
        Item(("tests/test_a.py", "test_two/sub"), WHOLE.path),
        Item(("tests/test_b.py",), "api/tests/test_b.py"),
    ]
    tests_of = world.lister().tests_of_items(world.toolchain, RUNNER, world.directory, items, "api")
    assert tests_of == {
        WHOLE.key: [listed("test_one"), listed("test_two")],
        items[2].key: [listed("test_two")],
        # A finer selector the listing does not know stands for itself.
        items[3].key: [listed("test_two/sub")],
        "api/tests/test_b.py": [],
    }


class _CountedName(str):
    """A listed test's name that counts the comparisons made with it."""

    compared = 0

    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        _CountedName.compared += 1
        return str.__eq__(self, other)


def test_a_file_cut_into_one_item_per_test_is_not_scanned_per_item(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DISABLE_ENV, "1")
    count = 1500
    world.runner.tests = [source(_CountedName(f"test_{i}")) for i in range(count)]
    items = [Item(("tests/test_a.py", f"test_{i}"), WHOLE.path) for i in range(count)]
    _CountedName.compared = 0
    tests_of = world.lister().tests_of_items(world.toolchain, RUNNER, world.directory, items, "api")
    assert tests_of == {item.key: [listed(item.name or "")] for item in items}
    # Comparing every item's name with every listed name of its file: about count**2 / 2.
    assert _CountedName.compared <= 4 * count


def test_a_listed_path_is_moved_under_the_prefix_once_not_per_test(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DISABLE_ENV, "1")
    joined: list[str] = []
    join = model.join_path

    def counting(prefix: str, path: str) -> str:
        joined.append(path)
        return join(prefix, path)

    world.runner.tests = [source(f"test_{i}") for i in range(50)]
    lister = world.lister()
    lister.tests(world.toolchain, RUNNER, world.directory)  # the listing itself is not counted
    for module in (model, listing_module):
        monkeypatch.setattr(module, "join_path", counting, raising=False)
    tests_of = lister.tests_of_items(world.toolchain, RUNNER, world.directory, [WHOLE], "api")
    assert tests_of == {WHOLE.key: [listed(f"test_{i}") for i in range(50)]}
    assert joined == ["tests/test_a.py"]


# ---------------------------------------------------------------------------------------------
# ListingCheck: note and heal
# ---------------------------------------------------------------------------------------------


def single(index: int, name: str) -> SlicePlan:
    """A slice the planner cut down to one test of the file."""
    return SlicePlan(
        index=index,
        items=(Item(("tests/test_a.py", name), WHOLE.path),),
        predicted_seconds=1.0,
        tests=(listed(name),),
    )


def passed(*names: str) -> list[TestResult]:
    return [TestResult(path=WHOLE.path, name=n, status=Status.PASSED) for n in names]


def run(sp: SlicePlan, reported: list[TestResult], error: str = "") -> SliceResult:
    """What the orchestrator makes of a slice's report (stage 7's fill_missing)."""
    results = fill_missing(CHECK, sp, reported, "test", RUNNER, error)
    return SliceResult(
        index=sp.index, items=sp.items, results=tuple(results), seconds=1.0, error=error
    )


class Extra:
    """The ``run_extra`` callback: runs the repair slice, reporting every test it holds."""

    def __init__(self) -> None:
        self.calls: list[tuple[SlicePlan, int, bool]] = []

    def __call__(self, sp: SlicePlan, total: int, narrowed: bool) -> tuple[SliceResult, object]:
        self.calls.append((sp, total, narrowed))
        return run(sp, passed(*(t.name for t in sp.tests))), None


def stale_run(world: World) -> Lister:
    """A second run whose cached listing says test_two, where the source now has test_three."""
    world.lister().tests(world.toolchain, RUNNER, world.directory)
    world.runner.tests = [source("test_one"), source("test_three")]
    lister = world.lister()
    lister.tests(world.toolchain, RUNNER, world.directory)
    assert len(world.runner.asked) == 1
    return lister


PLAN = Plan(
    slices=(single(1, "test_one"), single(2, "test_two")), predicted_wall_seconds=1.0, workers=2
)


def test_a_stale_cached_listing_is_repaired_gone_tests_dropped_new_ones_run(world: World) -> None:
    check = world.check(stale_run(world))
    one, two = PLAN.slices
    check.note(one, passed("test_one"))
    # The runner refuses to select a test that no longer exists: slice 2 reports nothing.
    check.note(two, [])
    assert check.disagreed == {2}
    results = [run(one, passed("test_one")), run(two, [], "ERROR: not found: test_two")]
    extra = Extra()
    healed, plan = check.heal([WHOLE], PLAN, results, None, extra)
    # The fresh listing was taken once, from the runner.
    assert len(world.runner.asked) == 2
    # test_two is gone: not an error, not a result, and slice 2's error was the listing's.
    assert healed[0] == results[0]
    assert (healed[1].results, healed[1].error) == ((), "")
    # test_three exists but no slice ran it: one more slice, numbered after the plan's.
    ((sp, total, narrowed),) = extra.calls
    assert sp == SlicePlan(
        index=3,
        items=(Item(("tests/test_a.py", "test_three"), WHOLE.path),),
        predicted_seconds=0.0,
        tests=(listed("test_three"),),
    )
    assert (total, narrowed) == (3, True)
    assert [r.name for r in healed[2].results] == ["test_three"]
    assert plan.slices == (*PLAN.slices, sp)
    # The stale cache entry is gone: the next run lists afresh.
    world.lister().tests(world.toolchain, RUNNER, world.directory)
    assert len(world.runner.asked) == 3


def test_a_named_item_stands_for_every_test_of_that_name(world: World) -> None:
    # The source now defines test_one twice (Jest runs both); the slice reported the first.
    world.lister().tests(world.toolchain, RUNNER, world.directory)
    world.runner.tests = [source("test_one"), TestCase("tests/test_a.py", "test_one", 1)]
    lister = world.lister()
    lister.tests(world.toolchain, RUNNER, world.directory)
    check = world.check(lister)
    one, two = PLAN.slices
    check.note(one, passed("test_one"))
    check.note(two, [])
    extra = Extra()
    items = [item for sp in PLAN.slices for item in sp.items]
    check.heal(items, PLAN, [run(one, passed("test_one")), run(two, [])], None, extra)
    ((sp, _, _),) = extra.calls
    assert sp.items == (Item(("tests/test_a.py", "test_one"), WHOLE.path),)
    assert sp.tests == (TestCase(WHOLE.path, "test_one", 1),)


def test_a_flat_field_reruns_missing_tests_by_their_file(world: World) -> None:
    check = world.check(stale_run(world), nested=False)
    one, two = PLAN.slices
    check.note(one, passed("test_one"))
    check.note(two, [])
    extra = Extra()
    check.heal([WHOLE], PLAN, [run(one, passed("test_one")), run(two, [])], None, extra)
    ((sp, _, _),) = extra.calls
    assert sp.items == (WHOLE,)
    assert sp.tests == (listed("test_three"),)


def test_a_filter_keeps_deselected_new_tests_from_the_repair(world: World) -> None:
    check = world.check(stale_run(world))
    one, two = PLAN.slices
    check.note(one, passed("test_one"))
    check.note(two, [])
    extra = Extra()
    flt = Filter.parse(["!::test_three"])
    healed, plan = check.heal(
        [WHOLE], PLAN, [run(one, passed("test_one")), run(two, [])], flt, extra
    )
    assert extra.calls == []
    assert plan == PLAN
    assert [len(r.results) for r in healed] == [1, 0]


def test_slices_that_report_what_was_listed_leave_the_cache_alone(world: World) -> None:
    world.lister().tests(world.toolchain, RUNNER, world.directory)
    lister = world.lister()
    lister.tests(world.toolchain, RUNNER, world.directory)
    check = world.check(lister)
    one, two = PLAN.slices
    check.note(one, passed("test_one"))
    check.note(two, passed("test_two"))
    assert check.disagreed == set()
    results = [run(one, passed("test_one")), run(two, passed("test_two"))]
    assert check.heal([WHOLE], PLAN, results, None, Extra()) == (results, PLAN)
    world.lister().tests(world.toolchain, RUNNER, world.directory)
    assert len(world.runner.asked) == 1


def test_subtests_a_listing_cannot_know_agree_with_it_where_the_runner_has_levels(
    world: World,
) -> None:
    go_like = world.check(world.lister(), subtests=True)
    one = PLAN.slices[0]
    go_like.note(one, passed("test_one", "test_one/case"))
    assert go_like.disagreed == set()
    flat = world.check(world.lister(), subtests=False)
    flat.note(one, passed("test_one", "test_one/case"))
    assert flat.disagreed == {1}


def test_a_fresh_listing_that_disagrees_is_reported_as_is(world: World) -> None:
    lister = world.lister()
    lister.tests(world.toolchain, RUNNER, world.directory)
    check = world.check(lister)
    two = PLAN.slices[1]
    check.note(two, [])
    assert check.disagreed == {2}
    results = [run(two, [], "ERROR: not found")]
    extra = Extra()
    assert check.heal([WHOLE], PLAN, results, None, extra) == (results, PLAN)
    assert extra.calls == []
    assert len(world.runner.asked) == 1


def test_a_cancelled_run_tells_nothing_about_the_listing(world: World) -> None:
    check = world.check(stale_run(world))
    world.cancelled = True
    check.note(PLAN.slices[1], [])
    assert check.disagreed == set()
    assert check.unreported == {}
    results = [run(PLAN.slices[1], [], "not run: --failfast")]
    assert check.heal([WHOLE], PLAN, results, None, Extra()) == (results, PLAN)


def test_a_relisting_that_fails_leaves_the_unreported_tests_errors(world: World) -> None:
    check = world.check(stale_run(world))
    two = PLAN.slices[1]
    check.note(two, [])
    world.runner.fail = True
    results = [run(two, [], "ERROR: not found")]
    extra = Extra()
    assert check.heal([WHOLE], PLAN, results, None, extra) == (results, PLAN)
    assert [r.status for r in results[0].results] == [Status.ERROR]
