"""The `contact-router` command: `serve` and `token` here; `simulate`, `report`,
`staffing`, `forecast`, `watch` and `erase` come from the contact-router-tools package
when it is installed."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import os
import sys
from types import ModuleType

from router import logs
from router.api.access import Role, new_token, token_entry
from router.config import Settings
from router.errors import ConfigError, RouterError, StartupError
from router.settings import Kind
from router.variables import VARIABLES, Variable

TOOLS = ("simulate", "report", "staffing", "forecast", "watch", "erase")
"""The tools' commands, named here to say how to install them when they are missing."""
TOOLS_HINT = (
    "is part of contact-router-tools, which is not installed: "
    "pip install ./tools (or run `make run`, which installs it)"
)
SERVE_OPTIONS = tuple(v for v in VARIABLES.values() if v.setting.option is not None)
"""The settings `serve` takes as options (router/settings.py says which)."""


def _tools() -> ModuleType | None:
    try:
        from contact_router_tools import commands
    except ImportError:
        return None
    return commands


def version() -> str:
    """The installed distribution's version."""
    try:
        return importlib.metadata.version("contact-router")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def parser(tools: ModuleType | None = None) -> argparse.ArgumentParser:
    """The whole command line, with the tools' commands when they are given."""
    parser = argparse.ArgumentParser(
        prog="contact-router", description="Omni-channel contact routing service."
    )
    parser.add_argument("--version", action="version", version=f"contact-router {version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    _serve_arguments(
        commands.add_parser(
            "serve",
            help="serve gRPC",
            description="Serve gRPC. Each option wins over its ROUTER_* variable, which wins "
            "over the --config file; every other setting comes from the environment or "
            "that file (docs/configuration.md lists them all).",
        )
    )
    _token_arguments(
        commands.add_parser(
            "token", help="make a bearer token: prints it, and its entry for ROUTER_TOKENS_FILE"
        )
    )
    if tools is not None:
        tools.add_commands(commands)
    else:
        for name in TOOLS:
            commands.add_parser(name, help=f"(not installed) {TOOLS_HINT}", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    # `serve` needs none of the tools' commands: importing them was a tenth of a second
    # of every start, before the restore (bench/RESULTS.md, issue 18).
    tools = None if words[:1] == ["serve"] else _tools()
    command_line = parser(tools)
    if tools is None:
        args, rest = command_line.parse_known_args(argv)
        if args.command in TOOLS:
            print(f"contact-router {args.command} {TOOLS_HINT}", file=sys.stderr)
            return 2
        if rest:
            command_line.error(f"unrecognized arguments: {' '.join(rest)}")
    else:
        args = command_line.parse_args(argv)
    if args.command == "serve":
        return _serve(serve_options(args))
    if args.command == "token":
        return _token(args)
    assert tools is not None, args.command  # argparse knows no other command
    return int(tools.run(args))


def serve_options(args: argparse.Namespace) -> dict[str, str]:
    """The serve options given, by the ROUTER_* variable each stands for."""
    given = {v.name: getattr(args, v.name, None) for v in SERVE_OPTIONS}
    return {name: value for name, value in given.items() if value is not None}


def _serve(options: dict[str, str]) -> int:
    """Serve until stopped. A setting that is wrong (exit 2) or a start that fails
    (exit 1) is one line saying what to do, not a traceback."""
    try:
        settings = Settings.from_env(options=options)
        # Imported here: the tools' commands need neither OpenTelemetry nor the server.
        from router.tracing import Tracing

        tracing = Tracing.from_environment(os.environ)
        logs.configure(settings.log_format, settings.log_level, trace_ids=tracing is not None)
        # Young objects are walked every 20,000 allocations, not Python's 700: an RPC's
        # objects die by reference count, so rarer passes of the cyclic collector walk
        # fewer (3.88 to 3.71 M instructions per lifecycle, bench/RESULTS.md, issue 18).
        gc.set_threshold(20_000, *gc.get_threshold()[1:])
        from router.server import serve

        if settings.event_loop == "uvloop" and sys.platform != "win32":
            import uvloop

            return uvloop.run(serve(settings, tracing))
        return asyncio.run(serve(settings, tracing))
    except ConfigError as error:
        return _failed(error, 2)
    except StartupError as error:
        return _failed(error, 1)


def _failed(error: RouterError, status: int) -> int:
    message = " ".join(str(error).split("\n"))
    print(f"contact-router: {message}", file=sys.stderr)
    return status


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    for variable in SERVE_OPTIONS:
        setting = variable.setting
        assert setting.option is not None
        parser.add_argument(
            setting.option,
            dest=variable.name,
            metavar=_metavar(variable),
            # Values are checked by the schema, as the environment's are, so that a bad
            # one is reported the same way (one line, exit 2) wherever it came from.
            help=f"{setting.doc} [{variable.name}{_default(variable)}]".replace("%", "%%"),
        )


def _metavar(variable: Variable) -> str:
    setting = variable.setting
    if setting.kind is Kind.CHOICE:
        return "{" + ",".join(setting.choices) + "}"
    word = setting.key.rsplit("_", 1)[-1].upper()
    return f"{word}|{setting.off}" if setting.off else word


def _default(variable: Variable) -> str:
    return "" if variable.default is None else f"; default {variable.text(variable.default)}"


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
    for flag, value in (("--name", args.name), ("--agent-id", args.agent_id)):
        if value is not None and not _utf8(value):
            # Bytes that are not UTF-8 reach Python as lone surrogates, which a TOML
            # file cannot hold.
            print(f"contact-router token: {flag} must be UTF-8 text", file=sys.stderr)
            return 2
    token = new_token()
    print(f"token (give it to {args.name!r}; it is not stored anywhere): {token}", file=sys.stderr)
    print(token_entry(token, args.name, role, args.agent_id), end="")
    return 0


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
