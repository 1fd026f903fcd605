"""Which item of a slice a reported test belongs to, in a few dictionary probes per test."""

from __future__ import annotations

import re
from collections.abc import Sequence

from dagpar_cli.model import Item, TestResult


class ItemIndex:
    """Finds the item of a slice a reported test belongs to.

    A lookup costs a few dictionary probes (the test's name and each of its prefixes that ends
    at a ``/``, ``::`` or space), not a scan of the file's finer items: a file cut into 40,000
    single-test items would otherwise cost 40,000 comparisons per test.
    """

    def __init__(self, items: Sequence[Item]) -> None:
        self.whole: dict[str, str] = {}
        # Per path, each finer selector's name -> (position among the items, key); the position
        # keeps the first of several matching selectors, as a scan in item order would find.
        self.finer: dict[str, dict[str, tuple[int, str]]] = {}
        for position, item in enumerate(items):
            # Item.name and Item.key are computed on every access; a slice may hold 40,000
            # single-test items, so both are made here from the selector, once.
            selector, path = item.selector, item.path
            if len(selector) <= 1:
                self.whole.setdefault(path, item.key if item.matrix else path)
                continue
            name = selector[1] if len(selector) == 2 else "::".join(selector[1:])
            key = item.key if item.matrix else f"{path}::{name}"
            names = self.finer.get(path)
            if names is None:
                names = self.finer[path] = {}
            names.setdefault(name, (position, key))

    def find(self, test: TestResult) -> str | None:
        """The key of *test*'s item: a finer selector naming the test or its parent (the first
        in item order when several do), else the whole file or package."""
        names = self.finer.get(test.path)
        if names:
            best = names.get(test.name)
            for end in _SELECTOR_ENDS.finditer(test.name):
                hit = names.get(test.name[: end.start()])
                if hit is not None and (best is None or hit[0] < best[0]):
                    best = hit
            if best is not None:
                return best[1]
        return self.whole.get(test.path)


# Where a finer selector's name may end inside a test's name: before "/", "::" or a space.
# A lookahead, so that overlapping separators (":::") each give a position.
_SELECTOR_ENDS = re.compile(r"(?=/|::| )")
