"""The collector while a command runs: young objects collected less often, then as before."""

from __future__ import annotations

import gc
from collections.abc import Sequence

import pytest

from dagpar_cli import cli
from dagpar_cli._collector import GC_YOUNG_THRESHOLD, fewer_collections


def test_a_command_runs_with_fewer_young_collections_and_restores_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, int, int]] = []

    def command(argv: Sequence[str] | None) -> int:
        seen.append(gc.get_threshold())
        return 0

    monkeypatch.setattr(cli, "_main", command)
    before = gc.get_threshold()
    assert cli.main(["--version"]) == 0
    assert seen[0][0] >= GC_YOUNG_THRESHOLD > before[0]
    assert seen[0][1:] == before[1:]
    assert gc.get_threshold() == before  # dagpar may run inside another program


def test_a_higher_threshold_is_kept_and_an_error_still_restores() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(GC_YOUNG_THRESHOLD * 5, *before[1:])
        with fewer_collections():
            assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD * 5
        gc.set_threshold(*before)
        with pytest.raises(RuntimeError), fewer_collections():
            assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
            raise RuntimeError
        assert gc.get_threshold() == before
    finally:
        gc.set_threshold(*before)
