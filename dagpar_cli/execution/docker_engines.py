"""Docker endpoints for the docker executor: naming, connecting, slots and images.

An endpoint is configured as a URL (``unix://``, ``tcp://``, ``ssh://``) or a docker context name;
with nothing configured, ``DOCKER_HOST`` (or ``DOCKER_CONTEXT``, or the default socket) is used, the
way the ``docker`` CLI chooses. Connecting is lazy and happens once per endpoint; a failure becomes
a one-line :class:`~dagpar_cli.errors.ExecutionError` naming the endpoint.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from dagpar_cli.config import DockerEngine
from dagpar_cli.errors import ExecutionError, UsageError
from dagpar_cli.execution.api import Mount

if TYPE_CHECKING:
    from dagpar_cli.run_context import RunContext

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_SOCKET",
    "EngineHandle",
    "configured_engines",
    "copy_into",
    "default_engines",
    "parse_engine",
]

#: The socket ``docker`` talks to when nothing else is configured.
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
#: Seconds to wait for an endpoint to answer when connecting and for control calls.
CONNECT_TIMEOUT = 20.0
#: Seconds without progress after which an image pull is given up.
PULL_TIMEOUT = 30.0

#: The API version used only to ask an engine which version it speaks.
_PROBE_API_VERSION = "1.24"

_URL_SCHEMES = ("unix://", "tcp://", "ssh://", "http://", "https://", "npipe://")


def parse_engine(text: str) -> DockerEngine:
    """Parse an ``--engine`` value: ``URL`` or context name, optionally ``#SLOTS``.

    ``tcp://build-1:2376#4`` is an endpoint with four slots; ``ci-box`` is a docker context.

    :raises UsageError: for an empty value or a non-positive slot count.
    """
    url, sep, slots_text = text.strip().rpartition("#") if "#" in text else (text.strip(), "", "")
    if not url:
        raise UsageError(f"--engine {text!r}: expected a URL or docker context name")
    slots: int | None = None
    if sep:
        try:
            slots = int(slots_text)
        except ValueError:
            slots = 0
        if slots < 1:
            raise UsageError(f"--engine {text!r}: slots after '#' must be a positive number")
    return DockerEngine(url=url, slots=slots)


def default_engines() -> tuple[DockerEngine, ...]:
    """The endpoint the ``docker`` CLI would use: ``DOCKER_HOST``, ``DOCKER_CONTEXT``, default."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        return (DockerEngine(url=host),)
    context = os.environ.get("DOCKER_CONTEXT")
    if context:
        return (DockerEngine(url=context),)
    return (DockerEngine(url=DEFAULT_SOCKET),)


def _is_local(base_url: str) -> bool:
    """Whether bind mounts of host paths work: the engine shares this machine's filesystem."""
    if base_url.startswith(("unix://", "npipe://")) or base_url.startswith("/"):
        return True
    host = urlsplit(base_url).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


def _clock_offset(system_time: object) -> float:
    """The engine's clock minus ours, from ``docker info``'s ``SystemTime`` (RFC 3339)."""
    if not isinstance(system_time, str):
        return 0.0
    from datetime import datetime

    text = system_time.replace("Z", "+00:00")
    # Python before 3.11 parses at most microseconds: drop the extra nanosecond digits.
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        return datetime.fromisoformat(text).timestamp() - time.time()
    except ValueError:
        return 0.0


def _check_unix_socket(path: str) -> None:
    """Connect to the socket once and close it: the SDK leaks the socket of a failed connect."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect(path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


@dataclass(eq=False)
class EngineHandle:
    """One endpoint: its clients (created on first use), its slots and the images it has.

    :param config: the configured endpoint.
    :param bind_mounts: whether host directories are bind-mounted (None: decide from the URL;
        False copies them into the container instead, for remote engines).
    """

    config: DockerEngine
    bind_mounts: bool | None = None
    #: Sessions currently open on it (maintained by the executor under its lock).
    active: int = 0
    _api: Any = None
    _exec_api: Any = None
    _ncpu: int | None = None
    #: The engine's clock minus ours, in seconds (event queries are in the engine's clock).
    clock_offset: float = 0.0
    _base_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _images: dict[str, str] = field(default_factory=dict)
    _image_locks: dict[str, threading.Lock] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The endpoint as configured (for messages and ``where``)."""
        return self.config.url

    @property
    def shares_files(self) -> bool:
        """Whether the engine sees host directories live (bind mounts), as known so far."""
        return self.bind_mounts if self.bind_mounts is not None else _is_local(self.url)

    @property
    def connected(self) -> bool:
        """Whether the clients exist already."""
        return self._api is not None

    def _resolve(self) -> tuple[str, Any]:
        """The base URL and TLS settings, resolving a docker context name."""
        url = self.config.url
        if url.startswith(_URL_SCHEMES) or url.startswith("/"):
            tls: Any = False
            if url.startswith("tcp://") and os.environ.get("DOCKER_TLS_VERIFY"):
                from docker.utils import kwargs_from_env

                tls = kwargs_from_env().get("tls", False)
            return url, tls
        from docker.context import ContextAPI

        try:
            context = ContextAPI.get_context(url)
        except Exception as exc:
            raise ExecutionError(
                f"docker engine {url!r}: cannot read the docker context: {_first_line(exc)}"
            ) from exc
        if context is None:
            raise ExecutionError(
                f"docker engine {url!r} is neither a URL (unix://, tcp://, ssh://) nor a docker "
                "context (see `docker context ls`)"
            )
        return context.Host or DEFAULT_SOCKET, context.TLSConfig or False

    def connect(self) -> Any:
        """The control client (``docker.APIClient``), connecting on first use.

        :raises ExecutionError: when the endpoint does not answer.
        """
        with self._lock:
            if self._api is not None:
                return self._api
            import docker

            base_url, tls = self._resolve()
            ssh = base_url.startswith("ssh://")
            pool = max(10, 2 * (self.config.slots or 4))

            def client(version: str, timeout: float | None) -> Any:
                return docker.APIClient(
                    base_url=base_url,
                    version=version,
                    timeout=timeout,
                    tls=tls,
                    use_ssh_client=ssh,
                    max_pool_size=pool,
                )

            # Ask the version with a client we can close on failure ("auto" leaks its socket).
            probe = api = None
            try:
                if base_url.startswith("unix://"):
                    _check_unix_socket(base_url[len("unix://") :])
                probe = client(_PROBE_API_VERSION, CONNECT_TIMEOUT)
                version = str(probe.version(api_version=False)["ApiVersion"])
                api = client(version, CONNECT_TIMEOUT)
                info = api.info()
            except Exception as exc:
                if api is not None:
                    api.close()
                raise ExecutionError(
                    f"docker engine {self.config.url} is unreachable: {_first_line(exc)}"
                ) from exc
            finally:
                if probe is not None:
                    probe.close()
            # Execs run as long as the command does, so their client has no read timeout.
            self._exec_api = client(version, None)
            self._ncpu = int(info.get("NCPU") or 1)
            self.clock_offset = _clock_offset(info.get("SystemTime"))
            self._base_url = base_url
            if self.bind_mounts is None:
                self.bind_mounts = _is_local(base_url)
            self._api = api
            return api

    @property
    def exec_api(self) -> Any:
        """The client used for long-running exec streams (no read timeout)."""
        self.connect()
        return self._exec_api

    def slots(self) -> int:
        """How many sessions may run on this endpoint: configured, else its CPU count."""
        if self.config.slots is not None:
            return self.config.slots
        self.connect()
        assert self._ncpu is not None
        return self._ncpu

    def ensure_image(self, image: str) -> None:
        """Make sure *image* is on the endpoint, pulling it once if it is absent.

        The answer is remembered: later slices neither inspect nor pull again.

        :raises ExecutionError: naming the image and how to provide it.
        """
        api = self.connect()
        with self._lock:
            lock = self._image_locks.setdefault(image, threading.Lock())
        with lock:
            if image in self._images:
                problem = self._images[image]
            else:
                problem = self._find_or_pull(api, image)
                self._images[image] = problem
        if problem:
            raise ExecutionError(problem)

    def _find_or_pull(self, api: Any, image: str) -> str:
        import docker.errors

        try:
            api.inspect_image(image)
            return ""
        except docker.errors.ImageNotFound:
            pass
        except Exception as exc:
            return f"docker engine {self.url}: cannot inspect image {image!r}: {_first_line(exc)}"
        why = self._pull(image)
        if not why:
            return ""
        return (
            f"image {image!r} is not on docker engine {self.url} and cannot be pulled ({why}); "
            f"run `docker pull {image}` where the engine can reach its registry (or build it), "
            "or set `image:` for the toolchain in dagpar.yaml to an image the engine has"
        )

    def _pull(self, image: str) -> str:
        """Pull *image* once; an empty string on success, else why it failed."""
        import docker
        from docker.utils import parse_repository_tag

        repository, tag = parse_repository_tag(image)
        base_url, tls = self._resolve()
        try:
            # Its own client: a stalled registry must time out quickly, progress must not.
            puller = docker.APIClient(
                base_url=base_url,
                version=self._api.api_version,
                timeout=PULL_TIMEOUT,
                tls=tls,
                use_ssh_client=base_url.startswith("ssh://"),
            )
            try:
                for event in puller.pull(repository, tag=tag or "latest", stream=True, decode=True):
                    if isinstance(event, dict) and event.get("error"):
                        return str(event["error"]).splitlines()[0][:300]
            finally:
                puller.close()
        except Exception as exc:
            return _first_line(exc)
        return ""

    def remove_labelled(self, label: str) -> int:
        """Force-remove every container carrying *label* (``key=value``); how many were removed."""
        api = self.connect()
        removed = 0
        for container in api.containers(all=True, filters={"label": label}):
            try:
                api.remove_container(container["Id"], force=True, v=True)
                removed += 1
            except Exception:
                # Already gone (removed concurrently by a closing session): nothing to do.
                pass
        return removed

    def close(self) -> None:
        """Close the clients' connections."""
        with self._lock:
            for client in (self._api, self._exec_api):
                if client is not None:
                    client.close()
            self._api = self._exec_api = None


def engine_handles(engines: Iterable[DockerEngine]) -> list[EngineHandle]:
    """One handle per distinct configured endpoint, in configuration order."""
    seen: dict[str, EngineHandle] = {}
    for engine in engines:
        seen.setdefault(engine.url, EngineHandle(engine))
    return list(seen.values())


def copy_into(api: Any, container_id: str, mounts: Sequence[Mount]) -> None:
    """Copy each mount's source into the container (an engine without our filesystem)."""
    import io
    import tarfile

    for mount in mounts:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(str(mount.source), arcname=mount.target.lstrip("/"))
        api.put_archive(container_id, "/", buffer.getvalue())


def configured_engines(session: RunContext) -> tuple[DockerEngine, ...]:
    """The run's endpoints: ``--engine`` values if given, else ``engines:`` from dagpar.yaml."""
    if session.options.engines:
        return tuple(parse_engine(text) for text in session.options.engines)
    return tuple(session.config.engines)
