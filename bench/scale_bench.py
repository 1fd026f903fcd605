"""Large suites: does dagpar's own work grow linearly with the number of tests?

The suite (written to a temporary directory) is one file: N trivial parametrized tests plus one
2 s test. At each size, in the same run:

- serial ``pytest`` — the baseline;
- ``dagpar check -j 2`` twice: the first run records timings, the second (timed) plans with them,
  so the planner may cut the file into single-test items — the case where a per-test scan of a
  per-file or per-slice list turns quadratic.

dagpar's own time is the second run's wall time outside its slices: before the first slice
starts (listing, planning) and after the last one ends (results, reports, the timing store),
read from the run's progress lines. Its growth from the small size to the large one is printed
as (own time ratio) / (size ratio): 1.0 is linear. The bench exits non-zero when that growth is
clearly superlinear (above ``--max-growth``, default 2.0; quadratic work gives about 4 at the
default sizes).

Run: ``python bench/scale_bench.py [--sizes 5000 20000] [--max-growth 2.0]``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SUITE = """
import time

import pytest


@pytest.mark.parametrize("i", range({n}))
def test_p(i):
    pass


def test_slow():
    time.sleep(2)
"""

#: ``[00:02.3] pytest:test slice 1/2 started: ...`` and ``... slice 1/2 done: ...``.
_PROGRESS = re.compile(r"^\[(\d+):(\d+(?:\.\d+)?)\] .* slice \d+(?:/\d+)? (started|done)\b", re.M)


@dataclass(frozen=True)
class Sample:
    """One size's measurements, in seconds."""

    tests: int
    pytest: float
    dagpar: float
    slices: float

    @property
    def own(self) -> float:
        """dagpar's wall time outside its slices."""
        return max(self.dagpar - self.slices, 0.0)


def write_suite(root: Path, n: int) -> None:
    """One file of *n* parametrized tests and one 2 s test under *root*/tests."""
    tests = root / "tests"
    tests.mkdir(parents=True)
    (tests / "test_big.py").write_text(SUITE.format(n=n))
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')


def timed(argv: list[str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of *argv* and its output; a failure stops the bench."""
    start = time.monotonic()
    # dagpar runs $VIRTUAL_ENV's pytest where the suite has no .venv (else the pytest on PATH,
    # perhaps another installation with other plugins): the one the baseline runs.
    proc = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "VIRTUAL_ENV": sys.prefix},
    )
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{tail}")
    return seconds, proc.stdout + proc.stderr


def slices_span(output: str) -> float:
    """Seconds from the first slice's start to the last slice's end, from progress lines."""
    starts: list[float] = []
    ends: list[float] = []
    for minutes, seconds, what in _PROGRESS.findall(output):
        at = int(minutes) * 60 + float(seconds)
        (starts if what == "started" else ends).append(at)
    if not starts or not ends:
        raise SystemExit(f"no slice progress lines in dagpar's output:\n{output[-3000:]}")
    return max(ends) - min(starts)


def measure(n: int) -> Sample:
    """Serial pytest, then dagpar's first and (timed) second run, on a fresh suite of *n*."""
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="dagpar-scale-") as tmp:
        root = Path(tmp)
        write_suite(root, n)
        serial, _ = timed([py, "-m", "pytest", "-q", "-p", "no:cacheprovider"], root)
        dagpar = [py, "-m", "dagpar_cli", "check", "-C", str(root), "-j", "2"]
        timed(dagpar, root)  # run 1: no history; records the timings
        wall, output = timed(dagpar, root)
    return Sample(tests=n + 1, pytest=serial, dagpar=wall, slices=slices_span(output))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[5000, 20000], metavar="N")
    parser.add_argument("--max-growth", type=float, default=2.0)
    args = parser.parse_args()
    small, large = sorted(args.sizes)
    samples = [measure(small), measure(large)]
    header = ("tests", "pytest s", "dagpar s", "slices s", "own s", "÷ pytest")
    print(" ".join(f"{h:>9}" for h in header))
    for s in samples:
        print(
            f"{s.tests:>9} {s.pytest:>9.1f} {s.dagpar:>9.1f} {s.slices:>9.1f} {s.own:>9.1f}"
            f" {s.dagpar / s.pytest:>9.2f}"
        )
    first, last = samples
    growth = (last.own / max(first.own, 0.05)) / (last.tests / first.tests)
    print(f"dagpar's own time, growth from {first.tests} to {last.tests} tests: {growth:.2f}")
    print("(1.0 = linear; quadratic work gives about the size ratio)")
    if growth > args.max_growth:
        print(f"FAIL: dagpar's own time grows superlinearly ({growth:.2f} > {args.max_growth})")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
