"""Queue mode's command line: ``--queue``, ``--build`` (or the CI's build id), ``--lease``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from projects import LINT_TOOLCHAIN as TOOLCHAIN  # type: ignore[import-not-found]

from dagpar_cli.errors import UsageError
from dagpar_cli.queue.options import detect_build, parse_queue_options, redacted
from dagpar_cli.testing import DagparResult

ONE = {"dagpar.yaml": "toolchains:\n  lint: {use: ci/lint.py}\n", "ci/lint.py": TOOLCHAIN}
URL = "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("env", "build"),
    [
        ({"GITHUB_RUN_ID": "77", "GITHUB_RUN_ATTEMPT": "2"}, "github-77-2"),
        ({"CI_PIPELINE_ID": "5150"}, "gitlab-5150"),
        ({"BUILDKITE_BUILD_ID": "0190-ab"}, "buildkite-0190-ab"),
        ({"CIRCLE_WORKFLOW_ID": "wf-1"}, "circleci-wf-1"),
    ],
)
def test_build_comes_from_the_ci_variables(env: dict[str, str], build: str) -> None:
    assert detect_build(env) is not None
    options = parse_queue_options(
        URL, build=None, worker=None, lease=None, shard_given=False, env=env
    )
    assert options is not None
    assert options.build == build
    assert options.lease == 30.0
    assert options.worker  # the host and process by default


def test_explicit_build_worker_and_lease_win() -> None:
    options = parse_queue_options(
        "rediss://:s3cret@cache.example:6380/2",
        build="b1",
        worker="node-a",
        lease=3,
        shard_given=False,
        env={"CI_PIPELINE_ID": "9"},
    )
    assert options is not None
    assert (options.build, options.worker, options.lease) == ("b1", "node-a", 3)


def test_no_queue_no_options() -> None:
    assert parse_queue_options(None, build=None, worker=None, lease=None, shard_given=True) is None


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"url": URL, "env": {}}, "--queue needs --build ID (or DAGPAR_BUILD)"),
        ({"url": URL, "build": "b", "shard_given": True}, "--queue and --shard exclude"),
        ({"url": "http://x:1/0", "build": "b"}, "expected redis://HOST:PORT/DB"),
        ({"url": "redis://x:port/0", "build": "b"}, "the port must be a number"),
        ({"url": URL, "build": "b", "lease": 0.0}, "--lease 0: expected seconds"),
        ({"url": URL, "build": "b", "lease": float("nan")}, "--lease nan"),
        ({"url": None, "build": "b"}, "--build needs --queue URL"),
    ],
)
def test_bad_queue_flags_are_usage_errors(kwargs: dict[str, object], fragment: str) -> None:
    args: dict[str, object] = {"build": None, "worker": None, "lease": None, "shard_given": False}
    args.update(kwargs)
    url = args.pop("url")
    with pytest.raises(UsageError, match=None) as info:
        parse_queue_options(url, **args)  # type: ignore[arg-type]
    assert fragment in info.value.message


def test_passwords_are_not_printed() -> None:
    assert redacted("redis://:hunter2@h:1/0") == "redis://:***@h:1/0"
    assert redacted("rediss://me:hunter2@h:1/0") == "rediss://me:***@h:1/0"
    assert redacted(URL) == URL


def _one_error_line(result: DagparResult, *fragments: str) -> None:
    assert result.exit_code == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result
    for fragment in fragments:
        assert fragment in lines[0], result


def test_cli_refuses_queue_without_build(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(ONE)
    result = dagpar_run("check", "-C", ws, "--queue", URL)
    _one_error_line(result, "--queue needs --build ID")


def test_cli_refuses_queue_with_shard_and_reads_the_environment(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = make_workspace(ONE)
    monkeypatch.setenv("DAGPAR_QUEUE", URL)
    monkeypatch.setenv("DAGPAR_BUILD", "b7")
    result = dagpar_run("call", "lint", "all", "-C", ws, "--shard", "1/2")
    _one_error_line(result, "--queue and --shard exclude each other")


def test_cli_refuses_retries_with_queue_and_retry_failed_without(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(ONE)
    result = dagpar_run("check", "-C", ws, "--queue", URL, "--build", "b", "--retries", "2")
    _one_error_line(result, "--retries does not combine with --queue yet")
    result = dagpar_run("check", "-C", ws, "--retry-failed")
    _one_error_line(result, "--retry-failed needs --queue URL")


def test_an_unreachable_queue_is_one_line_and_exit_4(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace({**ONE, "a.txt": "a\n"})
    # Port 9 on the loopback: nothing listens there (the discard service is never enabled).
    result = dagpar_run("check", "-C", ws, "--queue", "redis://:pw@127.0.0.1:9/0", "--build", "b")
    assert result.exit_code == 4, result
    lines = [line for line in result.stderr.splitlines() if line.startswith("dagpar: error")]
    assert len(lines) == 1, result
    assert "queue redis://:***@127.0.0.1:9/0: cannot reach the queue" in lines[0], result
    assert "pw" not in result.stderr
