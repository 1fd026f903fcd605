"""Live progress of a real ``dagpar check``: redrawn in place on a terminal, plain lines elsewhere.

The terminal is a real pseudo-terminal; what dagpar writes to it is replayed through a minimal
terminal (cursor up, erase down, carriage return, line feed) to see the screen a user sees.
"""

from __future__ import annotations

import os
import pty
import re
import select
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult

# What a live view shows depends on timing: no other tests alongside.
pytestmark = pytest.mark.serial

#: A toolchain whose items take a while each and report one by one, so progress moves visibly.
NAPS = """
from __future__ import annotations
import time
from dagpar_cli import Directory, check, dag, field, object_type

@object_type
class Beds:
    workspace: Directory
    items: list[str] = field()  # +parallel

    # +parallel
    def run(self) -> None:
        for item in self.items:
            with dag.parallel.task(item):
                time.sleep(float(item.split("-")[1]))
                if item.startswith("bad"):
                    raise AssertionError(f"{item} woke up badly")

@object_type
class Naps:
    source: Directory

    # +check
    def sleep(self) -> None:
        items = [f"nap{i:02d}-0.4" for i in range(10)] + ["bad00-0.1"]
        try:
            Beds(workspace=self.source, items=items).run()
        finally:
            # Work after the split call: the view stays up, then must be erased at the end.
            time.sleep(1)
"""

COLUMNS, ROWS = 110, 40

LIVE_SLICE = re.compile(
    r"^  naps:sleep +slice ([12])/2 +\[[#-]{10}\] (\d+)/(\d+) items +[\d.]+s / [\d.]+s predicted"
)
OVERALL = re.compile(r"^\[[#-]{20}\] (\d)/2 slices · ")
DONE = re.compile(
    r"^\[\d\d:\d\d\.\d\] naps:sleep slice ([12])/2 done: .* in [\d.]+s \(predicted [\d.]+s\)"
)


class Screen:
    """Just enough of a terminal to replay dagpar's progress output."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = [[]]
        self.row = 0
        self.col = 0
        #: The screen each time dagpar erased its view: the view exactly as it was drawn.
        self.frames: list[list[str]] = []

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            if text[i] == "\x1b":
                match = re.match(r"\x1b\[([0-9;?]*)([A-Za-z])", text[i:])
                assert match, f"unexpected escape sequence {text[i : i + 10]!r}"
                args, command = match.groups()
                if command == "A":
                    self.row = max(self.row - int(args or 1), 0)
                elif command == "J":
                    self.frames.append(self.lines())
                    del self.rows[self.row + 1 :]
                    self.rows[self.row] = self.rows[self.row][: self.col]
                else:
                    assert command == "m", f"unexpected escape sequence {match.group()!r}"
                i += match.end()
                continue
            char = text[i]
            if char == "\r":
                self.col = 0
            elif char == "\n":
                self.row += 1
                while len(self.rows) <= self.row:
                    self.rows.append([])
            else:
                line = self.rows[self.row]
                line.extend(" " * (self.col - len(line)))
                if self.col < len(line):
                    line[self.col] = char
                else:
                    line.append(char)
                self.col += 1
                assert self.col <= COLUMNS, "a line wrapped: the next redraw would leave it behind"
            i += 1

    def lines(self) -> list[str]:
        return ["".join(r).rstrip() for r in self.rows]


def _run_on_pty(ws: Path, env: Mapping[str, str]) -> tuple[str, str, int]:
    """Run ``dagpar check`` with standard error on a pseudo-terminal; (terminal, stdout, code)."""
    import fcntl
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagpar_cli", "check", "-C", str(ws), "-j", "2"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=dict(env),
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal has gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stdout, _ = proc.communicate(timeout=60)
    return b"".join(chunks).decode("utf-8"), stdout.decode("utf-8"), proc.returncode


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(TERM="xterm-256color", **extra)
    return env


@pytest.fixture
def naps(make_workspace: Callable[[Mapping[str, str]], Path]) -> Path:
    return make_workspace(
        {"dagpar.yaml": "toolchains:\n  naps:\n    use: ci/naps.py\n", "ci/naps.py": NAPS}
    )


def test_terminal_view_is_redrawn_in_place(naps: Path) -> None:
    raw, stdout, code = _run_on_pty(naps, _env())
    assert code == 1, raw + stdout
    screen = Screen()
    screen.feed(raw.replace("\r\n", "\n").replace("\n", "\r\n"))

    # While the slices ran, each had its line, counting items as they finished.
    seen: dict[str, set[tuple[int, int]]] = {"1": set(), "2": set()}
    overall: set[int] = set()
    for frame in screen.frames:
        for line in frame:
            if m := LIVE_SLICE.match(line):
                seen[m.group(1)].add((int(m.group(2)), int(m.group(3))))
            if m := OVERALL.match(line):
                overall.add(int(m.group(1)))
    for index, counts in seen.items():
        assert counts, f"slice {index} never had a live line:\n{raw!r}"
        assert any(0 < done < total for done, total in counts), (index, counts)
    assert 0 in overall, overall

    # Afterwards only the lasting lines remain: one per slice, and no leftover view.
    final = [line for line in screen.lines() if line]
    done = sorted(m.group(1) for line in final if (m := DONE.match(line)))
    assert done == ["1", "2"], final
    assert not any(LIVE_SLICE.match(line) or OVERALL.match(line) for line in final), final
    assert len(final) == 2, final
    # Colour on a terminal, and the summary on standard output as usual.
    assert "\x1b[32m" in raw
    assert "1 failed, 10 passed" in stdout


def test_no_color_keeps_the_view_but_drops_colours(naps: Path) -> None:
    raw, _, code = _run_on_pty(naps, _env(NO_COLOR="1"))
    assert code == 1
    assert "\x1b[" in raw, "the view is still redrawn in place"
    assert not re.search(r"\x1b\[[0-9;]*m", raw), "NO_COLOR asks for no colour codes"


def test_plain_lines_off_a_terminal(naps: Path, dagpar_run: Callable[..., DagparResult]) -> None:
    result = dagpar_run("check", "-C", naps, "-j", "2", "--json")
    assert result.exit_code == 1, result
    assert result.json()["checks"][0]["name"] == "naps:sleep", "stdout stays pure JSON"
    lines = [line for line in result.stderr.splitlines() if line.startswith("[")]
    started = [
        line
        for line in lines
        if re.match(
            r"^\[\d\d:\d\d\.\d\] naps:sleep slice [12]/2 started: \d+ items, predicted [\d.]+s$",
            line,
        )
    ]
    done = [line for line in lines if DONE.match(line)]
    assert len(started) == 2 and len(done) == 2, result.stderr
    assert sum("1 failed" in line for line in done) == 1
    assert "\x1b" not in result.stderr
    # Each slice's start line comes before its end line.
    for index in ("1", "2"):
        first = next(i for i, s in enumerate(lines) if f"slice {index}/2 started" in s)
        last = next(i for i, s in enumerate(lines) if f"slice {index}/2 done" in s)
        assert first < last


def test_dry_run_prints_no_progress(naps: Path, dagpar_run: Callable[..., DagparResult]) -> None:
    result = dagpar_run("check", "-C", naps, "-j", "2", "--dry-run")
    assert result.exit_code == 0, result
    assert "started:" not in result.stderr and "done:" not in result.stderr
