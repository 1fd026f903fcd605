"""Finding the ``dagpar`` entry points without :mod:`importlib.metadata`.

Every ``dagpar`` command loads the plugins named under the ``dagpar`` entry-point group before
it parses its arguments. :mod:`importlib.metadata` (which pluggy's
``load_setuptools_entrypoints`` uses) costs more than the rest of the lookup together: importing
it pulls in the ``email`` package, and reading a distribution's name and version parses its
whole ``METADATA`` file each time. This module reads the same files directly, for the layout
nearly every environment has: ``*.dist-info`` and ``*.egg-info`` directories in the directories
of :data:`sys.path`.

It mirrors :mod:`importlib.metadata`'s discovery as pluggy iterates it (every distribution, in
:data:`sys.path` order, grouped by normalized name as a directory lists them) and gives up,
returning None, wherever that discovery could see more: a :data:`sys.path` entry that is a zip
file or an ``.egg``, or an import hook that finds distributions of its own. The caller then
falls back to pluggy's own loading.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import NamedTuple

__all__ = ["EntryPoint", "scan"]


class EntryPoint(NamedTuple):
    """One entry point of the group, and the distribution that declares it.

    (No regular expressions or dataclasses here: this module is imported on every start.)
    """

    name: str
    value: str
    #: ``Name==Version`` from the distribution's metadata (what pluggy's ``DistFacade`` says).
    distribution: str

    def load(self) -> object:
        """Import the module and return the named object, as ``EntryPoint.load`` does.

        :raises ImportError: the module cannot be imported.
        :raises AttributeError: the module has no such attribute.
        :raises ValueError: the value is not ``module[:attr]``.
        """
        import importlib

        # ``module[:attr.attr] [extras]``
        module, colon, attr = self.value.partition("[")[0].partition(":")
        module, attr = module.strip(), attr.strip()
        modules, attrs = module.split("."), attr.split(".") if colon else []
        if not all(part.isidentifier() for part in [*modules, *attrs]):
            raise ValueError(f"entry point {self.name!r}: malformed value {self.value!r}")
        found: object = importlib.import_module(module)
        for name in attrs:
            found = getattr(found, name)
        return found


def scan(group: str, path: Sequence[str] | None = None) -> list[EntryPoint] | None:
    """The entry points of *group* in every distribution on *path* (default :data:`sys.path`),
    in the order pluggy would load them; None when the layout needs :mod:`importlib.metadata`.
    """
    if _other_finders():
        return None
    found: list[EntryPoint] = []
    for root in sys.path if path is None else path:
        infos = _infos(root)
        if infos is None:
            return None
        for info in infos:
            found.extend(_entry_points(info, group))
    return found


def _other_finders() -> bool:
    """Whether an import hook other than the standard path finder finds distributions."""
    from importlib.machinery import PathFinder

    return any(
        hasattr(finder, "find_distributions") and finder is not PathFinder
        for finder in sys.meta_path
    )


def _infos(root: str) -> list[str] | None:
    """The metadata directories in *root*, grouped by normalized name in listing order."""
    directory = root or "."
    if root.lower().endswith(".egg"):
        return None
    try:
        children = os.listdir(directory)
    except NotADirectoryError:
        return None  # a zip file on sys.path
    except OSError:
        if os.path.isfile(directory):
            return None
        return []  # a missing directory holds nothing, for importlib.metadata too
    groups: dict[str, list[str]] = {}
    for child in children:
        low = child.lower()
        if low.endswith((".dist-info", ".egg-info")):
            name = low.rpartition(".")[0].partition("-")[0]
            groups.setdefault(_normalize(name), []).append(os.path.join(directory, child))
    return [info for infos in groups.values() for info in infos]


def _normalize(name: str) -> str:
    """*name* with every run of ``-``, ``_`` and ``.`` made one ``_`` (as importlib.metadata)."""
    out: list[str] = []
    for char in name:
        if char not in "-_.":
            out.append(char)
        elif not out or out[-1] != "_":  # only a separator makes "_": this continues a run
            out.append("_")
    return "".join(out).lower()


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError):
        return None


def _entry_points(info: str, group: str) -> Iterable[EntryPoint]:
    text = _read(os.path.join(info, "entry_points.txt"))
    if text is None or f"[{group}]" not in text:
        return []
    pairs: list[tuple[str, str]] = []
    section: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section == group:
            name, _, value = line.partition("=")
            pairs.append((name.strip(), value.strip()))
    if not pairs:
        return []
    distribution = _distribution(info)
    return [EntryPoint(name, value, distribution) for name, value in pairs]


def _distribution(info: str) -> str:
    """``Name==Version`` from the metadata headers of *info* (``METADATA`` or ``PKG-INFO``)."""
    fields: dict[str, str] = {}
    text = _read(os.path.join(info, "METADATA")) or _read(os.path.join(info, "PKG-INFO")) or ""
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end at the first blank line; the description follows
        key, sep, value = line.partition(":")
        if sep and key.lower() in ("name", "version") and key.lower() not in fields:
            fields[key.lower()] = value.strip()
    return f"{fields.get('name')}=={fields.get('version')}"
