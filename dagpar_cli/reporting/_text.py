"""Making runner output safe to put in a report: XML-legal characters and bounded sizes.

Runner output is hostile by nature: ANSI colours, NUL bytes from a crashed binary, undecodable
bytes carried as lone surrogates (``surrogateescape``), and the occasional 10 MB assertion diff.
"""

from __future__ import annotations

import re

__all__ = ["clean_text", "strip_ansi", "truncate"]

#: ANSI escape sequences (colours, cursor moves): noise outside a terminal.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")

#: Characters XML 1.0 cannot carry at all (not even as character references), plus the
#: surrogates that stand for undecodable bytes.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")

#: The replacement for bytes that were not UTF-8.
REPLACEMENT = "\ufffd"


def strip_ansi(text: str) -> str:
    """*text* without ANSI escape sequences."""
    return _ANSI.sub("", text) if "\x1b" in text else text


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        # A lone surrogate is an undecodable byte smuggled through ``surrogateescape``.
        return REPLACEMENT
    # Visible, so a reader still sees that the output held a control character.
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def clean_text(text: str | bytes) -> str:
    """*text* with only characters XML 1.0 accepts, readable in a report.

    Bytes are decoded as UTF-8 with invalid sequences replaced by U+FFFD; ANSI escape sequences
    are removed; other control characters become visible escapes (``\\x00``); lone surrogates
    become U+FFFD. Tab, newline and carriage return are kept.

    :param text: runner output, a test name or a message.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = strip_ansi(text)
    return _ILLEGAL_XML.sub(_escape, text)


def truncate(text: str, limit: int, *, keep_tail: bool = False) -> str:
    """*text* cut to at most about *limit* UTF-8 bytes, with a note saying how much was dropped.

    :param text: clean text (see :func:`clean_text`).
    :param limit: the number of bytes to keep.
    :param keep_tail: keep the head and the tail and drop the middle (tracebacks and logs end
        with what matters), instead of keeping only the head.
    """
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    if keep_tail:
        head_bytes = data[: limit // 2]
        tail_bytes = data[len(data) - limit // 2 :]
        # Cutting bytes can split a character; ignoring the partial one keeps the text valid.
        head = head_bytes.decode("utf-8", errors="ignore")
        tail = tail_bytes.decode("utf-8", errors="ignore")
        dropped = len(data) - len(head.encode()) - len(tail.encode())
        return f"{head}\n… [truncated {dropped} bytes] …\n{tail}"
    head = data[:limit].decode("utf-8", errors="ignore")
    dropped = len(data) - len(head.encode())
    return f"{head}… [truncated {dropped} bytes]"
