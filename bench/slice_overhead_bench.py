"""Many quick tests: does dagpar split a suite whose slices' overhead grows with their tests?

pytest's session end costs time per test (garbage collection, the JUnit report, plugins that
walk every item). Taken as a fixed start-up of every slice, that makes a suite of many quick
tests look too small to pay for a second slice; taken as what it is, the planner splits it,
and each slice pays half of it.

The suite (written to a temporary directory): ``--files`` files (default 200) of ``--tests``
trivial tests each (default 50: 10,000 tests). Each dagpar contender has its own copy of the
suite, run twice first (history, listing cache), then the bench alternates, ``--repeat`` times
(default 5):

- serial ``pytest`` — the baseline;
- ``dagpar check -j N`` (default 2), a warm run planned with history;
- with ``--other DIR``: the same with the dagpar checkout in DIR (put first on ``PYTHONPATH``),
  on its own copy of the suite: before and after a change, in one run.

It prints each contender's median wall time and its ratio to serial pytest's, and for each
dagpar its ``--dry-run`` plan: slices and the start-up per slice it assumed.

Run: ``python bench/slice_overhead_bench.py [--files 200] [--tests 50] [--repeat 5] [-j 2]
[--other DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = """
import pytest


@pytest.mark.parametrize("i", range({n}))
def test_quick(i):
    pass
"""


def write_suite(root: Path, files: int, tests: int) -> None:
    """*files* files of *tests* trivial tests each under *root*/tests."""
    folder = root / "tests"
    folder.mkdir(parents=True)
    for f in range(files):
        (folder / f"test_q{f:04d}.py").write_text(TESTS.format(n=tests))
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of *argv* and its standard output; a failure stops the bench."""
    start = time.monotonic()
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
        env=env,
    )  # fmt: skip
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{tail}")
    return seconds, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--tests", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("-j", "--parallelism", type=int, default=2)
    parser.add_argument("--other", type=Path, help="another dagpar checkout to compare")
    args = parser.parse_args()
    py = sys.executable
    # dagpar runs $VIRTUAL_ENV's pytest where the suite has no .venv: the one the baseline runs.
    base_env = {**os.environ, "VIRTUAL_ENV": sys.prefix}
    with tempfile.TemporaryDirectory(prefix="dagpar-overhead-") as tmp:
        root = Path(tmp)
        write_suite(root / "serial", args.files, args.tests)
        contenders: dict[str, tuple[list[str], Path, dict[str, str]]] = {
            "pytest": ([py, "-m", "pytest", "-q", "-p", "no:cacheprovider"], root / "serial",
                       base_env),
        }  # fmt: skip
        dagpars = {"dagpar": base_env}
        if args.other is not None:
            path = os.pathsep.join([str(args.other.resolve()), os.environ.get("PYTHONPATH", "")])
            dagpars[f"dagpar ({args.other.name})"] = {**base_env, "PYTHONPATH": path}
        for number, (name, env) in enumerate(dagpars.items()):
            suite = root / f"dagpar{number}"
            shutil.copytree(root / "serial", suite)
            argv = [py, "-m", "dagpar_cli", "check", "-C", str(suite)]
            argv += ["-j", str(args.parallelism)]
            for _ in range(2):
                timed(argv, suite, env)  # history and the listing cache
            contenders[name] = (argv, suite, env)
        walls: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.repeat):
            for name, (argv, cwd, env) in contenders.items():
                walls[name].append(timed(argv, cwd, env)[0])
        baseline = statistics.median(walls["pytest"])
        tests = args.files * args.tests
        print(f"{tests} tests in {args.files} files, -j {args.parallelism}, {args.repeat} runs")
        print(f"{'contender':<24} {'median s':>9} {'÷ pytest':>9}  runs")
        for name, seconds in walls.items():
            middle = statistics.median(seconds)
            runs = " ".join(f"{s:.1f}" for s in seconds)
            print(f"{name:<24} {middle:>9.2f} {middle / baseline:>9.2f}  {runs}")
        for name, env in dagpars.items():
            argv, cwd, _ = contenders[name]
            _, out = timed([*argv, "--dry-run", "--json"], cwd, env)
            (check,) = json.loads(out)["checks"]
            sizes = [len(s.get("tests", ())) for s in check["slices"]]
            _, text = timed([*argv, "--dry-run"], cwd, env)
            assumed = [line.strip() for line in text.splitlines() if "predicted wall" in line]
            print(f"{name}: plan of {len(sizes)} slice(s) of {sizes} tests; {assumed[-1:]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
