"""``--dry-run`` runs no test, but it does run the project's code to list them: say so.

The help and the README said it "runs nothing", yet listing pytest tests imports
``conftest.py`` and every test module, and a toolchain's checks run up to their split call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from dagpar_cli.testing import DagparResult

README = Path(__file__).resolve().parents[2] / "README.md"


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_the_help_says_what_a_dry_run_runs(dagpar_run: Callable[..., DagparResult]) -> None:
    for command in ("check", "call"):
        result = dagpar_run(command, "--help")
        assert result.exit_code == 0, result
        text = _flat(result.stdout)
        described = text.split("--dry-run", 1)[1].split(" --", 1)[0]
        assert "run nothing" not in described, described
        assert "conftest.py" in described and "test modules" in described, described


def test_the_readme_says_what_a_dry_run_runs() -> None:
    text = _flat(README.read_text(encoding="utf-8"))
    assert "runs nothing" not in text
    assert re.search(r"`--dry-run` runs no test, but[^.]*`conftest\.py`[^.]*test module", text)


def test_a_dry_run_imports_conftest_as_documented(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(
        {
            "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
            "tests/conftest.py": """
                from pathlib import Path
                Path(__file__).with_name("imported").write_text("conftest.py ran")
            """,
            "tests/test_a.py": "def test_a():\n    raise SystemExit('a test ran')\n",
        }
    )
    result = dagpar_run("check", "--dry-run", "-C", ws)
    assert result.exit_code == 0, result
    assert (ws / "tests" / "imported").read_text() == "conftest.py ran"
    assert "tests/test_a.py" in result.stdout
