"""A third-party dagpar runner plugin: every ``*.sh`` file under the source is one test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dagpar_cli import Status, TestCase, TestResult, hookimpl
from dagpar_cli.model import RunnerCommand

NAME = "scripts"


@hookimpl
def dagpar_register_toolchains(registry):
    registry.add(NAME, "dagpar_scripts.scripts")


@hookimpl
def dagpar_runner_collect(spec, host):
    if spec.name != NAME:
        return None
    root = spec.source_dir
    return [TestCase(p.relative_to(root).as_posix(), "run") for p in sorted(root.rglob("*.sh"))]


@hookimpl
def dagpar_runner_command(spec, selection):
    if spec.name != NAME:
        return None
    files = [item[0] for item in selection.items]
    report = "{report_dir}/scripts.json"
    return [RunnerCommand(argv=(sys.executable, "-m", "dagpar_scripts.run", report, *files))]


@hookimpl
def dagpar_runner_parse(spec, report_dir, outcome):
    if spec.name != NAME:
        return None
    report = Path(report_dir) / "scripts.json"
    if not report.exists():
        return []
    return [
        TestResult(
            path=path,
            name="run",
            status=Status.PASSED if code == 0 else Status.FAILED,
            seconds=seconds,
            message="" if code == 0 else f"exit status {code}",
        )
        for path, code, seconds in json.loads(report.read_text())
    ]
