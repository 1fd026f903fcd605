"""Real runs, side by side: dagpar -j 2 against pytest-xdist and pytest-split on one suite.

The suite (written to a temporary directory) has very uneven test durations: a few slow files,
many quick ones, a slow parametrized test. Each contender runs it for real on two workers:

- ``dagpar check -j 2`` — the second run, with the first run's timings in its store;
- ``pytest -n 2`` — pytest-xdist's dynamic load balancing;
- pytest-split — ``--store-durations`` once, then ``--splits 2 --group 1`` and ``--group 2``
  run concurrently (what two CI nodes do), wall time = the slower group.

Each is run ``--repeat`` times (default 3) and the median wall time is kept. The machine is shared,
so only ratios measured in the same run are printed, plus the lower bound (sum of test time / 2).

Run: ``python bench/realrun_bench.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: (file, [(test name, seconds)]): about 16 s of sleeping in all.
SUITE: list[tuple[str, list[tuple[str, float]]]] = [
    ("test_reports.py", [(f"test_report_{i}", 1.2) for i in range(4)]),
    ("test_import.py", [("test_import_all", 2.5), ("test_import_one", 0.1)]),
    ("test_billing.py", [(f"test_bill_{i}", 0.6) for i in range(5)]),
    *[(f"test_unit_{k:02d}.py", [(f"test_u{i}", 0.05) for i in range(6)]) for k in range(20)],
]
PARAMETRIZED = """
import time
import pytest

@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_resize(size):
    time.sleep(0.4 * size)
"""


def write_suite(root: Path) -> float:
    """Write the suite under *root*; returns the total seconds of test time."""
    tests = root / "tests"
    tests.mkdir(parents=True)
    total = 0.0
    for name, cases in SUITE:
        body = ["import time", ""]
        for test, seconds in cases:
            body += ["", f"def {test}():", f"    time.sleep({seconds})", ""]
            total += seconds
        (tests / name).write_text("\n".join(body))
    (tests / "test_resize.py").write_text(PARAMETRIZED)
    total += 0.4 * (1 + 2 + 3 + 4)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    return total


def timed(argv: list[str], cwd: Path) -> float:
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}")
    return seconds


def timed_pair(argvs: list[list[str]], cwd: Path) -> float:
    start = time.monotonic()
    procs = [subprocess.Popen(a, cwd=cwd, stdout=subprocess.DEVNULL) for a in argvs]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"pytest-split group failed: {proc.args}")
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    py = sys.executable
    pytest_cmd = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    with tempfile.TemporaryDirectory(prefix="dagpar-realrun-") as tmp:
        root = Path(tmp)
        total = write_suite(root)
        dagpar = [py, "-m", "dagpar_cli", "check", "-C", str(root), "-j", "2"]

        first = timed(dagpar, root)  # run 1: no history, a split by count
        timed(
            [*pytest_cmd, "--store-durations",
             "--durations-path", str(root / ".test_durations")],
            root,
        )  # fmt: skip
        split = [
            [*pytest_cmd, "--splits", "2", "--group", str(g),
             "--durations-path", str(root / ".test_durations")]
            for g in (1, 2)
        ]  # fmt: skip
        results: dict[str, list[float]] = {"dagpar": [], "xdist": [], "pytest-split": []}
        for _ in range(args.repeat):
            results["dagpar"].append(timed(dagpar, root))
            results["xdist"].append(timed([*pytest_cmd, "-n", "2"], root))
            results["pytest-split"].append(timed_pair(split, root))
        shutil.rmtree(root / ".dagpar", ignore_errors=True)

    median = {k: statistics.median(v) for k, v in results.items()}
    bound = total / 2
    print(f"suite: {sum(len(c) for _, c in SUITE) + 4} tests, {total:.1f} s of test time")
    print(f"lower bound on 2 workers (no start-up): {bound:.1f} s")
    print(f"{'contender':<22} {'median wall / bound':>20} {'dagpar / contender':>20}")
    for name, seconds in median.items():
        print(f"{name:<22} {seconds / bound:>20.2f} {median['dagpar'] / seconds:>20.2f}")
    print(f"{'dagpar, first run':<22} {first / bound:>20.2f} {median['dagpar'] / first:>20.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
