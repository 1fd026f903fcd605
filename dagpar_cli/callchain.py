"""Stage 3: what to call — the checks a ``dagpar check`` selects, or a ``dagpar call`` chain.

Checks are named ``instance:function`` and selected by patterns in dagpar's one glob dialect
(:func:`dagpar_cli.filtering.translate_glob`, shared with ``--filter``): ``*`` and ``?`` never
cross ``:`` or ``/``, ``**`` crosses both, ``[...]`` is a class. A pattern without ``:`` may also
name an instance, selecting all of its checks (``back*`` selects ``backend:unit`` and
``backend:lint``).

A chain (``dagpar call INSTANCE FUNCTION [--arg V]... [FUNCTION ...]``) is parsed and checked
against the toolchain's type definitions *before* anything runs, so a misspelt second function
fails at once; then each step is called on the previous step's result. Arguments are kebab-case
flags; list arguments repeat the flag or take commas.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagpar_cli.discovery import Toolchain
from dagpar_cli.errors import NothingSelectedError, UsageError
from dagpar_cli.filtering import translate_glob
from dagpar_cli.sdk.directory import Directory
from dagpar_cli.sdk.types import FieldDef, FunctionDef, TypeDef, typedef_of

__all__ = [
    "CheckSpec",
    "Step",
    "call_chain",
    "check_pattern",
    "parse_chain",
    "resolve_chain",
    "select_checks",
]

#: What ``*`` and ``?`` of a check pattern never cross: the instance's ``:`` and a ``/``.
CHECK_SEPARATORS = ":/"


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A check to run: ``instance:function`` on a toolchain."""

    #: The check's name, ``instance:function-name``.
    name: str
    #: The toolchain instance it belongs to.
    toolchain: Toolchain
    #: The Python name of the ``+check`` function on the toolchain's main class.
    function: str


def select_checks(
    toolchains: Sequence[Toolchain], patterns: Sequence[str], skip: Sequence[str]
) -> list[CheckSpec]:
    """Every ``+check`` whose name matches a pattern (all when none) and no ``--skip``.

    Patterns are globs on ``instance:function`` names (see the module docstring); a pattern
    without ``:`` also matches an instance name, selecting all of its checks.

    :param toolchains: the discovered toolchains, in configuration order.
    :param patterns: the patterns given on the command line; none selects every check.
    :param skip: ``--skip`` patterns; what they match is left out.
    :returns: the selected checks, in toolchain and function order.
    :raises NothingSelectedError: a pattern matched no check (with the names that exist).
    """
    every = [
        CheckSpec(f"{tc.instance}:{fn.kebab}", tc, fn.name)
        for tc in toolchains
        for fn in tc.main.functions
        if fn.check
    ]
    names = [c.name for c in every]
    chosen = every
    if patterns:
        for pattern in patterns:
            if not any(check_pattern(pattern)(n) for n in names):
                close = difflib.get_close_matches(pattern, names, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise NothingSelectedError(
                    f"no check matches {pattern!r}{hint} (checks: {', '.join(names) or 'none'})"
                )
        chosen = [c for c in every if any(check_pattern(p)(c.name) for p in patterns)]
    return [c for c in chosen if not any(check_pattern(s)(c.name) for s in skip)]


@functools.lru_cache(maxsize=256)
def check_pattern(pattern: str) -> Callable[[str], bool]:
    """A predicate: does *pattern* select the check named ``instance:function``?

    :param pattern: a glob on check names; without ``:`` it also matches the instance alone.
    """
    regex = re.compile(translate_glob(pattern, separators=CHECK_SEPARATORS), re.DOTALL)
    if ":" in pattern:
        return lambda name: regex.fullmatch(name) is not None

    def matches(name: str) -> bool:
        instance = name.split(":", 1)[0]
        return regex.fullmatch(instance) is not None or regex.fullmatch(name) is not None

    return matches


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a chain: a function (or field) name and its raw ``--flag value`` pairs."""

    name: str
    args: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class _Resolved:
    step: Step
    function: FunctionDef | None
    field: FieldDef | None


def parse_chain(tokens: Sequence[str]) -> tuple[str, list[Step]]:
    """Split ``INSTANCE FUNCTION [--arg V]... [FUNCTION ...]`` into the instance and steps.

    :raises UsageError: no instance or function, or a flag before the first function.
    """
    if not tokens:
        raise UsageError("dagpar call needs INSTANCE FUNCTION, e.g. `dagpar call pytest test`")
    instance, rest = tokens[0], list(tokens[1:])
    if instance.startswith("-"):
        raise UsageError(f"dagpar call: expected an instance name first, got {instance!r}")
    steps: list[tuple[str, list[tuple[str, str]]]] = []
    i = 0
    while i < len(rest):
        token = rest[i]
        if token.startswith("--") and len(token) > 2:
            if not steps:
                raise UsageError(
                    f"dagpar call: {token} comes before any function; "
                    f"write `dagpar call {instance} FUNCTION {token} VALUE`"
                )
            flag, eq, value = token[2:].partition("=")
            if not eq:
                if i + 1 >= len(rest):
                    raise UsageError(f"dagpar call: {token} needs a value")
                i += 1
                value = rest[i]
            steps[-1][1].append((flag, value))
        else:
            steps.append((token, []))
        i += 1
    if not steps:
        raise UsageError(
            f"dagpar call {instance}: name a function; `dagpar functions {instance}` lists them"
        )
    return instance, [Step(name, tuple(args)) for name, args in steps]


def resolve_chain(main: TypeDef, steps: Sequence[Step]) -> list[_Resolved]:
    """Check every step against the types it will run on, before running anything."""
    resolved: list[_Resolved] = []
    current: TypeDef | None = main
    where = main.name
    for step in steps:
        if current is None:
            raise UsageError(
                f"dagpar call: {where} returns a value without functions; "
                f"nothing can follow it (remove '{step.name}')"
            )
        fn = current.function(step.name)
        fld = None if fn else current.field_named(step.name)
        if fn is None and fld is None:
            names = [f.kebab for f in current.functions] + [f.kebab for f in current.fields]
            close = difflib.get_close_matches(step.name, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UsageError(
                f"dagpar call: {current.name} has no function '{step.name}'{hint} "
                f"(functions: {', '.join(f.kebab for f in current.functions) or 'none'})"
            )
        if fn is not None:
            known = {p.kebab: p for p in fn.params}
            for flag, _ in step.args:
                if flag not in known:
                    close = difflib.get_close_matches(flag, list(known), n=1)
                    hint = f"; did you mean --{close[0]}?" if close else ""
                    raise UsageError(
                        f"dagpar call: {current.name}.{fn.kebab} has no argument --{flag}{hint}"
                    )
            given = {flag for flag, _ in step.args}
            missing = [p.kebab for p in fn.params if p.required and p.kebab not in given]
            if missing:
                raise UsageError(
                    f"dagpar call: {current.name}.{fn.kebab} needs "
                    + ", ".join(f"--{m}" for m in missing)
                )
            nxt: Any = fn.returns_type
        else:
            assert fld is not None
            if step.args:
                raise UsageError(f"dagpar call: field '{fld.kebab}' takes no arguments")
            nxt = fld.type
        resolved.append(_Resolved(step, fn, fld))
        where = f"{current.name}.{step.name}"
        current = typedef_of(nxt) if isinstance(nxt, type) else None
    return resolved


def call_chain(obj: Any, steps: Sequence[Step], workspace: Path) -> Any:
    """Run the chain on *obj* and return the last step's value."""
    td = typedef_of(obj)
    if td is None:
        raise UsageError("dagpar call: the toolchain's main object is not an @object_type")
    resolved = resolve_chain(td, steps)
    value = obj
    for r in resolved:
        if r.function is not None:
            kwargs = {
                p.name: _convert(
                    p.type,
                    p.annotation,
                    [v for f, v in r.step.args if f == p.kebab],
                    f"--{p.kebab}",
                    workspace,
                )
                for p in r.function.params
                if any(f == p.kebab for f, _ in r.step.args)
            }
            value = getattr(value, r.function.name)(**kwargs)
        else:
            assert r.field is not None
            value = getattr(value, r.field.name)
    return value


def _convert(tp: Any, annotation: str, raw: list[str], flag: str, workspace: Path) -> Any:
    """Convert the raw flag values to the parameter's type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else str
        origin = typing.get_origin(tp)
    if origin is list or (tp is None and annotation.startswith("list")):
        (inner,) = typing.get_args(tp) or (str,)
        values = [part for value in raw for part in value.split(",") if part != ""]
        return [_scalar(inner, v, flag, workspace) for v in values]
    if len(raw) > 1:
        raise UsageError(f"dagpar call: {flag} given {len(raw)} times; it takes one value")
    return _scalar(tp, raw[0], flag, workspace)


def _scalar(tp: Any, value: str, flag: str, workspace: Path) -> Any:
    try:
        if tp is bool:
            lowered = value.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if tp is int:
            return int(value)
        if tp is float:
            return float(value)
        if tp is Directory:
            path = (workspace / value).resolve()
            if not path.is_dir():
                raise UsageError(f"dagpar call: {flag} {value}: no such directory")
            rel = (
                path.relative_to(workspace.resolve()).as_posix()
                if path.is_relative_to(workspace.resolve())
                else None
            )
            return Directory(path, "" if rel == "." else rel)
    except ValueError:
        name = getattr(tp, "__name__", str(tp))
        raise UsageError(f"dagpar call: {flag} expects {name}, got {value!r}") from None
    return value
