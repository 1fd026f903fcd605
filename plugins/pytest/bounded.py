"""Reading pytest's JUnit report with bounded memory: a head and a tail of every text.

A test that prints 250 MB under ``junit_logging = system-out`` makes a 250 MB ``system-out``
element; an element tree would hold all of it, and dagpar's reports after it. :func:`read_cases`
keeps, of each text inside a ``testcase``, its first and last :data:`KEEP` characters and a line
saying how many bytes were cut between them; nothing outside test cases is kept at all.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["KEEP", "clip", "read_cases"]

#: Characters kept from the start, and from the end, of one text.
KEEP = 32 * 1024


class _Text:
    """One text, as it arrives in pieces: its head, its tail, and how much fell between."""

    __slots__ = ("head", "tail", "total_bytes")

    def __init__(self) -> None:
        self.head = ""
        self.tail = ""
        self.total_bytes = 0

    def add(self, piece: str) -> None:
        self.total_bytes += len(piece.encode("utf-8", "surrogatepass"))
        if len(self.head) < KEEP:
            room = KEEP - len(self.head)
            self.head += piece[:room]
            piece = piece[room:]
        if piece:
            self.tail = (self.tail + piece)[-KEEP:]

    def text(self) -> str:
        if not self.tail:
            return self.head
        kept = len((self.head + self.tail).encode("utf-8", "surrogatepass"))
        cut = self.total_bytes - kept
        if cut <= 0:
            return self.head + self.tail
        return f"{self.head}\n[... {cut} bytes cut by dagpar ...]\n{self.tail}"


def clip(text: str) -> str:
    """*text* with its middle cut as :func:`read_cases` cuts element texts."""
    if len(text) <= 2 * KEEP:
        return text
    bounded = _Text()
    bounded.add(text)
    return bounded.text()


class _Builder:
    """An XMLParser target that builds ``testcase`` elements only, with bounded texts."""

    def __init__(self) -> None:
        self.done: list[ET.Element] = []
        self._stack: list[tuple[ET.Element, _Text]] = []

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if tag != "testcase" and not self._stack:
            return  # testsuites, testsuite: nothing of theirs is kept
        element = ET.Element(tag, attrs)
        if self._stack:
            parent, _ = self._stack[-1]
            parent.append(element)
        self._stack.append((element, _Text()))

    def data(self, text: str) -> None:
        if self._stack:
            self._stack[-1][1].add(text)

    def end(self, tag: str) -> None:
        if not self._stack:
            return
        element, text = self._stack.pop()
        element.text = text.text() or None
        if not self._stack:
            self.done.append(element)

    def close(self) -> None:
        return None


def read_cases(stream: BinaryIO, problems: list[str]) -> Iterator[ET.Element]:
    """The complete ``testcase`` elements of the report *stream*, in order; a parse error ends
    them (those before it stand) and is appended to *problems*."""
    builder = _Builder()
    parser = ET.XMLParser(target=builder)
    try:
        for chunk in iter(lambda: stream.read(1 << 16), b""):
            parser.feed(chunk)
            yield from builder.done
            builder.done.clear()
        parser.close()
    except ET.ParseError as exc:
        problems.append(str(exc))
    except (LookupError, ValueError) as exc:
        # An XML declaration naming an encoding expat cannot decode ("x-bogus", "utf-32").
        problems.append(f"unsupported encoding ({exc})")
    yield from builder.done
    builder.done.clear()
