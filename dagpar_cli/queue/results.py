"""Test results as they travel through the queue: one JSON document per finished unit."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from dagpar_cli.model import Attempt, Status, TestResult

__all__ = ["MAX_TEXT", "dump_unit", "load_unit", "result_from_dict", "result_to_dict"]

#: Longest output or traceback kept per test: a unit's document stays small in Redis.
MAX_TEXT = 64_000


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "\n[... cut by dagpar]"


def result_to_dict(r: TestResult) -> dict[str, Any]:
    """Everything a report needs of *r*."""
    data: dict[str, Any] = {
        "path": r.path,
        "name": r.name,
        "status": r.status.value,
        "seconds": r.seconds,
    }
    optional = {
        "message": r.message,
        "details": _clip(r.details),
        "classname": r.classname,
        "stdout": _clip(r.stdout),
        "check": r.check,
        "slice": r.slice,
        "occurrence": r.occurrence,
        "start": r.start,
        "matrix": [list(pair) for pair in r.matrix],
    }
    data.update((k, v) for k, v in optional.items() if v)
    if r.attempts:
        data["attempts"] = [
            {
                "status": a.status.value,
                "seconds": a.seconds,
                "message": a.message,
                "details": _clip(a.details),
            }
            for a in r.attempts
        ]
    return data


def result_from_dict(data: dict[str, Any]) -> TestResult:
    """Read :func:`result_to_dict`'s form."""
    return TestResult(
        path=str(data["path"]),
        name=str(data["name"]),
        status=Status(data["status"]),
        seconds=float(data.get("seconds", 0.0)),
        message=str(data.get("message", "")),
        details=str(data.get("details", "")),
        classname=str(data.get("classname", "")),
        stdout=str(data.get("stdout", "")),
        check=str(data.get("check", "")),
        slice=int(data.get("slice", 0)),
        occurrence=int(data.get("occurrence", 0)),
        start=float(data["start"]) if data.get("start") is not None else None,
        matrix=tuple((str(k), str(v)) for k, v in data.get("matrix", ())),
        attempts=tuple(
            Attempt(
                Status(a["status"]), float(a["seconds"]), a.get("message", ""), a.get("details", "")
            )
            for a in data.get("attempts", ())
        ),
    )


def dump_unit(worker: str, seconds: float, results: Sequence[TestResult]) -> str:
    """The document a node stores when it finishes a unit."""
    return json.dumps(
        {
            "worker": worker,
            "seconds": round(seconds, 3),
            "end": round(time.time(), 3),
            "results": [result_to_dict(r) for r in results],
        },
        separators=(",", ":"),
    )


def load_unit(text: str) -> tuple[str, float, list[TestResult], float]:
    """Read :func:`dump_unit`'s document: the worker, its seconds, the results, and when it
    ended (``time.time()``)."""
    data = json.loads(text)
    return (
        str(data.get("worker", "")),
        float(data.get("seconds", 0.0)),
        [result_from_dict(r) for r in data.get("results", [])],
        float(data.get("end", 0.0)),
    )
