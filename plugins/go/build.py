"""What building each package's test binary cost, from go's own account of its build.

``go test -json`` reports how long each test binary ran, not how long its package took to
compile, link and vet, and every ``go test`` links its test binaries again (they are never
cached), so a package pays its build in every slice that runs any of its tests. Each command
therefore asks go for its action graph (``-debug-actiongraph=go-K.actions.json``, written when go
is done, with every action's start and end); :func:`build_seconds` reads it.

Attribution
    A package's build is its own actions: the compiles of its test variants and of the test
    main, the link of its test binary, and vet. Its plain (non-test) compile counts too. Compiles
    of everything else (other packages built only as dependencies, the standard library) stay
    with the slice's start-up: they are shared, and mostly cached. Under ``-p N`` go runs up to
    N actions at once, so each moment's wall time is shared out equally between the actions
    running then (test runs included): a package's build is the wall time it held, and the
    builds of a command never add up to more than its wall time.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from dagpar_cli import untrusted

__all__ = ["ACTIONS", "actiongraph_flag", "build_seconds", "package_of"]

#: The action graph of command K in the report directory.
ACTIONS = "go-{index}.actions.json"
#: Largest action graph read (a module of thousands of packages writes a few MB).
MAX_BYTES = 64 * 1024 * 1024


def actiongraph_flag(index: int) -> str:
    """The ``go test`` flag that writes command *index*'s action graph to the report directory."""
    return "-debug-actiongraph={report_dir}/" + ACTIONS.format(index=index)


def package_of(package: str) -> str:
    """The import path an action works for: ``p [p.test]``, ``p_test``, ``p.test`` are ``p``."""
    base = package.split(" ", 1)[0]
    if base.endswith(".test"):
        return base[: -len(".test")]
    return base[: -len("_test")] if base.endswith("_test") else base


def _moment(stamp: object) -> float | None:
    """Seconds of an RFC 3339 time with nanoseconds, as go writes it; None when it is not one."""
    if not isinstance(stamp, str) or not stamp:
        return None
    head, dot, rest = stamp.partition(".")
    zone = ""
    if dot:
        digits = rest.rstrip("Z")
        for sign in "+-":
            if sign in digits:
                digits, _, zone = digits.partition(sign)
                zone = sign + zone
        fraction = float("0." + digits) if digits.isdigit() else 0.0
    else:
        fraction = 0.0
        if head.endswith("Z"):
            head = head[:-1]
    try:
        when = datetime.fromisoformat(head + zone)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp() + fraction


def build_seconds(report_dir: Path, index: int, packages: set[str]) -> dict[str, float]:
    """Each of *packages*' (import paths) build seconds in command *index* (see *Attribution*).

    :param report_dir: the slice's report directory.
    :param index: the command's number (``go-K``).
    :param packages: the import paths the command tested.
    :returns: seconds per import path that built anything; empty when go wrote no graph
        (killed before it finished, or a go that does not know the flag).
    """
    try:
        with untrusted.open_binary(report_dir, ACTIONS.format(index=index)) as file:
            raw = file.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            return {}
        graph = json.loads(raw)
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(graph, list):
        return {}
    spans: list[tuple[float, float, str | None]] = []
    for action in graph:
        if not isinstance(action, dict):
            continue
        start, end = _moment(action.get("TimeStart")), _moment(action.get("TimeDone"))
        if start is None or end is None or end <= start:
            continue
        mode, package = action.get("Mode"), action.get("Package")
        owner = package_of(package) if isinstance(package, str) else ""
        builds = mode in ("build", "link", "vet") and owner in packages
        spans.append((start, end, owner if builds else None))
    return _shares(spans)


def _shares(spans: list[tuple[float, float, str | None]]) -> dict[str, float]:
    """Wall time per owner, each moment shared equally between the spans running then."""
    edges: list[tuple[float, int, int]] = []
    for i, (start, end, _) in enumerate(spans):
        edges += [(start, 1, i), (end, -1, i)]
    edges.sort()
    running: set[int] = set()
    held: dict[str, float] = defaultdict(float)
    last = edges[0][0] if edges else 0.0
    for at, change, i in edges:
        if running and at > last:
            share = (at - last) / len(running)
            for j in running:
                owner = spans[j][2]
                if owner is not None:
                    held[owner] += share
        last = at
        if change > 0:
            running.add(i)
        else:
            running.discard(i)
    return dict(held)
