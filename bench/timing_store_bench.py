"""The timing store's cost of recording a large run, once it holds a full history.

A custom toolchain's run of ``--items`` no-op items (default 200,000) is recorded ``--runs``
times (default 12: past the ten samples a key keeps) into a fresh store; the CPU seconds of each
``TimingStore.record`` and the database's size at the end are measured. The last three records
are the steady state: every key then holds its full history.

With ``--baseline DIR`` (a checkout of another dagpar, e.g. ``git worktree add /tmp/old v1.2``),
the same is measured with that dagpar's ``dagpar_cli`` first on ``PYTHONPATH``, the two
contenders alternated ``--repeat`` times (default 1), and the ratio printed. ``uptime``'s load
is printed: the machine may be shared, so CPU time is what is compared.

Run: ``python bench/timing_store_bench.py [--items 200000] [--runs 12] [--baseline DIR]
[--repeat 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

#: Run in a child process, so that each contender imports its own dagpar.
CHILD = """
import json, os, resource, sys, tempfile, time
from pathlib import Path

import dagpar_cli
from dagpar_cli.model import CheckResult, Item, RunResult, SliceResult, Status, TestResult
from dagpar_cli.timings.store import TimingStore

items, runs = int(sys.argv[1]), int(sys.argv[2])


def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


slices = []
for index in (1, 2):
    results = tuple(
        TestResult(path=f"item/{i:06d}", name="run", status=Status.PASSED,
                   seconds=1e-7 * (1 + i % 7), check="noop:test", slice=index)
        for i in range(index - 1, items, 2)
    )
    slices.append(SliceResult(index=index, items=tuple(Item((r.path,), r.path) for r in results),
                              results=results, seconds=0.1))
every = tuple(r for s in slices for r in s.results)
run = RunResult(checks=(CheckResult(name="noop:test", results=every, slices=tuple(slices)),),
                seconds=1.0)
spent = []
with tempfile.TemporaryDirectory() as workspace:
    for _ in range(runs):
        with TimingStore.open(Path(workspace)) as store:
            before = cpu()
            store.record(run, runner_of={}, executor="local")
            spent.append(cpu() - before)
        time.sleep(0.01)
    size = os.path.getsize(Path(workspace) / ".dagpar" / "timings.sqlite")
print(json.dumps({"cpu": spent, "mb": size / 1e6, "dagpar": dagpar_cli.__file__}))
"""


def measure(items: int, runs: int, path: str | None) -> dict[str, object]:
    """One contender: its per-record CPU seconds and database size."""
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(items), str(runs)],
        env=env,
        cwd="/",  # not the checkout: -c puts the working directory first on sys.path
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, object] = json.loads(out.splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--baseline", help="a checkout of another dagpar to compare with")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")
    here = str(Path(__file__).resolve().parents[1])
    contenders = {"this dagpar": here}
    if args.baseline:
        contenders["baseline"] = args.baseline
    steady: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeat):
        for name, path in contenders.items():
            found = measure(args.items, args.runs, path)
            cpu = [float(c) for c in found["cpu"]]  # type: ignore[attr-defined]
            steady[name].append(statistics.median(cpu[-3:]))
            print(
                f"{name}: {args.items} items, record CPU first {cpu[0]:.2f} s, steady "
                f"{steady[name][-1]:.2f} s, database {found['mb']:.0f} MB ({found['dagpar']})"
            )
    if args.baseline:
        ours, theirs = (statistics.median(steady[n]) for n in ("this dagpar", "baseline"))
        print(f"steady record CPU: {ours:.2f} s vs baseline {theirs:.2f} s = {ours / theirs:.2f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
