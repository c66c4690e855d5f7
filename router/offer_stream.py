"""An agent's open StreamOffers call, as the switchboard feeds it."""

from __future__ import annotations

import asyncio

from router.domain import Contact, Offer, OfferWithdrawn
from router.errors import RouterError

StreamMessage = tuple[Offer, Contact] | OfferWithdrawn
"""What an agent's offer stream carries: a new offer (with its contact) or a withdrawal."""


class OfferStream:
    """One open StreamOffers call: messages for the agent until it ends.

    `next()` returns None once the stream has ended; `ending` then says how: None
    when the agent signed out (the call ends OK), or the error the call ends with
    (ShuttingDown: reopen it later; StreamReplaced: another stream took over)."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.ending: RouterError | None = None
        self._queue: asyncio.Queue[StreamMessage | None] = asyncio.Queue()

    def push(self, message: StreamMessage) -> None:
        self._queue.put_nowait(message)

    def end(self, ending: RouterError | None = None) -> None:
        """No more messages: the messages already pushed are sent, then the call ends."""
        self.ending = ending
        self._queue.put_nowait(None)

    async def next(self) -> StreamMessage | None:
        return await self._queue.get()
