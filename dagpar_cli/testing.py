"""A pytest plugin for testing dagpar and third-party dagpar plugins.

Load it with ``pytest_plugins = ["dagpar_cli.testing"]``. It provides:

- markers ``go``, ``node``, ``docker``, ``chromium``, ``redis``: the test needs that tool; it
  skips with the reason when the tool is missing, and fails instead when
  ``DAGPAR_REQUIRE_TOOLS=1`` (CI);
- ``dagpar_run``: runs the ``dagpar`` CLI in-process and returns its exit code and output;
- ``make_workspace``: writes a workspace (``dagpar.yaml``, toolchain files, tests) from a dict;
- :class:`TailRecorder`, a ``choose`` to call a runner's ``hand_over_tail`` with;
- :class:`FakeRunnerHost`, :class:`LocalRunnerHost` and :func:`run_runner_commands`, for a
  runner plugin's own tests (see *Runner plugins* below);
- :class:`FakeExecutor`, an in-memory executor answering commands with scripted outcomes, and the
  ``fake_executor`` fixture that puts one behind ``dagpar_run``;
- an autouse fixture that keeps the user's environment (CI shard variables, ``OTEL_*``) out.

The checks behind the tool markers look only at ``PATH`` and the Docker engine; a project that
needs more before a tool counts as present (dagpar's own suite wants its Jest install) adds a
``pytest_runtest_setup`` of its own and calls :func:`skip_missing_tool`.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from dagpar_cli import REPORT_DIR_PLACEHOLDER, Outcome, RunnerCommand, RunnerSpec, TestCase
from dagpar_cli.execution.fake import (
    FakeCall,
    FakeExecutor,
    FakeExecutorPlugin,
    FakeSession,
)

#: The variable ``fake_executor`` adds its plugin to (``dagpar_cli.pluginmanager.PLUGINS_ENV``).
PLUGINS_ENV = "DAGPAR_PLUGINS"

__all__ = [
    "REQUIRE_TOOLS_ENV",
    "DagparResult",
    "FakeCall",
    "FakeExecutor",
    "FakeRunnerHost",
    "FakeSession",
    "HostCall",
    "LocalRunnerHost",
    "RunnerRun",
    "TailRecorder",
    "chromium_binary",
    "run_runner_commands",
    "skip_missing_tool",
    "tool_missing",
    "write_tree",
]

#: When set to 1, a test whose tool is missing fails instead of skipping.
REQUIRE_TOOLS_ENV = "DAGPAR_REQUIRE_TOOLS"


@functools.cache
def tool_missing(tool: str) -> str | None:
    """Why *tool* (``go``, ``node``, ``docker``, ``chromium``, ``redis``) cannot be used here, or
    None (``redis`` is ``redis-server``, which queue-mode tests start on a free port)."""
    if tool == "go":
        return None if shutil.which("go") else "the go toolchain is not on PATH"
    if tool == "node":
        return None if shutil.which("node") else "node is not on PATH"
    if tool == "docker":
        if not shutil.which("docker"):
            return "the docker client is not on PATH"
        try:
            proc = subprocess.run(
                ["docker", "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                timeout=20,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"no Docker engine answers: {exc}"
        if proc.returncode != 0:
            return "no Docker engine answers (start dockerd)"
        return None
    if tool == "chromium":
        return None if chromium_binary() else "no chromium on PATH (apt-get install chromium)"
    if tool == "redis":
        if shutil.which("redis-server"):
            return None
        return "no redis-server on PATH (apt-get install redis-server)"
    raise ValueError(f"unknown tool marker {tool!r}")


def chromium_binary() -> str | None:
    """The headless-capable Chromium or Chrome on PATH, if any (HTML report tests render in it)."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, in CI, fail) tests whose tool marker names a missing tool."""
    for tool in ("go", "node", "docker", "chromium", "redis"):
        if item.get_closest_marker(tool) is None:
            continue
        reason = tool_missing(tool)
        if reason is not None:
            skip_missing_tool(tool, reason)


def skip_missing_tool(tool: str, reason: str) -> NoReturn:
    """Skip the running test because *tool* is missing, or fail it under ``DAGPAR_REQUIRE_TOOLS=1``.

    :param tool: the marker's name (``node``).
    :param reason: what is missing and how to install it.
    """
    if os.environ.get(REQUIRE_TOOLS_ENV) == "1":
        pytest.fail(f"{tool} is required here ({REQUIRE_TOOLS_ENV}=1): {reason}")
    pytest.skip(reason)


#: Variables that would change dagpar's behaviour if they leaked in from the developer's shell.
_ISOLATED_PREFIXES = ("CIRCLE_NODE", "BUILDKITE_PARALLEL", "CI_NODE", "OTEL_", "DAGPAR_")
_KEPT = {REQUIRE_TOOLS_ENV}


@pytest.fixture(autouse=True)
def _dagpar_isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep CI shard variables, ``OTEL_*`` and ``DAGPAR_*`` from the outer shell out of tests."""
    for name in list(os.environ):
        if name.startswith(_ISOLATED_PREFIXES) and name not in _KEPT:
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    yield


@dataclass(frozen=True, slots=True)
class DagparResult:
    """What one ``dagpar`` invocation did."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """Standard output parsed as JSON (for ``--json``)."""
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"exit {self.exit_code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@pytest.fixture
def dagpar_run() -> Callable[..., DagparResult]:
    """Run ``dagpar ARGS...`` in-process; returns a :class:`DagparResult`."""
    from click.testing import CliRunner

    from dagpar_cli.cli import cli

    def run(*args: str | os.PathLike[str]) -> DagparResult:
        runner = CliRunner()
        result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
        return DagparResult(result.exit_code, result.stdout, result.stderr)

    return run


@dataclass
class TailRecorder:
    """A ``choose`` for ``Runner.hand_over_tail`` that takes a fixed count and records its calls.

    Each call appends ``(pending, started)`` to :attr:`calls` and the running test (with its
    seconds so far, or None) to :attr:`running`.
    """

    take: int
    calls: list[tuple[list[TestCase], int]] = field(default_factory=list)
    running: list[tuple[TestCase, float] | None] = field(default_factory=list)

    def __call__(
        self,
        pending: Sequence[TestCase],
        started: int,
        running: tuple[TestCase, float] | None = None,
    ) -> int:
        self.calls.append((list(pending), started))
        self.running.append(running)
        return self.take


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    """Write *files* (relative path → text, dedented) under *root*; returns *root*."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


@pytest.fixture
def make_workspace(tmp_path: Path) -> Callable[[Mapping[str, str]], Path]:
    """Write a workspace from ``{relative path: text}`` into a fresh directory."""
    counter = {"n": 0}

    def make(files: Mapping[str, str]) -> Path:
        counter["n"] += 1
        return write_tree(tmp_path / f"ws{counter['n']}", files)

    return make


# --------------------------------------------------------------------------------------------
# Runner plugins: a fake host for listing, and running compiled commands as the engine does
# --------------------------------------------------------------------------------------------


class LocalRunnerHost:
    """A :class:`RunnerHost` that runs commands as host subprocesses in *cwd*."""

    def __init__(self, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.cwd = cwd
        self.env = dict(env or {})

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """Run *argv* in ``self.cwd``; see :meth:`RunnerHost.run`."""
        full_env = {**os.environ, **self.env, **(env or {})}
        start = time.monotonic()
        try:
            proc = subprocess.run(
                list(argv),
                cwd=self.cwd,
                env=full_env,
                capture_output=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            return Outcome(exit_code=127, stderr=str(exc), not_started=True)
        except PermissionError as exc:
            return Outcome(exit_code=126, stderr=str(exc), not_started=True)
        except subprocess.TimeoutExpired as exc:
            return Outcome(
                exit_code=-9,
                stdout=_text(exc.stdout),
                stderr=_text(exc.stderr),
                seconds=time.monotonic() - start,
                timed_out=True,
            )
        return Outcome(
            exit_code=proc.returncode,
            stdout=_text(proc.stdout),
            stderr=_text(proc.stderr),
            seconds=time.monotonic() - start,
        )


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class HostCall:
    """One command a :class:`FakeRunnerHost` was asked to run."""

    argv: list[str]
    env: dict[str, str]
    timeout: float | None


class FakeRunnerHost:
    """A :class:`~dagpar_cli.RunnerHost` that answers with a canned outcome and records calls.

    For unit tests of ``Runner.collect`` against recorded runner output::

        host = FakeRunnerHost(Outcome(exit_code=0, stdout=recorded))
        tests = MyRunner().collect(spec, host)
        assert host.argv[:2] == ["myrunner", "--list"]

    :param outcome: what every command returns (exit code 0 and no output by default).
    :param answer: computes the outcome from the command line instead, for runners that list in
        more than one command.
    """

    def __init__(
        self,
        outcome: Outcome | None = None,
        *,
        answer: Callable[[Sequence[str]], Outcome] | None = None,
    ) -> None:
        self.outcome = outcome if outcome is not None else Outcome(exit_code=0)
        self._answer = answer
        #: Every command run so far, in order.
        self.calls: list[HostCall] = []

    @property
    def argv(self) -> list[str]:
        """The command line of the last call (``[]`` before the first)."""
        return self.calls[-1].argv if self.calls else []

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Outcome:
        """Record the call and return the canned outcome."""
        self.calls.append(HostCall(list(argv), dict(env or {}), timeout))
        return self._answer(argv) if self._answer is not None else self.outcome


@dataclass(frozen=True, slots=True)
class RunnerRun:
    """What :func:`run_runner_commands` did: one outcome per command, in order."""

    outcomes: list[Outcome]

    @property
    def combined(self) -> Outcome:
        """The outcomes combined as the engine passes them to ``Runner.parse``."""
        return Outcome(
            exit_code=max((o.exit_code for o in self.outcomes), default=0),
            stdout="".join(o.stdout for o in self.outcomes),
            stderr="".join(o.stderr for o in self.outcomes),
            seconds=sum(o.seconds for o in self.outcomes),
        )


def run_runner_commands(
    commands: Sequence[RunnerCommand],
    spec: RunnerSpec,
    report_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
    check: bool = True,
) -> RunnerRun:
    """Run a runner's compiled commands as the engine does on the local executor.

    Substitutes :data:`~dagpar_cli.REPORT_DIR_PLACEHOLDER` with *report_dir* in every command's
    ``files`` (names and contents), ``env`` and ``argv``; writes the files; runs the commands one
    after another in ``spec.source_dir`` with the caller's environment plus the command's (plus
    *env*); and writes ``stdout_file``. Parse the result with
    ``runner.parse(spec, report_dir, run.combined)``.

    :param commands: what ``Runner.command`` returned.
    :param spec: the runner spec the commands were compiled for.
    :param report_dir: the slice's report directory (created when missing).
    :param env: more environment variables for every command.
    :param timeout: seconds each command may take.
    :param check: fail (``AssertionError``, with the command's output) when a command exits
        with a code outside its ``ok_exit_codes``.
    """
    report_dir.mkdir(parents=True, exist_ok=True)
    where = str(report_dir.resolve())

    def sub(value: str) -> str:
        return value.replace(REPORT_DIR_PLACEHOLDER, where)

    outcomes: list[Outcome] = []
    for command in commands:
        for name, content in command.files.items():
            target = report_dir / name.replace(REPORT_DIR_PLACEHOLDER, "").lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(sub(content), encoding="utf-8")
        full_env = {**os.environ, **{k: sub(v) for k, v in command.env.items()}, **(env or {})}
        start = time.monotonic()
        proc = subprocess.run(
            [sub(a) for a in command.argv],
            cwd=spec.source_dir,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check:
            assert proc.returncode in command.ok_exit_codes, (
                f"{command.argv[0]} exited with {proc.returncode}:\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        if command.stdout_file:
            stdout_name = command.stdout_file.replace(REPORT_DIR_PLACEHOLDER, "").lstrip("/")
            stdout_path = report_dir / stdout_name
            stdout_path.write_text(proc.stdout, encoding="utf-8")
        outcomes.append(
            Outcome(
                exit_code=proc.returncode,
                stdout=proc.stdout,
                stderr=proc.stderr,
                seconds=time.monotonic() - start,
            )
        )
    return RunnerRun(outcomes)


# --------------------------------------------------------------------------------------------
# FakeExecutor: the executor contract in memory (dagpar_cli.execution.fake), behind dagpar_run
# --------------------------------------------------------------------------------------------

#: The executor of the running ``fake_executor`` fixture.
_installed_executor: FakeExecutor | None = None


class InstalledFakeExecutor(FakeExecutorPlugin):
    """The plugin the ``fake_executor`` fixture names in ``DAGPAR_PLUGINS``: it answers with
    the fixture's executor."""

    def __init__(self) -> None:
        super().__init__(None)

    def current(self) -> FakeExecutor | None:
        """The running fixture's executor, if any."""
        return _installed_executor


@pytest.fixture
def fake_executor(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeExecutor]:
    """A :class:`FakeExecutor` every ``dagpar_run`` of the test runs its slices on.

    It is loaded through ``DAGPAR_PLUGINS``: a test that sets that variable itself should add
    to it (``f"{os.environ['DAGPAR_PLUGINS']},myplugin"``) rather than replace it.
    """
    global _installed_executor
    executor = FakeExecutor()
    spec = f"{__name__}:{InstalledFakeExecutor.__name__}"
    current = os.environ.get(PLUGINS_ENV, "")
    monkeypatch.setenv(PLUGINS_ENV, f"{current},{spec}" if current else spec)
    _installed_executor = executor
    try:
        yield executor
    finally:
        _installed_executor = None
