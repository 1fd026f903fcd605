"""Toolchain discovery: each configured toolchain is loaded and checked before anything runs, and
every problem names the file and line (or the ``dagpar.yaml`` key) to fix."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest

from dagpar_cli import Directory
from dagpar_cli.config import Config, ToolchainConfig
from dagpar_cli.discovery import discover, main_class_name
from dagpar_cli.errors import ConfigError, ToolchainError
from dagpar_cli.pluginmanager import get_plugin_manager
from dagpar_cli.testing import write_tree

LINT = """
from __future__ import annotations
from dagpar_cli import Directory, check, field, object_type

@object_type
class Helper:
    name: str = "helper"

@object_type
class MyLint:
    source: Directory
    image: str = "python:3.12"
    strict: bool = False
    files: list[str] = field(default_factory=list)

    @check
    def lint(self) -> None:
        pass

    @check
    def format_check(self) -> None:
        pass

    def helper(self) -> Helper:
        return Helper()
"""


@pytest.fixture(scope="module")
def pm() -> pluggy.PluginManager:
    return get_plugin_manager()


def config(workspace: Path, *entries: ToolchainConfig) -> Config:
    return Config(workspace=workspace, file=workspace / "dagpar.yaml", toolchains=entries)


def entry(instance: str = "lint", use: str = "ci/my_lint.py", **kwargs: object) -> ToolchainConfig:
    return ToolchainConfig(instance=instance, use=use, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("module", "main"),
    [("jest", "Jest"), ("my_lint", "MyLint"), ("my-lint", "MyLint"), ("pkg.go_vet", "GoVet")],
)
def test_the_main_class_is_the_module_name_in_pascal_case(module: str, main: str) -> None:
    assert main_class_name(module) == main


def test_a_toolchain_file_is_loaded_with_its_types_and_checks(
    tmp_path: Path, pm: pluggy.PluginManager
) -> None:
    write_tree(tmp_path, {"ci/my_lint.py": LINT})
    (toolchain,) = discover(config(tmp_path, entry()), pm)
    assert toolchain.instance == "lint"
    assert toolchain.main.name == "MyLint"
    assert sorted(toolchain.types) == ["Helper", "MyLint"]
    assert toolchain.checks() == ["lint:lint", "lint:format-check"]
    assert toolchain.origin == "ci/my_lint.py"


def test_a_built_in_toolchain_is_found_by_name(tmp_path: Path, pm: pluggy.PluginManager) -> None:
    (toolchain,) = discover(config(tmp_path, entry("api", "pytest")), pm)
    assert toolchain.origin == "pytest"
    assert toolchain.main.name == "Pytest"
    assert toolchain.checks()  # a built-in toolchain has at least one check


def test_instantiate_fills_directories_image_and_overrides(
    tmp_path: Path, pm: pluggy.PluginManager
) -> None:
    write_tree(tmp_path, {"ci/my_lint.py": LINT, "web/x.txt": "x"})
    tc = entry(source="web", image="node:22", overrides={"strict": True, "files": ["a.py"]})
    (toolchain,) = discover(config(tmp_path, tc), pm)
    obj = toolchain.instantiate(tmp_path)
    assert obj.source == Directory((tmp_path / "web").resolve(), "web")
    assert obj.image == "node:22"
    assert obj.strict is True
    assert obj.files == ["a.py"]


def test_an_override_naming_no_field_is_a_config_error_with_its_key(
    tmp_path: Path, pm: pluggy.PluginManager
) -> None:
    write_tree(tmp_path, {"ci/my_lint.py": LINT, "dagpar.yaml": ""})
    (toolchain,) = discover(config(tmp_path, entry(overrides={"strikt": True})), pm)
    with pytest.raises(ConfigError) as info:
        toolchain.instantiate(tmp_path)
    assert info.value.key == "toolchains.lint.strikt"
    assert "has no field 'strikt'; did you mean 'strict'?" in info.value.message
    assert info.value.file == str(tmp_path / "dagpar.yaml")


def test_a_required_field_without_a_value_is_a_config_error(
    tmp_path: Path, pm: pluggy.PluginManager
) -> None:
    write_tree(
        tmp_path,
        {
            "ci/needs.py": """
                from dagpar_cli import object_type

                @object_type
                class Needs:
                    token: str
            """
        },
    )
    (toolchain,) = discover(config(tmp_path, entry("n", "ci/needs.py")), pm)
    with pytest.raises(ConfigError, match="needs a value for 'token'") as info:
        toolchain.instantiate(tmp_path)
    assert info.value.key == "toolchains.n.token"


@pytest.mark.parametrize(
    ("source", "message", "line"),
    [
        ("def broken(:\n    pass\n", "syntax error", 1),
        ("import os\n\nraise RuntimeError('boom')\n", "RuntimeError: boom", 3),
        (
            "from dagpar_cli import object_type\n\n@object_type\nclass Other:\n    x: int = 1\n",
            "has no main class MyLint (the file's name in PascalCase); found: Other",
            None,
        ),
        (
            "from dagpar_cli import object_type\n\n@object_type\nclass MyLint:\n"
            "    # +paralel\n    def run(self) -> None:\n        pass\n",
            "unknown pragma '+paralel'; did you mean '+parallel'?",
            5,
        ),
    ],
)
def test_a_broken_toolchain_fails_discovery_with_file_and_line(
    tmp_path: Path, pm: pluggy.PluginManager, source: str, message: str, line: int | None
) -> None:
    write_tree(tmp_path, {"ci/my_lint.py": source})
    with pytest.raises(ToolchainError) as info:
        discover(config(tmp_path, entry()), pm)
    assert message in info.value.message
    assert info.value.file is not None and info.value.file.endswith("my_lint.py")
    assert info.value.line == line


def test_a_missing_toolchain_file_names_the_key_to_fix(
    tmp_path: Path, pm: pluggy.PluginManager
) -> None:
    with pytest.raises(ToolchainError, match=r"toolchain file not found \(toolchains.lint.use\)"):
        discover(config(tmp_path, entry(use="ci/nowhere.py")), pm)


def test_two_instances_of_one_file_are_independent(
    tmp_path: Path, pm: pluggy.PluginManager
) -> None:
    write_tree(tmp_path, {"ci/my_lint.py": LINT})
    a, b = discover(config(tmp_path, entry("a"), entry("b")), pm)
    assert a.module is not b.module
    assert (a.checks(), b.checks()) == (["a:lint", "a:format-check"], ["b:lint", "b:format-check"])
