"""Per-slice start-up overhead of a docker session compared with a local one.

A slice on the docker executor pays for starting a container, one exec, and removing the
container; on the local executor, for one subprocess (the local executor's own session). This
prints the median of each phase over ``--rounds`` repetitions (seconds), the difference and the
ratio: the start-up cost the planner should assume per docker slice. It needs a running Docker
engine; the image is ``dagpar-test/base:latest``, built from the host by
``tests/docker_images.py`` if missing.

Run: ``python bench/docker_startup_bench.py [--rounds 15] [--engine URL]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from docker_images import BASE_IMAGE, ensure_base_image

from dagpar_cli.config import DockerEngine
from dagpar_cli.execution.api import ExecRequest, SessionSpec
from dagpar_cli.execution.docker import DockerExecutor


def docker_slice(executor: DockerExecutor, index: int) -> dict[str, float]:
    """Seconds for each phase of one slice's session: open, first exec, close; and a second exec."""
    times: dict[str, float] = {}
    started = time.perf_counter()
    session = executor.open(SessionSpec(label=f"bench#{index}", image=BASE_IMAGE))
    times["open"] = time.perf_counter() - started
    try:
        before = time.perf_counter()
        first = session.run(ExecRequest(argv=("true",), cwd="/"))
        times["first exec"] = time.perf_counter() - before
        assert first.ok, first
        before = time.perf_counter()
        session.run(ExecRequest(argv=("true",), cwd="/"))
        times["later exec"] = time.perf_counter() - before
    finally:
        before = time.perf_counter()
        session.close()
        times["close"] = time.perf_counter() - before
    times["slice start-up"] = times["open"] + times["first exec"] + times["close"]
    return times


def local_slice() -> float:
    """Seconds for open + first exec + close of a local executor session (one subprocess)."""
    from dagpar_cli.execution.local import LocalExecutor

    executor = LocalExecutor()
    started = time.perf_counter()
    with executor.open(SessionSpec(label="bench")) as session:
        outcome = session.run(ExecRequest(argv=("true",), cwd="/"))
        assert outcome.ok, outcome
    seconds = time.perf_counter() - started
    executor.close()
    return seconds


def main() -> None:
    """Measure and print the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--engine", default=None, help="engine URL (default: DOCKER_HOST)")
    args = parser.parse_args()
    engines = (DockerEngine(url=args.engine),) if args.engine else ()
    executor = DockerExecutor(engines, run_id="startup-bench")
    try:
        import docker

        client = docker.from_env()
        ensure_base_image(client)
        client.close()
        docker_slice(executor, 0)  # warm up: connection, image check
        docker_runs = [docker_slice(executor, i) for i in range(1, args.rounds + 1)]
    finally:
        executor.close()
    local_slice()
    local = statistics.median(local_slice() for _ in range(args.rounds))
    for phase in docker_runs[0]:
        median = statistics.median(run[phase] for run in docker_runs)
        print(f"docker {phase:<15} {median:8.3f} s median")
    startup = statistics.median(run["slice start-up"] for run in docker_runs)
    print(f"local slice start-up   {local:8.4f} s median (open + first exec + close)")
    print(f"docker - local         {startup - local:8.3f} s per slice")
    print(f"ratio docker / local slice start-up: {startup / local:.0f}x")


if __name__ == "__main__":
    main()
