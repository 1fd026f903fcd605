"""A third-party dagpar runner plugin: every ``*.sh`` file under the source is one test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dagpar_cli import (
    REPORT_DIR_PLACEHOLDER,
    Runner,
    RunnerCommand,
    Status,
    TestCase,
    TestResult,
    hookimpl,
)

NAME = "scripts"


class ScriptsRunner(Runner):
    """Runs shell scripts; a script's exit status is its test's outcome."""

    name = NAME

    def collect(self, spec, host):
        root = spec.source_dir
        return [TestCase(p.relative_to(root).as_posix(), "run") for p in sorted(root.rglob("*.sh"))]

    def command(self, spec, selection):
        files = [item[0] for item in selection.items]
        report = f"{REPORT_DIR_PLACEHOLDER}/scripts.json"
        return [RunnerCommand(argv=(sys.executable, "-m", "dagpar_scripts.run", report, *files))]

    def parse(self, spec, report_dir, outcome):
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


@hookimpl
def dagpar_register_runners(registry):
    registry.add(ScriptsRunner())


@hookimpl
def dagpar_register_toolchains(registry):
    registry.add(NAME, "dagpar_scripts.scripts")
