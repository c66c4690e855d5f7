"""The `contact-router` command: `serve`, `simulate`, `token`..."""

from __future__ import annotations

import argparse
import asyncio
import sys

from router import logs, report_command, simulate
from router.api.access import Role, new_token, token_entry
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
    _token_arguments(
        commands.add_parser(
            "token", help="make a bearer token: prints it, and its entry for ROUTER_TOKENS_FILE"
        )
    )
    report_command.add_report_arguments(
        commands.add_parser("report", help="contact, agent and disposition report for a range")
    )
    report_command.add_staffing_arguments(
        commands.add_parser("staffing", help="agents needed per interval (Erlang C)")
    )
    args = parser.parse_args(argv)
    if args.command == "token":
        return _token(args)
    if args.command in ("report", "staffing"):
        logs.configure("console", "warning")
        run = report_command.run_report if args.command == "report" else report_command.run_staffing
        return asyncio.run(run(args))
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
