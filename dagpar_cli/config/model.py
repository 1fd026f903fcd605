"""Stage 1: configuration — ``dagpar.yaml`` and the command line, as typed values.

:mod:`dagpar_cli.config.loader` reads ``dagpar.yaml`` into a :class:`Config`; the CLI turns its
options into :class:`RunOptions`. When the file lists no toolchains (or there is no file),
discovery detects them (:func:`dagpar_cli.discovery.detect_toolchains`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_FILE",
    "MATRIX_KEYS",
    "Config",
    "DockerEngine",
    "MatrixKey",
    "QueueOptions",
    "RunOptions",
    "ToolchainConfig",
]

#: The configuration file's name at the workspace root.
CONFIG_FILE = "dagpar.yaml"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolchainConfig:
    """One entry of ``toolchains:``: a named instance of a toolchain."""

    #: The instance name; checks are ``instance:function``.
    instance: str
    #: A built-in toolchain name, or a path (relative to the workspace) to a toolchain file.
    use: str
    #: The source directory relative to the workspace (``""`` for the root).
    source: str = ""
    #: The image the docker executor runs this toolchain's containers in.
    image: str | None = None
    #: The command that starts the runner, overriding the runner plugin's discovery.
    runner: tuple[str, ...] | None = None
    #: Extra arguments appended to every runner command.
    args: tuple[str, ...] = ()
    #: Other keys: constructor arguments of the toolchain's main class.
    overrides: Mapping[str, Any] = field(default_factory=dict)
    #: Where the entry came from (``toolchains.frontend``, or ``detected: package.json``).
    origin: str = ""
    #: Environment variables for the runner, passed into containers too (``env:``).
    env: Mapping[str, str] = field(default_factory=dict)
    #: ``matrix:``: the suite runs once per combination of these keys' values, all planned
    #: together.
    matrix: tuple[MatrixKey, ...] = ()

    def with_values(self, chosen: Mapping[str, str]) -> ToolchainConfig:
        """This entry under one combination of its matrix: *chosen* maps each matrix key to
        the label of its value; ``env`` values add to the entry's own ``env``."""
        changes: dict[str, Any] = {}
        for key in self.matrix:
            label = chosen.get(key.key)
            if label is None:
                continue
            value = key.values[key.labels.index(label)]
            changes[key.key] = {**self.env, **value} if key.key == "env" else value
        return replace(self, **changes) if changes else self


#: The keys ``matrix:`` may vary.
MATRIX_KEYS = ("image", "runner", "args", "env")


@dataclass(frozen=True, slots=True)
class MatrixKey:
    """One key of a toolchain's ``matrix:``: its values and how reports name each."""

    #: ``image``, ``runner``, ``args`` or ``env``.
    key: str
    #: The values as the entry's key takes them (a string, an argv tuple, an env mapping).
    values: tuple[Any, ...]
    #: ``python:3.12-slim``, ``.venv312/bin/python -m pytest``, ``FLAVOUR=a``.
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DockerEngine:
    """One Docker endpoint the docker executor may send slices to."""

    #: ``unix://``, ``tcp://``, ``ssh://`` URL, or a docker context name.
    url: str
    #: How many slices may run on it at once (``None``: its CPU count).
    slots: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The workspace's configuration, validated."""

    #: The workspace root (absolute).
    workspace: Path
    #: The ``dagpar.yaml`` it came from, or None when toolchains were detected.
    file: Path | None
    #: The toolchain instances, in file order.
    toolchains: tuple[ToolchainConfig, ...]
    #: ``local`` or ``docker``.
    executor: str = "local"
    #: Docker endpoints (empty: ``DOCKER_HOST`` or the default socket).
    engines: tuple[DockerEngine, ...] = ()
    #: Slices at once; None means auto (CPU count, or the engines' slots).
    parallelism: int | None = None
    #: Whether the toolchains are still to be detected: there is no file, or it has no
    #: ``toolchains:`` key. :func:`~dagpar_cli.discovery.detect_toolchains` fills them in.
    detect: bool = False

    def toolchain(self, instance: str) -> ToolchainConfig | None:
        """The instance named *instance*, if configured."""
        return next((t for t in self.toolchains if t.instance == instance), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueOptions:
    """``--queue``: this node pulls work units of one CI build from Redis (DESIGN.md §6)."""

    #: ``redis://[:password@]host:port/db`` or ``rediss://`` (TLS).
    url: str
    #: The build every node of one CI run shares (``--build``, or from the CI's variables).
    build: str
    #: This node's name in the queue (``--worker``; the host name and process id by default).
    worker: str
    #: Seconds a reservation holds without renewal before its unit is requeued (``--lease``).
    lease: float = 30.0
    #: How often a unit may be requeued before its tests are errors ("lost with worker X").
    max_requeues: int = 2
    #: Seconds every key of the build lives in Redis.
    ttl: int = 24 * 3600
    #: ``--retry-failed``: once the build's queue is drained, rerun the tests that failed in it.
    retry_failed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """The options shared by ``dagpar call`` and ``dagpar check``."""

    #: ``--filter`` selectors, in the order given.
    filters: tuple[str, ...] = ()
    #: ``--matrix FIELD=GLOB``, in the order given: the combinations of a matrix to run.
    matrix: tuple[str, ...] = ()
    #: ``-j``; None means auto.
    parallelism: int | None = None
    #: ``--executor``; None means the configuration's.
    executor: str | None = None
    #: ``--engine``, repeated.
    engines: tuple[str, ...] = ()
    #: ``--shard I/N`` (1-based), or detected from CI variables.
    shard: tuple[int, int] | None = None
    #: ``--junit-xml``.
    junit_xml: Path | None = None
    #: ``--report-html``.
    report_html: Path | None = None
    #: ``--retries``: reruns of failed tests.
    retries: int = 0
    #: ``--timeout``: per-slice seconds.
    timeout: float | None = None
    #: ``--dry-run``: plan, run nothing.
    dry_run: bool = False
    #: ``--json``: machine-readable output on stdout.
    json: bool = False
    #: ``--failfast``: stop at the first failed check.
    failfast: bool = False
    #: ``--debug``: tracebacks for handled errors too.
    debug: bool = False
    #: ``check -l`` or ``functions``: the session lists what exists and runs nothing, so
    #: reporters stay off.
    list_only: bool = False
    #: ``--queue``: pull work units from a shared Redis queue instead of running every slice.
    queue: QueueOptions | None = None
