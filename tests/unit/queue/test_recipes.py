"""The queue-mode CI recipes under docs/ci/queue/ parse, and their ``dagpar`` commands exist."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path
from types import ModuleType

import click
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
RECIPES = sorted((ROOT / "docs" / "ci" / "queue").glob("*.yml"))


def _recipes_kit() -> ModuleType:
    """The shell-command extraction and validation of the sharded recipes' test."""
    path = ROOT / "tests" / "unit" / "test_ci_recipes.py"
    spec = importlib.util.spec_from_file_location("_ci_recipes_kit", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


KIT = _recipes_kit()


def test_there_are_queue_recipes_for_github_gitlab_and_buildkite() -> None:
    assert {p.name for p in RECIPES} == {"github-actions.yml", "gitlab-ci.yml", "buildkite.yml"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_queue_recipes_run_nodes_and_a_report(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    commands = [c for s in KIT._shell_texts(doc) for c in KIT.dagpar_commands(s)]
    used = set()
    for args in commands:
        try:
            used.add(KIT.validate(args))
        except click.ClickException as exc:
            pytest.fail(f"{path.name}: dagpar {shlex.join(args)}: {exc.format_message()}")
        assert "--shard" not in args, args
    assert {"dagpar check", "dagpar queue report"} <= used, used
    # The queue's URL comes from a secret every node shares, never from a per-job service.
    assert "DAGPAR_QUEUE" in text and "dagpar[queue]" in text
    assert "services:" not in text.replace("`services:", "")
