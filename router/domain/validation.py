"""Checks on what callers send, shared by every transport; each names the field."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from router.errors import InvalidArgument

SKILL = re.compile(r"[a-z0-9][a-z0-9:_.\-]{0,63}")
AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9:_.@\-]{0,127}")
TEAM = re.compile(r"[A-Za-z0-9:_.@\-](?:[A-Za-z0-9 :_.@\-]{0,62}[A-Za-z0-9:_.@\-])?")
"""A team's name: 1 to 64 letters, digits, spaces and :_.@-, not starting or ending with
a space ("Returns West", "tier-2")."""
MAX_REQUIRED_SKILLS = 16
MAX_AGENT_SKILLS = 64
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_VALUE = 1024
MAX_KEY = 128
MAX_CUSTOMER_ID = 256
MAX_REASON = 64
MIN_BOOST, MAX_BOOST = 1.0, 10.0
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
"""A phone number in E.164: '+', the country code and the number, 7 to 15 digits in all,
no spaces or punctuation ("+14155550123")."""


def idempotency_key(value: str) -> str:
    if not value:
        raise InvalidArgument("idempotency_key", "is required")
    if len(value) > MAX_KEY or not value.isprintable():
        raise InvalidArgument("idempotency_key", f"must be 1 to {MAX_KEY} printable characters")
    return value


def customer_id(value: str) -> str:
    if not value.strip():
        raise InvalidArgument("customer_id", "is required")
    if len(value) > MAX_CUSTOMER_ID or not value.isprintable():
        raise InvalidArgument("customer_id", f"must be 1 to {MAX_CUSTOMER_ID} printable characters")
    return value


def attributes(values: Mapping[str, str]) -> dict[str, str]:
    if len(values) > MAX_ATTRIBUTES:
        raise InvalidArgument("attributes", f"at most {MAX_ATTRIBUTES} entries, got {len(values)}")
    for key, value in values.items():
        if not key or len(key) > MAX_ATTRIBUTE_KEY:
            raise InvalidArgument("attributes", f"keys must be 1 to {MAX_ATTRIBUTE_KEY} characters")
        if len(value) > MAX_ATTRIBUTE_VALUE:
            raise InvalidArgument(
                "attributes",
                f"value of {key[:MAX_ATTRIBUTE_KEY]!r} exceeds {MAX_ATTRIBUTE_VALUE} characters",
            )
        if "\x00" in key or "\x00" in value:
            raise InvalidArgument("attributes", "must not contain NUL characters")
    return dict(values)


def skills(values: Iterable[str], field: str, limit: int) -> frozenset[str]:
    result = frozenset(values)
    if len(result) > limit:
        raise InvalidArgument(field, f"at most {limit} skills, got {len(result)}")
    for skill in result:
        if not SKILL.fullmatch(skill):
            raise InvalidArgument(
                field, f"{skill[:80]!r} is not a skill: use 1 to 64 characters of [a-z0-9:_.-]"
            )
    return result


MAX_PREFERRED_SKILLS = 8
MAX_LEVEL = 5


def skill_levels(values: Iterable[tuple[str, int]], field: str) -> list[tuple[str, int]]:
    """(skill, level) pairs in the given order; level 0 means 1."""
    result = []
    for skill, level in values:
        if not SKILL.fullmatch(skill):
            raise InvalidArgument(
                field, f"{skill[:80]!r} is not a skill: use 1 to 64 characters of [a-z0-9:_.-]"
            )
        if not 0 <= level <= MAX_LEVEL:
            raise InvalidArgument(field, f"level of {skill} must be between 1 and {MAX_LEVEL}")
        result.append((skill, max(1, level)))
    return result


def agent_id(value: str, field: str = "agent_id") -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    if not AGENT_ID.fullmatch(value):
        raise InvalidArgument(field, "must be 1 to 128 characters of [A-Za-z0-9:_.@-]")
    return value


def priority_boost(value: float) -> float:
    if value == 0:
        return 1.0
    if not math.isfinite(value) or not MIN_BOOST <= value <= MAX_BOOST:
        raise InvalidArgument(
            "priority_boost", f"must be between {MIN_BOOST} and {MAX_BOOST} (or unset)"
        )
    # Rounded so that boosts form few queue classes (see queue.py).
    return round(value, 1)


def disposition(value: str) -> str:
    if not value:
        raise InvalidArgument("disposition", "is required")
    if not SKILL.fullmatch(value):
        raise InvalidArgument(
            "disposition", "must be 1 to 64 characters of [a-z0-9:_.-], such as 'order-status'"
        )
    return value


def away_reason(value: str) -> str:
    if len(value) > MAX_REASON or not value.isprintable():
        raise InvalidArgument("away_reason", f"at most {MAX_REASON} printable characters")
    return value


def phone_number(value: str, field: str = "number") -> str:
    """A number to dial, in E.164."""
    if not value:
        raise InvalidArgument(field, "is required: the number to call back, in E.164")
    if not E164.fullmatch(value):
        raise InvalidArgument(
            field, "must be in E.164: '+', then 7 to 15 digits, no spaces (+14155550123)"
        )
    return value


MAX_SUPERVISOR_REASON = 200


def supervisor_reason(value: str) -> str:
    """Why a supervisor acts: required, recorded with the action."""
    if not value.strip():
        raise InvalidArgument("reason", "is required: say why, for the record")
    if len(value) > MAX_SUPERVISOR_REASON or not value.isprintable():
        raise InvalidArgument("reason", f"at most {MAX_SUPERVISOR_REASON} printable characters")
    return value


UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def uuid_text(value: str, field: str) -> str:
    if not UUID_TEXT.fullmatch(value):
        raise InvalidArgument(field, "must be a UUID")
    return value.lower()


def team(value: str, field: str) -> str:
    """A team's name, or "" (none)."""
    if value and not TEAM.fullmatch(value):
        raise InvalidArgument(
            field,
            f"{value[:80]!r} is not a team: use 1 to 64 letters, digits, spaces and :_.@- "
            "(not starting or ending with a space)",
        )
    return value


MAX_AGENT_FILTER = 1000


def agent_ids(values: Iterable[str], field: str, limit: int = MAX_AGENT_FILTER) -> frozenset[str]:
    """A list of agent ids given as a filter: at most `limit`, each a valid agent id (a
    malformed one could never match, so it is refused rather than silently ignored)."""
    result = frozenset(values)
    if len(result) > limit:
        raise InvalidArgument(field, f"at most {limit} agent ids, got {len(result)}")
    for value in result:
        if not AGENT_ID.fullmatch(value):
            raise InvalidArgument(
                field,
                f"{value[:80]!r} is not an agent id: use 1 to 128 characters of [A-Za-z0-9:_.@-]",
            )
    return result
