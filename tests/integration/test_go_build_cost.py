"""A Go package's build (compile, link, vet of its test binary) is recorded as its own cost.

``go test -json`` does not say how long a package took to build, and every ``go test`` links
its test binaries again, so a package pays its build in each slice that runs any of its tests.
dagpar reads go's action graph, keeps each package's build per path in the timing store, and
leaves only what is not any package's out of the slice's start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult
from dagpar_cli.timings import TimingStore

pytestmark = pytest.mark.go


def _package(name: str, failing: bool = False) -> dict[str, str]:
    check = 't.Fatal("no")' if failing else "_ = F(1)"
    return {
        f"{name}/code.go": f"package {name}\n\nfunc F(x int) int {{ return x + 1 }}\n",
        f"{name}/code_test.go": (
            f'package {name}\n\nimport "testing"\n\n'
            f"func TestOne(t *testing.T) {{ {check} }}\n\nfunc TestTwo(t *testing.T) {{}}\n"
        ),
    }


MODULE = {
    "go.mod": "module example.com/cost\n\ngo 1.19\n",
    **_package("alpha"),
    **_package("beta"),
    **_package("broken", failing=True),
}


def test_each_package_build_is_recorded_per_package(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOFLAGS", "-mod=mod")
    ws = make_workspace(MODULE)
    run = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert run.exit_code == 1, run  # broken.TestOne fails; its build is still measured
    (check,) = run.json()["checks"]
    assert {t["file"] for t in check["tests"]} == {"alpha", "beta", "broken"}
    with TimingStore.open(ws) as store:
        setup = store.setup_seconds("go")
    assert set(setup) == {"alpha", "beta", "broken"}
    assert all(seconds > 0 for seconds in setup.values())
