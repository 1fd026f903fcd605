"""Fixtures of the timing store's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dagpar_cli.timings import TimingStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TimingStore]:
    with TimingStore.open(tmp_path) as opened:
        yield opened
