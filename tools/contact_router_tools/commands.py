"""The tools' subcommands of `contact-router`: `simulate`, `report`, `staffing`.

router/cli.py adds them to its parser when this package is installed, and says how to
install it when it is not.
"""

from __future__ import annotations

import argparse
import asyncio

from contact_router_tools import report_command, simulate
from router import logs

NAMES = ("simulate", "report", "staffing")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simulate.add_arguments(
        commands.add_parser("simulate", help="drive a router with synthetic traffic")
    )
    report_command.add_report_arguments(
        commands.add_parser("report", help="contact, agent and disposition report for a range")
    )
    report_command.add_staffing_arguments(
        commands.add_parser("staffing", help="agents needed per interval (Erlang C or A)")
    )


def run(args: argparse.Namespace) -> int:
    logs.configure("console", "warning")
    if args.command == "report":
        return asyncio.run(report_command.run_report(args))
    if args.command == "staffing":
        return asyncio.run(report_command.run_staffing(args))
    return asyncio.run(simulate.run(args))
