"""Per-slice cost of the docker executor over the local one, with the real pytest runner.

Each slice does what the engine does for one: it compiles the pytest runner's command for one
test file, writes the runner's files into a fresh report directory, runs the command in a
session that mounts the workspace read-only and the report directory writable, closes the
session and parses the JUnit report (every test must pass). Each round runs, alternated, a local
slice, a ``cold`` docker slice (a container started and removed per slice, as before warm
containers) and two ``warm`` slices back to back (the second one takes the container the first
one left, after its reset, as a worker's next slice does in a run). It prints the median seconds
per slice, and for cold and warm the difference to local and the ratio, in the same run.

The image is ``dagpar-test/base:latest`` (built from the host by ``tests/docker_images.py`` if
missing) with the host's Python mounted read-only, as the end-to-end tests run it.

Run: ``python bench/docker_slice_bench.py [--rounds 15] [--tests 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from dagpar_plugins.pytest import PytestRunner
from docker_images import BASE_IMAGE, ensure_base_image, toolchain_env, toolchain_mounts

from dagpar_cli import untrusted
from dagpar_cli.execution.api import Executor
from dagpar_cli.execution.container import PipelineRunner
from dagpar_cli.execution.docker import DockerExecutor
from dagpar_cli.execution.local import LocalExecutor
from dagpar_cli.runner_api import REPORT_DIR_PLACEHOLDER, RunnerSpec, Selection
from dagpar_cli.sdk.container import Container
from dagpar_cli.sdk.directory import Directory


def _suite(root: Path, tests: int) -> Path:
    workspace = root / "ws"
    (workspace / "tests").mkdir(parents=True)
    (workspace / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    body = "".join(f"def test_{i}():\n    assert {i} == {i}\n\n" for i in range(tests))
    (workspace / "tests" / "test_one.py").write_text(body)
    return workspace


class Slices:
    """Runs pytest slices of one workspace on an executor, as the engine does."""

    def __init__(self, executor: Executor, workspace: Path, reports: Path, tests: int) -> None:
        self.runner = PytestRunner()
        self.spec = RunnerSpec(name="pytest", workspace=workspace)
        self.pipelines = PipelineRunner(executor, self._new_dir, lambda: None)
        self.reports = reports
        self.tests = tests
        self.count = 0

    def _new_dir(self, hint: str) -> Path:
        self.count += 1
        path = self.reports / f"{self.count:04d}-{hint}"
        path.mkdir()
        return path

    def run(self) -> float:
        """Seconds for one slice, from its report directory to its parsed results."""
        started = time.perf_counter()
        report = self._new_dir("slice")
        where = str(report)
        selection = Selection(items=(("tests/test_one.py",),))
        for command in self.runner.command(self.spec, selection):
            for name, content in command.files.items():
                name = name.replace(REPORT_DIR_PLACEHOLDER, "").lstrip("/")
                untrusted.write_text(report, name, content.replace(REPORT_DIR_PLACEHOLDER, where))
            workspace = str(self.spec.workspace)
            container = (
                Container()
                .from_(BASE_IMAGE)
                .with_directory(workspace, Directory(self.spec.workspace))
                .with_directory(where, Directory(report), writable=True)
                .with_workdir(workspace)
            )
            for key, value in command.env.items():
                container = container.with_env_variable(
                    key, value.replace(REPORT_DIR_PLACEHOLDER, where)
                )
            argv = [a.replace(REPORT_DIR_PLACEHOLDER, where) for a in command.argv]
            result = self.pipelines.run(
                container.with_exec(argv, expect="any"),
                label=f"bench#{self.count}",
                labels={"dagpar.check": "bench"},
            )
            outcome = result.outcomes[-1]
        results = self.runner.parse(self.spec, report, outcome)
        elapsed = time.perf_counter() - started
        assert len(results) == self.tests, (outcome.stdout[-2000:], outcome.stderr[-2000:])
        assert all(r.status.value == "passed" for r in results), results
        return elapsed


def main() -> None:
    """Measure, alternating the contenders, and print medians, differences and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--tests", type=int, default=5, help="tests in the slice's file")
    args = parser.parse_args()
    import docker

    client = docker.from_env()
    ensure_base_image(client)
    client.close()
    extra = {"extra_mounts": toolchain_mounts(), "extra_env": toolchain_env()}
    executors: dict[str, Executor] = {
        "local": LocalExecutor(),
        "cold": DockerExecutor(run_id="slice-bench-cold", **extra),  # type: ignore[arg-type]
        "warm": DockerExecutor(run_id="slice-bench-warm", warm=True, **extra),  # type: ignore[arg-type]
    }
    times: dict[str, list[float]] = {name: [] for name in executors}
    with tempfile.TemporaryDirectory(prefix="dagpar-slice-bench-") as tmp:
        workspace = _suite(Path(tmp), args.tests)
        slices = {}
        for name, executor in executors.items():
            (Path(tmp) / name).mkdir()
            slices[name] = Slices(executor, workspace, Path(tmp) / name, args.tests)
        try:
            # Warm up: imports, connections, image checks, the warm executor's first container.
            for name in slices:
                slices[name].run()
            for _ in range(args.rounds):
                times["local"].append(slices["local"].run())
                times["cold"].append(slices["cold"].run())
                times["warm"].append(slices["warm"].run())
                times["warm"].append(slices["warm"].run())
        finally:
            for executor in executors.values():
                executor.close()  # type: ignore[attr-defined]
    warm = executors["warm"]
    assert isinstance(warm, DockerExecutor) and warm._pool is not None
    load = os.getloadavg()[0]
    base = statistics.median(times["local"])
    print(f"load average (1 min) at the end: {load:.2f}; {args.rounds} rounds")
    print(f"local slice              {base:7.3f} s median")
    for name in ("cold", "warm"):
        median = statistics.median(times[name])
        print(
            f"docker {name} slice        {median:7.3f} s median: {median - base:+.3f} s per slice "
            f"over local (ratio {median / base:.2f})"
        )
    print(f"warm slices that reused a container: {warm._pool.reused} of {len(times['warm']) + 1}")


if __name__ == "__main__":
    main()
