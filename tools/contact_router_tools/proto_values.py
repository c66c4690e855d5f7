"""The protobuf values the tools read and write, defined once: channels and interval
lengths by the names the command lines and reports use ("phone", "15m"), timestamps as
aware UTC datetimes, and proto3 `optional` fields as None when unset.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from contactrouter.v1 import contact_router_pb2 as pb
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

CHANNELS: Mapping[str, pb.Channel.ValueType] = {
    name.removeprefix("CHANNEL_").lower(): value for name, value in pb.Channel.items() if value
}
"""Each channel's short name ("phone") and its protobuf value, in the proto's order."""

_NAMES: dict[int, str] = {value: name for name, value in CHANNELS.items()}

# The names are router.reporting.intervals.Interval's values, which --interval takes.
INTERVALS: Mapping[str, pb.IntervalLength.ValueType] = {
    "15m": pb.INTERVAL_LENGTH_15_MINUTES,
    "30m": pb.INTERVAL_LENGTH_30_MINUTES,
    "hour": pb.INTERVAL_LENGTH_HOUR,
    "day": pb.INTERVAL_LENGTH_DAY,
    "week": pb.INTERVAL_LENGTH_WEEK,
    "month": pb.INTERVAL_LENGTH_MONTH,
    "year": pb.INTERVAL_LENGTH_YEAR,
}


def channel_name(value: int) -> str:
    """The short name ("phone") of a protobuf Channel value; "unknown" for any other
    (a newer router's channel, or none)."""
    return _NAMES.get(value, "unknown")


def when(stamp: Timestamp) -> datetime:
    """A protobuf Timestamp as an aware UTC datetime."""
    return stamp.ToDatetime(tzinfo=UTC)


def stamp(value: datetime) -> Timestamp:
    """An aware datetime as a protobuf Timestamp."""
    result = Timestamp()
    result.FromDatetime(value)
    return result


def optional(message: Message, field: str) -> float | None:
    """A proto3 `optional` field's value, None when unset."""
    value: float = getattr(message, field)
    return value if message.HasField(field) else None
