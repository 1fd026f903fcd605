"""The toolchain model: ``@object_type`` classes, their fields and functions, and pragmas.

A toolchain author marks things in either of two equivalent ways:

- the seed's pragmas, as Python comments exactly where Go puts them::

      files: list[str] = field()  # +parallel

      # +parallel
      def test(self) -> None: ...

- or the decorator forms: ``field(parallel=True)``, ``@parallel``, ``@check``.

``@object_type`` turns the class into a keyword-only dataclass and records a :class:`TypeDef`
(its fields and functions, with file and line) on it. Definition errors are *recorded*, not
raised, so that discovery can report them with file:line before anything runs.

Several ``+parallel`` fields on one type mean their Cartesian product: a slice's receiver holds
a subset of each, and its work is the product of those subsets (a sub-grid).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import inspect
import io
import re
import sys
import tokenize
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - Python 3.10
    from typing_extensions import dataclass_transform


__all__ = [
    "FieldDef",
    "FunctionDef",
    "ParamDef",
    "TypeDef",
    "check",
    "field",
    "object_type",
    "parallel",
    "typedef_of",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_PRAGMAS = ("parallel", "check")
#: ``# +parallel`` or ``# +check``, optionally followed by prose (``# +parallel  (or: ...)``).
_PRAGMA_RE = re.compile(r"^#\s*\+([A-Za-z_-]+)(\s.*)?$")
_META_PARALLEL = "dagpar_parallel"


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldDef:
    """A public field of an object type."""

    name: str
    #: The annotation as written (``"list[str]"``).
    annotation: str
    #: The resolved type, when it could be resolved.
    type: Any = None
    #: Marked ``+parallel``.
    parallel: bool = False
    #: Whether the constructor requires it.
    required: bool = True
    line: int = 0

    @property
    def nested(self) -> bool:
        """Whether the field is ``list[list[str]]`` (each element an opaque selector)."""
        return _list_depth(self.type, self.annotation) == 2

    @property
    def kebab(self) -> str:
        """The CLI name."""
        return self.name.replace("_", "-")


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamDef:
    """A parameter of a function."""

    name: str
    annotation: str
    type: Any = None
    required: bool = True
    default: Any = None

    @property
    def kebab(self) -> str:
        """The CLI flag name, without dashes."""
        return self.name.replace("_", "-")


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionDef:
    """A public method of an object type."""

    name: str
    params: tuple[ParamDef, ...] = ()
    #: The return annotation as written (``"None"``, ``"Directory"``, ``"TestFiles"``).
    returns: str = "None"
    returns_type: Any = None
    parallel: bool = False
    check: bool = False
    line: int = 0
    doc: str = ""

    @property
    def kebab(self) -> str:
        """The CLI name."""
        return self.name.replace("_", "-")


@dataclass(slots=True, kw_only=True)
class TypeDef:
    """What ``@object_type`` recorded about a class."""

    name: str
    cls: type
    file: str
    line: int
    fields: tuple[FieldDef, ...] = ()
    functions: tuple[FunctionDef, ...] = ()
    #: The runner plugin whose tests the ``+parallel`` field holds (``@object_type(runner=)``).
    runner: str | None = None
    #: Definition errors as ``(line, message)``, reported by discovery.
    errors: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    doc: str = ""

    @property
    def parallel_field(self) -> FieldDef | None:
        """The first ``+parallel`` field, if any."""
        return next((f for f in self.fields if f.parallel), None)

    @property
    def parallel_fields(self) -> tuple[FieldDef, ...]:
        """Every ``+parallel`` field, in declaration order; several mean their Cartesian
        product (a matrix), whose last field gives the items their paths."""
        return tuple(f for f in self.fields if f.parallel)

    def function(self, name: str) -> FunctionDef | None:
        """The function called *name* (snake_case or kebab-case)."""
        wanted = name.replace("-", "_")
        return next((f for f in self.functions if f.name == wanted), None)

    def field_named(self, name: str) -> FieldDef | None:
        """The field called *name* (snake_case or kebab-case)."""
        wanted = name.replace("-", "_")
        return next((f for f in self.fields if f.name == wanted), None)


def typedef_of(obj: object) -> TypeDef | None:
    """The :class:`TypeDef` of an ``@object_type`` class or instance, else None."""
    cls = obj if isinstance(obj, type) else type(obj)
    td = cls.__dict__.get("__dagpar_type__")
    return td if isinstance(td, TypeDef) else None


def field(
    *,
    parallel: bool = False,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """Declare a field, optionally ``+parallel`` (the list dagpar may split into slices).

    :param parallel: mark the field as safely splittable (same as a ``# +parallel`` comment).
    :param default: a default value.
    :param default_factory: a callable making the default (for lists).
    """
    kwargs: dict[str, Any] = {"metadata": {_META_PARALLEL: parallel}}
    if default is not dataclasses.MISSING:
        kwargs["default"] = default
    if default_factory is not dataclasses.MISSING:
        kwargs["default_factory"] = default_factory
    return dataclasses.field(**kwargs)


def parallel(fn: F) -> F:
    """Mark a function as benefiting from parallel execution (same as ``# +parallel``)."""
    fn.__dagpar_parallel__ = True  # type: ignore[attr-defined]
    return fn


def check(fn: F) -> F:
    """Mark a function as a check, run by ``dagpar check`` (same as ``# +check``)."""
    fn.__dagpar_check__ = True  # type: ignore[attr-defined]
    return fn


@overload
@dataclass_transform(kw_only_default=True, field_specifiers=(field, dataclasses.field))
def object_type(cls: type[T], /) -> type[T]: ...


@overload
def object_type(*, runner: str | None = None) -> Callable[[type[T]], type[T]]: ...


def object_type(
    cls: type[T] | None = None, /, *, runner: str | None = None
) -> type[T] | Callable[[type[T]], type[T]]:
    """Make *cls* a toolchain object type.

    :param runner: the runner plugin (``pytest``, ``jest``, ``go``...) whose tests the type's
        ``+parallel`` field selects; it lets dagpar list, filter and split by test.
    """

    def wrap(c: type[T]) -> type[T]:
        return _make_object_type(c, runner)

    return wrap(cls) if cls is not None else wrap


def _make_object_type(cls: type[T], runner: str | None) -> type[T]:
    pragmas = _comment_pragmas(cls)
    errors: list[tuple[int, str]] = []
    for line, name in pragmas.unknown:
        close = difflib.get_close_matches(name, _PRAGMAS, n=1)
        hint = f"; did you mean '+{close[0]}'?" if close else f"; known: +{', +'.join(_PRAGMAS)}"
        errors.append((line, f"unknown pragma '+{name}'{hint}"))
    for line in pragmas.dangling:
        errors.append(
            (line, "pragma is not attached to a field or a def (put it on the line directly above)")
        )

    data_cls: Any = dataclasses.dataclass(kw_only=True)(cls)
    hints = _type_hints(data_cls)
    src_file = pragmas.file

    fields: list[FieldDef] = []
    for f in dataclasses.fields(data_cls):
        if f.name.startswith("_"):
            continue
        line = pragmas.field_lines.get(f.name, pragmas.class_line)
        marked = bool(f.metadata.get(_META_PARALLEL)) or f.name in pragmas.parallel_fields
        annotation = f.type if isinstance(f.type, str) else _type_name(f.type)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        fd = FieldDef(
            name=f.name,
            annotation=annotation,
            type=hints.get(f.name),
            parallel=marked,
            required=required,
            line=line,
        )
        if marked and _list_depth(fd.type, fd.annotation) not in (1, 2):
            errors.append(
                (
                    line,
                    f"+parallel field '{f.name}' must be list[str] or list[list[str]], "
                    f"not {annotation}",
                )
            )
        fields.append(fd)
    # Several +parallel fields mean their Cartesian product (runtime/grid.py).
    parallel_fields = [f for f in fields if f.parallel]
    if runner is not None and len(parallel_fields) > 1:
        names = ", ".join(f.name for f in parallel_fields)
        errors.append(
            (
                parallel_fields[1].line,
                f"{cls.__name__} has several +parallel fields ({names}) and runner={runner!r}; "
                "a runner's type splits along one field: mark only one, and build the matrix "
                "in a type without runner= that calls it",
            )
        )

    functions: list[FunctionDef] = []
    for name, member in list(vars(data_cls).items()):
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        line = pragmas.def_lines.get(name, _first_line(member))
        is_parallel = bool(getattr(member, "__dagpar_parallel__", False)) or (
            name in pragmas.parallel_defs
        )
        is_check = bool(getattr(member, "__dagpar_check__", False)) or name in pragmas.check_defs
        fn_def = _function_def(member, name, line, is_parallel, is_check, errors)
        functions.append(fn_def)
        if is_parallel:
            if not parallel_fields:
                errors.append(
                    (
                        line,
                        f"+parallel function '{name}' needs a +parallel field on {cls.__name__} "
                        "to split; mark a list field with  # +parallel  or field(parallel=True)",
                    )
                )
            if fn_def.returns not in ("None", "Directory"):
                errors.append(
                    (
                        line,
                        f"+parallel function '{name}' returns {fn_def.returns}; "
                        "it may return only None or Directory (slices' results are merged)",
                    )
                )
            setattr(data_cls, name, _dispatching(member, name))
        if is_check:
            needed = [p.name for p in fn_def.params if p.required]
            if needed:
                errors.append(
                    (
                        line,
                        f"+check function '{name}' has required arguments "
                        f"({', '.join(needed)}); give them defaults, checks run without arguments",
                    )
                )

    data_cls.__dagpar_type__ = TypeDef(
        name=cls.__name__,
        cls=data_cls,
        file=src_file,
        line=pragmas.class_line,
        fields=tuple(fields),
        functions=tuple(functions),
        runner=runner,
        errors=errors,
        doc=inspect.getdoc(cls) or "",
    )
    made: type[T] = data_cls
    return made


def _dispatching(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """Wrap a ``+parallel`` method so that calling it goes through the run's runtime."""

    @functools.wraps(fn)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        from dagpar_cli.runtime.context import dispatch

        return dispatch(self, name, fn, args, kwargs)

    call.__dagpar_parallel__ = True  # type: ignore[attr-defined]
    call.__dagpar_original__ = fn  # type: ignore[attr-defined]
    return call


def _function_def(
    fn: Callable[..., Any],
    name: str,
    line: int,
    is_parallel: bool,
    is_check: bool,
    errors: list[tuple[int, str]],
) -> FunctionDef:
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, globalns=sys.modules[fn.__module__].__dict__)
    except Exception:  # unresolvable annotations: fall back to the strings as written
        hints = {}
    params: list[ParamDef] = []
    for i, p in enumerate(sig.parameters.values()):
        if i == 0:
            continue  # self
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            errors.append((line, f"function '{name}' takes *{p.name}; name every argument"))
            continue
        annotation = p.annotation if isinstance(p.annotation, str) else _type_name(p.annotation)
        params.append(
            ParamDef(
                name=p.name,
                annotation="" if p.annotation is inspect.Parameter.empty else annotation,
                type=hints.get(p.name),
                required=p.default is inspect.Parameter.empty,
                default=None if p.default is inspect.Parameter.empty else p.default,
            )
        )
    ret = sig.return_annotation
    if ret is inspect.Signature.empty:
        returns = "None"
    else:
        returns = ret if isinstance(ret, str) else _type_name(ret)
    return FunctionDef(
        name=name,
        params=tuple(params),
        returns=returns.strip("'\""),
        returns_type=hints.get("return"),
        parallel=is_parallel,
        check=is_check,
        line=line,
        doc=inspect.getdoc(fn) or "",
    )


def _type_hints(cls: type) -> dict[str, Any]:
    module = sys.modules.get(cls.__module__)
    try:
        return typing.get_type_hints(cls, globalns=vars(module) if module else None)
    except Exception:  # unresolvable annotations: fall back to the strings as written
        return {}


def _type_name(tp: Any) -> str:
    if tp is None or tp is type(None):
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _list_depth(tp: Any, annotation: str) -> int:
    """1 for ``list[str]``, 2 for ``list[list[str]]``, 0 for anything else."""
    if tp is not None:
        depth = 0
        while typing.get_origin(tp) is list:
            (tp,) = typing.get_args(tp) or (Any,)
            depth += 1
        return depth if tp is str and depth else 0
    text = annotation.replace(" ", "").replace("List[", "list[").replace("typing.", "")
    if text == "list[str]":
        return 1
    if text == "list[list[str]]":
        return 2
    return 0


def _first_line(fn: Callable[..., Any]) -> int:
    code = getattr(fn, "__code__", None)
    return int(code.co_firstlineno) if code else 0


@dataclass(slots=True)
class _Pragmas:
    file: str = "<unknown>"
    class_line: int = 0
    field_lines: dict[str, int] = dataclasses.field(default_factory=dict)
    def_lines: dict[str, int] = dataclasses.field(default_factory=dict)
    parallel_fields: set[str] = dataclasses.field(default_factory=set)
    parallel_defs: set[str] = dataclasses.field(default_factory=set)
    check_defs: set[str] = dataclasses.field(default_factory=set)
    unknown: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    dangling: list[int] = dataclasses.field(default_factory=list)


def _comment_pragmas(cls: type) -> _Pragmas:
    """Find ``# +parallel`` / ``# +check`` comments in the class's source.

    A field's pragma is a trailing comment on the field's line (or a comment line directly
    above it); a function's pragma is in the comment block directly above its ``def`` (or its
    decorators), as in Go.
    """
    result = _Pragmas()
    try:
        file = inspect.getsourcefile(cls) or "<unknown>"
        lines, start = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return result
    result.file = _display_path(file)
    result.class_line = start
    source = "".join(lines)
    # Dedent so that classes nested in functions still parse.
    indent = len(lines[0]) - len(lines[0].lstrip())
    if indent:
        source = "".join(line[indent:] if line.strip() else line for line in lines)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return result
    comments: dict[int, str] = {}
    trailing: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                row = tok.start[0]
                stripped = lines[row - 1].strip()
                (comments if stripped.startswith("#") else trailing)[row] = tok.string
    except (tokenize.TokenError, IndentationError):
        return result

    def pragma(text: str) -> str | None:
        m = _PRAGMA_RE.match(text.strip())
        if m is None:
            return None
        word = m.group(1)
        # An unknown word counts as a misspelt pragma only when it stands alone, so that an
        # ordinary comment such as ``# +TODO tidy this`` is left in peace.
        return word if word in _PRAGMAS or not (m.group(2) or "").strip() else None

    used: set[int] = set()
    class_node = tree.body[0] if tree.body else None
    if not isinstance(class_node, ast.ClassDef):
        return result
    for node in class_node.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
            first, last = node.lineno, node.end_lineno or node.lineno
            result.field_lines[name] = start + first - 1
            for row in range(first, last + 1):
                if row in trailing and pragma(trailing[row]) is not None:
                    used.add(row)
                    if pragma(trailing[row]) == "parallel":
                        result.parallel_fields.add(name)
            for row, word in _block_above(first, comments, pragma):
                used.add(row)
                if word == "parallel":
                    result.parallel_fields.add(name)
                elif word == "check":
                    result.dangling.append(start + row - 1)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            top = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            result.def_lines[node.name] = start + node.lineno - 1
            for row, word in _block_above(top, comments, pragma):
                used.add(row)
                if word == "parallel":
                    result.parallel_defs.add(node.name)
                elif word == "check":
                    result.check_defs.add(node.name)
    for row, text in sorted({**comments, **trailing}.items()):
        found = pragma(text)
        if found is None:
            continue
        if found not in _PRAGMAS:
            result.unknown.append((start + row - 1, found))
        elif row not in used:
            result.dangling.append(start + row - 1)
    return result


def _block_above(
    row: int, comments: dict[int, str], pragma: Callable[[str], str | None]
) -> list[tuple[int, str]]:
    """Pragmas in the contiguous comment lines directly above *row*."""
    found: list[tuple[int, str]] = []
    above = row - 1
    while above in comments:
        word = pragma(comments[above])
        if word is not None:
            found.append((above, word))
        above -= 1
    return found


def _display_path(file: str) -> str:
    """*file* relative to the current directory when under it (shorter messages)."""
    try:
        return str(Path(file).resolve().relative_to(Path.cwd()))
    except ValueError:
        return file
