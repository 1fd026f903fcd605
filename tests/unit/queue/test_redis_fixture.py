"""The ``redis_server`` fixture: a real, private, non-persisting server per test."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.redis


def test_each_test_gets_its_own_empty_server(redis_server: Any) -> None:
    import redis

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    assert client.ping()
    assert client.dbsize() == 0
    assert client.config_get("save") == {"save": ""}
    assert client.config_get("appendonly") == {"appendonly": "no"}
    assert client.config_get("bind")["bind"] == "127.0.0.1"
    redis_server.stop()
    assert not redis_server.ping()
