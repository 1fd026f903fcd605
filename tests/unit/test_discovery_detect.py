"""Stage 2: detecting toolchains in a workspace whose configuration lists none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest
from config_fakes import (  # type: ignore[import-not-found]
    FakeToolchains,
    bare_plugin_manager,
    plugin_manager,
)

from dagpar_cli.config import Config, ToolchainConfig
from dagpar_cli.config.loader import load_config
from dagpar_cli.discovery import detect_toolchains
from dagpar_cli.errors import ConfigError
from dagpar_cli.plugin import hookimpl


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


def load_and_detect(workspace: Path, pm: pluggy.PluginManager) -> Config:
    """Stage 1 then detection, as the pipeline opens a session."""
    return detect_toolchains(load_config(workspace, pm), pm)


def detected(config: Config) -> list[ToolchainConfig]:
    """The toolchains the fake plugins detected (real plugins may add their own)."""
    return [t for t in config.toolchains if "fake:" in t.origin]


@pytest.fixture
def detect_ws(ws: Path) -> Iterator[Path]:
    for name in ("web", "api", "svc"):
        (ws / name).mkdir()
    yield ws


def test_detection_without_a_file(detect_ws: Path) -> None:
    one = FakeToolchains(
        [{"instance": "jsrun", "use": "jsrun", "source": "web", "why": "fake: web/package.json"}]
    )
    two = FakeToolchains(
        [
            {
                "instance": "pytool",
                "use": "pytool",
                "source": "api",
                "why": "fake: api/pyproject.toml",
                "image": "py",
            }
        ]
    )
    config = load_and_detect(detect_ws, plugin_manager(one, two))
    assert config.file is None
    assert config.parallelism is None and config.executor == "local"
    assert detected(config) == [
        ToolchainConfig(
            instance="jsrun", use="jsrun", source="web", origin="detected: fake: web/package.json"
        ),
        ToolchainConfig(
            instance="pytool",
            use="pytool",
            source="api",
            image="py",
            origin="detected: fake: api/pyproject.toml",
        ),
    ]
    assert one.detect_calls == [detect_ws.resolve()]


def test_detection_dedupes_names_whatever_the_plugin_order(detect_ws: Path) -> None:
    entries = [
        {"instance": "pytool", "use": "pytool", "source": "svc", "why": "fake: svc/tests"},
        {"instance": "pytool", "use": "pytool", "source": "api", "why": "fake: api/tests"},
        {"instance": "pytool", "use": "pytool", "source": "", "why": "fake: conftest.py"},
    ]
    orders = []
    for permutation in (entries, entries[::-1], [entries[1], entries[0], entries[2]]):
        plugins = [FakeToolchains([e]) for e in permutation]
        config = load_and_detect(detect_ws, plugin_manager(*plugins))
        orders.append([(t.instance, t.source) for t in detected(config)])
    assert orders[0] == [("pytool", ""), ("pytool-2", "api"), ("pytool-3", "svc")]
    assert orders[0] == orders[1] == orders[2]


def test_detection_drops_an_entry_two_plugins_both_found(detect_ws: Path) -> None:
    entry = {"instance": "jsrun", "use": "jsrun", "source": "web", "why": "fake: web/package.json"}
    config = load_and_detect(
        detect_ws, plugin_manager(FakeToolchains([entry]), FakeToolchains([dict(entry)]))
    )
    assert [t.instance for t in detected(config)] == ["jsrun"]


def test_detected_instance_names_are_made_valid(detect_ws: Path) -> None:
    entries = [
        {"instance": "my pkg", "use": "jsrun", "source": "web", "why": "fake: a"},
        {"use": "pytool", "why": "fake: b"},
        {"instance": "9lives", "use": "pytool", "source": "api", "why": "fake: c"},
    ]
    config = load_and_detect(detect_ws, plugin_manager(FakeToolchains(entries)))
    assert sorted(t.instance for t in detected(config)) == ["my-pkg", "pytool", "t-9lives"]


def test_no_detection_gives_no_toolchains(detect_ws: Path) -> None:
    pm = bare_plugin_manager()
    pm.register(FakeToolchains(None))
    pm.register(FakeToolchains([]))
    config = load_and_detect(detect_ws, pm)
    assert config == Config(workspace=detect_ws.resolve(), file=None, toolchains=())


def test_file_without_toolchains_key_detects(detect_ws: Path) -> None:
    entry = {"instance": "jsrun", "use": "jsrun", "source": "web", "why": "fake: web/package.json"}
    (detect_ws / "dagpar.yaml").write_text("executor: docker\nparallelism: 3\n")
    config = load_and_detect(detect_ws, plugin_manager(FakeToolchains([entry])))
    assert config.file == detect_ws / "dagpar.yaml"
    assert (config.executor, config.parallelism) == ("docker", 3)
    assert [t.instance for t in detected(config)] == ["jsrun"]


def test_explicit_empty_toolchains_does_not_detect(detect_ws: Path) -> None:
    plugin = FakeToolchains([{"instance": "jsrun", "use": "jsrun", "why": "fake: x"}])
    (detect_ws / "dagpar.yaml").write_text("toolchains: {}\n")
    config = load_and_detect(detect_ws, plugin_manager(plugin))
    assert config.toolchains == ()
    assert plugin.detect_calls == []


def test_bad_detected_entry_says_it_was_detected(detect_ws: Path) -> None:
    entry = {
        "instance": "jsrun",
        "use": "jsrun",
        "source": "gone",
        "why": "fake: gone/package.json",
    }
    with pytest.raises(ConfigError) as info:
        load_and_detect(detect_ws, plugin_manager(FakeToolchains([entry])))
    assert str(info.value) == (
        "toolchains.jsrun.source: directory 'gone' does not exist "
        "(detected: fake: gone/package.json)"
    )


def test_a_configuration_that_lists_its_toolchains_is_returned_as_it_is(ws: Path) -> None:
    plugin = FakeToolchains([{"instance": "jsrun", "use": "jsrun", "why": "fake: x"}])
    pm = plugin_manager(plugin)
    config = Config(workspace=ws, file=None, toolchains=())
    assert detect_toolchains(config, pm) is config
    assert plugin.detect_calls == []


def test_a_plugin_answering_nonsense_is_named(ws: Path) -> None:
    class Nonsense:
        @hookimpl
        def dagpar_detect_toolchains(self, workspace: Path) -> list[object]:
            return ["jest"]

    pm = bare_plugin_manager()
    pm.register(Nonsense())
    with pytest.raises(ConfigError, match="returned a string, not a mapping"):
        load_and_detect(ws, pm)
