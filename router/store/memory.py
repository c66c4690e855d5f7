"""A store in memory, for the switchboard's unit tests: no PostgreSQL, no sleeps.

In the spirit of procrastinate's InMemoryConnector: it implements the same interface as
the real store (SwitchboardStore), keeps its rows in dicts, and adds what a test needs
to drive the races the real store makes possible but rare:

- Time: commits land on the next turn of the event loop by default (like the group
  commit, never inside the call that enqueued them). `hold()` keeps them pending until
  `commit()` lands the oldest ones or `release()` lands them all, so a test decides
  what happens between enqueue and commit. `expire_waits()` makes every caller waiting
  on a commit time out, as the real writer's wait timeout does.
- Failure: `start_outage()` / `end_outage()` (PostgreSQL down, then back), and
  `fail_next_commit()` with a StoreUnavailable (an outage that begins during the next
  commit) or a DuplicateKey (the next contact insert is refused as a duplicate).
- Counting: `transactions`, `committed` (every event written, in commit order), `reads`
  (how many of each read), `pending_writes` and `waiting`, and `until_pending()` /
  `until_waiting()` to wait, without polling, for the switchboard to get there.

The rules of the real store that the switchboard relies on hold here too (see
router/store/interface.py): commit order is enqueue order, after-commit hooks run in
that order once their rows are committed, a known idempotency key is DuplicateKey, a
submission during an outage fails at once while recorded events are kept and
released, and events about a contact with no row are rejected (the foreign key).
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from router.domain import (
    AgentEvent,
    Channel,
    Contact,
    ContactEvent,
    ContactEventKind,
    Event,
    OfferWithdrawn,
)
from router.errors import DuplicateKey, StoreUnavailable

log = structlog.get_logger(__name__)

RecordedEvent = ContactEvent | AgentEvent
"""What a commit writes: offer withdrawals are messages, not rows."""

UNTIL_SECONDS = 5.0
"""How long `until_pending` and `until_waiting` wait before they fail the test: a
deadline for a switchboard that never gets there, not a pause (they return at once
when it does)."""


def _new_future() -> asyncio.Future[None]:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    # A caller that gave up waiting must not leave an unretrieved exception behind.
    done.add_done_callback(lambda f: f.cancelled() or f.exception())
    return done


@dataclass(slots=True, eq=False)
class _Write:
    """One caller's enqueued write: a new contact's row, or events to record."""

    new_contact: Contact | None
    events: Sequence[RecordedEvent]
    retry: bool
    after_commit: Callable[[], None] | None = None
    done: asyncio.Future[None] = field(default_factory=_new_future)


class InMemoryStore:
    """The switchboard's store in dicts, with commits and failures under a test's control."""

    def __init__(self) -> None:
        self.contacts: dict[str, Contact] = {}
        """Contact rows by id, as last committed."""
        self.events: dict[str, list[ContactEvent]] = {}
        """Each contact's committed history, by contact id (`submitted` first)."""
        self.agent_events: list[AgentEvent] = []
        """The agent status log, in commit order."""
        self.committed: list[RecordedEvent] = []
        """Every event written, in commit order; an insert writes its `submitted` event."""
        self.transactions = 0
        """Transactions run, one per batch as the group commit's (not one an outage
        failed)."""
        self.reads: Counter[str] = Counter()
        """How many times each read ran."""
        self.after_commit_errors: list[Exception] = []
        """Exceptions raised by after-commit hooks (logged and swallowed, as the real
        writer does); a test can assert there were none."""
        self.healthy = True
        """False during an outage: inserts and reads fail, recorded events wait."""
        self._keys: dict[str, str] = {}
        self._pending: deque[_Write] = deque()
        self._held = False
        self._scheduled = False
        self._outage_next_commit: StoreUnavailable | None = None
        self._duplicate_next_insert: DuplicateKey | None = None
        self._deadlines: set[asyncio.Future[None]] = set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------- SwitchboardStore

    @property
    def writer(self) -> InMemoryStore:
        """This store waits for its own commits."""
        return self

    async def wait(self, done: asyncio.Future[None], *, retry: bool = True) -> None:
        """Wait for `done` without cancelling it when the caller gives up; StoreUnavailable
        if its commit fails, or if `expire_waits()` ends the wait first."""
        if done.done():
            return done.result()
        deadline: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._deadlines.add(deadline)
        self._changed.set()
        try:
            await asyncio.wait((done, deadline), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._deadlines.discard(deadline)
            self._changed.set()
        if done.done():
            return done.result()
        raise StoreUnavailable(
            "PostgreSQL did not commit in time; the change is kept and will be written"
            if retry
            else "PostgreSQL did not commit in time"
        )

    def insert_contact(
        self, contact: Contact, after_commit: Callable[[], None]
    ) -> asyncio.Future[None]:
        """Queue a new contact's row and its `submitted` event. Not retried: during an
        outage it fails at once; a known idempotency key fails its commit (DuplicateKey)."""
        if not self.healthy:
            raise StoreUnavailable("PostgreSQL is unavailable; retry later")
        submitted = ContactEvent(ContactEventKind.SUBMITTED, contact, contact.queued_at)
        return self._enqueue(_Write(contact, [submitted], retry=False, after_commit=after_commit))

    def record(self, events: Sequence[Event]) -> asyncio.Future[None]:
        """Queue the rows for `events`; kept until they commit, released during an outage."""
        rows = [event for event in events if not isinstance(event, OfferWithdrawn)]
        write = _Write(None, rows, retry=True)
        if not rows:
            write.done.set_result(None)
            return write.done
        if not self.healthy:
            write.done.set_result(None)
        return self._enqueue(write)

    def record_voided(self, requeued: Sequence[ContactEvent]) -> asyncio.Future[None]:
        return self.record(requeued)

    async def contact_by_id(self, contact_id: str) -> Contact | None:
        self._read("contact_by_id")
        return self.contacts.get(contact_id)

    async def contact_by_key(self, key: str) -> Contact | None:
        self._read("contact_by_key")
        contact_id = self._keys.get(key)
        return None if contact_id is None else self.contacts[contact_id]

    async def open_contacts(self) -> list[Contact]:
        self._read("open_contacts")
        open_ = (c for c in self.contacts.values() if not c.state.is_final)
        return sorted(open_, key=lambda c: (c.queued_at, c.id))

    async def previous_agents(self, limit: int) -> list[tuple[str, str]]:
        self._read("previous_agents")
        completions = sorted(
            (
                (c.completed_at, c.customer_id, c.agent_id)
                for c in self.contacts.values()
                if c.completed_at is not None and c.agent_id is not None
            ),
            key=lambda completion: completion[0],
            reverse=True,
        )
        return [(customer, agent) for _, customer, agent in reversed(completions[:limit])]

    async def answers_since(self, since: datetime) -> list[tuple[str, Channel, datetime]]:
        self._read("answers_since")
        answers = [
            (event.agent_id, event.contact.channel, event.at)
            for event in self.committed
            if isinstance(event, ContactEvent)
            and event.kind is ContactEventKind.ANSWERED
            and event.agent_id is not None
            and event.at >= since
        ]
        # Stable: answers at the same instant stay in commit order, as `ORDER BY at, id`.
        return sorted(answers, key=lambda answer: answer[2])

    # ------------------------------------------------------- a test's controls

    def hold(self) -> None:
        """Keep commits pending until `commit()` or `release()`."""
        self._held = True

    def release(self) -> int:
        """Stop holding and commit everything pending now; the writes committed."""
        self._held = False
        return self.commit()

    def commit(self, count: int | None = None) -> int:
        """Commit the oldest `count` pending writes (all by default) now, in one
        transaction, and run their hooks; how many landed (none during an outage, and
        not those refused: a duplicate key, events of a contact with no row)."""
        if not self.healthy:
            return 0
        taken = len(self._pending) if count is None else min(count, len(self._pending))
        batch = [self._pending.popleft() for _ in range(taken)]
        if not batch:
            return 0
        landed = self._commit(batch)
        self._changed.set()
        return landed

    def fail_next_commit(self, error: StoreUnavailable | DuplicateKey) -> None:
        """StoreUnavailable: the next commit fails as an outage begins (see
        start_outage). DuplicateKey: the next contact insert to commit is refused with
        it, its caller alone (the real writer splits a batch with a bad write)."""
        if isinstance(error, DuplicateKey):
            self._duplicate_next_insert = error
        else:
            self._outage_next_commit = error

    def start_outage(self, error: StoreUnavailable | None = None) -> None:
        """PostgreSQL is down: pending submissions fail, pending recorded events are kept
        and their callers released, new submissions and reads fail at once."""
        self._begin_outage(error or StoreUnavailable("PostgreSQL unavailable (simulated)"))

    def end_outage(self) -> None:
        """PostgreSQL is back: what was kept commits (on the next turn, unless held)."""
        self.healthy = True
        self._schedule()

    def expire_waits(self) -> int:
        """Every caller now waiting on a commit times out (StoreUnavailable), as with
        the real writer's wait timeout; the commits themselves stay pending. How many."""
        expired = [deadline for deadline in self._deadlines if not deadline.done()]
        for deadline in expired:
            deadline.set_result(None)
        return len(expired)

    def seed(self, *contacts: Contact) -> None:
        """Rows committed before this test (by an earlier run of the router)."""
        for contact in contacts:
            self.contacts[contact.id] = contact
            self._keys[contact.idempotency_key] = contact.id
            self.events.setdefault(contact.id, [])

    @property
    def pending_writes(self) -> int:
        """Writes enqueued and not yet committed (released ones included)."""
        return len(self._pending)

    @property
    def waiting(self) -> int:
        """Callers now waiting in `wait` for a commit."""
        return len(self._deadlines)

    async def until_pending(self, count: int) -> None:
        """Return once at least `count` writes are pending (TimeoutError if that does not
        happen within UNTIL_SECONDS: the switchboard never got there)."""
        await self._until(lambda: len(self._pending) >= count, f"{count} pending writes")

    async def until_waiting(self, count: int) -> None:
        """Return once at least `count` callers wait for a commit (TimeoutError if that
        does not happen within UNTIL_SECONDS)."""
        await self._until(lambda: len(self._deadlines) >= count, f"{count} waiting callers")

    # ------------------------------------------------------------ internals

    def _enqueue(self, write: _Write) -> asyncio.Future[None]:
        self._pending.append(write)
        self._changed.set()
        self._schedule()
        return write.done

    def _schedule(self) -> None:
        """Commit on the next turn of the loop: the enqueuing caller goes on first."""
        if self._scheduled or self._held or not self.healthy or not self._pending:
            return
        self._scheduled = True

        def commit_now() -> None:
            self._scheduled = False
            if not self._held:
                self.commit()

        asyncio.get_running_loop().call_soon(commit_now)

    def _commit(self, batch: list[_Write]) -> int:
        """Commit `batch` in one transaction; how many of its writes landed."""
        outage, self._outage_next_commit = self._outage_next_commit, None
        if outage is not None:
            self._pending.extendleft(reversed(batch))
            self._begin_outage(outage)
            return 0
        self.transactions += 1
        landed: list[_Write] = []
        for write in batch:
            refusal = self._refusal(write)
            if refusal is None:
                self._apply(write)
                landed.append(write)
            elif not write.done.done():
                write.done.set_exception(refusal)
        for write in landed:
            if write.after_commit is not None:
                try:
                    write.after_commit()
                except Exception as error:
                    log.exception("after_commit_failed")
                    self.after_commit_errors.append(error)
            if not write.done.done():
                write.done.set_result(None)
        return len(landed)

    def _refusal(self, write: _Write) -> DuplicateKey | StoreUnavailable | None:
        """What the real store would refuse this write with, if anything."""
        contact = write.new_contact
        if contact is not None:
            duplicate, self._duplicate_next_insert = self._duplicate_next_insert, None
            if duplicate is not None:
                return duplicate
            if contact.idempotency_key in self._keys:
                return DuplicateKey(f"idempotency key {contact.idempotency_key!r} exists")
            return None
        for event in write.events:
            if isinstance(event, ContactEvent) and event.contact.id not in self.contacts:
                return StoreUnavailable(f"write rejected: no contact row {event.contact.id}")
        return None

    def _apply(self, write: _Write) -> None:
        if write.new_contact is not None:
            contact = write.new_contact
            self.contacts[contact.id] = contact
            self._keys[contact.idempotency_key] = contact.id
        for event in write.events:
            if isinstance(event, ContactEvent):
                self.contacts[event.contact.id] = event.contact
                self.events.setdefault(event.contact.id, []).append(event)
            else:
                self.agent_events.append(event)
            self.committed.append(event)

    def _begin_outage(self, error: StoreUnavailable) -> None:
        self.healthy = False
        waiting = list(self._pending)
        self._pending.clear()
        for write in waiting:
            if write.retry:
                self._pending.append(write)
                if not write.done.done():
                    write.done.set_result(None)
            elif not write.done.done():
                write.done.set_exception(StoreUnavailable(str(error)))
        self._changed.set()

    def _read(self, name: str) -> None:
        if not self.healthy:
            raise StoreUnavailable(f"PostgreSQL unavailable: cannot run {name}")
        self.reads[name] += 1

    async def _until(self, reached: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(UNTIL_SECONDS):
                while not reached():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"no {what} after {UNTIL_SECONDS} s: {len(self._pending)} pending writes, "
                f"{len(self._deadlines)} waiting callers"
            ) from None
