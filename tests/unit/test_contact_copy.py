"""router.domain.contact.changed: the core's fast copy of a contact with some fields
changed, against dataclasses.replace, which it stands in for on the hot path."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields, replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.domain import Channel, ContactState
from router.domain.contact import Contact, changed
from tests.unit.conftest import T0, build_contact

NAMES = [f.name for f in fields(Contact)]

CHANGES: dict[str, st.SearchStrategy[Any]] = {
    "state": st.sampled_from(ContactState),
    "offered_at": st.none() | st.just(T0 + timedelta(seconds=5)),
    "agent_id": st.none() | st.text(max_size=5),
    "offer_count": st.integers(0, 9),
    "disposition": st.none() | st.just("sale"),
    "required_skills": st.frozensets(st.sampled_from(["a", "b"])),
    "closed_wait": st.floats(0, 60),
}


class TestChanged:
    @given(st.fixed_dictionaries({}, optional=CHANGES), st.sampled_from(Channel))
    def test_the_same_contact_as_replace_makes(
        self, changes: dict[str, Any], channel: Channel
    ) -> None:
        """Any fields changed give a contact equal to dataclasses.replace's, of the
        class Contact, frozen, and leave the original as it was."""
        original = build_contact("c1", channel, 3.0, skills={"a"})
        before = [getattr(original, name) for name in NAMES]
        copy = changed(original, **changes)
        assert type(copy) is Contact
        assert copy == replace(original, **changes)
        assert [getattr(original, name) for name in NAMES] == before
        with pytest.raises(FrozenInstanceError):
            copy.offer_count = 1  # type: ignore[misc]

    def test_a_name_that_is_not_a_field_is_refused(self) -> None:
        with pytest.raises(AttributeError):
            changed(build_contact("c1"), ofered_at=T0)
