"""``dagpar check`` on a Go test that prints 250 MB keeps dagpar under 300 MB of memory, and
the test's result keeps the start and the end of what it printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.go,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB"),
]

MB = 1 << 20

TEST = textwrap.dedent(
    """
    package loud

    import (
    \t"bufio"
    \t"os"
    \t"strings"
    \t"testing"
    )

    func TestLoud(t *testing.T) {
    \tout := bufio.NewWriterSize(os.Stdout, 1<<16)
    \tline := strings.Repeat("x", 1023) + "\\n"
    \tout.WriteString("first line\\n")
    \tfor i := 0; i < 250*1024; i++ {
    \t\tout.WriteString(line)
    \t}
    \tout.WriteString("last line\\n")
    \tout.Flush()
    }

    func TestQuiet(t *testing.T) {}
    """
)

# dagpar in a fresh interpreter, so that its peak RSS is dagpar's alone (go runs in children).
DRIVER = textwrap.dedent(
    """
    import json, resource, sys
    from dagpar_cli.__main__ import main
    sys.argv = ["dagpar", "check", "-C", sys.argv[1], "--json", "--junit-xml", sys.argv[2]]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"exit_code": code, "max_rss_kib": rss}), file=sys.stderr)
    """
)


def test_a_go_test_printing_250_mb_keeps_dagpar_under_300_mb(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "loud").mkdir(parents=True)
    (workspace / "go.mod").write_text("module example.com/loud\n\ngo 1.19\n")
    (workspace / "loud" / "loud_test.go").write_text(TEST)
    junit = tmp_path / "junit.xml"
    env = {**os.environ, "GOPROXY": "off", "GOTOOLCHAIN": "local", "GOFLAGS": ""}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(workspace), str(junit)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
    )
    facts = json.loads(proc.stderr.strip().splitlines()[-1])
    assert facts["exit_code"] == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    statuses = {t["id"]: t["status"] for c in json.loads(proc.stdout)["checks"] for t in c["tests"]}
    assert statuses == {"loud::TestLoud": "passed", "loud::TestQuiet": "passed"}
    print(facts)
    assert facts["max_rss_kib"] * 1024 < 300 * MB, facts
    report = junit.read_text()
    assert "first line" in report and "last line" in report
    assert junit.stat().st_size < 10 * MB
