"""The `contact-router` command: `serve` and `simulate`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from router import logs, simulate
from router.config import ConfigError, Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="contact-router", description="Omni-channel contact routing service."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve",
        help="serve gRPC (settings from ROUTER_* environment variables, see README)",
    )
    simulate.add_arguments(
        commands.add_parser("simulate", help="drive a running router with synthetic traffic")
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        try:
            settings = Settings.from_env()
        except ConfigError as error:
            print(f"contact-router: configuration error: {error}", file=sys.stderr)
            return 2
        logs.configure(settings.log_format, settings.log_level)
        from router.server import serve

        return asyncio.run(serve(settings))
    logs.configure("console", "warning")
    return asyncio.run(simulate.run(args))


if __name__ == "__main__":
    sys.exit(main())
