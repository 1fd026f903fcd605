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
    chosen = next((t for t in toolchains if t.instance == instance), None)
    if chosen is None:
        names = ", ".join(t.instance for t in toolchains) or "none"
        raise UsageError(f"no toolchain instance {instance!r} (instances: {names})")
    current: TypeDef = chosen.main
    for step in steps:
        fn = current.function(step)
        if fn is None:
            raise UsageError(f"{current.name} has no function {step!r}")
        nxt = fn.returns_type
        following = typedef_of(nxt) if isinstance(nxt, type) else None
        if following is None:
            return f"{fn.kebab} returns {fn.returns}"
        current = following
    return "\n".join([current.name, *_type_lines(current, indent="  ")])


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
            f"--{p.kebab} {p.annotation or 'str'}" + ("" if p.required else "?") for p in fn.params
        )
        doc = f"  — {fn.doc.splitlines()[0]}" if fn.doc else ""
        signature = f"{fn.kebab} {args}".rstrip()
        lines.append(f"{indent}{signature} -> {fn.returns}{marks}{doc}")
    return lines
