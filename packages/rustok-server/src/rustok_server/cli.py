"""The ``rustok-server`` command."""

from __future__ import annotations

import argparse

from rustok_server.__about__ import __version__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rustok-server`` command."""
    parser = argparse.ArgumentParser(prog="rustok-server", description="The RusTok server.")
    parser.add_argument("--version", action="version", version=f"rustok-server {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP service")
    parser.parse_args(argv)
    print(f"rustok-server {__version__}: the HTTP service is not part of this release yet")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
