"""Compiling a slice's selection into ``go test -json`` commands (see *Commands*, package doc)."""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from dagpar_cli import RunnerCommand, RunnerSpec, Selection

from .build import actiongraph_flag
from .report import PACKAGE_PLACEHOLDER, rewrite_subtest_name
from .source import import_path_of, module_of

__all__ = [
    "MANIFEST",
    "MAX_COMMAND_CHARS",
    "REPORT",
    "compile_commands",
    "go_command",
    "go_env",
    "quote_meta",
    "run_pattern",
]

#: Longest command line (in characters) a command may have before its selection is batched.
#: Far below Linux's 128 KiB limit on one argument, and short enough for ``docker exec``.
MAX_COMMAND_CHARS = 30_000
#: The report of command K (its standard output) in the report directory.
REPORT = "go-{index}.json"
#: What command K was asked to run, for the parser.
MANIFEST = "go-{index}.selection.json"

# Go's regexp.QuoteMeta escapes exactly these.
_GO_SPECIAL = frozenset("\\.+*?()|[]{}^$")


def go_env() -> dict[str, str]:
    """The environment every go command of dagpar's gets: no downloads of any kind."""
    return {"GOTOOLCHAIN": "local", "GOPROXY": os.environ.get("GOPROXY") or "off"}


def go_command(spec: RunnerSpec) -> list[str]:
    """The command that starts go: the ``runner:`` override, else ``go`` on PATH."""
    return list(spec.command) if spec.command else ["go"]


def quote_meta(text: str) -> str:
    """*text* as a Go regexp that matches it literally (``regexp.QuoteMeta``)."""
    return "".join("\\" + c if c in _GO_SPECIAL else c for c in text)


def run_pattern(names: Iterable[str]) -> str:
    """The ``-run`` pattern that selects exactly *names* (``TestX`` or ``TestX/sub name``).

    Top-level names share one anchored group, ``^(TestA|TestB)$``; each subtest is its own
    alternative, anchored at every level: ``^TestX$/^sub_name$``. The testing package splits
    the pattern at ``|`` and ``/`` outside brackets and parentheses, after which every level
    is a regexp matched against one level of the (rewritten) name.
    """
    top: list[str] = []
    nested: list[str] = []
    for name in dict.fromkeys(names):
        first, *subs = name.split("/")
        if not subs:
            top.append(quote_meta(first))
        else:
            levels = [first, *(rewrite_subtest_name(s) for s in subs)]
            nested.append("/".join(f"^{quote_meta(level)}$" for level in levels))
    alternatives = ([f"^({'|'.join(top)})$"] if top else []) + nested
    return "|".join(alternatives)


def _package_arg(path: str) -> str:
    return "." if path == "." else "./" + path


def _normalise(path: str) -> str:
    path = posixpath.normpath(path.strip() or ".")
    return path[2:] if path.startswith("./") else path


def _selected(selection: Selection) -> dict[str, list[str] | None]:
    """Package → selected test names (None: the whole package), in selection order."""
    packages: dict[str, list[str] | None] = {}
    if selection.tests is None:
        for selector in selection.items:
            if not selector:
                continue
            path = _normalise(selector[0])
            if len(selector) == 1:
                packages[path] = None
                continue
            names = packages.setdefault(path, [])
            if names is not None:
                names.append("/".join(selector[1:]))
    else:
        for test in selection.tests:
            names = packages.setdefault(_normalise(test.path), [])
            if names is not None:
                names.append(test.name)
    for path, names in packages.items():
        if names is not None and PACKAGE_PLACEHOLDER in names:
            packages[path] = None  # it stands for the whole package
        elif names is not None:
            packages[path] = list(dict.fromkeys(names))
    return packages


def _chunks(
    items: Sequence[str], budget: int, size_of: Callable[[str], int] = lambda s: len(s) + 1
) -> Iterator[list[str]]:
    """*items* in order, cut so that the summed ``size_of`` of each chunk fits *budget*."""
    chunk: list[str] = []
    used = 0
    for item in items:
        size = size_of(item)
        if chunk and used + size > budget:
            yield chunk
            chunk, used = [], 0
        chunk.append(item)
        used += size
    if chunk:
        yield chunk


def _pattern_size(name: str) -> int:
    # What the name adds to the -run pattern, anchors and separators included.
    return len(run_pattern([name])) + 1


@dataclass(frozen=True, slots=True)
class _Group:
    names: tuple[str, ...] | None
    paths: tuple[str, ...]


def compile_commands(
    spec: RunnerSpec, selection: Selection, *, max_chars: int = MAX_COMMAND_CHARS
) -> list[RunnerCommand]:
    """The ``go test -json`` commands that run exactly *selection*.

    :param spec: the runner and its source directory.
    :param selection: package items, or the exact tests when a filter narrowed them.
    :param max_chars: the longest command line; longer selections become several commands.
    """
    grouped: dict[tuple[str, ...] | None, list[str]] = {}
    for path, names in _selected(selection).items():
        grouped.setdefault(None if names is None else tuple(sorted(names)), []).append(path)
    base = [*go_command(spec), "test", "-json", "-count=1"]
    # + "-run", the action-graph flag (whose {report_dir} the engine substitutes) and slack
    base_chars = sum(len(a) + 1 for a in [*base, *spec.args, actiongraph_flag(99999)]) + 8
    groups: list[_Group] = []
    for key, paths in grouped.items():
        name_chunks: list[list[str] | None] = [None]
        if key is not None:
            # Half the budget for the pattern; the package paths get the rest.
            name_chunks = list(_chunks(key, max(max_chars // 2, 1), _pattern_size))
        for chunk in name_chunks:
            pattern_chars = len(run_pattern(chunk)) + 1 if chunk is not None else 0
            path_budget = max(max_chars - base_chars - pattern_chars, 1)
            for batch in _chunks([_package_arg(p) for p in paths], path_budget):
                chosen = tuple(chunk) if chunk is not None else None
                groups.append(_Group(chosen, tuple(_normalise(b) for b in batch)))
    commands: list[RunnerCommand] = []
    env = go_env()
    module = module_of(spec)
    for index, group in enumerate(groups, start=1):
        run = ["-run", run_pattern(group.names)] if group.names is not None else []
        # go's account of its build: what each package's compile, link and vet cost (.build).
        graph = [actiongraph_flag(index)]
        argv = (*base, *graph, *run, *spec.args, *(_package_arg(p) for p in group.paths))
        manifest = {
            "report": REPORT.format(index=index),
            "packages": [
                {
                    "path": p,
                    "import_path": import_path_of(module, p),
                    "tests": list(group.names) if group.names is not None else None,
                }
                for p in group.paths
            ],
        }
        commands.append(
            RunnerCommand(
                argv=argv,
                env=env,
                files={MANIFEST.format(index=index): json.dumps(manifest, indent=1)},
                # 1: tests failed; 2: a package did not build (reported as test errors).
                ok_exit_codes=frozenset({0, 1, 2}),
                stdout_file=REPORT.format(index=index),
            )
        )
    return commands
