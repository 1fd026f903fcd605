"""The inner loop: ``dagpar check --filter <one file>`` against the runner on that file alone.

A developer editing one test runs that one file again and again. dagpar must cost little more
than the runner itself there: with history, a file whose tests are quicker than a slice's
start-up runs in one slice, not cut across the workers where every slice pays the start-up.

For each runner (pytest; Jest where ``tests/data/jest-deps/node_modules`` holds Jest; Go where
``go`` is on PATH, a package standing for the file) the bench
writes a small suite to a temporary directory, runs ``dagpar check`` on all of it twice (history
and a listing cache), then alternates, ``--repeat`` times (default 5):

- ``dagpar check --filter <one file>`` (``-j`` as given, default the CPUs);
- the runner on that file alone (``pytest <file>``, ``jest <file>``, ``go test -count=1 ./pkg``).

In the pytest and Jest suites every run of either contender writes coverage into the tree, as
real suites do: Jest with its own ``collectCoverage`` (``coverage/``), pytest through a
``conftest.py`` that writes a ``.coverage`` database, ``coverage.xml`` and ``htmlcov/`` the way
pytest-cov would. Those files
must not make dagpar list the suite again.

The machine may be shared, so each contender's median is printed with their difference and
ratio, measured in the same run, the worst difference of one run against the runner's median
(the target holds for every run, not only for the median), and the slices dagpar cut on its
last run. The exit code is 1 when the median difference exceeds ``--budget`` seconds (default
0.5).

With ``--baseline PYTHON`` the dagpar of another interpreter (an older checkout's virtualenv)
runs in the same rotation, and its median and the ratio of the two dagpars are printed too.

Run: ``python bench/inner_loop_bench.py [--repeat N] [-j N] [--budget S]
[--only pytest,jest,go] [--baseline PYTHON]``.
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

ROOT = Path(__file__).resolve().parent.parent
JEST_MODULES = ROOT / "tests" / "data" / "jest-deps" / "node_modules"
#: Files in each suite, tests per file, and seconds each test sleeps.
FILES, TESTS, SLEEP = 6, 8, 0.02

#: What pytest-cov leaves in the tree after every run, written at the end of each session.
COVERAGE_CONFTEST = """\
import sqlite3, time
from pathlib import Path


def pytest_sessionfinish(session):
    root = Path(session.config.rootpath)
    stamp = repr(time.time())
    with sqlite3.connect(root / ".coverage") as db:
        db.execute("create table if not exists meta (key text, value text)")
        db.execute("insert into meta values ('when', ?)", (stamp,))
    (root / "coverage.xml").write_text(f"<coverage timestamp='{stamp}'/>")
    (root / "htmlcov").mkdir(exist_ok=True)
    (root / "htmlcov" / "index.html").write_text(stamp)
"""


def write_pytest(root: Path) -> list[str]:
    """A pytest suite under *root*; returns the command that runs one file with pytest."""
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    for k in range(FILES):
        body = ["import time", ""]
        for i in range(TESTS):
            body += ["", f"def test_{k}_{i}():", f"    time.sleep({SLEEP})", ""]
        (root / "tests" / f"test_file_{k}.py").write_text("\n".join(body))
    (root / "tests" / "conftest.py").write_text(COVERAGE_CONFTEST)
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_file_0.py"]


def write_jest(root: Path) -> list[str]:
    """A Jest suite under *root* (a ``web`` project); returns the command for one file."""
    web = root / "web"
    (web / "tests").mkdir(parents=True)
    (web / "package.json").write_text(
        json.dumps(
            {
                "name": "inner",
                "private": True,
                "jest": {"testEnvironment": "node", "collectCoverage": True},
            }
        )
    )
    (web / "node_modules").symlink_to(JEST_MODULES)
    for k in range(FILES):
        body = ["const sleep = (ms) => new Promise((r) => setTimeout(r, ms));", ""]
        for i in range(TESTS):
            body.append(f"test('t{k}_{i}', async () => {{ await sleep({int(SLEEP * 1000)}); }});")
        (web / "tests" / f"file_{k}.test.js").write_text("\n".join(body) + "\n")
    (root / "dagpar.yaml").write_text("toolchains:\n  web: {use: jest, source: web}\n")
    return [str(web / "node_modules" / ".bin" / "jest"), "tests/file_0.test.js"]


def write_go(root: Path) -> list[str]:
    """A Go module under *root*, one package per file; returns the command for one package.

    ``-count=1`` because a developer who edited the package gets no cached result either.
    """
    root.mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/inner\n\ngo 1.19\n")
    for k in range(FILES):
        pkg = root / f"pkg{k}"
        pkg.mkdir()
        (pkg / "code.go").write_text(f"package pkg{k}\n\nfunc F(x int) int {{ return x + {k} }}\n")
        body = [f"package pkg{k}", "", 'import (\n\t"testing"\n\t"time"\n)', ""]
        for i in range(TESTS):
            body.append(
                f"func TestT{i}(t *testing.T) {{\n\ttime.Sleep({int(SLEEP * 1000)} * "
                f"time.Millisecond)\n\tif F({i}) < 0 {{\n\t\tt.Fatal()\n\t}}\n}}\n"
            )
        (pkg / "code_test.go").write_text("\n".join(body))
    return [shutil.which("go") or "go", "test", "-count=1", "./pkg0"]


def run(argv: list[str], cwd: Path) -> tuple[float, str]:
    """Run *argv*; its wall seconds and stdout (exits on a failure)."""
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr)[-2000:]
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{output}")
    return seconds, proc.stdout


def bench(
    name: str, root: Path, runner: list[str], where: Path, selector: str, args: argparse.Namespace
) -> float:
    """Alternate dagpar and the runner (run in *where*) on one file of the suite at *root*.

    With ``--baseline PYTHON``, that interpreter's dagpar (an older checkout's virtualenv) runs
    in the same rotation, on a copy of the suite of its own (each keeps its own history and
    listing cache). Returns the median difference, dagpar's minus the runner's.
    """
    contenders = {"dagpar": (sys.executable, root)}
    if args.baseline:
        copy = root.with_name(root.name + "-baseline")
        shutil.copytree(root, copy, symlinks=True)
        contenders["baseline"] = (args.baseline, copy)
    commands: dict[str, tuple[list[str], Path]] = {}
    for label, (python, tree) in contenders.items():
        dagpar = [python, "-m", "dagpar_cli", "check", "-C", str(tree)]
        if args.parallelism:
            dagpar += ["-j", str(args.parallelism)]
        run(dagpar, tree)  # history
        run(dagpar, tree)  # and a listing cache that matches the tree
        commands[label] = ([*dagpar, "--filter", selector, "--json"], tree)
    times: dict[str, list[float]] = {label: [] for label in commands}
    times[name] = []
    slices = 0
    for _ in range(args.repeat):
        for label, (one, tree) in commands.items():
            seconds, out = run(one, tree)
            times[label].append(seconds)
            if label == "dagpar":
                slices = sum(len(check["slices"]) for check in json.loads(out)["checks"])
        times[name].append(run(runner, where)[0])
    ours, theirs = statistics.median(times["dagpar"]), statistics.median(times[name])
    worst = max(times["dagpar"]) - theirs
    print(
        f"{name:<7} {ours:>10.2f} s {theirs:>10.2f} s {ours - theirs:>+10.2f} s "
        f"{worst:>+10.2f} s {ours / theirs:>8.2f} {slices:>8}"
    )
    if "baseline" in times:
        before = statistics.median(times["baseline"])
        print(
            f"{'':<7} baseline {before:.2f} s ({before - theirs:+.2f} s over the runner); "
            f"dagpar / baseline {ours / before:.2f}"
        )
    return ours - theirs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("-j", "--parallelism", type=int, default=None)
    parser.add_argument("--budget", type=float, default=0.5)
    parser.add_argument("--only", default="pytest,jest,go")
    parser.add_argument(
        "--baseline",
        metavar="PYTHON",
        help="also run the dagpar of this interpreter (e.g. an older checkout's venv) in turn",
    )
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    env_path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env_path}"
    print(f"one file of {TESTS} tests x {SLEEP} s; medians of {args.repeat}, alternated")
    print(
        f"{'runner':<7} {'dagpar':>12} {'runner alone':>12} {'difference':>12} {'worst':>12} "
        f"{'ratio':>8} slices"
    )
    differences: list[float] = []
    if "pytest" in wanted:
        with tempfile.TemporaryDirectory(prefix="dagpar-inner-") as tmp:
            root = Path(tmp) / "py"
            one = write_pytest(root)
            differences.append(bench("pytest", root, one, root, "tests/test_file_0.py", args))
    if "jest" in wanted and JEST_MODULES.is_dir():
        with tempfile.TemporaryDirectory(prefix="dagpar-inner-") as tmp:
            root = Path(tmp) / "js"
            one = write_jest(root)
            selector = "web/tests/file_0.test.js"
            differences.append(bench("jest", root, one, root / "web", selector, args))
    elif "jest" in wanted:
        print(f"jest: skipped ({JEST_MODULES} is missing)")
    if "go" in wanted and shutil.which("go"):
        os.environ.setdefault("GOFLAGS", "-mod=mod")
        os.environ.setdefault("GOPROXY", "off")
        with tempfile.TemporaryDirectory(prefix="dagpar-inner-") as tmp:
            root = Path(tmp) / "go"
            differences.append(bench("go", root, write_go(root), root, "pkg0", args))
    elif "go" in wanted:
        print("go: skipped (go is not on PATH)")
    if differences and max(differences) > args.budget:
        print(f"FAIL: dagpar costs more than {args.budget} s over the runner alone")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
