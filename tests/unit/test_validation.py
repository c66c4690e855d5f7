"""validation.py: every check refuses bad input with InvalidArgument naming the field."""

from __future__ import annotations

import math
import string
import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.domain import InvalidArgument
from router.domain import validation as v

Check = Callable[[], object]
T = TypeVar("T")

REJECTED: list[tuple[str, str, Check]] = [
    ("empty key", "idempotency_key", lambda: v.idempotency_key("")),
    ("long key", "idempotency_key", lambda: v.idempotency_key("k" * 129)),
    ("key with newline", "idempotency_key", lambda: v.idempotency_key("a\nb")),
    ("blank customer", "customer_id", lambda: v.customer_id("   ")),
    ("long customer", "customer_id", lambda: v.customer_id("c" * 257)),
    ("customer with tab", "customer_id", lambda: v.customer_id("a\tb")),
    ("33 attributes", "attributes", lambda: v.attributes({str(i): "x" for i in range(33)})),
    ("empty attribute key", "attributes", lambda: v.attributes({"": "x"})),
    ("long attribute key", "attributes", lambda: v.attributes({"k" * 65: "x"})),
    ("long attribute value", "attributes", lambda: v.attributes({"k": "x" * 1025})),
    ("NUL in attribute", "attributes", lambda: v.attributes({"k": "a\x00b"})),
    ("too many skills", "required_skills", lambda: v.skills(["a", "b", "c"], "required_skills", 2)),
    ("upper-case skill", "skills", lambda: v.skills(["Lang:es"], "skills", 64)),
    ("empty skill", "skills", lambda: v.skills([""], "skills", 64)),
    ("skill with space", "skills", lambda: v.skills(["lang es"], "skills", 64)),
    ("65-char skill", "skills", lambda: v.skills(["s" * 65], "skills", 64)),
    ("empty agent", "agent_id", lambda: v.agent_id("")),
    ("agent with space", "agent_id", lambda: v.agent_id("ann smith")),
    ("129-char agent", "agent_id", lambda: v.agent_id("a" * 129)),
    ("agent starting with dash", "agent_id", lambda: v.agent_id("-ann")),
    ("boost below 1", "priority_boost", lambda: v.priority_boost(0.5)),
    ("boost above 10", "priority_boost", lambda: v.priority_boost(10.5)),
    ("negative boost", "priority_boost", lambda: v.priority_boost(-2.0)),
    ("NaN boost", "priority_boost", lambda: v.priority_boost(math.nan)),
    ("infinite boost", "priority_boost", lambda: v.priority_boost(math.inf)),
    ("empty disposition", "disposition", lambda: v.disposition("")),
    ("disposition with space", "disposition", lambda: v.disposition("order status")),
    ("long away reason", "away_reason", lambda: v.away_reason("r" * 65)),
    ("away reason with newline", "away_reason", lambda: v.away_reason("a\nb")),
    (
        "1001 agent ids",
        "agent_ids",
        lambda: v.agent_ids([f"a{i}" for i in range(1001)], "agent_ids"),
    ),
    ("malformed agent id", "agent_ids", lambda: v.agent_ids(["a1", "ann smith"], "agent_ids")),
    ("team with leading space", "team", lambda: v.team(" returns", "team")),
    ("team with trailing space", "team", lambda: v.team("returns ", "team")),
    ("65-char team", "team", lambda: v.team("t" * 65, "team")),
    ("team with semicolon", "team", lambda: v.team("a;b", "team")),
    ("team with newline", "team", lambda: v.team("a\nb", "team")),
    ("not a uuid", "contact_id", lambda: v.uuid_text("c-1", "contact_id")),
    ("uuid with braces", "offer_id", lambda: v.uuid_text("{" + "0" * 8 + "}", "offer_id")),
]


class TestRejections:
    @pytest.mark.parametrize(("case", "field", "check"), REJECTED, ids=[c for c, _, _ in REJECTED])
    def test_bad_input_names_the_field(self, case: str, field: str, check: Check) -> None:
        """Bad input raises InvalidArgument whose field and message name the field."""
        with pytest.raises(InvalidArgument) as raised:
            check()
        assert raised.value.field == field
        assert str(raised.value).startswith(f"{field}: ")


class TestAcceptedValues:
    def test_valid_text_fields_come_back_unchanged(self) -> None:
        """Valid keys, ids, skills, dispositions and reasons are returned as given."""
        assert v.idempotency_key("gw-1:abc") == "gw-1:abc"
        assert v.customer_id("cust 42") == "cust 42"
        assert v.agent_id("ann.smith@site-1") == "ann.smith@site-1"
        assert v.skills(["lang:es", "returns", "lang:es"], "skills", 2) == {"lang:es", "returns"}
        assert v.disposition("order-status") == "order-status"
        assert v.away_reason("") == ""
        assert v.away_reason("lunch") == "lunch"
        assert v.team("", "team") == ""
        assert v.team("Returns West", "team") == "Returns West"
        assert v.team("tier-2@site_1", "team") == "tier-2@site_1"
        assert v.team("t" * 64, "team") == "t" * 64
        assert v.team("a", "team") == "a"

    def test_limits_are_inclusive(self) -> None:
        """Values exactly at each limit are accepted."""
        assert v.idempotency_key("k" * 128) == "k" * 128
        assert v.agent_id("a" * 128) == "a" * 128
        assert len(v.attributes({str(i): "x" * 1024 for i in range(32)})) == 32
        assert v.skills(["s" * 64], "skills", 1) == {"s" * 64}

    def test_attributes_are_copied(self) -> None:
        """attributes() returns a new dict, so later changes by the caller do not leak in."""
        given = {"order": "123"}
        result = v.attributes(given)
        given["order"] = "changed"
        assert result == {"order": "123"}

    def test_boost_unset_means_one_and_is_rounded(self) -> None:
        """A zero (unset) boost means 1.0; others are rounded to one decimal."""
        assert v.priority_boost(0.0) == 1.0
        assert v.priority_boost(2.34) == 2.3
        assert v.priority_boost(10.0) == 10.0

    def test_uuid_is_lower_cased(self) -> None:
        """A UUID in capitals is accepted and normalised to lower case."""
        text = "0AF1C2D3-0000-4000-8000-00000000ABCD"
        assert v.uuid_text(text, "offer_id") == text.lower()


# Text that reaches every limit: arbitrary unicode (with NUL and control characters),
# the characters the patterns allow, and runs of one character around each length.
LENGTHS = (0, 1, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1023, 1024, 1025)
any_text = st.one_of(
    st.text(max_size=300),
    st.text(st.sampled_from("abcXYZ019:_.-@ \t\n\x00é語😀"), max_size=140),
    st.builds(lambda c, n: c * n, st.sampled_from("aZ0-: \x00é😀"), st.sampled_from(LENGTHS)),
)


def outcome(check: Callable[[], T], field: str) -> T | None:
    """The check's value, or None when it refused with InvalidArgument naming `field`.

    Any other exception propagates and fails the property: a refusal must always be an
    InvalidArgument, which the API answers with INVALID_ARGUMENT."""
    try:
        return check()
    except InvalidArgument as error:
        refused = error
    assert refused.field == field
    assert str(refused).startswith(f"{field}: ")
    return None


class TestAnyInput:
    """Whatever a caller sends, each check either returns a value within its limits or
    refuses with InvalidArgument naming the field; nothing else."""

    @given(any_text)
    def test_idempotency_key(self, text: str) -> None:
        """Accepted keys are 1 to 128 printable characters, returned unchanged."""
        key = outcome(lambda: v.idempotency_key(text), "idempotency_key")
        if key is not None:
            assert key == text
            assert 1 <= len(key) <= v.MAX_KEY
            assert key.isprintable()

    @given(any_text)
    def test_customer_id(self, text: str) -> None:
        """Accepted customer ids are 1 to 256 printable characters, not all blank."""
        customer = outcome(lambda: v.customer_id(text), "customer_id")
        if customer is not None:
            assert customer == text
            assert customer.strip()
            assert len(customer) <= v.MAX_CUSTOMER_ID
            assert customer.isprintable()

    @given(st.dictionaries(any_text, any_text, max_size=40))
    def test_attributes(self, values: dict[str, str]) -> None:
        """Accepted attributes have at most 32 entries, keys of 1 to 64 and values of at
        most 1024 characters, and no NUL (PostgreSQL's jsonb refuses it)."""
        result = outcome(lambda: v.attributes(values), "attributes")
        if result is not None:
            assert result == values
            assert len(result) <= v.MAX_ATTRIBUTES
            for key, value in result.items():
                assert 1 <= len(key) <= v.MAX_ATTRIBUTE_KEY
                assert len(value) <= v.MAX_ATTRIBUTE_VALUE
                assert "\x00" not in key + value

    @given(st.lists(st.one_of(any_text, st.sampled_from(["es", "vip"])), max_size=70))
    def test_skills(self, values: list[str]) -> None:
        """Accepted skill sets are within the limit, each skill of the documented form."""
        result = outcome(lambda: v.skills(values, "skills", v.MAX_AGENT_SKILLS), "skills")
        if result is not None:
            assert result == set(values)
            assert len(result) <= v.MAX_AGENT_SKILLS
            assert all(v.SKILL.fullmatch(skill) for skill in result)

    @given(any_text)
    def test_agent_id(self, text: str) -> None:
        """Accepted agent ids are 1 to 128 characters of [A-Za-z0-9:_.@-]."""
        agent = outcome(lambda: v.agent_id(text), "agent_id")
        if agent is not None:
            assert agent == text
            assert 1 <= len(agent) <= 128
            assert set(agent) <= set(string.ascii_letters + string.digits + ":_.@-")

    @given(st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 0.95, 1.0, 10.0, 10.04, 10.05])))
    def test_priority_boost(self, value: float) -> None:
        """Accepted boosts are finite, between 1.0 and 10.0, with one decimal."""
        boost = outcome(lambda: v.priority_boost(value), "priority_boost")
        if boost is not None:
            assert math.isfinite(boost)
            assert v.MIN_BOOST <= boost <= v.MAX_BOOST
            assert boost == round(boost, 1)

    @given(any_text)
    def test_disposition(self, text: str) -> None:
        """Accepted dispositions are 1 to 64 characters of [a-z0-9:_.-]."""
        disposition = outcome(lambda: v.disposition(text), "disposition")
        if disposition is not None:
            assert disposition == text
            assert v.SKILL.fullmatch(disposition)

    @given(any_text)
    def test_away_reason(self, text: str) -> None:
        """Accepted reasons are at most 64 printable characters (empty is allowed)."""
        reason = outcome(lambda: v.away_reason(text), "away_reason")
        if reason is not None:
            assert reason == text
            assert len(reason) <= v.MAX_REASON
            assert reason.isprintable()

    @given(st.one_of(any_text, st.uuids().map(str), st.uuids().map(lambda u: str(u).upper())))
    def test_uuid_text(self, text: str) -> None:
        """Accepted ids are UUIDs in their canonical lower-case text form."""
        value = outcome(lambda: v.uuid_text(text, "contact_id"), "contact_id")
        if value is not None:
            assert value == str(uuid.UUID(text)) == text.lower()

    @given(st.lists(st.one_of(any_text, st.sampled_from(["a1", "ann.smith@site-1"])), max_size=20))
    def test_agent_ids(self, values: list[str]) -> None:
        """Accepted agent filters hold at most the limit of well-formed agent ids."""
        result = outcome(lambda: v.agent_ids(values, "agent_ids", 10), "agent_ids")
        if result is not None:
            assert result == set(values)
            assert len(result) <= 10
            assert all(v.AGENT_ID.fullmatch(agent) for agent in result)


class TestSkillLevels:
    def test_levels_default_to_one_and_keep_their_order(self) -> None:
        """Level 0 (unset) is 1; the order given is kept (most wanted first)."""
        assert v.skill_levels([("lang:es", 3), ("vip", 0)], "preferred_skills") == [
            ("lang:es", 3),
            ("vip", 1),
        ]

    @pytest.mark.parametrize("pair", [("lang:es", 6), ("Lang ES", 1), ("", 1)])
    def test_bad_levels_and_names_are_refused(self, pair: tuple[str, int]) -> None:
        """A level above 5 or a malformed name is refused, naming the field."""
        with pytest.raises(InvalidArgument, match="preferred_skills"):
            v.skill_levels([pair], "preferred_skills")
