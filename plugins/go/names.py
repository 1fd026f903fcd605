"""Test names as the testing package reports them (``testing.rewrite``)."""

from __future__ import annotations

__all__ = ["reported_name", "rewrite_subtest_name"]


def _is_space(char: str) -> bool:
    # testing.isSpace: not Python's str.isspace (which also counts \x1c-\x1f, say).
    code = ord(char)
    if code < 0x2000:
        return char in "\t\n\v\f\r \x85\xa0\u1680"
    return code <= 0x200A or code in (0x2028, 0x2029, 0x202F, 0x205F, 0x3000)


def rewrite_subtest_name(part: str) -> str:
    """One subtest name as the testing package reports it (``testing.rewrite``).

    Spaces become ``_`` and unprintable runes their Go escape; idempotent, so a name taken
    from an earlier report stays as it is.

    :param part: the argument of ``t.Run`` (one level, without ``/``).
    """
    out: list[str] = []
    for char in part:
        if _is_space(char):
            out.append("_")
        elif not char.isprintable():
            out.append(_go_escape(char))
        else:
            out.append(char)
    return "".join(out)


def _go_escape(char: str) -> str:
    # strconv.QuoteRune without its quotes
    code = ord(char)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b"}


def reported_name(name: str) -> str:
    """The name go reports for the selected test *name*: ``TestX/a b`` → ``TestX/a_b``."""
    top, *subs = name.split("/")
    return "/".join([top, *(rewrite_subtest_name(s) for s in subs)])
