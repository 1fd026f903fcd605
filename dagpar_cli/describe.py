"""``dagpar functions``: a readable listing of toolchains, functions and fields."""

from __future__ import annotations

from collections.abc import Sequence

from dagpar_cli.discovery import Toolchain
from dagpar_cli.errors import UsageError
from dagpar_cli.sdk.types import TypeDef, typedef_of

__all__ = ["describe"]


def describe(toolchains: Sequence[Toolchain], path: Sequence[str]) -> str:
    """List every toolchain, or follow *path* (``INSTANCE [FUNCTION...]``) to one type.

    Functions carry ``[+parallel]`` and ``[+check]`` marks; the ``+parallel`` field too.
    """
    if not path:
        lines: list[str] = []
        for tc in toolchains:
            lines.append(f"{tc.instance}  ({tc.origin}, source: {tc.config.source or '.'})")
            lines.extend(_type_lines(tc.main, indent="  "))
            for td in sorted(tc.types.values(), key=lambda t: t.line):
                if td is not tc.main:
                    lines.append(f"  type {td.name}")
                    lines.extend(_type_lines(td, indent="    "))
        return "\n".join(lines) if lines else "no toolchains (add a dagpar.yaml)"
    instance, *steps = path
    tc = next((t for t in toolchains if t.instance == instance), None)
    if tc is None:
        names = ", ".join(t.instance for t in toolchains) or "none"
        raise UsageError(f"no toolchain instance {instance!r} (instances: {names})")
    td: TypeDef | None = tc.main
    for step in steps:
        assert td is not None
        fn = td.function(step)
        if fn is None:
            raise UsageError(f"{td.name} has no function {step!r}")
        nxt = fn.returns_type
        td = typedef_of(nxt) if isinstance(nxt, type) else None
        if td is None:
            return f"{fn.kebab} returns {fn.returns}"
    assert td is not None
    return "\n".join([td.name, *_type_lines(td, indent="  ")])


def _type_lines(td: TypeDef, *, indent: str) -> list[str]:
    lines: list[str] = []
    for f in td.fields:
        mark = "  [+parallel]" if f.parallel else ""
        lines.append(f"{indent}field {f.kebab}: {f.annotation}{mark}")
    for fn in td.functions:
        marks = "".join(
            m for m, on in (("  [+parallel]", fn.parallel), ("  [+check]", fn.check)) if on
        )
        args = " ".join(
            f"--{p.kebab} {p.annotation or 'str'}" + ("" if p.required else "?")
            for p in fn.params
        )
        doc = f"  — {fn.doc.splitlines()[0]}" if fn.doc else ""
        lines.append(f"{indent}{fn.kebab}{(' ' + args) if args else ''} -> {fn.returns}{marks}{doc}")
    return lines
