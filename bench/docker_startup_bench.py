"""Per-slice overhead of a docker session compared with a local one, measured in one run.

A slice on the docker executor pays for getting a container (starting one, or taking a warm one
that the previous slice left and the pool reset), one exec, and closing; on the local executor,
for one subprocess. Each round runs, alternated, a local slice, a docker slice on an executor that
starts and removes a container per slice (``cold``, as before warm containers), and two slices
back to back on a warm executor (``warm``: the second one waits for the first one's reset, as a
slot's next slice does in a run). It prints the medians of each phase over ``--rounds`` rounds
(seconds), and for cold and warm the difference to local and the ratio: the start-up cost the
planner should assume per docker slice. Each slice mounts this checkout read-only and, as a
runner's slice does, a fresh report directory of its own writable (one of the run's, which a
warm container passes through its exchange directory), and writes one file there. It needs a
running Docker engine; the image is ``dagpar-test/base:latest``, built from the host by
``tests/docker_images.py`` if missing.

Run: ``python bench/docker_startup_bench.py [--rounds 15] [--engine URL]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from docker_images import BASE_IMAGE, ensure_base_image

from dagpar_cli.config import DockerEngine
from dagpar_cli.execution.api import ExecRequest, Mount, SessionSpec
from dagpar_cli.execution.docker import DockerExecutor
from dagpar_cli.execution.local import LocalExecutor

ROOT = Path(__file__).resolve().parent.parent
MOUNTS = (Mount(source=ROOT, target=str(ROOT)),)


#: The bench's run directory: slices' report directories are made in it, as a run makes them.
RUN_DIR = Path(tempfile.mkdtemp(prefix="dagpar-startup-bench-"))


def _spec(index: int) -> tuple[SessionSpec, Path]:
    """A slice's spec: the checkout read-only and a fresh report directory writable."""
    report = Path(tempfile.mkdtemp(prefix=f"{index:04d}-", dir=RUN_DIR))
    mounts = (*MOUNTS, Mount(source=report, target=str(report), read_only=False))
    return SessionSpec(label=f"bench#{index}", image=BASE_IMAGE, mounts=mounts), report


def _write(report: Path) -> tuple[str, ...]:
    return ("sh", "-c", f"echo done > {report}/report.txt")


def docker_slice(executor: DockerExecutor, index: int) -> dict[str, float]:
    """Seconds for each phase of one slice's session: open, first exec, close; and a second exec."""
    times: dict[str, float] = {}
    spec, report = _spec(index)
    started = time.perf_counter()
    session = executor.open(spec)
    times["open"] = time.perf_counter() - started
    try:
        before = time.perf_counter()
        first = session.run(ExecRequest(argv=_write(report), cwd=str(ROOT)))
        times["first exec"] = time.perf_counter() - before
        assert first.ok, first
        before = time.perf_counter()
        session.run(ExecRequest(argv=("true",), cwd=str(ROOT)))
        times["later exec"] = time.perf_counter() - before
    finally:
        before = time.perf_counter()
        session.close()
        times["close"] = time.perf_counter() - before
    times["slice start-up"] = times["open"] + times["first exec"] + times["close"]
    assert (report / "report.txt").read_text() == "done\n"
    return times


def local_slice(executor: LocalExecutor) -> float:
    """Seconds for open + first exec + close of a local executor session (one subprocess)."""
    spec, report = _spec(0)
    started = time.perf_counter()
    with executor.open(spec) as session:
        outcome = session.run(ExecRequest(argv=_write(report), cwd=str(ROOT)))
        assert outcome.ok, outcome
    elapsed = time.perf_counter() - started
    assert (report / "report.txt").read_text() == "done\n"
    return elapsed


def main() -> None:
    """Measure, alternating the contenders, and print the medians, differences and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--engine", default=None, help="engine URL (default: DOCKER_HOST)")
    args = parser.parse_args()
    engines = (DockerEngine(url=args.engine),) if args.engine else ()
    import docker

    client = docker.from_env()
    ensure_base_image(client)
    client.close()
    local = LocalExecutor()
    cold = DockerExecutor(engines, run_id="startup-bench-cold")
    warm = DockerExecutor(engines, run_id="startup-bench-warm", warm=True)
    runs: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    local_runs: list[float] = []
    try:
        # Warm up: connections, image checks, the warm executor's first container.
        local_slice(local)
        docker_slice(cold, 0)
        docker_slice(warm, 0)
        for i in range(1, args.rounds + 1):
            local_runs.append(local_slice(local))
            runs["cold"].append(docker_slice(cold, i))
            pair = [docker_slice(warm, 2 * i), docker_slice(warm, 2 * i + 1)]
            runs["warm"].append({k: (pair[0][k] + pair[1][k]) / 2 for k in pair[0]})
        reused = warm._pool.reused if warm._pool is not None else 0
    finally:
        cold.close()
        warm.close()
        local.close()
        shutil.rmtree(RUN_DIR, ignore_errors=True)
    base = statistics.median(local_runs)
    print(f"local slice start-up        {base:8.4f} s median (open + first exec + close)")
    for name, rows in runs.items():
        for phase in rows[0]:
            median = statistics.median(row[phase] for row in rows)
            print(f"docker {name} {phase:<15} {median:8.3f} s median")
    for name, rows in runs.items():
        startup = statistics.median(row["slice start-up"] for row in rows)
        print(
            f"docker {name} - local: {startup - base:6.3f} s per slice "
            f"(ratio {startup / base:.0f}x local)"
        )
    print(f"warm slices that reused a container: {reused} of {2 * args.rounds + 1}")


if __name__ == "__main__":
    main()
