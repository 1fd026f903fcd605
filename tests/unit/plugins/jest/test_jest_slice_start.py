"""What a Jest slice does before Jest starts: no more than compiling its command.

The slice's thread compiles the commands and opens the stream, then starts Jest; whatever it
imports on the way is time every slice waits before its first test. The modules that read
Jest's results (the report parser, the stream reader) are needed only once Jest runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dagpar_plugins import jest
from dagpar_plugins.jest.stream import JestStream

from dagpar_cli import RunnerSpec, Selection

#: Compiles a slice's commands and opens its stream, as a slice does before starting Jest, in a
#: fresh interpreter; prints which of the plugin's modules that loaded.
SLICE_START = """
import json, sys
from pathlib import Path
from dagpar_plugins.jest import JestRunner
from dagpar_cli import RunnerSpec, Selection

spec = RunnerSpec(name="jest", workspace=Path(sys.argv[1]), source="", command=("jest",))
runner = JestRunner()
runner.command(spec, Selection(items=(("a.test.js",), ("b.test.js", "b works"))))
runner.stream(spec, Path(sys.argv[1]) / "reports")
print(json.dumps(sorted(m for m in sys.modules if m.startswith("dagpar_plugins.jest"))))
"""


def test_starting_a_slice_loads_neither_the_report_parser_nor_the_stream_reader(
    tmp_path: Path,
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SLICE_START, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    loaded = json.loads(out)
    assert "dagpar_plugins.jest.command" in loaded
    assert "dagpar_plugins.jest.report" not in loaded
    assert "dagpar_plugins.jest.stream" not in loaded


def test_the_stream_reads_once_used(tmp_path: Path) -> None:
    """The stream made before Jest starts is the reader once it is used."""
    spec = RunnerSpec(name="jest", workspace=tmp_path, source="", command=("jest",))
    stream = jest.JestRunner().stream(spec, tmp_path)
    assert stream.poll() == []
    record = {
        "event": "end",
        "file": "a.test.js",
        "at": 2.0,
        "name": "works",
        "occurrence": 0,
        "status": "passed",
    }
    (tmp_path / "jest-1.events.jsonl").write_text(json.dumps(record) + "\n")
    (event,) = stream.poll()
    assert (event.kind, event.test.path, event.test.name) == ("end", "a.test.js", "works")
    assert stream.restarted == set()  # the reader's own attributes
    assert isinstance(stream.reader(), JestStream)  # type: ignore[attr-defined]


def test_the_reporter_is_the_shipped_file() -> None:
    shipped = Path(jest.__file__).with_name("stream_reporter.js").read_text(encoding="utf-8")
    from dagpar_plugins.jest.names import reporter_source

    assert reporter_source() == shipped
    assert jest.SUITE_FAILED == "(test suite failed to run)"
    _ = Selection  # the selection type the command compiles
