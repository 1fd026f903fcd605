"""Work units: a split call's items cut into the pieces nodes reserve from the queue.

The node that fills the queue orders the items longest predicted first, spreads items without
history over the first units (an estimate is least trustworthy, so it should not come last), and
cuts units that shrink as the queue drains (guided self-scheduling): each unit is a share of the
work that remains, so the last units are short whatever the speed of the node that takes them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagpar_cli.model import Item, Plan, SlicePlan, TestCase

__all__ = ["Unit", "listing_digest", "make_units", "test_case", "unit_plan"]

_OCCURRENCE = re.compile(r"::#(\d+)$")

#: How many slots the build is assumed to have per local slot when sizing the first units
#: (a build of about four nodes); it changes only how fine the units are, never what runs.
NODES_HINT = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class Unit:
    """One reservable piece of a split call: items and the ids of their tests.

    Items travel whole (selector and path), so a node whose planner would cut the same suite
    differently (another timing history) still runs exactly the unit it reserved.
    """

    #: 1-based position in the queue (also the slice index its node gives it).
    number: int
    items: tuple[Item, ...]
    tests: tuple[str, ...]
    predicted_seconds: float

    def to_json(self) -> str:
        """The form stored in Redis."""
        return json.dumps(
            {
                "n": self.number,
                "items": [
                    [list(i.selector), i.path, *([[list(m) for m in i.matrix]] if i.matrix else [])]
                    for i in self.items
                ],
                "tests": self.tests,
                "predicted": round(self.predicted_seconds, 3),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Unit:
        """Read :meth:`to_json`'s form."""
        data: dict[str, Any] = json.loads(text)
        return cls(
            number=int(data["n"]),
            items=tuple(
                Item(tuple(entry[0]), str(entry[1]), tuple((str(k), str(v)) for k, v in matrix))
                for entry in data["items"]
                for matrix in [entry[2] if len(entry) > 2 else ()]
            ),
            tests=tuple(data["tests"]),
            predicted_seconds=float(data["predicted"]),
        )


def test_case(test_id: str) -> TestCase:
    """The test a :func:`~dagpar_cli.model.test_id` names."""
    occurrence = 0
    match = _OCCURRENCE.search(test_id)
    if match:
        occurrence = int(match.group(1)) - 1
        test_id = test_id[: match.start()]
    path, _, name = test_id.partition("::")
    return TestCase(path, name, occurrence)


def _items_and_tests(plan: Plan) -> list[tuple[Item, list[TestCase], float]]:
    """Every item of *plan* with its tests and its share of its slice's prediction."""
    out: list[tuple[Item, list[TestCase], float]] = []
    for sp in sorted(plan.slices, key=lambda s: s.index):
        share = sp.predicted_seconds / max(1, len(sp.items))
        tests_of: list[list[TestCase]] = [[] for _ in sp.items]
        for test in sp.tests:
            tests_of[_owner(test, sp.items)].append(test)
        out.extend((item, tests, share) for item, tests in zip(sp.items, tests_of, strict=True))
    return out


def _owner(test: TestCase, items: Sequence[Item]) -> int:
    """The position of the item *test* belongs to (the first on its path as a fallback)."""
    fallback = None
    for n, item in enumerate(items):
        if test.path != item.path:
            continue
        name = item.name
        if (
            name is None
            or test.name == name
            or test.name.startswith((f"{name}/", f"{name}::", f"{name}["))
        ):
            return n
        fallback = n if fallback is None else fallback
    return fallback if fallback is not None else 0


def listing_digest(check: str, plan: Plan) -> str:
    """What every node of a build must agree on: the check, its items' paths and tests (not
    how its planner cut them)."""
    h = hashlib.sha256(check.encode())
    entries = _items_and_tests(plan)
    # A matrix item names its combination too: nodes agree on the grid as well.
    where = {
        f"{item.path}[{item.matrix_label}]" if item.matrix else item.path for item, _, _ in entries
    }
    for path in sorted(where):
        h.update(b"\0" + path.encode())
    for test in sorted(t.id for _, tests, _ in entries for t in tests):
        h.update(b"\1" + test.encode())
    return h.hexdigest()[:16]


def make_units(
    plan: Plan,
    predicted: Mapping[str, float],
    *,
    slots: int,
    startup: float = 0.0,
) -> list[Unit]:
    """Cut *plan*'s items into units, longest first, shrinking toward the end.

    :param predicted: predicted seconds per test id (tests without history are absent).
    :param slots: this node's parallel slots; the build is assumed to have
        :data:`NODES_HINT` times as many.
    :param startup: a slice's start-up seconds: no unit is planned shorter than twice that,
        so start-ups do not eat the gain.
    """
    known: list[tuple[float, int, Item, list[TestCase]]] = []
    unknown: list[tuple[float, int, Item, list[TestCase]]] = []
    values = [v for v in predicted.values() if v > 0]
    mean = sum(values) / len(values) if values else 0.0
    for position, (item, tests, share) in enumerate(_items_and_tests(plan)):
        if tests and all(t.id in predicted for t in tests):
            known.append((sum(predicted[t.id] for t in tests), position, item, tests))
        elif tests and mean:
            est = sum(predicted.get(t.id, mean) for t in tests)
            unknown.append((est, position, item, tests))
        else:
            unknown.append((max(share - startup, 0.0) or 1.0, position, item, tests))
    known.sort(key=lambda k: (-k[0], k[1]))
    unknown.sort(key=lambda k: k[1])
    # Unknown items go out early, one between each of the longest known ones.
    order: list[tuple[float, int, Item, list[TestCase]]] = []
    while known or unknown:
        if unknown:
            order.append(unknown.pop(0))
        if known:
            order.append(known.pop(0))
    remaining = sum(o[0] for o in order)
    divisor = 2 * max(1, slots) * NODES_HINT
    floor = 2 * startup
    units: list[Unit] = []
    current: list[tuple[float, int, Item, list[TestCase]]] = []
    target = 0.0
    for entry in order:
        if not current:
            target = max(remaining / divisor, floor)
        current.append(entry)
        if sum(c[0] for c in current) >= target:
            units.append(_unit(len(units) + 1, current))
            remaining -= sum(c[0] for c in current)
            current = []
    if current:
        units.append(_unit(len(units) + 1, current))
    return units


def _unit(number: int, entries: Sequence[tuple[float, int, Item, list[TestCase]]]) -> Unit:
    ordered = sorted(entries, key=lambda e: e[1])  # the parent's order within a unit
    return Unit(
        number=number,
        items=tuple(e[2] for e in ordered),
        tests=tuple(t.id for e in ordered for t in e[3]),
        predicted_seconds=sum(e[0] for e in ordered),
    )


def unit_plan(unit: Unit, startup: float = 0.0, *, index: int | None = None) -> SlicePlan:
    """*unit* as a slice this node runs (numbered *index*, its unit number by default)."""
    return SlicePlan(
        index=unit.number if index is None else index,
        items=unit.items,
        predicted_seconds=unit.predicted_seconds + startup,
        tests=tuple(test_case(t) for t in unit.tests),
    )


def retry_units(
    units: Mapping[int, Unit],
    failed: Mapping[str, float],
    *,
    slots: int,
    startup: float = 0.0,
) -> list[Unit]:
    """Units that rerun the *failed* tests (id -> seconds) of a drained queue's *units*.

    Each failed test goes with the item that held it; its unit runs narrowed to the failed
    tests, so a file's passing tests do not run again.
    """
    slices: list[SlicePlan] = []
    for _, unit in sorted(units.items()):
        tests = [test_case(t) for t in unit.tests if t in failed]
        owned: dict[int, list[TestCase]] = {}
        for test in tests:
            owned.setdefault(_owner(test, unit.items), []).append(test)
        for position, group in sorted(owned.items()):
            slices.append(
                SlicePlan(
                    index=len(slices) + 1,
                    items=(unit.items[position],),
                    predicted_seconds=sum(failed[t.id] for t in group),
                    tests=tuple(group),
                )
            )
    plan = Plan(slices=tuple(slices), predicted_wall_seconds=0.0, workers=slots)
    predicted = {t.id: max(failed[t.id], 0.01) for sp in slices for t in sp.tests}
    return make_units(plan, predicted, slots=slots, startup=startup)
