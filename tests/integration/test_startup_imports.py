"""dagpar's fixed cost per run: what a run does not need, it does not import.

Every case runs the real command in a subprocess (``python -m dagpar_cli``, with a real pytest
suite for the run) and reads the modules the process had loaded when it exited. Importing the
Docker SDK, the OpenTelemetry SDK, the Redis queue or the YAML parser costs tens of
milliseconds of CPU each, on every ``dagpar`` start, for runs that use none of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

#: Runs ``python -m dagpar_cli ARGS...`` and, at exit, writes the value of the expression
#: $AT_EXIT to $AT_EXIT_OUT (after the command's own exit handlers: atexit runs
#: last-registered first).
WRAPPER = """
import atexit, gc, json, os, runpy, sys
atexit.register(
    lambda: open(os.environ["AT_EXIT_OUT"], "w").write(str(eval(os.environ["AT_EXIT"])))
)
sys.argv = ["dagpar", *sys.argv[1:]]
runpy.run_module("dagpar_cli", run_name="__main__", alter_sys=True)
"""

#: Only for the docker executor.
DOCKER = ("docker", "dagpar_cli.execution.docker", "dagpar_cli.execution.docker_pool")
#: Only under ``--queue``.
QUEUE = ("redis", "dagpar_cli.queue.build", "dagpar_cli.queue.client", "dagpar_cli.queue.scheduler")
#: Only for a run that records traces.
OTEL = ("opentelemetry", "dagpar_cli.reporting.otel")
#: Only when a ``dagpar.yaml`` is read.
YAML = ("yaml",)
#: Only for a run of that runner (its registration and detection load no more).
OTHER_RUNNERS = (
    "dagpar_plugins.go.command",
    "dagpar_plugins.go.report",
    "dagpar_plugins.go.source",
    "dagpar_plugins.go.stream",
    "dagpar_plugins.jest.command",
    "dagpar_plugins.jest.report",
    "dagpar_plugins.jest.stream",
)
#: Only when the report is asked for (``--junit-xml``, ``--report-html``).
REPORTS = ("dagpar_cli.reporting.junit", "dagpar_cli.reporting.html")
#: Never where the entry points lie in plain directories (dagpar reads them itself).
METADATA = ("importlib.metadata",)


def _at_exit(
    tmp_path: Path, expression: str, *args: str, env: Mapping[str, str] | None = None
) -> str:
    """What *expression* was as ``dagpar ARGS...`` exited (tracing on unless *env* says)."""
    out = tmp_path / "at-exit.txt"
    bin_dir = str(Path(sys.executable).parent)
    environ = {k: v for k, v in os.environ.items() if k != "OTEL_SDK_DISABLED"}
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **environ,
            **(env or {}),
            "AT_EXIT": expression,
            "AT_EXIT_OUT": str(out),
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        },
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out.read_text()


def _modules(tmp_path: Path, *args: str, env: Mapping[str, str] | None = None) -> set[str]:
    """The modules ``dagpar ARGS...`` had loaded at exit (tracing on unless *env* says)."""
    return set(json.loads(_at_exit(tmp_path, "json.dumps(sorted(sys.modules))", *args, env=env)))


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The modules of *modules* that are one of *names* or inside one of them."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def _suite(root: Path) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    (root / "tests" / "test_one.py").write_text("def test_a():\n    pass\n")
    (root / "tests" / "test_two.py").write_text("def test_b():\n    pass\n")
    return root


def test_version_imports_no_sdk(tmp_path: Path) -> None:
    modules = _modules(tmp_path, "--version")
    assert _loaded(modules, DOCKER + QUEUE + OTEL + YAML + METADATA) == []


def test_local_check_imports_no_docker_queue_or_yaml(tmp_path: Path) -> None:
    root = _suite(tmp_path / "ws")
    modules = _modules(tmp_path, "check", "-C", str(root), "--filter", "tests/test_one.py")
    assert _loaded(modules, DOCKER + QUEUE + YAML + METADATA + OTHER_RUNNERS + REPORTS) == []
    # The run is traced as always: the SDK is loaded for it, and the record is written.
    assert _loaded(modules, OTEL)
    assert list((root / ".dagpar" / "traces").glob("*.jsonl"))


def test_check_without_tracing_imports_no_otel(tmp_path: Path) -> None:
    root = _suite(tmp_path / "ws")
    modules = _modules(tmp_path, "check", "-C", str(root), env={"OTEL_SDK_DISABLED": "true"})
    assert _loaded(modules, DOCKER + QUEUE + OTEL + YAML) == []
    assert not (root / ".dagpar" / "traces").exists()


def test_reports_asked_for_are_written(tmp_path: Path) -> None:
    root = _suite(tmp_path / "ws")
    junit, html = tmp_path / "junit.xml", tmp_path / "report.html"
    args = ("check", "-C", str(root), "--junit-xml", str(junit), "--report-html", str(html))
    modules = _modules(tmp_path, *args)
    assert _loaded(modules, REPORTS) == sorted(REPORTS)
    assert "test_a" in junit.read_text() and "test_b" in html.read_text()


def test_exit_skips_the_final_garbage_collection(tmp_path: Path) -> None:
    """Everything dagpar holds at exit is frozen: the interpreter's last collection, tens of
    milliseconds after the last slice, does not walk it."""
    root = _suite(tmp_path / "ws")
    # How many objects the final garbage collection skips.
    frozen = _at_exit(tmp_path, "gc.get_freeze_count()", "check", "-C", str(root))
    assert int(frozen) > 10_000


def test_runner_packages_still_export_their_parts() -> None:
    """The names the Go and Jest packages re-export resolve, lazily, to their modules' own."""
    from dagpar_plugins import go, jest
    from dagpar_plugins.go import command as go_command
    from dagpar_plugins.jest import stream as jest_stream

    assert go.compile_commands is go_command.compile_commands
    assert jest.JestStream is jest_stream.JestStream
    for package in (go, jest):
        for name in package.__all__:
            assert getattr(package, name) is not None
    try:
        go.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("go.no_such_name resolved")
