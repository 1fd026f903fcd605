"""A test that prints 250 MB leaves dagpar's memory bounded: the executor keeps a head and a
tail of the output in memory and streams the whole of it to the report file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB"),
    pytest.mark.slow,
    pytest.mark.serial,
]

MB = 1 << 20
PRINTED = 250 * MB

# Runs in a fresh interpreter so that its peak RSS is the executor's alone.
DRIVER = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from dagpar_cli.execution.api import ExecRequest, OutputFile, SessionSpec
    from dagpar_cli.execution.local import LocalExecutor
    from dagpar_cli.execution.output import KEEP_OUTPUT

    reports, printed = Path(sys.argv[1]), int(sys.argv[2])
    printer = (
        "import sys\\n"
        "line = b'x' * 1023 + b'\\\\n'\\n"
        f"for _ in range({printed} // 1024): sys.stdout.buffer.write(line)\\n"
        "sys.stderr.buffer.write(line * 4096)\\n"
    )
    executor = LocalExecutor()
    with executor.open(SessionSpec(label="memory#1")) as session:
        outcome = session.run(
            ExecRequest(
                argv=(sys.executable, "-c", printer),
                cwd=str(reports),
                keep_output=KEEP_OUTPUT,
                stdout_file=OutputFile(reports, "go-1.json"),
            )
        )
    executor.close()
    print(json.dumps({
        "exit_code": outcome.exit_code,
        "stdout_chars": len(outcome.stdout),
        "stdout_cut": outcome.stdout_cut,
        "stderr_cut": outcome.stderr_cut,
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))
    """
)


def test_a_command_printing_250_mb_keeps_dagpar_under_300_mb(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path), str(PRINTED)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert facts["exit_code"] == 0
    assert (tmp_path / "go-1.json").stat().st_size == PRINTED
    assert facts["stdout_cut"] == PRINTED - 2 * MB
    assert facts["stderr_cut"] == 4 * MB - 2 * MB
    assert facts["stdout_chars"] < 3 * MB
    assert facts["max_rss_kib"] * 1024 < 300 * MB, facts
