"""A matrix planned together against its values run one after another, and against the bound.

Run ``python bench/matrix_bench.py`` (``--quick`` for fewer cases). Each case is a heavy-tailed
suite (log-normal sigma 1.5 or Pareto alpha 1.5 durations, or a suite recorded under
``bench/data``) run under a matrix of 3 values (think three Python versions): value ``v`` takes
the suite's seconds times a per-value factor and a small per-item jitter, so the values differ.
Timings are exact: the planners are told the true seconds.

Contenders, on the same ``N`` workers:

- ``separate`` (the baseline): three ``dagpar check`` runs one after another, one per value,
  each planned alone by :class:`~dagpar_cli.planning.greedy.GreedyPlanner` (up to ``4 N``
  slices, run as planned); its makespan is the sum of the three;
- ``matrix``: one run whose grid (3 values x the suite's items) is cut into sub-grids by
  :func:`dagpar_cli.planning.grid.plan_grid` (up to ``4 N`` slices).

Each plan is scored by simulating the executor: every slice costs the start-up plus its items'
seconds, slices go in plan order to the next free worker. The lower bound of the matrix run is
one start-up + max(total / N, largest item). The two contenders are planned in alternating order
from case to case, and the planning time of each is printed too.

Printed per case: ``matrix / separate`` (target <= 0.8) and ``matrix / bound`` (target <= 1.05),
and ``pole`` where one value's largest item outweighs its share of a worker (total / N): there
a run alone waits on its long pole, which planning the values together hides. Then the geometric
means and the worst case of each, over all cases and over the pole cases. The exit code is 1
when an overall mean misses its target.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dagpar_cli.model import Item
from dagpar_cli.planning.api import PlanRequest
from dagpar_cli.planning.greedy import GreedyPlanner
from dagpar_cli.planning.grid import plan_grid
from dagpar_cli.planning.request import OVERSLICE

DATA = Path(__file__).resolve().parent / "data"
#: The matrix's values and how much slower or faster each runs the suite.
VALUES = {"3.11": 1.0, "3.12": 0.9, "3.13": 1.15}
#: Per-item, per-value jitter (log-normal sigma) on top of the value's factor.
JITTER = 0.1
TARGET_SEPARATE = 0.8
TARGET_BOUND = 1.05


@dataclass(frozen=True)
class Case:
    """One suite under the matrix, on *workers* workers."""

    name: str
    paths: tuple[str, ...]
    #: True seconds per value, per path.
    seconds: dict[str, tuple[float, ...]]
    workers: int
    startup: float


def suites(sizes: Sequence[int], seed: int) -> list[tuple[str, tuple[str, ...], list[float]]]:
    """Heavy-tailed synthetic suites, and the real ones under ``bench/data``."""
    rng = random.Random(seed)
    found = []
    for n in sizes:
        paths = tuple(f"tests/d{i % 37:02d}/test_{i:05d}.py" for i in range(n))
        found.append((f"lognormal-{n}", paths, [0.05 * rng.lognormvariate(0, 1.5) for _ in paths]))
        found.append((f"pareto-{n}", paths, [0.05 * rng.paretovariate(1.5) for _ in paths]))
    for file in sorted(DATA.glob("*.json")):
        data = json.loads(file.read_text())
        durations = data.get("files")
        if durations and len(durations) >= 10:
            paths = tuple(sorted(durations))
            found.append((f"{data['name']}-files", paths, [float(durations[p]) for p in paths]))
    return found


def cases(quick: bool, seed: int) -> list[Case]:
    rng = random.Random(seed + 1)
    sizes = (50, 400) if quick else (50, 200, 1000)
    workers = (4, 16) if quick else (2, 4, 8, 16, 32)
    startups = (0.5,) if quick else (0.5, 2.0)
    made = []
    for name, paths, base in suites(sizes, seed):
        per_value = {
            value: tuple(s * factor * rng.lognormvariate(0, JITTER) for s in base)
            for value, factor in VALUES.items()
        }
        for n in workers:
            for startup in startups:
                made.append(Case(name, paths, per_value, n, startup))
    return made


def simulate(costs: Sequence[float], workers: int) -> float:
    """Makespan of slices (each its cost, start-up included) in order on *workers* workers."""
    free = [0.0] * workers
    for cost in costs:
        heapq.heapreplace(free, free[0] + cost)
    return max(free)


def plan_separate(case: Case) -> float:
    """Each value planned alone and run to its end before the next starts."""
    total = 0.0
    for seconds in case.seconds.values():
        items = tuple(Item((p,), p) for p in case.paths)
        plan = GreedyPlanner().plan(
            PlanRequest(
                check="bench:test",
                items=items,
                predictions=dict(zip(case.paths, seconds, strict=True)),
                has_history=True,
                workers=case.workers,
                max_slices=OVERSLICE * case.workers,
                startup_seconds=case.startup,
                spread=0.0,
            )
        )
        truth = dict(zip(case.paths, seconds, strict=True))
        costs = [case.startup + math.fsum(truth[i.path] for i in sp.items) for sp in plan.slices]
        check_complete({i.path for sp in plan.slices for i in sp.items}, set(case.paths))
        total += simulate(costs, case.workers)
    return total


def plan_matrix(case: Case) -> float:
    """The grid planned together."""
    items = [Item((p,), p, (("python", v),)) for v in case.seconds for p in case.paths]
    truth = {
        item.key: case.seconds[item.matrix[0][1]][k % len(case.paths)]
        for k, item in enumerate(items)
    }
    plan = plan_grid(
        items,
        truth,
        workers=case.workers,
        max_slices=OVERSLICE * case.workers,
        startup=case.startup,
        merge_rows=True,
    )
    check_complete({i.key for sp in plan.slices for i in sp.items}, set(truth))
    costs = [case.startup + math.fsum(truth[i.key] for i in sp.items) for sp in plan.slices]
    return simulate(costs, case.workers)


def lower_bound(case: Case) -> float:
    every = [s for seconds in case.seconds.values() for s in seconds]
    return case.startup + max(math.fsum(every) / case.workers, max(every))


def pole_bound(case: Case) -> bool:
    """Whether a value run alone is bound by its largest item rather than by its total."""
    return any(max(s) > math.fsum(s) / case.workers for s in case.seconds.values())


def check_complete(got: set[str], wanted: set[str]) -> None:
    if got != wanted:
        raise SystemExit("a plan lost or repeated items")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args(argv)
    vs_separate: list[float] = []
    vs_bound: list[float] = []
    poles: list[bool] = []
    spent = {"separate": 0.0, "matrix": 0.0}
    print(f"{'case':<26} {'N':>3} {'startup':>7}  matrix/separate  matrix/bound")
    for k, case in enumerate(cases(args.quick, args.seed)):
        results: dict[str, float] = {}
        order = ("separate", "matrix") if k % 2 == 0 else ("matrix", "separate")
        for contender in order:
            start = time.perf_counter()
            results[contender] = (plan_separate if contender == "separate" else plan_matrix)(case)
            spent[contender] += time.perf_counter() - start
        vs_separate.append(results["matrix"] / results["separate"])
        vs_bound.append(results["matrix"] / lower_bound(case))
        poles.append(pole_bound(case))
        print(
            f"{case.name:<26} {case.workers:>3} {case.startup:>7.1f}  "
            f"{vs_separate[-1]:>15.3f}  {vs_bound[-1]:>12.3f}  {'pole' if poles[-1] else ''}"
        )
    mean_separate = statistics.geometric_mean(vs_separate)
    mean_bound = statistics.geometric_mean(vs_bound)
    print()
    print(
        f"matrix / separate: geometric mean {mean_separate:.3f}, worst {max(vs_separate):.3f} "
        f"(target <= {TARGET_SEPARATE})"
    )
    print(
        f"matrix / bound:    geometric mean {mean_bound:.3f}, worst {max(vs_bound):.3f} "
        f"(target <= {TARGET_BOUND})"
    )
    pole_separate = [r for r, p in zip(vs_separate, poles, strict=True) if p]
    pole_bound_ratios = [r for r, p in zip(vs_bound, poles, strict=True) if p]
    if pole_separate:
        print(
            f"pole cases ({len(pole_separate)} of {len(poles)}): matrix / separate "
            f"{statistics.geometric_mean(pole_separate):.3f} (worst {max(pole_separate):.3f}), "
            f"matrix / bound {statistics.geometric_mean(pole_bound_ratios):.3f} "
            f"(worst {max(pole_bound_ratios):.3f})"
        )
    print(
        f"planning time: matrix {spent['matrix']:.2f} s, separate {spent['separate']:.2f} s "
        f"(ratio {spent['matrix'] / max(spent['separate'], 1e-9):.2f})"
    )
    return 0 if mean_separate <= TARGET_SEPARATE and mean_bound <= TARGET_BOUND else 1


if __name__ == "__main__":
    raise SystemExit(main())
