"""The pure routing core: no gRPC, no database, no clock reads (time is passed in)."""

from router.domain.agent import Agent, AgentStatus, AgentView
from router.domain.channel import Channel, ChannelPolicy, RoutingPolicy
from router.domain.contact import Callback, Contact, ContactState, DialOutcome, PreferenceSource
from router.domain.events import (
    AgentEvent,
    AgentEventKind,
    ContactEvent,
    ContactEventKind,
    Event,
    OfferWithdrawn,
)
from router.domain.explanation import QueueSnapshot
from router.domain.offer import Offer
from router.domain.router import Router
from router.errors import DomainError, InvalidArgument, NotFound, QueueFull, WrongState

__all__ = [
    "Agent",
    "AgentEvent",
    "AgentEventKind",
    "AgentStatus",
    "AgentView",
    "Callback",
    "Channel",
    "ChannelPolicy",
    "Contact",
    "ContactEvent",
    "ContactEventKind",
    "ContactState",
    "DialOutcome",
    "DomainError",
    "Event",
    "InvalidArgument",
    "NotFound",
    "Offer",
    "OfferWithdrawn",
    "PreferenceSource",
    "QueueFull",
    "QueueSnapshot",
    "Router",
    "RoutingPolicy",
    "WrongState",
]
