"""Which Python a pytest command runs, and where it loads packages from (listing cache key)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import dagpar_plugins.pytest as plugin
import pytest
from dagpar_plugins.jest import JestRunner
from dagpar_plugins.pytest.interpreter import import_paths, interpreter_of

from dagpar_cli import RunnerSpec

RUNNER = plugin.PytestRunner()


def script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_python_dash_m_pytest_names_its_interpreter(tmp_path: Path) -> None:
    python = script(tmp_path / ".venv" / "bin" / "python", "")
    assert interpreter_of((".venv/bin/python", "-m", "pytest"), tmp_path) == str(python)
    assert interpreter_of(("missing/bin/python", "-m", "pytest"), tmp_path) is None


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ("#!/opt/py/bin/python3.11\n", "/opt/py/bin/python3.11"),
        (
            "#!/bin/sh\n'''exec' '/very long/bin/python3' \"$0\" \"$@\"\n' '''\n",
            "/very long/bin/python3",
        ),
        ("#!/usr/bin/env bash\nexec something\n", None),  # a shell wrapper is not asked
        ("import pytest\n", None),  # no #! line
    ],
)
def test_a_pytest_script_names_its_interpreter_in_its_first_line(
    tmp_path: Path, head: str, expected: str | None
) -> None:
    script(tmp_path / "bin" / "pytest", head)
    assert interpreter_of(("bin/pytest",), tmp_path) == expected


def test_env_in_the_first_line_is_followed_on_path(tmp_path: Path) -> None:
    script(tmp_path / "bin" / "pytest", "#!/usr/bin/env -S python3 -X dev\n")
    assert interpreter_of(("bin/pytest",), tmp_path) == shutil.which("python3")


def test_an_opaque_runner_command_cannot_tell(tmp_path: Path) -> None:
    assert interpreter_of(("poetry", "run", "pytest"), tmp_path) is None
    assert interpreter_of((), tmp_path) is None


def test_import_paths_are_the_interpreters_own(tmp_path: Path) -> None:
    paths = import_paths(sys.executable, tmp_path)
    assert paths is not None
    # Where this interpreter found pytest is among them, absolute; the working directory is not.
    assert str(Path(pytest.__file__).parent.parent) in paths
    assert all(os.path.isabs(p) for p in paths)
    assert str(tmp_path) not in paths


def test_a_relative_pythonpath_is_read_from_each_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", "vendor")
    api, web = tmp_path / "api", tmp_path / "web"
    api.mkdir()
    web.mkdir()
    assert str(api / "vendor") in (import_paths(sys.executable, api) or [])
    assert str(web / "vendor") in (import_paths(sys.executable, web) or [])


def test_an_interpreter_that_fails_cannot_tell(tmp_path: Path) -> None:
    broken = script(tmp_path / "python", "#!/bin/sh\nexit 3\n")
    assert import_paths(str(broken), tmp_path) is None
    assert import_paths(str(tmp_path / "python-gone"), tmp_path) is None


def test_the_hook_names_the_virtual_environments_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    python = script(venv / "bin" / "python", f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    spec = RunnerSpec(name="pytest", workspace=tmp_path / "ws")
    spec.workspace.mkdir()
    assert plugin.find_pytest(spec) == (str(python), "-m", "pytest")
    assert RUNNER.installed(spec) == import_paths(sys.executable, spec.workspace)
    # Runners that load nothing from outside the workspace keep the default: they cannot tell.
    assert JestRunner().installed(RunnerSpec(name="jest", workspace=tmp_path)) is None


def counting_python(path: Path, count: Path) -> Path:
    """An interpreter that notes every start in *count* and then is this test's Python."""
    return script(path, f'#!/bin/sh\necho x >> "{count}"\nexec "{sys.executable}" "$@"\n')


def starts(count: Path) -> int:
    return len(count.read_text().splitlines()) if count.exists() else 0


def test_the_answer_is_kept_between_runs_until_what_it_depends_on_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(vendor))
    count = tmp_path / "count"
    python = str(counting_python(tmp_path / "bin" / "python", count))
    workspace = tmp_path / "ws"
    workspace.mkdir()

    def next_run() -> list[str] | None:
        monkeypatch.setattr("dagpar_plugins.pytest.interpreter._answers", {})
        return import_paths(python, workspace, workspace)

    first = next_run()
    assert first is not None and str(vendor) in first
    assert next_run() == first  # a later run reads what the first one kept
    assert starts(count) == 1
    (vendor / "new_package").mkdir()  # an install into a directory of the answer
    assert next_run() == first
    assert starts(count) == 2
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the environment Python reads
    assert str(tmp_path) in (next_run() or [])
    assert starts(count) == 3
    assert next_run() is not None
    assert starts(count) == 3


def test_a_broken_answers_file_is_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = tmp_path / "count"
    python = str(counting_python(tmp_path / "bin" / "python", count))
    (tmp_path / ".dagpar").mkdir()
    (tmp_path / ".dagpar" / "pythons.json").write_text("{not json")
    monkeypatch.setattr("dagpar_plugins.pytest.interpreter._answers", {})
    assert import_paths(python, tmp_path, tmp_path) is not None
    assert starts(count) == 1


def test_an_answer_that_cannot_be_written_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk must not fail the run nor litter the state directory with partial files.
    count = tmp_path / "count"
    python = str(counting_python(tmp_path / "bin" / "python", count))
    monkeypatch.setattr("dagpar_plugins.pytest.interpreter._answers", {})

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("dagpar_plugins.pytest.interpreter.json.dump", full_disk)
    assert import_paths(python, tmp_path, tmp_path) is not None
    assert sorted(p.name for p in (tmp_path / ".dagpar").iterdir()) == [
        ".gitignore",
        "CACHEDIR.TAG",
    ]
