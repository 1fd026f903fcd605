"""Deprecated: JUnit XML import lives in :mod:`dagpar_cli.timings.transfer`.

.. deprecated:: 0.2
   Import ``read_junit``, ``ImportedCase`` and ``JunitFile`` from ``dagpar_cli.timings.transfer``.
"""

from __future__ import annotations

import warnings

from dagpar_cli.timings.transfer import ImportedCase, JunitFile, read_junit

__all__ = ["ImportedCase", "JunitFile", "read_junit"]

warnings.warn(
    "dagpar_cli.junit_import is deprecated; import from dagpar_cli.timings.transfer",
    DeprecationWarning,
    stacklevel=2,
)
