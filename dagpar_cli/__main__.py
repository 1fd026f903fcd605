"""``python -m dagpar_cli`` and the ``dagpar`` console script."""

from __future__ import annotations


def main() -> int:
    """Run the ``dagpar`` command line and return its exit code."""
    from dagpar_cli.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
