"""Where the pytest plugin finds pytest when slices run in containers."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagpar_plugins.pytest import find_pytest

from dagpar_cli.model import RunnerSpec


def test_in_an_image_the_images_python_runs_pytest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / "host-venv"))
    spec = RunnerSpec(name="pytest", workspace=tmp_path, executor="docker")
    assert find_pytest(spec) == ("python", "-m", "pytest")


def test_a_workspace_venv_and_an_override_still_win_in_an_image(tmp_path: Path) -> None:
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    spec = RunnerSpec(name="pytest", workspace=tmp_path, executor="docker")
    assert find_pytest(spec) == (".venv/bin/python", "-m", "pytest")
    custom = RunnerSpec(
        name="pytest", workspace=tmp_path, executor="docker", command=("uv", "run", "pytest")
    )
    assert find_pytest(custom) == ("uv", "run", "pytest")
