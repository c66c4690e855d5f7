"""Protobuf <-> domain conversions. Protobuf messages stop here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from contactrouter.v1 import contact_router_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from router.domain import (
    AgentStatus,
    AgentView,
    Channel,
    Contact,
    ContactState,
    DialOutcome,
    InvalidArgument,
    PreferenceSource,
    validation,
)
from router.domain.contact import Callback, proficiency_tokens, skill_token
from router.domain.explanation import QueueSnapshot
from router.domain.wait_reason import UnservedContact, WaitReason
from router.reporting.alarm import AlarmStatus
from router.reporting.callbacks import CallbackRow
from router.reporting.contacts import ServiceLevelGoal
from router.reporting.plan import StaffingRow

_CHANNEL_TO_PROTO = {
    Channel.PHONE: pb.CHANNEL_PHONE,
    Channel.CHAT: pb.CHANNEL_CHAT,
    Channel.EMAIL: pb.CHANNEL_EMAIL,
}
_CHANNEL_FROM_PROTO = {v: k for k, v in _CHANNEL_TO_PROTO.items()}

_STATE_TO_PROTO = {
    ContactState.QUEUED: pb.CONTACT_STATE_QUEUED,
    ContactState.OFFERED: pb.CONTACT_STATE_OFFERED,
    ContactState.CONNECTED: pb.CONTACT_STATE_CONNECTED,
    ContactState.WRAP_UP: pb.CONTACT_STATE_WRAP_UP,
    ContactState.COMPLETED: pb.CONTACT_STATE_COMPLETED,
    ContactState.ABANDONED: pb.CONTACT_STATE_ABANDONED,
    ContactState.UNREACHED: pb.CONTACT_STATE_UNREACHED,
    ContactState.CANCELLED: pb.CONTACT_STATE_CANCELLED,
}

_OUTCOME_TO_PROTO = {
    DialOutcome.CONNECTED: pb.DIAL_OUTCOME_CONNECTED,
    DialOutcome.NO_ANSWER: pb.DIAL_OUTCOME_NO_ANSWER,
    DialOutcome.BUSY: pb.DIAL_OUTCOME_BUSY,
    DialOutcome.WRONG_NUMBER: pb.DIAL_OUTCOME_WRONG_NUMBER,
}
_OUTCOME_FROM_PROTO = {v: k for k, v in _OUTCOME_TO_PROTO.items()}

_STATUS_TO_PROTO = {
    AgentStatus.OFFLINE: pb.AGENT_STATUS_OFFLINE,
    AgentStatus.READY: pb.AGENT_STATUS_READY,
    AgentStatus.AWAY: pb.AGENT_STATUS_AWAY,
}
_STATUS_FROM_PROTO = {v: k for k, v in _STATUS_TO_PROTO.items()}

_SOURCE_TO_PROTO = {
    None: pb.PREFERENCE_SOURCE_UNSPECIFIED,
    PreferenceSource.GATEWAY: pb.PREFERENCE_SOURCE_GATEWAY,
    PreferenceSource.PREVIOUS_AGENT: pb.PREFERENCE_SOURCE_PREVIOUS_AGENT,
    PreferenceSource.TRANSFER: pb.PREFERENCE_SOURCE_TRANSFER,
    PreferenceSource.SUPERVISOR: pb.PREFERENCE_SOURCE_SUPERVISOR,
}

_REASON_TO_PROTO = {
    WaitReason.AGENTS_BUSY: pb.WAIT_REASON_AGENTS_BUSY,
    WaitReason.AGENTS_AWAY: pb.WAIT_REASON_AGENTS_AWAY,
    WaitReason.PHONE_RESERVE: pb.WAIT_REASON_PHONE_RESERVE,
    WaitReason.PREFERRED_AGENT: pb.WAIT_REASON_PREFERRED_AGENT,
    WaitReason.PREFERRED_SKILLS: pb.WAIT_REASON_PREFERRED_SKILLS,
    WaitReason.DECLINED: pb.WAIT_REASON_DECLINED,
    WaitReason.NO_AGENT_WITH_SKILLS: pb.WAIT_REASON_NO_AGENT_WITH_SKILLS,
    WaitReason.NO_AGENT_SIGNED_IN: pb.WAIT_REASON_NO_AGENT_SIGNED_IN,
    WaitReason.CLOSED: pb.WAIT_REASON_CLOSED,
    WaitReason.CALLBACK_SCHEDULED: pb.WAIT_REASON_CALLBACK_SCHEDULED,
}


def channel_from_proto(value: int, field: str = "channel") -> Channel:
    try:
        return _CHANNEL_FROM_PROTO[value]  # type: ignore[index]
    except KeyError:
        raise InvalidArgument(
            field, f"unknown channel {value}: use CHANNEL_PHONE, CHANNEL_CHAT or CHANNEL_EMAIL"
        ) from None


def channel_to_proto(channel: Channel) -> pb.Channel.ValueType:
    return _CHANNEL_TO_PROTO[channel]


def outcome_from_proto(value: int, field: str = "outcome") -> DialOutcome:
    outcome = _OUTCOME_FROM_PROTO.get(value)  # type: ignore[call-overload]
    if outcome is None:
        raise InvalidArgument(
            field,
            f"unknown dial outcome {value}: use DIAL_OUTCOME_CONNECTED, DIAL_OUTCOME_NO_ANSWER, "
            "DIAL_OUTCOME_BUSY or DIAL_OUTCOME_WRONG_NUMBER",
        )
    result: DialOutcome = outcome
    return result


def status_from_proto(value: int, field: str, default: AgentStatus | None = None) -> AgentStatus:
    if value == pb.AGENT_STATUS_UNSPECIFIED and default is not None:
        return default
    status = _STATUS_FROM_PROTO.get(value)  # type: ignore[call-overload]
    if status is None or status is AgentStatus.OFFLINE:
        raise InvalidArgument(
            field, f"must be AGENT_STATUS_READY or AGENT_STATUS_AWAY, got {value}"
        )
    result: AgentStatus = status
    return result


def status_to_proto(status: AgentStatus) -> pb.AgentStatus.ValueType:
    return _STATUS_TO_PROTO[status]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_TIMINGS = (
    "offered_at",
    "answered_at",
    "ended_at",
    "completed_at",
    "abandoned_at",
    "cancelled_at",
)


def timestamp(value: datetime) -> Timestamp:
    """`value` as a Timestamp (a naive datetime is taken as UTC, as FromDatetime does)."""
    return Timestamp(**_stamp(value))


def _stamp(value: datetime) -> dict[str, int]:
    """A Timestamp's fields for `value`, computed from the timedelta since the epoch:
    1.2 us against FromDatetime's 9.8, and a lifecycle converts about twenty of them.
    Given as a dict to a message's constructor, which builds the Timestamp in place
    instead of copying one built apart."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    since = value - _EPOCH
    return {"seconds": since.days * 86400 + since.seconds, "nanos": since.microseconds * 1000}


def from_timestamp(value: Timestamp, field: str = "timestamp") -> datetime:
    """A request's Timestamp as a datetime; INVALID_ARGUMENT naming `field` when it lies
    outside what Timestamp allows (years 1 to 9999, nanos 0 to 999,999,999), which
    protobuf accepts on the wire but refuses to convert."""
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(
            field,
            f"seconds={value.seconds} nanos={value.nanos} is not a valid timestamp: use "
            "0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z with nanos 0 to 999999999",
        ) from None


def contact_to_proto(contact: Contact) -> pb.Contact:
    # Every RPC of a lifecycle answers with one: built in as few steps as protobuf
    # allows. The timings go to the constructor as a dict of dicts, built in place
    # (a ContactTimings of Timestamps would be built, then copied in); collections
    # only when they hold something (filling a map or a list costs even when empty).
    stamps = {"queued_at": _stamp(contact.queued_at)}
    for name in _TIMINGS:
        value: datetime | None = getattr(contact, name)
        if value is not None:
            stamps[name] = _stamp(value)
    message = pb.Contact(
        contact_id=contact.id,
        idempotency_key=contact.idempotency_key,
        channel=_CHANNEL_TO_PROTO[contact.channel],
        customer_id=contact.customer_id,
        priority_boost=contact.priority_boost,
        state=_STATE_TO_PROTO[contact.state],
        timings=stamps,  # type: ignore[arg-type]  # protobuf takes a message's fields as a dict
        agent_id=contact.agent_id or "",
        disposition=contact.disposition or "",
        offer_count=contact.offer_count,
        preferred_agent_id=contact.preferred_agent_id or "",
        preferred_agent_source=_SOURCE_TO_PROTO[contact.preferred_agent_source],
        callback=None if contact.callback is None else callback_to_proto(contact.callback),
    )
    if contact.attributes:
        message.attributes.update(contact.attributes)
    if contact.required_skills:
        message.required_skills.extend(sorted(contact.required_skills))
    if contact.preferred_skills:
        message.preferred_skills.extend(contact.preferred_skills)
    return message


_CALLBACK_STAMPS = (
    "not_before",
    "not_after",
    "placed_at",
    "reached_at",
    "retry_at",
    "unreached_at",
)


def callback_to_proto(callback: Callback) -> pb.Callback:
    stamps = {"requested_at": timestamp(callback.requested_at)}
    for name in _CALLBACK_STAMPS:
        value: datetime | None = getattr(callback, name)
        if value is not None:
            stamps[name] = timestamp(value)
    return pb.Callback(
        number=callback.number,
        requested_from=channel_to_proto(callback.requested_from),
        attempts=callback.attempts,
        last_outcome=(
            pb.DIAL_OUTCOME_UNSPECIFIED
            if callback.last_outcome is None
            else _OUTCOME_TO_PROTO[callback.last_outcome]
        ),
        **stamps,
    )


def wait_reason_to_proto(reason: WaitReason) -> pb.WaitReason.ValueType:
    return _REASON_TO_PROTO[reason]


def unserved_to_proto(unserved: UnservedContact) -> pb.UnservedContact:
    message = pb.UnservedContact(
        contact_id=unserved.contact_id,
        channel=channel_to_proto(unserved.channel),
        required_skills=sorted(unserved.required_skills),
        wait_seconds=unserved.wait_seconds,
        wait_reason=wait_reason_to_proto(unserved.reason),
    )
    if unserved.fallback_at is not None:
        message.fallback_at.CopyFrom(timestamp(unserved.fallback_at))
    return message


def agent_to_proto(agent: AgentView) -> pb.Agent:
    message = pb.Agent(
        agent_id=agent.id,
        status=_STATUS_TO_PROTO[agent.status],
        away_reason=agent.away_reason,
        skills=sorted(agent.skills),
        capacities=[
            pb.ChannelCapacity(channel=channel_to_proto(c), capacity=n)
            for c, n in agent.capacities.items()
        ],
        connected=agent.connected,
        contact_ids=list(agent.contact_ids),
        team=agent.team,
    )
    if agent.signed_in_at is not None:
        message.signed_in_at.CopyFrom(timestamp(agent.signed_in_at))
    return message


def skill_levels(values: Iterable[pb.SkillLevel], field: str) -> list[tuple[str, int]]:
    """SkillLevel messages as checked (skill, level) pairs, in order."""
    return validation.skill_levels(((v.skill, v.level) for v in values), field)


def required_skills(
    skills: Iterable[str], levels: Iterable[pb.SkillLevel], prefix: str = "required_"
) -> frozenset[str]:
    """A contact's required skills, plain and with levels (`prefix`skills and
    `prefix`skill_levels), at most MAX_REQUIRED_SKILLS in all."""
    required = validation.skills(skills, f"{prefix}skills", validation.MAX_REQUIRED_SKILLS)
    leveled = skill_levels(levels, f"{prefix}skill_levels")
    required |= {skill_token(skill, level) for skill, level in leveled}
    if len(required) > validation.MAX_REQUIRED_SKILLS:
        raise InvalidArgument(
            f"{prefix}skill_levels",
            f"at most {validation.MAX_REQUIRED_SKILLS} required skills in all",
        )
    return required


def agent_skills(skills: Iterable[str], levels: Iterable[pb.SkillLevel]) -> frozenset[str]:
    """An agent's skills as routing matches them (`skills` and `skill_levels`)."""
    held = validation.skills(skills, "skills", validation.MAX_AGENT_SKILLS)
    for skill, level in skill_levels(levels, "skill_levels"):
        held |= proficiency_tokens(skill, level)
    if len(held) > validation.MAX_AGENT_SKILLS * validation.MAX_LEVEL:
        raise InvalidArgument("skill_levels", "too many skills and levels")
    return held


def capacities_from_proto(entries: Iterable[pb.ChannelCapacity]) -> dict[Channel, int]:
    """An agent's capacities as given (`capacities`), each channel at most once."""
    capacities: dict[Channel, int] = {}
    for entry in entries:
        channel = channel_from_proto(entry.channel, "capacities.channel")
        if channel in capacities:
            raise InvalidArgument("capacities", f"{channel.value} is listed twice")
        capacities[channel] = entry.capacity
    return capacities


# ------------------------------------------------------------ the live queue
# GetQueueStatus and WatchQueue show the same snapshot the same way.


def channel_queue_to_proto(snapshot: QueueSnapshot, channel: Channel) -> pb.ChannelQueue:
    return pb.ChannelQueue(
        channel=channel_to_proto(channel),
        waiting=snapshot.waiting[channel],
        offered=snapshot.offered[channel],
        oldest_wait_seconds=snapshot.oldest_wait[channel],
        unserved=snapshot.unserved[channel],
        closed=channel in snapshot.closed,
    )


def agent_counts_to_proto(snapshot: QueueSnapshot) -> pb.AgentCounts:
    return pb.AgentCounts(
        idle=snapshot.agents_idle,
        busy=snapshot.agents_busy,
        away=snapshot.agents_away,
        disconnected=snapshot.agents_disconnected,
        signed_in=snapshot.agents_signed_in,
    )


def alarm_to_proto(alarm: AlarmStatus) -> pb.ServiceLevelAlarm:
    message = pb.ServiceLevelAlarm(raised=alarm.raised, threshold=alarm.threshold)
    if alarm.rolling_service_level is not None:
        message.rolling_service_level = alarm.rolling_service_level
    if alarm.raised_at is not None:
        message.raised_at.CopyFrom(timestamp(alarm.raised_at))
    return message


def callback_row_to_proto(row: CallbackRow) -> pb.CallbackServiceLevelRow:
    f = row.figures
    message = pb.CallbackServiceLevelRow(
        interval_start=timestamp(f.interval_start),
        requested_from=channel_to_proto(f.requested_from),
        requested=f.requested,
        placed=f.placed,
        placed_within_target=f.placed_within_target,
        reached=f.reached,
        unreached=f.unreached,
        unreached_before_dial=f.unreached_before_dial,
        cancelled=f.cancelled,
        dials=f.dials,
        cancelled_by_supervisor=f.cancelled_by_supervisor,
        waiting=f.waiting,
    )
    for name, value in (
        ("service_level", row.service_level),
        ("mean_seconds_to_placed", f.mean_seconds_to_placed),
        ("mean_seconds_to_reached", f.mean_seconds_to_reached),
    ):
        if value is not None:
            setattr(message, name, value)
    return message


def goal_to_proto(goal: ServiceLevelGoal) -> pb.ServiceLevelGoal:
    return pb.ServiceLevelGoal(
        channel=channel_to_proto(goal.channel),
        threshold_seconds=goal.threshold_seconds,
        goal=goal.goal,
        alarm_below=goal.alarm_below,
    )


def set_optional(message: Any, field: str, value: float | None) -> None:
    """Set an optional (proto3 `optional`) field unless `value` is None: unset, the
    field reads as absent, not as 0."""
    if value is not None:
        setattr(message, field, value)


def staffing_row_to_proto(r: StaffingRow, callbacks: bool) -> pb.StaffingRow:
    """`callbacks`: the plan counted queued callbacks' work (phone from history)."""
    s = r.staffed
    row = pb.StaffingRow(
        interval_start=timestamp(r.interval_start),
        calls=s.calls,
        aht_seconds=s.aht_seconds,
        traffic_erlangs=s.traffic_erlangs,
        agents=s.agents,
        agents_scheduled=s.agents_scheduled,
        service_level=s.service_level,
        asa_seconds=s.asa_seconds,
        occupancy=s.occupancy,
        probability_of_waiting=s.probability_of_waiting,
    )
    set_optional(row, "abandonment", s.abandonment)
    set_optional(row, "separate_agents", r.separate_agents)
    if r.actual is not None:
        row.staffed_agents = r.actual.staffed_agents
        set_optional(row, "measured_service_level", r.actual.service_level)
        row.missed = r.actual.missed
    if callbacks:
        row.callback_erlangs = s.callback_erlangs
    return row
