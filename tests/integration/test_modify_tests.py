"""A plugin's ``dagpar_modify_tests`` decides what runs, whether or not ``--filter`` is given."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult

#: Deselects, in place as the hook asks, every test whose name ends in ``_b``.
DESELECTOR = """
    from dagpar_cli import hookimpl


    @hookimpl
    def dagpar_modify_tests(check, tests, session):
        tests[:] = [t for t in tests if not t.name.endswith("_b")]
"""

SUITE = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
    """,
    "tests/test_pair.py": """
        def test_a():
            pass

        def test_b():
            raise AssertionError("deselected by the plugin; must not run")
    """,
    "tests/test_other.py": """
        def test_c():
            pass
    """,
}


@pytest.mark.parametrize(
    "args", [(), ("--filter", "tests"), ("--filter", "tests/test_pair.py")], ids=str
)
def test_a_plugin_that_deselects_in_place_is_honoured(
    args: tuple[str, ...],
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "deselector.py").write_text(textwrap.dedent(DESELECTOR))
    monkeypatch.syspath_prepend(str(plugins))
    monkeypatch.setenv("DAGPAR_PLUGINS", "deselector")
    ws = make_workspace(SUITE)

    result = dagpar_run("check", "-C", ws, "-j", "2", "--json", *args)

    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    ran = sorted(t["name"] for t in check["tests"])
    expected = ["test_a"] if args[-1:] == ("tests/test_pair.py",) else ["test_a", "test_c"]
    assert ran == expected
