"""How much of ``.dagpar/traces`` is kept: the last runs, within a size cap.

Every run records its spans in ``.dagpar/traces/<run_id>.jsonl`` (about 19 MB at 20,000 tests),
and CI caches ``.dagpar/`` between builds for the timing store, so without a limit the cache
would grow with every build. When a run has written its trace, older traces are removed, oldest
first (by modification time), until at most :attr:`TraceRetention.keep` runs remain and together
they take at most :attr:`TraceRetention.max_bytes`. The run's own trace is always kept, even
when it alone is larger than the cap: it is the one a user is about to look at.

Both limits come from the environment, like dagpar's other switches:

- ``DAGPAR_TRACES_KEEP``: how many runs' traces to keep (default 10);
- ``DAGPAR_TRACES_MAX_MB``: their total size in megabytes of 1,000,000 bytes (default 200).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dagpar_cli.errors import UsageError

__all__ = [
    "DEFAULT_KEEP",
    "DEFAULT_MAX_MB",
    "KEEP_ENV",
    "MAX_MB_ENV",
    "TraceRetention",
    "prune_traces",
]

log = logging.getLogger("dagpar.otel")

#: The variable that sets how many runs' traces are kept.
KEEP_ENV = "DAGPAR_TRACES_KEEP"
#: The variable that caps the traces' total size, in megabytes.
MAX_MB_ENV = "DAGPAR_TRACES_MAX_MB"
#: Runs kept by default.
DEFAULT_KEEP = 10
#: Megabytes kept by default: ten runs of a 10,000-test suite.
DEFAULT_MAX_MB = 200
_MB = 1_000_000


@dataclass(frozen=True, slots=True)
class TraceRetention:
    """The limits on ``.dagpar/traces``."""

    #: How many runs' traces are kept (at least 1: the current run's).
    keep: int = DEFAULT_KEEP
    #: Their total size, in bytes.
    max_bytes: int = DEFAULT_MAX_MB * _MB

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TraceRetention:
        """The limits the environment sets (``DAGPAR_TRACES_KEEP``, ``DAGPAR_TRACES_MAX_MB``).

        :param env: the environment; ``os.environ`` when None.
        :raises UsageError: a variable holds something else than a positive number.
        """
        env = os.environ if env is None else env
        keep, max_bytes = DEFAULT_KEEP, DEFAULT_MAX_MB * _MB
        text = env.get(KEEP_ENV, "").strip()
        if text:
            try:
                keep = int(text)
            except ValueError:
                keep = 0
            if keep < 1:
                raise UsageError(
                    f"{KEEP_ENV}={text!r}: expected a whole number of runs, 1 or more "
                    f"(default {DEFAULT_KEEP})"
                )
        text = env.get(MAX_MB_ENV, "").strip()
        if text:
            try:
                megabytes = float(text)
            except ValueError:
                megabytes = math.nan
            if not math.isfinite(megabytes) or megabytes <= 0:
                raise UsageError(
                    f"{MAX_MB_ENV}={text!r}: expected a positive number of megabytes "
                    f"(default {DEFAULT_MAX_MB})"
                )
            max_bytes = int(megabytes * _MB)
        return cls(keep=keep, max_bytes=max_bytes)


def prune_traces(
    directory: Path, retention: TraceRetention, *, current: Path | None = None
) -> list[Path]:
    """Remove the oldest traces in *directory* beyond *retention*'s limits.

    Only ``*.jsonl`` files are considered. Newest first, traces are kept while both limits
    hold; from the first one that does not fit, every older one goes (the kept traces are the
    last runs, with no gaps). A trace another run removes meanwhile is no error.

    :param directory: ``.dagpar/traces``.
    :param retention: the limits.
    :param current: the trace of the run that is ending: always kept, and counted first.
    :returns: the files removed.
    """
    traces: list[tuple[int, str, int]] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if not entry.name.endswith(".jsonl"):
                    continue
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                traces.append((info.st_mtime_ns, entry.name, info.st_size))
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("cannot prune the traces in %s: %s", directory, exc)
        return []
    current_name = current.name if current is not None else None
    # The current run's trace first, then the newest; the name breaks ties so that two equal
    # modification times still give one order.
    traces.sort(key=lambda t: (t[1] == current_name, t[0], t[1]), reverse=True)
    removed: list[Path] = []
    kept = size = 0
    full = False
    for _, name, bytes_ in traces:
        if name == current_name or (
            not full and kept < retention.keep and size + bytes_ <= retention.max_bytes
        ):
            kept += 1
            size += bytes_
            continue
        full = True
        path = directory / name
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot remove the old trace %s: %s", path, exc)
            continue
        removed.append(path)
    return removed
