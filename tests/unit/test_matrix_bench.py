"""The matrix benchmark runs, and its quick set meets its targets."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "matrix_bench.py"


def test_quick_matrix_bench_meets_its_targets(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("matrix_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        assert module.main(["--quick"]) == 0
    finally:
        del sys.modules[spec.name]
    out = capsys.readouterr().out
    assert "matrix / separate: geometric mean" in out
