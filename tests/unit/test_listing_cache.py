"""The listing cache: its key follows the source tree and the runner spec; a broken entry misses."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from dagpar_cli.listing_cache import (
    DISABLE_ENV,
    ListingCache,
    TreeSnapshot,
    cache_disabled,
    fingerprint_tree,
)
from dagpar_cli.model import RunnerSpec, TestCase
from dagpar_cli.testing import write_tree

TESTS = [TestCase("tests/test_a.py", "test_one"), TestCase("tests/test_a.py", "Cls::test[x-1]")]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "ws",
        {
            "pyproject.toml": "[tool.pytest.ini_options]\n",
            "api/tests/test_a.py": "def test_one():\n    pass\n",
            "api/tests/conftest.py": "",
            "api/package-lock.json": "{}\n",
        },
    )


def spec(workspace: Path, **changes: object) -> RunnerSpec:
    fields: dict[str, object] = {"name": "pytest", "workspace": workspace, "source": "api"}
    fields.update(changes)
    return RunnerSpec(**fields)  # type: ignore[arg-type]


def bump(path: Path) -> None:
    """Move *path*'s mtime forward (a test can be faster than the file system's clock)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_key_is_stable_while_nothing_changes(workspace: Path) -> None:
    cache = ListingCache(workspace)
    assert cache.key(spec(workspace)) == cache.key(spec(workspace))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda api: bump(api / "tests" / "test_a.py"), id="touched"),
        pytest.param(lambda api: (api / "tests" / "test_b.py").write_text(""), id="added"),
        pytest.param(lambda api: (api / "tests" / "conftest.py").unlink(), id="removed"),
        pytest.param(
            lambda api: os.rename(api / "tests" / "conftest.py", api / "tests" / "conftest2.py"),
            id="renamed",
        ),
        pytest.param(lambda api: (api / "package-lock.json").write_text("{ }\n"), id="lockfile"),
        pytest.param(lambda api: (api.parent / "conftest.py").write_text(""), id="parent-config"),
        pytest.param(
            lambda api: (
                (api / "deep" / "er").mkdir(parents=True)
                or (api / "deep" / "er" / "test_x.py").write_text("")
            ),
            id="added-deep",
        ),
    ],
)
def test_key_changes_with_the_tree(workspace: Path, change: object) -> None:
    cache = ListingCache(workspace)
    before = cache.key(spec(workspace))
    change(workspace / "api")  # type: ignore[operator]
    assert cache.key(spec(workspace)).digest != before.digest


def test_key_changes_when_size_changes_under_the_same_mtime(workspace: Path) -> None:
    path = workspace / "api" / "tests" / "test_a.py"
    cache = ListingCache(workspace)
    before = cache.key(spec(workspace))
    st = path.stat()
    path.write_text("def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.key(spec(workspace)).digest != before.digest


@pytest.mark.parametrize(
    "changes",
    [
        {"args": ("-m", "not slow")},
        {"command": ("python3", "-m", "pytest")},
        {"executor": "docker"},
        {"source": ""},
        {"name": "custom"},
    ],
)
def test_key_changes_with_the_runner_spec(workspace: Path, changes: dict[str, object]) -> None:
    cache = ListingCache(workspace)
    assert cache.key(spec(workspace, **changes)).digest != cache.key(spec(workspace)).digest


def test_key_changes_with_image_plugins_version_and_environment(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ListingCache(workspace)
    base = cache.key(spec(workspace)).digest
    assert cache.key(spec(workspace), image="python:3.13").digest != base
    assert cache.key(spec(workspace), plugins=["dagpar-extra==1.0"]).digest != base
    assert cache.key(spec(workspace), version="9.9.9").digest != base
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
    assert cache.key(spec(workspace)).digest != base


def test_caches_and_installed_packages_are_not_walked(workspace: Path) -> None:
    api = workspace / "api"
    write_tree(
        api,
        {
            ".venv/pyvenv.cfg": "home = /usr\n",
            ".venv/lib/python3.12/site-packages/pkg/__init__.py": "",
            "node_modules/.package-lock.json": "{}",
            "node_modules/left-pad/index.js": "",
        },
    )
    cache = ListingCache(workspace)
    before = cache.key(spec(workspace)).digest
    # Churn that no runner collects from: byte code, caches, dagpar's own state.
    write_tree(
        api,
        {
            "tests/__pycache__/test_a.cpython-312.pyc": "x",
            ".pytest_cache/v/cache/lastfailed": "{}",
            ".git/index": "x",
            ".dagpar/timings.sqlite": "x",
            ".venv/lib/python3.12/site-packages/pkg/__init__.py": "# edited in place\n",
            "node_modules/left-pad/index.js": "module.exports = 1;\n",
        },
    )
    assert cache.key(spec(workspace)).digest == before


def test_installing_a_package_changes_the_key(workspace: Path) -> None:
    api = workspace / "api"
    site = api / ".venv" / "lib" / "python3.12" / "site-packages"
    site.mkdir(parents=True)
    (api / ".venv" / "pyvenv.cfg").write_text("home = /usr\n")
    cache = ListingCache(workspace)
    before = cache.key(spec(workspace)).digest
    time.sleep(0.01)
    (site / "pytest_cases").mkdir()
    os.utime(site, ns=(site.stat().st_atime_ns, site.stat().st_mtime_ns + 1_000_000_000))
    assert cache.key(spec(workspace)).digest != before


def test_installing_outside_the_workspace_changes_the_key_of_who_names_it(
    workspace: Path, tmp_path: Path
) -> None:
    site = tmp_path / "elsewhere" / "site-packages"
    site.mkdir(parents=True)
    inside = workspace / "api" / "vendored"
    inside.mkdir()
    cache = ListingCache(workspace)
    places = [str(site), str(inside), str(tmp_path / "not-there")]
    before = cache.key(spec(workspace), installed=places).digest
    unnamed = cache.key(spec(workspace)).digest
    assert cache.key(spec(workspace), installed=places).digest == before
    assert unnamed != before  # "cannot tell" is a key of its own

    bump(site)
    after = cache.key(spec(workspace), installed=places).digest
    assert after != before
    assert cache.key(spec(workspace)).digest == unnamed  # a runner that names nothing: as before
    # A place inside the workspace is the tree's business, not stamped twice.
    assert (
        cache.key(spec(workspace), installed=[str(site), str(inside)]).digest
        == cache.key(spec(workspace), installed=[str(site)]).digest
    )
    (tmp_path / "not-there").mkdir()
    assert cache.key(spec(workspace), installed=places).digest != after


def test_a_directory_named_venv_without_pyvenv_cfg_is_walked(workspace: Path) -> None:
    write_tree(workspace / "api", {"venv/test_v.py": ""})
    cache = ListingCache(workspace)
    before = cache.key(spec(workspace)).digest
    (workspace / "api" / "venv" / "test_w.py").write_text("")
    assert cache.key(spec(workspace)).digest != before


def test_symlink_loop_is_walked_once(tmp_path: Path) -> None:
    write_tree(tmp_path / "src", {"a/test_a.py": ""})
    (tmp_path / "src" / "a" / "loop").symlink_to(tmp_path / "src")
    assert fingerprint_tree(tmp_path / "src") == fingerprint_tree(tmp_path / "src")


def test_store_then_load_round_trips(workspace: Path) -> None:
    cache = ListingCache(workspace)
    key = cache.key(spec(workspace))
    assert cache.load(key) is None
    cache.store(key, TESTS)
    assert cache.load(key) == TESTS
    state = workspace / ".dagpar"
    assert (state / ".gitignore").is_file() and (state / "CACHEDIR.TAG").is_file()
    assert [p.name for p in cache.directory.iterdir()] == [key.file_name]


def test_same_named_tests_keep_their_occurrence(workspace: Path) -> None:
    cache = ListingCache(workspace)
    key = cache.key(spec(workspace))
    tests = [TestCase("a.test.js", "same", k) for k in range(3)] + [TestCase("a.test.js", "x")]
    cache.store(key, tests)
    assert cache.load(key) == tests


def test_a_changed_tree_misses_and_the_entry_is_replaced(workspace: Path) -> None:
    cache = ListingCache(workspace)
    old = cache.key(spec(workspace))
    cache.store(old, TESTS)
    (workspace / "api" / "tests" / "test_b.py").write_text("def test_b():\n    pass\n")
    new = cache.key(spec(workspace))
    assert cache.load(new) is None
    cache.store(new, [*TESTS, TestCase("tests/test_b.py", "test_b")])
    assert len(list(cache.directory.iterdir())) == 1  # one entry per (runner, source)
    assert cache.load(old) is None


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{not json",
        "[]",
        '{"format": 2}',
        # An entry of format 1 merged same-named tests: listed again, not trusted.
        '{"format": 1, "key": "KEY", "runner": "pytest", "source": "api", "tests": []}',
        '{"format": 99, "key": "KEY", "runner": "pytest", "source": "api", "tests": []}',
        '{"format": 2, "key": "KEY", "runner": "pytest", "source": "api", "tests": [["a"]]}',
        '{"format": 2, "key": "KEY", "runner": "pytest", "source": "api", "tests": {"a": 1}}',
        '{"format": 2, "key": "KEY", "runner": "pytest", "source": "api", "tests": [[1, 2]]}',
        '{"format": 2, "key": "KEY", "runner": "jest", "source": "api", "tests": []}',
        '{"format": 2, "key": "KEY", "runner": "pytest", "source": "api", '
        '"tests": [["a", "b", 0]]}',
        '{"format": 2, "key": "KEY", "runner": "pytest", "source": "api", '
        '"tests": [["a", "b", "1"]]}',
        '{"format": 2, "key": "KEY", "runner": "pytest", "source": "api", '
        '"tests": [["a", "b", 1, 2]]}',
    ],
)
def test_a_corrupt_entry_is_a_miss(workspace: Path, content: str) -> None:
    cache = ListingCache(workspace)
    key = cache.key(spec(workspace))
    cache.store(key, TESTS)
    (cache.directory / key.file_name).write_text(content.replace("KEY", key.digest))
    assert cache.load(key) is None


def test_an_unreadable_entry_is_a_miss(workspace: Path) -> None:
    cache = ListingCache(workspace)
    key = cache.key(spec(workspace))
    cache.store(key, TESTS)
    entry = cache.directory / key.file_name
    entry.unlink()
    entry.mkdir()  # reading a directory fails for root too
    assert cache.load(key) is None
    cache.store(key, TESTS)  # cannot replace a directory: a no-op, not an error
    cache.drop(key)


def test_a_read_only_workspace_stores_nothing_and_raises_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "ws" / ".dagpar"
    blocker.parent.mkdir()
    blocker.write_text("a file where the state directory should be")
    cache = ListingCache(tmp_path / "ws")
    key = cache.key(spec(tmp_path / "ws", source=""))
    cache.store(key, TESTS)
    assert cache.load(key) is None


def test_drop_removes_only_the_entry_it_was_given(workspace: Path) -> None:
    cache = ListingCache(workspace)
    old = cache.key(spec(workspace))
    cache.store(old, TESTS)
    assert cache.drop(old)
    assert cache.load(old) is None
    assert not cache.drop(old)
    # Another run stored a newer listing meanwhile: a drop for the old one leaves it.
    cache.store(old, TESTS)
    newer = cache.key(spec(workspace), version="newer")
    cache.store(newer, TESTS)
    assert not cache.drop(old)
    assert cache.load(newer) == TESTS


def test_concurrent_stores_and_loads_never_see_half_an_entry(workspace: Path) -> None:
    cache = ListingCache(workspace)
    key = cache.key(spec(workspace))
    many = [TestCase(f"tests/test_{i}.py", f"test_{j}") for i in range(50) for j in range(40)]
    cache.store(key, many)
    bad: list[object] = []

    def writer() -> None:
        for _ in range(30):
            cache.store(key, many)

    def reader() -> None:
        for _ in range(60):
            got = cache.load(key)
            if got != many:
                bad.append(got)

    threads = [threading.Thread(target=f) for f in (writer, writer, reader, reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bad == []
    assert not [p for p in cache.directory.iterdir() if p.name.startswith(".tmp-")]


def test_entries_are_plain_json(workspace: Path) -> None:
    cache = ListingCache(workspace)
    key = cache.key(spec(workspace))
    cache.store(key, TESTS)
    data = json.loads((cache.directory / key.file_name).read_text())
    assert data["tests"] == [["tests/test_a.py", "test_one"], ["tests/test_a.py", "Cls::test[x-1]"]]
    assert (data["runner"], data["source"], data["key"]) == ("pytest", "api", key.digest)


@pytest.mark.parametrize(("value", "off"), [("1", True), ("yes", True), ("0", False), ("", False)])
def test_the_environment_variable_turns_the_cache_off(
    monkeypatch: pytest.MonkeyPatch, value: str, off: bool
) -> None:
    monkeypatch.setenv(DISABLE_ENV, value)
    assert cache_disabled() is off


def test_ignored_files_do_not_count(workspace: Path) -> None:
    report = workspace / "api" / "junit.xml"
    top = workspace / "report.html"
    cache = ListingCache(workspace)
    before = cache.key(spec(workspace), ignore=[report, top]).digest
    report.write_text("<testsuites/>")
    top.write_text("<html/>")
    assert cache.key(spec(workspace), ignore=[report, top]).digest == before
    assert cache.key(spec(workspace)).digest != before


def git(workspace: Path, *argv: str) -> None:
    subprocess.run(["git", "-C", str(workspace), *argv], check=True, capture_output=True)


def test_what_git_ignores_does_not_count(workspace: Path) -> None:
    (workspace / ".gitignore").write_text("coverage/\n*.log\n")
    git(workspace, "init", "-q")
    cache = ListingCache(workspace)
    before = cache.key(spec(workspace)).digest
    (workspace / "api" / "coverage").mkdir()
    (workspace / "api" / "coverage" / "lcov.info").write_text("TN:\n")
    (workspace / "api" / "run.log").write_text("ran\n")
    (workspace / "run.log").write_text("ran\n")
    assert cache.key(spec(workspace)).digest == before
    (workspace / "api" / "tests" / "test_b.py").write_text("def test_b():\n    pass\n")
    assert cache.key(spec(workspace)).digest != before


def test_a_venv_git_ignores_still_stamps_what_is_installed(workspace: Path) -> None:
    site = workspace / "api" / "myenv" / "lib" / "python3.12" / "site-packages"
    site.mkdir(parents=True)
    (workspace / "api" / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    (workspace / ".gitignore").write_text("myenv/\n")
    git(workspace, "init", "-q")
    cache = ListingCache(workspace)
    before = cache.key(spec(workspace)).digest
    (site / "pkg").mkdir()
    bump(site)
    assert cache.key(spec(workspace)).digest != before


def run_writing(workspace: Path, cache: ListingCache, write: dict[str, str]) -> str:
    """Take a key, write *write* as a run would, learn it; the key the run took."""
    before = TreeSnapshot()
    digest = cache.key(spec(workspace), snapshot=before).digest
    for rel, text in write.items():
        path = workspace / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        bump(path)
    cache.learn(before, cache.snapshot(spec(workspace)), read={"api/tests/test_a.py"})
    return digest


OUTPUTS = {
    "api/.coverage": "data",
    "api/coverage/lcov-report/index.html": "<html/>",
    "api/coverage/lcov-report/sorter.js": "x",
    "api/tests/__snapshots__/a.snap": "snap",
    ".coverage": "data",  # in a parent directory of the source
}


def test_what_a_run_wrote_does_not_count_afterwards(workspace: Path) -> None:
    cache = ListingCache(workspace)
    first = run_writing(workspace, cache, OUTPUTS)
    assert cache.key(spec(workspace)).digest == first
    # Rewritten by the next run: still not counted.
    assert run_writing(workspace, cache, {k: v + "!" for k, v in OUTPUTS.items()}) == first
    assert cache.key(spec(workspace)).digest == first


@pytest.mark.parametrize(
    "added",
    [
        "api/coverage/notes.txt",  # an output directory learns no files it did not write
        "api/coverage/lcov-report/test_x.py",
        "api/coverage/test_late.py",
        "api/tests/__snapshots__/helper.py",
        "api/tests/test_b.py",
    ],
)
def test_a_file_added_after_a_run_still_counts(workspace: Path, added: str) -> None:
    cache = ListingCache(workspace)
    first = run_writing(workspace, cache, OUTPUTS)
    (workspace / added).write_text("def test_x():\n    pass\n")
    assert cache.key(spec(workspace)).digest != first


@pytest.mark.parametrize(
    "written",
    [
        "api/tests/test_a.py",  # the listing read it
        "api/tests/test_new.py",  # named like a test
        "api/src/sum.test.js",
        "api/tests/__tests__/x.js",
        "api/tests/helper.py",  # source, outside a directory the run created
        "api/conftest.py",
        "api/pyproject.toml",
        "api/package.json",
        "api/jest.config.js",
        "api/package-lock.json",
        "api/poetry.lock",
    ],
)
def test_what_a_run_writes_is_never_learned_when_a_listing_may_read_it(
    workspace: Path, written: str
) -> None:
    cache = ListingCache(workspace)
    first = run_writing(workspace, cache, {written: "def test_z():\n    pass\n"})
    assert cache.key(spec(workspace)).digest != first


def test_a_learned_output_removed_does_not_count(workspace: Path) -> None:
    cache = ListingCache(workspace)
    run_writing(workspace, cache, {"api/.coverage": "data"})
    key = cache.key(spec(workspace)).digest
    (workspace / "api" / ".coverage").unlink()
    assert cache.key(spec(workspace)).digest == key


def test_a_corrupt_outputs_file_learns_nothing(workspace: Path) -> None:
    cache = ListingCache(workspace)
    first = run_writing(workspace, cache, {"api/.coverage": "data"})
    (workspace / ".dagpar" / "listing-outputs.json").write_text("{not json")
    assert cache.key(spec(workspace)).digest != first


def test_key_changes_with_the_toolchain_env(workspace: Path) -> None:
    cache = ListingCache(workspace)
    plain = cache.key(spec(workspace))
    assert cache.key(spec(workspace), toolchain_env={}).digest == plain.digest
    flavour_a = cache.key(spec(workspace), toolchain_env={"FLAVOUR": "a"})
    flavour_b = cache.key(spec(workspace), toolchain_env={"FLAVOUR": "b"})
    assert len({plain.digest, flavour_a.digest, flavour_b.digest}) == 3
