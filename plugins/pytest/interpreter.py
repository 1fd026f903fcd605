"""Finding the project's pytest, and where its Python loads packages from.

:func:`find_pytest` finds the command that starts pytest the way a user runs it (see *Finding
pytest* in the package doc).

For the listing cache's key: a pytest listing depends on what is installed (a test module that
skips itself when a package is missing lists no tests until the package is installed). Inside
the workspace the listing cache sees installs (it stamps a ``.venv``'s ``site-packages``);
:func:`import_paths` finds the places outside it, by asking the interpreter that runs pytest for
its ``sys.path``. Asking costs an interpreter start-up (about 70 ms) on every run, so the answer
is kept in the workspace's state directory and asked again only when something it depends on
changed: the interpreter, the working directory, the environment variables Python reads for its
path, ``pyvenv.cfg``, or any directory of the answer or the user site directory (installing,
removing or adding a ``.pth`` file changes its ``mtime_ns``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from dagpar_cli import ExecutionError, RunnerSpec, state_dir

__all__ = ["find_pytest", "import_paths", "interpreter_of"]

#: Seconds the interpreter may take to print its ``sys.path``.
QUERY_TIMEOUT = 30.0

#: What an interpreter's file name starts with.
_PYTHONS = ("python", "pypy")

#: The file under the state directory that keeps answers between runs.
ANSWERS_FILE = "pythons.json"

#: Answers kept at most (the most recent), so the file stays small.
MAX_ANSWERS = 32

#: The environment variables that change what an interpreter puts on ``sys.path``.
_PATH_ENV = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONNOUSERSITE",
    "PYTHONUSERBASE",
    "PYTHONSAFEPATH",
    "PYTHONPLATLIBDIR",
)

_QUERY = (
    "import json, site, sys; print(json.dumps({'path': [p for p in sys.path if p], "
    "'user_site': site.getusersitepackages() if site.ENABLE_USER_SITE is not False else None}))"
)

# One query per interpreter, working directory and environment per dagpar run. The directory
# counts: Python makes relative PYTHONPATH entries absolute against it.
_answers: dict[str, list[str] | None] = {}


def _venv_python(venv: Path) -> Path | None:
    for candidate in (venv / "bin" / "python", venv / "Scripts" / "python.exe"):
        if candidate.is_file():
            return candidate
    return None


def find_pytest(spec: RunnerSpec) -> tuple[str, ...]:
    """The command that starts the project's pytest, found the way a user runs it.

    :param spec: the runner spec (``command`` overrides the search).
    :raises ExecutionError: when no pytest can be found.
    """
    if spec.command:
        return tuple(spec.command)
    source_dir = spec.source_dir
    for venv in (source_dir / ".venv", spec.workspace / ".venv"):
        python = _venv_python(venv)
        if python is not None:
            # Relative to the source directory (the command's working directory), so the same
            # command works in a container that mounts the workspace elsewhere.
            rel = os.path.relpath(python, source_dir).replace(os.sep, "/")
            return (rel, "-m", "pytest")
    if spec.executor != "local":
        # The host's virtual environment and PATH mean nothing inside the image: use its Python.
        return ("python", "-m", "pytest")
    virtual_env = os.environ.get("VIRTUAL_ENV")
    if virtual_env:
        python = _venv_python(Path(virtual_env))
        if python is not None:
            return (str(python), "-m", "pytest")
    if shutil.which("pytest"):
        return ("pytest",)
    where = spec.source or "."
    raise ExecutionError(
        f"pytest not found for {where!r}: create {where}/.venv with pytest installed, "
        "activate a virtual environment that has it, put pytest on PATH, "
        "or set `runner:` for this toolchain in dagpar.yaml"
    )


def interpreter_of(command: Sequence[str], cwd: Path) -> str | None:
    """The Python interpreter that *command* (a way to start pytest) runs, when it can be seen.

    ``<python> -m pytest`` names it; a ``pytest`` script names it in its ``#!`` line. Anything
    else (``poetry run pytest``, a wrapper script) is opaque: None.

    :param command: the command that starts pytest.
    :param cwd: the directory the command runs in (relative paths start there).
    """
    if not command:
        return None
    executable = _resolve(command[0], cwd)
    if executable is None:
        return None
    if len(command) >= 3 and command[1] == "-m" and command[2] == "pytest":
        python: str | None = executable
    elif os.path.basename(command[0]).startswith(("pytest", "py.test")):
        python = _script_interpreter(executable, cwd)
    else:
        return None
    # Only a Python is asked for its sys.path: a shell wrapper would run the question as shell.
    if python is None or not os.path.basename(python).startswith(_PYTHONS):
        return None
    return python


def import_paths(python: str, cwd: Path, workspace: Path | None = None) -> list[str] | None:
    """The entries of *python*'s ``sys.path`` when it starts in *cwd*, or None if it fails.

    :param python: the interpreter's path.
    :param cwd: where it runs (pytest's working directory).
    :param workspace: whose state directory keeps the answer between runs (None: this run only).
    """
    try:
        real = os.path.realpath(python)
        stamp = os.stat(real).st_mtime_ns
    except OSError:
        return None
    env = {name: os.environ.get(name) for name in _PATH_ENV}
    key = json.dumps([python, real, stamp, os.fspath(cwd), env], sort_keys=True)
    if key not in _answers:
        stored = {} if workspace is None else _read_answers(workspace)
        kept = _kept(stored, key)
        if kept is not None:
            _answers[key] = kept
        else:
            answer = _query(python, cwd)
            _answers[key] = None if answer is None else answer[0]
            if answer is not None and workspace is not None:
                _keep(workspace, stored, key, python, *answer)
    return _answers[key]


def _stamps(paths: Sequence[str | None]) -> list[list[object]]:
    """Each path with its ``mtime_ns``, or None where it is missing."""
    out: list[list[object]] = []
    for path in paths:
        if path is None:
            continue
        try:
            out.append([path, os.stat(path).st_mtime_ns])
        except OSError:
            out.append([path, None])
    return out


def _watched(python: str, paths: list[str], user_site: str | None) -> list[str | None]:
    """What the answer for *python* depends on besides its key: see the module doc."""
    bin_dir = os.path.dirname(os.path.abspath(python))
    venv_cfgs = [os.path.join(bin_dir, "pyvenv.cfg"), os.path.join(bin_dir, "..", "pyvenv.cfg")]
    return [*paths, user_site, *venv_cfgs]


def _read_answers(workspace: Path) -> dict[str, dict[str, object]]:
    """The kept answers (none in a checkout where the state directory cannot be made)."""
    try:
        raw = json.loads((state_dir(workspace) / ANSWERS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _kept(answers: dict[str, dict[str, object]], key: str) -> list[str] | None:
    """The kept answer for *key* in *answers*, if nothing it depends on changed since."""
    entry = answers.get(key)
    if not isinstance(entry, dict):
        return None
    paths, stamps = entry.get("paths"), entry.get("stamps")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        return None
    if not isinstance(stamps, list) or not stamps:
        return None
    if _stamps([s[0] if isinstance(s, list) and s else None for s in stamps]) != stamps:
        return None
    return paths


def _keep(
    workspace: Path,
    answers: dict[str, dict[str, object]],
    key: str,
    python: str,
    paths: list[str],
    user_site: str | None,
) -> None:
    """Keep *paths* for *key* next to the other *answers*, with the stamps that prove it later.

    Never fails a run: a read-only checkout or a full disk just asks again next run.
    """
    answers = {k: v for k, v in answers.items() if k != key}
    answers[key] = {"paths": paths, "stamps": _stamps(_watched(python, paths, user_site))}
    recent = dict(list(answers.items())[-MAX_ANSWERS:])
    try:
        directory = state_dir(workspace)
        fd, tmp = tempfile.mkstemp(prefix=f".{ANSWERS_FILE}.", dir=directory)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(recent, out)
        os.replace(tmp, directory / ANSWERS_FILE)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _query(python: str, cwd: Path) -> tuple[list[str], str | None] | None:
    try:
        proc = subprocess.run(
            [python, "-c", _QUERY],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=QUERY_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    try:
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
        paths, user_site = answer["path"], answer["user_site"]
    except (ValueError, IndexError, KeyError, TypeError):
        return None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        return None
    if user_site is not None and not isinstance(user_site, str):
        return None
    return [os.path.abspath(os.path.join(cwd, p)) for p in paths], user_site


def _resolve(program: str, cwd: Path) -> str | None:
    """*program* as an absolute path: relative to *cwd* when it has a slash, else on PATH."""
    if os.sep in program or (os.altsep and os.altsep in program):
        path = os.path.join(cwd, program)
        return path if os.path.isfile(path) else None
    return shutil.which(program)


def _script_interpreter(script: str, cwd: Path) -> str | None:
    """The interpreter a console script's ``#!`` line names (``env`` and pip's ``sh`` trick too)."""
    try:
        with open(script, "rb") as handle:
            head = handle.read(1024).decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    if not head or not head[0].startswith("#!"):
        return None
    words = head[0][2:].split()
    if not words:
        return None
    name = os.path.basename(words[0])
    if name == "env":
        rest = [w for w in words[1:] if not w.startswith("-")]
        return _resolve(rest[0], cwd) if rest else None
    if name == "sh":
        # pip writes `#!/bin/sh` plus `'''exec' <python> "$0" "$@"` when the path is too long.
        for line in head[1:3]:
            if line.startswith("'''exec' "):
                try:
                    parts = shlex.split(line)
                except ValueError:
                    return None
                return parts[1] if len(parts) > 1 else None
        return None
    return words[0]
