"""Naming docker engines: ``--engine`` values, the default endpoint, slots without connecting."""

from __future__ import annotations

import pytest

from dagpar_cli.config import DockerEngine
from dagpar_cli.errors import UsageError
from dagpar_cli.execution.docker import DockerExecutor
from dagpar_cli.execution.docker_engines import DEFAULT_SOCKET, default_engines, parse_engine


@pytest.mark.parametrize(
    ("text", "engine"),
    [
        ("unix:///var/run/docker.sock", DockerEngine(url="unix:///var/run/docker.sock")),
        ("tcp://build-1:2376#4", DockerEngine(url="tcp://build-1:2376", slots=4)),
        ("ssh://ci@build-2#2", DockerEngine(url="ssh://ci@build-2", slots=2)),
        (" ci-box ", DockerEngine(url="ci-box")),
    ],
)
def test_parse_engine(text: str, engine: DockerEngine) -> None:
    assert parse_engine(text) == engine


@pytest.mark.parametrize("text", ["", "#3", "tcp://h:2375#0", "tcp://h:2375#many"])
def test_parse_engine_rejects_bad_values(text: str) -> None:
    with pytest.raises(UsageError, match="--engine"):
        parse_engine(text)


def test_default_engine_follows_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    assert default_engines() == (DockerEngine(url=DEFAULT_SOCKET),)
    monkeypatch.setenv("DOCKER_CONTEXT", "remote-box")
    assert default_engines() == (DockerEngine(url="remote-box"),)
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2375")
    assert default_engines() == (DockerEngine(url="tcp://10.0.0.5:2375"),)


def test_capacity_sums_configured_slots_without_connecting() -> None:
    executor = DockerExecutor(
        [
            DockerEngine(url="tcp://192.0.2.1:2375", slots=3),
            DockerEngine(url="tcp://192.0.2.2:2375", slots=5),
            DockerEngine(url="tcp://192.0.2.1:2375", slots=3),  # listed twice: one engine
        ],
        run_id="unit",
    )
    try:
        assert executor.capacity() == 8
        assert not any(engine.connected for engine in executor.engines)
    finally:
        executor.close()
