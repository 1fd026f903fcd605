"""A package's build cost, read from go's action graph (``-debug-actiongraph``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dagpar_plugins import go
from dagpar_plugins.go.build import build_seconds, package_of

from dagpar_cli import Outcome, RunnerSpec

DATA = Path(__file__).resolve().parents[3] / "data"
PACKAGE = "example.com/phantom/minisuite"
SPEC = RunnerSpec(name="go", workspace=DATA / "projects" / "go-phantom")


def _stamp(seconds: float) -> str:
    """go's way of writing a moment: RFC 3339 with nanoseconds."""
    whole = int(seconds)
    return f"2026-12-04T20:00:{whole:02d}.{round((seconds - whole) * 1e9):09d}Z"


def _action(mode: str, package: str, start: float, end: float) -> dict[str, object]:
    return {"Mode": mode, "Package": package, "TimeStart": _stamp(start), "TimeDone": _stamp(end)}


def _write(report_dir: Path, actions: list[dict[str, object]], index: int = 1) -> None:
    report_dir.mkdir(exist_ok=True)
    (report_dir / f"go-{index}.actions.json").write_text(json.dumps(actions))


def test_package_of_names_the_package_every_test_variant_builds_for() -> None:
    assert package_of("example.com/m/p [example.com/m/p.test]") == "example.com/m/p"
    assert package_of("example.com/m/p_test [example.com/m/p.test]") == "example.com/m/p"
    assert package_of("example.com/m/p.test") == "example.com/m/p"
    assert package_of("example.com/m/p") == "example.com/m/p"


def test_a_package_owns_its_compiles_link_and_vet_and_shares_parallel_time(
    tmp_path: Path,
) -> None:
    a, b = "example.com/m/a", "example.com/m/b"
    _write(
        tmp_path,
        [
            _action("build", "example.com/m/shared", 0.0, 1.0),  # a dependency: start-up
            _action("build", f"{a} [{a}.test]", 1.0, 2.0),
            _action("link", f"{a}.test", 2.0, 3.0),
            # b's link runs beside a's test run: each holds half of that second.
            _action("test run", a, 3.0, 5.0),
            _action("link", f"{b}.test", 3.0, 4.0),
            _action("vet", b, 4.0, 4.5),
            _action("build", "fmt", 5.0, 5.5),  # the standard library: start-up
            _action("go test", "", 5.0, 5.0),  # no time at all
        ],
    )
    seconds = build_seconds(tmp_path, 1, {a, b})
    assert seconds == pytest.approx({a: 2.0, b: 0.75})


@pytest.mark.parametrize("content", [None, "", "{not json", '{"a": 1}', "[1, 2]"])
def test_without_a_readable_graph_nothing_is_attributed(
    tmp_path: Path, content: str | None
) -> None:
    if content is not None:
        (tmp_path / "go-1.actions.json").write_text(content)
    assert build_seconds(tmp_path, 1, {"example.com/m/a"}) == {}


def test_a_link_to_the_graph_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    _write(elsewhere, [_action("link", "example.com/m/a.test", 0.0, 1.0)])
    report = tmp_path / "report"
    report.mkdir()
    (report / "go-1.actions.json").symlink_to(elsewhere / "go-1.actions.json")
    assert build_seconds(report, 1, {"example.com/m/a"}) == {}


def test_the_first_result_of_each_package_carries_its_build(tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    shutil.copy(DATA / "go" / "phantom.json", report_dir / "go-1.json")
    manifest = {
        "report": "go-1.json",
        "packages": [{"path": "minisuite", "import_path": PACKAGE, "tests": None}],
    }
    (report_dir / "go-1.selection.json").write_text(json.dumps(manifest))
    _write(
        report_dir,
        [
            _action("build", f"{PACKAGE} [{PACKAGE}.test]", 0.0, 0.25),
            _action("link", f"{PACKAGE}.test", 0.25, 0.75),
        ],
    )
    results = go.parse_reports(SPEC, report_dir, Outcome(exit_code=0))
    assert len(results) > 1
    assert results[0].setup_seconds == pytest.approx(0.75)
    assert all(r.setup_seconds == 0 for r in results[1:])
    assert results[0].seconds < 0.75  # the test's own time stays what go reported


def test_times_with_a_zone_or_without_a_fraction_are_read() -> None:
    from dagpar_plugins.go.build import _moment

    utc = _moment("2026-12-04T20:00:01.5Z")
    assert utc is not None
    assert _moment("2026-12-04T21:00:01.5+01:00") == pytest.approx(utc)
    assert _moment("2026-12-04T20:00:01Z") == pytest.approx(utc - 0.5)
    assert _moment("2026-12-04T19:00:01-01:00") == pytest.approx(utc - 0.5)
    assert _moment("yesterday") is None
    assert _moment(None) is None
