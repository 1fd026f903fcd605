"""Links a container makes reach no host file through dagpar.

Report directories: the slice's report directory is writable by its tests (bind-mounted into
their container), and dagpar writes a Go slice's report (``go-1.json``, the runner's standard
output) into it while the runner runs and reads the selection manifest (``go-1.selection.json``)
back. The Go test below replaces both names with links to host files it cannot reach itself: a
"secret" dagpar would overwrite and a forged manifest dagpar would read. The host files stay as
they were, and the slice reports the test that really ran, once.

Directory results: a container's ``/out`` holding ``d -> .`` and ``f -> d/d/.../../..`` (a link
that reads as staying inside but leads to ``/``) is refused when copied out, naming the link.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult, write_tree

PLANT = """package leak

import (
\t"os"
\t"path/filepath"
\t"testing"
)

func TestPlant(t *testing.T) {
\tfound, _ := filepath.Glob(filepath.Join(@TMP@, "dagpar-*", "*", "go-1.selection.json"))
\tif len(found) != 1 {
\t\tt.Fatalf("report directories: %v", found)
\t}
\tdir := filepath.Dir(found[0])
\t// dagpar writes the report while the test runs: take its name over.
\t_ = os.Remove(filepath.Join(dir, "go-1.json"))
\tif err := os.Symlink(@SECRET@, filepath.Join(dir, "go-1.json")); err != nil {
\t\tt.Fatal(err)
\t}
\tif err := os.Remove(found[0]); err != nil {
\t\tt.Fatal(err)
\t}
\tif err := os.Symlink(@FORGED@, found[0]); err != nil {
\t\tt.Fatal(err)
\t}
}
"""


def _use_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    from docker_images import build_base_image, run_toolchains_in_images  # type: ignore[import-not-found]

    build_base_image()
    run_toolchains_in_images(monkeypatch)


def _go_quote(text: str) -> str:
    return json.dumps(text)  # a JSON string of a plain path is a Go string literal


def _planting_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image: str | None
) -> tuple[Path, Path, Path]:
    # dagpar's per-run directories go to a temp directory of this test alone, so the Go test
    # finds its own report directory and no other run's.
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    host = tmp_path / "host"
    host.mkdir()
    secret = host / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/sh\n")
    forged = host / "manifest.json"
    forged.write_text(
        json.dumps(
            {
                "report": "go-1.json",
                "packages": [
                    {"path": ".", "import_path": "example.com/leak", "tests": ["TestFromHost"]}
                ],
            }
        )
    )
    source = PLANT.replace("@TMP@", _go_quote(str(private)))
    source = source.replace("@SECRET@", _go_quote(str(secret)))
    source = source.replace("@FORGED@", _go_quote(str(forged)))
    config = "toolchains:\n  leak:\n    use: go\n    source: .\n"
    if image:
        config += f"    image: {image}\n"
    ws = write_tree(
        tmp_path / "ws",
        {
            "dagpar.yaml": config,
            "go.mod": "module example.com/leak\n\ngo 1.19\n",
            "plant_test.go": source,
        },
    )
    return ws, secret, forged


def _check_nothing_leaked(run: DagparResult, secret: Path, forged: Path) -> None:
    assert secret.read_text() == "root:x:0:0:root:/root:/bin/sh\n"
    assert json.loads(forged.read_text())["packages"][0]["tests"] == ["TestFromHost"]
    # The test took over the name of the report dagpar writes while it runs: its own result
    # may be lost with it, but it is reported, once.
    assert run.exit_code in (0, 1), run
    (check,) = run.json()["checks"]
    assert [t["id"] for t in check["tests"]] == [".::TestPlant"]
    assert check["tests"][0]["status"] in ("passed", "error")


@pytest.mark.go
def test_links_planted_by_a_local_test_are_not_followed(
    dagpar_run: Callable[..., DagparResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, secret, forged = _planting_workspace(tmp_path, monkeypatch, image=None)
    run = dagpar_run("check", "-C", ws, "--json")
    _check_nothing_leaked(run, secret, forged)


@pytest.mark.go
@pytest.mark.docker
def test_links_planted_inside_a_container_reach_no_host_file(
    dagpar_run: Callable[..., DagparResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_docker(monkeypatch)
    ws, secret, forged = _planting_workspace(tmp_path, monkeypatch, image="dagpar-test/base:latest")
    run = dagpar_run("check", "-C", ws, "--executor", "docker", "--json")
    _check_nothing_leaked(run, secret, forged)


CLIMB = "/".join(["d"] * 40 + [".."] * 40)

LINKS = f"""
from __future__ import annotations
from dagpar_cli import Directory, dag, object_type

@object_type
class Links:
    source: Directory

    def build(self) -> Directory:
        script = "mkdir /out && cd /out && echo kept > kept && ln -s . d && ln -s {CLIMB} f"
        ctr = dag.container().from_("dagpar-test/base:latest").with_exec(["sh", "-c", script])
        return ctr.directory("/out")
"""


@pytest.mark.docker
def test_a_directory_result_linking_out_through_a_dot_link_is_refused(
    dagpar_run: Callable[..., DagparResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_docker(monkeypatch)
    ws = write_tree(
        tmp_path / "ws",
        {"dagpar.yaml": "toolchains:\n  links: {use: links.py}\n", "links.py": LINKS},
    )
    out = tmp_path / "out"
    run = dagpar_run("call", "-C", ws, "--executor", "docker", "links", "build", "-o", out)
    assert run.exit_code == 4, run.stdout + run.stderr  # the copy out failed: execution
    assert "copying /out out: archive member 'out/f' links outside" in run.stdout
    assert not (out / "f").is_symlink()
