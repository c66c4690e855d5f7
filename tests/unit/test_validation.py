"""validation.py: every check refuses bad input with InvalidArgument naming the field."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from router.domain import InvalidArgument
from router.domain import validation as v

Check = Callable[[], object]

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
