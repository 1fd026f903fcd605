"""Stage 4: the unified ``--filter``, one grammar for every runner (DESIGN.md §5).

::

    SELECTOR := ['!'] [INSTANCE ':'] PATHGLOB ['::' NAMEGLOB]

``PATHGLOB`` matches workspace-relative POSIX paths (what ``git status`` prints):

- ``*`` any characters except ``/``; ``**`` any depth, zero directories included (``a/**/b``
  matches ``a/b``); ``?`` one character except ``/``; ``[abc]``, ``[a-z]``, ``[!abc]`` classes
  (``]`` first in a class is literal; write ``[[]`` for a literal ``[``).
- A pattern selects a path when it matches the path **or any of its parent directories**:
  ``api`` selects everything under ``api/``, ``svc/store`` selects the Go package ``svc/store``
  and ``svc/store/*.go`` would not (Go tests live at their package's path).
- A leading ``./`` and a trailing ``/`` are ignored; an empty pattern (``::name``, ``backend:``)
  matches every path. Absolute paths and ``..`` are rejected.

``NAMEGLOB`` matches the runner's test name: pytest ``Class::test[param]``, Jest ``"describe
test"``, Go ``TestX``. ``*`` matches any characters (``/``, spaces and ``::`` included), ``?`` one
character, ``[...]`` a class. A pattern that **equals** a test name matches it before it is read as
a glob, so pasting a pytest node id whose parameter looks like a class (``test_x[a-1]``) works.
A name selects every test of a file with that name (Jest's same-named tests); the later ones also
answer to their id's name, ``name::#2``, ``name::#3``, so a pasted id selects just that test.

``INSTANCE:`` limits a selector to one toolchain instance. It is read as an instance only when the
text before the first ``:`` is a valid instance name and the next character is not ``:`` (so
``a::b`` is path ``a``, name ``b``) and it is not a drive letter (``C:/x``). ``backend:::name``
is instance ``backend``, any path, name ``name``. Write ``./tests:x`` for a path that contains a
colon.

Go subtests: when a ``NAMEGLOB`` contains ``/`` and does not match a listed test itself, but its
part before the first ``/`` matches a listed top-level test, the selection holds a test named
that top-level test plus the rest of the pattern verbatim (``TestX/sub one``); the Go runner
plugin turns it into ``-run '^TestX$/^sub one$'``. Only positive selectors do this: ``!`` removes
whole listed tests.

Several positive selectors are OR'ed, then the ``!`` selectors remove what they match. With only
``!`` selectors, everything else is selected. A selector prefixed with another instance does not
apply; when every positive selector names other instances, nothing of this instance is selected.
"""

from __future__ import annotations

import difflib
import functools
import operator
import posixpath
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, compress, repeat

from dagpar_cli.errors import UsageError
from dagpar_cli.model import Item, TestCase

__all__ = ["Filter", "Narrowed", "Selector", "parse_selector", "translate_glob"]

#: A predicate over a path or a name; truthy when it matches. Matchers are C-level callables
#: (``str.__eq__``, ``Pattern.fullmatch``) where possible, so that ``map`` over 50,000 names
#: never enters the interpreter per name.
_Matcher = Callable[[str], object]

_INSTANCE_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9_-]*):")
_GLOB_CHARS = frozenset("*?[")
#: The path pattern that matches every path.
ANY_PATH = "**"


@dataclass(frozen=True, slots=True)
class Selector:
    """One parsed ``--filter`` selector.

    :param negate: ``!``: the selector removes what it matches.
    :param instance: the ``INSTANCE:`` prefix, or None for every instance.
    :param path_glob: the normalised path pattern (``**`` when the selector gave none).
    :param name_glob: the test-name pattern after ``::``, or None.
    :param text: the selector as the user wrote it (for messages).
    """

    negate: bool
    instance: str | None
    path_glob: str
    name_glob: str | None
    text: str

    def applies_to(self, instance: str) -> bool:
        """Whether this selector concerns toolchain instance *instance*."""
        return self.instance is None or self.instance == instance

    def matches_path(self, path: str) -> bool:
        """Whether the path pattern matches *path* or one of its parent directories."""
        return bool(_path_matcher(self.path_glob)(path))

    def matches_name(self, name: str) -> bool:
        """Whether the name pattern matches test name *name* (always, without a name pattern)."""
        return self.name_glob is None or bool(_name_matcher(self.name_glob)(name))

    def matches(self, test: TestCase) -> bool:
        """Whether this selector matches *test* as listed (subtests aside)."""
        return self.matches_path(test.path) and self.matches_name(test.name)


def parse_selector(text: str) -> Selector:
    """Parse one ``--filter`` value.

    :param text: ``['!'] [INSTANCE ':'] PATHGLOB ['::' NAMEGLOB]``.
    :raises UsageError: naming the filter and what is wrong with it.
    """

    def fail(problem: str) -> UsageError:
        return UsageError(f"--filter {text!r}: {problem}")

    if not text.strip():
        raise fail("empty selector")
    body, negate = text, False
    if body.startswith("!"):
        body, negate = body[1:], True
        if not body.strip():
            raise fail("nothing after '!'")
    instance: str | None = None
    prefix = _INSTANCE_PREFIX.match(body)
    if prefix is not None:
        rest = body[prefix.end() :]
        drive = len(prefix.group(1)) == 1 and rest[:1] in ("/", "\\")
        if rest.startswith("::") or not (rest.startswith(":") or drive):
            instance, body = prefix.group(1), rest
    raw_path, separator, name_glob = body.partition("::")
    if separator and not name_glob:
        raise fail("empty test-name pattern after '::'")
    path_glob = _normalise_path_glob(raw_path, fail)
    # Compile now (the cache keeps it): every glob translates, an unbalanced '[' as a literal.
    _path_matcher(path_glob)
    if separator:
        _name_matcher(name_glob)
    return Selector(
        negate=negate,
        instance=instance,
        path_glob=path_glob,
        name_glob=name_glob if separator else None,
        text=text,
    )


def _normalise_path_glob(raw: str, fail: Callable[[str], UsageError]) -> str:
    if raw.startswith("/"):
        raise fail("path patterns are relative to the workspace root; drop the leading '/'")
    # `./api//x/` is `api/x`: drop empty and `.` segments as a shell user would expect.
    segments = [segment for segment in raw.split("/") if segment not in ("", ".")]
    if not segments:
        return ANY_PATH
    if ".." in segments:
        raise fail("path patterns cannot leave the workspace ('..')")
    return "/".join(segments)


# ---------------------------------------------------------------------------------------------
# Glob compilation (cached: a run compiles each pattern once)
# ---------------------------------------------------------------------------------------------


def _class(glob: str, start: int, *, separators: str) -> tuple[str, int]:
    """Translate the ``[...]`` class opening at *start*; returns the regex and the index after."""
    i = start + 1
    negate = i < len(glob) and glob[i] in "!^"
    if negate:
        i += 1
    # `]` right after the opening (or after `!`) is a member, as in fnmatch and the shell.
    close = glob.find("]", i + 1 if i < len(glob) and glob[i] == "]" else i)
    if close < 0:
        # No closing bracket: the '[' is a literal character, as in fnmatch, so a pasted test
        # name such as ``metacharacters .*+?()[]{} …`` still selects itself.
        return re.escape("["), start + 1
    members = glob[i:close]
    parts: list[str] = []
    j = 0
    while j < len(members):
        if j + 2 < len(members) and members[j + 1] == "-":
            lo, hi = members[j], members[j + 2]
            if lo <= hi:  # a reversed range matches nothing, as in fnmatch
                parts.append(f"{re.escape(lo)}-{re.escape(hi)}")
            j += 3
        else:
            parts.append(re.escape(members[j]))
            j += 1
    body = "".join(parts)
    seps = re.escape(separators)
    if negate:
        # A negated class never matches a separator.
        return f"[^{body}{seps}]", close + 1
    if not body:
        return "(?!)", close + 1
    return (f"(?![{seps}])[{body}]" if separators else f"[{body}]"), close + 1


def translate_glob(glob: str, *, separators: str = "/") -> str:
    """The regular expression (for ``fullmatch``) of *glob*, in dagpar's one glob dialect.

    ``*`` matches any characters but a separator, ``?`` one character but a separator, and
    ``[abc]``, ``[a-z]``, ``[!abc]`` one character of a class (never a separator); ``**``
    matches anything, separators included. Without separators, ``*`` and ``**`` are alike.
    ``--filter`` path globs separate on ``/`` (and add the rules of whole segments on top);
    check patterns (``dagpar check 'backend:*'``) separate on ``:`` and ``/``.

    :param glob: the pattern.
    :param separators: the characters that only ``**`` crosses.
    """
    one = f"[^{re.escape(separators)}]" if separators else "."
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            if glob.startswith("**", i):
                out.append(".*")
                i += 2
            else:
                out.append(one + "*")
                i += 1
        elif char == "?":
            out.append(one)
            i += 1
        elif char == "[":
            regex, i = _class(glob, i, separators=separators)
            out.append(regex)
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _translate(glob: str, *, path: bool) -> str:
    """The regex of one glob (a path segment's worth of rules when *path*)."""
    return translate_glob(glob, separators="/" if path else "")


@functools.lru_cache(maxsize=4096)
def _path_matcher(glob: str) -> _Matcher:
    """A predicate: does *glob* match a path or one of its parent directories?"""
    if glob == ANY_PATH:
        return lambda path: True
    if not _GLOB_CHARS.intersection(glob):
        prefix = glob + "/"
        return lambda path: path == glob or path.startswith(prefix)
    regex: list[str] = []
    need_separator = False
    segments = glob.split("/")
    for index, segment in enumerate(segments):
        if segment == "**":
            if index == len(segments) - 1:
                regex.append("(?:/.*)?" if need_separator else ".*")
            else:
                regex.append("/(?:.*/)?" if need_separator else "(?:.*/)?")
            need_separator = False
            continue
        if need_separator:
            regex.append("/")
        regex.append(_translate(segment, path=True))
        need_separator = True
    # The optional tail is what makes a pattern select everything under a matching directory.
    return re.compile("(?:" + "".join(regex) + ")(?:/.*)?", re.DOTALL).fullmatch


@functools.lru_cache(maxsize=4096)
def _name_matcher(glob: str) -> _Matcher:
    """A predicate: does *glob* match a test name (exactly, or as a glob)?"""
    if not _GLOB_CHARS.intersection(glob):
        return glob.__eq__
    # The commonest shapes skip the backtracking of `.*` for a plain substring search. Each also
    # matches the pattern's own text, so the exact-match rule below holds for them too.
    inner = glob.strip("*")
    if inner and not _GLOB_CHARS.intersection(inner):
        literal = re.escape(inner)
        if glob == f"*{inner}*":
            return re.compile(literal, re.DOTALL).search
        if glob == f"{inner}*":
            return re.compile(literal, re.DOTALL).match
        if glob == f"*{inner}":
            return re.compile(rf"{literal}\Z", re.DOTALL).search
    # The literal alternative comes first: a pasted name matches itself even when its brackets
    # read as a class that would not (``test_x[a-1]``).
    translated = _translate(glob, path=False)
    return re.compile(f"{re.escape(glob)}|(?:{translated})", re.DOTALL).fullmatch


@functools.lru_cache(maxsize=4096)
def _subtest_matcher(glob: str) -> tuple[_Matcher, str] | None:
    """For a name glob ``HEAD/REST``: the matcher of HEAD and REST, or None."""
    head, slash, rest = glob.partition("/")
    if not slash or not head or not rest:
        return None
    return _name_matcher(head), rest


# ---------------------------------------------------------------------------------------------
# The filter
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Compiled:
    index: int
    any_path: bool
    path: _Matcher
    name: _Matcher | None
    subtest: tuple[_Matcher, str] | None


@dataclass(frozen=True, slots=True)
class Narrowed:
    """What :meth:`Filter.narrow` kept of a split call."""

    items: list[Item]
    #: The kept items' tests, by item key.
    tests_of: dict[str, list[TestCase]]
    #: Whether some kept item runs only some of its listed tests.
    narrowed: bool


class Filter:
    """The ``--filter`` selectors of a run, applied per toolchain instance.

    It also counts what each selector matched across every call, so the CLI can name the
    selectors that matched nothing (:meth:`unmatched`) and suggest paths (:meth:`closest`).
    Selection may be called from several threads.

    :param selectors: the parsed selectors, in command-line order.
    """

    def __init__(self, selectors: Sequence[Selector] = ()) -> None:
        self.selectors: tuple[Selector, ...] = tuple(selectors)
        self._hits = [0] * len(self.selectors)
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, texts: Sequence[str]) -> Filter:
        """Parse ``--filter`` values.

        :raises UsageError: for the first malformed selector.
        """
        if isinstance(texts, str):  # one selector passed bare: not a sequence of characters
            texts = [texts]
        return cls([parse_selector(text) for text in texts])

    @property
    def is_empty(self) -> bool:
        """No selectors: everything is selected."""
        return not self.selectors

    def wants(self, instance: str) -> bool:
        """Whether anything of *instance* can be selected (False: skip listing its tests)."""
        positives = [s for s in self.selectors if not s.negate]
        return not positives or any(s.applies_to(instance) for s in positives)

    def check_instances(self, known: Iterable[str]) -> None:
        """Reject selectors whose ``INSTANCE:`` prefix names no configured instance.

        :param known: the configured instance names.
        :raises UsageError: naming the selector, the closest instance and the path escape.
        """
        names = sorted(set(known))
        for selector in self.selectors:
            if selector.instance is None or selector.instance in names:
                continue
            close = difflib.get_close_matches(selector.instance, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            bang = "!" if selector.negate else ""
            as_path = f"{bang}./{selector.text.removeprefix(bang)}"
            raise UsageError(
                f"--filter {selector.text!r}: no toolchain instance {selector.instance!r}{hint} "
                f"(instances: {', '.join(names) or 'none'}; for a path containing ':' write "
                f"'{as_path}')"
            )

    # -- selection ------------------------------------------------------------------------------

    def _compiled(self, instance: str) -> tuple[list[_Compiled], list[_Compiled], bool]:
        """The positive and negative selectors for *instance*, and whether to start from all."""
        positives: list[_Compiled] = []
        negatives: list[_Compiled] = []
        any_positive = False
        for index, selector in enumerate(self.selectors):
            any_positive = any_positive or not selector.negate
            if not selector.applies_to(instance):
                continue
            glob = selector.name_glob
            compiled = _Compiled(
                index=index,
                any_path=selector.path_glob == ANY_PATH,
                path=_path_matcher(selector.path_glob),
                name=None if glob is None else _name_matcher(glob),
                subtest=None if glob is None or selector.negate else _subtest_matcher(glob),
            )
            (negatives if selector.negate else positives).append(compiled)
        return positives, negatives, not any_positive

    def _count(self, hits: list[int]) -> None:
        with self._lock:
            for index, n in enumerate(hits):
                self._hits[index] += n

    def select_tests(
        self, instance: str, tests: Sequence[TestCase], *, subtests: bool = True
    ) -> tuple[list[TestCase], list[TestCase]]:
        """Split the listed tests of *instance* into selected and deselected, order preserved.

        :param instance: the toolchain instance the tests belong to.
        :param tests: the tests its runner listed, workspace-relative.
        :param subtests: whether a name pattern may reach below a listed test (Go subtests);
            pass False for runners whose names have no such levels.
        :returns: ``(selected, deselected)``. A selected entry is a listed test, or a subtest
            of one (see the module docstring); a test is deselected when nothing of it is.
        """
        if self.is_empty:
            return list(tests), []
        positives, negatives, start_from_all = self._compiled(instance)
        if not positives and not start_from_all:
            return [], list(tests)
        # Selection works column-wise, one selector at a time over every test, with C-level
        # iteration (map, compress) so that 50,000 tests x 20 selectors stays well under a
        # second; paths are matched once per distinct path.
        n = len(tests)
        names = [t.name for t in tests]
        # The later of same-named tests also answer to ``name::#N`` (their id's name part).
        numbered = [i for i, t in enumerate(tests) if t.occurrence]
        id_names = (
            [
                f"{names[i]}::#{tests[i].occurrence + 1}" if tests[i].occurrence else names[i]
                for i in range(n)
            ]
            if numbered
            else None
        )
        groups: dict[str, list[int]] = {}
        for i, test in enumerate(tests):
            groups.setdefault(test.path, []).append(i)
        hits = [0] * len(self.selectors)

        def by_path(c: _Compiled) -> Sequence[int]:
            if c.any_path:
                return range(n)
            ok = [group for path, group in groups.items() if c.path(path)]
            if len(ok) == len(groups):
                return range(n)
            return list(chain.from_iterable(ok))

        def by_name(c: _Compiled, candidates: Sequence[int]) -> list[int]:
            if c.name is None:
                return list(candidates)
            if isinstance(candidates, range):
                matched = list(compress(candidates, map(c.name, names)))
            else:
                matched = list(
                    compress(candidates, map(c.name, map(names.__getitem__, candidates)))
                )
            if id_names is not None:
                chosen = set(matched)
                wanted = set(candidates)
                extra = [i for i in numbered if i in wanted and i not in chosen]
                if extra:
                    also = set(compress(extra, map(c.name, map(id_names.__getitem__, extra))))
                    if also:
                        matched = [i for i in candidates if i in chosen or i in also]
            return matched

        excluded: set[int] = set()
        for c in negatives:
            matched = by_name(c, by_path(c))
            hits[c.index] += len(matched)
            excluded.update(matched)
        whole: set[int] | None = None if start_from_all else set()
        parts: dict[int, list[str]] = {}
        slashed: set[int] | None = None  # tests whose names already have levels
        for c in positives:
            candidates = by_path(c)
            matched = by_name(c, candidates)
            hits[c.index] += len(matched)
            if whole is not None:
                whole.update(matched)
            if subtests and c.subtest is not None:
                head, rest = c.subtest
                if slashed is None:
                    slashed = set(compress(range(n), map(operator.contains, names, repeat("/"))))
                skip = slashed.union(matched)
                tops = [i for i in candidates if i not in skip] if skip else candidates
                for i in compress(tops, map(head, map(names.__getitem__, tops))):
                    hits[c.index] += 1
                    parts.setdefault(i, []).append(f"{names[i]}/{rest}")
        self._count(hits)
        selected: list[TestCase] = []
        deselected: list[TestCase] = []
        for i, test in enumerate(tests):
            if i in excluded:
                deselected.append(test)
            elif whole is None or i in whole:
                selected.append(test)
            elif i in parts:
                selected.extend(TestCase(test.path, sub) for sub in dict.fromkeys(parts[i]))
            else:
                deselected.append(test)
        if parts:
            # A subtest a selector reached may also be listed itself, and selected again.
            selected = list(dict.fromkeys(selected))
        return selected, deselected

    def select_items(self, instance: str, items: Sequence[Item]) -> tuple[list[Item], list[Item]]:
        """Select *items* by path, for a toolchain whose runner cannot list tests.

        A name pattern matches an item's finer selector (``("pkg", "TestPut")`` has the name
        ``TestPut``) and never a whole-file item.

        :param instance: the toolchain instance.
        :param items: its ``+parallel`` items.
        :returns: ``(selected, deselected)``, order preserved.
        :raises UsageError: when a selector prefixed with *instance* has a name pattern and no
            item has a name: this toolchain cannot select by test name.
        """
        if self.is_empty:
            return list(items), []
        if not any(item.name is not None for item in items):
            for selector in self.selectors:
                if selector.instance == instance and selector.name_glob is not None:
                    raise UsageError(
                        f"--filter {selector.text!r}: toolchain {instance!r} cannot select by "
                        f"test name (its runner does not list tests); select by path instead"
                    )
        positives, negatives, start_from_all = self._compiled(instance)
        if not positives and not start_from_all:
            return [], list(items)
        hits = [0] * len(self.selectors)
        selected: list[Item] = []
        deselected: list[Item] = []

        def matches(c: _Compiled, item: Item) -> bool:
            if not c.path(item.path):
                return False
            if c.name is None:
                return True
            name = item.name
            return name is not None and bool(c.name(name))

        for item in items:
            excluded = False
            for c in negatives:
                if matches(c, item):
                    hits[c.index] += 1
                    excluded = True
            keep = start_from_all
            if not excluded:
                for c in positives:
                    if matches(c, item):
                        hits[c.index] += 1
                        keep = True
            (selected if keep and not excluded else deselected).append(item)
        self._count(hits)
        return selected, deselected

    # -- bookkeeping ----------------------------------------------------------------------------

    def narrow(
        self,
        instance: str,
        items: Sequence[Item],
        tests_of: dict[str, list[TestCase]],
        *,
        by_test: bool,
        subtests: bool = False,
        modify: Callable[[list[TestCase]], None] = lambda tests: None,
        deselected: Callable[[list[TestCase]], None] = lambda tests: None,
    ) -> Narrowed:
        """Stage 4 for one split call: the items, and their tests, that the run selects.

        The one path for every split call, with or without selectors: the filter selects,
        then *modify* may reorder or deselect the selected tests in place (the
        ``dagpar_modify_tests`` hook), and what it leaves is what runs. Without selectors, an
        item the runner lists no test of is kept whole (there is nothing to select it by).

        :param instance: the toolchain instance.
        :param tests_of: each item's listed tests (workspace-relative), by item key.
        :param by_test: whether a runner lists the items' tests (else items are selected whole,
            by path, and *modify* is not called).
        :param subtests: whether name patterns may reach below a listed test (Go subtests).
        :param modify: called with the selected tests, to change in place.
        :param deselected: called with the tests the filter deselected, when there are any.
        """
        if not by_test:
            if self.is_empty:
                return Narrowed(list(items), tests_of, False)
            chosen_items, _ = self.select_items(instance, items)
            return Narrowed(list(chosen_items), tests_of, False)
        everything = [t for item in items for t in tests_of.get(item.key, ())]
        selected, dropped = self.select_tests(instance, everything, subtests=subtests)
        modify(selected)
        if dropped:
            deselected(list(dropped))
        # Every listed test still selected, as listed (no selectors, no plugin's changes): the
        # common case, told without computing 20,000 test ids.
        unchanged = len(selected) == len(everything) and all(
            map(operator.is_, selected, everything)
        )
        chosen: set[str] = set()
        # Tests the filter made up (a Go subtest ``TestX/sub``) belong to their path's whole item.
        extra: dict[str, list[TestCase]] = {}
        if not unchanged:
            known = {t.id for t in everything}
            for t in selected:
                test_id = t.id
                chosen.add(test_id)
                if test_id not in known:
                    extra.setdefault(t.path, []).append(t)
        kept: list[Item] = []
        kept_tests: dict[str, list[TestCase]] = {}
        narrowed = False
        for item in items:
            listed = tests_of.get(item.key, [])
            if not listed and self.is_empty:
                # Nothing to select it by (a directory item, a file the runner lists no test
                # in): without selectors it runs as given, and its runner reports what it finds.
                kept.append(item)
                kept_tests[item.key] = []
                continue
            mine = list(listed) if unchanged else [t for t in listed if t.id in chosen]
            if item.name is None:
                mine += extra.get(item.path, [])
            if not mine:
                continue
            if len(mine) != len(listed) or (item.name is None and item.path in extra):
                narrowed = True
            kept.append(item)
            kept_tests[item.key] = mine
        return Narrowed(kept, kept_tests, narrowed)

    def hits(self, selector: Selector) -> int:
        """How many tests or items *selector* matched so far, over every instance.

        :raises ValueError: when *selector* is not one of this filter's.
        """
        index = self.selectors.index(selector)
        with self._lock:
            return self._hits[index]

    def matched_any(self, selector: Selector | None = None) -> bool:
        """Whether *selector* (or, without one, any selector) has matched anything so far."""
        if selector is not None:
            return self.hits(selector) > 0
        with self._lock:
            return any(self._hits)

    def unmatched(self) -> list[Selector]:
        """The selectors that have matched nothing so far, in command-line order."""
        with self._lock:
            return [s for s, n in zip(self.selectors, self._hits, strict=True) if not n]

    def closest(self, paths: Iterable[str], n: int = 5) -> list[str]:
        """Paths (and their parent directories) closest to the unmatched selectors' patterns.

        For the "matched nothing; did you mean" message. Uses the positive selectors that
        matched nothing, or every positive selector when all matched something.

        :param paths: the candidate paths, workspace-relative (tests' or items' paths).
        :param n: at most this many suggestions, best first.
        """
        candidates: set[str] = set()
        for path in paths:
            while path and path != "." and path not in candidates:
                candidates.add(path)
                path = posixpath.dirname(path)
        unmatched = [s for s in self.unmatched() if not s.negate]
        queries = {
            _literal_part(s.path_glob)
            for s in unmatched or [s for s in self.selectors if not s.negate]
        }
        queries.discard("")
        ordered = sorted(candidates)
        # Interleave the queries' rankings so every unmatched selector gets its best guess in.
        # Nothing resembling the query still leaves the user a start: the top-level paths.
        rankings = [
            difflib.get_close_matches(query, ordered, n=n, cutoff=0.5)
            or [c for c in ordered if "/" not in c][:n]
            for query in sorted(queries)
        ]
        suggestions: dict[str, None] = {}
        for rank in range(n):
            for ranking in rankings:
                if rank < len(ranking):
                    suggestions.setdefault(ranking[rank])
        return list(suggestions)[:n]


def _literal_part(glob: str) -> str:
    """*glob* without its wildcards, for similarity scoring."""
    if glob == ANY_PATH:
        return ""
    text = re.sub(r"\[[^\]]*\]|[*?]", "", glob)
    return re.sub(r"/{2,}", "/", text).strip("/")
