"""``--queue``, ``--build``, ``--worker``, ``--lease``: queue mode's command line, checked.

The build id names one CI run that several nodes share. Without ``--build`` (or
``DAGPAR_BUILD``) it comes from the CI's own variables; elsewhere it is required.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from dagpar_cli.config import QueueOptions
from dagpar_cli.errors import UsageError

__all__ = ["CI_BUILD_VARIABLES", "detect_build", "parse_queue_options", "redacted"]

#: CI variables that name one build every node of it shares: (CI, variables joined with "-").
CI_BUILD_VARIABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("github", ("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT")),
    ("gitlab", ("CI_PIPELINE_ID",)),
    ("buildkite", ("BUILDKITE_BUILD_ID",)),
    ("circleci", ("CIRCLE_WORKFLOW_ID",)),
)

#: URL schemes the Redis client understands.
SCHEMES = ("redis", "rediss", "unix")


def detect_build(env: Mapping[str, str]) -> tuple[str, str] | None:
    """The build id from CI variables, and the variables it came from; None outside CI."""
    for ci, names in CI_BUILD_VARIABLES:
        if all(env.get(name) for name in names):
            return f"{ci}-" + "-".join(env[name] for name in names), "/".join(names)
    return None


def redacted(url: str) -> str:
    """*url* without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def parse_queue_options(
    url: str | None,
    *,
    build: str | None,
    worker: str | None,
    lease: float | None,
    shard_given: bool,
    retry_failed: bool = False,
    env: Mapping[str, str] | None = None,
) -> QueueOptions | None:
    """Check queue mode's flags; None when ``--queue`` is absent.

    :param shard_given: whether ``--shard`` was on the command line (the two exclude each other).
    :raises UsageError: one line naming the flag and the fix.
    """
    env = os.environ if env is None else env
    if url is None:
        for flag, value in (("--build", build), ("--worker", worker), ("--lease", lease)):
            if value is not None:
                raise UsageError(f"{flag} needs --queue URL (or DAGPAR_QUEUE)")
        if retry_failed:
            raise UsageError("--retry-failed needs --queue URL (or DAGPAR_QUEUE)")
        return None
    if shard_given:
        raise UsageError(
            "--queue and --shard exclude each other: a queue hands work to whichever node is "
            "free, a shard is a fixed share; drop one"
        )
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not (parts.hostname or parts.path):
        raise UsageError(
            f"--queue {redacted(url)!r}: expected redis://HOST:PORT/DB "
            "(rediss:// for TLS, redis://:PASSWORD@HOST:PORT/DB with a password)"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise UsageError(f"--queue {redacted(url)!r}: the port must be a number") from None
    if not build:
        detected = detect_build(env)
        if detected is None:
            raise UsageError(
                "--queue needs --build ID (or DAGPAR_BUILD): the id every node of this CI run "
                "shares; none found in GitHub Actions, GitLab CI, Buildkite or CircleCI variables"
            )
        build = detected[0]
    if lease is not None and (not math.isfinite(lease) or not 1 <= lease <= 3600):
        raise UsageError(f"--lease {lease:g}: expected seconds between 1 and 3600")
    import socket  # here: a run without --queue does not need it

    return QueueOptions(
        url=url,
        build=build,
        worker=worker or f"{socket.gethostname()}-{os.getpid()}",
        lease=30.0 if lease is None else lease,
        retry_failed=retry_failed,
    )
