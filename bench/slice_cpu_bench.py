"""What does a pytest slice cost per test, next to plain serial pytest?

Two generated suites (written to a temporary directory):

- ``files``: ``--tests`` trivial tests (default 10,000) in files of 50;
- ``param``: one file of ``--param`` trivial parametrized cases (default 20,000).

For each suite, in the same run, alternating ``--repeat`` times (default 3):

- ``pytest``: plain serial ``python -m pytest -q -p no:cacheprovider`` (the baseline);
- ``files``: the exact command dagpar's pytest runner compiles for one slice that selects every
  file whole (a first run: no history), report directory and selection plugin included;
- ``tests``: the same, selecting every test by name (a run with history that cut files into
  tests).

CPU is user + system seconds of the child process (``os.wait4``), which the machine's other
load disturbs far less than wall time. Printed per suite and contender: median CPU, CPU per
10,000 tests and the ratio to plain pytest; and the CPU dagpar itself spends reading the
slice's results (``PytestRunner.parse``). Exits non-zero when a slice's median ratio is above
``--max-ratio`` (default: none).

With ``--baseline DIR`` (another checkout's ``plugins/pytest``), two more contenders alternate
with these: ``base-files`` and ``base-tests``, the same commands with that checkout's selection
plugin and the modules it ships next to it, and each slice's ratio to its baseline is printed.

Run: ``python bench/slice_cpu_bench.py [--tests 10000] [--param 20000] [--repeat 3]
[--baseline DIR]``. Compile dagpar first (``python -m compileall -q dagpar_cli plugins``) where
bytecode is not written.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dagpar_plugins.pytest import PytestRunner

from dagpar_cli import REPORT_DIR_PLACEHOLDER, Outcome, RunnerSpec, Selection, TestCase

SMALL = "def test_{i}():\n    pass\n\n\n"
PARAM = """
import pytest


@pytest.mark.parametrize("i", range({n}))
def test_p(i):
    pass
"""


def write_files(root: Path, tests: int, per_file: int = 50) -> list[TestCase]:
    """*tests* trivial tests in files of *per_file*; the tests as listed."""
    cases: list[TestCase] = []
    for f in range(max(tests // per_file, 1)):
        name = f"tests/test_f{f:04d}.py"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("".join(SMALL.format(i=i) for i in range(per_file)))
        cases.extend(TestCase(name, f"test_{i}") for i in range(per_file))
    return cases


def write_param(root: Path, n: int) -> list[TestCase]:
    """One file of *n* parametrized cases; the tests as listed."""
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / "tests/test_param.py").write_text(PARAM.format(n=n))
    return [TestCase("tests/test_param.py", f"test_p[{i}]") for i in range(n)]


def run_cpu(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run *argv*; the user + system CPU seconds of the process and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv[:4]} exited {proc.returncode}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def slice_run(
    root: Path, report_dir: Path, selection: Selection, expected: int, base: Path | None = None
) -> tuple[float, float]:
    """Run one slice's exact command; its CPU and dagpar's CPU reading its results.

    With *base* (a checkout's ``plugins/pytest``), the shipped modules come from there.
    """
    runner = PytestRunner()
    spec = RunnerSpec(name="pytest", workspace=root, command=(sys.executable, "-m", "pytest"))
    (command,) = runner.command(spec, selection)
    shutil.rmtree(report_dir, ignore_errors=True)
    report_dir.mkdir()
    place = str(report_dir)
    for name, text in command.files.items():
        if base is not None and name.startswith("dagpar_pytest_") and name.endswith(".py"):
            source = base / name.removeprefix("dagpar_")
            # A module the baseline does not have: empty, so a ``-p`` naming it loads nothing.
            text = source.read_text(encoding="utf-8") if source.is_file() else ""
        (report_dir / name).write_text(text.replace(REPORT_DIR_PLACEHOLDER, place))
    env = dict(os.environ)
    env.update({k: v.replace(REPORT_DIR_PLACEHOLDER, place) for k, v in command.env.items()})
    argv = [a.replace(REPORT_DIR_PLACEHOLDER, place) for a in command.argv]
    cpu = run_cpu(argv, root, env)
    began = time.process_time()
    results = runner.parse(spec, report_dir, Outcome(exit_code=0, stdout="", stderr=""))
    parse = time.process_time() - began
    if len(results) != expected:
        raise SystemExit(f"slice reported {len(results)} results, expected {expected}")
    return cpu, parse


def bench(
    label: str, root: Path, cases: list[TestCase], repeat: int, base: Path | None
) -> dict[str, float]:
    """Alternate the contenders on one suite; print and return the medians' ratios."""
    files = tuple(dict.fromkeys((c.path,) for c in cases))
    whole = Selection(items=files)
    named = Selection(items=tuple((c.path, c.name) for c in cases), tests=tuple(cases))
    env = dict(os.environ)
    baseline_argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    slices: list[tuple[str, Selection, Path | None]] = [("files", whole, None)]
    if base is not None:
        slices.append(("base-files", whole, base))
    slices.append(("tests", named, None))
    if base is not None:
        slices.append(("base-tests", named, base))
    cpu: dict[str, list[float]] = {"pytest": [], **{name: [] for name, _, _ in slices}}
    parse: dict[str, list[float]] = {name: [] for name, _, _ in slices}
    with tempfile.TemporaryDirectory(prefix="dagpar-slice-") as tmp:
        report_dir = Path(tmp) / "report"
        for _ in range(repeat):
            cpu["pytest"].append(run_cpu(baseline_argv, root, env))
            for name, selection, plugin in slices:
                spent, read = slice_run(root, report_dir, selection, len(cases), plugin)
                cpu[name].append(spent)
                parse[name].append(read)
    per = 10_000 / len(cases)
    plain = statistics.median(cpu["pytest"])
    print(f"{label}: {len(cases)} tests, medians of {repeat}")
    ratios: dict[str, float] = {}
    for name, samples in cpu.items():
        median = statistics.median(samples)
        line = f"  {name:10} CPU {median:6.2f} s  ({median * per:5.2f} s / 10k tests)"
        if name != "pytest":
            ratios[name] = median / plain
            read = statistics.median(parse[name])
            line += f"  ratio {ratios[name]:.3f}  parse {read * per:5.2f} s / 10k"
            if f"base-{name}" in cpu:
                before = statistics.median(cpu[f"base-{name}"])
                line += f"  / baseline {median / before:.3f}"
        print(line, flush=True)
    return {name: ratio for name, ratio in ratios.items() if not name.startswith("base-")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--param", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-ratio", type=float, default=None)
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout's plugins/pytest directory, to compare the plugin against",
    )
    args = parser.parse_args()
    if args.baseline is not None and not (args.baseline / "pytest_select.py").is_file():
        parser.error(f"--baseline {args.baseline}: no pytest_select.py there (give plugins/pytest)")
    print(f"load: {os.getloadavg()[0]:.2f} (1 min)", flush=True)
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="dagpar-suite-") as tmp:
        for label, write, size in (
            ("files", write_files, args.tests),
            ("param", write_param, args.param),
        ):
            if size <= 0:
                continue
            root = Path(tmp) / label
            root.mkdir()
            cases = write(root, size)
            worst = max(worst, *bench(label, root, cases, args.repeat, args.baseline).values())
    if args.max_ratio is not None and worst > args.max_ratio:
        print(f"FAIL: a slice costs {worst:.3f} x plain pytest's CPU (> {args.max_ratio})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
