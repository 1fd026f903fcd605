"""Reading ``dagpar.yaml`` into a Config: strict validation, errors with the key path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest
from config_fakes import FakeToolchains, plugin_manager  # type: ignore[import-not-found]

from dagpar_cli.config import Config, DockerEngine, ToolchainConfig
from dagpar_cli.config.loader import load_config
from dagpar_cli.errors import ConfigError, UsageError


@pytest.fixture
def fake() -> FakeToolchains:
    return FakeToolchains()


@pytest.fixture
def pm(fake: FakeToolchains) -> pluggy.PluginManager:
    return plugin_manager(fake)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


Load = Callable[[str], Config]


@pytest.fixture
def load(ws: Path, pm: pluggy.PluginManager) -> Load:
    """Write *text* as the workspace's dagpar.yaml and load it."""

    def run(text: str) -> Config:
        (ws / "dagpar.yaml").write_text(text, encoding="utf-8")
        return load_config(ws, pm)

    return run


@pytest.fixture
def error(ws: Path, load: Load) -> Callable[[str], str]:
    """Load *text*, expect a ConfigError that names the file, and return the rest."""

    def run(text: str) -> str:
        with pytest.raises(ConfigError) as info:
            load(text)
        message = str(info.value)
        prefix = f"{ws / 'dagpar.yaml'}: "
        assert message.startswith(prefix), message
        assert info.value.file is not None and info.value.file.startswith(str(ws / "dagpar.yaml"))
        return message[len(prefix) :]

    return run


# ---------------------------------------------------------------------------------------------
# A valid file
# ---------------------------------------------------------------------------------------------


def test_design_example_loads_every_key(ws: Path, load: Load) -> None:
    (ws / "web").mkdir()
    (ws / "api").mkdir()
    config = load(
        """
toolchains:
  frontend:            # instance name
    use: jsrun
    source: web
    image: node:20
  backend: {use: pytool, source: api, image: "python:3.12-slim"}
  pytool: {source: .}
executor: local
parallelism: auto
"""
    )
    assert config.workspace == ws.resolve()
    assert config.file == ws / "dagpar.yaml"
    assert config.executor == "local"
    assert config.engines == ()
    assert config.parallelism is None
    assert [t.instance for t in config.toolchains] == ["frontend", "backend", "pytool"]
    frontend = config.toolchain("frontend")
    assert frontend == ToolchainConfig(
        instance="frontend",
        use="jsrun",
        source="web",
        image="node:20",
        origin="toolchains.frontend",
    )
    assert config.toolchain("backend") == ToolchainConfig(
        instance="backend",
        use="pytool",
        source="api",
        image="python:3.12-slim",
        origin="toolchains.backend",
    )
    # `use` defaults to the instance name, and "." is the workspace root.
    pytool = config.toolchain("pytool")
    assert pytool is not None and pytool.use == "pytool" and pytool.source == ""


def test_null_entry_means_all_defaults(load: Load) -> None:
    config = load("toolchains:\n  jsrun:\n")
    assert config.toolchains == (
        ToolchainConfig(instance="jsrun", use="jsrun", origin="toolchains.jsrun"),
    )


def test_source_is_normalised(ws: Path, load: Load) -> None:
    (ws / "web" / "app").mkdir(parents=True)
    config = load("toolchains:\n  jsrun: {source: ./web//app/}\n  pytool: {source: web/..}\n")
    assert [t.source for t in config.toolchains] == ["web/app", ""]


def test_relative_workspace_becomes_absolute(
    ws: Path, pm: pluggy.PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ws / "dagpar.yaml").write_text("toolchains: {jsrun: }\n")
    monkeypatch.chdir(ws.parent)
    config = load_config(Path("ws"), pm)
    assert config.workspace == ws.resolve()
    assert config.workspace.is_absolute()


def test_runner_string_is_split_like_a_shell(load: Load) -> None:
    config = load(
        """toolchains:\n  pytool: {runner: "uv run 'py test' -x", args: "-p no:cacheprovider"}\n"""
    )
    (tool,) = config.toolchains
    assert tool.runner == ("uv", "run", "py test", "-x")
    assert tool.args == ("-p", "no:cacheprovider")


def test_runner_and_args_lists_accept_numbers(load: Load) -> None:
    config = load("toolchains:\n  pytool: {runner: [python3.12, -m, pytest], args: [-n, 4]}\n")
    (tool,) = config.toolchains
    assert tool.runner == ("python3.12", "-m", "pytest")
    assert tool.args == ("-n", "4")


def test_other_keys_become_overrides(load: Load) -> None:
    config = load(
        "toolchains:\n  pytool:\n    markers: not slow\n    workers: 3\n    strict: true\n"
        "    paths: [a, b, 1]\n    unset:\n"
    )
    (tool,) = config.toolchains
    assert dict(tool.overrides) == {
        "markers": "not slow",
        "workers": 3,
        "strict": True,
        "paths": ["a", "b", 1],
        "unset": None,
    }
    with pytest.raises(TypeError):
        tool.overrides["workers"] = 4  # type: ignore[index]


def test_toolchain_file_is_a_workspace_relative_path(ws: Path, load: Load) -> None:
    (ws / "ci").mkdir()
    (ws / "ci" / "lint.py").write_text("")
    config = load("toolchains:\n  lint: {use: ./ci/lint.py}\n")
    assert config.toolchains[0].use == "ci/lint.py"


@pytest.mark.parametrize(
    ("text", "executor", "engines"),
    [
        ("executor: local", "local", ()),
        ("executor: docker", "docker", ()),
        ("executor: {local: }", "local", ()),
        ("executor: {docker: }", "docker", ()),
        (
            "executor: {docker: {engines: ['unix:///var/run/docker.sock', 'ssh://ci@box']}}",
            "docker",
            (DockerEngine(url="unix:///var/run/docker.sock"), DockerEngine(url="ssh://ci@box")),
        ),
        (
            "executor:\n  docker:\n    engines:\n      - {url: 'tcp://a:2375', slots: 8}\n"
            "      - {url: ctx-b}\n",
            "docker",
            (DockerEngine(url="tcp://a:2375", slots=8), DockerEngine(url="ctx-b")),
        ),
    ],
)
def test_executor_forms(load: Load, text: str, executor: str, engines: tuple[DockerEngine]) -> None:
    config = load(f"toolchains: {{}}\n{text}\n")
    assert (config.executor, config.engines) == (executor, engines)


@pytest.mark.parametrize(
    ("value", "expected"), [("auto", None), ("4", 4), ("'4'", 4), ("1", 1), ("", None)]
)
def test_parallelism(load: Load, value: str, expected: int | None) -> None:
    assert load(f"toolchains: {{}}\nparallelism: {value}\n").parallelism == expected


# ---------------------------------------------------------------------------------------------
# Errors: each names the file and the key path
# ---------------------------------------------------------------------------------------------


def test_missing_source_directory(error: Callable[[str], str]) -> None:
    message = error("toolchains:\n  frontend: {use: jsrun, source: web}\n")
    assert message == "toolchains.frontend.source: directory 'web' does not exist"


def test_source_that_is_a_file(ws: Path, error: Callable[[str], str]) -> None:
    (ws / "web").write_text("")
    message = error("toolchains:\n  frontend: {use: jsrun, source: web}\n")
    assert message == "toolchains.frontend.source: 'web' is not a directory"


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("..", "is outside the workspace"),
        ("web/../../x", "is outside the workspace"),
        ("/etc", "is absolute"),
        ("C:/code", "is absolute"),
        ("''", "empty directory path"),
    ],
)
def test_source_must_stay_in_the_workspace(
    ws: Path, error: Callable[[str], str], source: str, problem: str
) -> None:
    (ws / "web").mkdir()
    message = error(f"toolchains:\n  frontend: {{use: jsrun, source: {source}}}\n")
    assert message.startswith("toolchains.frontend.source: ")
    assert problem in message


def test_source_symlink_out_of_the_workspace(ws: Path, error: Callable[[str], str]) -> None:
    outside = ws.parent / "outside"
    outside.mkdir()
    (ws / "web").symlink_to(outside)
    message = error("toolchains:\n  frontend: {use: jsrun, source: web}\n")
    assert message.startswith("toolchains.frontend.source: ")
    assert "outside the workspace" in message


@pytest.mark.parametrize(
    ("use", "problem"),
    [
        ("ci/lint.py", "toolchain file 'ci/lint.py' does not exist"),
        ("/abs/lint.py", "is absolute"),
        ("../lint.py", "is outside the workspace"),
    ],
)
def test_toolchain_file_errors(
    ws: Path, error: Callable[[str], str], use: str, problem: str
) -> None:
    (ws.parent / "lint.py").write_text("")
    message = error(f"toolchains:\n  lint: {{use: {use}}}\n")
    assert message.startswith("toolchains.lint.use: ")
    assert problem in message


def test_unknown_builtin_lists_known_names_and_suggests(error: Callable[[str], str]) -> None:
    message = error("toolchains:\n  web: {use: jsrum}\n")
    assert message.startswith("toolchains.web.use: unknown toolchain 'jsrum'")
    assert "did you mean 'jsrun'?" in message
    assert "jsrun" in message and "pytool" in message


def test_instance_name_defaults_use_and_is_checked(error: Callable[[str], str]) -> None:
    message = error("toolchains:\n  frontend:\n")
    assert message.startswith("toolchains.frontend.use: unknown toolchain 'frontend'")


def test_unknown_top_level_key_suggests(error: Callable[[str], str]) -> None:
    message = error("toolchain:\n  jsrun:\n")
    assert message.startswith("toolchain: unknown key; did you mean 'toolchains'?")
    assert "executor, parallelism, toolchains" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "toolchains:\n  backend: {use: pytool, source: [a, b]}\n",
            "toolchains.backend.source: expected a string, got a list",
        ),
        (
            "toolchains:\n  backend: {use: pytool, image: 3}\n",
            "toolchains.backend.image: expected a string, got a number",
        ),
        (
            "toolchains:\n  backend: {use: [pytool]}\n",
            "toolchains.backend.use: expected a string, got a list",
        ),
        (
            "toolchains:\n  backend: {use: pytool, runner: {cmd: x}}\n",
            "toolchains.backend.runner: expected a string or a list of strings, got a mapping",
        ),
        (
            "toolchains:\n  backend: {use: pytool, args: [-x, [y]]}\n",
            "toolchains.backend.args[1]: expected a string, got a list",
        ),
        (
            "toolchains:\n  backend: {use: pytool, markers: {a: 1}}\n",
            "toolchains.backend.markers: expected a scalar or a list of scalars, got a mapping",
        ),
        (
            "toolchains:\n  backend: {use: pytool, paths: [a, {b: 1}]}\n",
            "toolchains.backend.paths[1]: expected a scalar (string, number, boolean), "
            "got a mapping",
        ),
        (
            "toolchains:\n  backend: {use: pytool, when: 2024-01-02}\n",
            "toolchains.backend.when: expected a scalar or a list of scalars, "
            "got a date (quote it to make it a string)",
        ),
        ("toolchains: [pytool]\n", "toolchains: expected a mapping, got a list"),
        (
            "toolchains:\n  backend: pytool\n",
            "toolchains.backend: expected a mapping such as {use: pytool}, got a string",
        ),
        ("toolchains:\n  1: {}\n", "toolchains.1: keys must be strings, got a number"),
        (
            "toolchains:\n  backend: {1: x}\n",
            "toolchains.backend.1: keys must be strings, got a number",
        ),
        ("parallelism: 0\n", "parallelism: expected a positive integer, got 0"),
        ("parallelism: -2\n", "parallelism: expected a positive integer, got -2"),
        (
            "parallelism: true\n",
            "parallelism: expected 'auto' or a positive integer, got a boolean",
        ),
        ("parallelism: 1.5\n", "parallelism: expected 'auto' or a positive integer, got a number"),
        ("parallelism: many\n", "parallelism: expected 'auto' or a positive integer, got 'many'"),
        (
            "executor: dokcer\n",
            "executor: expected 'local' or 'docker', got 'dokcer'; did you mean 'docker'?",
        ),
        (
            "executor: 3\n",
            "executor: expected 'local', 'docker' or a mapping like "
            "{docker: {engines: [...]}}, got a number",
        ),
        ("executor: {local: {x: 1}}\n", "executor.local: the local executor takes no options"),
        ("executor: {local: , docker: }\n", "executor: name exactly one executor, got 2"),
        (
            "executor: {docker: {engine: []}}\n",
            "executor.docker.engine: unknown key; did you mean 'engines'? (known keys: engines)",
        ),
        (
            "executor: {docker: {engines: [{slots: 2}]}}\n",
            "executor.docker.engines[0]: missing 'url' "
            "(unix://, tcp://, ssh:// or a docker context name)",
        ),
        (
            "executor: {docker: {engines: [{url: x, slots: 0}]}}\n",
            "executor.docker.engines[0].slots: expected a positive integer, got 0",
        ),
        (
            "executor: {docker: {engines: [{url: x, slot: 2}]}}\n",
            "executor.docker.engines[0].slot: unknown key; did you mean 'slots'? "
            "(known keys: slots, url)",
        ),
        (
            "executor: {docker: {engines: [3]}}\n",
            "executor.docker.engines[0]: expected a URL or a mapping {url, slots}, got a number",
        ),
        ("executor: {docker: {engines: ['  ']}}\n", "executor.docker.engines[0]: empty engine URL"),
        (
            "executor: {kubernetes: }\n",
            "executor.kubernetes: unknown key (known keys: docker, local)",
        ),
    ],
)
def test_wrong_types_name_the_key_path(
    error: Callable[[str], str], text: str, expected: str
) -> None:
    assert error(text) == expected


def test_top_level_must_be_a_mapping(error: Callable[[str], str]) -> None:
    assert error("- toolchains\n") == "expected a mapping at the top level, got a list"


@pytest.mark.parametrize("name", ["1abc", "a b", "a.b", "-x", "é"])
def test_invalid_instance_names(error: Callable[[str], str], name: str) -> None:
    message = error(f"toolchains:\n  '{name}': {{use: pytool}}\n")
    assert message.startswith(f"toolchains.{name}: invalid instance name")


def test_runner_with_unbalanced_quote(error: Callable[[str], str]) -> None:
    message = error('toolchains:\n  pytool: {runner: "uv run \'pytest"}\n')
    assert message.startswith("toolchains.pytool.runner: cannot split")


def test_empty_runner(error: Callable[[str], str]) -> None:
    assert error("toolchains:\n  pytool: {runner: []}\n") == (
        "toolchains.pytool.runner: empty command: give the program that starts the runner"
    )


def test_yaml_syntax_error_names_line_and_column(ws: Path, load: Load) -> None:
    with pytest.raises(ConfigError) as info:
        load("toolchains:\n  jsrun: {source: web\nexecutor: local\n")
    message = str(info.value)
    assert message.startswith(f"{ws / 'dagpar.yaml'}:3:")
    assert "invalid YAML" in message


def test_tab_indentation_names_the_position(ws: Path, load: Load) -> None:
    with pytest.raises(ConfigError) as info:
        load("toolchains:\n\tjsrun: {}\n")
    assert str(info.value).startswith(f"{ws / 'dagpar.yaml'}:2:1: invalid YAML")


def test_duplicate_instance_is_an_error_not_a_silent_override(ws: Path, load: Load) -> None:
    with pytest.raises(ConfigError) as info:
        load("toolchains:\n  jsrun: {}\n  pytool: {}\n  jsrun: {source: .}\n")
    assert str(info.value) == (
        f"{ws / 'dagpar.yaml'}:4:3: invalid YAML: found duplicate key 'jsrun'"
    )


def test_merge_keys_may_be_overridden(ws: Path, load: Load) -> None:
    (ws / "api").mkdir()
    config = load(
        "toolchains:\n"
        "  a: &base {use: pytool, image: py, source: api}\n"
        "  c: {<<: *base}\n"
        "  b: {<<: *base, image: other}\n"
    )
    c = config.toolchain("c")
    b = config.toolchain("b")
    assert c is not None and (c.use, c.image, c.source) == ("pytool", "py", "api")
    assert b is not None and (b.use, b.image, b.source) == ("pytool", "other", "api")


def test_not_utf8(ws: Path, pm: pluggy.PluginManager) -> None:
    (ws / "dagpar.yaml").write_bytes(b"toolchains:\n  caf\xe9: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(ws, pm)
    assert str(info.value).startswith(f"{ws / 'dagpar.yaml'}: is not UTF-8 text")


def test_impossible_date_is_a_config_error(ws: Path, load: Load) -> None:
    with pytest.raises(ConfigError) as info:
        load("toolchains: {pytool: {since: 2024-13-45}}\n")
    assert str(info.value).startswith(f"{ws / 'dagpar.yaml'}: invalid YAML value")


def test_dagpar_yml_is_called_out(ws: Path, pm: pluggy.PluginManager) -> None:
    (ws / "dagpar.yml").write_text("toolchains: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(ws, pm)
    assert (
        str(info.value)
        == f"{ws / 'dagpar.yml'}: dagpar reads dagpar.yaml, not dagpar.yml: rename the file"
    )


def test_missing_workspace(tmp_path: Path, pm: pluggy.PluginManager) -> None:
    with pytest.raises(UsageError) as info:
        load_config(tmp_path / "nope", pm)
    assert str(info.value) == f"workspace '{tmp_path / 'nope'}' does not exist (-C/--workspace)"
    assert not isinstance(info.value, ConfigError)


def test_workspace_that_is_a_file(tmp_path: Path, pm: pluggy.PluginManager) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(UsageError, match="is not a directory"):
        load_config(tmp_path / "f", pm)


# ---------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------


def test_real_plugin_manager_is_used_when_available(ws: Path) -> None:
    # Whatever the installed plugins detect, loading a file naming the fake toolchains works
    # through the same plugin manager the CLI builds.
    (ws / "dagpar.yaml").write_text("toolchains: {pytool: }\n")
    config = load_config(ws, plugin_manager(FakeToolchains()))
    assert [t.use for t in config.toolchains] == ["pytool"]


def test_unreadable_file(
    ws: Path, pm: pluggy.PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ws / "dagpar.yaml"
    path.write_text("toolchains: {}\n")
    real_read_text = Path.read_text

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        # chmod cannot stop root (CI runs as root): refuse the read the way the OS would.
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(ws, pm)


def test_a_file_without_toolchains_leaves_them_to_detection(
    ws: Path, pm: pluggy.PluginManager
) -> None:
    (ws / "dagpar.yaml").write_text("executor: docker\n")
    config = load_config(ws, pm)
    assert config.detect and config.toolchains == ()
    (ws / "dagpar.yaml").write_text("toolchains: {}\n")
    assert not load_config(ws, pm).detect
    (ws / "dagpar.yaml").unlink()
    assert load_config(ws, pm) == Config(
        workspace=ws.resolve(), file=None, toolchains=(), detect=True
    )


def test_loading_asks_no_plugin_to_detect(
    ws: Path, fake: FakeToolchains, pm: pluggy.PluginManager
) -> None:
    load_config(ws, pm)
    assert fake.detect_calls == []


CONTROL_CHARACTERS = {
    "raw SOH in a value": 'executor: "lo\x01cal"\n',
    "raw ESC in a plain value": "executor: lo\x1bcal\n",
    "raw DEL": "toolchains:\n  pytool: {image: py\x7f}\n",
    "newline in a key": 'toolchains:\n  "a\\nb": {}\n',
    "SOH in an unknown key": '"zz\\x01": 1\n',
    "line separator in a name": 'toolchains:\n  pytool: {use: "py\\u2028tool"}\n',
    "NEL in a source": 'toolchains:\n  pytool: {source: "a\\x85b"}\n',
    "carriage return in a file name": 'toolchains:\n  pytool: {use: "ci/\\rlint.py"}\n',
    "ESC in a top-level key": '"\\e[31mred": 1\n',
}


@pytest.mark.parametrize("text", CONTROL_CHARACTERS.values(), ids=CONTROL_CHARACTERS.keys())
def test_an_error_about_control_characters_is_one_printable_line(load: Load, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(text)
    message = str(info.value)
    assert len(message.splitlines()) == 1, repr(message)
    assert all(c.isprintable() for c in message), repr(message)


def test_an_unacceptable_character_is_named_with_its_line_and_column(ws: Path, load: Load) -> None:
    with pytest.raises(ConfigError) as info:
        load('toolchains: {}\nexecutor: "lo\x01cal"\n')
    assert str(info.value) == (
        f"{ws / 'dagpar.yaml'}:2:14: invalid YAML: unacceptable character #x0001: "
        "special characters are not allowed"
    )


def test_a_key_with_a_newline_is_shown_escaped(error: Callable[[str], str]) -> None:
    assert error('toolchains:\n  "a\\nb": {}\n').startswith(r"toolchains.a\nb: invalid instance")


# ---------------------------------------------------------------------------------------------
# env: and matrix:
# ---------------------------------------------------------------------------------------------


def test_env_and_matrix_keys(load: Load) -> None:
    config = load(
        "toolchains:\n  pytool:\n    env: {A: 1, B: x, C: true}\n    matrix:\n"
        "      image: [py:3.11, py:3.12]\n      runner: ['.venv311/bin/python -m pytest',"
        " [uv, run, pytest]]\n      env: [{FLAVOUR: a}, {FLAVOUR: b, A: 2}]\n"
    )
    (tool,) = config.toolchains
    assert dict(tool.env) == {"A": "1", "B": "x", "C": "true"}
    image, runner, env = tool.matrix
    assert (image.key, image.labels) == ("image", ("py:3.11", "py:3.12"))
    assert runner.values == ((".venv311/bin/python", "-m", "pytest"), ("uv", "run", "pytest"))
    assert runner.labels == (".venv311/bin/python -m pytest", "uv run pytest")
    assert env.labels == ("FLAVOUR=a", "FLAVOUR=b,A=2")
    chosen = tool.with_values({"image": "py:3.12", "env": "FLAVOUR=b,A=2"})
    assert chosen.image == "py:3.12" and chosen.runner is None
    assert dict(chosen.env) == {"A": "2", "B": "x", "C": "true", "FLAVOUR": "b"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "matrix: {imgae: [a]}",
            "toolchains.pytool.matrix.imgae: a matrix varies image, runner, "
            "args, env; did you mean 'image'?",
        ),
        ("matrix: {image: []}", "toolchains.pytool.matrix.image: expected a non-empty list"),
        ("matrix: {image: [a, a]}", "toolchains.pytool.matrix.image[1]: 'a' is listed twice"),
        ("matrix: {env: [x]}", "toolchains.pytool.matrix.env[0]: expected a mapping"),
        ("matrix: [image]", "toolchains.pytool.matrix: expected a mapping"),
        ("env: {A: [1]}", "toolchains.pytool.env.A: expected a string or a number"),
        ("env: [A]", "toolchains.pytool.env: expected a mapping"),
    ],
)
def test_env_and_matrix_errors(error: Callable[[str], str], text: str, expected: str) -> None:
    message = error(f"toolchains:\n  pytool: {{{text}}}\n")
    assert message.startswith(expected), message
