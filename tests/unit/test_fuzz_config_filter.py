"""Fuzzing the two input parsers a user types into: ``dagpar.yaml`` and ``--filter``.

Whatever the input, the answer is a value or a :class:`~dagpar_cli.errors.DagparError` (printed as
one line, exit 2); any other exception would be a traceback, a bug in dagpar.
"""

from __future__ import annotations

import fnmatch
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dagpar_cli import hookspecs
from dagpar_cli.config import Config
from dagpar_cli.config.loader import load_config, loads
from dagpar_cli.discovery import detect_toolchains
from dagpar_cli.errors import DagparError, UsageError
from dagpar_cli.filtering import Filter, parse_selector
from dagpar_cli.model import Item, TestCase
from dagpar_cli.pluginmanager import hookimpl

FUZZ = settings(
    max_examples=1000,
    deadline=None,
    database=None,  # nothing written into the checkout
    derandomize=True,  # the same examples on every run, so CI cannot fail by chance
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class Builtins:
    """Registers two built-in toolchain names and detects one toolchain."""

    @hookimpl
    def dagpar_register_toolchains(self, registry: Any) -> None:
        registry.add("pytool", "fake_toolchains.pytool")
        registry.add("jsrun", "fake_toolchains.jsrun")

    @hookimpl
    def dagpar_detect_toolchains(self, workspace: Path) -> list[dict[str, Any]]:
        return [{"instance": "pytool", "use": "pytool", "source": "api", "why": "api/tests"}]


@pytest.fixture(scope="module")
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for directory in ("api", "web", "web/src", "ci"):
            (root / directory).mkdir()
        (root / "ci" / "lint.py").write_text("")
        yield root


@pytest.fixture(scope="module")
def pm() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(Builtins())
    return manager


def load_text(workspace: Path, pm: pluggy.PluginManager, text: str) -> Config | DagparError:
    # In memory: the same validation as load_config without a file write per example.
    try:
        return detect_toolchains(loads(text, workspace, pm), pm)
    except DagparError as exc:
        assert str(exc), "a handled error must say something"
        assert "\n" not in str(exc).strip() or "YAML" in str(exc)
        return exc


# ---------------------------------------------------------------------------------------------
# dagpar.yaml
# ---------------------------------------------------------------------------------------------

_KEYS = [
    "toolchains",
    "executor",
    "parallelism",
    "use",
    "source",
    "image",
    "runner",
    "args",
    "docker",
    "local",
    "engines",
    "url",
    "slots",
    "pytool",
    "jsrun",
    "web",
    "api",
    "ci/lint.py",
    "../x",
    "/abs",
    "auto",
    "markers",
]

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=10**20),
    st.floats(allow_nan=True),
    st.sampled_from(_KEYS),
    st.text(max_size=12),
)

_documents = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from(_KEYS), st.text(max_size=8), st.integers(-2, 2)),
            children,
            max_size=3,
        ),
    ),
    max_leaves=10,
)

_yaml_tokens = st.sampled_from(
    [
        *(f"{k}:" for k in _KEYS),
        *_KEYS,
        " ",
        "  ",
        "\n",
        "\n  ",
        "\n    ",
        "- ",
        "{",
        "}",
        "[",
        "]",
        ",",
        ": ",
        "'",
        '"',
        "&a ",
        "*a",
        "<<: ",
        "!!python/object:os.system ",
        "!!binary ",
        "2024-13-45",
        "2024-01-02",
        "~",
        "null",
        "0x1F",
        ".inf",
        "#",
        "\t",
        "?",
        "|",
        ">",
        "%YAML 1.1\n---\n",
        "\x00",
        "\ufeff",
    ]
)


@FUZZ
@given(text=st.text())
def test_any_text_as_dagpar_yaml(workspace: Path, pm: pluggy.PluginManager, text: str) -> None:
    load_text(workspace, pm, text)


@settings(FUZZ, max_examples=200)
@given(content=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_any_bytes_in_the_file(workspace: Path, pm: pluggy.PluginManager, content: bytes) -> None:
    (workspace / "dagpar.yaml").write_bytes(content)
    try:
        detect_toolchains(load_config(workspace, pm), pm)
    except DagparError as exc:
        assert str(exc)


@FUZZ
@given(tokens=st.lists(_yaml_tokens, max_size=30))
def test_yaml_shaped_text_as_dagpar_yaml(
    workspace: Path, pm: pluggy.PluginManager, tokens: list[str]
) -> None:
    load_text(workspace, pm, "".join(tokens))


@FUZZ
@given(document=st.dictionaries(st.sampled_from(_KEYS[:3]), _documents, max_size=3))
def test_any_structure_as_dagpar_yaml(
    workspace: Path, pm: pluggy.PluginManager, document: dict[str, Any]
) -> None:
    result = load_text(workspace, pm, yaml.safe_dump(document))
    if isinstance(result, Config):
        # What loads is valid: every toolchain is named and rooted inside the workspace.
        for toolchain in result.toolchains:
            assert toolchain.instance and toolchain.use
            assert not toolchain.source.startswith(("/", ".."))
            assert (workspace / toolchain.source).is_dir()
        assert result.parallelism is None or result.parallelism >= 1
        assert result.executor in ("local", "docker")


_values = st.one_of(
    st.sampled_from(
        ["api", "web", "./web/src/", ".", "..", "/abs", "ci/lint.py", "gone", "pytool", "jsrun"]
    ),
    st.none(),
    st.integers(-1, 3),
    st.lists(st.sampled_from(["-x", "a b", "1"]), max_size=3),
    st.text(max_size=6),
)
_entries = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["use", "source", "image", "runner", "args", "markers", "sorce"]),
        _values,
        max_size=4,
    ),
)
_engines = st.lists(
    st.one_of(
        st.sampled_from(["unix:///var/run/docker.sock", "", "ssh://ci@box"]),
        st.fixed_dictionaries(
            {"url": st.sampled_from(["tcp://a:2375", "ctx"])},
            optional={"slots": st.one_of(st.integers(-1, 9), st.none(), st.just("auto"))},
        ),
    ),
    max_size=3,
)
_near_valid = st.fixed_dictionaries(
    {},
    optional={
        "toolchains": st.dictionaries(
            st.sampled_from(["pytool", "jsrun", "web", "lint", "a b", "1x", "my-app_2"]),
            _entries,
            max_size=4,
        ),
        "executor": st.one_of(
            st.sampled_from(["local", "docker", "dockr"]),
            st.fixed_dictionaries({"docker": st.fixed_dictionaries({"engines": _engines})}),
        ),
        "parallelism": st.one_of(st.sampled_from(["auto", "4", "x"]), st.integers(-1, 64)),
    },
)


@FUZZ
@given(document=_near_valid)
def test_near_valid_dagpar_yaml(
    workspace: Path, pm: pluggy.PluginManager, document: dict[str, Any]
) -> None:
    result = load_text(workspace, pm, yaml.safe_dump(document, sort_keys=False))
    if isinstance(result, DagparError):
        return
    configured = document.get("toolchains")
    if configured is not None:
        # Instances come out in file order, each with its own use/source as validated.
        assert [t.instance for t in result.toolchains] == list(configured)
        for toolchain in result.toolchains:
            entry = configured[toolchain.instance] or {}
            assert toolchain.use == (entry.get("use") or toolchain.instance).removeprefix("./")
            assert (workspace / toolchain.source).is_dir()
            assert set(toolchain.overrides) == set(entry) - {
                "use",
                "source",
                "image",
                "runner",
                "args",
            }
    if document.get("executor") == "docker":
        assert result.executor == "docker"


# ---------------------------------------------------------------------------------------------
# --filter
# ---------------------------------------------------------------------------------------------

TESTS = [
    TestCase("api/tests/test_a.py", "test_one"),
    TestCase("api/tests/test_a.py", "TestC::test_two[1-2]"),
    TestCase("web/src/[id] page.test.ts", "describe (x+y)* | $z ^"),
    TestCase("web/src/ünï.test.ts", "ünïcödé ✓ 🚀"),
    TestCase("svc/store", "TestPut"),
    TestCase(".", "TestRoot"),
]
ITEMS = [Item(("src/a.ts",), "web/src/a.ts"), Item(("pkg", "TestX"), "svc/pkg")]

_filter_text = st.text(alphabet="ab*?[]!:/.-_ \\^()$|+{}é", max_size=16)


def _exercise(f: Filter) -> None:
    for instance in ("backend", "a", "frontend"):
        selected, deselected = f.select_tests(instance, TESTS)
        # Every listed test is deselected, selected, or reached through a selected subtest.
        reached = {(t.path, t.name.split("/", 1)[0]) for t in selected}
        for test in TESTS:
            assert (test in deselected) != ((test.path, test.name) in reached)
        try:
            f.select_items(instance, ITEMS)
        except UsageError:
            pass
    f.closest([t.path for t in TESTS])
    f.unmatched()
    try:
        f.check_instances(["backend", "frontend"])
    except UsageError:
        pass


@FUZZ
@given(texts=st.lists(st.text(max_size=24), min_size=1, max_size=3))
def test_any_text_as_filters(texts: list[str]) -> None:
    try:
        f = Filter.parse(texts)
    except UsageError as exc:
        assert str(exc).startswith("--filter ")
        return
    _exercise(f)


@FUZZ
@given(texts=st.lists(_filter_text, min_size=1, max_size=3))
def test_glob_shaped_text_as_filters(texts: list[str]) -> None:
    try:
        f = Filter.parse(texts)
    except UsageError as exc:
        assert str(exc).startswith("--filter ")
        return
    _exercise(f)


@FUZZ
@given(name=st.text(min_size=1, max_size=30))
def test_every_name_selects_itself_exactly(name: str) -> None:
    selector = parse_selector(f"::{name}")
    assert selector.matches_name(name)
    tests = [TestCase("p", name), TestCase("p", name + "x"), TestCase("q", "other")]
    selected, _ = Filter([selector]).select_tests("i", tests)
    assert TestCase("p", name) in selected


@FUZZ
@given(
    glob=st.text(alphabet="ab*?[]!-", min_size=1, max_size=8),
    name=st.text(alphabet="ab-]![", max_size=6),
)
def test_name_globs_agree_with_fnmatch(glob: str, name: str) -> None:
    try:
        selector = parse_selector(f"::{glob}")
    except UsageError:
        assume(False)
        return
    assert selector.matches_name(name) == (name == glob or fnmatch.fnmatchcase(name, glob))


@FUZZ
@given(
    glob=st.text(alphabet="ab*?[]!-", min_size=1, max_size=8),
    segments=st.lists(st.text(alphabet="ab-]![", min_size=1, max_size=4), min_size=1, max_size=3),
)
def test_path_globs_agree_with_fnmatch_per_segment(glob: str, segments: list[str]) -> None:
    # A one-segment pattern matches a path when fnmatch matches its first segment (its parent
    # directory at the top) or the whole path has one segment that it matches.
    assume(glob not in (".", "!") and not glob.startswith("!"))
    try:
        selector = parse_selector(glob)
    except UsageError:
        assume(False)
        return
    path = "/".join(segments)
    expected = fnmatch.fnmatchcase(segments[0], glob) and "**" not in glob
    if "**" not in glob:
        assert selector.matches_path(path) == expected
