"""Queue mode against static shards on heterogeneous CI nodes, with a real redis-server.

Four nodes run one suite, each from its own copy of the workspace; one node is slowed to half
speed by an injected per-test delay (its tests sleep twice as long, read from an environment
variable by the suite's tests). Contenders, alternated ``--repeat`` times:

- ``--queue``: the four nodes join one build in Redis and pull work units;
- ``--shard I/4``: each node runs its static bucket of the same plan.

Both plan from the same history (one warm-up run records the timings first). The makespan is
the time from starting the nodes to the last node's exit. The ideal for the nodes' combined
speed is the suite's test time divided by the sum of the nodes' speeds times their slots
(``-j``); start-ups are not in it, so a ratio of 1.0 is out of reach.

Printed: each contender's median makespan as a ratio to that ideal, and queue / shard.

Run: ``python bench/queue_bench.py [--repeat N] [--scale X] [-j SLOTS]`` (needs
``redis-server`` and the ``redis`` package: ``pip install -e '.[queue]'``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Per-test seconds at full speed (times ``--scale``): 24 files of 4 tests, file totals from
#: 1 s to 6 s (84 s in all).
FILES = [(f"test_f{k:02d}.py", 0.25 * (1 + k % 6)) for k in range(24)]
TESTS_PER_FILE = 4
#: Speed of each node (1.0 = full; 0.5 = its tests take twice as long).
SPEEDS = (1.0, 1.0, 1.0, 0.5)
SLOWDOWN_ENV = "QUEUE_BENCH_SLOWDOWN"

TEST_FILE = """\
import os
import time

SECONDS = {seconds}


def _work():
    time.sleep(SECONDS * float(os.environ.get("{env}", "1")))
"""


def write_suite(root: Path, scale: float = 1.0) -> float:
    """Write the suite, each test's seconds times *scale*; returns its test seconds at full
    speed."""
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    total = 0.0
    for name, unscaled in FILES:
        seconds = unscaled * scale
        body = TEST_FILE.format(seconds=seconds, env=SLOWDOWN_ENV)
        for i in range(TESTS_PER_FILE):
            body += f"\n\ndef test_{i}():\n    _work()\n"
            total += seconds
        (root / "tests" / name).write_text(body)
    return total


def env_for(speed: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGPAR_")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["OTEL_SDK_DISABLED"] = "true"
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env[SLOWDOWN_ENV] = str(1.0 / speed)
    return env


def dagpar(*args: str) -> list[str]:
    return [sys.executable, "-m", "dagpar_cli", *args]


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH (apt-get install redis-server)")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def copies(base: Path, where: Path) -> list[Path]:
    if where.exists():
        shutil.rmtree(where)
    return [Path(shutil.copytree(base, where / f"node{i}", symlinks=True)) for i in range(4)]


def run_nodes(argvs: list[list[str]]) -> float:
    """Start every node at once; the makespan until the last one exits."""
    start = time.monotonic()
    procs = [
        subprocess.Popen(
            argv, env=env_for(speed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for argv, speed in zip(argvs, SPEEDS, strict=True)
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a node failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return time.monotonic() - start


def queue_run(base: Path, scratch: Path, url: str, build: str, slots: int) -> float:
    nodes = copies(base, scratch / "queue")
    argvs = [
        [
            *dagpar("check", "-C", str(ws), "-j", str(slots)),
            "--queue",
            url,
            "--build",
            build,
            "--worker",
            f"node{i}",
        ]
        for i, ws in enumerate(nodes)
    ]
    return run_nodes(argvs)


def shard_run(base: Path, scratch: Path, slots: int) -> float:
    nodes = copies(base, scratch / "shard")
    argvs = [
        dagpar("check", "-C", str(ws), "-j", str(slots), "--shard", f"{i + 1}/4")
        for i, ws in enumerate(nodes)
    ]
    return run_nodes(argvs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--scale", type=float, default=2.0, help="times every test's seconds (2: 168 s in all)"
    )
    parser.add_argument("-j", "--slots", type=int, default=1, help="-j of each node (1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dagpar-queue-bench-") as tmp:
        scratch = Path(tmp)
        base = scratch / "base"
        work = write_suite(base, args.scale)
        # Warm-up: the history both contenders plan from.
        subprocess.run(
            dagpar("check", "-C", str(base), "-j", "2"),
            env=env_for(1.0),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        redis, url = start_redis(scratch)
        try:
            times: dict[str, list[float]] = {"queue": [], "shard": []}
            for n in range(args.repeat):
                times["queue"].append(queue_run(base, scratch, url, f"bench-{n}", args.slots))
                times["shard"].append(shard_run(base, scratch, args.slots))
                print(
                    f"round {n + 1}: queue {times['queue'][-1]:.1f}s, "
                    f"shard {times['shard'][-1]:.1f}s",
                    flush=True,
                )
        finally:
            redis.kill()
            redis.wait()
    ideal = work / (sum(SPEEDS) * args.slots)
    queue = statistics.median(times["queue"])
    shard = statistics.median(times["shard"])
    print(
        f"suite {work:.0f}s of tests; nodes at speeds {', '.join(f'{s:g}' for s in SPEEDS)}, "
        f"-j {args.slots} each; ideal makespan {ideal:.1f}s"
    )
    print(f"queue  makespan / ideal: {queue / ideal:.2f}  (median {queue:.1f}s)")
    print(f"shard  makespan / ideal: {shard / ideal:.2f}  (median {shard:.1f}s)")
    print(f"queue / shard:           {queue / shard:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
