"""Rules the package layout keeps: no import cycle, no oversized module, every hook documented
and exercised by a test.

The checks read the source with :mod:`ast` (nothing is imported but ``hookspecs``), so they run in
a fraction of a second and see imports inside functions as well as module-level ones.

The import graph follows three rules:

- an import under ``if TYPE_CHECKING:`` is not an edge (it never runs);
- ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``;
- ``import a.b.c`` is an edge to ``a.b.c`` only: the parent packages' ``__init__`` run too, but
  an edge to them would put every package in a cycle with its own modules.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Import name → source directory of each first-party package.
PACKAGES: dict[str, Path] = {
    "dagpar_cli": ROOT / "dagpar_cli",
    "dagpar_plugins": ROOT / "plugins",
    "dagpar_toolchains": ROOT / "toolchains",
}

#: The most lines a module may have.
MAX_LINES = 700

TESTS = ROOT / "tests"


# --------------------------------------------------------------------------------------------
# the import graph
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Edge:
    """One import of a first-party module by another."""

    source: str
    target: str
    #: ``path:line`` of the import statement.
    where: str
    #: Whether the import runs inside a function (a lazy import).
    lazy: bool


@dataclass(slots=True)
class ImportGraph:
    """First-party modules and the imports between them."""

    #: Module name → its file.
    modules: dict[str, Path] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def successors(self) -> dict[str, set[str]]:
        """Module → the modules it imports."""
        out: dict[str, set[str]] = {name: set() for name in self.modules}
        for edge in self.edges:
            out[edge.source].add(edge.target)
        return out

    def cycles(self) -> list[list[str]]:
        """Every strongly connected component with more than one module (or a self-import),
        each sorted, the largest first."""
        graph = self.successors()
        found = [
            sorted(scc)
            for scc in strongly_connected(graph)
            if len(scc) > 1 or scc[0] in graph[scc[0]]
        ]
        return sorted(found, key=lambda c: (-len(c), c))

    def describe(self, cycle: list[str]) -> str:
        """The cycle and the imports inside it, one per line, with where they are."""
        members = set(cycle)
        inside: dict[tuple[str, str], list[str]] = {}
        for edge in sorted(self.edges, key=lambda e: (e.source, e.target)):
            if edge.source in members and edge.target in members:
                kind = "lazy" if edge.lazy else "module-level"
                found = inside.setdefault((edge.source, edge.target), [])
                if f"{kind}, {edge.where}" not in found:
                    found.append(f"{kind}, {edge.where}")
        lines = [f"{len(cycle)} modules: {', '.join(cycle)}"]
        lines += [f"    {a} -> {b}  ({'; '.join(w)})" for (a, b), w in inside.items()]
        return "\n".join(lines)


def module_files(packages: Mapping[str, Path]) -> dict[str, Path]:
    """Module name → file, for every ``.py`` file under each package's directory."""
    found: dict[str, Path] = {}
    for package, directory in packages.items():
        for path in sorted(directory.rglob("*.py")):
            parts = list(path.relative_to(directory).with_suffix("").parts)
            if any(p.startswith(".") or p == "__pycache__" for p in parts):
                continue
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def build_graph(packages: Mapping[str, Path], root: Path = ROOT) -> ImportGraph:
    """Parse every module of *packages* and record its first-party imports."""
    graph = ImportGraph(modules=module_files(packages))
    for name, path in graph.modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, lazy in _imports(tree):
            for target in _targets(node, name, is_package, graph.modules):
                if target != name or isinstance(node, ast.Import):
                    where = f"{_display(path, root)}:{node.lineno}"
                    graph.edges.append(Edge(name, target, where, lazy))
    return graph


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import that can run, and whether it sits inside a function."""

    def walk(node: ast.AST, lazy: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, lazy
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                # Only the `else:` branch runs.
                for stmt in child.orelse:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), lazy)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from walk(child, True)
            else:
                yield from walk(child, lazy)

    yield from walk(tree, False)


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: Mapping[str, Path]
) -> Iterator[str]:
    """The first-party modules an import statement imports."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in known:
                yield alias.name
        return
    base = _absolute(node, module, is_package)
    if base is None:
        return
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        if candidate in known:
            yield candidate
        elif base in known:
            yield base


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    """The absolute module a ``from ... import`` names (relative imports resolved)."""
    if not node.level:
        return node.module
    package = module.split(".") if is_package else module.split(".")[:-1]
    if node.level - 1 > len(package) - 1:
        return None  # beyond the top-level package: Python refuses it too
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of *graph* (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for nxt in successors:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return build_graph(PACKAGES)


def test_no_import_cycle(graph: ImportGraph) -> None:
    """Counting imports inside functions, the first-party modules import each other one way."""
    cycles = graph.cycles()
    assert not cycles, (
        f"{len(cycles)} import cycle(s) among the first-party modules (imports under "
        "TYPE_CHECKING excluded; a lazy import inside a function still counts):\n"
        + "\n".join(graph.describe(c) for c in cycles)
    )


# --------------------------------------------------------------------------------------------
# module size
# --------------------------------------------------------------------------------------------


def test_no_module_is_over_the_line_limit() -> None:
    long = sorted(
        (count, _display(path, ROOT))
        for path in module_files(PACKAGES).values()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    )
    assert not long, f"modules over {MAX_LINES} lines (split them by concern):\n" + "\n".join(
        f"    {where}: {count} lines" for count, where in reversed(long)
    )


# --------------------------------------------------------------------------------------------
# hooks: documented and exercised
# --------------------------------------------------------------------------------------------


def hook_specs() -> dict[str, object]:
    """Every hook specification in ``dagpar_cli.hookspecs``, by name."""
    from dagpar_cli import hookspecs

    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if inspect.isfunction(fn) and any(attr.endswith("_spec") for attr in vars(fn))
    }


_PARAM = re.compile(r":param\s+(?:[\w\[\], |.]+\s+)?(\w+)\s*:\s*\S")


def undocumented(name: str, fn: object) -> list[str]:
    """What the docstring of hook *fn* fails to describe (empty when it is complete)."""
    doc = inspect.getdoc(fn) or ""
    problems = []
    summary = doc.strip().splitlines()[0] if doc.strip() else ""
    if not summary:
        problems.append(f"{name}: no docstring")
    described = set(_PARAM.findall(doc))
    for param in inspect.signature(fn).parameters:  # type: ignore[arg-type]
        if param not in described:
            problems.append(f"{name}: parameter {param!r} has no ':param {param}:' line")
    return problems


def test_every_hook_is_documented() -> None:
    specs = hook_specs()
    assert specs, "no hook specifications found in dagpar_cli.hookspecs"
    problems = [p for name, fn in sorted(specs.items()) for p in undocumented(name, fn)]
    assert not problems, "hook specifications missing documentation:\n" + "\n".join(
        f"    {p}" for p in problems
    )


@dataclass(slots=True)
class HookUse:
    """Where tests implement or call each hook."""

    implemented: dict[str, list[str]] = field(default_factory=dict)
    called: dict[str, list[str]] = field(default_factory=dict)

    def exercised(self, hook: str) -> bool:
        return hook in self.implemented or hook in self.called


def hook_uses(files: Iterable[Path], hooks: Iterable[str], root: Path = ROOT) -> HookUse:
    """Where *files* implement (``def hook``) or call (``x.hook(...)``, ``hook(...)``) a hook.

    Python source embedded in string literals (a plugin a test writes to disk) counts too; a
    mention in a comment, a docstring or any other text does not.
    """
    wanted = set(hooks)
    uses = HookUse()
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if not any(h in text for h in wanted):
            continue  # most test files name no hook at all: skip parsing them
        try:
            tree = ast.parse(text, filename=str(path))
        except SyntaxError:
            continue
        _scan(tree, wanted, uses, _display(path, root), depth=0)
    return uses


def _scan(tree: ast.AST, wanted: set[str], uses: HookUse, where: str, depth: int) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in wanted:
            uses.implemented.setdefault(node.name, []).append(f"{where}:{node.lineno}")
        elif isinstance(node, ast.Attribute) and node.attr in wanted:
            # pm.hook.dagpar_x(...), pm.hook.dagpar_x.call_historic(...), plugin.dagpar_x(...)
            uses.called.setdefault(node.attr, []).append(f"{where}:{node.lineno}")
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in wanted:
                uses.called.setdefault(node.func.id, []).append(f"{where}:{node.lineno}")
            for kw in node.keywords:
                # @hookimpl(specname="dagpar_...") implements the named hook.
                if (
                    kw.arg == "specname"
                    and isinstance(kw.value, ast.Constant)
                    and kw.value.value in wanted
                ):
                    uses.implemented.setdefault(kw.value.value, []).append(f"{where}:{node.lineno}")
        elif (
            depth == 0
            and isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "dagpar_" in node.value
            and any(h in node.value for h in wanted)
        ):
            # A plugin or toolchain the test writes out as text.
            try:
                embedded = ast.parse(inspect.cleandoc(node.value))
            except SyntaxError:
                continue
            _scan(embedded, wanted, uses, f"{where}:{node.lineno} (embedded)", depth + 1)


def suite_files() -> list[Path]:
    """The test suite's Python files, test data plugins included."""
    return [
        p
        for p in sorted(TESTS.rglob("*.py"))
        if "node_modules" not in p.parts and p.resolve() != Path(__file__).resolve()
    ]


def test_every_hook_is_exercised_by_a_test() -> None:
    specs = hook_specs()
    uses = hook_uses(suite_files(), specs)
    missing = sorted(h for h in specs if not uses.exercised(h))
    assert not missing, (
        "hooks no test implements or calls (add a test plugin implementing the hook, or call "
        "it through a plugin manager in a test):\n" + "\n".join(f"    {h}" for h in missing)
    )


# --------------------------------------------------------------------------------------------
# the checks themselves, on small made-up packages
# --------------------------------------------------------------------------------------------


def _package(root: Path, files: Mapping[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")
    return {"pkg": root / "pkg"}


def test_a_lazy_import_closes_a_cycle(tmp_path: Path) -> None:
    packages = _package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b",
            "pkg/b.py": "def f():\n    from pkg.a import thing",
        },
    )
    graph = build_graph(packages, tmp_path)
    assert graph.cycles() == [["pkg.a", "pkg.b"]]
    assert "    pkg.b -> pkg.a  (lazy, pkg/b.py:2)" in graph.describe(graph.cycles()[0])


def test_type_checking_imports_are_not_edges_but_their_else_branch_is(tmp_path: Path) -> None:
    packages = _package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "import pkg.b",
            "pkg/b.py": """
                import typing
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from pkg.a import A
                if typing.TYPE_CHECKING:
                    from . import a
                """,
            "pkg/c.py": "import pkg.d",
            "pkg/d.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    pass
                else:
                    from .c import C
                """,
        },
    )
    assert build_graph(packages, tmp_path).cycles() == [["pkg.c", "pkg.d"]]


def test_relative_and_from_package_imports_resolve_to_modules(tmp_path: Path) -> None:
    packages = _package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub import helper\nVERSION = '1'",
            "pkg/sub/__init__.py": "",
            "pkg/sub/helper.py": "from .. import VERSION\nfrom ..sub import other",
            "pkg/sub/other.py": "import pkg.sub",
        },
    )
    graph = build_graph(packages, tmp_path)
    edges = {(e.source, e.target) for e in graph.edges}
    assert edges == {
        ("pkg", "pkg.sub.helper"),
        ("pkg.sub.helper", "pkg"),  # VERSION is not a module: the edge goes to the package
        ("pkg.sub.helper", "pkg.sub.other"),
        ("pkg.sub.other", "pkg.sub"),
    }
    # `import pkg.sub.helper` style parent packages are not edges: sub's __init__ imports nothing.
    assert graph.cycles() == [["pkg", "pkg.sub.helper"]]


def test_hook_uses_count_code_not_mentions(tmp_path: Path) -> None:
    test_file = tmp_path / "test_x.py"
    test_file.write_text(
        inspect.cleandoc(
            '''
            """dagpar_mentioned is only mentioned here."""
            PLUGIN = """
            from dagpar_cli import hookimpl

            @hookimpl
            def dagpar_in_text(session):
                pass
            """

            def dagpar_defined(check): ...

            def test_it(pm):
                # dagpar_in_comment
                pm.hook.dagpar_called(check="x")
                pm.hook.dagpar_historic.call_historic(kwargs={})
                run("dagpar_in_a_plain_string")

            class P:
                @hookimpl(specname="dagpar_by_specname")
                def anything(self): ...
            '''
        ),
        encoding="utf-8",
    )
    hooks = [
        "dagpar_mentioned",
        "dagpar_in_text",
        "dagpar_defined",
        "dagpar_in_comment",
        "dagpar_called",
        "dagpar_historic",
        "dagpar_in_a_plain_string",
        "dagpar_by_specname",
    ]
    uses = hook_uses([test_file], hooks, tmp_path)
    assert sorted(h for h in hooks if uses.exercised(h)) == [
        "dagpar_by_specname",
        "dagpar_called",
        "dagpar_defined",
        "dagpar_historic",
        "dagpar_in_text",
    ]


def test_undocumented_parameters_are_named() -> None:
    def dagpar_example(check: str, tests: list[str]) -> None:
        """Do something.

        :param check: the check.
        """

    assert undocumented("dagpar_example", dagpar_example) == [
        "dagpar_example: parameter 'tests' has no ':param tests:' line"
    ]
