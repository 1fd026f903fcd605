"""One ``--filter`` for pytest, Jest and Go: what runs is exactly what ``--dry-run`` listed.

For every filter of the battery, on a workspace holding the three hostile fixture projects:

- the tests ``dagpar check --dry-run --json`` lists,
- the tests the runner really executed (its own report, as ``dagpar check --json`` gives it), and
- the tests this module computes itself, from the runner's *own* listing and a plain
  re-implementation of the filter grammar,

are one and the same set.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from projects import three_runner_workspace  # type: ignore[import-not-found]

from dagpar_cli.testing import DagparResult

# Messages the engine uses for tests a runner did not report: none may appear in the battery.
FILLED = ("does not mention this test", "not run:", "interrupted")


@dataclass(frozen=True)
class Case:
    """Filters given together, and the instance whose check runs."""

    instance: str
    filters: tuple[str, ...]

    def __str__(self) -> str:
        return " ".join(self.filters)


PYTEST = [
    ("api/suite/check_names.py",),
    ("api/suite/check_names.py::test_hostile[a b0]",),
    ("api/suite/check_names.py::test_hostile*",),
    ("api/**/check_*.py::*deep*",),
    ("api:api/suite/check_classes.py",),
    ("api/suite/sub dir",),
    ("api/suite/sub dir/deeper/données_check.py",),
    ("api/**::*unicode*",),
    ("api/suite/check_classes.py::CheckOuter::*",),
    ("api/suite/check_classes.py::CheckOuter::CheckInner::*",),
    ("api/suite/check_names.py::test_grid?1-*",),
    ("api/suite/check_names.py::test_plain",),
    ("api/suite/check_names.py::test_hostile[.*+?()[]{}|^$\\\\]",),
    ("api/suite/sub dir/check_sub.py::test_sub[a::b::c]",),
    ("api/suite/*.py::test_s*",),
    ("api/suite/check_names.py", "!api/suite/check_names.py::test_hostile*"),
    ("api/**::*param*",),
    ("!api/suite/check_broken.py", "!api/suite/check_import_error.py", "!api/suite/check_names.py"),
    ("api/suite/check_names.py::test_hostile[tab\\there]",),
    ("api/suite/check_names.py::test_hostile[semi;colon 'quote\" $HOME `x`]",),
    ("api/suite/check_classes.py::*fail*",),
    ("api/suite/check_names.py::test_grid*", "api/suite/sub dir/check_sub.py::CheckSub::*"),
]

JEST = [
    ("web/__tests__/regex.test.js",),
    ("web/__tests__/hostile names.test.js",),
    ("web/__tests__/same-a.test.js::x",),
    ("web/**::shared name in two files",),
    ("web/**::level one level two *",),
    ("web:web/__tests__/regex.test.js::metacharacters*",),
    ("web/__tests__/regex.test.js::each add(*",),
    ("web/__tests__/regex.test.js::unicode *",),
    ("web/__tests__/regex.test.js::  spaces   inside  and around  ",),
    ("web/__tests__/same-?.test.js::y",),
    ("web/__tests__/regex.test.js::add",),
    ("web/__tests__/regex.test.js::add*",),
    ("web/__tests__/dup.test.js",),
    ("web/__tests__/regex.test.js::metacharacters .*+?()[]{}|^$\\ galore pipe | alone",),
    ("web/__tests__/regex.test.js::skipped in source",),
    ("web/__tests__/regex.test.js::fails on purpose",),
    (
        "!web/__tests__/broken.test.js",
        "!web/__tests__/throws.test.js",
        "!web/__tests__/side-effects.test.js",
    ),
    ("web/__tests__/*.test.js::x",),
    ("web/__tests__/regex.test.js::each length of x|y is 3",),
    ("web/**/hostile*::*tab*",),
    ("web/__tests__/regex.test.js::level one*", "!web/**::*deep test with more"),
]

GO = [
    ("svc/store",),
    ("svc/store::TestPut",),
    ("svc/store::TestPut*",),
    ("svc/**::TestDeep*",),
    ("svc/store/internal/**",),
    ("svc::TestRoot",),
    ("svc/ext::Test*",),
    ("svc/names::TestÜber",),
    ("svc/failing",),
    ("svc/crash::TestBeforePanic",),
    ("svc/**::Test?et",),
    ("svc:svc/store::TestGet",),
    ("svc/ext::Example*",),
    ("svc::FuzzReverse",),
    ("svc/store::Test",),
    ("svc/names::TestParallel",),
    ("svc/store::TestPut2",),
    ("svc/names", "!svc/names::TestParallel"),
    ("!svc/broken", "!svc/crash", "!svc/names"),
    ("svc/store::TestPut*", "svc/ext::TestPut"),
    ("svc/failing::TestPasses", "svc/store::TestGet"),
]

CASES = (
    [Case("api", f) for f in PYTEST] + [Case("web", f) for f in JEST] + [Case("svc", f) for f in GO]
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return three_runner_workspace(tmp_path_factory.mktemp("battery") / "work space")


# ------------------------------------------------------------------ the runners' own listings


@cache
def _pytest_listing(root: str) -> tuple[tuple[str, str], ...]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=Path(root) / "api",
        capture_output=True,
        text=True,
        check=False,
    )
    tests = []
    for line in proc.stdout.splitlines():
        if "::" in line and not line.startswith(("ERROR", "=")):
            path, _, name = line.partition("::")
            tests.append((f"api/{path}", name))
    return tuple(tests)


@cache
def _jest_listing(root: str) -> tuple[tuple[str, str], ...]:
    web = Path(root) / "web"
    out = Path(root).parent / "jest-own.json"
    subprocess.run(
        [
            str(web / "node_modules" / ".bin" / "jest"),
            "--ci",
            "--json",
            f"--outputFile={out}",
            "--testPathIgnorePatterns",
            "broken",
            "throws",
            "side-effects",
        ],
        cwd=web,
        capture_output=True,
        check=False,
    )
    report = json.loads(out.read_text(encoding="utf-8"))
    tests = []
    for suite in report["testResults"]:
        rel = Path(suite["name"]).resolve().relative_to(web.resolve()).as_posix()
        for a in suite["assertionResults"]:
            tests.append((f"web/{rel}", " ".join([*a["ancestorTitles"], a["title"]])))
    # Same-named tests of a file stay, each a test of its own.
    return tuple(tests)


@cache
def _go_listing(root: str) -> tuple[tuple[str, str], ...]:
    svc = Path(root) / "svc"
    proc = subprocess.run(
        ["go", "test", "-list", ".*", "./..."],
        cwd=svc,
        capture_output=True,
        text=True,
        check=False,
        env={**__import__("os").environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off"},
    )
    tests: list[tuple[str, str]] = []
    pending: list[str] = []
    for line in proc.stdout.splitlines():
        if line.startswith(("ok ", "ok\t")):
            pkg = line.split()[1]
            rel = pkg.removeprefix("example.com/hostile").lstrip("/")
            tests += [("svc/" + rel if rel else "svc", n) for n in pending]
            pending = []
        elif re.match(r"^(Test|Example|Fuzz|Benchmark)\S*$", line):
            pending.append(line)
    return tuple(t for t in tests if not t[1].startswith("Benchmark"))


# ------------------------------------------------------------------ the filter, re-implemented


def _glob(pattern: str, *, path: bool) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if path and pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif c == "*":
            out, i = out + ("[^/]*" if path else ".*"), i + 1
        elif c == "?":
            out, i = out + ("[^/]" if path else "."), i + 1
        else:
            out, i = out + re.escape(c), i + 1
    return re.compile(out)


def _matches(selector: str, instance: str, path: str, name: str) -> bool:
    text = selector.lstrip("!")
    head, sep, rest = text.partition(":")
    if sep and not rest.startswith(":") and re.fullmatch(r"[A-Za-z][\w-]*", head):
        if head != instance:
            return False
        text = rest
    path_glob, _, name_glob = text.partition("::")
    regex = _glob(path_glob, path=True)
    parents = [path] + [path.rsplit("/", k)[0] for k in range(1, path.count("/") + 1)]
    if not any(regex.fullmatch(p) for p in parents):
        return False
    if not name_glob:
        return True
    return name == name_glob or bool(_glob(name_glob, path=False).fullmatch(name))


def _expected(case: Case, listing: Iterable[tuple[str, str]]) -> set[str]:
    positive = [f for f in case.filters if not f.startswith("!")]
    negative = [f for f in case.filters if f.startswith("!")]
    chosen = set()
    seen: Counter[tuple[str, str]] = Counter()
    for path, name in listing:
        # The second test of a file with a name already seen is ``path::name::#2``.
        occurrence = seen[(path, name)]
        seen[(path, name)] += 1
        if positive and not any(_matches(f, case.instance, path, name) for f in positive):
            continue
        if any(_matches(f, case.instance, path, name) for f in negative):
            continue
        chosen.add(f"{path}::{name}" + (f"::#{occurrence + 1}" if occurrence else ""))
    return chosen


LISTINGS: dict[str, Callable[[str], tuple[tuple[str, str], ...]]] = {
    "api": _pytest_listing,
    "web": _jest_listing,
    "svc": _go_listing,
}


def test_the_battery_has_at_least_twenty_filters_per_runner() -> None:
    for instance in LISTINGS:
        assert sum(1 for c in CASES if c.instance == instance) >= 20


@pytest.mark.go
@pytest.mark.node
@pytest.mark.parametrize("case", CASES, ids=[f"{c.instance}-{i}" for i, c in enumerate(CASES)])
def test_runner_executes_exactly_what_dry_run_lists(
    case: Case, workspace: Path, dagpar_run: Callable[..., DagparResult]
) -> None:
    args = ["check", f"{case.instance}:test", "-C", str(workspace), "-j", "2", "--json"]
    for f in case.filters:
        args += ["--filter", f]
    expected = _expected(case, LISTINGS[case.instance](str(workspace)))
    assert expected, "a battery filter must select something"

    dry = dagpar_run(*args, "--dry-run")
    assert dry.exit_code == 0, dry
    (check,) = dry.json()["checks"]
    listed = [t for s in check["slices"] for t in s["tests"]]
    assert len(listed) == len(set(listed)), "a test is planned twice"
    assert set(listed) == expected

    run = dagpar_run(*args)
    assert run.exit_code in (0, 1), run
    (result,) = run.json()["checks"]
    ran = [t["id"] for t in result["tests"]]
    assert len(ran) == len(set(ran)), "a test is reported twice"
    filled = [t["id"] for t in result["tests"] if any(m in t.get("message", "") for m in FILLED)]
    assert filled == [], "the runner did not report these tests itself"
    assert set(ran) == expected


@pytest.mark.go
@pytest.mark.node
def test_one_filter_set_across_three_runners_gives_one_junit(
    workspace: Path, dagpar_run: Callable[..., DagparResult], tmp_path: Path
) -> None:
    junit = tmp_path / "junit.xml"
    result = dagpar_run(
        "check",
        "-C",
        str(workspace),
        "-j",
        "2",
        "--json",
        "--junit-xml",
        str(junit),
        "--filter",
        "web/__tests__/same-a.test.js",
        "--filter",
        "api/suite/check_names.py::test_plain",
        "--filter",
        "svc/store::TestPut*",
    )
    assert result.exit_code == 0, result
    ran = {t["id"]: (c["name"], t["status"]) for c in result.json()["checks"] for t in c["tests"]}
    assert ran == {
        "web/__tests__/same-a.test.js::x": ("web:test", "passed"),
        "web/__tests__/same-a.test.js::y": ("web:test", "passed"),
        "web/__tests__/same-a.test.js::shared name in two files": ("web:test", "passed"),
        "api/suite/check_names.py::test_plain": ("api:test", "passed"),
        "svc/store::TestPut": ("svc:test", "passed"),
        "svc/store::TestPutMany": ("svc:test", "passed"),
        "svc/store::TestPut2": ("svc:test", "passed"),
    }
    import xml.etree.ElementTree as ET

    suites = ET.parse(junit).getroot().findall("testsuite")
    assert sorted(s.get("name") for s in suites) == ["api:test", "svc:test", "web:test"]
    cases = [(c.get("file"), c.get("name")) for s in suites for c in s.iter("testcase")]
    assert len(cases) == 7 == len(set(cases))
    assert all(c.get("time") is not None for s in suites for c in s.iter("testcase"))


def test_a_filter_that_matches_nothing_exits_5_and_shows_close_paths(
    workspace: Path, dagpar_run: Callable[..., DagparResult]
) -> None:
    result = dagpar_run(
        "check", "api:test", "-C", str(workspace), "--filter", "api/suite/check_nams.py"
    )
    assert result.exit_code == 5, result
    assert "api/suite/check_names.py" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
