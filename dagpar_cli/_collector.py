"""The garbage collector while a dagpar command runs: young objects collected less often.

A run holds tens of thousands of long-lived objects (listed tests, items, results); at Python's
default thresholds the cyclic collector walks all of them again and again for nothing.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["GC_YOUNG_THRESHOLD", "fewer_collections"]

#: Allocations between two young-generation collections while a command runs (Python's
#: default is 700). A run holds tens of thousands of long-lived tests, items and results, and at
#: the default rate the collector walked all of them several times over: a quarter of a second
#: of CPU on a 20,000-test run, before its slices, while they run and after the last one.
GC_YOUNG_THRESHOLD = 10_000


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the block with the collector's young threshold at least :data:`GC_YOUNG_THRESHOLD`;
    the thresholds are restored after it (dagpar may run inside another program)."""
    saved = gc.get_threshold()
    gc.set_threshold(max(saved[0], GC_YOUNG_THRESHOLD), *saved[1:])
    try:
        yield
    finally:
        gc.set_threshold(*saved)
