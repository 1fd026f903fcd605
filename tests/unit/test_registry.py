"""Registered runners, the public runner contract, and the deprecated runner hooks' adapter."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import pluggy
import pytest
from dagpar_plugins.go import GoRunner
from dagpar_plugins.jest import JestRunner
from dagpar_plugins.pytest import PytestRunner

import dagpar_cli
from dagpar_cli import (
    REPORT_DIR_PLACEHOLDER,
    ExecutionError,
    Outcome,
    Runner,
    RunnerCommand,
    RunnerHost,
    RunnerRegistry,
    RunnerSpec,
    Selection,
    Status,
    TestCase,
    TestResult,
    hookimpl,
    hookspecs,
)
from dagpar_cli.errors import ToolchainError
from dagpar_cli.pluginmanager import get_plugin_manager
from dagpar_cli.registry import build_runner_registry
from dagpar_cli.testing import DagparResult, FakeRunnerHost, TailRecorder, write_tree


class EchoRunner(Runner):
    """The smallest runner: one test per item, every one passes."""

    name = "echo"

    def collect(self, spec: RunnerSpec, host: RunnerHost) -> list[TestCase]:
        return [TestCase("a.txt", "run")]

    def command(self, spec: RunnerSpec, selection: Selection) -> list[RunnerCommand]:
        return [RunnerCommand(argv=("true",))]

    def parse(self, spec: RunnerSpec, report_dir: Path, outcome: Outcome) -> list[TestResult]:
        return [TestResult(path="a.txt", name="run", status=Status.PASSED)]


class OtherEchoRunner(EchoRunner):
    """Another class claiming the same name."""


# ------------------------------------------------------------------------------------------
# the registry
# ------------------------------------------------------------------------------------------


def test_a_registered_runner_is_found_by_name() -> None:
    registry = RunnerRegistry()
    runner = EchoRunner()
    registry.add(runner)
    assert registry.get("echo") is runner
    assert registry.names() == ["echo"]
    assert "echo" in registry and "other" not in registry
    assert list(registry) == [runner]


def test_an_unknown_runner_names_the_installed_ones() -> None:
    registry = RunnerRegistry()
    registry.add(EchoRunner())
    with pytest.raises(
        ExecutionError, match=r"no runner plugin named 'nope'.*installed runners: echo"
    ):
        registry.get("nope")


def test_a_name_claimed_by_two_classes_is_an_error_that_says_how_to_fix_it() -> None:
    registry = RunnerRegistry()
    registry.add(EchoRunner())
    registry.add(EchoRunner())  # the same plugin registering again is harmless
    with pytest.raises(ToolchainError, match=r"registered twice.*DAGPAR_DISABLED_PLUGINS"):
        registry.add(OtherEchoRunner())


def test_only_named_runner_instances_register() -> None:
    registry = RunnerRegistry()
    with pytest.raises(ToolchainError, match=r"registry.add\(MyRunner\(\)\)"):
        registry.add(EchoRunner)  # type: ignore[arg-type]

    class Nameless(EchoRunner):
        name = ""

    with pytest.raises(ToolchainError, match="has no `name`"):
        registry.add(Nameless())


def test_a_runner_must_implement_collect_command_and_parse() -> None:
    class Incomplete(Runner):
        name = "incomplete"

        def collect(self, spec: RunnerSpec, host: RunnerHost) -> list[TestCase]:
            return []

    with pytest.raises(TypeError, match="parse"):
        Incomplete()  # type: ignore[abstract]


def test_the_optional_capabilities_default_to_none_and_no() -> None:
    runner = EchoRunner()
    spec = RunnerSpec(name="echo", workspace=Path("/ws"))
    assert runner.has_subtests is False
    assert runner.installed(spec) is None
    assert runner.progress(spec, Path("/reports")) is None
    assert runner.can_hand_over(spec) is False
    assert runner.hand_over_tail(spec, Path("/reports"), TailRecorder(1)) is None


def test_the_built_in_runners_register_like_any_plugin_and_declare_sub_tests() -> None:
    registry = build_runner_registry(get_plugin_manager())
    assert {"go", "jest", "pytest"} <= set(registry.names())
    assert isinstance(registry.get("go"), GoRunner) and registry.get("go").has_subtests
    assert isinstance(registry.get("jest"), JestRunner) and not registry.get("jest").has_subtests
    assert isinstance(registry.get("pytest"), PytestRunner)
    assert not registry.get("pytest").has_subtests


def test_a_session_built_by_hand_has_an_empty_registry(tmp_path: Path) -> None:
    from dagpar_cli.config import Config, RunOptions
    from dagpar_cli.run_context import RunContext

    config = Config(workspace=tmp_path, file=None, toolchains=(), executor="local")
    session = RunContext(config=config, options=RunOptions(), pm=pluggy.PluginManager("dagpar"))
    assert session.runners.names() == []


# ------------------------------------------------------------------------------------------
# the public contract
# ------------------------------------------------------------------------------------------


def test_the_runner_contract_is_public() -> None:
    for name in (
        "REPORT_DIR_PLACEHOLDER",
        "Outcome",
        "Runner",
        "RunnerCommand",
        "RunnerHost",
        "RunnerRegistry",
        "RunnerSpec",
        "Selection",
        "TailChooser",
        "ToolchainRegistry",
        "hookimpl",
    ):
        assert name in dagpar_cli.__all__, name
    assert REPORT_DIR_PLACEHOLDER == "{report_dir}"


def test_one_hookimpl_marker_wherever_it_is_imported_from() -> None:
    from dagpar_cli import plugin, pluginmanager

    assert dagpar_cli.hookimpl is plugin.hookimpl is pluginmanager.hookimpl
    assert plugin.PROJECT == hookspecs.PROJECT == "dagpar"


def test_report_dir_is_a_deprecated_alias_of_the_placeholder() -> None:
    from dagpar_cli import model

    with pytest.warns(DeprecationWarning, match="REPORT_DIR_PLACEHOLDER"):
        assert model.REPORT_DIR == REPORT_DIR_PLACEHOLDER
    # The contract types are still importable from their old module.
    assert model.RunnerSpec is RunnerSpec and model.Selection is Selection


def test_the_fake_host_records_every_call() -> None:
    host = FakeRunnerHost(Outcome(exit_code=0, stdout="listing"))
    assert host.argv == []
    outcome = host.run(["runner", "--list"], env={"A": "1"}, timeout=5.0)
    assert outcome.stdout == "listing"
    assert host.argv == ["runner", "--list"]
    assert (host.calls[0].env, host.calls[0].timeout) == ({"A": "1"}, 5.0)
    echo = FakeRunnerHost(answer=lambda argv: Outcome(exit_code=0, stdout=" ".join(argv)))
    assert echo.run(["a", "b"]).stdout == "a b"


# ------------------------------------------------------------------------------------------
# the deprecated runner hooks
# ------------------------------------------------------------------------------------------

LEGACY = "legacy"


class LegacyPlugin:
    """A runner served by the ``dagpar_runner_*`` hooks only, as plugins were written before."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    def dagpar_runner_collect(self, spec: RunnerSpec, host: RunnerHost) -> Any:
        if spec.name != LEGACY:
            return None
        return [TestCase("a.txt", "run"), TestCase("b.txt", "run")]

    @hookimpl
    def dagpar_runner_installed(self, spec: RunnerSpec) -> Any:
        return ["/opt/legacy"] if spec.name == LEGACY else None

    @hookimpl
    def dagpar_runner_progress(self, spec: RunnerSpec, report_dir: Path) -> Any:
        return 1 if spec.name == LEGACY else None

    @hookimpl
    def dagpar_runner_hands_over(self, spec: RunnerSpec) -> Any:
        return True if spec.name == LEGACY else None

    @hookimpl
    def dagpar_runner_hand_over(self, spec: RunnerSpec, report_dir: Path, choose: Any) -> Any:
        if spec.name != LEGACY:
            return None
        pending = [TestCase("b.txt", "run")]
        return pending[len(pending) - choose(pending, 1) :]

    @hookimpl
    def dagpar_runner_command(self, spec: RunnerSpec, selection: Selection) -> Any:
        if spec.name != LEGACY:
            return None
        report = f"{REPORT_DIR_PLACEHOLDER}/legacy.json"
        items = json.dumps([item[0] for item in selection.items])
        script = "import json, sys; json.dump(json.loads(sys.argv[2]), open(sys.argv[1], 'w'))"
        return [RunnerCommand(argv=(sys.executable, "-c", script, report, items))]

    @hookimpl
    def dagpar_runner_parse(self, spec: RunnerSpec, report_dir: Path, outcome: Outcome) -> Any:
        if spec.name != LEGACY:
            return None
        ran = json.loads((report_dir / "legacy.json").read_text(encoding="utf-8"))
        return [TestResult(path=path, name="run", status=Status.PASSED) for path in ran]


def _legacy_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(LegacyPlugin())
    return pm


def test_implementing_a_deprecated_runner_hook_warns_and_names_its_replacement() -> None:
    with pytest.warns(DeprecationWarning) as caught:
        _legacy_manager()
    messages = {str(w.message).split(" ", 1)[0]: str(w.message) for w in caught}
    assert "implement Runner.collect" in messages["dagpar_runner_collect"]
    assert "implement Runner.can_hand_over" in messages["dagpar_runner_hands_over"]
    assert "implement Runner.hand_over_tail" in messages["dagpar_runner_hand_over"]
    assert len(messages) == 7
    assert all("dagpar_register_runners" in m for m in messages.values())


def test_a_runner_served_only_by_the_deprecated_hooks_still_works(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning):
        pm = _legacy_manager()
    runner = build_runner_registry(pm).get(LEGACY)
    spec = RunnerSpec(name=LEGACY, workspace=tmp_path)
    assert runner.name == LEGACY and not runner.has_subtests
    assert runner.collect(spec, FakeRunnerHost()) == [
        TestCase("a.txt", "run"),
        TestCase("b.txt", "run"),
    ]
    assert runner.installed(spec) == ["/opt/legacy"]
    assert runner.progress(spec, tmp_path) == 1
    assert runner.can_hand_over(spec) is True
    assert runner.hand_over_tail(spec, tmp_path, TailRecorder(1)) == [TestCase("b.txt", "run")]
    commands = runner.command(spec, Selection(items=(("a.txt",), ("b.txt",))))
    from dagpar_cli.testing import run_runner_commands

    run = run_runner_commands(commands, spec, tmp_path / "report")
    results = runner.parse(spec, tmp_path / "report", run.combined)
    assert [(r.path, r.status) for r in results] == [
        ("a.txt", Status.PASSED),
        ("b.txt", Status.PASSED),
    ]


def test_a_name_no_plugin_answers_for_is_still_an_error(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning):
        pm = _legacy_manager()
    runner = build_runner_registry(pm).get("nope")
    spec = RunnerSpec(name="nope", workspace=tmp_path)
    with pytest.raises(ExecutionError, match="no runner plugin named 'nope'"):
        runner.collect(spec, FakeRunnerHost())
    with pytest.raises(ExecutionError, match="no runner plugin named 'nope'"):
        runner.command(spec, Selection(items=(("a",),)))
    assert runner.parse(spec, tmp_path, Outcome(exit_code=0)) == []


LEGACY_PLUGIN_MODULE = """
import json, sys
from pathlib import Path
from dagpar_cli import Status, TestCase, TestResult, hookimpl
from dagpar_cli.model import RunnerCommand

@hookimpl
def dagpar_runner_collect(spec, host):
    if spec.name != "legacy":
        return None
    return [TestCase(p.name, "run") for p in sorted(spec.source_dir.glob("*.txt"))]

@hookimpl
def dagpar_runner_command(spec, selection):
    if spec.name != "legacy":
        return None
    script = "import json, sys; json.dump(sys.argv[2:], open(sys.argv[1], 'w'))"
    paths = [item[0] for item in selection.items]
    return [RunnerCommand(argv=(sys.executable, "-c", script, "{report_dir}/r.json", *paths))]

@hookimpl
def dagpar_runner_parse(spec, report_dir, outcome):
    if spec.name != "legacy":
        return None
    ran = json.loads((Path(report_dir) / "r.json").read_text())
    return [TestResult(path=p, name="run", status=Status.PASSED) for p in ran]
"""

LEGACY_TOOLCHAIN = """
from dagpar_cli import Directory, check, collect_items, field, object_type, run_tests

@object_type(runner="legacy")
class LegacyFiles:
    workspace: Directory
    files: list[list[str]] = field()  # +parallel

    # +parallel
    def test(self) -> None:
        run_tests("legacy", self.workspace, self.files)

@object_type
class Legacy:
    source: Directory

    # +check
    def test(self) -> None:
        LegacyFiles(workspace=self.source, files=collect_items("legacy", self.source)).test()
"""


def test_a_dagpar_run_still_uses_a_runner_served_by_the_deprecated_hooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dagpar_run: Any
) -> None:
    write_tree(tmp_path / "plugins", {"legacy_runner_plugin.py": LEGACY_PLUGIN_MODULE})
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    monkeypatch.setenv("DAGPAR_PLUGINS", "legacy_runner_plugin")
    ws = write_tree(
        tmp_path / "ws",
        {
            "dagpar.yaml": "toolchains:\n  legacy: {use: ./ci/legacy.py, source: checks}\n",
            "ci/legacy.py": LEGACY_TOOLCHAIN,
            "checks/a.txt": "",
            "checks/b.txt": "",
        },
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result: DagparResult = dagpar_run("check", "-C", ws, "-j", "2", "--json")
    assert result.exit_code == 0, result
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    (check,) = result.json()["checks"]
    assert {t["id"]: t["status"] for t in check["tests"]} == {
        "checks/a.txt::run": "passed",
        "checks/b.txt::run": "passed",
    }


# ------------------------------------------------------------------------------------------
# plugins use the public surface only
# ------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = {"dagpar_cli", "dagpar_cli.testing"}


def _dagpar_imports(source: Path) -> set[str]:
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "dagpar_cli"}


@pytest.mark.parametrize(
    "package", ["plugins/pytest", "plugins/jest", "plugins/go", "tests/data/plugin-package"]
)
def test_runner_plugins_import_only_public_names(package: str) -> None:
    # The built-in runners register exactly as a third-party plugin would, through dagpar_cli.
    for source in sorted((ROOT / package).rglob("*.py")):
        assert _dagpar_imports(source) <= PUBLIC, source.relative_to(ROOT)
