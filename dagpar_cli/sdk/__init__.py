"""The toolchain SDK: what toolchain files import from ``dagpar_cli``."""

from __future__ import annotations

from dagpar_cli.sdk.container import Container, ExecFailedError
from dagpar_cli.sdk.dag import dag
from dagpar_cli.sdk.directory import Directory
from dagpar_cli.sdk.types import check, field, object_type, parallel

__all__ = [
    "Container",
    "Directory",
    "ExecFailedError",
    "check",
    "dag",
    "field",
    "object_type",
    "parallel",
]
