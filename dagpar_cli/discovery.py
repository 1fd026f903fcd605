"""Stage 2: toolchain discovery — detect toolchains, load each one and check its definitions.

Without toolchains in ``dagpar.yaml``, :func:`detect_toolchains` asks the plugins which suites
the workspace holds (``dagpar_detect_toolchains``); :func:`discover` then loads every toolchain.

A toolchain is a Python module; its main class is named after the module in PascalCase
(``jest.py`` → ``Jest``, ``my_lint.py`` → ``MyLint``). Every ``@object_type`` class the module
defines is checked here, before anything runs, and the first definition error is raised with
its file:line.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import posixpath
import re
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

import pluggy

from dagpar_cli.config import Config, ToolchainConfig
from dagpar_cli.config.loader import toolchain_entry, yaml_kind
from dagpar_cli.errors import ConfigError, DagparError, ToolchainError
from dagpar_cli.interrupts import SignalInterrupt
from dagpar_cli.pluginmanager import toolchain_registry
from dagpar_cli.sdk.directory import Directory
from dagpar_cli.sdk.types import TypeDef, typedef_of

if TYPE_CHECKING:
    from dagpar_cli.pluginmanager import ToolchainRegistry

__all__ = ["Toolchain", "detect_toolchains", "discover", "main_class_name"]


@dataclass(slots=True, kw_only=True)
class Toolchain:
    """A loaded, checked toolchain instance."""

    config: ToolchainConfig
    module: ModuleType
    #: The main class's type definition.
    main: TypeDef
    #: Every object type the module defines, by class name.
    types: dict[str, TypeDef] = field(default_factory=dict)
    #: Where the module came from (a built-in name or a file).
    origin: str = ""

    @property
    def instance(self) -> str:
        """The instance name (``frontend``)."""
        return self.config.instance

    def checks(self) -> list[str]:
        """The main class's ``+check`` functions, as ``instance:function-name``."""
        return [f"{self.instance}:{f.kebab}" for f in self.main.functions if f.check]

    def instantiate(self, workspace: Path) -> Any:
        """The main object, its fields filled from ``dagpar.yaml``.

        ``Directory`` fields get the toolchain's ``source``; other fields take the entry's
        overrides (and ``image``, when the class has such a field).

        :raises ConfigError: an override names no field, or a required field has no value.
        :raises ToolchainError: the class's own code raised (even ``SystemExit``).
        """
        cfg = self.config
        source_dir = (workspace / cfg.source) if cfg.source else workspace
        kwargs: dict[str, Any] = {}
        names = {f.name for f in self.main.fields}
        key = cfg.origin or f"toolchains.{cfg.instance}"
        for name, value in cfg.overrides.items():
            py = name.replace("-", "_")
            if py not in names:
                close = difflib.get_close_matches(py, sorted(names), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                known = ", ".join(sorted(names)) or "none"
                raise ConfigError(
                    f"toolchain {self.main.name} has no field '{name}'{hint} (fields: {known})",
                    key=f"{key}.{name}",
                    file=_config_file(workspace),
                )
            kwargs[py] = value
        for f in self.main.fields:
            if f.name in kwargs:
                continue
            if f.type is Directory or f.annotation == "Directory":
                kwargs[f.name] = Directory(source_dir.resolve(), cfg.source)
            elif f.name == "image" and cfg.image:
                kwargs[f.name] = cfg.image
            elif f.required:
                raise ConfigError(
                    f"toolchain {self.main.name} needs a value for '{f.name}' ({f.annotation})",
                    key=f"{key}.{f.name}",
                    file=_config_file(workspace),
                )
        try:
            return self.main.cls(**kwargs)
        except (DagparError, SignalInterrupt):
            raise
        except BaseException as exc:  # its __post_init__: the toolchain's error, not dagpar's
            file = getattr(self.module, "__file__", None)
            line = _line_in(exc, Path(file).resolve()) if file else None
            raise ToolchainError(
                f"creating {self.main.name} failed: {_describe(exc)}",
                file=_display(Path(file), workspace) if file else self.origin,
                line=line,
            ) from exc


def main_class_name(module_name: str) -> str:
    """The main class's name for a module: ``my_lint`` → ``MyLint``."""
    stem = module_name.rsplit(".", 1)[-1]
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-]+", stem) if part)


def discover(config: Config, pm: pluggy.PluginManager) -> list[Toolchain]:
    """Load and check every toolchain of *config*.

    :raises ToolchainError: a module cannot be imported, has no main class, or defines
        something dagpar cannot run (with file:line).
    """
    registry = toolchain_registry(pm)
    toolchains: list[Toolchain] = []
    for tc in config.toolchains:
        module_name = registry.get(tc.use)
        if module_name is not None:
            module = _import_builtin(module_name, tc)
            origin = tc.use
        else:
            path = (config.workspace / tc.use).resolve()
            module = _import_file(path, tc, config.workspace)
            origin = str(Path(tc.use))
        toolchains.append(_check_module(module, tc, origin))
    return toolchains


def _import_builtin(module_name: str, tc: ToolchainConfig) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except SignalInterrupt:
        raise
    except BaseException as exc:
        raise ToolchainError(
            f"built-in toolchain {tc.use!r} ({module_name}) failed to import: {_describe(exc)}"
        ) from exc


def _import_file(path: Path, tc: ToolchainConfig, workspace: Path) -> ModuleType:
    display = _display(path, workspace)
    if not path.is_file():
        raise ToolchainError(
            f"toolchain file not found (toolchains.{tc.instance}.use)", file=display
        )
    name = f"dagpar_toolchain_{re.sub(r'[^A-Za-z0-9_]', '_', tc.instance)}_{path.stem}"
    cached = sys.modules.get(name)
    if cached is not None and getattr(cached, "__file__", None) == str(path):
        return cached
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ToolchainError("cannot load this file as a Python module", file=display)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise ToolchainError(
            f"syntax error: {exc.msg}", file=display, line=exc.lineno or None
        ) from exc
    except SignalInterrupt:
        del sys.modules[name]
        raise
    except BaseException as exc:  # even SystemExit: a toolchain never decides dagpar's exit
        del sys.modules[name]
        line = _line_in(exc, path)
        raise ToolchainError(
            f"importing the toolchain failed: {_describe(exc)}", file=display, line=line
        ) from exc
    return module


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r}); a toolchain must not exit"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _line_in(exc: BaseException, path: Path) -> int | None:
    """The deepest traceback line that lies in *path*."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path:
            line = frame.lineno
    return line


def _check_module(module: ModuleType, tc: ToolchainConfig, origin: str) -> Toolchain:
    types: dict[str, TypeDef] = {}
    for value in vars(module).values():
        td = typedef_of(value) if isinstance(value, type) else None
        if td is not None and td.cls.__module__ == module.__name__:
            types[td.name] = td
    file = getattr(module, "__file__", None) or origin
    main_name = main_class_name(Path(file).stem if file.endswith(".py") else module.__name__)
    main = types.get(main_name)
    if main is None:
        found = ", ".join(sorted(types)) or "no @object_type classes"
        raise ToolchainError(
            f"toolchain {tc.use!r} has no main class {main_name} (the file's name in PascalCase);"
            f" found: {found}",
            file=_display(Path(file), None),
        )
    for td in sorted(types.values(), key=lambda t: t.line):
        if td.errors:
            line, message = sorted(td.errors)[0]
            more = f" (and {len(td.errors) - 1} more)" if len(td.errors) > 1 else ""
            raise ToolchainError(message + more, file=td.file, line=line)
    return Toolchain(config=tc, module=module, main=main, types=types, origin=origin)


def _display(path: Path, workspace: Path | None) -> str:
    for base in (workspace, Path.cwd()):
        if base is None:
            continue
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)


def _config_file(workspace: Path) -> str | None:
    candidate = workspace / "dagpar.yaml"
    return str(candidate) if candidate.exists() else None


# ---------------------------------------------------------------------------------------------
# Detection


def detect_toolchains(config: Config, pm: pluggy.PluginManager) -> Config:
    """*config* with its toolchains detected, when it is to detect them (``Config.detect``).

    Every plugin's ``dagpar_detect_toolchains`` is asked; the entries are validated as if they
    stood in ``dagpar.yaml`` (errors say the entry was detected, and why), two plugins finding
    the same suite give one toolchain, and clashing names are numbered (``pytest-2``) in an
    order independent of the plugins', so every CI node names them alike.

    :param config: the loaded configuration; returned as it is when it lists its toolchains.
    :param pm: the plugin manager.
    :raises ConfigError: a detected entry is invalid, or a plugin answered something else than
        a list of mappings.
    """
    if not config.detect:
        return config
    return dataclasses.replace(config, toolchains=_detect(config.workspace, pm), detect=False)


def _detect(root: Path, pm: pluggy.PluginManager) -> tuple[ToolchainConfig, ...]:
    """Ask every plugin which toolchains *root* holds; no answer gives no toolchains.

    Plugins answer in whatever order pluggy calls them, so the entries are sorted before names
    are deduplicated: every run, on every CI node, gets the same instance names.
    """
    answers = pm.hook.dagpar_detect_toolchains(workspace=root)
    entries: list[dict[str, Any]] = []
    for answer in answers:
        if not answer:
            continue
        for entry in answer:
            if isinstance(entry, Mapping):
                entries.append(dict(entry))
            else:
                kind = yaml_kind(entry)
                raise ConfigError(
                    f"a plugin's dagpar_detect_toolchains returned {kind}, not a mapping"
                )

    def sort_key(entry: dict[str, Any]) -> tuple[str, str, str, str]:
        return (
            _instance_name(entry),
            str(entry.get("source") or ""),
            str(entry.get("use") or ""),
            str(entry.get("why") or ""),
        )

    registry: ToolchainRegistry | None = None

    def get_registry() -> ToolchainRegistry:
        nonlocal registry
        if registry is None:
            registry = toolchain_registry(pm)
        return registry

    taken: set[str] = set()
    seen: set[tuple[str, str]] = set()
    result: list[ToolchainConfig] = []
    for entry in sorted(entries, key=sort_key):
        base = _instance_name(entry)
        why = str(entry.pop("why", "") or "")
        entry.pop("instance", None)
        if entry.get("source") == "":
            del entry["source"]  # the model's spelling of the root, which plugins may use
        origin = f"detected: {why}" if why else "detected"

        def fail(key: str, message: str, _why: str = origin) -> NoReturn:
            raise ConfigError(f"{message} ({_why})", key=key)

        config = toolchain_entry(
            base,
            entry,
            key=f"toolchains.{base}",
            origin=origin,
            root=root,
            registry=get_registry,
            fail=fail,
        )
        identity = (config.use, config.source)
        if identity in seen:
            continue  # two plugins found the same suite
        seen.add(identity)
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        if name != base:
            config = ToolchainConfig(
                instance=name,
                use=config.use,
                source=config.source,
                image=config.image,
                runner=config.runner,
                args=config.args,
                overrides=config.overrides,
                origin=config.origin,
            )
        result.append(config)
    return tuple(result)


def _instance_name(entry: Mapping[str, Any]) -> str:
    """The detected entry's instance name, made valid (detection must not break a run)."""
    raw = str(entry.get("instance") or entry.get("use") or "toolchain")
    if raw.endswith(".py"):
        raw = posixpath.basename(raw)[: -len(".py")]
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-_")
    if not name or not name[0].isalpha() or not name[0].isascii():
        name = f"t-{name}" if name else "toolchain"
    return name
