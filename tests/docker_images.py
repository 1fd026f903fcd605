"""Small local Docker images for dagpar's tests, built from the host without any registry.

No image can be pulled where dagpar's tests run, so :func:`ensure_base_image` builds
``dagpar-test/base:latest`` with ``docker import`` from a minimal root filesystem copied from the
host: a shell, coreutils, and the shared libraries that they, the host's Python and Go and Node
need. The toolchains themselves are not copied into the image; :func:`toolchain_mounts` bind-mounts
the host's install directories read-only at the same paths, and :func:`toolchain_env` puts them on
``PATH``. The image is built once per recipe: a second call finds it by label and returns at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from dagpar_cli.execution.api import Executor, Mount
from dagpar_cli.pluginmanager import hookimpl
from dagpar_cli.run_context import RunContext

__all__ = [
    "BASE_IMAGE",
    "ToolchainDockerPlugin",
    "ensure_base_image",
    "go_root",
    "python_prefixes",
    "toolchain_env",
    "toolchain_mounts",
]

#: The image the docker tests run in.
BASE_IMAGE = "dagpar-test/base:latest"
#: The label carrying the recipe hash: a changed recipe rebuilds the image.
RECIPE_LABEL = "dagpar.test.recipe"

#: Commands the image carries itself (a shell and what runner helpers and tests call).
_COMMANDS = (
    "sh", "bash", "env", "sleep", "timeout", "cat", "ls", "mkdir", "rm", "cp", "mv", "ln",
    "echo", "true", "false", "head", "tail", "wc", "id", "chmod", "touch", "pwd", "uname",
    "dd", "grep", "sed", "find", "kill", "sort", "tr", "stat", "readlink", "dirname", "basename",
)  # fmt: skip

#: Directories every root filesystem has (mode 1777 for the temporary ones).
_DIRS = {
    "tmp": 0o1777,
    "var/tmp": 0o1777,
    "root": 0o700,
    "etc": 0o755,
    "proc": 0o555,
    "sys": 0o555,
    "dev": 0o755,
    "usr/local/bin": 0o755,
}

_ETC = {
    "etc/passwd": (
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"
    ),
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
}

_IMAGE_PATH = "/usr/local/bin:/usr/bin:/bin"
#: The host directory shared as Go's build cache by every test container.
GO_CACHE = Path(tempfile.gettempdir()) / "dagpar-test-go-cache"
_CONTAINER_GO_CACHE = "/var/cache/go-build"
#: Bumped when the way the image is built changes.
_RECIPE_VERSION = "1"


def python_prefixes() -> tuple[Path, ...]:
    """The install directories of the Python running the tests (its venv and its base)."""
    prefixes = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    return tuple(sorted(prefixes))


def go_root() -> Path | None:
    """``GOROOT`` of the host's ``go`` (its ``bin/go`` resolved through symlinks), if any."""
    go = shutil.which("go")
    if go is None:
        return None
    return Path(go).resolve().parent.parent


def _node() -> Path | None:
    node = shutil.which("node")
    return Path(node).resolve() if node else None


def toolchain_mounts() -> tuple[Mount, ...]:
    """Read-only mounts that make the host's Python, Go and Node usable in the base image.

    Every directory appears at its host path, so shebangs, ``sys.prefix`` and ``GOROOT`` stay
    valid. Go's Debian layout links ``src`` into ``/usr/share/go-*``, which is mounted as well.
    Go's build cache is the one writable mount (:data:`GO_CACHE`).
    """
    sources: list[Path] = list(python_prefixes())
    root = go_root()
    if root is not None:
        sources.append(root)
        share = (root / "src").resolve().parent
        if share != root:
            sources.append(share)
    node = _node()
    if node is not None:
        sources.append(node)
        modules = node.parent.parent / "lib" / "node_modules"
        if modules.is_dir():
            sources.append(modules)
    mounts = [Mount(source=s, target=str(s), read_only=True) for s in dict.fromkeys(sources)]
    if root is not None:
        # Without cgo, go rebuilds parts of the standard library (~10 s) into a fresh cache; a
        # cache shared by every session on this machine pays that once.
        GO_CACHE.mkdir(parents=True, exist_ok=True)
        mounts.append(Mount(source=GO_CACHE, target=_CONTAINER_GO_CACHE, read_only=False))
    return tuple(mounts)


def toolchain_env() -> dict[str, str]:
    """Environment that puts the mounted toolchains on ``PATH`` and gives Go writable caches.

    ``CGO_ENABLED=0`` because the image has no C compiler; ``GOPATH`` lives in the container's
    ``/tmp`` since the mounted ``GOROOT`` is read-only, and ``GOCACHE`` is the shared cache mount.
    """
    path = [str(Path(sys.executable).parent)]
    path += [str(p / "bin") for p in python_prefixes()]
    root = go_root()
    if root is not None:
        path.append(str(root / "bin"))
    node = _node()
    if node is not None:
        path.append(str(node.parent))
    path += _IMAGE_PATH.split(":")
    return {
        "PATH": ":".join(dict.fromkeys(path)),
        "HOME": "/root",
        "GOCACHE": _CONTAINER_GO_CACHE,
        "GOPATH": "/tmp/go",
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _commands() -> list[Path]:
    """The host files of the commands the image carries."""
    found = (shutil.which(name, path="/usr/bin:/bin") for name in _COMMANDS)
    return [Path(f) for f in found if f]


def _toolchain_binaries() -> Iterator[Path]:
    """Mounted executables and extension modules whose shared libraries the image must carry."""
    yield Path(sys.executable).resolve()
    for prefix in python_prefixes():
        yield from prefix.glob("lib/python3*/lib-dynload/*.so")
    root = go_root()
    if root is not None:
        yield root / "bin" / "go"
    node = _node()
    if node is not None:
        yield node


def _needed_libraries(files: Iterable[Path]) -> set[Path]:
    """Every shared library (and the loader) the *files* load, as ``ldd`` reports them."""
    libs: set[Path] = set()
    for f in files:
        proc = subprocess.run(["ldd", str(f)], capture_output=True, text=True, check=False)
        for line in proc.stdout.splitlines():
            parts = line.split()
            # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux... (0x..)"
            candidates = [parts[2]] if "=>" in parts and len(parts) > 2 else parts[:1]
            for c in candidates:
                if c.startswith("/"):
                    libs.add(Path(c))
    return libs


def _canonical(path: Path) -> str:
    """*path* under the host's merged-/usr layout, relative to ``/``, keeping its file name."""
    return str(Path(os.path.realpath(path.parent)) / path.name).lstrip("/")


def _rootfs_members() -> dict[str, Path]:
    """Image path → host file (dereferenced) for every file the image carries."""
    commands = _commands()
    mounted = [str(m.source) for m in toolchain_mounts()]
    members: dict[str, Path] = {}
    for f in [*commands, *sorted(_needed_libraries([*commands, *_toolchain_binaries()]))]:
        # What lives under a mounted directory comes with the mount.
        if any(str(f) == m or str(f).startswith(m + "/") for m in mounted):
            continue
        members.setdefault(_canonical(f), f)
    return members


def _recipe_hash() -> str:
    """A hash of the build's inputs (cheap: no ``ldd``): an unchanged host reuses the image."""
    digest = hashlib.sha256(_RECIPE_VERSION.encode())
    for f in sorted({*_commands(), *_toolchain_binaries()}):
        st = f.stat()
        digest.update(f"{f}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    for name in sorted(_ETC):
        digest.update(f"{name}\0{_ETC[name]}\n".encode())
    digest.update(_IMAGE_PATH.encode())
    return digest.hexdigest()[:16]


def _write_rootfs(members: dict[str, Path], out: Path) -> None:
    with tarfile.open(out, "w") as tar:
        dirs: set[str] = set()

        def add_dir(name: str, mode: int = 0o755) -> None:
            parts = name.split("/")
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d in dirs:
                    continue
                dirs.add(d)
                info = tarfile.TarInfo(d)
                info.type = tarfile.DIRTYPE
                info.mode = mode if i == len(parts) else 0o755
                tar.addfile(info)

        for name, mode in _DIRS.items():
            add_dir(name, mode)
        add_dir("usr/bin")
        add_dir("usr/sbin")
        add_dir("usr/lib")
        add_dir("usr/lib64")
        # The host's merged /usr: /bin, /lib, /lib64, /sbin are links into /usr.
        for link in ("bin", "lib", "lib64", "sbin"):
            if link in dirs:
                continue
            info = tarfile.TarInfo(link)
            info.type = tarfile.SYMTYPE
            info.linkname = f"usr/{link}"
            tar.addfile(info)
        for name, text in _ETC.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for name in sorted(members):
            add_dir(str(Path(name).parent))
            src = members[name]
            info = tarfile.TarInfo(name)
            info.size = src.stat().st_size
            info.mode = 0o755
            with src.open("rb") as fh:
                tar.addfile(info, fh)


@contextmanager
def _build_lock() -> Iterator[None]:
    """Serialise builds across pytest-xdist workers (one tmp-dir lock file)."""
    lock = Path(tempfile.gettempdir()) / "dagpar-test-image.lock"
    with lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_base_image(client: Any, image: str = BASE_IMAGE) -> str:
    """Build *image* on the engine behind *client* unless it exists with the current recipe.

    :param client: a ``docker.DockerClient``.
    :param image: the ``repository:tag`` to build.
    :returns: *image*.
    """
    import docker.errors

    recipe = _recipe_hash()

    def current() -> bool:
        try:
            labels = client.images.get(image).labels or {}
        except docker.errors.ImageNotFound:
            return False
        return bool(labels.get(RECIPE_LABEL) == recipe)

    if current():
        return image
    with _build_lock():
        if current():
            return image
        repository, _, tag = image.rpartition(":")
        with tempfile.TemporaryDirectory(prefix="dagpar-rootfs-") as tmp:
            rootfs = Path(tmp) / "rootfs.tar"
            _write_rootfs(_rootfs_members(), rootfs)
            client.api.import_image(
                src=str(rootfs),
                repository=repository,
                tag=tag,
                changes=[
                    f"ENV PATH={_IMAGE_PATH}",
                    "ENV HOME=/root",
                    'CMD ["/bin/sh"]',
                    f"LABEL {RECIPE_LABEL}={recipe}",
                ],
            )
    if not current():
        raise RuntimeError(f"building {image} did not produce an image with recipe {recipe}")
    return image


class ToolchainDockerPlugin:
    """A plugin whose docker executor mounts the host's toolchains into every session.

    For end-to-end tests of ``--executor docker`` with ``image: dagpar-test/base:latest``:
    ``get_plugin_manager(extra_plugins=(ToolchainDockerPlugin(),))``. Registered after the
    built-in plugins and marked ``tryfirst``, it answers before the built-in docker executor.
    """

    @hookimpl(tryfirst=True)
    def dagpar_make_executor(self, session: RunContext) -> Executor | None:
        """The docker executor with :func:`toolchain_mounts` and :func:`toolchain_env` added."""
        from dagpar_cli.execution.docker import DockerExecutor, configured_engines

        if session.executor_name != "docker":
            return None
        return DockerExecutor(
            configured_engines(session),
            run_id=session.run_id,
            extra_mounts=toolchain_mounts(),
            extra_env=toolchain_env(),
            # As the built-in hook does: the runs of the tests use warm containers too.
            warm=True,
        )


if __name__ == "__main__":
    import docker

    print(ensure_base_image(docker.from_env()))


def docker_client() -> Iterator[Any]:
    """A client of the default engine with :data:`BASE_IMAGE` built, closed afterwards: the body
    of the Docker tests' ``client`` fixtures (``yield from docker_client()``)."""
    import docker

    client = docker.from_env()
    try:
        ensure_base_image(client)
        yield client
    finally:
        client.close()


def build_base_image() -> None:
    """Build :data:`BASE_IMAGE` on the default engine unless it is there and current."""
    import docker

    with closing(docker.from_env()) as client:
        ensure_base_image(client)


def run_toolchains_in_images(monkeypatch: Any, *python_path: str) -> None:
    """Make dagpar processes started by the test load :class:`ToolchainDockerPlugin`, so that
    the docker executor runs toolchains in :data:`BASE_IMAGE` with the host's toolchains.

    :param monkeypatch: the test's ``monkeypatch``.
    :param python_path: more entries for the processes' ``PYTHONPATH``.
    """
    monkeypatch.setenv("DAGPAR_PLUGINS", "docker_images:ToolchainDockerPlugin")
    entries = [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH"), *python_path]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, entries)))
