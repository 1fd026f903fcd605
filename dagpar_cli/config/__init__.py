"""Stage 1: configuration — ``dagpar.yaml`` and the command line, as typed values.

This package's namespace holds the types only (:mod:`~dagpar_cli.config.model`); reading and
validating the file is :mod:`dagpar_cli.config.loader`, imported by name where it is needed::

    from dagpar_cli.config import Config, RunOptions
    from dagpar_cli.config.loader import load_config
"""

from __future__ import annotations

from dagpar_cli.config.model import (
    CONFIG_FILE,
    Config,
    DockerEngine,
    QueueOptions,
    RunOptions,
    ToolchainConfig,
)

__all__ = ["CONFIG_FILE", "Config", "DockerEngine", "QueueOptions", "RunOptions", "ToolchainConfig"]
