"""Stage 1: reading ``dagpar.yaml`` into a :class:`~dagpar_cli.config.Config`.

Validation is strict and explains itself: every problem raises
:class:`~dagpar_cli.errors.ConfigError` naming the file and the dotted key path, says what was
expected and what was found, and suggests the closest known key when a name is misspelt.

Layout rules (DESIGN.md §3):

- ``toolchains`` maps instance names to entries; an entry may be empty (``go:``) for all defaults.
  When the key is absent (or null), the configuration says the toolchains are to be detected
  (``Config.detect``), as if there were no file, so a file holding only ``executor: docker``
  still finds the workspace's suites; discovery does the detecting.
- ``executor`` is ``local``, ``docker``, or ``{docker: {engines: [...]}}``.
- ``parallelism`` is ``auto`` or a positive integer.
"""

from __future__ import annotations

import difflib
import functools
import posixpath
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn

from dagpar_cli.config.model import (
    CONFIG_FILE,
    MATRIX_KEYS,
    Config,
    DockerEngine,
    MatrixKey,
    ToolchainConfig,
)
from dagpar_cli.errors import ConfigError, UsageError

if TYPE_CHECKING:
    import pluggy
    import yaml

    from dagpar_cli.pluginmanager import ToolchainRegistry

__all__ = ["INSTANCE_NAME", "load_config", "loads", "parse_yaml", "toolchain_entry", "yaml_kind"]

#: What a toolchain instance name looks like (it is typed on the command line as ``NAME:check``).
INSTANCE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")

_TOP_KEYS = ("toolchains", "executor", "parallelism")
_ENTRY_KEYS = ("use", "source", "image", "runner", "args", "env", "matrix")
_EXECUTORS = ("local", "docker")
_DOCKER_KEYS = ("engines",)
_ENGINE_KEYS = ("url", "slots")
#: Near-misses of the file name that dagpar does not read; finding one is almost surely a mistake.
_WRONG_NAMES = ("dagpar.yml", "Dagpar.yaml", ".dagpar.yaml")


def load_config(workspace: Path, pm: pluggy.PluginManager) -> Config:
    """Read ``dagpar.yaml`` at *workspace*; without one, a configuration of defaults.

    :param workspace: the workspace root, as the user gave it (``-C/--workspace``).
    :param pm: the plugin manager: its toolchain registry validates ``use:`` names.
    :returns: the validated configuration; ``Config.detect`` says when the file lists no
        toolchains (or there is none), for :func:`dagpar_cli.discovery.detect_toolchains`.
    :raises UsageError: when *workspace* is not a directory.
    :raises ConfigError: at the first problem, naming the file and the key path.
    """
    if not workspace.is_dir():
        what = "is not a directory" if workspace.exists() else "does not exist"
        raise UsageError(f"workspace '{workspace}' {what} (-C/--workspace)")
    root = workspace.resolve()
    path = workspace / CONFIG_FILE
    if not path.is_file():
        if path.exists():
            raise _error("is not a file", file=str(path))
        for wrong in _WRONG_NAMES:
            # A listing, not exists(): on a case-insensitive file system "Dagpar.yaml" would
            # otherwise find dagpar.yaml itself.
            if wrong in _listdir(workspace):
                raise _error(
                    f"dagpar reads {CONFIG_FILE}, not {wrong}: rename the file",
                    file=str(workspace / wrong),
                )
        return Config(workspace=root, file=None, toolchains=(), detect=True)
    return loads(_read_text(path), workspace, pm, file=path)


def loads(
    text: str, workspace: Path, pm: pluggy.PluginManager, *, file: Path | None = None
) -> Config:
    """Validate *text* as the content of ``dagpar.yaml`` in *workspace* (which must exist).

    :param text: the YAML document.
    :param workspace: the workspace root that relative paths in *text* refer to.
    :param pm: the plugin manager, as for :func:`load_config`.
    :param file: the file *text* came from (for messages and ``Config.file``); defaults to
        ``dagpar.yaml`` in *workspace*.
    :raises ConfigError: at the first problem, naming the file and the key path.
    """
    path = workspace / CONFIG_FILE if file is None else file
    return _Parser(workspace.resolve(), path, pm).config(parse_yaml(text, str(path)))


def _printable(text: str) -> str:
    """*text* with every character that is not printable escaped (``\\n``, ``\\x01``,
    ``\\u2028``): a key or value from the file must not break the error's single line, nor
    send escape sequences to the terminal."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in text
    )


def _error(message: str, *, key: str = "", file: str | None = None) -> ConfigError:
    """The :class:`ConfigError` for *message*, every part of it printable on one line."""
    return ConfigError(
        _printable(message), key=_printable(key), file=None if file is None else _printable(file)
    )


def _listdir(directory: Path) -> set[str]:
    try:
        return {p.name for p in directory.iterdir()}
    except OSError:
        return set()


# ---------------------------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------------------------


@functools.cache
def _strict_loader() -> type[yaml.SafeLoader]:
    """The loader class, made on first use: a workspace without ``dagpar.yaml`` (and a command
    that reads none) never imports the YAML library."""
    import yaml

    class _StrictLoader(yaml.SafeLoader):
        """``yaml.SafeLoader`` that rejects a key given twice in one mapping.

        Plain ``safe_load`` keeps the last value silently, which turns a copy-pasted toolchain
        entry into a toolchain that quietly disappears.
        """

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            """Construct *node* as the safe loader does, after checking its keys are distinct."""
            seen: set[tuple[type, Any]] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` keys may be overridden; that is the point of them
                key = self.construct_object(key_node, deep=True)
                try:
                    # The type is part of the identity so that 1 and true, which compare equal
                    # in Python, are not reported as duplicates of each other.
                    marker = (type(key), key)
                    hash(marker)
                except TypeError:
                    continue  # the base class reports unhashable keys with their position
                if marker in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key!r}",
                        key_node.start_mark,
                    )
                seen.add(marker)
            return super().construct_mapping(node, deep=deep)

    return _StrictLoader


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _error(
            f"is not UTF-8 text ({exc.reason} at byte {exc.start})", file=str(path)
        ) from None
    except OSError as exc:
        raise _error(f"cannot be read: {exc.strerror or exc}", file=str(path)) from None
    return text


def parse_yaml(text: str, file: str) -> Any:
    """Parse *text* as the YAML content of *file*, duplicate keys rejected.

    :param text: the file's content.
    :param file: the name used in error messages.
    :raises ConfigError: naming ``file:line:column`` for a syntax error.
    """
    import yaml

    try:
        # A SafeLoader subclass: no arbitrary objects.
        return yaml.load(text, Loader=_strict_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark is not None else file
        problem = exc.problem or exc.context or "syntax error"
        raise _error(f"invalid YAML: {problem}", file=where) from None
    except yaml.reader.ReaderError as exc:
        # A character YAML does not allow carries a position, not a mark, and its text spans
        # two lines: say where it is, as the other syntax errors do.
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        what = (
            f"unacceptable character #x{exc.character:04x}"
            if isinstance(exc.character, int)
            else "undecodable input"
        )
        where = f"{file}:{line}:{column}"
        raise _error(f"invalid YAML: {what}: {exc.reason}", file=where) from None
    except yaml.YAMLError as exc:
        raise _error(f"invalid YAML: {exc}", file=file) from None
    except RecursionError:
        raise _error("invalid YAML: nested too deeply", file=file) from None
    except (ValueError, OverflowError) as exc:
        # The safe constructor raises these for values that look like timestamps but are not
        # dates (2024-13-45).
        raise _error(f"invalid YAML value: {exc}", file=file) from None


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def yaml_kind(value: Any) -> str:
    """How an error message names the YAML type of *value* (``a string``, ``a list``...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, datetime | date):
        return "a date (quote it to make it a string)"
    if isinstance(value, bytes):
        return "binary data"
    return type(value).__name__


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else repr(key)


class _Parser:
    """Validates the parsed YAML of one file; every error names *file* and the key path."""

    def __init__(self, root: Path, file: Path, pm: pluggy.PluginManager) -> None:
        self.root = root
        self.file = file
        self.pm = pm
        self._registry: ToolchainRegistry | None = None

    def fail(self, key: str, message: str) -> NoReturn:
        raise _error(message, key=key, file=str(self.file))

    def expect(self, key: str, value: Any, expected: str) -> NoReturn:
        self.fail(key, f"expected {expected}, got {yaml_kind(value)}")

    def mapping(self, key: str, value: Any, known: tuple[str, ...] | None) -> dict[str, Any]:
        """*value* as a mapping with string keys, each one of *known* when given."""
        if not isinstance(value, Mapping):
            self.expect(key, value, "a mapping")
        for k in value:
            where = f"{key}.{_key_text(k)}" if key else _key_text(k)
            if not isinstance(k, str):
                self.fail(where, f"keys must be strings, got {yaml_kind(k)}")
            if known is not None and k not in known:
                self.fail(
                    where,
                    f"unknown key{_did_you_mean(k, known)} "
                    f"(known keys: {', '.join(sorted(known))})",
                )
        return dict(value)

    def config(self, data: Any) -> Config:
        """The configuration of the parsed document *data*."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            self.fail("", f"expected a mapping at the top level, got {yaml_kind(data)}")
        top = self.mapping("", data, _TOP_KEYS)
        executor, engines = self.executor(top.get("executor"))
        parallelism = self.parallelism(top.get("parallelism"))
        detect = top.get("toolchains") is None
        return Config(
            workspace=self.root,
            file=self.file,
            toolchains=() if detect else self.toolchains(top["toolchains"]),
            executor=executor,
            engines=engines,
            parallelism=parallelism,
            detect=detect,
        )

    # -- executor / parallelism -----------------------------------------------------------------

    def executor(self, value: Any) -> tuple[str, tuple[DockerEngine, ...]]:
        key = "executor"
        if value is None:
            return "local", ()
        if isinstance(value, str):
            if value not in _EXECUTORS:
                self.fail(
                    key,
                    f"expected 'local' or 'docker', got {value!r}"
                    f"{_did_you_mean(value, _EXECUTORS)}",
                )
            return value, ()
        if not isinstance(value, Mapping):
            self.expect(
                key, value, "'local', 'docker' or a mapping like {docker: {engines: [...]}}"
            )
        entries = self.mapping(key, value, _EXECUTORS)
        if len(entries) != 1:
            self.fail(key, f"name exactly one executor, got {len(entries)}")
        name, options = next(iter(entries.items()))
        if name == "local":
            if options is not None and options != {}:
                self.fail(f"{key}.local", "the local executor takes no options")
            return "local", ()
        if options is None:
            return "docker", ()
        docker = self.mapping(f"{key}.docker", options, _DOCKER_KEYS)
        return "docker", self.engines(f"{key}.docker.engines", docker.get("engines"))

    def engines(self, key: str, value: Any) -> tuple[DockerEngine, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]  # one engine needs no list
        if not isinstance(value, list):
            self.expect(key, value, "a list of engines")
        engines: list[DockerEngine] = []
        for i, entry in enumerate(value):
            where = f"{key}[{i}]"
            if isinstance(entry, str):
                engines.append(DockerEngine(url=self.url(where, entry)))
                continue
            if not isinstance(entry, Mapping):
                self.expect(where, entry, "a URL or a mapping {url, slots}")
            fields = self.mapping(where, entry, _ENGINE_KEYS)
            if "url" not in fields:
                self.fail(where, "missing 'url' (unix://, tcp://, ssh:// or a docker context name)")
            engines.append(
                DockerEngine(
                    url=self.url(f"{where}.url", fields["url"]),
                    slots=self.positive(f"{where}.slots", fields.get("slots"), allow_auto=True),
                )
            )
        return tuple(engines)

    def url(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            self.expect(key, value, "a string")
        if not value.strip():
            self.fail(key, "empty engine URL")
        return value

    def parallelism(self, value: Any) -> int | None:
        return self.positive("parallelism", value, allow_auto=True)

    def positive(self, key: str, value: Any, *, allow_auto: bool) -> int | None:
        """A positive integer, or None for null (and ``auto`` when *allow_auto*)."""
        if value is None or (allow_auto and value == "auto"):
            return None
        if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            expected = "'auto' or a positive integer" if allow_auto else "a positive integer"
            got = repr(value) if isinstance(value, str) else yaml_kind(value)
            self.fail(key, f"expected {expected}, got {got}")
        if value < 1:
            self.fail(key, f"expected a positive integer, got {value}")
        return value

    # -- toolchains -----------------------------------------------------------------------------

    def toolchains(self, value: Any) -> tuple[ToolchainConfig, ...]:
        entries = self.mapping("toolchains", value, None)
        result: list[ToolchainConfig] = []
        for instance, entry in entries.items():
            key = f"toolchains.{instance}"
            if not INSTANCE_NAME.fullmatch(instance):
                self.fail(
                    key,
                    "invalid instance name: use a letter followed by letters, digits, '-' or '_'",
                )
            result.append(
                toolchain_entry(
                    instance,
                    entry,
                    key=key,
                    origin=key,
                    root=self.root,
                    registry=self.registry,
                    fail=self.fail,
                )
            )
        return tuple(result)

    def registry(self) -> ToolchainRegistry:
        if self._registry is None:
            from dagpar_cli.pluginmanager import toolchain_registry

            self._registry = toolchain_registry(self.pm)
        return self._registry


_Fail = Callable[[str, str], NoReturn]


def toolchain_entry(
    instance: str,
    value: Any,
    *,
    key: str,
    origin: str,
    root: Path,
    registry: Callable[[], ToolchainRegistry],
    fail: Callable[[str, str], NoReturn],
) -> ToolchainConfig:
    """Validate one toolchain entry, from the file or from detection.

    :param instance: the instance name.
    :param value: the entry as parsed (a mapping, or None for all defaults).
    :param key: its key path, for messages (``toolchains.frontend``).
    :param origin: where it came from (:attr:`ToolchainConfig.origin`).
    :param root: the workspace root that ``source`` and ``use`` paths are relative to.
    :param registry: returns the toolchain registry (called only for a ``use:`` name).
    :param fail: raises the error for a key path and a message.
    """
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        hint = f" such as {{use: {value}}}" if isinstance(value, str) else ""
        fail(key, f"expected a mapping{hint}, got {yaml_kind(value)}")
    overrides: dict[str, Any] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            fail(f"{key}.{_key_text(k)}", f"keys must be strings, got {yaml_kind(k)}")
        if k not in _ENTRY_KEYS:
            overrides[k] = _override(f"{key}.{k}", v, fail)
    use = _use(f"{key}.use", value.get("use"), instance, root, registry, fail)
    source = _source(f"{key}.source", value.get("source"), root, fail)
    image = value.get("image")
    if image is not None and (not isinstance(image, str) or not image.strip()):
        if isinstance(image, str):
            fail(f"{key}.image", "empty image name")
        fail(f"{key}.image", f"expected a string, got {yaml_kind(image)}")
    runner = _argv(f"{key}.runner", value.get("runner"), fail)
    if runner is not None and not runner:
        fail(f"{key}.runner", "empty command: give the program that starts the runner")
    args = _argv(f"{key}.args", value.get("args"), fail) or ()
    env = _env(f"{key}.env", value.get("env"), fail)
    return ToolchainConfig(
        instance=instance,
        use=use,
        source=source,
        image=image,
        runner=runner,
        args=args,
        overrides=MappingProxyType(overrides),
        origin=origin,
        env=MappingProxyType(env),
        matrix=_matrix(f"{key}.matrix", value.get("matrix"), fail),
    )


def _env(key: str, value: Any, fail: _Fail) -> dict[str, str]:
    """``env:``: variable names to scalar values (kept as strings)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        fail(key, f"expected a mapping of variable names to values, got {yaml_kind(value)}")
    env: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            fail(f"{key}.{_key_text(name)}", "expected a variable name (no '=')")
        if item is None or not isinstance(item, _SCALARS):
            fail(f"{key}.{name}", f"expected a string or a number, got {yaml_kind(item)}")
        env[name] = str(item).lower() if isinstance(item, bool) else str(item)
    return env


def _matrix(key: str, value: Any, fail: _Fail) -> tuple[MatrixKey, ...]:
    """``matrix:``: per key (image, runner, args, env) a non-empty list of values."""
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not value:
        fail(key, f"expected a mapping such as {{image: [a, b]}}, got {yaml_kind(value)}")
    keys: list[MatrixKey] = []
    for name, values in value.items():
        where = f"{key}.{_key_text(name)}"
        if name not in MATRIX_KEYS:
            fail(
                where,
                f"a matrix varies {', '.join(MATRIX_KEYS)}{_did_you_mean(str(name), MATRIX_KEYS)}",
            )
        if not isinstance(values, list) or not values:
            fail(where, f"expected a non-empty list of values, got {yaml_kind(values)}")
        parsed: list[Any] = []
        labels: list[str] = []
        for i, item in enumerate(values):
            at = f"{where}[{i}]"
            if name == "image":
                if not isinstance(item, str) or not item.strip():
                    fail(at, f"expected an image name, got {yaml_kind(item)}")
                parsed.append(item)
                labels.append(item)
            elif name == "env":
                env = _env(at, item, fail)
                parsed.append(MappingProxyType(env))
                labels.append(",".join(f"{k}={v}" for k, v in env.items()))
            else:
                argv = _argv(at, item, fail)
                if not argv and name == "runner":
                    fail(at, "empty command: give the program that starts the runner")
                parsed.append(argv or ())
                labels.append(shlex.join(argv or ()))
            if labels[-1] in labels[:-1]:
                fail(at, f"{labels[-1]!r} is listed twice")
        keys.append(MatrixKey(name, tuple(parsed), tuple(labels)))
    return tuple(keys)


def _use(
    key: str,
    value: Any,
    instance: str,
    root: Path,
    registry: Callable[[], ToolchainRegistry],
    fail: _Fail,
) -> str:
    if value is not None and not isinstance(value, str):
        fail(key, f"expected a string, got {yaml_kind(value)}")
    name: str = instance if value is None else value
    if name.endswith(".py"):
        path = _inside(key, name, root, fail, what="file")
        if not _is(root / path, "file"):
            fail(key, f"toolchain file '{name}' does not exist")
        return path
    if registry().get(name) is None:
        known = list(registry())
        listing = ", ".join(known) if known else "none are installed"
        fail(
            key,
            f"unknown toolchain '{name}'{_did_you_mean(name, known)} (built-in toolchains: "
            f"{listing}; a toolchain file is a path ending in .py)",
        )
    return name


def _source(key: str, value: Any, root: Path, fail: _Fail) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        fail(key, f"expected a string, got {yaml_kind(value)}")
    path = _inside(key, value, root, fail, what="directory")
    if path and not _is(root / path, "dir"):
        if _is(root / path, "exists"):
            fail(key, f"'{value}' is not a directory")
        fail(key, f"directory '{value}' does not exist")
    return path


def _inside(key: str, value: str, root: Path, fail: _Fail, *, what: str) -> str:
    """*value* as a normalised workspace-relative POSIX path (``""`` for the root).

    Rejects absolute paths and paths that leave the workspace, lexically (``..``) or through a
    symbolic link: the docker executor mounts only the workspace, so nothing outside it exists
    for a slice.
    """
    if not value.strip():
        fail(key, f"empty {what} path (use '.' for the workspace root)")
    if "\0" in value:
        fail(key, f"{what} path contains a NUL character")
    if value.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[\\/]", value):
        fail(key, f"{what} '{value}' is absolute: give it relative to the workspace root")
    norm = posixpath.normpath(value)
    if norm == ".." or norm.startswith("../"):
        fail(key, f"{what} '{value}' is outside the workspace")
    norm = "" if norm == "." else norm
    try:
        real = (root / norm).resolve()
        escapes = real != root and root not in real.parents
    except (OSError, RuntimeError, ValueError):
        escapes = False  # unresolvable: the existence check that follows reports it
    if escapes:
        fail(key, f"{what} '{value}' leads outside the workspace (through a symbolic link)")
    return norm


def _is(path: Path, what: str) -> bool:
    """Whether *path* is a ``file``, a ``dir``, or ``exists``; False when it cannot be checked."""
    try:
        if what == "file":
            return path.is_file()
        if what == "dir":
            return path.is_dir()
        return path.exists()
    except (OSError, ValueError):  # too long a name, an embedded NUL, no permission
        return False


def _argv(key: str, value: Any, fail: _Fail) -> tuple[str, ...] | None:
    """A command line: a string split like a shell would, or a list of strings."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            fail(key, f"cannot split {value!r} like a shell would: {exc}")
    if not isinstance(value, list):
        fail(key, f"expected a string or a list of strings, got {yaml_kind(value)}")
    words: list[str] = []
    for i, word in enumerate(value):
        # Numbers are accepted because YAML turns `[-n, 4]` into a string and an int.
        if isinstance(word, bool) or not isinstance(word, str | int | float):
            fail(f"{key}[{i}]", f"expected a string, got {yaml_kind(word)}")
        words.append(str(word))
    return tuple(words)


_SCALARS = (str, int, float, bool)


def _override(key: str, value: Any, fail: _Fail) -> Any:
    """A constructor argument: a scalar or a list of scalars (names are checked at discovery)."""
    if value is None or isinstance(value, _SCALARS):
        return value
    if isinstance(value, list):
        for i, item in enumerate(value):
            if item is not None and not isinstance(item, _SCALARS):
                fail(
                    f"{key}[{i}]",
                    f"expected a scalar (string, number, boolean), got {yaml_kind(item)}",
                )
        return list(value)
    fail(key, f"expected a scalar or a list of scalars, got {yaml_kind(value)}")
