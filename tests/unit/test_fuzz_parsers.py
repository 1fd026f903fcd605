"""Fuzzing every parser that reads what a runner, a CI node or a user's file wrote.

Whatever the input (garbage bytes, invalid UTF-8, NULs, cut-short documents, near-valid reports
with wrong types in every field), each parser answers with results or a
:class:`~dagpar_cli.errors.DagparError`; any other exception would reach the user as an internal
error with a traceback. Results must also be usable downstream: every duration is a finite,
non-negative number of seconds (the planner and the timing store add and compare them).

Two kinds of input per parser: raw garbage, and structured near-valid documents built from the
format's own vocabulary, which get past the first checks and reach the deeper code.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import pytest
from dagpar_plugins.go import GoRunner
from dagpar_plugins.go.source import builds_here, scan_test_source
from dagpar_plugins.jest import JestRunner
from dagpar_plugins.pytest import PytestRunner
from dagpar_plugins.pytest.collect import parse_collect_output
from dagpar_plugins.pytest.paths import RootdirMap
from dagpar_plugins.pytest.pytest_select import (
    NAME_PROPERTY,
    PATH_PROPERTY,
    RUN_INFO_FILE,
    SELECTION_FILE,
)
from dagpar_plugins.pytest.report import REPORT_FILE, parse_report
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dagpar_cli import DagparError, Outcome, RunnerSpec, Status, TestCase, TestResult
from dagpar_cli.reporting.junit import merge_junit
from dagpar_cli.testing import FakeRunnerHost
from dagpar_cli.timings import EXPORT_FORMAT, ITEM, SCHEMA_VERSION, STARTUP, TEST, TimingStore

PYTEST_RUNNER = PytestRunner()
JEST_RUNNER = JestRunner()
GO_RUNNER = GoRunner()

FUZZ = settings(
    max_examples=1000,
    deadline=None,
    database=None,  # nothing written into the checkout
    derandomize=True,  # the same examples on every run: a CI failure reproduces locally
    suppress_health_check=[HealthCheck.too_slow],
)

# ---------------------------------------------------------------------------------------------
# the workspace every parser looks at (source files exist, so path mapping takes its deep paths)
# ---------------------------------------------------------------------------------------------

GO_SOURCE = """package m

import "testing"

func TestA(t *testing.T) { t.Run("sub one", func(t *testing.T) {}) }

func TestMain(m *testing.M) { m.Run() }

func ExampleB() {
	// Output: b
}
"""

WORKSPACE_FILES = {
    "go.mod": "module example.com/m\n\ngo 1.19\n",
    "a_test.go": GO_SOURCE,
    "sub/b_test.go": GO_SOURCE.replace("package m", "package sub_test"),
    "tests/test_a.py": "def test_x(): pass\n",
    "pkg/test_b.py": "class TestK:\n    def test_y(self): pass\n",
    "web/a.test.js": "test('a', () => {});\n",
    "web/b.test.js": "test('b', () => {});\n",
}


@pytest.fixture(scope="module")
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, text in WORKSPACE_FILES.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text, encoding="utf-8")
        yield root


def write(directory: Path, files: Mapping[str, bytes | None]) -> None:
    for name, data in files.items():
        if data is not None:
            (directory / name).write_bytes(data)


def handled(call: Callable[[], Any]) -> Any:
    """*call*'s value, or the handled error it raised (which must say something)."""
    try:
        return call()
    except DagparError as exc:
        assert str(exc).strip(), "a handled error must say what is wrong"
        return exc


def check_results(results: object) -> None:
    """What the engine, the reports and the timing store rely on in a parser's results."""
    assert isinstance(results, list)
    for result in results:
        assert isinstance(result, TestResult)
        assert isinstance(result.path, str) and isinstance(result.name, str)
        assert isinstance(result.status, Status)
        assert isinstance(result.message, str) and isinstance(result.details, str)
        assert isinstance(result.seconds, float | int)
        assert math.isfinite(result.seconds) and result.seconds >= 0, result


def check_tests(tests: object) -> None:
    assert isinstance(tests, list)
    for test in tests:
        assert isinstance(test, TestCase)
        assert isinstance(test.path, str) and isinstance(test.name, str)


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------

#: Any code point, lone surrogates and control characters included.
ANY_TEXT = st.text(st.characters(), max_size=12)
#: Text that can stand in an XML document (no control characters, no surrogates).
XML_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")) | st.sampled_from("\t\n "),
    max_size=12,
)
#: Raw bytes: invalid UTF-8, NULs, anything.
RAW_BYTES = st.binary(max_size=200)
#: Numbers as a report may spell them, and as it should not.
NUMBER_TEXT = st.sampled_from(
    [
        "0",
        "0.25",
        "-1",
        "1e309",
        "-1e309",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "1,5",
        "1,000.5",
        "0x10",
        "",
        " ",
        "1_000",
        "٣",
        "1e-400",
        "9" * 5000,
        "1.7976931348623157e+308",
        "5e-324",
        "-0.0",
    ]
)
#: Any JSON value, floats that JSON cannot spell (NaN, Infinity) included.
#: Nesting is spelled out to a fixed depth: Hypothesis' recursive() check of the extend function
#: is itself flaky under load, and two levels reach every branch the parsers have.
_JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT
_JSON_SHALLOW = (
    _JSON_LEAF
    | st.lists(_JSON_LEAF, max_size=2)
    | st.dictionaries(ANY_TEXT, _JSON_LEAF, max_size=2)
)
JSON_ANY = (
    _JSON_SHALLOW
    | st.lists(_JSON_SHALLOW, max_size=2)
    | st.dictionaries(ANY_TEXT, _JSON_SHALLOW, max_size=2)
)
#: A JSON value of the wrong type for almost any field, in one cheap draw (generating nested
#: values for every field would cost more time than the parsers take).
WRONG: st.SearchStrategy[Any] = st.sampled_from(
    [None, True, False, 0, -1, 1.5, math.nan, math.inf, 10**400, "", "x", "\x00", "\ud800",
     [], [None], ["x", 1], {}, {"a": None}, {"name": []}]
)  # fmt: skip
JSON_NUMBER = st.integers() | st.floats() | st.sampled_from([0, 1, -1, 2**63, 1e308, 10**400])


def field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value: mostly a good one, sometimes null or a value of the wrong type."""
    return st.one_of(good, good, WRONG)


def obj(fields: Mapping[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object whose every key may be missing, null or of a wrong type."""
    return st.fixed_dictionaries({}, optional={k: field(v) for k, v in fields.items()})


_MISSING = object()


def near(
    bases: Sequence[Mapping[str, Any]], fields: Mapping[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """A realistic object with up to three keys changed: removed, null, wrong, or another value.

    Cheaper to draw than :func:`obj` (a few choices instead of several per key), and it keeps
    most of the object valid, so the parser goes past its first checks.
    """

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        result = dict(draw(st.sampled_from(bases)))
        for key in draw(st.lists(st.sampled_from(sorted(fields)), max_size=3, unique=True)):
            value = draw(field(fields[key]) | st.just(_MISSING))
            if value is _MISSING:
                result.pop(key, None)
            else:
                result[key] = value
        return result

    return build()


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def mutated(data: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """*data* as written, cut short (a crash mid-write), or with garbage after it."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        raw = draw(data)
        how = draw(st.sampled_from(["keep", "keep", "cut", "append"]))
        if how == "cut":
            return raw[: draw(st.integers(0, len(raw)))]
        if how == "append":
            return raw + draw(RAW_BYTES)
        return raw

    return build()


#: Stands for the workspace's absolute path in generated reports (replaced in the test), so
#: that strategies and explicit examples need no fixture.
WS = "/@ws@"


def in_workspace(text: str, workspace: Path) -> str:
    return text.replace(WS, str(workspace))


def deeply_nested(depth: int = 3_000) -> str:
    return "[" * depth + "]" * depth


#: JSON nested deeper than Python's recursion limit.
DEEP = deeply_nested()
#: A file name part longer than any file system allows (255 bytes).
LONG_PART = "x" * 300

# XML ------------------------------------------------------------------------------------------

ENCODINGS = [
    "utf-8",
    "UTF-8",
    "latin-1",
    "ascii",
    "cp1252",
    "utf-16",
    "utf-32",
    "utf-7",
    "x-bogus",
    "rot13",
    "idna",
    "punycode",
    "",
]
XML_TAG = st.sampled_from(
    [
        "testsuites",
        "testsuite",
        "testcase",
        "failure",
        "error",
        "skipped",
        "system-out",
        "system-err",
        "properties",
        "property",
        "rerunFailure",
        "x",
        "a.b-c",
        "testcases",
    ]
)
XML_ATTR_NAME = st.sampled_from(
    [
        "name",
        "classname",
        "file",
        "filepath",
        "time",
        "message",
        "type",
        "value",
        "tests",
        "failures",
        "errors",
        "skipped",
        "timestamp",
    ]
)
#: Attribute values: mostly picked from what reports hold (one cheap draw), sometimes any text.
XML_VALUES = [
    "tests/test_a.py",
    "pkg/test_b.py",
    "tests.test_a",
    "pkg.test_b.TestK",
    "TestK",
    "test_x",
    "test_x[a b-1]",
    "example.com/m/sub",
    "/abs/tests/test_a.py",
    "../outside.py",
    "a\\b.py",
    "collection failure",
    "pytest.xfail",
    "undefined",
    "2024-01-02T03:04:05",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "2024-13-45T99:99:99Z",
    "x" * 300,
    "x" * 300 + ".py",
    "\u2028",
    "&",
    "",
]
XML_VALUE = st.one_of(st.sampled_from(XML_VALUES) | NUMBER_TEXT, XML_TEXT)

#: Test cases as runners write them, and as they should not; slots are filled with XML_VALUE.
CASE_TEMPLATES = [
    '<testcase classname="{a}" name="{b}" file="{c}" time="{d}"/>',
    '<testcase classname="{a}" name="{b}" time="{d}"><failure message="{e}">{t}</failure>'
    "<system-out>{t}</system-out></testcase>",
    '<testcase classname="" name="{b}" file="{c}"><error message="collection failure">'
    "E   {t}\n&gt; x</error></testcase>",
    '<testcase name="{b}" file="{c}"><skipped type="pytest.xfail" message="{e}"/></testcase>',
    '<testcase file="{c}" name="{b}" time="{d}"><properties>'
    '<property name="{path}" value="{c}"/><property name="{name}" value="{b}"/>'
    "</properties><failure/><error/></testcase>",
    '<testcase name="{b}"><properties><property name="{path}"/><property value="{a}"/>'
    '<property name="{name}" value="{e}"/></properties></testcase>',
    '<testcase classname="{a}" name="{b}"><testsuite name="{e}" tests="{d}"/></testcase>',
    '<testcase name="{b}" time="{d}"><skipped message="{e}">{t}</skipped><error/></testcase>',
    '<testcase classname="{a}"><rerunFailure message="{e}"><stackTrace>{t}</stackTrace>'
    "</rerunFailure></testcase>",
    "<testcase/>",
    "<testcase>{t}<testcase/></testcase>",
    '<x name="{b}"/>',
]
SUITE_OPEN = '<testsuite name="{a}" tests="{d}" time="{e}" timestamp="{t}" file="{c}">'


def fill(template: str, one: str, two: str) -> str:
    """*template* with its slots filled by two values (fewer draws keep the examples fast)."""
    one, two = escape(one), escape(two)
    slots = {"a": one, "b": two, "c": one, "d": two, "e": one, "t": two}
    return template.format(**slots, path=PATH_PROPERTY, name=NAME_PROPERTY)


def escape(value: str) -> str:
    """*value* as the text of an attribute between double quotes."""
    return xml_escape(value, {'"': "&quot;"})


@st.composite
def junit_text(draw: st.DrawFn) -> str:
    """A JUnit document: suites of test cases, as one string.

    Two drawn values fill every slot of the document (in turns), so that an example costs a
    dozen draws rather than dozens; the same values in several cases also make duplicates.
    """
    values = (draw(XML_VALUE), draw(XML_VALUE))
    suites = []
    for number in range(draw(st.sampled_from([1, 1, 2]))):
        templates = draw(st.lists(st.sampled_from(CASE_TEMPLATES), max_size=3))
        cases = [fill(t, *values[:: 1 if i % 2 else -1]) for i, t in enumerate(templates)]
        opening = fill(SUITE_OPEN, *values[:: 1 if number else -1])
        suites.append(opening + "".join(cases) + "</testsuite>")
    root = draw(st.sampled_from(["", "testsuites", "testsuites", "report"]))
    if not root:
        return suites[0]
    return f'<{root} name="x">{"".join(suites)}</{root}>'


def _element(children: st.SearchStrategy[ET.Element] | None) -> st.SearchStrategy[ET.Element]:
    @st.composite
    def build(draw: st.DrawFn) -> ET.Element:
        element = ET.Element(
            draw(XML_TAG), draw(st.dictionaries(XML_ATTR_NAME, XML_VALUE, max_size=2))
        )
        element.text = draw(st.none() | XML_TEXT)
        if children is not None:
            element.extend(draw(st.lists(children, max_size=2)))
        return element

    return build()


#: Any small XML tree made of JUnit's vocabulary, arranged any way.
XML_TREE = (_element(None) | _element(_element(None)) | _element(_element(_element(None)))).map(
    lambda tree: ET.tostring(tree, encoding="unicode")
)


@st.composite
def xml_bytes(draw: st.DrawFn, text: st.SearchStrategy[str]) -> bytes:
    document = draw(text)
    encoding = draw(st.none() | st.sampled_from(ENCODINGS))
    if encoding is not None:
        document = f"<?xml version='1.0' encoding='{encoding}'?>\n{document}"
    return document.encode("utf-8", "surrogatepass")


#: A JUnit file as any tool (or a crash, or a stranger) may leave it.
JUNIT_FILE = st.one_of(
    RAW_BYTES,
    ANY_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
    mutated(xml_bytes(junit_text())),
    mutated(xml_bytes(junit_text())),
    mutated(xml_bytes(junit_text())),
    mutated(xml_bytes(XML_TREE)),
)

PYTEST_SPEC_SOURCES = st.sampled_from(["", "tests", "pkg"])


# ---------------------------------------------------------------------------------------------
# pytest: the JUnit report, and the --collect-only listing
# ---------------------------------------------------------------------------------------------


#: What the selection plugin records, right and wrong (one draw each: generation is the cost).
RUN_INFO = st.sampled_from(
    [
        b'{"rootdir": "/w", "invocation_dir": "/w"}',
        b'{"rootdir": "/w/tests", "invocation_dir": "/w"}',
        b'{"rootdir": "/w", "invocation_dir": "/w/tests"}',
        b'{"rootdir": "", "invocation_dir": "/x"}',
        b'{"rootdir": 5, "invocation_dir": null}',
        b'{"rootdir": "/w\\u0000"}',
        b'{"rootdir": "/\\ud800", "invocation_dir": "/"}',
        b"[]",
        b'{"rootdir": "/w", "invo',
        DEEP.encode(),
    ]
)
PYTEST_SELECTION = st.sampled_from(
    [
        b'{"paths": [], "tests": [["tests/test_a.py", "test_x"], ["pkg/test_b.py", "TestK"]]}',
        b'{"paths": ["tests/test_a.py"], "tests": [["pkg/test_b.py", "TestK::test_y"]]}',
        b'{"tests": [["a", "b", "c"]]}',
        b'{"tests": ["ab", 5]}',
        b'{"tests": {"a": 1}}',
        b'{"tests": [[null, {}]]}',
        b'{"tests": [["tests/test_a.py", "test_\\ud800"]]}',
        b"null",
        b'{"tests": [["tests/te',
        DEEP.encode(),
    ]
)


@FUZZ
@given(
    report=st.none() | JUNIT_FILE,
    run_info=st.none() | RAW_BYTES | RUN_INFO,
    selection=st.none() | RAW_BYTES | PYTEST_SELECTION,
    source=PYTEST_SPEC_SOURCES,
    args=st.lists(st.sampled_from(["tests", "-x", "pkg/test_b.py::TestK", "\x00"]), max_size=2),
)
@example(
    report=b"<?xml version='1.0' encoding='x-bogus'?>\n<testsuites><testsuite /></testsuites>",
    run_info=None,
    selection=None,
    source="",
    args=[],
)
@example(
    report=b"<?xml version='1.0' encoding='utf-32'?>\n<testsuites><testsuite /></testsuites>",
    run_info=None,
    selection=None,
    source="",
    args=[],
)
@example(
    report=f'<testsuite><testcase file="{LONG_PART}.py" classname="a"/></testsuite>'.encode(),
    run_info=DEEP.encode(),
    selection=DEEP.encode(),
    source="",
    args=[],
)
@example(
    report=b'<testsuite><testcase file="tests/test_a.py" classname="tests.test_a" name="test_x"'
    b' time="nan"/><testcase file="pkg/test_b.py" classname="t" name="t" time="inf"/></testsuite>',
    run_info=None,
    selection=None,
    source="",
    args=[],
)
@example(
    report=b'<testsuite><testcase file="tests/test_a.py" classname="tests.test_a" name="test_x"'
    b' time="1.7976931348623157e+308"/><testcase file="tests/test_a.py" classname="tests.test_a"'
    b' name="test_x" time="1.7976931348623157e+308"/></testsuite>',
    run_info=None,
    selection=None,
    source="",
    args=[],
)
def test_pytest_report(
    workspace: Path,
    report: bytes | None,
    run_info: bytes | None,
    selection: bytes | None,
    source: str,
    args: list[str],
) -> None:
    spec = RunnerSpec(name="pytest", workspace=workspace, source=source, args=tuple(args))
    with tempfile.TemporaryDirectory() as tmp:
        report_dir = Path(tmp)
        write(report_dir, {REPORT_FILE: report, RUN_INFO_FILE: run_info, SELECTION_FILE: selection})
        results = handled(
            lambda: PYTEST_RUNNER.parse(
                spec=spec, report_dir=report_dir, outcome=Outcome(exit_code=1)
            )
        )
        if not isinstance(results, DagparError):
            check_results(results)
            assert results == parse_report(report_dir, spec.source_dir, spec.args)
            if report is None:
                assert results == []


COLLECT_LINE = st.one_of(
    ANY_TEXT,
    st.sampled_from(
        [
            "tests/test_a.py::test_x",
            "pkg/test_b.py::TestK::test_y[a b-1]",
            "test_a.py::test_x",
            "/abs/test_a.py::test_x",
            "../up.py::t",
            "::",
            "a::b::c",
            " indented::x",
            "",
            "=" * 20 + " short test summary info " + "=" * 20,
            "=" * 20 + " ERRORS " + "=" * 20,
            "!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!",
            "ERROR tests/test_a.py",
            "ERROR tests/test_a.py - ImportError: x - y",
            "ERROR pkg - boom",
            "ERROR ",
            "ERROR \x00 - x",
            "ERROR ../../../../../../etc - x",
        ]
    ),
    st.tuples(ANY_TEXT, ANY_TEXT).map("::".join),
    ANY_TEXT.map(lambda t: "ERROR " + t),
)


@FUZZ
@given(
    lines=st.lists(COLLECT_LINE, max_size=8),
    newline=st.sampled_from(["\n", "\r\n", "\r", "\x0b", "\x1c", "\u2028"]),
    exit_code=st.sampled_from([0, 1, 2, 3, 4, 5, -9, 137]),
    stderr=ANY_TEXT | st.just("No module named pytest"),
    source=PYTEST_SPEC_SOURCES,
    args=st.lists(st.sampled_from(["tests", "-q", "web", "\x00x", "../.."]), max_size=2),
)
@example(
    lines=[f"{LONG_PART}.py::test_x", "=== short test summary info ===", f"ERROR {LONG_PART} - x"],
    newline="\n",
    exit_code=0,
    stderr="",
    source="",
    args=[],
)
def test_pytest_collect_output(
    workspace: Path,
    lines: list[str],
    newline: str,
    exit_code: int,
    stderr: str,
    source: str,
    args: list[str],
) -> None:
    stdout = newline.join(lines)
    spec = RunnerSpec(
        name="pytest", workspace=workspace, source=source, command=("pytest",), args=tuple(args)
    )
    host = FakeRunnerHost(Outcome(exit_code=exit_code, stdout=stdout, stderr=stderr))
    tests = handled(lambda: PYTEST_RUNNER.collect(spec=spec, host=host))
    if not isinstance(tests, DagparError):
        check_tests(tests)
    listed = parse_collect_output(stdout, RootdirMap(spec.source_dir, spec.args))
    check_tests(listed)
    if exit_code in (0, 5):
        assert tests == listed


# ---------------------------------------------------------------------------------------------
# Jest: the --json report, on standard output (listing) and in jest-K.json (runs)
# ---------------------------------------------------------------------------------------------

JEST_STATUS = st.sampled_from(["passed", "failed", "pending", "todo", "skipped", "disabled", "x"])
JEST_NAME = st.sampled_from(["a", "b", "", "a b", "{report_dir}"]) | ANY_TEXT
JEST_ASSERTION = near(
    [
        {"ancestorTitles": ["d"], "title": "a", "status": "passed", "duration": 5},
        {"ancestorTitles": [], "title": "b", "status": "failed", "failureMessages": ["E\nx"]},
        {"ancestorTitles": [], "title": "", "fullName": "", "status": "pending"},
        {"fullName": "a b", "status": "todo", "duration": None},
        {"ancestorTitles": ["a"], "title": "b", "status": "skipped"},
    ],
    {
        "ancestorTitles": st.lists(JEST_NAME | WRONG, max_size=3),
        "title": JEST_NAME,
        "fullName": JEST_NAME,
        "status": JEST_STATUS,
        "duration": JSON_NUMBER,
        "failureMessages": st.lists(ANY_TEXT | WRONG, max_size=2),
    },
)
JEST_PATH = st.one_of(
    st.sampled_from(["web/a.test.js", "web/b.test.js", "web/none.test.js", "a.test.js"]).map(
        lambda p: f"{WS}/{p}"
    ),
    st.sampled_from(
        [
            "/app/web/a.test.js",
            "/app/x/y/z/web/b.test.js",
            f"/app/{LONG_PART}/a.test.js",
            "/",
            "",
            ".",
            "web/a.test.js",
            "/app/\x00/a.test.js",
        ]
    ),
    ANY_TEXT,
)
JEST_FILE = near(
    [
        {
            "name": f"{WS}/web/a.test.js",
            "status": "passed",
            "message": "",
            "startTime": 1,
            "endTime": 9,
            "assertionResults": [
                {"ancestorTitles": [], "title": "a", "status": "passed", "duration": 5}
            ],
        },
        {
            "name": f"{WS}/web/b.test.js",
            "status": "failed",
            "assertionResults": [],
            "message": "  ● Test suite failed to run\n\n    Details:\n\n    SyntaxError: x",
        },
        {
            "name": "/app/web/a.test.js",
            "status": "failed",
            "message": "boom",
            "assertionResults": [{"ancestorTitles": [], "title": "a", "status": "passed"}],
        },
        {
            "name": f"{WS}/web/a.test.js",
            "status": "failed",
            "assertionResults": [],
            "testExecError": {"message": "x", "stack": "y"},
        },
    ],
    {
        "name": JEST_PATH,
        "assertionResults": st.lists(JEST_ASSERTION | WRONG, max_size=3),
        "status": JEST_STATUS,
        "message": ANY_TEXT
        | st.just("\x1b[1mTest suite failed to run\x1b[0m\n\n    Details:\n\n    boom\n"),
        "startTime": JSON_NUMBER,
        "endTime": JSON_NUMBER,
        "testExecError": obj({"message": ANY_TEXT, "stack": ANY_TEXT}),
    },
)
#: A decoded Jest --json document; its first key is what the listing looks for on stdout.
JEST_DOCUMENT = st.fixed_dictionaries(
    {"numFailedTestSuites": WRONG},
    optional={"testResults": field(st.lists(JEST_FILE | WRONG, max_size=3))},
)
#: What jest-K.selection.json says a run was asked for (paths as the report's, relative).
JEST_WANTED = near(
    [
        {"path": "web/a.test.js", "names": ["a"]},
        {"path": "web/a.test.js", "names": None},
        {"path": "web/b.test.js", "names": ["b", "d a", "{report_dir}"]},
    ],
    {"path": JEST_PATH, "names": st.lists(JEST_NAME | WRONG, max_size=3)},
)
JEST_SELECTION = mutated(obj({"files": st.lists(JEST_WANTED | WRONG, max_size=3)}).map(json_bytes))


@st.composite
def jest_stdout(draw: st.DrawFn) -> str:
    before = draw(st.sampled_from(["", "console.log output\n", '{"numFailedTestSuites"']))
    body = json.dumps(draw(JEST_DOCUMENT), ensure_ascii=draw(st.booleans()))
    cut = draw(st.none() | st.integers(0, len(body)))
    return before + (body if cut is None else body[:cut]) + draw(st.sampled_from(["", "\n", "}"]))


def jest_report(name: str, duration: object = 1) -> str:
    """A one-test Jest report for a file *name*."""
    test = {"ancestorTitles": [], "title": "t", "status": "passed", "duration": duration}
    return json.dumps({"numFailedTestSuites": 0, "testResults": [
        {"name": name, "status": "passed", "assertionResults": [test]}]})  # fmt: skip


@FUZZ
@given(
    stdout=ANY_TEXT | jest_stdout() | jest_stdout(),
    exit_code=st.sampled_from([0, 1, 2, 137]),
    stderr=ANY_TEXT,
)
@example(stdout='{"numFailedTestSuites": ' + DEEP, exit_code=1, stderr="")
@example(stdout=jest_report(f"/app/{LONG_PART}/a.test.js"), exit_code=0, stderr="")
@example(stdout=jest_report(f"{WS}/web/a.test.js", 10**400), exit_code=0, stderr="")
def test_jest_listing(workspace: Path, stdout: str, exit_code: int, stderr: str) -> None:
    spec = RunnerSpec(name="jest", workspace=workspace, command=("jest",))
    outcome = Outcome(exit_code=exit_code, stdout=in_workspace(stdout, workspace), stderr=stderr)
    tests = handled(lambda: JEST_RUNNER.collect(spec=spec, host=FakeRunnerHost(outcome)))
    if not isinstance(tests, DagparError):
        check_tests(tests)


@FUZZ
@given(
    report=st.none()
    | RAW_BYTES
    | mutated(JEST_DOCUMENT.map(json_bytes))
    | mutated(JEST_DOCUMENT.map(json_bytes))
    | st.just(DEEP.encode()),
    selection=st.none() | RAW_BYTES | JEST_SELECTION | st.just(DEEP.encode()),
    exit_code=st.sampled_from([0, 1, 2, 137]),
    stderr=ANY_TEXT,
)
@example(report=DEEP.encode(), selection=DEEP.encode(), exit_code=1, stderr="")
@example(
    report=jest_report(f"{WS}/web/a.test.js").encode(),
    selection=b'{"files": [{"path": "web/a.test.js", "names": -1}]}',
    exit_code=1,
    stderr="",
)
@example(
    report=None,
    selection=b'{"files": [{"path": "web/a.test.js", "names": [[1], "a"]}]}',
    exit_code=1,
    stderr="",
)
@example(
    report=jest_report(f"{WS}/web/a.test.js", 10**400).encode(),
    selection=None,
    exit_code=1,
    stderr="",
)
def test_jest_reports(
    workspace: Path, report: bytes | None, selection: bytes | None, exit_code: int, stderr: str
) -> None:
    spec = RunnerSpec(name="jest", workspace=workspace, command=("jest",))
    ws = str(workspace).encode()
    with tempfile.TemporaryDirectory() as tmp:
        report_dir = Path(tmp)
        files = {"jest-1.json": report, "jest-1.selection.json": selection}
        write(report_dir, {k: v.replace(WS.encode(), ws) if v else v for k, v in files.items()})
        outcome = Outcome(exit_code=exit_code, stderr=stderr)
        results = handled(
            lambda: JEST_RUNNER.parse(spec=spec, report_dir=report_dir, outcome=outcome)
        )
        if not isinstance(results, DagparError):
            check_results(results)


# ---------------------------------------------------------------------------------------------
# Go: go list -json, go test -json, and the test sources read without compiling
# ---------------------------------------------------------------------------------------------

GO_DIR = st.sampled_from([WS, f"{WS}/sub", f"{WS}/missing", "", "/elsewhere", "\x00", "../.."])
GO_FILES = st.lists(
    st.sampled_from(["a_test.go", "b_test.go", "x_test.go", "/dev/null", "\x00_test.go", ""])
    | st.just(LONG_PART + "_test.go")
    | ANY_TEXT,
    max_size=3,
)
GO_LIST_RECORD = near(
    [
        {
            "Dir": f"{WS}/sub",
            "ImportPath": "example.com/m/sub",
            "Match": ["./..."],
            "XTestGoFiles": ["b_test.go"],
        },
        {
            "Dir": WS,
            "ImportPath": "example.com/m",
            "Match": [".", "./..."],
            "TestGoFiles": ["a_test.go"],
        },
        {
            "Dir": f"{WS}/missing",
            "ImportPath": "example.com/m/missing",
            "Match": ["./..."],
            "Error": {"Err": "no Go files"},
            "InvalidGoFiles": ["x_test.go"],
        },
    ],
    {
        "Dir": GO_DIR | ANY_TEXT,
        "ImportPath": st.sampled_from(["example.com/m", "example.com/m/sub"]) | ANY_TEXT,
        "Match": st.lists(st.sampled_from([".", "./..."]) | WRONG, max_size=2),
        "TestGoFiles": GO_FILES,
        "XTestGoFiles": GO_FILES,
        "InvalidGoFiles": GO_FILES,
        "Error": obj({"Err": ANY_TEXT}),
        "DepsErrors": st.lists(WRONG, max_size=1),
    },
)


@st.composite
def go_list_stdout(draw: st.DrawFn) -> str:
    records = draw(st.lists(GO_LIST_RECORD | WRONG, max_size=4))
    text = "\n".join(json.dumps(r, indent=draw(st.sampled_from([None, 1]))) for r in records)
    cut = draw(st.none() | st.integers(0, len(text)))
    return text if cut is None else text[:cut]


def go_list(*records: dict[str, Any]) -> str:
    """``go list -json`` output: the root package, then *records*."""
    root = {"Dir": WS, "ImportPath": "example.com/m", "Match": [".", "./..."]}
    return "\n".join(json.dumps(r) for r in (root, *records))


@FUZZ
@given(
    stdout=ANY_TEXT | go_list_stdout() | go_list_stdout(),
    exit_code=st.sampled_from([0, 0, 0, 1, 2]),
    stderr=ANY_TEXT | st.just("go: go.mod file not found"),
)
@example(stdout=DEEP, exit_code=0, stderr="")
@example(stdout=go_list({"Dir": "", "ImportPath": "x", "Match": ["./..."]}), exit_code=0, stderr="")
@example(
    stdout=go_list({"Dir": WS, "ImportPath": "x", "Match": ["./..."], "TestGoFiles": ["\x00.go"]}),
    exit_code=0,
    stderr="",
)
def test_go_list(workspace: Path, stdout: str, exit_code: int, stderr: str) -> None:
    spec = RunnerSpec(name="go", workspace=workspace, command=("go",))
    outcome = Outcome(exit_code=exit_code, stdout=in_workspace(stdout, workspace), stderr=stderr)
    tests = handled(lambda: GO_RUNNER.collect(spec=spec, host=FakeRunnerHost(outcome)))
    if not isinstance(tests, DagparError):
        check_tests(tests)


GO_PACKAGE = st.sampled_from(["example.com/m", "example.com/m/sub", "sub", "", "m"]) | ANY_TEXT
GO_TEST = st.sampled_from(["TestA", "TestA/sub_one", "TestA/sub_one/deep", "TestB", "ExampleB"])
GO_OUTPUT = (
    st.sampled_from(
        [
            "=== RUN   TestA\n",
            "--- FAIL: TestA (0.00s)\n",
            "    a_test.go:5: it broke\n",
            "    a_test.go:5: \n",
            "panic: boom [recovered]\n",
            "got:\n",
            "want:\n",
            "FAIL\texample.com/m [build failed]\n",
            "FAIL\texample.com/m/sub [setup failed]\n",
            "PASS\n",
            "",
        ]
    )
    | ANY_TEXT
)
GO_ACTIONS = [
    "run",
    "pause",
    "cont",
    "output",
    "pass",
    "fail",
    "skip",
    "bench",
    "start",
    "build-output",
    "build-fail",
]
GO_EVENT = near(
    [
        {"Action": "run", "Package": "example.com/m", "Test": "TestA"},
        {
            "Action": "output",
            "Package": "example.com/m",
            "Test": "TestA",
            "Output": "    a_test.go:5: it broke\n",
        },
        {"Action": "fail", "Package": "example.com/m", "Test": "TestA", "Elapsed": 0.5},
        {"Action": "pass", "Package": "example.com/m/sub", "Test": "TestA/sub_one", "Elapsed": 0},
        {"Action": "skip", "Package": "example.com/m", "Test": "ExampleB", "Elapsed": 0},
        {"Action": "output", "Package": "example.com/m", "Output": "panic: boom\n"},
        {"Action": "fail", "Package": "example.com/m", "Elapsed": 1.5, "FailedBuild": "x"},
        {
            "Action": "build-output",
            "ImportPath": "example.com/m_test [example.com/m.test]",
            "Output": "./a_test.go:3:1: syntax error\n",
        },
    ],
    {
        "Action": st.sampled_from(GO_ACTIONS),
        "Package": GO_PACKAGE,
        "ImportPath": GO_PACKAGE | st.just("example.com/m_test [example.com/m.test]"),
        "Test": GO_TEST | ANY_TEXT,
        "Output": GO_OUTPUT,
        "Elapsed": JSON_NUMBER,
        "FailedBuild": GO_PACKAGE,
    },
)
GO_STREAM_LINE = st.one_of(
    GO_EVENT.map(lambda e: json.dumps(e, ensure_ascii=False)),
    GO_EVENT.map(lambda e: json.dumps(e, ensure_ascii=False)),
    GO_OUTPUT,
    st.just(f'{{"Action": {DEEP}'),
)
GO_MANIFEST = obj(
    {
        "report": st.sampled_from(["go-1.json", "go-2.json", "../go-1.json", "", "\x00"])
        | st.just(LONG_PART)
        | ANY_TEXT,
        "packages": st.lists(
            obj(
                {
                    "path": st.sampled_from([".", "sub", "missing", "", "\x00", "/", "../.."])
                    | st.just(LONG_PART)
                    | ANY_TEXT,
                    "import_path": GO_PACKAGE,
                    "tests": st.lists(
                        GO_TEST | ANY_TEXT | st.just("[package]") | WRONG, max_size=3
                    ),
                }
            )
            | WRONG,
            max_size=3,
        ),
    }
)
GO_STDERR = st.lists(
    st.sampled_from(
        [
            "# example.com/m\n",
            "# example.com/m_test [example.com/m.test]\n",
            "./a_test.go:3:1: syntax error\n",
            "# \n",
        ]
    )
    | ANY_TEXT,
    max_size=4,
).map("".join)


def go_event(**fields: object) -> str:
    return json.dumps(fields)


@FUZZ
@given(
    report=st.lists(GO_STREAM_LINE, max_size=6).map(
        lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")
    )
    | RAW_BYTES,
    manifest=st.none() | RAW_BYTES | mutated(GO_MANIFEST.map(json_bytes)) | st.just(DEEP.encode()),
    stderr=GO_STDERR,
    timed_out=st.booleans(),
)
@example(report=('{"Action": ' + DEEP).encode(), manifest=DEEP.encode(), stderr="", timed_out=False)
@example(
    report=go_event(Action="pass", Package="example.com/m", Test="TestA", Elapsed=10**400).encode(),
    manifest=None,
    stderr="",
    timed_out=False,
)
@example(report=b"", manifest=b'{"report": "\\u0000"}', stderr="", timed_out=False)
def test_go_test_json(
    workspace: Path, report: bytes, manifest: bytes | None, stderr: str, timed_out: bool
) -> None:
    spec = RunnerSpec(name="go", workspace=workspace, command=("go",))
    with tempfile.TemporaryDirectory() as tmp:
        report_dir = Path(tmp)
        write(report_dir, {"go-1.json": report, "go-1.selection.json": manifest})
        outcome = Outcome(exit_code=1, stderr=stderr, timed_out=timed_out)
        results = handled(
            lambda: GO_RUNNER.parse(spec=spec, report_dir=report_dir, outcome=outcome)
        )
        if not isinstance(results, DagparError):
            check_results(results)


GO_TOKEN = st.sampled_from(
    [
        "func",
        " ",
        "\n",
        "TestA",
        "Test",
        "Testa",
        "TestÉ",
        "FuzzX",
        "ExampleB",
        "Example",
        "TestMain",
        "BenchmarkX",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        "t *testing.T",
        "m *testing.M",
        "*",
        ",",
        "// Output: x",
        "// Unordered output:",
        "//",
        "/*",
        "*/",
        "`",
        '"',
        "'",
        "\\",
        "package m",
        "//go:build ",
        "// +build ",
        "linux",
        "!",
        "&&",
        "||",
        "go1.21",
        "ignore",
        "\x00",
        "\ufeff",
    ]
)
GO_FILE_NAME = st.sampled_from(
    ["a_test.go", "a_linux_test.go", "a_windows_amd64_test.go", "a_arm64.go", "_x.go", ".go", ""]
)


@FUZZ
@given(
    source=st.one_of(ANY_TEXT, st.lists(GO_TOKEN, max_size=40).map("".join)),
    name=GO_FILE_NAME,
    tags=st.frozensets(st.sampled_from(["linux", "amd64", "unix", "gc", "windows"])),
)
@example(
    source="//go:build " + "!" * 5000 + "linux\npackage m\n", name="a_test.go", tags=frozenset()
)
@example(source="//go:build " + "(" * 5000 + "\npackage m\n", name="a_test.go", tags=frozenset())
def test_go_source_scanning(source: str, name: str, tags: frozenset[str]) -> None:
    found = scan_test_source(source)
    assert all(isinstance(n, str) and n for n in found.names)
    assert isinstance(builds_here(Path(name or "x"), source, tags), bool)


# ---------------------------------------------------------------------------------------------
# the timing store: JUnit import and merging exported JSON
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(workspace: Path) -> Iterator[TimingStore]:
    # One store for all examples: opening one costs more than a thousand imports.
    with TimingStore.open(workspace) as opened:
        yield opened


def check_samples(store: TimingStore, run_id: str = "%") -> None:
    """Every stored duration is finite and non-negative (SQLite would store NaN as NULL)."""
    samples = [s for s in store.export_json()["samples"] if run_id in ("%", s[3])]
    assert all(0 <= s[5] <= 1.8e308 and abs(s[6]) <= 1.8e308 for s in samples)
    with closing(sqlite3.connect(store.path)) as conn:
        (bad,) = conn.execute(
            "SELECT count(*) FROM history WHERE seconds IS NULL OR seconds < 0"
            " OR seconds > 1.8e308 OR spread IS NULL"
        ).fetchone()
    assert bad == 0


@FUZZ
@given(report=JUNIT_FILE)
@example(report=b"")
@example(report=b"<?xml version='1.0' encoding='x-bogus'?><testsuite/>")
@example(report=b"<?xml version='1.0' encoding='utf-32'?><testsuite/>")
@example(report=b'<testsuite><testcase file="a.py" name="t" time="inf"/></testsuite>')
@example(
    report=b'<testsuite><testcase file="a.py" name="a" time="1.7976931348623157e+308"/>'
    b'<testcase file="a.py" name="b" time="1.7976931348623157e+308"/></testsuite>'
)
def test_timings_import_junit(store: TimingStore, report: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.xml"
        path.write_bytes(report)
        count = handled(lambda: store.import_junit(path, "api"))
        if not isinstance(count, DagparError):
            assert isinstance(count, int) and count >= 0
            # The samples of this file only: the store is shared by every example.
            check_samples(store, "junit:" + hashlib.sha256(report).hexdigest()[:20])


def numbered(values: list[Any]) -> dict[str, Any]:
    return {str(index): value for index, value in enumerate(values)}


SAMPLE_FIELDS = {
    "0": ANY_TEXT,
    "1": st.sampled_from([TEST, ITEM, STARTUP]),
    "2": ANY_TEXT,
    "3": ANY_TEXT,
    "4": st.integers(-5, 5) | JSON_NUMBER,
    "5": JSON_NUMBER,
    "6": JSON_NUMBER,
}
SAMPLE = st.one_of(
    near(
        [
            numbered(["api", TEST, "a.py::t", "run-1", 0, 0.5, 1.7e9]),
            numbered(["go", ITEM, "svc/store", "run-2", 3, 12.0, 0]),
            numbered(["pytest", STARTUP, "docker", "run-3", 0, 2.5, -1.0]),
        ],
        SAMPLE_FIELDS,
    ).map(lambda fields: [fields[k] for k in sorted(fields, key=int)]),
    st.lists(WRONG, max_size=8),
    WRONG,
)
EXPORT = st.fixed_dictionaries(
    {
        "format": st.just(EXPORT_FORMAT) | WRONG,
        "version": st.just(SCHEMA_VERSION) | WRONG,
    },
    optional={"keep": WRONG, "samples": field(st.lists(SAMPLE, max_size=4))},
)


def export(*samples: object) -> dict[str, Any]:
    return {"format": EXPORT_FORMAT, "version": SCHEMA_VERSION, "samples": list(samples)}


@FUZZ
@given(data=st.one_of(EXPORT, EXPORT, st.dictionaries(ANY_TEXT, JSON_ANY, max_size=3)))
@example(data={})
@example(data={"format": EXPORT_FORMAT, "version": SCHEMA_VERSION, "samples": 5})
@example(data=export("abcdefg"))
@example(data=export(["api", TEST, "a::t", "r", 0, math.nan, 1.0]))
@example(data=export(["api", TEST, "a::t", "r", 2**70, 1.0, 1.0]))
@example(data=export(["api", TEST, "a::\ud800", "r", 0, 1.0, 1.0]))
def test_timings_merge_json(store: TimingStore, data: dict[str, Any]) -> None:
    merged = handled(lambda: store.merge_json(data))
    if not isinstance(merged, DagparError):
        check_samples(store)


# ---------------------------------------------------------------------------------------------
# merging per-node JUnit files
# ---------------------------------------------------------------------------------------------


@FUZZ
@given(files=st.lists(JUNIT_FILE, min_size=1, max_size=2))
@example(files=[b"<?xml version='1.0' encoding='utf-32'?>\n<testsuites />"])
@example(files=[b"<?xml version='1.0' encoding='x-bogus'?>\n<testsuites />"])
@example(
    files=[
        b'<testsuite name="s"><testcase name="a"><testsuite tests="abc"/></testcase></testsuite>'
    ]
)
def test_merge_junit(files: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for index, data in enumerate(files):
            paths.append(Path(tmp) / f"node-{index}.xml")
            paths[-1].write_bytes(data)
        merged = handled(lambda: merge_junit(paths))
        if not isinstance(merged, DagparError):
            document, warnings = merged
            assert all(isinstance(w, str) for w in warnings)
            root = ET.fromstring(document)  # the merged file is well-formed XML
            assert root.tag == "testsuites"
            counted = sum(int(s.get("tests", "0")) for s in root.findall("testsuite"))
            assert int(root.get("tests", "")) == counted
