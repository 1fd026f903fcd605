"""``python -m dagpar_cli`` and the ``dagpar`` console script."""

from __future__ import annotations

import gc


def main() -> int:
    """Run the ``dagpar`` command line and return its exit code."""
    from dagpar_cli.cli import main as cli_main

    code = cli_main()
    # The process is about to exit: the interpreter's final garbage collection would walk every
    # object left (modules, the run's results) for nothing, tens of milliseconds after the last
    # slice has ended. Frozen objects are skipped; exit handlers still run.
    gc.freeze()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
