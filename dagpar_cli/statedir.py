"""The workspace's state directory, ``.dagpar/``: where it is and how it is made.

Everything dagpar keeps between runs lives under it: the timing store (``timings.sqlite``), the
listing cache (``listings/``), recorded traces (``traces/``), sharded runs' timing exports and
what plugins keep (the pytest plugin's ``pythons.json``).
Like pytest's cache directory it carries a ``.gitignore`` that ignores everything, so it never
shows in ``git status``, and a ``CACHEDIR.TAG``, so that backup tools skip it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["STATE_DIR", "state_dir"]

#: The workspace directory dagpar keeps its state in.
STATE_DIR: Final = ".dagpar"

_GITIGNORE: Final = "# Created by dagpar.\n*\n"

# See https://bford.info/cachedir/: the signature line is what tools look for.
_CACHEDIR_TAG: Final = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by dagpar.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)


def state_dir(workspace: Path) -> Path:
    """``<workspace>/.dagpar``, created with a ``.gitignore`` and a ``CACHEDIR.TAG``.

    :param workspace: the workspace root.
    :raises OSError: when the directory cannot be created (a read-only checkout).
    """
    path = workspace / STATE_DIR
    path.mkdir(parents=True, exist_ok=True)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text(_GITIGNORE, encoding="utf-8")
    tag = path / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text(_CACHEDIR_TAG, encoding="utf-8")
    return path
