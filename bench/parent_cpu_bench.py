"""How much CPU does dagpar's own process spend on a large pytest run, next to a baseline?

The suite is ``scale_bench``'s: one file of ``--tests`` trivial parametrized tests (default
20,000) plus one 2 s test. dagpar runs ``check -j 2`` on it once, untimed, to record timings;
then, alternating ``--repeat`` times (default 3), each contender runs it again with that history
(the planner cuts the file into tests). On a machine with few cores, every CPU-second dagpar's
own process spends while the slices run is taken from them.

Contenders: ``dagpar``, the dagpar this interpreter imports; and, with ``--baseline CHECKOUT``,
the dagpar of another checkout (a directory holding ``dagpar_cli``, ``plugins`` and
``toolchains``, e.g. ``git archive main | tar -x -C /tmp/base``), put first on ``PYTHONPATH``
under the names the package installs (the bench prints which files each contender imports).

Measured per run: the CPU (user + system) of dagpar's own process, from ``getrusage`` at its exit
(its slices are its children and are not counted); of that, the CPU its threads spend on the
slices' tests while they run (thread CPU inside ``run_tests``, which starts the runner, reads its
stream and report and hands the results on, and in the live-progress thread, which reads the
streams); and wall time. Printed: medians, and with a baseline, the ratios dagpar / baseline.
Exits non-zero when the ratio of the whole process's CPU is above ``--max-ratio`` (default:
none).

Run: ``python bench/parent_cpu_bench.py [--tests 20000] [--repeat 3] [--baseline CHECKOUT]``.
Compile both checkouts first (``python -m compileall -q dagpar_cli plugins toolchains``) where
bytecode is not written.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The bench directory is on sys.path when a bench runs.
import scale_bench

#: Runs dagpar's command line in this process and prints its own and its children's CPU at exit.
DRIVER = """
import atexit, functools, resource, runpy, sys, threading, time
import dagpar_cli, dagpar_cli.sdk.runner as runner
from dagpar_cli.runtime.progress_poller import ProgressPoller
_slices = [0.0]
_lock = threading.Lock()
def _timed(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            with _lock:
                _slices[0] += time.thread_time() - start
    return wrapper
runner.run_tests = dagpar_cli.run_tests = _timed(runner.run_tests)
ProgressPoller._loop = _timed(ProgressPoller._loop)
def _report():
    s = resource.getrusage(resource.RUSAGE_SELF)
    print(f"DAGPAR-CPU {s.ru_utime:.3f} {s.ru_stime:.3f} {_slices[0]:.3f}", file=sys.__stderr__)
atexit.register(_report)
sys.argv = ["dagpar", *sys.argv[1:]]
runpy.run_module("dagpar_cli", run_name="__main__")
"""

_CPU = re.compile(r"^DAGPAR-CPU (\S+) (\S+) (\S+)$", re.M)

WHERE = "import dagpar_cli, dagpar_plugins.pytest as p; print(dagpar_cli.__file__, p.__file__)"


def shim(checkout: Path, into: Path) -> Path:
    """A directory whose entries import *checkout*'s packages under their installed names."""
    into.mkdir()
    for name, source in (
        ("dagpar_cli", "dagpar_cli"),
        ("dagpar_plugins", "plugins"),
        ("dagpar_toolchains", "toolchains"),
    ):
        (into / name).symlink_to(checkout.resolve() / source)
    return into


def env_for(path: Path | None) -> dict[str, str]:
    """The environment of a contender (*path* first on ``PYTHONPATH``, or this dagpar)."""
    env = {**os.environ, "VIRTUAL_ENV": sys.prefix}
    env.pop("PYTHONPATH", None)
    if path is not None:
        env["PYTHONPATH"] = str(path)
    return env


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """CPU seconds of dagpar's own process, of its work on the slices' tests while they run,
    and wall seconds, of one ``dagpar`` command."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    wall = time.monotonic() - start
    found = _CPU.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise SystemExit(f"dagpar {' '.join(argv)} failed ({proc.returncode}):\n{tail}")
    return float(found[1]) + float(found[2]), float(found[3]), wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, default=None, metavar="CHECKOUT")
    parser.add_argument("--max-ratio", type=float, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dagpar-parent-cpu-") as tmp:
        root = Path(tmp) / "suite"
        scale_bench.write_suite(root, args.tests)
        contenders: dict[str, dict[str, str]] = {"dagpar": env_for(None)}
        if args.baseline is not None:
            contenders["baseline"] = env_for(shim(args.baseline, Path(tmp) / "baseline"))
        for name, env in contenders.items():
            where = subprocess.run(
                [sys.executable, "-c", WHERE],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            print(f"{name:<9} imports {where.stdout.strip()}")
        argv = ["check", "-C", str(root), "-j", "2"]
        run(argv, root, contenders["dagpar"])  # records the timings
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        slices: dict[str, list[float]] = {name: [] for name in contenders}
        wall: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.repeat):
            for name, env in contenders.items():
                seconds, during, elapsed = run(argv, root, env)
                cpu[name].append(seconds)
                slices[name].append(during)
                wall[name].append(elapsed)
    print(f"{args.tests + 1} tests, check -j 2 with history, medians of {args.repeat}:")
    for name in contenders:
        print(
            f"{name:<9} own CPU {statistics.median(cpu[name]):6.2f} s  "
            f"of it on the slices' tests {statistics.median(slices[name]):6.2f} s  "
            f"wall {statistics.median(wall[name]):6.2f} s  "
            f"(CPU runs: {', '.join(f'{c:.2f}' for c in cpu[name])})"
        )
    if "baseline" not in contenders:
        return 0
    ratio = statistics.median(cpu["dagpar"]) / statistics.median(cpu["baseline"])
    during = statistics.median(slices["dagpar"]) / statistics.median(slices["baseline"])
    walls = statistics.median(wall["dagpar"]) / statistics.median(wall["baseline"])
    print(
        f"dagpar / baseline: own CPU {ratio:.2f}, on the slices' tests {during:.2f}, "
        f"wall {walls:.2f}"
    )
    if args.max_ratio is not None and ratio > args.max_ratio:
        print(f"FAIL: own CPU ratio {ratio:.2f} > {args.max_ratio}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
