"""What dagpar's Jest reporter costs: one Jest run with it against the same run without it.

The reporter appends a record per test start and end with a synchronous write, so its cost grows
with the number of tests, not their length. The bench writes a suite of ``--files`` files of
``--tests`` empty tests each (default 4 x 2,500: the worst case, tests that take no time), then
alternates, ``--repeat`` times (default 5):

- ``jest --ci --json --outputFile=...`` (dagpar's command line before the stream);
- the same with ``--reporters=<dagpar's reporter> --reporters=default`` and its environment;
  reading the whole stream with :class:`dagpar_plugins.jest.JestStream` afterwards is timed
  apart (dagpar reads it while Jest runs).

The machine may be shared, so each contender's median is printed with their difference and
ratio, measured in the same run, and the stream's size.

Run: ``python bench/jest_stream_bench.py [--repeat N] [--files N] [--tests N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dagpar_plugins.jest import JestStream
from dagpar_plugins.jest.stream import PROGRESS_ENV, REPORTER_FILE, STREAM_ENV, reporter_source

from dagpar_cli import RunnerSpec

ROOT = Path(__file__).resolve().parent.parent
JEST_MODULES = ROOT / "tests" / "data" / "jest-deps" / "node_modules"


def write_suite(web: Path, files: int, tests: int) -> list[str]:
    """A Jest project under *web*; returns its test files, relative to it."""
    (web / "tests").mkdir(parents=True)
    (web / "package.json").write_text(
        json.dumps({"name": "bench", "private": True, "jest": {"testEnvironment": "node"}})
    )
    (web / "node_modules").symlink_to(JEST_MODULES)
    paths = []
    for k in range(files):
        body = [
            f'describe("file {k}", () => {{',
            *(f'  test("t{i}", () => {{}});' for i in range(tests)),
            "});",
        ]
        (web / "tests" / f"f{k}.test.js").write_text("\n".join(body) + "\n")
        paths.append(f"./tests/f{k}.test.js")
    return paths


def run(web: Path, paths: list[str], out: Path, *, stream: bool) -> tuple[float, int, float]:
    """Seconds one Jest run took, the tests the stream reported and the seconds reading it took
    (0 and 0 without it)."""
    for stale in out.glob("*"):
        stale.unlink()
    argv = ["node_modules/.bin/jest", "--ci", "--json", f"--outputFile={out}/jest-1.json"]
    env = dict(os.environ)
    if stream:
        (out / REPORTER_FILE).write_text(reporter_source())
        argv += [f"--reporters={out}/{REPORTER_FILE}", "--reporters=default"]
        env[STREAM_ENV] = str(out / "jest-1.events.jsonl")
        env[PROGRESS_ENV] = str(out / "jest-1.progress")
    argv += ["--runTestsByPath", *paths]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=web, env=env, capture_output=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"jest failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    ended, reading = 0, 0.0
    if stream:
        # dagpar reads the stream while Jest runs; timed apart here.
        spec = RunnerSpec(name="jest", workspace=web.parent, source=web.name)
        start = time.perf_counter()
        ended = sum(1 for e in JestStream(spec, out).poll() if e.kind == "end")
        reading = time.perf_counter() - start
    return seconds, ended, reading


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--tests", type=int, default=2500)
    args = parser.parse_args()
    if not (JEST_MODULES / ".bin" / "jest").exists():
        sys.exit(f"no Jest in {JEST_MODULES}: run `npm ci --prefix tests/data/jest-deps`")
    with tempfile.TemporaryDirectory() as tmp:
        web, out = Path(tmp) / "web", Path(tmp) / "out"
        out.mkdir()
        paths = write_suite(web, args.files, args.tests)
        run(web, paths, out, stream=True)  # warm Jest's transform cache
        plain: list[float] = []
        streamed: list[float] = []
        reads: list[float] = []
        for _ in range(args.repeat):
            plain.append(run(web, paths, out, stream=False)[0])
            seconds, ended, reading = run(web, paths, out, stream=True)
            streamed.append(seconds)
            reads.append(reading)
            assert ended == args.files * args.tests, ended
        size = (out / "jest-1.events.jsonl").stat().st_size
    a, b = statistics.median(plain), statistics.median(streamed)
    total = args.files * args.tests
    print(f"{total} tests in {args.files} files, {args.repeat} runs each, medians:")
    print(f"  jest                      {a:7.3f}s")
    print(f"  jest + dagpar's reporter  {b:7.3f}s  (+{b - a:.3f}s, ratio {b / a:.3f})")
    print(f"  per test: {(b - a) / total * 1e6:+.1f} us; stream {size / 1e6:.2f} MB")
    reading = statistics.median(reads)
    print(
        f"  reading the stream (dagpar's side): {reading:.3f}s, {reading / total * 1e6:.1f} us/test"
    )


if __name__ == "__main__":
    main()
