"""The protobuf values every tool shares (contact_router_tools.proto_values)."""

from __future__ import annotations

from datetime import UTC, datetime

from contact_router_tools.proto_values import (
    CHANNELS,
    INTERVALS,
    channel_name,
    optional,
    stamp,
    when,
)
from contactrouter.v1 import contact_router_pb2 as pb

from router.domain import Channel
from router.reporting.intervals import Interval


def test_channels_are_the_routers_by_name_in_the_protos_order() -> None:
    assert list(CHANNELS) == [channel.value for channel in Channel]
    assert CHANNELS["phone"] == pb.CHANNEL_PHONE
    assert [channel_name(value) for value in CHANNELS.values()] == list(CHANNELS)


def test_a_channel_the_tools_do_not_know_is_unknown() -> None:
    assert channel_name(pb.CHANNEL_UNSPECIFIED) == "unknown"
    assert channel_name(99) == "unknown"


def test_interval_names_are_the_reporting_intervals() -> None:
    """--interval's choices are what router.reporting.intervals.Interval takes."""
    assert list(INTERVALS) == [interval.value for interval in Interval]
    assert len(set(INTERVALS.values())) == len(INTERVALS)
    assert pb.INTERVAL_LENGTH_UNSPECIFIED not in INTERVALS.values()


def test_a_time_goes_and_comes_back_in_utc() -> None:
    moment = datetime(2026, 3, 18, 9, 15, 30, 250000, tzinfo=UTC)
    assert when(stamp(moment)) == moment
    assert when(stamp(moment)).tzinfo is UTC


def test_an_unset_optional_field_is_none_and_a_set_zero_is_zero() -> None:
    row = pb.ServiceLevelRow()
    assert optional(row, "service_level") is None
    row.service_level = 0.0
    assert optional(row, "service_level") == 0.0
