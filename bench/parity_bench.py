"""Runner parity: ``dagpar check -j N`` against what a user would run instead, per runner.

For each of pytest, Jest (where ``tests/data/jest-deps/node_modules`` holds Jest) and Go (where
``go`` is on PATH) the bench writes a generated suite with a heavy tail to a temporary directory:
files (packages) that cost start-up and import or compile work, tests that burn CPU or wait, a few
slow files. It runs ``dagpar check`` on it twice (timing history and a listing cache), times
every file alone once with the runner's own report to split by hand, then alternates,
``--repeat`` times (default 3):

- ``dagpar check -j N``;
- the runner's own parallel mode: ``pytest -n N``, ``jest -w N``, ``go test -p N ./...``;
- a longest-first split by hand: the files dealt greedily (longest first, to the least loaded)
  into N groups, run as N concurrent runner processes; wall time = the slowest.

A real suite is benched the same way: ``attrs`` (1,400 tests, many of them hypothesis
properties), whose source distribution, tests included, is downloaded from PyPI and run from its
``src`` directory. It is skipped, saying so, when PyPI cannot be reached. One of its tests fails
on some Pythons, so an exit code of 1 is accepted there, from every contender alike.

The machine may be shared, so only medians measured in the same run are printed, as ratios of
dagpar to each baseline (below 1.00: dagpar is faster).

With ``--timeline``, the Jest part then alternates the three contenders ``--repeat`` times more,
each with a JSON report (Jest's ``--json``, ``dagpar check --json``), and prints where the time
goes, as medians of seconds since the contender was started: the first test's start, the last
one's end, and the exit; for dagpar also its own time outside its run clock (interpreter
start-up, and what it does before its clock starts and after it stops). A test starts after its
file has loaded (a few hundred milliseconds after Jest's ``startTime`` of the file), so the Jest
contenders run with dagpar's own Jest reporter too, which records each test's start as dagpar
does; their first file's start is printed as well ("first file").

Jest gets two suites of the same shape: ``jest``, whose tests burn wall-clock time, and
``jest-cpu``, whose tests burn CPU time (see :data:`JEST_BURN` for why both).

Run: ``python bench/parity_bench.py [--repeat N] [-j N] [--only pytest,attrs,jest,jest-cpu,go]
[--timeline]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JEST_MODULES = ROOT / "tests" / "data" / "jest-deps" / "node_modules"

#: Per file: (tests, milliseconds of CPU work per test, milliseconds of waiting per test). A few
#: slow files, a middle, and many quick ones: the shape of a real suite's duration histogram.
SHAPE: list[tuple[int, int, int]] = [
    (6, 200, 80),
    (4, 300, 100),
    (8, 100, 40),
    *[(10, 40, 10)] * 6,
    *[(6, 8, 4)] * 20,
]


#: The real pytest suite: a pinned release, so that every run benches the same tests.
ATTRS = "attrs==26.1.0"

# --------------------------------------------------------------------------------------------
# suites
# --------------------------------------------------------------------------------------------


def write_pytest(root: Path) -> list[str]:
    """A pytest suite under *root*; returns its test files (relative to *root*)."""
    tests = root / "tests"
    tests.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    # A module every file imports, with import-time work, like an application package.
    (tests / "helpers.py").write_text(
        "import json, decimal, fractions, statistics\n"
        "TABLE = [str(i) * 3 for i in range(20000)]\n"
        "def burn(ms):\n"
        "    import time\n"
        "    end = time.process_time() + ms / 1000\n"
        "    while time.process_time() < end:\n"
        "        sum(range(500))\n"
    )
    (tests / "conftest.py").write_text(
        "import sys, os\nsys.path.insert(0, os.path.dirname(__file__))\n"
    )
    files = []
    for k, (count, cpu, wait) in enumerate(SHAPE):
        body = ["import time", "from helpers import burn", ""]
        for i in range(count):
            body += [
                "",
                f"def test_{k}_{i}():",
                f"    burn({cpu})",
                f"    time.sleep({wait / 1000})",
            ]
        name = f"tests/test_f{k:02d}.py"
        (root / name).write_text("\n".join(body) + "\n")
        files.append(name)
    return files


def fetch_attrs(base: Path) -> Path | None:
    """attrs' source tree, its tests with it, unpacked under *base*; None when PyPI fails."""
    sdist = base / "sdist"
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
    proc = subprocess.run(
        [*pip, "-d", str(sdist), ATTRS],
        capture_output=True,
        text=True,
        check=False,
    )
    archives = sorted(sdist.glob("*.tar.gz"))
    if proc.returncode != 0 or not archives:
        reason = (proc.stderr.strip().splitlines() or ["no archive"])[-1]
        print(f"attrs: skipped (pip download {ATTRS} failed: {reason})")
        return None
    with tarfile.open(archives[0]) as tar:
        tar.extractall(base, filter="data")
    return base / archives[0].name.removesuffix(".tar.gz")


#: How a Jest test burns its milliseconds: until the wall clock has moved that far (the first
#: suite), or until the process has used that much CPU time (``jest-cpu``, like the pytest
#: suite's ``time.process_time``). With the wall clock a test takes as long however little CPU it
#: gets, so starting more processes than there are cores looks free and a contender's own CPU
#: use hides; real CPU-bound tests take longer when they share a core.
JEST_BURN = {
    "wall": "const burn = (ms) => { const end = Date.now() + ms; let s = 0;"
    " while (Date.now() < end) { s += Math.sqrt(s + 1); } return s; };",
    "cpu": "const cpu = () => { const u = process.cpuUsage();"
    " return (u.user + u.system) / 1000; };\n"
    "const burn = (ms) => { const end = cpu() + ms; let s = 0;"
    " while (cpu() < end) { for (let i = 0; i < 1000; i++) s += Math.sqrt(s + 1); } return s; };",
}


def write_jest(root: Path, clock: str = "wall") -> list[str]:
    """A Jest suite under *root*, burning by *clock* (:data:`JEST_BURN`); returns its files."""
    (root / "src").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "package.json").write_text(
        json.dumps({"name": "parity", "private": True, "jest": {"testEnvironment": "node"}})
    )
    (root / "node_modules").symlink_to(JEST_MODULES)
    # Application modules every test file requires: transform and module-registry work per file.
    for m in range(4):
        funcs = "\n".join(
            f"exports.f{m}_{i} = function (x) {{ return x * {i} + {m}; }};" for i in range(300)
        )
        (root / "src" / f"mod{m}.js").write_text(funcs + "\n")
    files = []
    for k, (count, cpu, wait) in enumerate(SHAPE):
        body = [
            *(f"const m{m} = require('../src/mod{m}.js');" for m in range(4)),
            "const sleep = (ms) => new Promise((r) => setTimeout(r, ms));",
            JEST_BURN[clock],
        ]
        for i in range(count):
            body.append(f"test('t{k}_{i}', async () => {{ burn({cpu}); await sleep({wait}); }});")
        name = f"tests/f{k:02d}.test.js"
        (root / name).write_text("\n".join(body) + "\n")
        files.append(name)
    return files


def write_go(root: Path) -> list[str]:
    """A Go module under *root*; returns its packages (``./pNN``)."""
    root.mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/parity\n\ngo 1.19\n")
    packages = []
    for k, (count, cpu, wait) in enumerate(SHAPE[:16]):
        pkg = root / f"p{k:02d}"
        pkg.mkdir()
        # Code to compile: the build is part of what a Go suite costs.
        funcs = "\n".join(f"func F{i}(x int) int {{ return x*{i} + {k} }}" for i in range(400))
        (pkg / "code.go").write_text(f"package p{k:02d}\n\n{funcs}\n")
        tests = [
            f"package p{k:02d}",
            "",
            'import (\n\t"testing"\n\t"time"\n)',
            "",
            "func burn(ms int) int {\n\tend := time.Now().Add(time.Duration(ms) * time.Millisecond)"
            "\n\ts := 0\n\tfor time.Now().Before(end) {\n\t\ts += F1(s) % 7\n\t}\n\treturn s\n}",
        ]
        for i in range(count):
            tests.append(
                f"\nfunc TestT{i}(t *testing.T) {{\n\tburn({cpu})\n"
                f"\ttime.Sleep({wait} * time.Millisecond)\n}}"
            )
        (pkg / "code_test.go").write_text("\n".join(tests) + "\n")
        packages.append(f"./p{k:02d}")
    return packages


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------


def run(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)
) -> float:
    """Run *argv* in *cwd*; its wall seconds (exits on an exit code not in *ok*)."""
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - start
    if proc.returncode not in ok:
        raise SystemExit(
            f"{' '.join(argv)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}"
        )
    return seconds


def run_together(
    argvs: list[list[str]],
    cwd: Path,
    env: dict[str, str] | None = None,
    ok: tuple[int, ...] = (0,),
    envs: list[dict[str, str]] | None = None,
) -> float:
    """Run *argvs* concurrently, in *env* or each in its own of *envs*; wall seconds until the
    last one ends."""
    each = envs if envs is not None else [env] * len(argvs)
    start = time.monotonic()
    procs = [
        subprocess.Popen(a, cwd=cwd, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for a, e in zip(argvs, each, strict=True)
    ]
    for proc, argv in zip(procs, argvs, strict=True):
        _, err = proc.communicate()
        if proc.returncode not in ok:
            raise SystemExit(
                f"{' '.join(argv)} failed ({proc.returncode}):\n{err.decode()[-3000:]}"
            )
    return time.monotonic() - start


def longest_first(durations: dict[str, float], groups: int) -> list[list[str]]:
    """Deal *durations*' files longest first to the least loaded of *groups* groups."""
    loads = [0.0] * groups
    out: list[list[str]] = [[] for _ in range(groups)]
    for name, seconds in sorted(durations.items(), key=lambda kv: -kv[1]):
        g = loads.index(min(loads))
        out[g].append(name)
        loads[g] += seconds
    return [g for g in out if g]


def file_durations(
    files: list[str],
    one: Callable[[str], list[str]],
    cwd: Path,
    env: dict[str, str] | None,
    ok: tuple[int, ...] = (0,),
) -> dict[str, float]:
    """Each file's wall seconds run alone: what a hand split would be built from."""
    return {f: run(one(f), cwd, env, ok) for f in files}


def bench(
    name: str,
    root: Path,
    files: list[str],
    parallel: list[str],
    one: Callable[[list[str]], list[str]],
    args: argparse.Namespace,
    env: dict[str, str] | None = None,
    ok: tuple[int, ...] = (0,),
) -> tuple[str, float, float, float, list[list[str]]]:
    """Alternate dagpar, the runner's parallel mode and a hand split on the suite at *root*.

    An exit code in *ok* counts as a finished run, for every contender alike.
    """
    workers = args.parallelism
    dagpar = [sys.executable, "-m", "dagpar_cli", "check", "-C", str(root), "-j", str(workers)]
    run(dagpar, root, env, ok)  # timing history
    run(dagpar, root, env, ok)  # and a listing cache that matches the tree
    durations = file_durations(files, lambda f: one([f]), root, env, ok)
    groups = [one(g) for g in longest_first(durations, workers)]
    times: dict[str, list[float]] = {"dagpar": [], "parallel": [], "hand": []}
    for _ in range(args.repeat):
        times["dagpar"].append(run(dagpar, root, env, ok))
        times["parallel"].append(run(parallel, root, env, ok))
        times["hand"].append(run_together(groups, root, env, ok))
    ours = statistics.median(times["dagpar"])
    theirs = statistics.median(times["parallel"])
    hand = statistics.median(times["hand"])
    print(
        f"{name:<7} {ours:>9.2f} s {theirs:>9.2f} s {hand:>9.2f} s "
        f"{ours / theirs:>10.2f} {ours / hand:>10.2f}",
        flush=True,
    )
    return name, ours, theirs, hand, groups


class Timeline:
    """Per contender, the seconds since its start of each phase boundary, one list per run."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, list[float]]] = {}

    def add(self, contender: str, **marks: float) -> None:
        """Record one run's phase boundaries."""
        for mark, seconds in marks.items():
            self.rows.setdefault(contender, {}).setdefault(mark, []).append(seconds)

    def print(self) -> None:
        """Medians, one line per contender."""
        marks = ["first file", "first test", "last test end", "exit", "outside clock"]
        print("  where the time goes (s since start, medians):")
        print("  " + f"{'':<10}" + "".join(f"{m:>15}" for m in marks))
        for contender, row in self.rows.items():
            cells = [
                f"{statistics.median(row[m]):>15.2f}" if m in row else f"{'':>15}" for m in marks
            ]
            print(f"  {contender:<10}" + "".join(cells), flush=True)


def _jest_span(report: Path, started: float) -> tuple[float, float, float]:
    """First test file's start, first test's start and last file's end, since *started*, from a
    Jest ``--json`` report and the records dagpar's reporter wrote next to it (``.events``)."""
    results = json.loads(report.read_text())["testResults"]
    events = report.with_suffix(".events")
    starts = [
        record["at"]
        for line in events.read_text().splitlines()
        if (record := json.loads(line)).get("event") == "start"
    ]
    return (
        min(r["startTime"] for r in results) / 1000 - started,
        min(starts) - started,
        max(r["endTime"] for r in results) / 1000 - started,
    )


def _with_reporter(argv: list[str], out: Path) -> tuple[list[str], dict[str, str]]:
    """*argv* (writing the JSON report *out*) also loading dagpar's Jest reporter, and its
    environment: the reporter appends a record per test start and end to ``out.events``."""
    from dagpar_plugins.jest.names import PROGRESS_ENV, STREAM_ENV

    reporter = out.parent / "dagpar-jest-reporter.js"
    if not reporter.exists():
        from dagpar_plugins.jest.names import reporter_source

        reporter.write_text(reporter_source())
    for stale in (out.with_suffix(".events"), out.with_suffix(".progress")):
        stale.unlink(missing_ok=True)
    env = {
        **os.environ,
        STREAM_ENV: str(out.with_suffix(".events")),
        PROGRESS_ENV: str(out.with_suffix(".progress")),
    }
    return [*argv, f"--reporters={reporter}", "--reporters=default"], env


def jest_timeline(
    root: Path, groups: list[list[str]], jest: list[str], args: argparse.Namespace
) -> None:
    """Alternate the Jest contenders with JSON reports and print where their time goes."""
    workers = args.parallelism
    dagpar = [sys.executable, "-m", "dagpar_cli", "check", "-C", str(root), "-j", str(workers)]
    reports = root.parent / "timeline"
    reports.mkdir(exist_ok=True)
    timeline = Timeline()
    for _ in range(args.repeat):
        started = time.time()
        proc = subprocess.run([*dagpar, "--json"], cwd=root, capture_output=True, check=True)
        ended = time.time()
        data = json.loads(proc.stdout)
        tests = [t for check in data["checks"] for t in check["tests"] if t.get("start")]
        timeline.add(
            "dagpar",
            **{
                "first test": min(t["start"] for t in tests) - started,
                "last test end": max(t["start"] + t["seconds"] for t in tests) - started,
                "exit": ended - started,
                "outside clock": ended - started - data["seconds"],
            },
        )
        out = reports / "parallel.json"
        argv, env = _with_reporter(
            [*jest, "-w", str(workers), "--json", f"--outputFile={out}"], out
        )
        started = time.time()
        run(argv, root, env)
        ended = time.time()
        file, first, last = _jest_span(out, started)
        timeline.add(
            "parallel",
            **{
                "first file": file,
                "first test": first,
                "last test end": last,
                "exit": ended - started,
            },
        )
        outs = [reports / f"hand-{k}.json" for k in range(len(groups))]
        pairs = [
            _with_reporter([*jest, "-w", "1", "--json", f"--outputFile={o}", *g], o)
            for g, o in zip(groups, outs, strict=True)
        ]
        started = time.time()
        ended = started + run_together([a for a, _ in pairs], root, envs=[e for _, e in pairs])
        spans = [_jest_span(o, started) for o in outs]
        timeline.add(
            "by hand",
            **{
                "first file": min(s[0] for s in spans),
                "first test": min(s[1] for s in spans),
                "last test end": max(s[2] for s in spans),
                "exit": ended - started,
            },
        )
    timeline.print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("-j", "--parallelism", type=int, default=2)
    parser.add_argument("--only", default="pytest,attrs,jest,jest-cpu,go")
    parser.add_argument("--timeline", action="store_true", help="Jest: where the time goes")
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    j = args.parallelism
    print(f"-j {j}; medians of {args.repeat}, alternated; ratio < 1.00: dagpar is faster")
    print(
        f"{'runner':<7} {'dagpar':>11} {'parallel':>11} {'by hand':>11} "
        f"{'÷ parallel':>10} {'÷ by hand':>10}"
    )
    with tempfile.TemporaryDirectory(prefix="dagpar-parity-") as tmp:
        base = Path(tmp)
        if "pytest" in wanted:
            root = base / "py"
            files = write_pytest(root)
            pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
            bench("pytest", root, files, [*pytest, "-n", str(j)], lambda fs: [*pytest, *fs], args)
        if "attrs" in wanted and (root := fetch_attrs(base / "attrs")) is not None:
            files = sorted(p.relative_to(root).as_posix() for p in root.glob("tests/test_*.py"))
            env = {**os.environ, "PYTHONPATH": str(root / "src")}
            pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
            parallel = [*pytest, "-n", str(j)]
            one = lambda fs: [*pytest, *fs]  # noqa: E731
            bench("attrs", root, files, parallel, one, args, env, ok=(0, 1))
        for name, clock in (("jest", "wall"), ("jest-cpu", "cpu")):
            if name not in wanted:
                continue
            if JEST_MODULES.is_dir():
                root = base / name
                files = write_jest(root, clock)
                jest = [str(JEST_MODULES / ".bin" / "jest"), "--ci"]
                *_, groups = bench(
                    name,
                    root,
                    files,
                    [*jest, "-w", str(j)],
                    lambda fs, jest=jest: [*jest, "-w", "1", *fs],
                    args,
                )
                if args.timeline:
                    jest_timeline(root, [g[len(jest) + 2 :] for g in groups], jest, args)
            else:
                print(f"{name}: skipped ({JEST_MODULES} is missing)")
        if "go" in wanted:
            go = shutil.which("go")
            if go:
                root = base / "go"
                packages = write_go(root)
                env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off"}
                gotest = [go, "test", "-count=1"]
                bench(
                    "go",
                    root,
                    packages,
                    [*gotest, "-p", str(j), "./..."],
                    lambda ps: [*gotest, "-p", "1", *ps],
                    args,
                    env,
                )
            else:
                print("go: skipped (go is not on PATH)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
