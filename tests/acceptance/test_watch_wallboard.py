"""`contact-router watch` as a supervisor sees it: run in a tmux pane of fixed size
against a real router, its screen read with `tmux capture-pane` (polled with a
deadline) while contacts arrive, a call is abandoned, and the router restarts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from contact_router_tools import watch_command
from contactrouter.v1 import contact_router_pb2 as pb
from contactrouter.v1 import contact_router_pb2_grpc as pb_grpc

from router.domain import RoutingPolicy
from router.server import RunningRouter, start_router
from tests.acceptance.conftest import eventually, submit
from tests.acceptance.ports import free_port

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

COLUMNS = ("channel", *watch_command.COLUMNS)
RED = re.compile(r"\x1b\[[0-9;]*31[;m]")


class Pane:
    """A detached tmux session of fixed size on a private server, running one command."""

    def __init__(self, directory: Path) -> None:
        self.socket = f"watch-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.config = directory / "tmux.conf"
        # The pane stays after the command exits, so a crash is read, not lost.
        self.config.write_text("set -g remain-on-exit on\nset -g status off\n")

    async def tmux(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            "tmux",
            "-L",
            self.socket,
            "-f",
            str(self.config),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode()

    async def start(self, *command: str) -> None:
        # The test run sets COLUMNS and LINES (80 by 24), which rich would believe over
        # the pane's own size.
        unset = ("env", "-u", "COLUMNS", "-u", "LINES")
        await self.tmux(
            "new-session", "-d", "-s", "board", "-x", "110", "-y", "30", *unset, *command
        )

    async def screen(self, *, colours: bool = False) -> str:
        return await self.tmux("capture-pane", "-p", *(("-e",) if colours else ()), "-t", "board")

    async def shows(
        self,
        holds: Callable[[str], bool],
        what: str,
        within: float = 20.0,
        *,
        colours: bool = False,
    ) -> str:
        """The screen once `holds(screen)`; fails with the last screen after `within` s."""
        seen = [""]

        async def check() -> bool:
            seen[0] = await self.screen()
            return holds(seen[0])

        try:
            await eventually(check, within, what)
        except AssertionError as failure:
            raise AssertionError(f"{failure}; the screen:\n{seen[0]}") from None
        return seen[0]

    async def close(self) -> None:
        with contextlib.suppress(AssertionError, OSError):
            await self.tmux("kill-server")


def row(screen: str, channel: str) -> dict[str, str]:
    """The channel's row of the wallboard's table, by column ({} if not on screen)."""
    for line in screen.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│|┃]", line)]
        if len(cells) >= len(COLUMNS) + 2 and cells[1] == channel:
            return dict(zip(COLUMNS, cells[1:-1], strict=True))
    return {}


def waiting(channel: str, count: int) -> Callable[[str], bool]:
    return lambda screen: row(screen, channel).get("waiting") == str(count)


@pytest.fixture
async def pane(tmp_path: Path) -> AsyncIterator[Pane]:
    made = Pane(tmp_path)
    try:
        yield made
    finally:
        await made.close()


class TestWallboard:
    async def test_the_board_follows_the_queue_and_a_restart(
        self, database_url: str, pane: Pane
    ) -> None:
        """The board shows each channel's waiting contacts as they arrive; a call
        abandoned after the short-abandon limit puts phone's service level at 0%, in
        red; when the router stops the board says it is reconnecting, and once a router
        serves the port again it shows the restored queue and what arrives next."""
        policy = RoutingPolicy(phone_reserve=0, short_abandon=0.0)
        port = free_port()
        router: RunningRouter | None = await start_router(database_url, policy, port=port)
        address = f"127.0.0.1:{port}"
        try:
            await pane.start(sys.executable, "-m", "router.cli", "watch", "--router", address)
            await pane.shows(waiting("phone", 0), "the first picture")
            async with grpc.aio.insecure_channel(address) as channel:
                contacts = pb_grpc.ContactServiceStub(channel)
                first = await submit(contacts, "call-1")
                await submit(contacts, "call-2")
                await submit(contacts, "chat-1", pb.CHANNEL_CHAT)
                await pane.shows(
                    lambda s: waiting("phone", 2)(s) and waiting("chat", 1)(s),
                    "two calls and a chat waiting",
                )
                await contacts.AbandonContact(pb.AbandonContactRequest(contact_id=first.contact_id))
                screen = await pane.shows(
                    lambda s: row(s, "phone").get("service level") == "0.0%",
                    "phone's service level after the abandoned call",
                )
                assert waiting("phone", 1)(screen)
                coloured = await pane.screen(colours=True)
                phone_line = next(line for line in coloured.splitlines() if "phone" in line)
                assert RED.search(phone_line.split("0.0%")[0]), phone_line

            assert router is not None
            await router.stop(grace=1.0)
            router = None
            await pane.shows(lambda s: "reconnecting" in s, "the board reconnecting")
            router = await start_router(database_url, policy, port=port)
            async with grpc.aio.insecure_channel(address) as channel:
                await submit(pb_grpc.ContactServiceStub(channel), "chat-2", pb.CHANNEL_CHAT)
            screen = await pane.shows(
                lambda s: waiting("chat", 2)(s) and "reconnecting" not in s,
                "the restarted router's queue",
            )
            assert waiting("phone", 1)(screen)
        finally:
            if router is not None:
                await router.stop(grace=1.0)
