"""Turn a JUnit XML report of a real test run into a duration set for ``planner_bench.py``.

    python bench/junit_to_durations.py REPORT.xml NAME "how it was recorded" > bench/data/NAME.json

Test ids are mapped the way the timing store maps them on ``dagpar timings import``; the set
holds every test's seconds and every file's total.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dagpar_cli.timings.transfer import read_junit


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    report, name, source = Path(argv[0]), argv[1], argv[2]
    cases = read_junit(report, Path.cwd())
    tests: dict[str, float] = {}
    files: dict[str, float] = defaultdict(float)
    for case in cases:
        test_id = f"{case.path}::{case.name}"
        tests[test_id] = round(tests.get(test_id, 0.0) + case.seconds, 4)
        files[case.path] += case.seconds
    data = {
        "name": name,
        "source": source,
        "files": {path: round(seconds, 4) for path, seconds in sorted(files.items())},
        "tests": dict(sorted(tests.items())),
    }
    json.dump(data, sys.stdout, indent=0, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
