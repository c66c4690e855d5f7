"""contact-router watch's screen, drawn from a made-up picture."""

from __future__ import annotations

import io

import pytest
from contact_router_tools.watch_command import Board, render, service_level_text, wait_text
from contactrouter.v1 import contact_router_pb2 as pb
from rich.console import Console


def watched(value: float | None) -> pb.WatchedChannel:
    channel = pb.WatchedChannel(
        queue=pb.ChannelQueue(channel=pb.CHANNEL_PHONE, waiting=3, oldest_wait_seconds=75.4),
        goal=pb.ServiceLevelGoal(
            channel=pb.CHANNEL_PHONE, threshold_seconds=20, goal=0.8, alarm_below=0.7
        ),
        alarm=pb.ServiceLevelAlarm(threshold=0.7),
    )
    if value is not None:
        channel.alarm.rolling_service_level = value
    return channel


class TestBoard:
    @pytest.mark.parametrize(
        ("seconds", "shown"),
        [(0, "0s"), (59.9, "59s"), (60, "1:00"), (185, "3:05"), (3723, "1:02:03")],
    )
    def test_waits_read_as_clock_times(self, seconds: float, shown: str) -> None:
        """Under a minute in seconds, then m:ss, then h:mm:ss."""
        assert wait_text(seconds) == shown

    @pytest.mark.parametrize(
        ("value", "text", "style"),
        [
            (0.65, "65.0%", "bold red"),
            (0.7, "70.0%", ""),
            (0.8, "80.0%", "green"),
            (None, "-", ""),
        ],
    )
    def test_service_level_is_red_below_the_alarm(
        self, value: float | None, text: str, style: str
    ) -> None:
        """Below the alarm line: red; at or above the goal: green; nothing counted: -."""
        shown = service_level_text(watched(value))
        assert (shown.plain, str(shown.style)) == (text, style)

    def test_the_screen_shows_the_picture_and_the_trouble(self) -> None:
        """The channel row, the agents, and why the board is not live."""
        picture = pb.WatchQueueResponse(
            channels=[watched(0.5)],
            agents=pb.AgentCounts(idle=2, away=1, signed_in=3),
            away_reasons=[pb.AwayReasonCount(reason="lunch", agents=1)],
            sequence=7,
        )
        board = Board("router:50051", picture, "reconnecting in 0.1 s: router stopping")
        console = Console(file=io.StringIO(), width=120, record=True)
        console.print(render(board))
        text = console.export_text()
        assert "phone" in text
        assert "50.0%" in text
        assert "1:15" in text
        assert "idle 2" in text
        assert "lunch 1" in text
        assert "#7" in text
        assert "reconnecting in 0.1 s" in text
