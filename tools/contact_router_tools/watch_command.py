"""`contact-router watch`: a terminal wallboard of the live queue.

It follows ReportingService.WatchQueue (through contactrouter.client's
Reports.watch_queue(), which opens the stream again when the router stops or the
connection drops) and redraws with rich's Live display on every picture: the router
sends one within a fraction of a second of a change (ROUTER_WATCH_INTERVAL_SECONDS), and
once a second anyway, so waits keep growing on screen. Per channel: the rolling service
level (red below the channel's alarm line), its goal, waiting, offered, the oldest
wait, unserved contacts; then the agents by state and the away ones by reason. While
the router cannot be reached the last picture stays, with a line saying so.
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass

import grpc
from contactrouter.client import Reports
from contactrouter.v1 import contact_router_pb2 as pb
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from contact_router_tools.connection import RouterConnection, add_router_arguments
from contact_router_tools.proto_values import channel_name, optional, when
from contact_router_tools.tables import percent
from router.errors import RouterError

REFRESH_PER_SECOND = 4
"""How often rich redraws the screen at most (a picture asks for a redraw at once)."""


COLUMNS = (
    "service level",
    "goal",
    "alarm below",
    "waiting",
    "offered",
    "oldest wait",
    "unserved",
)
"""The channel table's columns after the channel's name."""


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    add_router_arguments(parser)


@dataclass
class Board:
    """What the screen shows: the newest picture, and how the stream stands."""

    address: str
    picture: pb.WatchQueueResponse | None = None
    trouble: str | None = None
    """Why the board is not live now (the router is away), or None."""


def wait_text(value: float) -> str:
    """A wait (or a target) as a supervisor reads it: "42s", "3:05", "1:02:03"."""
    whole = int(value)
    if whole < 60:
        return f"{whole}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def service_level_text(channel: pb.WatchedChannel) -> Text:
    """The rolling service level, red below the channel's alarm line, green at or above
    its goal; "-" while nothing counted in the window."""
    value = optional(channel.alarm, "rolling_service_level")
    if value is None:
        return Text("-")
    style = ""
    if value < channel.goal.alarm_below:
        style = "bold red"
    elif value >= channel.goal.goal:
        style = "green"
    return Text(str(percent(value)), style=style)


def channel_table(picture: pb.WatchQueueResponse) -> Table:
    table = Table()
    table.add_column("channel", no_wrap=True)
    for heading in COLUMNS:
        table.add_column(heading, justify="right", no_wrap=True)
    for channel in picture.channels:
        queue, goal = channel.queue, channel.goal
        table.add_row(
            channel_name(queue.channel),
            service_level_text(channel),
            f"{percent(goal.goal, 0)} in {wait_text(goal.threshold_seconds)}",
            str(percent(goal.alarm_below, 0)),
            str(queue.waiting),
            str(queue.offered),
            wait_text(queue.oldest_wait_seconds),
            str(queue.unserved),
        )
    return table


def agents_text(picture: pb.WatchQueueResponse) -> Text:
    agents = picture.agents
    text = Text("agents  ")
    for label, count in (
        ("idle", agents.idle),
        ("busy", agents.busy),
        ("away", agents.away),
        ("disconnected", agents.disconnected),
        ("signed in", agents.signed_in),
    ):
        text.append(f"{label} {count}   ", style="bold" if label == "idle" else "")
    if picture.away_reasons:
        reasons = ", ".join(f"{a.reason or 'no reason'} {a.agents}" for a in picture.away_reasons)
        text.append(f"\naway by reason  {reasons}")
    return text


def render(board: Board) -> RenderableType:
    """The whole screen for `board`."""
    parts: list[RenderableType] = []
    picture = board.picture
    heading = Text(f"contact-router wallboard  {board.address}", style="bold")
    if picture is not None:
        as_of = when(picture.as_of)
        heading.append(f"   as of {as_of:%H:%M:%S} UTC   #{picture.sequence}", style="")
    parts.append(heading)
    if picture is not None:
        parts.append(channel_table(picture))
        parts.append(agents_text(picture))
    if board.trouble is not None:
        parts.append(Text(board.trouble, style="bold yellow"))
    elif picture is None:
        parts.append(Text("connecting..."))
    return Group(*parts)


async def run_watch(args: argparse.Namespace) -> int:
    """Follow the queue until interrupted (Ctrl-C); a refusal the stream cannot get
    past (a token without the reporting role, too many watchers) ends it with one line."""
    router = RouterConnection.from_args(args)
    board = Board(router.address)
    console = Console()
    async with router.channel() as channel:
        with Live(render(board), console=console, refresh_per_second=REFRESH_PER_SECOND) as live:

            def retrying(error: grpc.aio.AioRpcError, wait: float) -> None:
                board.trouble = f"reconnecting in {wait:.1f} s: {router.explain(error)}"
                live.update(render(board), refresh=True)

            pictures = Reports(channel).watch_queue(on_retry=retrying)
            async with contextlib.aclosing(pictures):
                try:
                    async for picture in pictures:
                        board.picture, board.trouble = picture, None
                        live.update(render(board), refresh=True)
                except grpc.aio.AioRpcError as error:
                    raise RouterError(router.explain(error)) from None
    return 0
