"""dagpar's own cost on many small items: a custom toolchain, and many small pytest files.

Two cases, each written to a temporary directory and run with ``dagpar check -j 2``:

- **items**: a custom toolchain file (no runner plugin) whose ``+parallel`` field holds
  ``--items`` strings (default 200,000) and whose ``+parallel`` function does nothing with them,
  so every item becomes one passed result that dagpar collects, traces, reports and records in
  its timing store. Measured: dagpar's wall time after its last slice ends (the function returns
  in each slice), and the peak RSS of the dagpar process.
- **pytest**: ``--files`` files (default 400) of ``--per-file`` trivial tests (default 50).
  Measured: dagpar's wall time outside the slices, before the first runner process starts and
  after the last one ends, next to serial ``pytest`` on the same files (the baseline, alternated
  with dagpar in the same run).

With ``--cpu`` the items target is checked against dagpar's CPU time after the slices (the
toolchain function runs in dagpar's process, so it stamps that too) instead of wall time: on a
shared machine other load stretches wall time, not CPU time.

Slice boundaries come from the slices themselves: the toolchain function appends its start and
end times to a file; each pytest process writes its start and process id from a
``sitecustomize`` module (on ``PYTHONPATH``), and the bench notes when that process exits, so a
runner's own start-up and tear-down count as the slice's.
Each case runs once to record timings and the listing, then ``--repeat`` times (default 3);
medians are printed. The bench exits 1 when a median misses its target:

- items: after the slices < ``--items-after`` s (default 5) and peak RSS < ``--items-rss`` MB
  (default 300);
- pytest: outside the slices < ``--pytest-outside`` s (default 2).

The targets are for the default sizes; a smaller ``--items`` or ``--files`` is a quick check
against the same targets. ``uptime``'s load is printed: the machine may
be shared.

Run: ``python bench/items_bench.py [--items 200000] [--files 400] [--per-file 50]
[--repeat 3] [--only items,pytest] [--cpu]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TOOLCHAIN = '''
import os
import time

from dagpar_cli import Directory, field, object_type


def _stamp(kind: str) -> None:
    # The function runs in dagpar's process: its CPU time so far comes along.
    with open(os.environ["ITEMS_BENCH_STAMPS"], "a") as out:
        out.write(f"{kind} {time.time()!r} {time.process_time()!r}\\n")


@object_type
class NoopItems:
    """Items that take no work."""

    workspace: Directory
    items: list[str] = field()  # +parallel

    # +parallel
    def run(self) -> None:
        """Do nothing with each item."""
        _stamp("start")
        for _ in self.items:
            pass
        _stamp("end")


@object_type
class Noop:
    """A custom toolchain of many no-op items."""

    source: Directory

    def work(self) -> NoopItems:
        """Every item."""
        count = int(os.environ["ITEMS_BENCH_COUNT"])
        return NoopItems(workspace=self.source, items=[f"item/{i:06d}" for i in range(count)])

    # +check
    def test(self) -> None:
        """Run every item, split."""
        self.work().run()
'''

#: Loaded by every Python process started with ``PYTHONPATH`` naming its directory: a pytest
#: slice process says when it started and which process it is; the bench sees it end.
SITECUSTOMIZE = """
import os, sys, time

_argv = getattr(sys, "orig_argv", sys.argv)
if "pytest" in _argv and "--collect-only" not in _argv:
    with open(os.environ["ITEMS_BENCH_STAMPS"], "a") as out:
        out.write(f"pid {time.time()!r} {os.getpid()}\\n")
"""


class _Watcher(threading.Thread):
    """Notes when each slice process named in the stamps file ends (its exit, not its last
    Python line: a runner's interpreter tear-down is the slice's time, not dagpar's), and
    dagpar's own CPU time (not its children's) when slices start and end."""

    def __init__(self, stamps: Path) -> None:
        super().__init__(daemon=True)
        self.stamps = stamps
        self.dagpar = ""
        self.ended: dict[str, float] = {}
        self.cpu_started: dict[str, float] = {}
        self.cpu_ended: dict[str, float] = {}
        self.cpu = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            if self.dagpar:  # never less: the reaped process reads as 0
                self.cpu = max(self.cpu, _self_cpu(self.dagpar))
            try:
                lines = self.stamps.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            for line in lines:
                kind, _, pid = line.split()
                if kind != "pid":
                    continue
                self.cpu_started.setdefault(pid, self.cpu)
                if pid not in self.ended and not _alive(pid):
                    self.ended[pid] = time.time()
                    self.cpu_ended[pid] = self.cpu
            time.sleep(0.01)


def _self_cpu(pid: str) -> float:
    """The CPU seconds of process *pid* itself (its threads, not its children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _alive(pid: str) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@dataclass(frozen=True)
class Run:
    """One ``dagpar check``: its wall time and what the slices' stamps say, in seconds."""

    wall: float
    before: float
    after: float
    rss_mb: float
    cpu: float
    #: dagpar's own CPU seconds after the last slice ended.
    cpu_after: float = 0.0
    #: dagpar's own CPU seconds before the first slice started (slice processes only).
    cpu_before: float = 0.0

    @property
    def outside(self) -> float:
        """dagpar's own time outside its slices."""
        return self.before + self.after


def _timed(argv: list[str], env: dict[str, str], stamps: Path) -> Run:
    """Run *argv*, reading the slices' stamps from *stamps*."""
    stamps.unlink(missing_ok=True)
    watcher = _Watcher(stamps)
    watcher.start()
    begin = time.time()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watcher.dagpar = str(proc.pid)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    end = time.time()
    watcher.done.set()
    watcher.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{output[-3000:]!r}")
    marks: dict[str, list[float]] = {"start": [], "end": []}
    cpu_marks = []
    for line in stamps.read_text().splitlines():
        kind, at, *extra = line.split()
        if kind == "pid":  # a slice process: from its start to its exit
            marks["start"].append(float(at))
            marks["end"].append(watcher.ended.get(extra[0], end))
            continue
        marks[kind].append(float(at))
        if kind == "end" and extra:
            cpu_marks.append(float(extra[0]))
    cpu_total = usage.ru_utime + usage.ru_stime
    if watcher.ended:  # slice processes: dagpar's own CPU outside them, as /proc last saw it
        last = max(watcher.ended, key=lambda pid: watcher.ended[pid])
        cpu_marks = [watcher.cpu_ended[last]]
        cpu_total = watcher.cpu
    return Run(
        wall=end - begin,
        before=min(marks["start"]) - begin,
        after=end - max(marks["end"]),
        rss_mb=usage.ru_maxrss / 1024,
        cpu=cpu_total,
        cpu_after=cpu_total - max(cpu_marks) if cpu_marks else 0.0,
        cpu_before=min(watcher.cpu_started.values(), default=0.0),
    )


def _dagpar(workspace: Path) -> list[str]:
    return [sys.executable, "-m", "dagpar_cli", "check", "-C", str(workspace), "-j", "2"]


def items_case(root: Path, count: int, repeat: int) -> list[Run]:
    """``--repeat`` warm runs of the custom toolchain with *count* no-op items."""
    workspace = root / "items"
    workspace.mkdir()
    (workspace / "noop.py").write_text(textwrap.dedent(TOOLCHAIN))
    (workspace / "dagpar.yaml").write_text("toolchains:\n  noop: {use: ./noop.py}\n")
    stamps = root / "items-stamps"
    env = {**os.environ, "ITEMS_BENCH_STAMPS": str(stamps), "ITEMS_BENCH_COUNT": str(count)}
    _timed(_dagpar(workspace), env, stamps)  # records the timings
    return [_timed(_dagpar(workspace), env, stamps) for _ in range(repeat)]


def pytest_case(root: Path, files: int, per_file: int, repeat: int) -> tuple[list[Run], list[Run]]:
    """``--repeat`` warm runs of dagpar and of serial pytest, alternated."""
    workspace = root / "pytest"
    tests = workspace / "tests"
    tests.mkdir(parents=True)
    body = "".join(f"\n\ndef test_{k}():\n    pass\n" for k in range(per_file))
    for f in range(files):
        (tests / f"test_{f:04d}.py").write_text(body)
    runner = f"[{sys.executable!r}, -m, pytest]".replace("'", '"')
    (workspace / "dagpar.yaml").write_text(
        f"toolchains:\n  pytest: {{use: pytest, source: ., runner: {runner}}}\n"
    )
    site = root / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    stamps = root / "pytest-stamps"
    env = {
        **os.environ,
        "ITEMS_BENCH_STAMPS": str(stamps),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
    }
    serial = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]

    def run_serial() -> Run:
        return _timed_in(serial, env, stamps, workspace)

    _timed(_dagpar(workspace), env, stamps)  # records the timings and the listing
    dagpar_runs, pytest_runs = [], []
    for _ in range(repeat):
        dagpar_runs.append(_timed(_dagpar(workspace), env, stamps))
        pytest_runs.append(run_serial())
    return dagpar_runs, pytest_runs


def _timed_in(argv: list[str], env: dict[str, str], stamps: Path, cwd: Path) -> Run:
    here = Path.cwd()
    os.chdir(cwd)
    try:
        return _timed(argv, env, stamps)
    finally:
        os.chdir(here)


def _median(runs: list[Run], what: str) -> float:
    return statistics.median(float(getattr(r, what)) for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--per-file", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="items,pytest")
    parser.add_argument("--items-after", type=float, default=5.0)
    parser.add_argument("--items-rss", type=float, default=300.0)
    parser.add_argument("--pytest-outside", type=float, default=2.0)
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="check the items target against dagpar's CPU time after the slices instead of wall "
        "time (on a shared machine, where other load stretches wall time)",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    missed = []
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")
    with tempfile.TemporaryDirectory(prefix="dagpar-items-") as tmp:
        root = Path(tmp)
        if "items" in only:
            runs = items_case(root, args.items, args.repeat)
            after, rss = _median(runs, "after"), _median(runs, "rss_mb")
            cpu_after = _median(runs, "cpu_after")
            limit_after = args.items_after
            print(
                f"items: {args.items} no-op items, -j 2, median of {len(runs)}: "
                f"wall {_median(runs, 'wall'):.2f} s, CPU {_median(runs, 'cpu'):.2f} s, "
                f"before the first slice {_median(runs, 'before'):.2f} s, "
                f"after the last slice {after:.2f} s wall, {cpu_after:.2f} s CPU "
                f"(target < {limit_after:.2f}), "
                f"peak RSS {rss:.0f} MB (target < {args.items_rss:.0f})"
            )
            checked = cpu_after if args.cpu else after
            if checked >= limit_after:
                what = "CPU" if args.cpu else "wall"
                missed.append(f"items: {checked:.2f} s ({what}) after the slices")
            if rss >= args.items_rss:
                missed.append(f"items: peak RSS {rss:.0f} MB")
        if "pytest" in only:
            dagpar_runs, pytest_runs = pytest_case(root, args.files, args.per_file, args.repeat)
            tests = args.files * args.per_file
            limit = args.pytest_outside
            outside = _median(dagpar_runs, "outside")
            wall, serial = _median(dagpar_runs, "wall"), _median(pytest_runs, "wall")
            print(
                f"pytest: {tests} tests in {args.files} files, -j 2, median of "
                f"{len(dagpar_runs)}: wall {wall:.2f} s ({wall / serial:.2f} x serial pytest's "
                f"{serial:.2f} s); outside the slices {outside:.2f} s wall (before "
                f"{_median(dagpar_runs, 'before'):.2f} s, after {_median(dagpar_runs, 'after'):.2f}"
                f" s; target < {limit:.2f}), dagpar's own CPU before "
                f"{_median(dagpar_runs, 'cpu_before'):.2f} s, after "
                f"{_median(dagpar_runs, 'cpu_after'):.2f} s"
            )
            if outside >= limit:
                missed.append(f"pytest: {outside:.2f} s outside the slices")
    for line in missed:
        print(f"MISSED {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
