"""The CI recipes under docs/ci/ and the composite action parse, and every ``dagpar`` command they
run uses subcommands and options that exist."""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from dagpar_cli.cli import CI_SHARD_VARIABLES, cli
from dagpar_cli.timings import shard_file

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "docs" / "ci").glob("*.yml"))
ACTION = ROOT / "action.yml"
#: The files sharded runs write their timings to (see dagpar_cli.timings.shard_file).
SHARD_GLOB = "timings-shard-*.json"

#: Keys whose values are shell commands, per CI system (GitHub/CircleCI `run`, GitLab `script`,
#: Buildkite and CircleCI `command`).
SHELL_KEYS = {"run", "script", "before_script", "after_script", "command", "commands"}
#: Shell words that end one command and start the next.
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "{", "}", "then", "do", "else", "!"}


def _shell_texts(node: Any) -> Iterator[str]:
    """Every shell script in a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SHELL_KEYS:
                if isinstance(value, str):
                    yield value
                elif isinstance(value, list):
                    yield from (v for v in value if isinstance(v, str))
            yield from _shell_texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _shell_texts(value)


def _expand(text: str) -> str:
    """Stand-ins for what the CI system and the shell would expand, so that words stay words."""
    text = re.sub(r"\$\{\{.*?\}\}", "1", text)  # GitHub expressions
    text = text.replace("$$", "$")  # Buildkite's runtime `$`
    text = re.sub(r'"\$\{\w+\[@\]\}"', "", text)  # "${array[@]}": may be empty
    text = re.sub(r"\$\{[^}]*\}|\$\w+|\$\?", "1", text)  # variables
    return text


def dagpar_commands(script: str) -> list[list[str]]:
    """The argument lists of every ``dagpar`` command in a shell script."""
    script = re.sub(r"\\\n", " ", script)  # continuation lines
    found: list[list[str]] = []
    for line in script.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        lexer = shlex.shlex(_expand(line), posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        words = list(lexer)
        for i, word in enumerate([*words, ";"]):
            if word in SEPARATORS:
                if command and command[0] == "dagpar":
                    found.append(command[1:])
                command = []
            elif word in {">", ">>", "<", "2>", "<<<"} or (i and words[i - 1] in {">", ">>", "<"}):
                continue  # redirections are the shell's, not dagpar's
            elif not command and re.fullmatch(r"\w+=.*", word):
                continue  # VAR=value before a command
            else:
                command.append(word)
    return found


def validate(args: list[str]) -> str:
    """Parse ``dagpar ARGS`` with dagpar's own click commands; returns the command path.

    :raises click.UsageError: for an unknown subcommand, option or a bad option value.
    """
    group: click.Command = cli
    path = ["dagpar"]
    parent = click.Context(cli, info_name="dagpar")
    while isinstance(group, click.Group):
        if not args:
            raise click.UsageError(f"{' '.join(path)} needs a subcommand")
        name, args = args[0], args[1:]
        sub = group.get_command(parent, name)
        if sub is None:
            raise click.UsageError(f"no such command: {' '.join([*path, name])}")
        path.append(name)
        group = sub
        if isinstance(sub, click.Group):
            parent = click.Context(sub, info_name=name, parent=parent)
    with group.make_context(path[-1], list(args), parent=parent):
        pass
    return " ".join(path)


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _commands(path: Path) -> list[list[str]]:
    return [cmd for text in _shell_texts(_load(path)) for cmd in dagpar_commands(text)]


def test_there_are_recipes_for_every_ci_system() -> None:
    names = {p.name for p in RECIPES}
    assert {"github-actions.yml", "gitlab-ci.yml", "buildkite.yml", "circleci.yml"} <= names
    assert ACTION.is_file()


@pytest.mark.parametrize("path", [*RECIPES, ACTION], ids=lambda p: p.name)
def test_every_dagpar_command_exists(path: Path) -> None:
    commands = _commands(path)
    assert commands, f"{path.name} runs no dagpar command"
    used = set()
    for args in commands:
        try:
            used.add(validate(args))
        except click.ClickException as exc:
            pytest.fail(f"{path.name}: dagpar {shlex.join(args)}: {exc.format_message()}")
    shell = "\n".join(_shell_texts(_load(path)))
    if not any(re.search(r"/dagpar@", str(u)) for u in _values(_load(path), "uses")):
        # Unless dagpar's composite action does it (checked on action.yml itself): run the
        # node's shard and keep the timings it wrote (a sharded run leaves the store alone).
        assert "dagpar check" in used
        assert f".dagpar/{SHARD_GLOB}" in shell or path == ACTION
    if path != ACTION:
        # A recipe closes the loop: the next run plans with every node's timings.
        assert {"dagpar timings merge", "dagpar junit merge"} <= used, used
        merges = [c for c in commands if c[:2] == ["timings", "merge"]]
        assert all(arg.endswith(SHARD_GLOB) for c in merges for arg in c[2:]), merges


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("an unknown option", ["check", "--shards", "2/4"]),
        ("an unknown subcommand", ["timings", "upload", "x.json"]),
        ("a missing option value", ["junit", "merge", "a.xml", "-o"]),
        ("a missing required option", ["junit", "merge", "a.xml"]),
        ("a bad option type", ["check", "--retries", "many"]),
    ],
)
def test_validation_rejects_commands_that_do_not_exist(name: str, bad: list[str]) -> None:
    with pytest.raises(click.ClickException):
        validate(bad)


def test_extraction_finds_commands_inside_shell_constructs() -> None:
    script = """
        python -m pip install dagpar  # not a dagpar command
        dagpar check --junit-xml "reports/$$BUILDKITE_PARALLEL_JOB/j.xml" || status=$$?
        mkdir -p out && dagpar timings export -o out/t.json > /dev/null
        if true; then FOO=1 dagpar junit merge -o j.xml \\
            a.xml b.xml; fi
        dagpar check --shard ${{ matrix.shard }}/4 "${filters[@]}"
    """
    assert dagpar_commands(script) == [
        ["check", "--junit-xml", "reports/1/j.xml"],
        ["timings", "export", "-o", "out/t.json"],
        ["junit", "merge", "-o", "j.xml", "a.xml", "b.xml"],
        ["check", "--shard", "1/4"],
    ]


def _shard_variables() -> set[str]:
    return {name for index, total, _ in CI_SHARD_VARIABLES for name in (index, total)}


@pytest.mark.parametrize(
    ("recipe", "key", "variables"),
    [
        ("gitlab-ci.yml", "parallel", {"CI_NODE_INDEX", "CI_NODE_TOTAL"}),
        (
            "buildkite.yml",
            "parallelism",
            {"BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT"},
        ),
        ("circleci.yml", "parallelism", {"CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL"}),
    ],
)
def test_parallel_recipes_rely_on_shard_detection(
    recipe: str, key: str, variables: set[str]
) -> None:
    """Four nodes, and no --shard: dagpar must read these variables itself."""
    doc = _load(ROOT / "docs" / "ci" / recipe)
    counts = list(_values(doc, key))
    assert counts == [4], counts
    assert variables <= _shard_variables()
    checks = [c for c in _commands(ROOT / "docs" / "ci" / recipe) if c[0] == "check"]
    assert checks and all("--shard" not in c for c in checks)


def _values(node: Any, key: str) -> Iterator[Any]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _values(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from _values(v, key)


def test_github_recipe_runs_four_shards_with_cache_uploads_and_a_merge_job() -> None:
    doc = _load(ROOT / "docs" / "ci" / "github-actions.yml")
    test, merge = doc["jobs"]["test"], doc["jobs"]["merge"]
    shards = test["strategy"]["matrix"]["shard"]
    assert shards == [1, 2, 3, 4]
    uses = [step.get("uses", "") for step in test["steps"]]
    assert any(u.startswith("actions/cache") for u in uses)
    assert any(u.startswith("actions/upload-artifact") for u in uses)
    runs = " ".join(step.get("run", "") for step in test["steps"])
    assert "--shard ${{ matrix.shard }}/4" in runs
    assert merge["needs"] == "test" and "always()" in merge["if"]
    merge_uses = [step.get("uses", "") for step in merge["steps"]]
    assert any(u.startswith("actions/download-artifact") for u in merge_uses)
    assert any(u.startswith("actions/cache/save") for u in merge_uses)
    # What a shard uploads is what the merge job reads.
    assert any(f"cp .dagpar/{SHARD_GLOB} reports/" in step.get("run", "") for step in test["steps"])


def test_action_is_a_composite_with_the_documented_inputs() -> None:
    action = _load(ACTION)
    assert action["runs"]["using"] == "composite"
    assert {"shard", "filter", "junit-xml", "args"} <= set(action["inputs"])
    steps = action["runs"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/setup-python") for u in uses)
    assert any(u.startswith("actions/cache/restore") for u in uses)
    for step in steps:
        if "run" in step:
            assert step.get("shell") == "bash", "composite run steps must name their shell"
            # Inputs go through the environment: pasting them into the script would let a value
            # inject a command.
            assert "${{ inputs." not in step["run"], step["run"]
    check = next(s for s in steps if "dagpar check" in s.get("run", ""))
    assert '--shard "$INPUT_SHARD"' in check["run"]
    assert check["env"]["INPUT_SHARD"] == "${{ inputs.shard }}"
    keep = next(s for s in steps if s.get("id") == "export")
    assert keep.get("if") == "always()"
    assert 'name="timings-shard-${INPUT_SHARD//\\//-of-}.json"' in keep["run"]


def test_shard_files_are_named_as_the_recipes_expect() -> None:
    name = shard_file(Path("w"), (2, 4)).name
    assert fnmatch.fnmatch(name, SHARD_GLOB)
    # The action derives the name from its shard input the way bash's ${v//\//-of-} does.
    assert name == "timings-shard-" + "2/4".replace("/", "-of-") + ".json"
