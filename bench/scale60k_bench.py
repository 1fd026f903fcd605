"""A 60,000-test suite: is dagpar faster than serial pytest, and does every stage grow linearly?

The suite (written to a temporary directory) has one big file of ``2/3 N`` trivial parametrized
tests plus one 2 s test, and ``N/3`` trivial tests in files of 100 each. At each size (by default
N = 15,000 and 60,000: a big file of 10,000 and of 40,000 tests), in the same run:

- ``dagpar check -j 2`` once, untimed: it records the timings;
- then, alternating, ``--repeat`` times: serial ``pytest`` (the baseline) and ``dagpar check -j 2``
  with history, so the planner may cut the big file into single tests (the case where a per-test
  scan of a per-file or per-slice list turns quadratic).

The timed dagpar runs go through this file's ``--driver`` mode, which wraps each stage in a
timer before running dagpar's command line: listing (``Lister.tests``), filter
(``Filter.narrow``), plan (``plan_split``), parse (the pytest runner reading a slice's report),
collect (``collect.fill_missing``), reports (the pipeline's report stage, less the timing
store) and the timing store (``TimingStore.record``, which records from a report hook). Stage
times are the CPU seconds of the thread running them, which the machine's other load disturbs
far less than wall time. The slices' span comes from the run's progress lines. dagpar runs
with ``VIRTUAL_ENV`` set to this interpreter's prefix, so its slices run the pytest the
baseline runs.

Printed: per size, the medians of serial pytest's and dagpar's wall time and their ratio, CPU
of dagpar's own process and of its slices; per stage, CPU at both sizes and its growth,
(large / small) / (size ratio): 1.0 is linear, quadratic work gives about the size ratio.
Exits non-zero when a stage grows superlinearly (growth above ``--max-growth``, default 2.0, for
a stage that takes at least ``--min-stage`` seconds at the large size) or when dagpar's wall
time at the large size is above ``--max-ratio`` (default 0.6) times serial pytest's.

Run: ``python bench/scale60k_bench.py [--sizes 15000 60000] [--repeat 1]``. Compile dagpar
first (``python -m compileall -q dagpar_cli plugins``) where bytecode is not written.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The bench directory is on sys.path when a bench runs.
import scale_bench
from scale_bench import SUITE, slices_span

#: The big file: ``{n}`` trivial parametrized cases and one 2 s test, as in ``scale_bench.py``.
BIG = SUITE

SMALL = """
import pytest


@pytest.mark.parametrize("i", range({n}))
def test_s(i):
    pass
"""

#: Tests per file outside the big one.
PER_FILE = 100


#: Stage name -> (module, attribute path) of the callable timed in --driver mode.
STAGES: dict[str, tuple[str, str]] = {
    "listing": ("dagpar_cli.runtime.listing", "Lister.tests"),
    "filter": ("dagpar_cli.filtering", "Filter.narrow"),
    "plan": ("dagpar_cli.planning.request", "plan_split"),
    "parse": ("dagpar_plugins.pytest", "PytestRunner.parse"),
    "collect": ("dagpar_cli.runtime.collect", "fill_missing"),
    "reports": ("dagpar_cli.pipeline", "_report"),
    "timing store": ("dagpar_cli.timings.store", "TimingStore.record"),
}


# ---------------------------------------------------------------------------- driver mode


_lock = threading.Lock()


def _timed(name: str, fn: Callable[..., Any], totals: dict[str, list[float]]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            # Slices parse their reports on their own threads, at once.
            with _lock:
                spent = totals[name]
                spent[0] += time.perf_counter() - wall
                spent[1] += time.thread_time() - cpu

    return wrapper


def drive(out: Path, argv: list[str]) -> int:
    """Run dagpar's command line with every stage of :data:`STAGES` timed; write *out*."""
    import importlib

    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for stage, (module_name, path) in STAGES.items():
        module = importlib.import_module(module_name)
        owner: Any = module
        *parents, attr = path.split(".")
        for part in parents:
            owner = getattr(owner, part)
        original = getattr(owner, attr)
        wrapped = _timed(stage, original, totals)
        setattr(owner, attr, wrapped)
        if not parents:
            # Functions imported by name elsewhere, or listed in a module's tuple of steps,
            # are replaced there too.
            for other in list(sys.modules.values()):
                for key, value in list(vars(other).items()):
                    if value is original:
                        setattr(other, key, wrapped)
                    elif isinstance(value, tuple) and any(v is original for v in value):
                        setattr(other, key, tuple(wrapped if v is original else v for v in value))
    from dagpar_cli.cli import main as cli_main

    sys.argv = ["dagpar", *argv]
    try:
        code = cli_main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    stages = {k: list(v) for k, v in totals.items()}
    if "reports" in stages and "timing store" in stages:
        # The timing store records from a report hook: reports are the rest.
        store = stages["timing store"]
        stages["reports"] = [max(a - b, 0.0) for a, b in zip(stages["reports"], store, strict=True)]
    report = {
        "stages": stages,
        "self_cpu": own.ru_utime + own.ru_stime,
        "children_cpu": children.ru_utime + children.ru_stime,
        "maxrss_mb": own.ru_maxrss / 1024,
    }
    out.write_text(json.dumps(report))
    return int(code or 0)


# ---------------------------------------------------------------------------- the bench


@dataclass
class Size:
    """One size's measurements (lists: one entry per repeat)."""

    tests: int
    big: int
    pytest: list[float] = field(default_factory=list)
    pytest_cpu: list[float] = field(default_factory=list)
    dagpar: list[float] = field(default_factory=list)
    slices: list[float] = field(default_factory=list)
    self_cpu: list[float] = field(default_factory=list)
    children_cpu: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def write_suite(root: Path, total: int) -> int:
    """The suite of *total* tests under *root*/tests; returns the big file's test count."""
    big = total * 2 // 3
    tests = root / "tests"
    tests.mkdir(parents=True)
    (tests / "test_big.py").write_text(BIG.format(n=big - 1))
    rest = total - big
    for index in range(0, rest, PER_FILE):
        count = min(PER_FILE, rest - index)
        (tests / f"test_small_{index // PER_FILE:04d}.py").write_text(SMALL.format(n=count))
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    return big


def timed(argv: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall and child CPU seconds of *argv*, and its output (:func:`scale_bench.timed`, which
    runs it with the pytest the baseline runs); a failure stops the bench."""
    before = os.times()
    wall, output = scale_bench.timed(argv, cwd)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu, output


def measure(total: int, repeat: int) -> Size:
    """Serial pytest and dagpar's second runs, alternated, on a fresh suite of *total* tests."""
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="dagpar-scale60k-") as tmp:
        root = Path(tmp)
        size = Size(tests=total, big=write_suite(root, total))
        dagpar = [py, "-m", "dagpar_cli", "check", "-C", str(root), "-j", "2"]
        timed(dagpar, root)  # run 1: no history; records the timings
        stages_file = root / "stages.json"
        bench = str(Path(__file__).resolve())
        driven = [py, bench, "--driver", str(stages_file), "--", *dagpar[3:]]
        for _ in range(repeat):
            wall, cpu, _ = timed([py, "-m", "pytest", "-q", "-p", "no:cacheprovider"], root)
            size.pytest.append(wall)
            size.pytest_cpu.append(cpu)
            wall, _, output = timed(driven, root)
            size.dagpar.append(wall)
            size.slices.append(slices_span(output))
            report = json.loads(stages_file.read_text())
            size.self_cpu.append(report["self_cpu"])
            size.children_cpu.append(report["children_cpu"])
            for stage in STAGES:
                size.stages[stage].append(report["stages"].get(stage, [0.0, 0.0])[1])
            print(
                f"  {total} tests: pytest {size.pytest[-1]:.1f}s, dagpar {wall:.1f}s "
                f"(slices {size.slices[-1]:.1f}s)",
                flush=True,
            )
    return size


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--driver":
        rest = sys.argv[3:]
        return drive(Path(sys.argv[2]), rest[1:] if rest[:1] == ["--"] else rest)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[15000, 60000], metavar="N")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--max-growth", type=float, default=2.0)
    parser.add_argument("--min-stage", type=float, default=0.2)
    parser.add_argument("--max-ratio", type=float, default=0.6)
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} on {os.cpu_count()} CPUs")
    small, large = (measure(n, args.repeat) for n in sorted(args.sizes))
    med = statistics.median
    header = ("tests", "big file", "pytest s", "dagpar s", "÷ pytest", "slices s", "own s")
    print(" ".join(f"{h:>9}" for h in header) + "   cpu: pytest  dagpar  slices")
    for s in (small, large):
        own = med(s.dagpar) - med(s.slices)
        print(
            f"{s.tests:>9} {s.big:>9} {med(s.pytest):>9.1f} {med(s.dagpar):>9.1f}"
            f" {med(s.dagpar) / med(s.pytest):>9.2f} {med(s.slices):>9.1f} {own:>9.1f}"
            f"   {med(s.pytest_cpu):>11.1f} {med(s.self_cpu):>7.1f} {med(s.children_cpu):>7.1f}"
        )
    scale = large.tests / small.tests
    failed: list[str] = []
    print(f"\nstage CPU seconds (growth: (large / small) / {scale:.1f}; 1.0 = linear)")
    for stage in STAGES:
        a, b = med(small.stages[stage]), med(large.stages[stage])
        growth = (b / max(a, 0.01)) / scale
        flag = ""
        if b >= args.min_stage and growth > args.max_growth:
            flag = "  SUPERLINEAR"
            failed.append(f"stage {stage} grows superlinearly ({growth:.2f})")
        print(f"  {stage:>13}: {a:7.2f} -> {b:7.2f}  growth {growth:5.2f}{flag}")
    ratio = med(large.dagpar) / med(large.pytest)
    if ratio > args.max_ratio:
        failed.append(
            f"dagpar takes {ratio:.2f} x serial pytest at {large.tests} tests (> {args.max_ratio})"
        )
    for line in failed:
        print(f"FAIL: {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
