"""Hooks a plugin uses to extend dagpar itself: its own subcommands, and what the filter dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult

#: Adds ``dagpar hello NAME``, and records every test the filter deselected.
PLUGIN = """
    import json
    import os

    import click

    from dagpar_cli import hookimpl


    @hookimpl
    def dagpar_add_commands(cli):
        @cli.command("hello")
        @click.argument("name")
        def hello(name):
            \"\"\"Greet NAME (added by a plugin).\"\"\"
            click.echo(f"hello {name}")


    @hookimpl
    def dagpar_deselected(check, tests):
        with open(os.environ["DESELECTED_LOG"], "a") as log:
            for test in tests:
                log.write(json.dumps([check, test.id]) + "\\n")
"""

SUITE = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "tests/test_a.py": """
        def test_one():
            pass

        def test_two():
            pass
    """,
    "tests/test_b.py": """
        def test_three():
            pass
    """,
}


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The plugin, loaded through ``DAGPAR_PLUGINS`` the way a user tries one out."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "extender.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(plugins))
    monkeypatch.setenv("DAGPAR_PLUGINS", "extender")
    return plugins


def test_a_plugin_adds_a_subcommand(plugin_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), *sys.path])}
    help_text = subprocess.run(
        [sys.executable, "-m", "dagpar_cli", "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "hello" in help_text
    greeted = subprocess.run(
        [sys.executable, "-m", "dagpar_cli", "hello", "world"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (greeted.returncode, greeted.stdout) == (0, "hello world\n"), greeted.stderr


def test_a_plugin_learns_what_the_filter_deselected(
    plugin_dir: Path,
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = tmp_path / "deselected.log"
    monkeypatch.setenv("DESELECTED_LOG", str(log))
    ws = make_workspace(SUITE)

    result = dagpar_run("check", "-C", ws, "--json", "--filter", "tests/test_a.py::test_one")

    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    assert [t["name"] for t in check["tests"]] == ["test_one"]
    deselected = sorted(json.loads(line)[1] for line in log.read_text().splitlines())
    assert deselected == ["tests/test_a.py::test_two", "tests/test_b.py::test_three"]
