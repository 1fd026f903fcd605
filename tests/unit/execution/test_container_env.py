"""A container's variables: the caller's PYTHONPATH, appended by a runner, is cut off."""

from __future__ import annotations

import os

import pytest

from dagpar_cli.execution.container_env import container_env


def test_the_callers_pythonpath_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", f"/host/a{os.pathsep}/host/b")
    env = container_env(
        {"PATH": "/usr/bin", "PYTHONPATH": "/session"},
        {"PYTHONPATH": f"/report{os.pathsep}/host/a{os.pathsep}/host/b"},
    )
    assert env == {"PATH": "/usr/bin", "PYTHONPATH": "/report"}


def test_a_pythonpath_the_toolchain_chose_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/host/a")
    assert container_env({"PYTHONPATH": "/host/a"}) == {"PYTHONPATH": "/host/a"}
    assert container_env({"PYTHONPATH": "/app/src"}) == {"PYTHONPATH": "/app/src"}


def test_without_a_caller_pythonpath_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert container_env({"A": "1"}, {"A": "2", "B": "3"}) == {"A": "2", "B": "3"}
