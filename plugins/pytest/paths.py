"""Mapping pytest's rootdir-relative node ids to paths relative to the toolchain's source.

pytest names every node relative to its *rootdir*, which is where it found its configuration
file, or else the common ancestor of its path arguments: often the source directory, but an
ancestor in a monorepo whose ``pytest.ini`` sits at the top, or (pytest < 8, no configuration)
a descendant when ``args:`` names a test directory. ``--collect-only -q`` does not print the
rootdir, so the mapping is inferred from the files on disk: the first candidate rootdir under
which every listed file exists wins, the source directory first. (Runs need no inference: the
selection plugin records the rootdir and tags every test with its source-relative name.)
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["RootdirMap", "path_exists", "source_relative"]


def path_exists(path: Path) -> bool:
    """Whether *path* exists; False for a name the OS rejects (a part over 255 bytes, say)."""
    try:
        return path.exists()
    except OSError:
        return False


def source_relative(path: str | os.PathLike[str], source_dir: Path) -> str:
    """*path* (absolute, or relative to the source) relative to *source_dir*, POSIX style."""
    rel = os.path.relpath(os.path.join(source_dir, path), source_dir)
    return posixpath.normpath(rel.replace(os.sep, "/"))


def _arg_ancestor(source_dir: Path, args: Sequence[str]) -> Path | None:
    """The common ancestor of the existing path arguments in *args*, if any."""
    paths: list[str] = []
    for arg in args:
        if arg.startswith("-"):
            continue
        candidate = source_dir / arg.split("::", 1)[0]
        if path_exists(candidate):
            paths.append(str(candidate if candidate.is_dir() else candidate.parent))
    if not paths:
        return None
    return Path(os.path.commonpath(paths))


class RootdirMap:
    """Turns rootdir-relative node-id paths into source-relative paths.

    :param source_dir: the toolchain's source directory on the host (pytest's working directory).
    :param args: the user's extra pytest arguments (path arguments can move the rootdir down).
    :param rootdir: the rootdir when it is known (recorded by the selection plugin); it is tried
        first.
    """

    def __init__(
        self, source_dir: Path, args: Sequence[str] = (), rootdir: Path | None = None
    ) -> None:
        self.source_dir = source_dir
        candidates: list[Path] = [] if rootdir is None else [rootdir]
        candidates.append(source_dir)
        below = _arg_ancestor(source_dir, args)
        if below is not None:
            candidates.append(below)
        candidates.extend(source_dir.parents)
        self.candidates = candidates
        self._chosen: Path | None = None

    def fit(self, nodeid_paths: Iterable[str]) -> None:
        """Choose the rootdir under which every one of *nodeid_paths* exists."""
        paths = sorted(set(nodeid_paths))
        if not paths:
            return
        for candidate in self.candidates:
            if all(path_exists(candidate / p) for p in paths):
                self._chosen = candidate
                return

    def map(self, nodeid_path: str) -> str:
        """The source-relative form of one rootdir-relative node-id path."""
        if self._chosen is not None:
            return source_relative(self._chosen / nodeid_path, self.source_dir)
        # No candidate fits every path: map this one on its own.
        for candidate in self.candidates:
            if path_exists(candidate / nodeid_path):
                return source_relative(candidate / nodeid_path, self.source_dir)
        return posixpath.normpath(nodeid_path)
