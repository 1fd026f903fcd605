"""``Directory``: reading a toolchain's source, and the overlay that merges slices' results."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dagpar_cli import Directory
from dagpar_cli.errors import TestsFailedError
from dagpar_cli.testing import DagparResult, write_tree


@pytest.fixture
def source(tmp_path: Path) -> Directory:
    write_tree(
        tmp_path,
        {
            "setup.py": "",
            "src/app.py": "print('app')\n",
            "src/pkg/mod.py": "",
            "src/pkg/data.json": "{}",
            ".venv/lib/x.py": "",
            "venv/lib/y.py": "",
            "web/node_modules/dep/index.py": "",
            "src/__pycache__/app.cpython-312.py": "",
            ".hidden/z.py": "",
        },
    )
    return Directory(tmp_path, "")


def test_glob_finds_files_and_skips_hidden_dependency_and_cache_directories(
    source: Directory,
) -> None:
    assert source.glob("**/*.py") == ["setup.py", "src/app.py", "src/pkg/mod.py"]
    assert source.glob("src/app.py") == ["src/app.py"]
    assert source.glob("*.toml") == []
    assert source.glob("**/*.json") == ["src/pkg/data.json"]


def test_entries_read_text_and_exists(source: Directory) -> None:
    assert source.entries("src") == ["__pycache__", "app.py", "pkg"]
    assert ".venv" in source.entries()
    assert source.read_text("src/app.py") == "print('app')\n"
    assert source.exists("src/pkg") and not source.exists("src/nothing")


def test_export_copies_the_contents_over_what_is_there(source: Directory, tmp_path: Path) -> None:
    target = tmp_path.parent / f"{tmp_path.name}-export"
    write_tree(target, {"src/app.py": "old", "kept.txt": "kept"})
    assert source.export(target) == target
    assert (target / "src" / "app.py").read_text() == "print('app')\n"
    assert (target / "kept.txt").read_text() == "kept"


def test_export_refuses_a_link_that_climbs_out_through_a_dot_link(tmp_path: Path) -> None:
    made = tmp_path / "made"
    made.mkdir()
    (made / "kept").write_text("kept")
    (made / "d").symlink_to(".")
    (made / "inside").symlink_to("d/d/kept")
    (made / "f").symlink_to("d/d/d/../../..")  # reads as balanced; really made's parent
    with pytest.raises(TestsFailedError, match=r"holds a link leading outside it: f -> d/d/d/"):
        Directory(made).export(tmp_path / "out")
    assert not (tmp_path / "out" / "f").is_symlink()
    (made / "f").unlink()
    out = Directory(made).export(tmp_path / "out")
    assert (out / "inside").read_text() == "kept"


def test_a_directory_shows_as_its_workspace_path_or_its_host_path(tmp_path: Path) -> None:
    assert str(Directory(tmp_path / "web", "web")) == "web"
    assert str(Directory(tmp_path, "")) == ""
    assert str(Directory(tmp_path)) == str(tmp_path)


PARTS = """
from __future__ import annotations
import os
from dagpar_cli import Directory, check, dag, field, object_type, parallel

@object_type
class Parts:
    workspace: Directory
    names: list[str] = field(parallel=True)
    mode: str = "same"

    @parallel
    def build(self) -> Directory:
        out = dag.directory()
        for name in self.names:
            (out.host_path / "by-name").mkdir(exist_ok=True)
            (out.host_path / "by-name" / f"{name}.txt").write_text(name)
        shared = "same" if self.mode == "same" else self.names[0]
        (out.host_path / "shared.txt").write_text(shared)
        if self.mode == "escape":
            os.symlink("/etc/passwd", out.host_path / f"link-{self.names[0]}")
        return out

@object_type
class Merger:
    source: Directory
    mode: str = "same"

    def parts(self) -> Parts:
        return Parts(workspace=self.source, names=["a", "b", "c", "d"], mode=self.mode)

    @check
    def build(self) -> None:
        self.parts().build()
"""


def merger(make: Callable[[Mapping[str, str]], Path], mode: str) -> Path:
    return make(
        {
            "dagpar.yaml": f"toolchains:\n  m: {{use: ci/merger.py, mode: {mode}}}\n",
            "ci/merger.py": PARTS,
        }
    )


def test_slices_results_are_merged_into_one_directory(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    tmp_path: Path,
) -> None:
    ws = merger(make_workspace, "same")
    out = tmp_path / "merged"
    result = dagpar_run("call", "-C", ws, "-j", "2", "m", "parts", "build", "-o", out)
    assert result.exit_code == 0, result
    assert sorted(p.name for p in (out / "by-name").iterdir()) == [
        "a.txt",
        "b.txt",
        "c.txt",
        "d.txt",
    ]
    assert (out / "shared.txt").read_text() == "same"


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("clash", "slice 1/2 and slice 2/2 both wrote 'shared.txt' with different content"),
        ("escape", "returned a link escaping its directory: link-"),
    ],
)
def test_a_merge_that_would_depend_on_timing_or_escape_is_an_error(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
    mode: str,
    message: str,
) -> None:
    ws = merger(make_workspace, mode)
    result = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert result.exit_code == 1, result
    assert message in result.json()["checks"][0]["error"]
