"""dagpar's own cost per test, from listing to reports, at 5,000 and 50,000 tests on 64 slices.

A synthetic runner plugin (written to a temporary directory and loaded with ``DAGPAR_PLUGINS``)
lists ``N`` tests, ten per file, and "runs" a slice by writing a report at once, so nearly all
of the wall time is dagpar's: listing, filtering, planning, 64 runner processes, parsing,
progress, tracing, the timing store and the reports. Each size runs twice (the first run has no
history, the second plans from the first's timings), with tracing on (the default: every test
becomes a span recorded under ``.dagpar/traces``) and off (``OTEL_SDK_DISABLED=true``).

Printed, all measured in this run: the wall time per test, how that cost grows from the small
size to the large one (1.0 = in proportion to the tests), and what tracing adds.

Run: ``python bench/pipeline_bench.py [--small 5000] [--large 50000] [--slices 64]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

PLUGIN = '''
import json, os, sys, zlib
from pathlib import Path
from dagpar_cli import Status, TestCase, TestResult, hookimpl
from dagpar_cli.model import RunnerCommand

NAME = "synthetic"
RUN = """
import json, sys, zlib
selection = json.load(open(sys.argv[1]))
pairs = selection["tests"] or [
    item if len(item) == 2 else [item[0], f"test_{k}"]
    for item in selection["items"]
    for k in (range(1) if len(item) == 2 else range(10))
]
json.dump([[a, b, zlib.crc32(f"{a}::{b}".encode()) % 1000 / 10000] for a, b in pairs],
          open(sys.argv[2], "w"))
"""

@hookimpl
def dagpar_register_toolchains(registry):
    registry.add(NAME, "synthetic_toolchain")

@hookimpl
def dagpar_runner_collect(spec, host):
    if spec.name != NAME:
        return None
    n = int(os.environ["SYNTHETIC_TESTS"])
    return [TestCase(f"tests/f{i // 10:05d}.py", f"test_{i % 10}") for i in range(n)]

@hookimpl
def dagpar_runner_command(spec, selection):
    if spec.name != NAME:
        return None
    chosen = {
        "items": [list(i) for i in selection.items],
        "tests": [[t.path, t.name] for t in selection.tests] if selection.tests else None,
    }
    return [RunnerCommand(
        argv=(sys.executable, "-c", RUN, "{report_dir}/selection.json", "{report_dir}/out.json"),
        files={"{report_dir}/selection.json": json.dumps(chosen)},
    )]

@hookimpl
def dagpar_runner_parse(spec, report_dir, outcome):
    if spec.name != NAME:
        return None
    report = Path(report_dir) / "out.json"
    if not report.exists():
        return []
    return [TestResult(path=a, name=b, status=Status.PASSED, seconds=s)
            for a, b, s in json.loads(report.read_text())]
'''

TOOLCHAIN = '''
from dagpar_cli import Directory, collect_items, field, object_type, run_tests

@object_type(runner="synthetic")
class SyntheticTests:
    """Synthetic tests."""
    workspace: Directory
    tests: list[list[str]] = field()  # +parallel

    # +parallel
    def test(self) -> None:
        """Run them."""
        run_tests("synthetic", self.workspace, self.tests)

@object_type
class SyntheticToolchain:
    """The synthetic suite."""
    source: Directory

    def files(self) -> SyntheticTests:
        """Every test file."""
        return SyntheticTests(workspace=self.source, tests=collect_items("synthetic", self.source))

    # +check
    def test(self) -> None:
        """Run the suite, split."""
        self.files().test()
'''


def run_twice(root: Path, tests: int, slices: int, tracing: bool) -> tuple[float, float]:
    """Wall seconds of a first and a second ``dagpar check`` on a fresh workspace."""
    workspace = root / f"ws-{tests}-{int(tracing)}"
    (workspace / "tests").mkdir(parents=True)
    (workspace / "dagpar.yaml").write_text("toolchains:\n  syn: {use: synthetic}\n")
    env = {
        **os.environ,
        "SYNTHETIC_TESTS": str(tests),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
        "DAGPAR_PLUGINS": "synthetic_plugin",
    }
    if tracing:
        env.pop("OTEL_SDK_DISABLED", None)
    else:
        env["OTEL_SDK_DISABLED"] = "true"
    argv = [sys.executable, "-m", "dagpar_cli", "check", "-C", str(workspace), "-j", str(slices)]
    walls = []
    for _ in range(2):
        start = time.monotonic()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        walls.append(time.monotonic() - start)
        if proc.returncode != 0 or f"{tests} passed" not in proc.stdout:
            raise SystemExit(f"dagpar check failed ({proc.returncode}):\n{proc.stdout[-2000:]}")
    return walls[0], walls[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--large", type=int, default=50_000)
    parser.add_argument("--slices", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dagpar-pipeline-") as tmp:
        root = Path(tmp)
        (root / "synthetic_plugin.py").write_text(textwrap.dedent(PLUGIN))
        (root / "synthetic_toolchain.py").write_text(textwrap.dedent(TOOLCHAIN))
        walls = {
            (n, tracing): run_twice(root, n, args.slices, tracing)
            for n in (args.small, args.large)
            for tracing in (False, True)
        }
    print(f"{args.slices} slices; wall time per test in ms (first run / second run)")
    print(f"{'tests':>8} {'no tracing':>18} {'tracing':>18} {'tracing / none':>16}")
    for n in (args.small, args.large):
        off, on = walls[(n, False)], walls[(n, True)]
        print(
            f"{n:>8} {1000 * off[0] / n:>8.3f} / {1000 * off[1] / n:<7.3f} "
            f"{1000 * on[0] / n:>8.3f} / {1000 * on[1] / n:<7.3f} "
            f"{on[0] / off[0]:>7.2f} / {on[1] / off[1]:<6.2f}"
        )
    for tracing in (False, True):
        small, large = walls[(args.small, tracing)], walls[(args.large, tracing)]
        growth = [(large[k] / args.large) / (small[k] / args.small) for k in (0, 1)]
        label = "tracing" if tracing else "no tracing"
        print(
            f"cost per test at {args.large} / at {args.small}, {label}: "
            f"{growth[0]:.2f} (first run), {growth[1]:.2f} (second run)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
