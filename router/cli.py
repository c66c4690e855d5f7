"""The `contact-router` command: `serve` and `token` here; `simulate`, `report` and
`staffing` come from the contact-router-tools package when it is installed."""

from __future__ import annotations

import argparse
import asyncio
import sys
from types import ModuleType

from router import logs
from router.api.access import Role, new_token, token_entry
from router.config import Settings
from router.errors import ConfigError

TOOLS = ("simulate", "report", "staffing")
TOOLS_HINT = (
    "is part of contact-router-tools, which is not installed: "
    "pip install ./tools (or run `make run`, which installs it)"
)


def _tools() -> ModuleType | None:
    try:
        from contact_router_tools import commands
    except ImportError:
        return None
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="contact-router", description="Omni-channel contact routing service."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve",
        help="serve gRPC (settings from ROUTER_* environment variables, see README)",
    )
    _token_arguments(
        commands.add_parser(
            "token", help="make a bearer token: prints it, and its entry for ROUTER_TOKENS_FILE"
        )
    )
    tools = _tools()
    if tools is not None:
        tools.add_commands(commands)
        args = parser.parse_args(argv)
        if args.command in TOOLS:
            return int(tools.run(args))
    else:
        for name in TOOLS:
            commands.add_parser(name, help=f"(not installed) {TOOLS_HINT}", add_help=False)
        args, rest = parser.parse_known_args(argv)
        if args.command in TOOLS:
            print(f"contact-router {args.command} {TOOLS_HINT}", file=sys.stderr)
            return 2
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "token":
        return _token(args)
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"contact-router: configuration error: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    from router.server import serve

    return asyncio.run(serve(settings))


def _token_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", required=True, choices=[r.value for r in Role])
    parser.add_argument("--name", required=True, help="who holds it (shown in logs)")
    parser.add_argument("--agent-id", help="the agent an agent token acts for (role agent)")


def _token(args: argparse.Namespace) -> int:
    """The token goes to its holder; the entry (a digest) to the router's tokens file."""
    role = Role(args.role)
    if (role is Role.AGENT) != (args.agent_id is not None):
        print(
            "contact-router token: --agent-id goes with --role agent, and only it", file=sys.stderr
        )
        return 2
    token = new_token()
    print(f"token (give it to {args.name}; it is not stored anywhere): {token}", file=sys.stderr)
    print(token_entry(token, args.name, role, args.agent_id), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
