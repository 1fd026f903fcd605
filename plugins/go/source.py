"""Find the top-level tests of Go test files without compiling them.

``go test -list`` needs a test binary, so it says nothing about a package that does not build;
dagpar must still know that package's tests to report the build failure against them. This
module reads ``*_test.go`` files with a small tokenizer (comments, strings and raw strings are
skipped, braces are balanced) and applies the rules ``go test`` itself uses (``cmd/go``'s test
loader and ``go/doc``'s example finder):

- ``TestXxx``, where the rune after ``Test`` is not lower case (``Test`` alone counts); a
  ``TestMain`` that takes ``*testing.M`` is the harness, not a test;
- ``FuzzXxx`` targets: plain ``go test`` runs their seed corpus as subtests, so they are tests;
- ``ExampleXxx`` without parameters whose body ends in an ``// Output:`` (or
  ``// Unordered output:``) comment; examples without one are compiled but never run;
- functions with a receiver are never tests; benchmarks do not run without ``-bench``.
"""

from __future__ import annotations

import bisect
import os
import platform
import posixpath
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dagpar_cli import RunnerSpec

__all__ = [
    "TestFunctions",
    "builds_here",
    "host_build_tags",
    "import_path_of",
    "is_test_name",
    "module_of",
    "package_scanner",
    "path_of",
    "scan_test_files",
    "scan_test_source",
]

_TOKEN = re.compile(
    r"""
    (?P<line_comment>//[^\n]*)
  | (?P<block_comment>/\*.*?(?:\*/|\Z))
  | (?P<raw>`[^`]*(?:`|\Z))
  | (?P<string>"(?:[^"\\\n]|\\.)*"?)
  | (?P<rune>'(?:[^'\\\n]|\\.)*'?)
  | (?P<ident>[^\W\d]\w*)
  | (?P<number>\d\w*)
  | (?P<punct>[{}()\[\]*.,;])
    """,
    re.VERBOSE | re.DOTALL,
)

# go/doc: the last comment group of an example's body must start like this.
_OUTPUT_PREFIX = re.compile(r"^\s*(unordered )?output:", re.IGNORECASE)

_OPEN = {"{": "}", "(": ")", "[": "]"}


@dataclass(frozen=True, slots=True)
class TestFunctions:
    """The runnable top-level tests of some test files, each list in source order.

    ``go test`` runs tests first, then fuzz targets, then examples; :attr:`names` keeps that order.
    """

    __test__ = False  # not a pytest test class

    #: ``TestXxx`` functions.
    tests: tuple[str, ...] = ()
    #: ``FuzzXxx`` targets.
    fuzz: tuple[str, ...] = ()
    #: ``ExampleXxx`` functions that have an output comment.
    examples: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        """Every runnable test name in the order ``go test`` runs them, without duplicates."""
        return list(dict.fromkeys((*self.tests, *self.fuzz, *self.examples)))


def is_test_name(name: str, prefix: str) -> bool:
    """Whether *name* is a *prefix* function name by ``go test``'s rule.

    :param name: a function name.
    :param prefix: ``Test``, ``Fuzz``, ``Example`` or ``Benchmark``.
    """
    if not name.startswith(prefix):
        return False
    if len(name) == len(prefix):
        return True
    return unicodedata.category(name[len(prefix)]) != "Ll"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    line: int
    end_line: int


def _tokens(source: str) -> Iterator[_Token]:
    line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
    for match in _TOKEN.finditer(source):
        kind = match.lastgroup or ""
        start = bisect.bisect_right(line_starts, match.start())
        end = start + match.group().count("\n")
        yield _Token(kind, match.group(), start, end)


def _comment_text(token: _Token) -> str:
    if token.kind == "line_comment":
        text = token.text[2:]
        return text[1:] if text.startswith(" ") else text
    body = token.text[2:]
    return body[:-2] if body.endswith("*/") else body


@dataclass(slots=True)
class _Func:
    name: str
    params: list[str]
    comment_groups: list[list[str]]


def _top_level_funcs(source: str) -> Iterator[_Func]:
    """Yield every top-level function declaration without a receiver, with its body's comments."""
    tokens = [t for t in _tokens(source)]
    i = 0
    depth = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind in ("line_comment", "block_comment"):
            i += 1
            continue
        if token.kind == "punct" and token.text in _OPEN:
            depth += 1
        elif token.kind == "punct" and token.text in ")}]":
            depth = max(depth - 1, 0)
        elif depth == 0 and token.kind == "ident" and token.text == "func":
            func, i = _read_func(tokens, i + 1)
            if func is not None:
                yield func
            continue
        i += 1


def _skip_comments(tokens: list[_Token], i: int) -> int:
    while i < len(tokens) and tokens[i].kind in ("line_comment", "block_comment"):
        i += 1
    return i


def _read_func(tokens: list[_Token], i: int) -> tuple[_Func | None, int]:
    """Read a declaration after ``func``; return it (None for methods) and the next index."""
    i = _skip_comments(tokens, i)
    if i >= len(tokens) or tokens[i].kind != "ident":
        return None, i  # a method (receiver first) or a function literal: never a test
    name = tokens[i].text
    i = _skip_comments(tokens, i + 1)
    if i < len(tokens) and tokens[i].text == "[":  # type parameters
        _, i = _balanced(tokens, i)
        i = _skip_comments(tokens, i)
    if i >= len(tokens) or tokens[i].text != "(":
        return None, i
    params, i = _balanced(tokens, i)
    # Skip the results up to the body; a declaration without a body ends at the next `func`.
    depth = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "punct" and token.text == "{" and depth == 0:
            break
        if token.kind == "ident" and token.text == "func" and depth == 0:
            return _Func(name, params, []), i
        if token.kind == "punct" and token.text in "([":
            depth += 1
        elif token.kind == "punct" and token.text in ")]":
            depth -= 1
        i += 1
    groups, i = _body_comment_groups(tokens, i)
    return _Func(name, params, groups), i


def _balanced(tokens: list[_Token], i: int) -> tuple[list[str], int]:
    """The texts of the non-comment tokens inside the bracket at *i*, and the index after it."""
    depth = 0
    inner: list[str] = []
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token.kind in ("line_comment", "block_comment"):
            continue
        if token.kind == "punct" and token.text in _OPEN:
            depth += 1
            if depth == 1:
                continue
        elif token.kind == "punct" and token.text in ")}]":
            depth -= 1
            if depth == 0:
                return inner, i
        inner.append(token.text)
    return inner, i


def _body_comment_groups(tokens: list[_Token], i: int) -> tuple[list[list[str]], int]:
    """Read the body starting at the ``{`` at *i*; group its comments the way go/parser does.

    Comments on consecutive lines form one group; any code token ends a group, and a comment
    on the same line as code only groups with comments on that same line.
    """
    groups: list[list[str]] = []
    depth = 0
    previous: _Token | None = None
    trailing = False
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token.kind in ("line_comment", "block_comment"):
            joins = previous is not None and previous.kind in ("line_comment", "block_comment")
            if joins and previous is not None:
                limit = previous.end_line if trailing else previous.end_line + 1
                joins = token.line <= limit
            if joins:
                groups[-1].append(_comment_text(token))
            else:
                trailing = previous is not None and previous.end_line == token.line
                groups.append([_comment_text(token)])
            previous = token
            continue
        previous = token
        if token.kind == "punct" and token.text in _OPEN:
            depth += 1
        elif token.kind == "punct" and token.text in ")}]":
            depth -= 1
            if depth == 0:
                break
    return groups, i


def _takes_pointer_to(params: list[str], type_name: str) -> bool:
    # cmd/go cannot resolve imports either: it accepts `*T` or `*anything.T`.
    return len(params) >= 2 and "*" in params and params[-1] == type_name and "," not in params


def scan_test_source(source: str) -> TestFunctions:
    """The runnable top-level tests of one ``*_test.go`` file's text.

    :param source: the file's contents.
    """
    tests: list[str] = []
    fuzz: list[str] = []
    examples: list[str] = []
    for func in _top_level_funcs(source):
        name = func.name
        if is_test_name(name, "Test"):
            if name == "TestMain" and not _takes_pointer_to(func.params, "T"):
                continue  # the harness: func TestMain(m *testing.M)
            tests.append(name)
        elif is_test_name(name, "Fuzz"):
            fuzz.append(name)
        elif (
            is_test_name(name, "Example")
            and not func.params
            and func.comment_groups
            and _OUTPUT_PREFIX.match("\n".join(func.comment_groups[-1]))
        ):
            examples.append(name)
    # go/doc sorts examples by name within a file.
    return TestFunctions(tuple(tests), tuple(fuzz), tuple(sorted(examples)))


def scan_test_files(paths: Iterable[Path]) -> TestFunctions:
    """The runnable tests of several test files of one package, in ``go test``'s order.

    Files that cannot be read are skipped: the build reports them.

    :param paths: the package's test files, internal ones first (as ``go list`` names them).
    """
    tests: list[str] = []
    fuzz: list[str] = []
    examples: list[str] = []
    for path in paths:
        try:
            source = path.read_text(encoding="utf-8", errors="replace")
        except (OSError, ValueError):  # ValueError: a NUL in a name go listed
            continue
        found = scan_test_source(source)
        tests.extend(found.tests)
        fuzz.extend(found.fuzz)
        examples.extend(found.examples)
    return TestFunctions(tuple(tests), tuple(fuzz), tuple(examples))


# ------------------------------------------------------------------------------------------
# build constraints, for listing a package's test files without go list
# ------------------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# go/build's known GOOS and GOARCH values: file name suffixes only count when they are known.
_KNOWN_OS = _words(
    "aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd openbsd plan9 "
    "solaris wasip1 windows zos"
)
_KNOWN_ARCH = _words(
    "386 amd64 amd64p32 arm armbe arm64 arm64be loong64 mips mipsle mips64 mips64le mips64p32 "
    "mips64p32le ppc ppc64 ppc64le riscv riscv64 s390 s390x sparc sparc64 wasm"
)
_UNIX = _words("aix android darwin dragonfly freebsd hurd illumos ios linux netbsd openbsd solaris")
_MACHINE_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_GO_BUILD = re.compile(r"^//go:build\s+(.*)$")
_PLUS_BUILD = re.compile(r"^//\s*\+build\s+(.*)$")
_CONSTRAINT_TOKEN = re.compile(r"\s*(\(|\)|!|&&|\|\||[\w.]+)")


def host_build_tags() -> frozenset[str]:
    """The build tags ``go test`` satisfies here: GOOS, GOARCH, ``unix``, ``gc``, ``cgo``.

    ``GOOS``/``GOARCH`` from the environment win over the host's own platform. Release tags
    (``go1.N``) are handled by :func:`builds_here` itself.
    """
    goos = os.environ.get("GOOS") or {"win32": "windows", "darwin": "darwin"}.get(
        sys.platform, "linux" if sys.platform.startswith("linux") else sys.platform
    )
    goarch = os.environ.get("GOARCH") or _MACHINE_ARCH.get(platform.machine().lower(), "")
    tags = {goos, goarch, "gc", "cgo"}
    if goos in _UNIX:
        tags.add("unix")
    if goos == "android":
        tags.add("linux")
    if goos in ("illumos",):
        tags.add("solaris")
    if goos == "ios":
        tags.add("darwin")
    return frozenset(t for t in tags if t)


def _tag_true(tag: str, tags: frozenset[str]) -> bool:
    # Any go1.N release tag: the go that runs the tests is assumed new enough for its own files.
    return tag in tags or re.fullmatch(r"go1(\.\d+)?", tag) is not None


def _evaluate(expression: str, tags: frozenset[str]) -> bool:
    """Evaluate a ``//go:build`` expression; malformed ones count as true (go reports them)."""
    tokens = _CONSTRAINT_TOKEN.findall(expression)
    position = 0

    def parse_or() -> bool:
        nonlocal position
        value = parse_and()
        while position < len(tokens) and tokens[position] == "||":
            position += 1
            value = parse_and() or value
        return value

    def parse_and() -> bool:
        nonlocal position
        value = parse_not()
        while position < len(tokens) and tokens[position] == "&&":
            position += 1
            value = parse_not() and value
        return value

    def parse_not() -> bool:
        nonlocal position
        if position >= len(tokens):
            raise ValueError("unexpected end")
        token = tokens[position]
        position += 1
        if token == "!":
            return not parse_not()
        if token == "(":
            value = parse_or()
            if position >= len(tokens) or tokens[position] != ")":
                raise ValueError("missing )")
            position += 1
            return value
        if token in (")", "&&", "||"):
            raise ValueError(f"unexpected {token}")
        return _tag_true(token, tags)

    try:
        value = parse_or()
    except (ValueError, RecursionError):  # RecursionError: thousands of "(" or "!"
        return True
    return value if position == len(tokens) else True


def _plus_build(line: str, tags: frozenset[str]) -> bool:
    # Legacy form: space-separated options are OR'ed, comma-separated terms AND'ed.
    for option in line.split():
        terms = option.split(",")
        if all(
            not _tag_true(t[1:], tags) if t.startswith("!") else _tag_true(t, tags) for t in terms
        ):
            return True
    return False


def _file_name_allows(name: str, tags: frozenset[str]) -> bool:
    stem = name.split(".", 1)[0]
    if "_" not in stem:
        return True
    parts = stem[stem.index("_") :].split("_")
    if parts and parts[-1] == "test":
        parts = parts[:-1]
    if len(parts) >= 2 and parts[-2] in _KNOWN_OS and parts[-1] in _KNOWN_ARCH:
        return parts[-2] in tags and parts[-1] in tags
    if parts and (parts[-1] in _KNOWN_OS or parts[-1] in _KNOWN_ARCH):
        return parts[-1] in tags
    return True


def builds_here(path: Path, source: str, tags: frozenset[str] | None = None) -> bool:
    """Whether ``go test`` would compile the file *path* with *source* for these *tags*.

    Looks at the ``_GOOS``/``_GOARCH`` file name suffixes and the ``//go:build`` line (or the
    legacy ``// +build`` lines) before the package clause.

    :param path: the file (only its name is used).
    :param source: its contents.
    :param tags: the satisfied tags; :func:`host_build_tags` by default.
    """
    tags = host_build_tags() if tags is None else tags
    if not _file_name_allows(path.name, tags):
        return False
    plus_lines: list[str] = []
    for raw in source.splitlines():
        line = raw.strip()
        if line.startswith("package ") or line == "package":
            break
        go_build = _GO_BUILD.match(line)
        if go_build:
            return _evaluate(go_build.group(1), tags)
        plus = _PLUS_BUILD.match(line)
        if plus:
            plus_lines.append(plus.group(1))
    return all(_plus_build(line, tags) for line in plus_lines)


# ------------------------------------------------------------------------------------------
# the module: import paths of package directories
# ------------------------------------------------------------------------------------------


def module_of(spec: RunnerSpec) -> tuple[str, str] | None:
    """The module path of the ``go.mod`` at or above the source, and the source's place in it."""
    directory = spec.source_dir.resolve()
    for candidate in (directory, *directory.parents):
        go_mod = candidate / "go.mod"
        if go_mod.is_file():
            try:
                text = go_mod.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
            match = re.search(r'^\s*module\s+"?([^\s"]+)"?', text, re.MULTILINE)
            if match is None:
                return None
            return match.group(1), directory.relative_to(candidate).as_posix()
    return None


def import_path_of(module: tuple[str, str] | None, path: str) -> str:
    """The import path of package directory *path* in *module* (see :func:`module_of`).

    ``""`` when there is no go.mod to derive it from.
    """
    if module is None:
        return ""
    module_path, inside = module
    rel = posixpath.normpath(posixpath.join(inside, path))
    return module_path if rel == "." else f"{module_path}/{rel}"


def path_of(module: tuple[str, str] | None, import_path: str) -> str:
    """The package directory of *import_path* in *module*; the import path itself outside it."""
    if module is None:
        return import_path
    module_path, inside = module
    base = posixpath.normpath(posixpath.join(module_path, inside))
    if import_path == base:
        return "."
    if import_path.startswith(base + "/"):
        return import_path[len(base) + 1 :]
    return import_path


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return ""


def package_scanner(spec: RunnerSpec, path: str) -> Callable[[], list[str]]:
    """Lists a package's tests from its sources, for when its test binary never listed them."""

    def scan() -> list[str]:
        internal: list[Path] = []
        external: list[Path] = []
        try:
            files = sorted((spec.source_dir / path).glob("*_test.go"))
        except OSError:
            return []
        for file in files:
            if file.name.startswith((".", "_")):
                continue  # go ignores these
            text = _read(file)
            if not builds_here(file, text):
                continue
            package = re.search(r"^\s*package\s+(\w+)", text, re.MULTILINE)
            external_test = bool(package and package.group(1).endswith("_test"))
            (external if external_test else internal).append(file)
        # go list's order: internal test files first, then the external test package's.
        return scan_test_files([*internal, *external]).names

    return scan
