"""The listing cache: a runner's list of tests, kept between runs while the source is unchanged.

Before a split call can be planned, the engine asks the runner plugin for every test of the
toolchain's source (``pytest --collect-only``, a Jest listing, ``go test -list``). That costs a
second or two on every run, although the answer only changes when the tests do. This module keeps
the last answer per ``(runner, source directory)`` under ``<workspace>/.dagpar/listings/`` and
hands it back while its key still matches.

The key is made so that a stale listing is practically impossible:

- the runner spec (name, ``runner:`` command, ``args:``, executor) and the toolchain's image;
- dagpar's version and the versions of the installed plugin distributions;
- the environment variables that change what a runner lists (``PYTEST_ADDOPTS``, ``GOFLAGS``...);
- a fingerprint of the source tree: every file's relative path, size and ``mtime_ns``, plus the
  files directly inside each directory between the workspace root and the source (a parent
  ``conftest.py``, ``pyproject.toml``, ``go.work``). Caches and installed packages are skipped
  (``.git``, ``node_modules``, ``__pycache__``, virtual environments...), but the files that say
  what is installed are not: lock files are part of the tree, and a skipped virtual environment
  or ``node_modules`` still contributes the stamp of its package directory, which every install
  touches;
- for the local executor, the places outside the workspace the runner loads packages from (a
  system-wide ``site-packages``, a virtual environment elsewhere, a ``GOPATH``), as the runner
  plugin names them (``dagpar_runner_installed``): the stamp of each, so that installing a
  package there lists afresh.

What the tests write into the tree is no part of the key, or every run that writes coverage
would list again. In a git repository, the files and directories git ignores are left out (one
``git ls-files --others --ignored --directory``; without git, nothing is). And at the end of each
run, the engine compares the tree with the :class:`TreeSnapshot` its key was taken from and
:meth:`ListingCache.learn` remembers the files that appeared or changed in between, as exact
files, in ``.dagpar/listing-outputs.json``; later keys leave them out. To keep a real change from
hiding there, a file the listing read, a file named like a test, a runner's configuration and a
lock file are never learned, a source file only inside a directory a run created, and no
directory ever is: a test file added to ``coverage/`` later still counts.

Entries are written to a temporary file and renamed into place, so two runs in one workspace
never see half an entry; an unreadable or corrupt entry is a miss, never an error. The engine
drops an entry when a run shows it was wrong (see :meth:`ListingCache.drop`), and
``DAGPAR_NO_LISTING_CACHE=1`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, final

from dagpar_cli._fs import write_atomic
from dagpar_cli._version import __version__
from dagpar_cli.model import TestCase
from dagpar_cli.runner_api import RunnerSpec
from dagpar_cli.statedir import STATE_DIR, state_dir

__all__ = [
    "DISABLE_ENV",
    "ListingCache",
    "ListingKey",
    "TreeSnapshot",
    "cache_disabled",
    "fingerprint_tree",
    "installed_stamps",
]

#: Set to ``1`` to list tests afresh on every run (and to leave the cache untouched).
DISABLE_ENV: Final = "DAGPAR_NO_LISTING_CACHE"

#: The cache's directory inside the state directory.
LISTINGS_DIR: Final = "listings"

#: The entry format; an entry of another format is a miss. Format 2 numbers tests that share a
#: path and a name (``[path, name, occurrence]``); format 1 listings merged them.
FORMAT: Final = 2

#: Directories never walked: version control, dagpar's own state, caches and build byproducts
#: that no runner collects tests from and that change on every run.
SKIPPED_DIRS: Final = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".dagpar",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".hypothesis",
        ".tox",
        ".nox",
        "node_modules",
    }
)

#: Directory names skipped when they hold a virtual environment (``pyvenv.cfg``).
VENV_DIRS: Final = frozenset({".venv", "venv", "env", ".env"})

#: Inside a skipped ``node_modules``, the files a package manager rewrites on every install.
_NODE_STAMPS: Final = (".package-lock.json", ".modules.yaml", ".yarn-state.yml", ".yarn-integrity")

#: The learned outputs' file in the state directory, next to the cache's directory (see
#: :meth:`ListingCache.learn`).
OUTPUTS_FILE: Final = "listing-outputs.json"

#: At most this many learned output files are kept.
_MAX_OUTPUTS: Final = 100_000

#: Files never learned as outputs: they configure a runner or say what is installed.
_CONFIG_NAMES: Final = frozenset(
    {
        "conftest.py",
        "pyproject.toml",
        "setup.cfg",
        "setup.py",
        "tox.ini",
        "pytest.ini",
        "package.json",
        "tsconfig.json",
        ".babelrc",
        "go.mod",
        "go.sum",
        "go.work",
        "go.work.sum",
        "dagpar.yaml",
        "requirements.txt",
    }
)
_CONFIG_PREFIXES: Final = ("jest.", "babel.config.", "vitest.", "requirements")
_LOCK_SUFFIXES: Final = (".lock", "-lock.json", "-lock.yaml", ".lockb")
#: Names of test files, as pytest, Jest and Go name them by default.
_TEST_NAME: Final = re.compile(r"^test_.*\.py$|_test\.(py|go)$|[.-](test|spec)\.[cm]?[jt]sx?$")
#: Source files: learned only inside a directory a run created.
_SOURCE_SUFFIXES: Final = frozenset(
    {".py", ".pyi", ".go", ".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".mts", ".cts"}
)

#: Environment variables that change what a runner lists, so they belong to the key.
KEY_ENV: Final = (
    "PATH",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "GOFLAGS",
    "GOOS",
    "GOARCH",
    "GOEXPERIMENT",
    "GOWORK",
    "CGO_ENABLED",
    "NODE_OPTIONS",
    "NODE_PATH",
)


def cache_disabled() -> bool:
    """Whether :data:`DISABLE_ENV` turns the cache off (any value but empty and ``0``)."""
    return os.environ.get(DISABLE_ENV, "").strip() not in ("", "0")


@final
@dataclass(frozen=True, slots=True)
class ListingKey:
    """Where a listing is stored and what it must have been made from to be valid."""

    #: The runner plugin's name.
    runner: str
    #: The source directory, workspace-relative (``""`` for the root).
    source: str
    #: The hex digest of everything the listing depends on.
    digest: str

    @property
    def file_name(self) -> str:
        """The entry's file name: one entry per ``(runner, source)``, whatever the digest."""
        where = hashlib.sha256(f"{self.runner}\0{self.source}".encode()).hexdigest()[:16]
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.runner)[:40]
        return f"{safe}-{where}.json"


def fingerprint_tree(
    root: Path,
    *,
    ancestors_up_to: Path | None = None,
    ignore: Iterable[Path] | _Ignored = (),
    snapshot: TreeSnapshot | None = None,
) -> str:
    """A digest of the file tree under *root*: every file's relative path, size and ``mtime_ns``.

    Directories in :data:`SKIPPED_DIRS` (and virtual environments) are not walked; for a
    virtual environment and ``node_modules`` the stamp of what is installed is taken instead.
    Symbolic links to directories are followed once (a loop is walked only once).

    :param root: the directory to fingerprint (a missing one has a digest too).
    :param ancestors_up_to: when *root* lies inside this directory, the files directly inside
        every directory from *root*'s parent up to it are included too (their configuration
        reaches down: ``conftest.py``, ``pyproject.toml``, ``go.work``).
    :param ignore: files left out wherever they are: the reports dagpar itself writes into the
        workspace (``--junit-xml``, ``--report-html``), which change on every run.
    :param snapshot: filled with every file and directory the digest covers (absolute paths), so
        that a run's end can tell what the run wrote.
    :returns: a hex digest; equal trees give equal digests.
    """
    skip = ignore if isinstance(ignore, _Ignored) else _Ignored(ignore)
    digest = hashlib.blake2b(digest_size=20)
    for line in _tree_lines(root, skip, snapshot):
        digest.update(line)
    if ancestors_up_to is not None:
        for line in _ancestor_lines(root, ancestors_up_to, skip, snapshot):
            digest.update(line)
    return digest.hexdigest()


@final
@dataclass(slots=True)
class TreeSnapshot:
    """The files (``path -> (size, mtime_ns)``) and directories a fingerprint covered."""

    files: dict[str, tuple[int, int]] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)


class _Ignored:
    """Files and directories to leave out, tested by name first so that a walk pays almost nothing.

    :param paths: files left out wherever they are (compared by real path).
    :param files: absolute paths of files left out (git's ignored files, learned outputs).
    :param dirs: absolute paths of directories not walked (git's ignored directories).
    """

    def __init__(
        self, paths: Iterable[Path], files: Iterable[str] = (), dirs: Iterable[str] = ()
    ) -> None:
        self.real = {os.path.realpath(p) for p in paths}
        self.names = {os.path.basename(p) for p in self.real}
        self.files = set(files)
        self.dirs = set(dirs)

    def __call__(self, path: str, name: str) -> bool:
        if path in self.files:
            return True
        return name in self.names and os.path.realpath(path) in self.real

    def dir(self, path: str) -> bool:
        """Whether the directory *path* is left out (not walked)."""
        return path in self.dirs


def _stamp(rel: str, st: os.stat_result) -> bytes:
    return f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape")


def _tree_lines(root: Path, skip: _Ignored, snapshot: TreeSnapshot | None) -> Iterator[bytes]:
    """One stamp per file under *root*, in a stable order."""
    seen: set[tuple[int, int]] = set()
    # An explicit stack rather than recursion: deep trees, and no os.walk (it stats twice).
    stack: list[tuple[str, str]] = [(os.fspath(root), "")]
    while stack:
        path, rel = stack.pop()
        try:
            st = os.stat(path)
        except OSError:
            yield f"{rel}/\0missing\n".encode("utf-8", "surrogateescape")
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue  # a symlink loop, or a directory reached twice through links
        seen.add((st.st_dev, st.st_ino))
        if snapshot is not None:
            snapshot.dirs.add(path)
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            yield f"{rel}/\0unreadable\n".encode("utf-8", "surrogateescape")
            continue
        subdirs: list[tuple[str, str]] = []
        for entry in entries:
            name = entry.name
            child = f"{rel}/{name}" if rel else name
            try:
                is_dir = entry.is_dir()  # follows links: a linked test directory counts
            except OSError:
                is_dir = False
            if is_dir:
                if name in SKIPPED_DIRS or (
                    name in VENV_DIRS and os.path.exists(os.path.join(entry.path, "pyvenv.cfg"))
                ):
                    yield from _installed_stamps(entry.path, child)
                elif skip.dir(entry.path):
                    # An ignored directory may still hold what is installed (a venv, say).
                    yield from _installed_stamps(entry.path, child)
                else:
                    subdirs.append((entry.path, child))
                continue
            if skip(entry.path, name):
                continue
            try:
                est = entry.stat()
                if snapshot is not None:
                    snapshot.files[entry.path] = (est.st_size, est.st_mtime_ns)
                yield _stamp(child, est)
            except OSError:
                yield f"{child}\0dangling\n".encode("utf-8", "surrogateescape")
        # Reversed onto the stack, so directories are visited in name order.
        stack.extend(reversed(subdirs))


def _installed_stamps(path: str, rel: str) -> Iterator[bytes]:
    """For a skipped directory that holds installed packages, what says what is installed.

    Installing or removing a package adds or removes a directory in ``site-packages``, which
    changes that directory's ``mtime_ns``; npm, pnpm and yarn rewrite a state file in
    ``node_modules``. Both are one ``stat`` each, not a walk.
    """
    if os.path.exists(os.path.join(path, "pyvenv.cfg")):
        candidates = [os.path.join(path, "pyvenv.cfg")]
        for lib in ("lib", "lib64", "Lib"):
            base = os.path.join(path, lib)
            try:
                names = sorted(os.listdir(base))
            except OSError:
                continue
            if lib == "Lib":
                candidates.append(os.path.join(base, "site-packages"))
            candidates += [os.path.join(base, n, "site-packages") for n in names]
    elif os.path.basename(path) == "node_modules":
        candidates = [os.path.join(path, n) for n in _NODE_STAMPS]
    else:
        return
    for candidate in candidates:
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        yield _stamp(f"{rel}/{os.path.relpath(candidate, path)}", st)


def installed_stamps(paths: Iterable[str], workspace: Path) -> list[str]:
    """One stamp per path outside *workspace*: its name and ``mtime_ns`` (or that it is missing).

    Installing or removing a package adds or removes an entry in its ``site-packages`` (or
    ``GOPATH`` directory), which changes that directory's ``mtime_ns``: one ``stat`` per place,
    not a walk. Paths inside the workspace are skipped: the tree's fingerprint has them.
    """
    inside = os.path.realpath(workspace)
    stamps: set[str] = set()
    for path in paths:
        real = os.path.realpath(path)
        if real == inside or real.startswith(inside + os.sep):
            continue
        try:
            stamps.add(f"{real}\0{os.stat(real).st_mtime_ns}")
        except OSError:
            stamps.add(f"{real}\0missing")
    return sorted(stamps)


def _ancestor_lines(
    root: Path, top: Path, skip: _Ignored, snapshot: TreeSnapshot | None
) -> Iterator[bytes]:
    """Stamps of the files directly inside each directory from *root*'s parent up to *top*."""
    try:
        root_abs, top_abs = root.resolve(), top.resolve()
        relative = root_abs.relative_to(top_abs)
    except (OSError, ValueError):
        return
    if not relative.parts:
        return
    current = root_abs.parent
    while True:
        rel = "../" + os.path.relpath(current, root_abs)
        try:
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            entries = []
        for entry in entries:
            try:
                if entry.is_file() and not skip(entry.path, entry.name):
                    est = entry.stat()
                    if snapshot is not None:
                        snapshot.files[entry.path] = (est.st_size, est.st_mtime_ns)
                    yield _stamp(f"{rel}/{entry.name}", est)
            except OSError:
                continue
        if current == top_abs:
            return
        current = current.parent


class ListingCache:
    """The listings of one workspace, one entry per ``(runner, source directory)``.

    Every method is safe to call from several threads and several dagpar processes at once; none
    raises for a broken cache (it is an optimisation, never a reason for a run to fail).

    :param workspace: the workspace root; entries live in ``<workspace>/.dagpar/listings/``.
    """

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace

    @property
    def directory(self) -> Path:
        """``<workspace>/.dagpar/listings``; not created until an entry is stored."""
        return self.workspace / STATE_DIR / LISTINGS_DIR

    def key(
        self,
        spec: RunnerSpec,
        *,
        image: str | None = None,
        plugins: Iterable[str] = (),
        version: str | None = None,
        ignore: Iterable[Path] = (),
        installed: Iterable[str] | None = None,
        snapshot: TreeSnapshot | None = None,
        toolchain_env: Mapping[str, str] | None = None,
    ) -> ListingKey:
        """The key of *spec*'s listing as the source tree stands now.

        :param spec: the runner, its command, arguments, executor and source directory.
        :param image: the toolchain's image (the docker executor lists inside it).
        :param plugins: the installed plugin distributions (``name==version``).
        :param version: dagpar's version (defaults to the running one).
        :param ignore: files of the tree that do not count (see :func:`fingerprint_tree`).
        :param installed: where the runner loads packages from outside the workspace (see
            ``dagpar_runner_installed``); None when it cannot tell.
        :param snapshot: filled with the files the key covers (see :meth:`learn`).
        :param toolchain_env: the toolchain's ``env:`` (its matrix value's): what the runner
            lists can depend on it.
        """
        if version is None:
            version = __version__
        parts: dict[str, object] = {
            "format": FORMAT,
            "dagpar": version,
            "runner": spec.name,
            "command": list(spec.command) if spec.command is not None else None,
            "args": list(spec.args),
            "executor": spec.executor,
            "image": image,
            "plugins": sorted(set(plugins)),
            "env": {name: os.environ.get(name) for name in KEY_ENV},
            "tree": fingerprint_tree(
                spec.source_dir,
                ancestors_up_to=spec.workspace,
                ignore=self.ignored(ignore),
                snapshot=snapshot,
            ),
            "installed": (
                None if installed is None else installed_stamps(installed, spec.workspace)
            ),
        }
        if toolchain_env:
            parts["toolchain_env"] = dict(toolchain_env)
        text = json.dumps(parts, sort_keys=True)
        return ListingKey(spec.name, spec.source, hashlib.sha256(text.encode()).hexdigest())

    def ignored(self, ignore: Iterable[Path] = ()) -> _Ignored:
        """What a key leaves out: *ignore*, what git ignores, and the outputs runs have written."""
        roots = {os.path.abspath(self.workspace), os.path.realpath(self.workspace)}
        learned = self._outputs().get("files", [])
        files = {os.path.join(r, rel) for r in roots for rel in learned}
        dirs: set[str] = set()
        for rel in _git_ignored(self.workspace):
            target = dirs if rel.endswith("/") else files
            target.update(os.path.join(r, rel.rstrip("/")) for r in roots)
        return _Ignored(ignore, files, dirs)

    def snapshot(self, spec: RunnerSpec, ignore: Iterable[Path] = ()) -> TreeSnapshot:
        """The files and directories *spec*'s key covers as the tree stands now."""
        snap = TreeSnapshot()
        fingerprint_tree(
            spec.source_dir,
            ancestors_up_to=spec.workspace,
            ignore=self.ignored(ignore),
            snapshot=snap,
        )
        return snap

    def learn(self, before: TreeSnapshot, after: TreeSnapshot, read: Iterable[str] = ()) -> None:
        """Remember the files a run wrote into the tree, so that later keys leave them out.

        What is learned is narrow, so that no real change hides behind it: exact files, never
        directories (a test file added later to an output directory still counts); never a file
        the listing read (*read*, workspace-relative), nor one whose name says it is a test or
        the runner's configuration or a lock file; a source file (``.py``, ``.js``...) only
        inside a directory a run created (an HTML coverage report's scripts).

        :param before: the tree when the run took its key.
        :param after: the tree at the run's end.
        """
        ws = [os.path.abspath(self.workspace) + os.sep, os.path.realpath(self.workspace) + os.sep]

        def rel(path: str) -> str | None:
            for root in ws:
                if path.startswith(root):
                    return path[len(root) :].replace(os.sep, "/")
            return None

        stored = self._outputs()
        created = {r for d in after.dirs - before.dirs if (r := rel(d))}
        created_dirs = set(stored.get("dirs", [])) | created
        read_set = set(read)
        written: set[str] = set()
        for path, stamp in after.files.items():
            if before.files.get(path) == stamp:
                continue
            name = rel(path)
            if name is not None and name not in read_set and _may_be_output(name, created_dirs):
                written.add(name)
        if not written and not created:
            return
        files = {f for f in stored.get("files", []) if (self.workspace / f).exists()} | written
        dirs = {d for d in created_dirs if (self.workspace / d).is_dir()}
        entry = {"format": FORMAT, "files": sorted(files)[:_MAX_OUTPUTS], "dirs": sorted(dirs)}
        try:
            write_atomic(state_dir(self.workspace) / OUTPUTS_FILE, json.dumps(entry), mode=0o644)
        except OSError:
            pass

    def _outputs(self) -> dict[str, list[str]]:
        """The learned outputs (``files``, ``dirs``: workspace-relative); empty if unreadable."""
        try:
            path = self.workspace / STATE_DIR / OUTPUTS_FILE
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return {}
        return {
            k: [v for v in data.get(k, []) if isinstance(v, str)]
            for k in ("files", "dirs")
            if isinstance(data.get(k), list)
        }

    def load(self, key: ListingKey) -> list[TestCase] | None:
        """The stored listing for *key*, or None (no entry, another key, unreadable, corrupt)."""
        try:
            data = json.loads((self.directory / key.file_name).read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                return None
            if data.get("key") != key.digest or data.get("runner") != key.runner:
                return None
            if data.get("source") != key.source:
                return None
            return _tests_from_json(data.get("tests"))
        except (OSError, ValueError, TypeError):
            return None

    def store(self, key: ListingKey, tests: Sequence[TestCase]) -> None:
        """Keep *tests* as the listing for *key*, replacing the entry of ``(runner, source)``."""
        entry = {
            "format": FORMAT,
            "key": key.digest,
            "runner": key.runner,
            "source": key.source,
            "tests": [
                [t.path, t.name, t.occurrence] if t.occurrence else [t.path, t.name] for t in tests
            ],
        }
        try:
            state_dir(self.workspace)  # the .gitignore and CACHEDIR.TAG come with it
            self.directory.mkdir(exist_ok=True)
            # Renamed into place: a concurrent reader sees the old entry or the new one, never a
            # half-written file. 0644, not the umask's: a shared CI cache is read by others.
            write_atomic(
                self.directory / key.file_name,
                json.dumps(entry, ensure_ascii=False),
                mode=0o644,
            )
        except OSError:
            pass  # a read-only checkout: the next run lists again, which is all a miss costs

    def drop(self, key: ListingKey) -> bool:
        """Remove the entry of *key*'s ``(runner, source)`` if it still holds *key*'s listing.

        An entry another run has since replaced with a newer listing is left alone.

        :returns: whether an entry was removed.
        """
        path = self.directory / key.file_name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict) and data.get("key") not in (None, key.digest):
            return False
        try:
            path.unlink()
        except OSError:
            return False
        return True


def _git_ignored(workspace: Path) -> list[str]:
    """What git ignores under *workspace* (workspace-relative; directories end in ``/``).

    Empty when git is missing or *workspace* is not in a repository: then nothing is ignored.
    ``--directory`` keeps the answer short: an ignored directory is one line, not its files.
    """
    try:
        out = subprocess.run(
            [
                *("git", "-C", os.fspath(workspace), "ls-files", "-z"),
                *("--others", "--ignored", "--exclude-standard", "--directory"),
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    names = out.stdout.decode("utf-8", "surrogateescape").split("\0")
    return [n for n in names if n and not n.startswith("../")]


def _may_be_output(rel: str, created_dirs: set[str]) -> bool:
    """Whether a file a run wrote may be learned as an output (see :meth:`ListingCache.learn`)."""
    parts = rel.split("/")
    name = parts[-1]
    if name in _CONFIG_NAMES or name.startswith(_CONFIG_PREFIXES) or name.endswith(_LOCK_SUFFIXES):
        return False
    if "__tests__" in parts or _TEST_NAME.search(name):
        return False
    if os.path.splitext(name)[1] in _SOURCE_SUFFIXES:
        return any("/".join(parts[:i]) in created_dirs for i in range(1, len(parts)))
    return True


def _tests_from_json(raw: object) -> list[TestCase]:
    if not isinstance(raw, list):
        raise TypeError("tests is not a list")
    tests: list[TestCase] = []
    for entry in raw:
        if (
            not isinstance(entry, list)
            or len(entry) not in (2, 3)
            or not isinstance(entry[0], str)
            or not isinstance(entry[1], str)
            or (len(entry) == 3 and (type(entry[2]) is not int or entry[2] < 1))
        ):
            raise TypeError(f"not a [path, name] or [path, name, occurrence] entry: {entry!r}")
        tests.append(TestCase(*entry))
    return tests
