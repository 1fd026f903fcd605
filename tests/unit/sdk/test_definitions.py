"""Toolchain definitions: both pragma forms give one model; mistakes are caught at discovery."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from dagpar_cli.testing import DagparResult

CONFIG = """
toolchains:
  lint: {use: ci/lint.py}
"""


def test_comment_pragmas_and_decorators_give_the_same_model(
    make_workspace: Callable[[Mapping[str, str]], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagpar_cli.sdk.types import typedef_of
    from dagpar_cli.testing import write_tree

    ws = make_workspace({})
    write_tree(
        ws,
        {
            "comments.py": """
                from __future__ import annotations
                from dagpar_cli import Directory, field, object_type

                @object_type
                class Files:
                    workspace: Directory
                    files: list[str] = field()  # +parallel

                    # +parallel
                    def test(self) -> None:
                        pass

                    # +check
                    def all(self) -> None:
                        pass
            """,
            "decorators.py": """
                from __future__ import annotations
                from dagpar_cli import Directory, check, field, object_type, parallel

                @object_type
                class Files:
                    workspace: Directory
                    files: list[str] = field(parallel=True)

                    @parallel
                    def test(self) -> None:
                        pass

                    @check
                    def all(self) -> None:
                        pass
            """,
        },
    )
    import importlib.util

    models = []
    for name in ("comments", "decorators"):
        spec = importlib.util.spec_from_file_location(f"dagpar_test_{name}", ws / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)
        spec.loader.exec_module(module)
        td = typedef_of(module.Files)
        assert td is not None
        models.append(
            (
                [(f.name, f.parallel, f.nested) for f in td.fields],
                [(f.name, f.parallel, f.check) for f in td.functions],
                td.errors,
            )
        )
    assert models[0] == models[1]
    assert models[0][0] == [("workspace", False, False), ("files", True, False)]
    assert models[0][1] == [("test", True, False), ("all", False, True)]
    assert models[0][2] == []


def test_pragmas_may_carry_prose_after_them(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(
        {
            "dagpar.yaml": CONFIG,
            "ci/lint.py": """
                from __future__ import annotations
                from dagpar_cli import Directory, field, object_type

                @object_type
                class Files:
                    workspace: Directory
                    files: list[str] = field()          # +parallel      (or: field(parallel=True))

                    # +parallel                          (or: @parallel)
                    def run(self) -> None:
                        pass

                @object_type
                class Lint:
                    source: Directory

                    # +TODO an ordinary comment that happens to start with a plus
                    # +check                             (or: @check)
                    def all(self) -> None:
                        Files(workspace=self.source, files=["a", "b"]).run()
            """,
        }
    )
    result = dagpar_run("check", "-C", ws, "-j", "2", "--dry-run", "--json")
    assert result.exit_code == 0, result
    (check,) = result.json()["checks"]
    assert check["name"] == "lint:all" and len(check["slices"]) == 2


def test_nested_selector_field_is_supported(
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    ws = make_workspace(
        {
            "dagpar.yaml": CONFIG,
            "ci/lint.py": """
                from __future__ import annotations
                from dagpar_cli import Directory, check, field, object_type

                @object_type
                class Cases:
                    workspace: Directory
                    cases: list[list[str]] = field()  # +parallel

                    # +parallel
                    def run(self) -> None:
                        pass

                @object_type
                class Lint:
                    source: Directory

                    @check
                    def all(self) -> None:
                        Cases(workspace=self.source, cases=[["a.txt"], ["b.txt", "x"]]).run()
            """,
        }
    )
    result = dagpar_run("check", "-C", ws, "--dry-run", "--json")
    assert result.exit_code == 0, result
    items = [i for s in result.json()["checks"][0]["slices"] for i in s["items"]]
    assert sorted(map(str, items)) == sorted(map(str, ["a.txt", ["b.txt", "x"]]))


BAD_DEFINITIONS = {
    "parallel function without field": (
        """
        @object_type
        class Lint:
            source: Directory

            # +parallel
            def test(self) -> None:
                pass
        """,
        "def test",
        "needs a +parallel field",
    ),
    "parallel on a non-list field": (
        """
        @object_type
        class Lint:
            source: Directory
            count: int = field(parallel=True)
        """,
        "count: int",
        "must be list[str] or list[list[str]]",
    ),
    "two parallel fields on a runner's type": (
        """
        @object_type(runner="pytest")
        class Lint:
            source: Directory
            a: list[str] = field()  # +parallel
            b: list[str] = field()  # +parallel
        """,
        "b: list",
        "several +parallel fields (a, b) and runner='pytest'",
    ),
    "parallel function returning a string": (
        """
        @object_type
        class Lint:
            source: Directory
            files: list[str] = field()  # +parallel

            @parallel
            def test(self) -> str:
                return ""
        """,
        "def test",
        "may return only None or Directory",
    ),
    "check with required arguments": (
        """
        @object_type
        class Lint:
            source: Directory

            # +check
            def test(self, level: int) -> None:
                pass
        """,
        "def test",
        "has required arguments (level)",
    ),
    "misspelt pragma": (
        """
        @object_type
        class Lint:
            source: Directory
            files: list[str] = field()  # +paralel
        """,
        "+paralel",
        "did you mean '+parallel'",
    ),
    "dangling pragma": (
        """
        @object_type
        class Lint:
            source: Directory
            # +check

            x = 1
        """,
        "# +check",
        "not attached",
    ),
    "syntax error": (
        """
        @object_type
        class Lint:
            source: Directory
            def broken(self) -> None
                pass
        """,
        "def broken",
        "syntax error",
    ),
    "import error": (
        """
        import dagpar_no_such_module
        """,
        "import dagpar_no_such_module",
        "No module named 'dagpar_no_such_module'",
    ),
    "no main class": (
        """
        @object_type
        class Linter:
            source: Directory
        """,
        None,
        "has no main class Lint",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DEFINITIONS))
def test_definition_errors_name_file_and_line_and_exit_2(
    case: str,
    make_workspace: Callable[[Mapping[str, str]], Path],
    dagpar_run: Callable[..., DagparResult],
) -> None:
    body, marker, message = BAD_DEFINITIONS[case]
    header = (
        "from __future__ import annotations\n"
        "from dagpar_cli import Directory, check, field, object_type, parallel\n"
    )
    import textwrap

    source = header + textwrap.dedent(body)
    ws = make_workspace({"dagpar.yaml": CONFIG, "ci/lint.py": source})
    line = None
    if marker is not None:
        line = next(i for i, text in enumerate(source.splitlines(), 1) if marker in text)
    for command in (["check"], ["functions"], ["check", "--dry-run"]):
        result = dagpar_run(*command, "-C", ws)
        assert result.exit_code == 2, result
        err = result.stderr.strip()
        assert len(err.splitlines()) == 1, err
        assert "Traceback" not in err
        where = "ci/lint.py" + (f":{line}" if line else "")
        assert where in err, err
        assert message in err, err
