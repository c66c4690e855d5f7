"""The tools' subcommands of `contact-router`: `simulate`, `report`, `staffing`, `forecast`,
`watch`, `erase`.

router/cli.py adds them to its parser when this package is installed, and says how to
install it when it is not. Every error a command meets on purpose ends here as one line
on stderr: a bad flag or file (ConfigError, exit 2), or what the router refused or could
not do (RouterError, exit 1); a reader that leaves early (`| head`) ends it quietly.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from contact_router_tools import (
    erase_command,
    forecast_command,
    report_command,
    simulate,
    staffing_command,
    watch_command,
)
from router import logs
from router.errors import ConfigError, RouterError

RUNS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "simulate": simulate.run,
    "report": report_command.run_report,
    "staffing": staffing_command.run_staffing,
    "forecast": forecast_command.run_forecast,
    "watch": watch_command.run_watch,
    "erase": erase_command.run_erase,
}


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simulate.add_arguments(
        commands.add_parser(
            "simulate",
            help="drive a router with synthetic traffic",
            description=simulate.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    report_command.add_report_arguments(
        commands.add_parser("report", help="contact, agent and disposition report for a range")
    )
    staffing_command.add_staffing_arguments(
        commands.add_parser("staffing", help="agents needed per interval (Erlang C or A)")
    )
    forecast_command.add_forecast_arguments(
        commands.add_parser(
            "forecast",
            help="contacts and handle time per interval for the coming days; --accuracy",
            description=forecast_command.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    watch_command.add_watch_arguments(
        commands.add_parser(
            "watch",
            help="a live wallboard of the queue in the terminal (Ctrl-C ends it)",
            description=watch_command.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    erase_command.add_erase_arguments(
        commands.add_parser(
            "erase",
            help="erase a customer's personal data (admin token)",
            description=erase_command.__doc__,
        )
    )


def run(args: argparse.Namespace) -> int:
    logs.configure("console", "warning")
    try:
        return asyncio.run(RUNS[args.command](args))
    except ConfigError as error:
        print(f"contact-router {args.command}: {error}", file=sys.stderr)
        return 2
    except RouterError as error:
        print(f"contact-router {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Ctrl-C: how a wallboard is left, not a failure.
        return 0
    except BrokenPipeError:
        # The reader left (`| head`): nothing more to say, and nothing to flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
