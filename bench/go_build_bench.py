"""Where a Go suite's time goes: building test binaries against running them, and pre-building.

``go test -json`` reports how long each test binary ran (``Elapsed``) but not how long its
package took to compile, link and vet. This bench asks go itself: ``-debug-actiongraph`` writes
every build action with its start and end, so each package's own build (its test variants, the
link of its test binary, vet) is measured exactly, next to its ``test run`` action.

Two generated modules: ``parity`` (the 16 packages of ``parity_bench.py``: heavy tests, light
code) and ``wide`` (48 packages of small tests, all importing two shared internal packages with a
lot of code: the shape of a real module). For each it prints:

1. per package, cold (an empty ``GOCACHE``) and warm: total build seconds and run seconds over
   the packages, and the median package's link;
2. what a second slice holding the same package costs: ``go test -run TestT0 ./pkg``, then
   ``-run TestT1`` on the same package: go links the test binary again (test binaries are never
   cached), so a package cut into two slices pays its link twice;
3. the whole suite at ``-j N`` (default 2), alternated ``--repeat`` times (default 3), warm:
   ``go test -p N ./...``; N concurrent ``go test`` processes over a longest-first split of the
   packages (what dagpar's slices do), with go's default ``-p`` (the CPUs) and with ``-p 1``
   (each process builds and runs one package at a time); the default after a pre-build that
   compiles everything once without linking (``go list -export -deps -test ./...``); and
   pre-built test binaries
   (``go test -c`` per package into a kept directory, which go leaves alone when it is up to
   date) run by N workers through ``go tool test2json``. Wall and CPU seconds (user and system
   of every process) are printed, CPU being the less noisy on a shared machine.

``dagpar check -j N`` runs alongside (twice first, for history), and with ``--baseline PYTHON``
another dagpar too (an older checkout installed in another venv), each on its own copy.

Run: ``python bench/go_build_bench.py [--repeat N] [-j N] [--only parity,wide] [--baseline PY]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parity_bench import write_go

#: Packages of the wide module, and functions in each of its two shared packages.
WIDE_PACKAGES, SHARED_FUNCS = 48, 1500


def write_wide(root: Path) -> list[str]:
    """A module of many small test packages over shared internal code; returns the packages."""
    root.mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/wide\n\ngo 1.19\n")
    for name in ("shared", "util"):
        pkg = root / "internal" / name
        pkg.mkdir(parents=True)
        funcs = "\n".join(
            f"func {name.title()}{i}(x int) int {{ if x > {i} {{ return x - {i} }}; return x*{i} }}"
            for i in range(SHARED_FUNCS)
        )
        (pkg / f"{name}.go").write_text(f"package {name}\n\n{funcs}\n")
    packages = []
    for k in range(WIDE_PACKAGES):
        pkg = root / f"w{k:02d}"
        pkg.mkdir()
        (pkg / "code.go").write_text(
            f"package w{k:02d}\n\nimport (\n\t"
            '"example.com/wide/internal/shared"\n\t"example.com/wide/internal/util"\n)\n\n'
            f"func F(x int) int {{ return shared.Shared{k}(x) + util.Util{k}(x) }}\n"
        )
        tests = [f"package w{k:02d}", "", 'import (\n\t"testing"\n\t"time"\n)', ""]
        for i in range(4):
            tests.append(
                f"func TestT{i}(t *testing.T) {{\n\ttime.Sleep({10 + 5 * (k % 4)} * "
                f"time.Millisecond)\n\tif F({i}) < -1 {{\n\t\tt.Fatal()\n\t}}\n}}\n"
            )
        (pkg / "code_test.go").write_text("\n".join(tests))
        packages.append(f"./w{k:02d}")
    return packages


def _at(stamp: str) -> float:
    # Go writes nanoseconds; fromisoformat takes at most microseconds.
    head, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(head).timestamp() + float("0." + (frac or "0"))


def actions(path: Path) -> list[dict[str, object]]:
    """The actions go ran, from a ``-debug-actiongraph`` file."""
    return [a for a in json.loads(path.read_text()) if a.get("TimeStart") and a.get("TimeDone")]


def per_package(graph: list[dict[str, object]], module: str) -> dict[str, dict[str, float]]:
    """Seconds per package of the module: its own build actions, its link, and its test run."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for a in graph:
        mode, package = str(a.get("Mode")), str(a.get("Package") or "")
        seconds = _at(str(a["TimeDone"])) - _at(str(a["TimeStart"]))
        if not package.startswith(module):
            continue
        base = package.split(" ", 1)[0].removesuffix(".test").removesuffix("_test")
        if mode == "test run":
            out[base]["run"] += seconds
        elif mode == "link":
            out[base]["link"] += seconds
            out[base]["build"] += seconds
        elif mode in ("build", "vet") and (" [" in package or package.endswith(("_test", ".test"))):
            out[base]["build"] += seconds  # the package's own test variants, and its vet
        elif mode == "vet":
            out[base]["build"] += seconds
        elif mode == "build":
            out["(shared deps)"]["build"] += seconds
    return out


def go_run(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run *argv*; its wall seconds (exits on a failure)."""
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{(proc.stdout + proc.stderr)[-2000:]}")
    return time.monotonic() - start


def measure_packages(root: Path, module: str, env: dict[str, str], label: str, j: int) -> None:
    """Step 1: build against run, per package, from go's own action graph."""
    graph_file = root / "actions.json"
    go_run(
        ["go", "test", "-count=1", "-p", str(j), f"-debug-actiongraph={graph_file}", "./..."],
        root,
        env,
    )
    table = per_package(actions(graph_file), module)
    shared = table.pop("(shared deps)", {}).get("build", 0.0)
    builds = [t["build"] for t in table.values()]
    runs = [t["run"] for t in table.values()]
    links = [t["link"] for t in table.values()]
    print(
        f"  {label:<5} {len(table)} packages: build {sum(builds):6.2f} s (median "
        f"{statistics.median(builds):.2f}, link {statistics.median(links):.2f}), run "
        f"{sum(runs):6.2f} s (median {statistics.median(runs):.2f}), shared deps {shared:.2f} s"
    )


def measure_second_slice(root: Path, module: str, package: str, env: dict[str, str]) -> None:
    """Step 2: the same package in two slices, one after the other."""
    links = []
    for test in ("TestT0", "TestT1"):
        graph_file = root / "second.json"
        go_run(
            [
                "go",
                "test",
                "-count=1",
                "-run",
                f"^{test}$",
                f"-debug-actiongraph={graph_file}",
                package,
            ],
            root,
            env,
        )
        table = per_package(actions(graph_file), module)
        links.append(next(iter(table.values()))["link"])
    print(f"  second slice of {package}: link {links[0]:.2f} s, then again {links[1]:.2f} s")


def longest_first(seconds: dict[str, float], groups: int) -> list[list[str]]:
    """Packages dealt longest first to the least loaded group."""
    loads = [0.0] * groups
    out: list[list[str]] = [[] for _ in range(groups)]
    for name, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        g = loads.index(min(loads))
        out[g].append(name)
        loads[g] += s
    return [g for g in out if g]


def together(argvs: list[list[str]], cwd: Path, env: dict[str, str]) -> float:
    """Run *argvs* concurrently; wall seconds until the last ends."""
    start = time.monotonic()
    with ThreadPoolExecutor(len(argvs)) as pool:
        list(pool.map(lambda a: go_run(a, cwd, env), argvs))
    return time.monotonic() - start


def prebuilt(
    groups: list[list[str]], root: Path, bins: Path, module: str, env: dict[str, str]
) -> float:
    """Build each package's test binary into *bins* (kept), then run them, one worker a group."""

    def worker(group: list[str]) -> None:
        for package in group:
            binary = bins / (package.strip("./").replace("/", "_") + ".test")
            go_run(["go", "test", "-c", "-o", str(binary), package], root, env)
            if not binary.exists():
                continue  # a package without test files has no test binary
            importpath = module + "/" + package.strip("./")
            go_run(
                [
                    "go",
                    "tool",
                    "test2json",
                    "-t",
                    "-p",
                    importpath,
                    str(binary),
                    "-test.v",
                    "-test.count=1",
                ],
                root / package,
                env,
            )

    start = time.monotonic()
    with ThreadPoolExecutor(len(groups)) as pool:
        list(pool.map(worker, groups))
    return time.monotonic() - start


def measure_suite(
    root: Path, module: str, packages: list[str], env: dict[str, str], args: argparse.Namespace
) -> None:
    """Step 3: whole-suite contenders, warm, alternated."""
    j = args.parallelism
    graph_file = root / "actions.json"
    go_run(["go", "test", "-count=1", "-p", "1", f"-debug-actiongraph={graph_file}", *packages],
           root, env)  # fmt: skip
    table = per_package(actions(graph_file), module)
    cost = {f"./{p.removeprefix(module + '/')}": t["build"] + t["run"] for p, t in table.items()}
    cost.pop("./(shared deps)", None)
    groups = longest_first(cost, j)
    bins = root / ".bins"
    bins.mkdir(exist_ok=True)
    contenders = {
        f"go test -p {j} ./...": lambda: go_run(
            ["go", "test", "-count=1", "-p", str(j), "./..."], root, env
        ),
        f"{j} go test processes": lambda: together(
            [["go", "test", "-count=1", *g] for g in groups], root, env
        ),
        f"{j} go test -p 1 processes": lambda: together(
            [["go", "test", "-count=1", "-p", "1", *g] for g in groups], root, env
        ),
        "go list -export, then those": lambda: (
            go_run(["go", "list", "-export", "-deps", "-test", "./..."], root, env)
            + together([["go", "test", "-count=1", *g] for g in groups], root, env)
        ),
        "prebuilt binaries (kept)": lambda: prebuilt(groups, root, bins, module, env),
    }
    for label, python in [("dagpar", sys.executable), ("dagpar (baseline)", args.baseline)]:
        if not python:
            continue
        # Each dagpar gets its own copy of the module, so their timing stores stay apart.
        where = Path(shutil.copytree(root, root.parent / f"{root.name}-{len(contenders)}"))
        argv = [python, "-m", "dagpar_cli", "check", "-C", str(where), "-j", str(j)]
        go_run(argv, where, env)  # timing history
        go_run(argv, where, env)  # and a listing cache that matches the tree
        contenders[f"{label} -j {j}"] = lambda argv=argv, where=where: go_run(argv, where, env)
    prebuilt(groups, root, bins, module, env)  # the kept binaries exist from an earlier run
    times: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeat):
        for name, contender in contenders.items():
            before = _children_cpu()
            times[name].append(contender())
            cpu[name].append(_children_cpu() - before)
    base = statistics.median(times[f"go test -p {j} ./..."])
    base_cpu = statistics.median(cpu[f"go test -p {j} ./..."])
    for name, values in times.items():
        median, used = statistics.median(values), statistics.median(cpu[name])
        print(
            f"  {name:<30} {median:6.2f} s {median / base:5.2f} x   CPU {used:6.2f} s "
            f"{used / base_cpu:5.2f} x go test -p {j}"
        )


def _children_cpu() -> float:
    """User and system seconds of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("-j", "--parallelism", type=int, default=2)
    parser.add_argument("--only", default="parity,wide")
    parser.add_argument(
        "--baseline",
        default="",
        help="another Python whose dagpar_cli to time as well (e.g. an older checkout's venv)",
    )
    args = parser.parse_args()
    if not shutil.which("go"):
        print("go: skipped (go is not on PATH)")
        return 0
    print(f"load: {os.getloadavg()[0]:.2f}; -j {args.parallelism}; medians of {args.repeat}")
    with tempfile.TemporaryDirectory(prefix="dagpar-gobuild-") as tmp:
        base = Path(tmp)
        suites = {
            "parity": (write_go, "example.com/parity"),
            "wide": (write_wide, "example.com/wide"),
        }
        for name in args.only.split(","):
            write, module = suites[name]
            root = base / name
            packages = write(root)
            cache = base / f"cache-{name}"
            env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOCACHE": str(cache)}
            print(f"{name}: {len(packages)} packages")
            measure_packages(root, module, env, "cold", args.parallelism)
            measure_packages(root, module, env, "warm", args.parallelism)
            measure_second_slice(root, module, packages[0], env)
            measure_suite(root, module, packages, env, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
