"""``Directory``: a directory a toolchain reads from or returns.

Inside dagpar a ``Directory`` is a reference to a host directory: the toolchain's ``source`` (with
its workspace-relative path, so items can be reported workspace-relative) or a result that an
executor copied out of a slice. ``dag.container().with_directory(path, d)`` makes it visible to
commands; a ``+parallel`` function returning ``Directory`` has its slices' results merged as an
overlay (:func:`merge_overlay`).
"""

from __future__ import annotations

import filecmp
import fnmatch
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dagpar_cli.errors import TestsFailedError

__all__ = ["Directory", "merge_overlay"]


@dataclass(frozen=True, slots=True)
class Directory:
    """A host directory, as a toolchain sees it.

    :param host_path: the absolute path on the host.
    :param rel: the path relative to the workspace root (``""`` for the root), or None for a
        directory outside the workspace (a slice's result).
    """

    host_path: Path
    rel: str | None = None

    def entries(self, path: str = ".") -> list[str]:
        """Names in *path* (relative to this directory), sorted."""
        return sorted(os.listdir(self.host_path / path))

    def glob(self, pattern: str) -> list[str]:
        """Relative paths of files matching *pattern* (``**/*.py``), sorted, skipping hidden
        directories, ``node_modules`` and virtual environments."""
        found: list[str] = []
        root = self.host_path
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith(".") and d not in ("node_modules", "__pycache__", "venv")
            )
            rel_dir = os.path.relpath(dirpath, root)
            for name in filenames:
                rel = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
                if fnmatch.fnmatchcase(rel, pattern) or (
                    pattern.startswith("**/") and fnmatch.fnmatchcase(rel, pattern[3:])
                ):
                    found.append(rel)
        return sorted(found)

    def read_text(self, path: str) -> str:
        """The contents of the file *path* (relative to this directory)."""
        return (self.host_path / path).read_text(encoding="utf-8")

    def exists(self, path: str) -> bool:
        """Whether *path* (relative to this directory) exists."""
        return (self.host_path / path).exists()

    def export(self, target: Path) -> Path:
        """Copy this directory's contents to *target* (created; existing files overwritten).

        Links are copied as links, so each must resolve inside this directory: a container
        may have written the directory, and ``d -> .`` with ``f -> d/d/../../..`` leads out.

        :raises TestsFailedError: naming a link that resolves outside this directory.
        """
        root = Path(os.path.realpath(self.host_path))
        for dirpath, dirnames, filenames in os.walk(root):
            for name in (*dirnames, *filenames):
                path = Path(dirpath, name)
                if path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(root):
                    rel = path.relative_to(root).as_posix()
                    raise TestsFailedError(
                        f"{self} holds a link leading outside it: {rel} -> {os.readlink(path)}"
                    )
        target.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.host_path, target, dirs_exist_ok=True, symlinks=True)
        return target

    def __str__(self) -> str:
        return self.rel if self.rel is not None else str(self.host_path)


def merge_overlay(parts: Sequence[tuple[str, Directory]], target: Path) -> Directory:
    """Merge slices' directories into *target*, later files over earlier ones.

    The same path with the same content in several slices is fine; with different content it is
    an error naming both slices, since the merged result would depend on timing.

    :param parts: ``(slice label, directory)`` in slice order.
    :param target: an empty directory to merge into.
    :raises TestsFailedError: on a conflict, or on a path escaping its directory.
    """
    owner: dict[str, str] = {}
    target.mkdir(parents=True, exist_ok=True)
    for label, directory in parts:
        root = directory.host_path.resolve()
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames) + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
                src = Path(dirpath, name)
                rel = src.relative_to(root).as_posix()
                if src.is_symlink():
                    dest_real = (src.parent / os.readlink(src)).resolve()
                    if not dest_real.is_relative_to(root):
                        raise TestsFailedError(
                            f"{label} returned a link escaping its directory: {rel}"
                        )
                dst = target / rel
                if rel in owner:
                    if not filecmp.cmp(src, dst, shallow=False):
                        raise TestsFailedError(
                            f"{owner[rel]} and {label} both wrote '{rel}' with different content"
                        )
                    continue
                owner[rel] = label
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst, follow_symlinks=False)
    return Directory(target)
