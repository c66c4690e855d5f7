"""An agent's open StreamOffers call, as the switchboard feeds it."""

from __future__ import annotations

import asyncio
from collections import deque

from router.domain import Contact, Offer, OfferWithdrawn
from router.errors import RouterError

StreamMessage = tuple[Offer, Contact] | OfferWithdrawn
"""What an agent's offer stream carries: a new offer (with its contact) or a withdrawal."""


class OfferStream:
    """One open StreamOffers call: messages for the agent until it ends.

    `next()` returns None once the stream has ended; `ending` then says how: None
    when the agent signed out (the call ends OK), or the error the call ends with
    (ShuttingDown: reopen it later; StreamReplaced: another stream took over).

    One reader (the call) and no bound: a deque and the reader's wake-up future, where
    an asyncio.Queue ran a dozen Python calls per message for waiters, limits and task
    counts it does not need here."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.ending: RouterError | None = None
        self._messages: deque[StreamMessage | None] = deque()
        self._reader: asyncio.Future[None] | None = None

    def push(self, message: StreamMessage) -> None:
        self._messages.append(message)
        self._wake()

    def end(self, ending: RouterError | None = None) -> None:
        """No more messages: the messages already pushed are sent, then the call ends."""
        self.ending = ending
        self._messages.append(None)
        self._wake()

    async def next(self) -> StreamMessage | None:
        while not self._messages:
            self._reader = asyncio.get_running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        return self._messages.popleft()

    def _wake(self) -> None:
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)
