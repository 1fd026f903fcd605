"""Call chains (``dagpar call INSTANCE FUNCTION [--arg V]... [FUNCTION ...]``): parsed, checked
against the types before anything runs, then called step by step with converted arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagpar_cli import Directory, object_type
from dagpar_cli.callchain import Step, call_chain, parse_chain
from dagpar_cli.errors import UsageError

#: Every call the toolchain below received, in order.
CALLS: list[tuple[str, dict[str, object]]] = []


@object_type
class Report:
    """What ``build`` returns: a field and a function the chain can go on with."""

    title: str

    def shout(self, times: int = 1) -> str:
        CALLS.append(("shout", {"times": times}))
        return self.title.upper() * times


@object_type
class Tools:
    source: Directory
    label: str = "tools"

    def build(
        self,
        target: str,
        jobs: int = 1,
        ratio: float = 1.0,
        verbose: bool = False,
        tags: list[str] | None = None,
        where: Directory | None = None,
        pick: str | None = None,
    ) -> Report:
        CALLS.append(
            (
                "build",
                {
                    "target": target,
                    "jobs": jobs,
                    "ratio": ratio,
                    "verbose": verbose,
                    "tags": tags,
                    "where": where,
                    "pick": pick,
                },
            )
        )
        return Report(title=f"{target}:{jobs}")

    def number(self) -> int:
        return 7


@pytest.fixture
def tools(tmp_path: Path) -> Tools:
    CALLS.clear()
    return Tools(source=Directory(tmp_path, ""))


# -------------------------------------------------------------------------------- parsing


def test_a_chain_splits_into_instance_and_steps_with_their_flags() -> None:
    instance, steps = parse_chain(
        ["ci", "build", "--target", "app", "--jobs=4", "--tags", "a", "shout", "--times", "2"]
    )
    assert instance == "ci"
    assert steps == [
        Step("build", (("target", "app"), ("jobs", "4"), ("tags", "a"))),
        Step("shout", (("times", "2"),)),
    ]


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ([], "needs INSTANCE FUNCTION"),
        (["--verbose"], "expected an instance name first"),
        (["ci"], "name a function; `dagpar functions ci` lists them"),
        (["ci", "--jobs", "2", "build"], "--jobs comes before any function"),
        (["ci", "build", "--jobs"], "--jobs needs a value"),
    ],
)
def test_malformed_chains_are_usage_errors_that_say_what_to_write(
    tokens: list[str], message: str
) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_chain(tokens)


# -------------------------------------------------------------------------------- calling


def test_arguments_are_converted_to_the_parameter_types(tools: Tools, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _, steps = parse_chain(
        [
            "ci",
            "build",
            "--target=app",
            "--jobs",
            "4",
            "--ratio",
            "0.5",
            "--verbose",
            "yes",
            "--tags",
            "a,b",
            "--tags",
            "c",
            "--where",
            "sub",
            "--pick",
            "x",
        ]
    )
    report = call_chain(tools, steps, tmp_path)
    assert report == Report(title="app:4")
    ((name, kwargs),) = CALLS
    assert name == "build"
    assert kwargs == {
        "target": "app",
        "jobs": 4,
        "ratio": 0.5,
        "verbose": True,
        "tags": ["a", "b", "c"],
        "where": Directory((tmp_path / "sub").resolve(), "sub"),
        "pick": "x",
    }


def test_each_step_runs_on_the_previous_steps_value(tools: Tools, tmp_path: Path) -> None:
    _, steps = parse_chain(["ci", "build", "--target", "ab", "shout", "--times", "2"])
    assert call_chain(tools, steps, tmp_path) == "AB:1AB:1"
    assert [name for name, _ in CALLS] == ["build", "shout"]


def test_a_field_can_be_a_step(tools: Tools, tmp_path: Path) -> None:
    _, steps = parse_chain(["ci", "build", "--target", "app", "title"])
    assert call_chain(tools, steps, tmp_path) == "app:1"
    _, steps = parse_chain(["ci", "label"])
    assert call_chain(tools, steps, tmp_path) == "tools"


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (["ci", "biuld"], "Tools has no function 'biuld'; did you mean 'build'?"),
        (["ci", "build", "--taget", "x"], "Tools.build has no argument --taget; did you mean"),
        (["ci", "build"], "Tools.build needs --target"),
        (["ci", "label", "--x", "1"], "field 'label' takes no arguments"),
        (["ci", "number", "shout"], "returns a value without functions"),
        (["ci", "build", "--target", "a", "--jobs", "many"], "--jobs expects int, got 'many'"),
        (["ci", "build", "--target", "a", "--verbose", "perhaps"], "--verbose expects bool"),
        (["ci", "build", "--target", "a", "--target", "b"], "--target given 2 times"),
        (["ci", "build", "--target", "a", "--where", "missing"], "--where missing: no such dir"),
    ],
)
def test_mistakes_are_reported_before_anything_runs(
    tools: Tools, tmp_path: Path, tokens: list[str], message: str
) -> None:
    _, steps = parse_chain(tokens)
    with pytest.raises(UsageError) as info:
        call_chain(tools, steps, tmp_path)
    assert message in str(info.value)
    assert CALLS == []


def test_a_misspelt_second_step_fails_before_the_first_runs(tools: Tools, tmp_path: Path) -> None:
    _, steps = parse_chain(["ci", "build", "--target", "app", "shuot"])
    with pytest.raises(UsageError, match="Report has no function 'shuot'; did you mean 'shout'"):
        call_chain(tools, steps, tmp_path)
    assert CALLS == []


def test_the_main_object_must_be_an_object_type(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not an @object_type"):
        call_chain(object(), [Step("build")], tmp_path)
