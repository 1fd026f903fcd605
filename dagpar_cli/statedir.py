"""The workspace's ``.dagpar/`` directory: dagpar's own state (timing store, recorded traces).

Created on first use the way pytest creates ``.pytest_cache``: with a ``.gitignore`` of ``*`` so
that it never shows up in ``git status``, and a ``CACHEDIR.TAG`` so that backup tools skip it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["STATE_DIR", "state_dir"]

#: The directory's name at the workspace root.
STATE_DIR = ".dagpar"

_GITIGNORE = "# Created by dagpar; its state is local to this checkout.\n*\n"
_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by dagpar.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)


def state_dir(workspace: Path, *parts: str) -> Path:
    """``<workspace>/.dagpar/<parts...>``, created (with its marker files) if absent.

    :param workspace: the workspace root.
    :param parts: a subdirectory inside ``.dagpar/`` (``"traces"``), created too.
    :raises OSError: when the directory cannot be created (a read-only checkout).
    """
    root = workspace / STATE_DIR
    root.mkdir(parents=True, exist_ok=True)
    for name, content in ((".gitignore", _GITIGNORE), ("CACHEDIR.TAG", _CACHEDIR_TAG)):
        marker = root / name
        if not marker.exists():
            marker.write_text(content, encoding="utf-8")
    target = root.joinpath(*parts)
    target.mkdir(parents=True, exist_ok=True)
    return target
