"""Roster: free agents per channel and skill set, least loaded then longest idle first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from router.domain import Agent, AgentStatus, Channel, ChannelPolicy, RoutingPolicy
from router.domain.roster import Roster

At = Callable[[float], datetime]
NONE: frozenset[str] = frozenset()


def _agent(
    agent_id: str,
    since: datetime,
    *,
    seq: int = 1,
    skills: frozenset[str] = NONE,
    phone: int = 1,
    chat: int = 3,
    email: int = 1,
    assigned: dict[str, Channel] | None = None,
    status: AgentStatus = AgentStatus.READY,
    connected: bool = True,
) -> Agent:
    return Agent(
        id=agent_id,
        skills=skills,
        capacities={Channel.PHONE: phone, Channel.CHAT: chat, Channel.EMAIL: email},
        signed_in_at=since,
        since=since,
        seq=seq,
        status=status,
        connected=connected,
        assigned=dict(assigned or {}),
    )


def _roster(*agents: Agent, reserve: int = 0) -> Roster:
    roster = Roster(RoutingPolicy(phone_reserve=reserve))
    for agent in agents:
        roster.place(agent)
    return roster


class TestLongestIdleFirst:
    def test_smallest_since_wins(self, at: At) -> None:
        """Among free agents the one free the longest gets the contact."""
        roster = _roster(_agent("new", at(30), seq=1), _agent("old", at(10), seq=2))
        assert roster.best_for(Channel.PHONE, NONE) == "old"
        assert roster.best_for(Channel.EMAIL, NONE) == "old"

    def test_equal_since_goes_to_the_earlier_sign_in(self, at: At) -> None:
        """Agents free since the same instant are ordered by their sequence number."""
        roster = _roster(_agent("b", at(5), seq=2), _agent("a", at(5), seq=1))
        assert roster.best_for(Channel.CHAT, NONE) == "a"

    def test_less_loaded_agent_comes_before_a_longer_idle_one(self, at: At) -> None:
        """(load, since): an agent holding nothing beats one holding a chat, idle or not."""
        busy = _agent("busy", at(0), seq=1, assigned={"c1": Channel.CHAT})
        idle = _agent("idle", at(60), seq=2)
        roster = _roster(busy, idle)
        assert roster.best_for(Channel.CHAT, NONE) == "idle"
        roster.remove("idle")
        assert roster.best_for(Channel.CHAT, NONE) == "busy"

    def test_re_placing_an_agent_updates_its_key(self, at: At) -> None:
        """place() re-indexes: an agent whose since moves forward goes to the back."""
        a, b = _agent("a", at(0), seq=1), _agent("b", at(10), seq=2)
        roster = _roster(a, b)
        a.since = at(20)
        roster.place(a)
        assert roster.best_for(Channel.PHONE, NONE) == "b"


class TestEligibility:
    def test_required_skills_must_be_a_subset(self, at: At) -> None:
        """Only agents whose skills cover the contact's requirements are found."""
        plain = _agent("plain", at(0), seq=1)
        spanish = _agent("es", at(10), seq=2, skills=frozenset({"lang:es", "returns"}))
        roster = _roster(plain, spanish)
        assert roster.best_for(Channel.PHONE, frozenset({"lang:es"})) == "es"
        assert roster.best_for(Channel.PHONE, NONE) == "plain"
        assert roster.best_for(Channel.PHONE, frozenset({"lang:fr"})) is None

    def test_excluded_agents_are_skipped(self, at: At) -> None:
        """The exclusion callback (recent declines) skips an agent for the next one."""
        roster = _roster(_agent("a", at(0), seq=1), _agent("b", at(5), seq=2))
        assert roster.best_for(Channel.PHONE, NONE, lambda a: a == "a") == "b"
        assert roster.best_for(Channel.PHONE, NONE, lambda _: True) is None

    def test_unroutable_agents_are_not_placed(self, at: At) -> None:
        """Away or disconnected agents are in no pool."""
        away = _agent("away", at(0), seq=1, status=AgentStatus.AWAY)
        gone = _agent("gone", at(0), seq=2, connected=False)
        roster = _roster(away, gone)
        assert all(roster.best_for(channel, NONE) is None for channel in Channel)
        assert roster.phone_ready == 0

    def test_full_or_exclusive_agents_leave_the_channel_pools(self, at: At) -> None:
        """Three chats fill the chat pool; a call takes the agent out of every pool."""
        chats = {f"c{i}": Channel.CHAT for i in range(3)}
        full = _agent("full", at(0), seq=1, assigned=chats)
        on_call = _agent("call", at(0), seq=2, assigned={"p": Channel.PHONE})
        roster = _roster(full, on_call)
        assert roster.best_for(Channel.CHAT, NONE) is None
        assert roster.best_for(Channel.PHONE, NONE) is None
        assert roster.best_for(Channel.EMAIL, NONE) == "full"
        assert roster.best_for(Channel.EMAIL, NONE, lambda a: a == "full") is None


class TestPhoneReserve:
    def test_phone_ready_counts_agents_who_could_take_a_call(self, at: At) -> None:
        """phone_ready counts routable, phone-capable agents holding nothing."""
        roster = _roster(
            _agent("a", at(0), seq=1),
            _agent("b", at(0), seq=2),
            _agent("no-phone", at(0), seq=3, phone=0),
            _agent("chatting", at(0), seq=4, assigned={"c": Channel.CHAT}),
            reserve=1,
        )
        assert roster.phone_ready == 2
        assert roster.phone_ready_agents() == ["a", "b"]

    def test_place_twice_and_remove_keep_the_count_exact(self, at: At) -> None:
        """Re-placing does not double count; removing decrements once."""
        a = _agent("a", at(0))
        roster = _roster(a, reserve=1)
        roster.place(a)
        roster.place(a)
        assert roster.phone_ready == 1
        roster.remove("a")
        roster.remove("a")
        assert roster.phone_ready == 0

    def test_last_k_idle_phone_agents_get_no_chat(self, at: At) -> None:
        """With K=1 and one phone-ready agent, a chat finds nobody; a call finds it."""
        roster = _roster(_agent("a", at(0)), reserve=1)
        assert not roster.reserve_allows_other_work()
        assert roster.best_for(Channel.CHAT, NONE) is None
        assert roster.best_for(Channel.EMAIL, NONE) is None
        assert roster.best_for(Channel.PHONE, NONE) == "a"

    def test_more_than_k_phone_agents_release_one_to_chat(self, at: At) -> None:
        """With K=1 and two phone-ready agents one may take a chat, then the other is held."""
        a, b = _agent("a", at(0), seq=1), _agent("b", at(5), seq=2)
        roster = _roster(a, b, reserve=1)
        assert roster.best_for(Channel.CHAT, NONE) == "a"
        a.assigned["chat-1"] = Channel.CHAT
        roster.place(a)
        assert roster.phone_ready == 1
        assert roster.best_for(Channel.CHAT, NONE) == "a"  # a has chat room, b is held back
        a.assigned.update({"chat-2": Channel.CHAT, "chat-3": Channel.CHAT})
        roster.place(a)
        assert roster.best_for(Channel.CHAT, NONE) is None
        assert roster.best_for(Channel.PHONE, NONE) == "b"

    def test_agents_who_cannot_take_calls_are_never_held_back(self, at: At) -> None:
        """An agent without phone capacity takes chat even while the reserve is short."""
        roster = _roster(
            _agent("phone", at(0), seq=1), _agent("chat-only", at(9), seq=2, phone=0), reserve=1
        )
        assert roster.best_for(Channel.CHAT, NONE) == "chat-only"


def _may_take(agent: Agent, channel: Channel, policy: RoutingPolicy) -> bool:
    """The rule, for one channel: routable, capacity left on it, not capped on it, and
    nothing exclusive held, nor anything at all for an exclusive channel."""
    if not agent.routable or agent.capacities.get(channel, 0) <= 0 or channel in agent.capped:
        return False
    if policy.of(channel).exclusive and agent.assigned:
        return False
    if any(policy.of(held).exclusive for held in agent.assigned.values()):
        return False
    return agent.load(channel) < agent.capacities[channel]


class TestTakes:
    def test_takes_follows_the_rule_channel_by_channel(self, at: At) -> None:
        """Agent.takes (and so can_take) lists, in routing order, exactly the channels
        the rule allows, stated here one channel at a time, whatever the agent's status,
        presence, capacities, caps and held work."""
        exclusive_phone = RoutingPolicy()  # the default: a call is all its agent holds
        channels = dict(exclusive_phone.channels)
        channels[Channel.PHONE] = ChannelPolicy(20.0, 1, 1)
        shared_phone = RoutingPolicy(channels=channels)
        held: list[dict[str, Channel]] = [
            {},
            {"c1": Channel.PHONE},
            {"c1": Channel.CHAT},
            {"c1": Channel.CHAT, "c2": Channel.CHAT, "c3": Channel.CHAT},
            {"c1": Channel.EMAIL},
        ]
        for policy in (exclusive_phone, shared_phone):
            for assigned in held:
                for status in (AgentStatus.READY, AgentStatus.AWAY):
                    for connected in (True, False):
                        for phone, chat in ((1, 3), (0, 1), (1, 0)):
                            for capped in (set(), {Channel.CHAT}):
                                agent = _agent(
                                    "a",
                                    at(0),
                                    phone=phone,
                                    chat=chat,
                                    assigned=assigned,
                                    status=status,
                                    connected=connected,
                                )
                                agent.capped = set(capped)
                                expected = [c for c in Channel if _may_take(agent, c, policy)]
                                assert agent.takes(policy) == expected
                                assert [c for c in Channel if agent.can_take(c, policy)] == expected
